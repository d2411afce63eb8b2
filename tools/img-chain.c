/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* img-chain.c: the rebase, commit, amend and dd commands, on qb_rebase, qb_commit, qb_amend and qb_read/qb_write. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qblock-img.h"

/* Progress callback of the library calls: draws the -p progress line. */
static int chain_progress(uint64_t done, uint64_t total, void *opaque)
{
    progress_update(opaque, done, total);
    return 0;
}

/* Ends the -p progress line of a call, drawing 100% first when it succeeded. */
static void progress_done(Progress *p, bool ok)
{
    if (ok) {
        progress_finish(p);
    }
    progress_end(p);
}

/* Checks a -t/-T cache mode the way qemu-img does; -1 after reporting it. */
static int check_cache(const char *mode, int *flags)
{
    int f = cache_mode_flags(mode);

    if (f < 0) {
        error_report("Invalid cache option: %s", mode);
        return -1;
    }
    *flags = f;
    return 0;
}

/* ------------------------------------------------------------------ */
/* rebase                                                              */

/* Opens the new backing file as safe mode will, to report what qemu-img reports first. */
static int probe_new_backing(const char *image, const char *backing, const char *fmt)
{
    char *path = path_combine(image, backing);
    ImgHandle h;
    int ret = 0;

    if (!path) {
        error_report("out of memory");
        return -1;
    }
    /* img_open's own message is replaced by qemu-img's wording for this case. */
    memset(&h, 0, sizeof(h));
    if (qb_broker_new(&h.broker) < 0 || qb_state_new(h.broker, &h.qbs) < 0 ||
        qb_prot_info_new(h.broker, &h.loc) < 0) {
        error_report("out of memory");
        ret = -1;
    } else {
        QBlockFmtInfo *fi = NULL;
        h.loc->prot_type = QB_PROT_FILE;
        h.loc->prot_op.o_file.filename = path;
        if (fmt && qb_fmt_info_new(h.broker, &fi) == 0) {
            fi->fmt_type = qb_str2fmttype(fmt);
        }
        if (qb_open(h.broker, h.qbs, h.loc, fi, LIBQBLOCK_O_NO_BACKING) < 0) {
            const char *msg = broker_msg(h.broker);
            /* QEMU's inner message starts with a capital ("Could not open 'x': ..."). */
            error_report("Could not open new backing file '%s': %c%s", backing,
                         msg[0] >= 'a' && msg[0] <= 'z' ? msg[0] - 'a' + 'A' : msg[0], msg + 1);
            ret = -1;
        } else {
            qb_close(h.broker, h.qbs);
        }
        qb_fmt_info_delete(h.broker, &fi);
    }
    qb_prot_info_delete(h.broker, &h.loc);
    qb_state_delete(h.broker, &h.qbs);
    qb_broker_delete(&h.broker);
    free(path);
    return ret;
}

int img_rebase(int argc, char **argv)
{
    enum { OPT_OBJECT = 256, OPT_IMAGE_OPTS };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *backing = NULL, *backing_fmt = NULL, *filename;
    bool unsafe = false, progress = false;
    int c, ret = 1, cache = LIBQBLOCK_O_CACHE_WB, src_cache = 0;
    enum QBlockFmtType bfmt = QB_FMT_NONE;
    QBlockProtInfo loc;
    Progress prog;
    ImgHandle h;

    while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'F': backing_fmt = optarg; break;
        case 'b': backing = optarg; break;
        case 'u': unsafe = true; break;
        case 'p': progress = true; break;
        case 't': if (check_cache(optarg, &cache) < 0) return 1; break;
        case 'T': if (check_cache(optarg, &src_cache) < 0) return 1; break;
        case 'q': progress = false; break;
        case 'U': img_force_share = true; break;
        case OPT_OBJECT: break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (optind != argc - 1) {
        usage_error("Expecting one image file name");
        return 1;
    }
    filename = argv[optind];
    if (!backing) {
        usage_error("Must specify backing file (-b) or use unsafe mode (-u)");
        return 1;
    }
    if (img_force_share) {
        error_report("Could not open '%s': force-share=on can only be used with read-only "
                     "images", filename);
        return 1;
    }
    if (backing_fmt && backing[0]) {
        bfmt = qb_str2fmttype(backing_fmt);
        if (bfmt == QB_FMT_NONE) {
            error_report("Invalid format name: '%s'", backing_fmt);
            return 1;
        }
    }
    if (img_open(&h, filename, fmt, LIBQBLOCK_O_RDWR | cache) < 0) {
        return 1;
    }
    warn_probed_raw(&h);
    /*
     * qemu-img 7.2 refuses to record a backing file without its format; in
     * safe mode it opens the new backing file first, so that error comes
     * first when the file cannot be opened.
     */
    if (backing[0] && !backing_fmt) {
        if (unsafe || probe_new_backing(filename, backing, NULL) == 0) {
            error_report("Could not change the backing file to '%s': backing format must be "
                         "specified", backing);
        }
        goto out;
    }
    /* The library's message for an unopenable backing file is worded differently. */
    if (!unsafe && backing[0] && probe_new_backing(filename, backing, backing_fmt) < 0) {
        goto out;
    }
    file_loc(&loc, backing);
    progress_start(&prog, progress);
    if (qb_rebase(h.broker, h.qbs, &loc, bfmt, unsafe ? QB_REBASE_UNSAFE : 0,
                  progress ? chain_progress : NULL, &prog) < 0) {
        progress_done(&prog, false);
        if (qb_error_get_errno(h.broker) == ENOTSUP) {
            error_report("Could not change the backing file to '%s': Operation not supported",
                         backing);
        } else {
            error_report("%s", broker_msg(h.broker));
        }
        goto out;
    }
    progress_done(&prog, true);
    ret = 0;
out:
    if (img_close(&h) < 0) {
        ret = 1;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* commit                                                              */

int img_commit(int argc, char **argv)
{
    enum { OPT_OBJECT = 256 };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPT_OBJECT },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *base = NULL, *filename;
    bool quiet = false, progress = false, drop = false;
    int c, ret = 1, cache = LIBQBLOCK_O_CACHE_WB;
    QBlockProtInfo loc;
    Progress prog;
    ImgHandle h;

    while ((c = getopt_long(argc, argv, ":f:ht:b:dpqr:", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt = optarg; break;
        case 't': if (check_cache(optarg, &cache) < 0) return 1; break;
        /* -b names a base deeper in the chain; qemu-img then keeps the top image (-d). */
        case 'b': base = optarg; drop = true; break;
        case 'd': drop = true; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case 'r': {
            uint64_t rate;
            /* The copy is not rate-limited; the value is checked as qemu-img checks it. */
            if (parse_size(optarg, &rate) < 0) {
                error_report("Invalid rate limit specified");
                return 1;
            }
            break;
        }
        case OPT_OBJECT: break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (quiet) {
        progress = false;
    }
    if (optind != argc - 1) {
        usage_error("Expecting one image file name");
        return 1;
    }
    filename = argv[optind];
    if (img_open(&h, filename, fmt, LIBQBLOCK_O_RDWR | cache) < 0) {
        return 1;
    }
    warn_probed_raw(&h);
    file_loc(&loc, base);
    progress_start(&prog, progress);
    if (qb_commit(h.broker, h.qbs, base ? &loc : NULL, drop ? QB_COMMIT_KEEP_TOP : 0,
                  progress ? chain_progress : NULL, &prog) < 0) {
        progress_done(&prog, false);
        error_report("%s", broker_msg(h.broker));
        goto out;
    }
    progress_done(&prog, true);
    ret = 0;
out:
    if (img_close(&h) < 0) {
        ret = 1;
    }
    if (ret == 0 && !quiet) {
        printf("Image committed.\n");
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* amend                                                               */

/* What qemu-img amend -o help prints for qcow2 (the options it knows; see qb_amend for ours). */
static void print_amend_help_qcow2(void)
{
    printf("Amend options for 'qcow2':\n"
           "  backing_file=<str>     - File name of a base image\n"
           "  backing_fmt=<str>      - Image format of the base image\n"
           "  compat=<str>           - Compatibility level (v2 [0.10] or v3 [1.1])\n"
           "  data_file=<str>        - File name of an external data file\n"
           "  data_file_raw=<bool (on/off)> - The external data file must stay valid as a raw image\n"
           "  encrypt.iter-time=<num> - Time to spend in PBKDF in milliseconds\n"
           "  encrypt.keyslot=<num>  - Select a single keyslot to modify explicitly\n"
           "  encrypt.new-secret=<str> - New secret to set in the matching keyslots. Empty string to erase\n"
           "  encrypt.old-secret=<str> - Select all keyslots that match this password\n"
           "  encrypt.state=<str>    - Select new state of affected keyslots (active/inactive)\n"
           "  lazy_refcounts=<bool (on/off)> - Postpone refcount updates\n"
           "  refcount_bits=<num>    - Width of a reference count entry in bits\n"
           "  size=<size>            - Virtual disk size\n");
}

int img_amend(int argc, char **argv)
{
    enum { OPT_OBJECT = 256, OPT_FORCE };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "force", no_argument, NULL, OPT_FORCE },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *filename;
    char *options = NULL;
    int c, ret = 1, cache = LIBQBLOCK_O_CACHE_WB;
    OptList list = { NULL, 0 };
    ImgHandle h;

    memset(&h, 0, sizeof(h));
    while ((c = getopt_long(argc, argv, ":ho:f:t:pq", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'o':
            if (append_options(&options, optarg) < 0) {
                error_report("out of memory");
                goto out;
            }
            break;
        case 'f': fmt = optarg; break;
        case 't': if (check_cache(optarg, &cache) < 0) goto out; break;
        case 'p': case 'q': break;   /* the amendments here are quick: no progress to show */
        case OPT_FORCE: case OPT_OBJECT: break;
        default: report_bad_option(argv, c); goto out;
        }
    }
    if (!options) {
        usage_error("Must specify options (-o)");
        goto out;
    }
    if (optind != argc - 1) {
        usage_error("Expecting one image file name");
        goto out;
    }
    filename = argv[optind];
    if (opts_parse(options, &list) < 0) {
        error_report("Invalid options for file format '%s'", fmt ? fmt : "qcow2");
        goto out;
    }
    if (opts_has_help(&list)) {
        /* qemu-img opens the image to learn its format; only qcow2 has amendable options. */
        if (img_open(&h, filename, fmt, LIBQBLOCK_O_CACHE_WB) < 0) {
            goto out;
        }
        if (h.info->fmt_type != QB_FMT_QCOW2) {
            error_report("Format driver '%s' does not support option amendment",
                         qb_fmttype2str(h.info->fmt_type));
            goto out;
        }
        print_amend_help_qcow2();
        ret = 0;
        goto out;
    }
    if (img_open(&h, filename, fmt, LIBQBLOCK_O_RDWR | cache) < 0) {
        goto out;
    }
    warn_probed_raw(&h);
    if (qb_amend(h.broker, h.qbs, options) < 0) {
        error_report("%s", broker_msg(h.broker));
        if (strcmp(broker_msg(h.broker), "Cannot amend the backing file") == 0) {
            fprintf(stderr, "You can use '%s rebase' instead.\n", TOOL_NAME);
        }
        goto out;
    }
    ret = 0;
out:
    if (h.opened && img_close(&h) < 0) {
        ret = 1;
    }
    opts_free(&list);
    free(options);
    return ret;
}

/* ------------------------------------------------------------------ */
/* dd                                                                  */

/* One of dd's numeric operands: a size with qemu-img's suffixes. */
static int dd_number(const char *what, const char *val, uint64_t *out)
{
    if (parse_size(val, out) < 0 || *out > IMG_SIZE_MAX) {
        error_report("Invalid %s specified. You may use k, M, G, T, P or E suffixes for", what);
        error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
        return -1;
    }
    return 0;
}

/* Creates @filename as @fmt of @size bytes and opens it read-write; -1 after reporting. */
static int dd_create_output(ImgHandle *out, const char *filename, const char *fmt, uint64_t size)
{
    QBroker *broker = NULL;
    QBlockState *qbs = NULL;
    QBlockFmtInfo *fi = NULL;
    QBlockProtInfo loc;
    char opts[64];
    int ret = -1;

    if (qb_broker_new(&broker) < 0 || qb_state_new(broker, &qbs) < 0 ||
        qb_fmt_info_new(broker, &fi) < 0) {
        error_report("out of memory");
        goto done;
    }
    fi->fmt_type = qb_str2fmttype(fmt);
    snprintf(opts, sizeof(opts), "size=%" PRIu64, size);
    if (fi->fmt_type == QB_FMT_NONE) {
        error_report("Unknown file format '%s'", fmt);
        goto done;
    }
    file_loc(&loc, filename);
    if (qb_fmt_info_set_options(broker, fi, opts) < 0 ||
        qb_create(broker, qbs, &loc, fi, LIBQBLOCK_O_CACHE_WB) < 0) {
        error_report("%s: error while creating output image: %s", filename, broker_msg(broker));
        goto done;
    }
    ret = img_open(out, filename, fmt, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
done:
    qb_fmt_info_delete(broker, &fi);
    qb_state_delete(broker, &qbs);
    qb_broker_delete(&broker);
    return ret;
}

int img_dd(int argc, char **argv)
{
    enum { OPT_IMAGE_OPTS = 256 };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *out_fmt = "raw", *in_name = NULL, *out_name = NULL;
    uint64_t bs = 512, count = 0, skip = 0, size, in_pos, out_pos;
    bool have_count = false, have_skip = false;
    uint8_t *buf = NULL;
    ImgHandle in, out;
    int c, ret = 1;

    memset(&in, 0, sizeof(in));
    memset(&out, 0, sizeof(out));
    while ((c = getopt_long(argc, argv, ":hf:O:U", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'U': img_force_share = true; break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    for (int i = optind; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '=');
        size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);

        if (eq && klen == 2 && strncmp(arg, "if", 2) == 0) {
            in_name = eq + 1;
        } else if (eq && klen == 2 && strncmp(arg, "of", 2) == 0) {
            out_name = eq + 1;
        } else if (eq && klen == 2 && strncmp(arg, "bs", 2) == 0) {
            if (parse_size(eq + 1, &bs) < 0 || bs == 0 || bs > INT32_MAX) {
                error_report("Invalid bs specified. Must be between 1 and %d.", INT32_MAX);
                return 1;
            }
        } else if (eq && klen == 5 && strncmp(arg, "count", 5) == 0) {
            if (dd_number("count", eq + 1, &count) < 0) {
                return 1;
            }
            have_count = true;
        } else if (eq && klen == 4 && strncmp(arg, "skip", 4) == 0) {
            if (dd_number("skip", eq + 1, &skip) < 0) {
                return 1;
            }
            have_skip = true;
        } else {
            error_report("unrecognized operand %.*s", (int)klen, arg);
            return 1;
        }
    }
    if (!in_name || !out_name) {
        error_report("Must specify both input and output files");
        return 1;
    }
    if (img_open(&in, in_name, fmt, LIBQBLOCK_O_CACHE_WB) < 0) {
        return 1;
    }
    /*
     * The range copied is qemu-img 7.2's, on purpose: count ends the input
     * at count*bs bytes from its start, and skip then starts inside that
     * range, so "skip=2 count=3" copies one block where dd(1) copies three.
     */
    size = in.info->virt_size;
    if (have_count && count <= IMG_SIZE_MAX / bs && size > count * bs) {
        size = count * bs;
    }
    if (have_skip && (skip > IMG_SIZE_MAX / bs || size < skip * bs)) {
        /* qemu-img reports this, then creates an empty image and succeeds. */
        error_report("%s: cannot skip to specified offset", in_name);
        in_pos = size;
    } else {
        in_pos = have_skip ? skip * bs : 0;
    }
    if (dd_create_output(&out, out_name, out_fmt, size - in_pos) < 0) {
        goto done;
    }
    buf = alloc_io_buffer(bs);
    if (!buf) {
        error_report("out of memory");
        goto done;
    }
    for (out_pos = 0; in_pos < size; ) {
        uint64_t n = size - in_pos < bs ? size - in_pos : bs;

        if (qb_read(in.broker, in.qbs, buf, n, in_pos) < 0) {
            error_report("error while reading from input image file: %s", broker_msg(in.broker));
            goto done;
        }
        if (qb_write(out.broker, out.qbs, buf, n, out_pos) < 0) {
            error_report("error while writing to output image file: %s",
                         broker_msg(out.broker));
            goto done;
        }
        in_pos += n;
        out_pos += n;
    }
    ret = 0;
done:
    free(buf);
    if (out.opened && img_close(&out) < 0) {
        ret = 1;
    }
    if (in.opened && img_close(&in) < 0) {
        ret = 1;
    }
    return ret;
}
