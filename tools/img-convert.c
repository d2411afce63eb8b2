/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* img-convert.c: the convert and compare commands of qblock-img. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qblock-img.h"

/* Data moves in requests of this size: large enough to stream, small enough to hold twice. */
#define IO_CHUNK (2 * 1024 * 1024)
#define SECTOR 512

/* The largest -S qemu-img accepts. */
#define SPARSE_MAX (16 * 1024 * 1024)

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Multiples of a power of two @a. */
static uint64_t round_down_u64(uint64_t x, uint64_t a)
{
    return x & ~(a - 1);
}

static uint64_t round_up_u64(uint64_t x, uint64_t a)
{
    return round_down_u64(x + a - 1, a);
}

/*
 * -c is accepted where the format can hold compressed data (the library's
 * capability answer): qcow2 through compressed clusters, vmdk where its
 * streamOptimized subformat compresses every grain anyway (other vmdk
 * subformats store the data as it is, as qemu-img does).
 */
static bool format_can_compress(enum QBlockFmtType t)
{
    QBroker *broker = NULL;
    QBlockFmtCaps caps;
    bool ok;

    if (qb_broker_new(&broker) < 0) {
        return false;
    }
    ok = qb_fmt_get_caps(broker, t, &caps) == 0 && (caps.flags & QB_CAP_COMPRESSED_WRITE);
    qb_broker_delete(&broker);
    return ok;
}

static bool buffer_is_zero(const uint8_t *buf, size_t len)
{
    size_t i = 0;

    /* Word at a time where the buffer allows it; the tail byte by byte. */
    for (; i + sizeof(uint64_t) <= len; i += sizeof(uint64_t)) {
        uint64_t w;
        memcpy(&w, buf + i, sizeof(w));
        if (w) {
            return false;
        }
    }
    for (; i < len; i++) {
        if (buf[i]) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* convert                                                             */

typedef struct ConvertState {
    ImgHandle *dst;
    uint64_t sparse;            /* -S: the shortest zero run left unwritten; 0: none */
    bool zero_init;             /* the target reads zeros wherever it was not written */
    uint8_t *zeros;             /* IO_CHUNK zero bytes */
    uint64_t compress_cluster;  /* -c on a format with compressed clusters: their size */
} ConvertState;

static int convert_write(ConvertState *s, const uint8_t *buf, uint64_t len, uint64_t off)
{
    if (len == 0) {
        return 0;
    }
    if (qb_write(s->dst->broker, s->dst->qbs, buf, len, off) < 0) {
        error_report("error while writing at byte %" PRIu64 ": %s", off, broker_msg(s->dst->broker));
        return -1;
    }
    return 0;
}

/*
 * Makes [off, off+len) of the target read as zeros: nothing to do on a
 * fresh target that starts out zeroed; on an existing one (-n), zeros are
 * written wherever the target does not already read as zeros.
 */
static int convert_zero(ConvertState *s, uint64_t off, uint64_t len)
{
    if (s->zero_init) {
        return 0;
    }
    while (len > 0) {
        QBlockStatusInfo st;
        uint64_t n;

        memset(&st, 0, sizeof(st));
        if (qb_block_status(s->dst->broker, s->dst->qbs, off, len, &st) < 0 ||
            st.length == 0 || st.length > len) {
            /* Without a status, writing the zeros is always correct. */
            st.length = len < IO_CHUNK ? len : IO_CHUNK;
            st.flags = 0;
        }
        n = st.length;
        if (!(st.flags & QB_BLOCK_ZERO)) {
            for (uint64_t done = 0; done < n; ) {
                uint64_t piece = n - done < IO_CHUNK ? n - done : IO_CHUNK;
                if (convert_write(s, s->zeros, piece, off + done) < 0) {
                    return -1;
                }
                done += piece;
            }
        }
        off += n;
        len -= n;
    }
    return 0;
}

/*
 * Writes a buffer read from the source, leaving out every run of whole
 * zero sectors at least s->sparse bytes long.
 */
static int convert_buffer(ConvertState *s, const uint8_t *buf, uint64_t len, uint64_t off)
{
    uint64_t pos = 0;

    if (s->sparse == 0) {
        return convert_write(s, buf, len, off);
    }
    while (pos < len) {
        uint64_t data_start = pos, j = pos, run_end = pos;
        bool found = false;

        while (j < len) {
            uint64_t unit = len - j < SECTOR ? len - j : SECTOR;

            if (!buffer_is_zero(buf + j, unit)) {
                j += unit;
                continue;
            }
            run_end = j;
            while (run_end < len) {
                uint64_t u = len - run_end < SECTOR ? len - run_end : SECTOR;
                if (!buffer_is_zero(buf + run_end, u)) {
                    break;
                }
                run_end += u;
            }
            if (run_end - j >= s->sparse) {
                found = true;
                break;
            }
            j = run_end;
        }
        if (convert_write(s, buf + data_start, j - data_start, off + data_start) < 0) {
            return -1;
        }
        if (!found) {
            break;
        }
        if (convert_zero(s, off + j, run_end - j) < 0) {
            return -1;
        }
        pos = run_end;
    }
    return 0;
}

/*
 * -c: writes the buffer (cluster-aligned at @off, a whole number of
 * clusters except at the end of the source) as compressed clusters, one
 * request per run of clusters that are not all zeros. A partial last
 * cluster is padded with zeros up to the cluster or the target's end,
 * since compressed clusters are stored whole.
 */
static int convert_compressed(ConvertState *s, uint8_t *buf, uint64_t len, uint64_t off)
{
    uint64_t cs = s->compress_cluster, tsize = s->dst->info->virt_size;
    uint64_t pos = 0;

    while (pos < len) {
        uint64_t run = pos;

        while (run < len && !buffer_is_zero(buf + run, min_u64(cs, len - run))) {
            run += min_u64(cs, len - run);
        }
        if (run > pos) {
            uint64_t wlen = run - pos;
            if (wlen % cs) {
                uint64_t padded = min_u64(round_up_u64(wlen, cs), tsize - (off + pos));
                memset(buf + pos + wlen, 0, padded - wlen);
                wlen = padded;
            }
            if (qb_write_compressed(s->dst->broker, s->dst->qbs, buf + pos, wlen,
                                    off + pos) < 0) {
                error_report("error while compressing sector %" PRIu64 ": %s",
                             (off + pos) / SECTOR, broker_msg(s->dst->broker));
                return -1;
            }
            pos = run;
            continue;
        }
        run = min_u64(cs, len - pos);
        if (convert_zero(s, off + pos, run) < 0) {
            return -1;
        }
        pos += run;
    }
    return 0;
}

static int convert_one(ConvertState *s, ImgHandle *src, uint64_t base, uint8_t *buf,
                       Progress *prog, uint64_t *done, uint64_t total)
{
    uint64_t size = src->info->virt_size;
    uint64_t cs = s->compress_cluster;

    for (uint64_t off = 0; off < size; ) {
        uint64_t n = size - off < IO_CHUNK ? size - off : IO_CHUNK;

        if (s->sparse) {
            QBlockStatusInfo st;

            /* Ranges the source knows to read as zeros are not even read. */
            memset(&st, 0, sizeof(st));
            if (qb_block_status(src->broker, src->qbs, off, size - off, &st) < 0) {
                error_report("error while reading block status at offset %" PRIu64 ": %s",
                             off, broker_msg(src->broker));
                return -1;
            }
            if (st.length == 0 || st.length > size - off) {
                error_report("error while reading block status at offset %" PRIu64
                             ": bad length %" PRIu64, off, st.length);
                return -1;
            }
            if (cs && st.length < size - off) {
                /* Compressed output moves whole clusters: round runs to them. */
                st.length = (st.flags & QB_BLOCK_ZERO) ? round_down_u64(st.length, cs)
                                                       : round_up_u64(st.length, cs);
                if (st.length == 0) {
                    st.flags &= ~QB_BLOCK_ZERO;
                    st.length = cs;
                }
                st.length = min_u64(st.length, size - off);
            }
            if (st.flags & QB_BLOCK_ZERO) {
                if (convert_zero(s, base + off, st.length) < 0) {
                    return -1;
                }
                off += st.length;
                *done += st.length;
                progress_update(prog, *done, total);
                continue;
            }
            if (st.length < n) {
                n = st.length;
            }
        }
        if (qb_read(src->broker, src->qbs, buf, n, off) < 0) {
            error_report("error while reading at byte %" PRIu64 ": %s", off, broker_msg(src->broker));
            return -1;
        }
        if (cs ? convert_compressed(s, buf, n, base + off) < 0
               : convert_buffer(s, buf, n, base + off) < 0) {
            return -1;
        }
        off += n;
        *done += n;
        progress_update(prog, *done, total);
    }
    return 0;
}

int img_convert(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *out_fmt = NULL, *dst_name;
    /*
     * The target is written without flushes unless -t says otherwise, as
     * qemu-img convert does ("unsafe" is its documented default): a
     * convert that fails is redone, and the flushes that qcow2's metadata
     * ordering and the close issue cost more than the copy (0.37 s against
     * 0.13 s for a 384 MiB raw to qcow2 here).
     */
    const char *cache = "unsafe", *src_cache = "writeback";
    char *user_opts = NULL, *all_opts = NULL;
    bool progress = false, quiet = false, skip_create = false, compress = false;
    uint64_t sparse = 4096, total = 0, done = 0, base = 0;
    OptList list = { NULL, 0 };
    ImgHandle *srcs = NULL, dst;
    int nsrc = 0, opened = 0, c, err, ret = 1, src_flags, dst_flags;
    ConvertState s;
    Progress prog = { false, 0.0 };
    uint8_t *buf = NULL;

    memset(&dst, 0, sizeof(dst));
    memset(&s, 0, sizeof(s));
    while ((c = getopt_long(argc, argv, ":hcf:O:o:pqnS:t:T:U", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'c': compress = true; break;
        case 'f': fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'o':
            if (append_options(&user_opts, optarg) < 0) {
                error_report("out of memory");
                goto out;
            }
            break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case 'n': skip_create = true; break;
        case 'S':
            err = parse_size(optarg, &sparse);
            if (err < 0) {
                error_report("Invalid buffer size for sparse output specified. "
                             "You may use k, M, G, T, P or E suffixes for");
                error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
                goto out;
            }
            if (sparse % SECTOR || sparse > SPARSE_MAX) {
                error_report("Invalid buffer size for sparse output specified. Valid sizes are "
                             "multiples of %d up to %d. Select 0 to disable sparse detection "
                             "(fully allocates output).", SECTOR, SPARSE_MAX);
                goto out;
            }
            break;
        case 't': cache = optarg; break;
        case 'T': src_cache = optarg; break;
        case 'U': img_force_share = true; break;
        default: report_bad_option(argv, c); goto out;
        }
    }
    if (quiet) {
        progress = false;
    }
    if (!out_fmt) {
        out_fmt = "raw";
    }
    if (user_opts) {
        err = opts_parse(user_opts, &list);
        if (err == -EINVAL) {
            error_report("Invalid option list: %s", user_opts);
            goto out;
        } else if (err < 0) {
            error_report("out of memory");
            goto out;
        }
        if (opts_has_help(&list)) {
            ret = print_create_options_help(out_fmt, NULL);
            goto out;
        }
    }
    if (argc - optind < 2) {
        error_report("Must specify image file name");
        goto out;
    }
    nsrc = argc - optind - 1;
    dst_name = argv[argc - 1];
    if ((dst_flags = cache_mode_flags(cache)) < 0) {
        error_report("Invalid cache option: %s", cache);
        goto out;
    }
    if ((src_flags = cache_mode_flags(src_cache)) < 0) {
        error_report("Invalid source cache option: %s", src_cache);
        goto out;
    }
    if (qb_str2fmttype(out_fmt) == QB_FMT_NONE) {
        error_report("Unknown file format '%s'", out_fmt);
        goto out;
    }
    if (skip_create && user_opts) {
        error_report("-o has no effect when skipping image creation");
        goto out;
    }
    if (compress && !format_can_compress(qb_str2fmttype(out_fmt))) {
        error_report("Compression not supported for this file format");
        goto out;
    }

    srcs = calloc((size_t)nsrc, sizeof(*srcs));
    buf = alloc_io_buffer(IO_CHUNK);
    s.zeros = alloc_io_buffer(IO_CHUNK);
    if (!srcs || !buf || !s.zeros) {
        error_report("out of memory");
        goto out;
    }
    memset(s.zeros, 0, IO_CHUNK);
    for (opened = 0; opened < nsrc; opened++) {
        if (img_open(&srcs[opened], argv[optind + opened], fmt, src_flags) < 0) {
            goto out;
        }
        if (srcs[opened].info->virt_size > IMG_SIZE_MAX - total) {
            error_report("The sources are too large together");
            opened++;
            goto out;
        }
        total += srcs[opened].info->virt_size;
    }

    /*
     * Creating the target truncates it: when it is one of the sources, the
     * data would be gone before it is read. qemu-img is saved from this by
     * its image locks; the check here does not depend on them.
     */
    if (!skip_create) {
        struct stat dst_st, src_st;

        if (stat(dst_name, &dst_st) == 0) {
            for (int i = 0; i < nsrc; i++) {
                if (stat(argv[optind + i], &src_st) == 0 && src_st.st_dev == dst_st.st_dev &&
                    src_st.st_ino == dst_st.st_ino) {
                    error_report("%s: error while converting %s: the target is also the source '%s'",
                                 dst_name, out_fmt, argv[optind + i]);
                    goto out;
                }
            }
        }
    }

    if (!skip_create) {
        QBroker *broker = NULL;
        QBlockState *qbs = NULL;
        QBlockFmtInfo *fi = NULL;
        QBlockProtInfo loc;
        char num[32];
        bool ok = false;

        snprintf(num, sizeof(num), "%" PRIu64, total);
        all_opts = malloc(strlen("size=") + strlen(num) + 1 + (user_opts ? strlen(user_opts) : 0) + 1);
        if (!all_opts) {
            error_report("out of memory");
            goto out;
        }
        sprintf(all_opts, "size=%s%s%s", num, user_opts ? "," : "", user_opts ? user_opts : "");
        memset(&loc, 0, sizeof(loc));
        loc.prot_type = QB_PROT_FILE;
        loc.prot_op.o_file.filename = dst_name;
        if (qb_broker_new(&broker) < 0) {
            error_report("out of memory");
            goto out;
        }
        if (qb_fmt_info_new(broker, &fi) < 0 || qb_state_new(broker, &qbs) < 0) {
            error_report("%s: %s", dst_name, broker_msg(broker));
        } else {
            fi->fmt_type = qb_str2fmttype(out_fmt);
            if (qb_fmt_info_set_options(broker, fi, all_opts) < 0) {
                error_report("%s: %s", dst_name, broker_msg(broker));
            } else if (qb_create(broker, qbs, &loc, fi, dst_flags) < 0) {
                error_report("%s: error while converting %s: %s", dst_name, out_fmt, broker_msg(broker));
            } else {
                ok = true;
            }
        }
        qb_fmt_info_delete(broker, &fi);
        qb_state_delete(broker, &qbs);
        qb_broker_delete(&broker);
        if (!ok) {
            goto out;
        }
    }

    if (img_open(&dst, dst_name, out_fmt, LIBQBLOCK_O_RDWR | dst_flags) < 0) {
        goto out;
    }
    if (dst.info->virt_size < total) {
        error_report("output file is smaller than input file");
        goto out;
    }
    s.dst = &dst;
    s.sparse = sparse;
    s.zero_init = !skip_create && qb_has_zero_init(dst.broker, dst.qbs) == 1;
    if (compress && dst.info->fmt_type == QB_FMT_QCOW2) {
        s.compress_cluster = dst.info->cluster_size;
        /* Each source starts a cluster of its own only when the ones before fill whole clusters. */
        for (int i = 0; i + 1 < nsrc; i++) {
            if (srcs[i].info->virt_size % s.compress_cluster) {
                error_report("compressed output from several images needs every image but "
                             "the last to be a multiple of the cluster size (%" PRIu64 ")",
                             s.compress_cluster);
                goto out;
            }
        }
    }

    progress_start(&prog, progress);
    for (int i = 0; i < nsrc; i++) {
        /* Several sources are written one after the other into the target. */
        if (convert_one(&s, &srcs[i], base, buf, &prog, &done, total) < 0) {
            goto out;
        }
        base += srcs[i].info->virt_size;
    }
    if (qb_flush(dst.broker, dst.qbs) < 0) {
        error_report("error while flushing '%s': %s", dst_name, broker_msg(dst.broker));
        goto out;
    }
    progress_finish(&prog);
    progress_end(&prog);
    ret = 0;

out:
    if (img_close(&dst) < 0) {
        ret = 1;
    }
    for (int i = 0; i < opened; i++) {
        img_close(&srcs[i]);
    }
    free(srcs);
    free(buf);
    free(s.zeros);
    opts_free(&list);
    free(user_opts);
    free(all_opts);
    return ret;
}

/* ------------------------------------------------------------------ */
/* compare                                                             */

/*
 * The status strict mode compares: qemu-img compares the whole status word
 * of each run, which also says whether the run reaches the end of the
 * image, so a hole that ends an image differs from one that does not.
 */
#define STATUS_MASK (QB_BLOCK_DATA | QB_BLOCK_ZERO | QB_BLOCK_ALLOCATED | QB_BLOCK_OFFSET_VALID)
#define STATUS_EOF  0x10000

static int strict_status(const QBlockStatusInfo *st, uint64_t off, uint64_t size)
{
    return (st->flags & STATUS_MASK) | (off + st->length == size ? STATUS_EOF : 0);
}

/* Reads [off, off+len) of @h into @buf, or fills zeros when the status says so. */
static int compare_read(ImgHandle *h, uint8_t *buf, uint64_t len, uint64_t off, bool zero)
{
    if (zero) {
        memset(buf, 0, len);
        return 0;
    }
    if (qb_read(h->broker, h->qbs, buf, len, off) < 0) {
        error_report("Error while reading offset %" PRIu64 " of %s: %s",
                     off, h->filename, broker_msg(h->broker));
        return -1;
    }
    return 0;
}

/* The offset of the first differing byte, rounded down to its sector, or -1. */
static int64_t first_difference(const uint8_t *a, const uint8_t *b, uint64_t len, uint64_t off)
{
    if (memcmp(a, b, len) == 0) {
        return -1;
    }
    for (uint64_t i = 0; i < len; i++) {
        if (a[i] != b[i]) {
            return (int64_t)((off + i) & ~(uint64_t)(SECTOR - 1));
        }
    }
    return -1;
}

int img_compare(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt1 = NULL, *fmt2 = NULL, *cache = "writeback";
    bool progress = false, quiet = false, strict = false;
    ImgHandle h1, h2;
    uint8_t *buf1 = NULL, *buf2 = NULL;
    uint64_t size1, size2, min_size;
    Progress prog = { false, 0.0 };
    int c, flags, ret = 2;

    memset(&h1, 0, sizeof(h1));
    memset(&h2, 0, sizeof(h2));
    while ((c = getopt_long(argc, argv, ":hf:F:T:pqsU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt1 = optarg; break;
        case 'F': fmt2 = optarg; break;
        case 'T': cache = optarg; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case 's': strict = true; break;
        case 'U': img_force_share = true; break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (quiet) {
        progress = false;
    }
    if (optind != argc - 2) {
        usage_error("Expecting two image file names");
        return 1;
    }
    if ((flags = cache_mode_flags(cache)) < 0) {
        error_report("Invalid source cache option: %s", cache);
        return 2;
    }
    if (img_open(&h1, argv[optind], fmt1, flags) < 0) {
        return 2;
    }
    if (img_open(&h2, argv[optind + 1], fmt2, flags) < 0) {
        goto out;
    }
    buf1 = alloc_io_buffer(IO_CHUNK);
    buf2 = alloc_io_buffer(IO_CHUNK);
    if (!buf1 || !buf2) {
        error_report("out of memory");
        goto out;
    }

    size1 = h1.info->virt_size;
    size2 = h2.info->virt_size;
    min_size = size1 < size2 ? size1 : size2;
    if (size1 != size2) {
        if (strict) {
            if (!quiet) {
                printf("Strict mode: Image size mismatch!\n");
            }
            ret = 1;
            goto out;
        }
    }

    progress_start(&prog, progress);
    for (uint64_t off = 0; off < min_size; ) {
        QBlockStatusInfo st1, st2;
        uint64_t chunk;
        bool zero1, zero2;
        int64_t diff;

        memset(&st1, 0, sizeof(st1));
        memset(&st2, 0, sizeof(st2));
        if (qb_block_status(h1.broker, h1.qbs, off, min_size - off, &st1) < 0 ||
            st1.length == 0 || st1.length > min_size - off) {
            error_report("Sector allocation test failed for %s", h1.filename);
            goto out;
        }
        if (qb_block_status(h2.broker, h2.qbs, off, min_size - off, &st2) < 0 ||
            st2.length == 0 || st2.length > min_size - off) {
            error_report("Sector allocation test failed for %s", h2.filename);
            goto out;
        }
        if (strict && strict_status(&st1, off, size1) != strict_status(&st2, off, size2)) {
            if (!quiet) {
                printf("Strict mode: Offset %" PRIu64 " block status mismatch!\n", off);
            }
            ret = 1;
            goto out;
        }
        chunk = st1.length < st2.length ? st1.length : st2.length;
        zero1 = st1.flags & QB_BLOCK_ZERO;
        zero2 = st2.flags & QB_BLOCK_ZERO;
        if (zero1 && zero2) {
            off += chunk;
            progress_update(&prog, off, size1 > size2 ? size1 : size2);
            continue;
        }
        if (chunk > IO_CHUNK) {
            chunk = IO_CHUNK;
        }
        if (compare_read(&h1, buf1, chunk, off, zero1) < 0 ||
            compare_read(&h2, buf2, chunk, off, zero2) < 0) {
            goto out;
        }
        diff = first_difference(buf1, buf2, chunk, off);
        if (diff >= 0) {
            if (!quiet) {
                printf("Content mismatch at offset %" PRId64 "!\n", diff);
            }
            ret = 1;
            goto out;
        }
        off += chunk;
        progress_update(&prog, off, size1 > size2 ? size1 : size2);
    }

    if (size1 != size2) {
        /*
         * Without -s, the part only the larger image has must read as
         * zeros. The warning comes only now, after the common part
         * compared equal, as qemu-img prints it.
         */
        if (!quiet) {
            printf("Warning: Image size mismatch!\n");
        }
        ImgHandle *big = size1 > size2 ? &h1 : &h2;
        uint64_t big_size = size1 > size2 ? size1 : size2;

        memset(buf2, 0, IO_CHUNK);
        for (uint64_t off = min_size; off < big_size; ) {
            QBlockStatusInfo st;
            uint64_t chunk;
            int64_t diff;

            memset(&st, 0, sizeof(st));
            if (qb_block_status(big->broker, big->qbs, off, big_size - off, &st) < 0 ||
                st.length == 0 || st.length > big_size - off) {
                error_report("Sector allocation test failed for %s", big->filename);
                goto out;
            }
            chunk = st.length;
            if (!(st.flags & QB_BLOCK_ZERO)) {
                if (chunk > IO_CHUNK) {
                    chunk = IO_CHUNK;
                }
                if (compare_read(big, buf1, chunk, off, false) < 0) {
                    goto out;
                }
                diff = first_difference(buf1, buf2, chunk, off);
                if (diff >= 0) {
                    if (!quiet) {
                        printf("Content mismatch at offset %" PRId64 "!\n", diff);
                    }
                    ret = 1;
                    goto out;
                }
            }
            off += chunk;
            progress_update(&prog, off, big_size);
        }
    }

    progress_finish(&prog);
    if (!quiet) {
        printf("Images are identical.\n");
    }
    ret = 0;

out:
    progress_end(&prog);
    free(buf1);
    free(buf2);
    img_close(&h2);
    img_close(&h1);
    return ret;
}
