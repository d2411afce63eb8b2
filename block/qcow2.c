/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qcow2.c: the qcow2 format driver (versions 2 and 3): probing, header and
 * extension parsing with QEMU 7.2's limits, open/close, create, reads,
 * the driver entry points and the BlockDriver table. Mapping, refcounts,
 * caches, checks and snapshots live in the qcow2-*.c files.
 *
 * Metadata write order. Every rule below is kept by the code named after
 * it; together they make a crash between any two writes leave, at worst,
 * clusters whose refcount is higher than their references (leaks, which
 * `qemu-img check -r leaks` reclaims), never an entry that names a cluster
 * whose refcount does not count it.
 *
 *  1. A refcount increase is on disk, and flushed, before any table (L1,
 *     L2, refcount table, header field) that names the counted cluster is
 *     written: qcow2_refcounts_sync() runs before every L2 table write-back
 *     (qcow2-cache.c), before a new L2 table is linked into the L1 table,
 *     before a new L1 table or refcount table is written. A new refcount
 *     block is written, with its own count, before the refcount table
 *     entry naming it (alloc_refcount_block). A crash in between leaves a
 *     counted but unreferenced cluster: a leak.
 *  2. Dirty L2 tables are written only after the refcount blocks they
 *     depend on (rule 1, enforced in the L2 cache's write-back).
 *  3. A new or copied L2 table is on disk and flushed before the L1 entry
 *     that names it; a new L1 table or refcount table is on disk and
 *     flushed before the header fields that name it (one write of 12
 *     adjacent bytes, so the switch is atomic at sector level). A crash in
 *     between leaves the old table in use and the new one leaked.
 *  4. A refcount decrease happens only after the L2/L1 entry that named
 *     the cluster has been rewritten and flushed: frees are queued
 *     (qcow2_free_clusters_later) and applied by qcow2_process_frees after
 *     qcow2_l2_sync(). A freed cluster can therefore never be reused while
 *     an on-disk table still names it. A crash before the decrease leaves
 *     a leak.
 *  5. Guest data is written to a newly allocated cluster before the L2
 *     entry naming it is updated in the cache; the entry reaches the disk
 *     later, at write-back or flush. A crash before the flush may lose the
 *     write (allowed: it was not flushed) but never exposes another
 *     cluster's data.
 *  6. qcow2_flush_all() writes back in dependency order: refcount blocks,
 *     flush, L2 tables, flush, then queued frees (refcount blocks again).
 *     bdrv_flush() of bs->file follows in the generic layer.
 *  7. With lazy refcounts (compatible bit 0) the dirty bit is set and
 *     flushed before the first metadata change of a session; while it is
 *     set the flushes of rule 1 are skipped, since an image found dirty is
 *     rebuilt from its tables on the next read-write open. The bit is
 *     cleared only after a full flush at close.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef CONFIG_ZSTD
#include <zstd.h>
#endif

#include "qcow2.h"

#define L2_CACHE_BYTES        (1u << 20)   /* QEMU-like default: 1 MiB of L2 tables */
#define L2_CACHE_MIN_TABLES   4
#define REFBLOCK_CACHE_BYTES  (256u << 10)
#define REFBLOCK_CACHE_MIN    4

/* The feature-name table QEMU 7.2 writes into v3 headers. */
static const struct {
    uint8_t type;
    uint8_t bit;
    const char *name;
} qcow2_feature_names[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};

void qcow2_feature_table(uint8_t *table)
{
    memset(table, 0, QCOW2_FEATURE_TABLE_SIZE);
    for (size_t i = 0; i < ARRAY_SIZE(qcow2_feature_names); i++) {
        table[48 * i] = qcow2_feature_names[i].type;
        table[48 * i + 1] = qcow2_feature_names[i].bit;
        memcpy(table + 48 * i + 2, qcow2_feature_names[i].name,
               strlen(qcow2_feature_names[i].name));
    }
}

/* ------------------------------------------------------------------ */
/* Probe                                                               */

static int qcow2_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    (void)filename;
    if (buf_size >= 8 && be32_load(buf) == QCOW2_MAGIC && be32_load(buf + 4) >= 2) {
        return 100;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Corruption, dirty bit                                               */

int qcow2_signal_corruption(BlockDriverState *bs, const char *fmt, ...)
{
    BDRVQcow2State *s = bs->opaque;
    va_list ap;
    char msg[512];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    (void)msg;   /* formatted for a debugger; the data path has no error object to carry it */

    if (s->in_check) {
        return -EIO;
    }
    if (!s->read_only && !s->corrupt && s->qcow_version >= 3) {
        uint8_t v[8];
        s->incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
        be64_store(v, s->incompatible_features);
        /* Best effort: the image is already bad; the session refuses writes either way. */
        qcow2_write_header_field(bs, 72, v, 8);
    }
    s->corrupt = true;
    return -EIO;
}

int qcow2_mark_dirty(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t v[8];
    int ret;

    if (!s->lazy_refcounts || s->dirty_set || s->in_check) {
        return 0;
    }
    ret = bdrv_flush(bs->file);
    if (ret < 0) {
        return ret;
    }
    be64_store(v, s->incompatible_features | QCOW2_INCOMPAT_DIRTY);
    ret = qcow2_write_header_field(bs, 72, v, 8);
    if (ret < 0) {
        return ret;
    }
    s->incompatible_features |= QCOW2_INCOMPAT_DIRTY;
    s->dirty_set = true;
    return 0;
}

/* Clear the dirty bit after everything is on disk (rule 7). */
int qcow2_mark_clean(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t v[8];
    int ret;

    if (!(s->incompatible_features & QCOW2_INCOMPAT_DIRTY) || s->read_only) {
        return 0;
    }
    s->dirty_set = false;   /* the barriers of rule 1 apply again from here */
    ret = qcow2_flush_all(bs);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    be64_store(v, s->incompatible_features & ~QCOW2_INCOMPAT_DIRTY);
    ret = qcow2_write_header_field(bs, 72, v, 8);
    if (ret < 0) {
        return ret;
    }
    s->incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Header                                                              */

/* The bytes of header extension @type as read, or NULL. */
static const Qcow2HeaderExt *find_ext(const BDRVQcow2State *s, uint32_t type)
{
    for (int i = 0; i < s->nb_exts; i++) {
        if (s->exts[i].type == type) {
            return &s->exts[i];
        }
    }
    return NULL;
}

static void free_exts(BDRVQcow2State *s)
{
    for (int i = 0; i < s->nb_exts; i++) {
        free(s->exts[i].data);
    }
    free(s->exts);
    s->exts = NULL;
    s->nb_exts = 0;
}

/*
 * Read every header extension in [start, end) of @hdr (cluster 0) into
 * s->exts, checking each against the area it must fit in.
 */
static int read_extensions(BlockDriverState *bs, const uint8_t *hdr, uint64_t start,
                           uint64_t end, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = start;

    while (off < end) {
        uint32_t type, len;
        Qcow2HeaderExt *ne;

        if (end - off < 8) {
            return bdrv_error_set(err, -EBADIMAGE, "image '%s': header extension at 0x%llx "
                                  "is cut off by the end of the extension area",
                                  bs->filename, (unsigned long long)off);
        }
        type = be32_load(hdr + off);
        len = be32_load(hdr + off + 4);
        off += 8;
        if (type == QCOW2_EXT_END) {
            return 0;
        }
        if (len > end - off) {
            return bdrv_error_set(err, -EBADIMAGE, "image '%s': header extension 0x%08x "
                                  "(%u bytes) is larger than the extension area",
                                  bs->filename, type, len);
        }
        if (s->nb_exts >= 1024) {
            return bdrv_error_set(err, -EBADIMAGE, "image '%s': too many header extensions",
                                  bs->filename);
        }
        ne = realloc(s->exts, sizeof(*ne) * (size_t)(s->nb_exts + 1));
        if (!ne) {
            return bdrv_error_set(err, -ENOMEM, "out of memory");
        }
        s->exts = ne;
        ne = &s->exts[s->nb_exts];
        ne->type = type;
        ne->len = len;
        ne->data = malloc(len ? len : 1);
        if (!ne->data) {
            return bdrv_error_set(err, -ENOMEM, "out of memory");
        }
        memcpy(ne->data, hdr + off, len);
        s->nb_exts++;
        off += ROUND_UP((uint64_t)len, 8);
    }
    return 0;
}

/* "Unknown incompatible feature: N" or the name the image's feature table gives bit N. */
static void describe_incompat(const BDRVQcow2State *s, uint64_t bits, char *buf, size_t sz)
{
    const Qcow2HeaderExt *ft = find_ext(s, QCOW2_EXT_FEATURE_TABLE);
    size_t used = 0;

    buf[0] = '\0';
    for (int bit = 0; bit < 64; bit++) {
        const char *name = NULL;
        char nbuf[47];

        if (!(bits & (1ull << bit))) {
            continue;
        }
        for (uint32_t i = 0; ft && i + 48 <= ft->len; i += 48) {
            if (ft->data[i] == 0 && ft->data[i + 1] == bit) {
                memcpy(nbuf, ft->data + i + 2, 46);
                nbuf[46] = '\0';
                name = nbuf;
                break;
            }
        }
        if (used < sz) {
            int n = name ? snprintf(buf + used, sz - used, "%s%s", used ? ", " : "", name)
                         : snprintf(buf + used, sz - used, "%sUnknown incompatible feature: %d",
                                    used ? ", " : "", bit);
            if (n > 0) {
                used += (size_t)n;
            }
        }
    }
}

/* Check that a table of @entries entries of @esize bytes at @offset can exist. */
static int validate_table(BlockDriverState *bs, uint64_t offset, uint64_t entries,
                          uint64_t esize, uint64_t max_bytes, const char *what, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t bytes, end;

    if (entries > max_bytes / esize) {
        /* The refcount table is counted in clusters, the others in entries. */
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': %s too large (%llu %s of %llu "
                              "bytes, the limit is %llu bytes)", bs->filename, what,
                              (unsigned long long)entries, esize > 40 ? "clusters" : "entries",
                              (unsigned long long)esize, (unsigned long long)max_bytes);
    }
    bytes = entries * esize;
    if (qcow2_offset_into_cluster(s, offset) || ADD_OVERFLOW(offset, bytes, &end) ||
        end > (uint64_t)INT64_MAX) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': %s offset 0x%llx invalid "
                              "(not cluster-aligned or out of range)", bs->filename, what,
                              (unsigned long long)offset);
    }
    return 0;
}

int qcow2_update_header(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t cs = s->cluster_size;
    uint8_t *buf;
    uint64_t off, backing_off = 0, backing_len = 0;
    int ret;

    buf = calloc(1, cs);
    if (!buf) {
        return -ENOMEM;
    }
    be32_store(buf, QCOW2_MAGIC);
    be32_store(buf + 4, (uint32_t)s->qcow_version);
    be32_store(buf + 20, (uint32_t)s->cluster_bits);
    be64_store(buf + 24, s->size);
    be32_store(buf + 36, s->l1_size);
    be64_store(buf + 40, s->l1_table_offset);
    be64_store(buf + 48, s->refcount_table_offset);
    be32_store(buf + 56, s->refcount_table_clusters);
    be32_store(buf + 60, s->nb_snapshots);
    be64_store(buf + 64, s->snapshots_offset);
    if (s->qcow_version >= 3) {
        be64_store(buf + 72, s->incompatible_features);
        be64_store(buf + 80, s->compatible_features);
        be64_store(buf + 88, s->autoclear_features);
        be32_store(buf + 96, (uint32_t)s->refcount_order);
        be32_store(buf + 100, s->header_length);
        if (s->header_length > QCOW2_V3_HEADER_MIN && s->header_tail) {
            /* Fields this driver does not know (and the compression type) stay as read. */
            memcpy(buf + QCOW2_V3_HEADER_MIN, s->header_tail,
                   s->header_length - QCOW2_V3_HEADER_MIN);
        }
    }
    off = s->header_length;
    for (int i = 0; i < s->nb_exts; i++) {
        uint64_t need = 8 + ROUND_UP((uint64_t)s->exts[i].len, 8);
        if (off + need + 8 > cs) {
            ret = -ENOSPC;
            goto out;
        }
        be32_store(buf + off, s->exts[i].type);
        be32_store(buf + off + 4, s->exts[i].len);
        memcpy(buf + off + 8, s->exts[i].data, s->exts[i].len);
        off += need;
    }
    off += 8;   /* the end marker, already zero */
    /*
     * The backing file name is bs->backing_file: open copied it from the
     * header exactly (it holds no NUL byte), and a rebase changes it there
     * before rewriting the header.
     */
    if (bs->backing_file[0]) {
        backing_len = strlen(bs->backing_file);
        if (backing_len > QCOW2_MAX_BACKING_NAME || off + backing_len > cs) {
            ret = -ENOSPC;
            goto out;
        }
        memcpy(buf + off, bs->backing_file, backing_len);
        backing_off = off;
    }
    be64_store(buf + 8, backing_off);
    be32_store(buf + 16, (uint32_t)backing_len);
    ret = bdrv_pwrite(bs->file, 0, buf, cs);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
out:
    free(buf);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Open                                                                */

static void qcow2_free_state(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    qcow2_cache_destroy(s->l2_cache);
    qcow2_cache_destroy(s->refblock_cache);
    s->l2_cache = s->refblock_cache = NULL;
    qcow2_refcount_close(bs);
    qcow2_free_snapshots(bs);
    free(s->l1_table);
    s->l1_table = NULL;
    free(s->header_tail);
    s->header_tail = NULL;
    free_exts(s);
    free(s->cbuf);
    free(s->dbuf);
    s->cbuf = s->dbuf = NULL;
#ifdef CONFIG_ZSTD
    if (s->zstd_dctx) {
        ZSTD_freeDCtx(s->zstd_dctx);
    }
#endif
    s->zstd_dctx = NULL;
    qcow2_compress_close(s);
}

/* Parse and validate the bitmaps extension (the directory itself is read by check). */
static int parse_bitmaps_ext(BlockDriverState *bs, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2HeaderExt *e = find_ext(s, QCOW2_EXT_BITMAPS);
    uint32_t nb;
    uint64_t dsize, doff;

    if (!e) {
        return 0;
    }
    if (e->len != 24) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': bitmaps extension has length %u, "
                              "not 24", bs->filename, e->len);
    }
    nb = be32_load(e->data);
    dsize = be64_load(e->data + 8);
    doff = be64_load(e->data + 16);
    if (!(s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        /* Marked inconsistent by a program without bitmap support: ignored, as QEMU does. */
        return 0;
    }
    if (nb == 0) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': bitmaps extension with 0 bitmaps",
                              bs->filename);
    }
    if (nb > QCOW2_MAX_BITMAPS) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': %u bitmaps exceed the limit of "
                              "%u", bs->filename, nb, QCOW2_MAX_BITMAPS);
    }
    if (be32_load(e->data + 4) != 0) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': bitmaps extension reserved field "
                              "is not zero", bs->filename);
    }
    if (dsize > QCOW2_MAX_BITMAP_DIR_SIZE) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': bitmap directory size %llu "
                              "exceeds the limit of %llu bytes", bs->filename,
                              (unsigned long long)dsize,
                              (unsigned long long)QCOW2_MAX_BITMAP_DIR_SIZE);
    }
    if (qcow2_offset_into_cluster(s, doff) || doff == 0 || doff + dsize < doff ||
        doff + dsize > (uint64_t)INT64_MAX) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': invalid bitmap directory offset "
                              "0x%llx", bs->filename, (unsigned long long)doff);
    }
    s->nb_bitmaps = nb;
    s->bitmap_dir_size = dsize;
    s->bitmap_dir_offset = doff;
    return 0;
}

static int qcow2_do_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    const char *fn = bs->filename;
    uint8_t *hdr = NULL;
    uint8_t first[QCOW2_V3_HEADER_MIN];
    uint64_t backing_off, ext_end, l1_min, file_len;
    uint32_t backing_len, crypt, cs;
    int64_t flen;
    int ret;

    s->read_only = !(flags & BDRV_O_RDWR);
    flen = bdrv_getlength(bs->file);
    if (flen < 0) {
        return bdrv_error_set(err, (int)flen, "could not get the size of '%s': %s", fn,
                              strerror((int)-flen));
    }
    file_len = (uint64_t)flen;
    memset(first, 0, sizeof(first));
    if (file_len < QCOW2_V2_HEADER_SIZE) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': file is too short (%llu bytes) "
                              "for a qcow2 header", fn, (unsigned long long)file_len);
    }
    ret = bdrv_pread(bs->file, 0, first, sizeof(first));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "could not read the header of '%s': %s", fn,
                              strerror(-ret));
    }
    if (be32_load(first) != QCOW2_MAGIC) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s' is not in qcow2 format (bad magic)",
                              fn);
    }
    s->qcow_version = (int)be32_load(first + 4);
    if (s->qcow_version < 2 || s->qcow_version > 3) {
        return bdrv_error_set(err, -ENOTSUP, "image '%s': unsupported qcow2 version %u", fn,
                              be32_load(first + 4));
    }
    s->cluster_bits = (int)be32_load(first + 20);
    if (be32_load(first + 20) < QCOW2_MIN_CLUSTER_BITS ||
        be32_load(first + 20) > QCOW2_MAX_CLUSTER_BITS) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': unsupported cluster size 2^%u "
                              "(cluster_bits must be 9..21)", fn, be32_load(first + 20));
    }
    cs = s->cluster_size = 1u << s->cluster_bits;

    if (s->qcow_version == 2) {
        s->incompatible_features = s->compatible_features = s->autoclear_features = 0;
        s->refcount_order = 4;
        s->header_length = QCOW2_V2_HEADER_SIZE;
    } else {
        s->incompatible_features = be64_load(first + 72);
        s->compatible_features = be64_load(first + 80);
        s->autoclear_features = be64_load(first + 88);
        s->refcount_order = (int)MIN(be32_load(first + 96), 64u);
        s->header_length = be32_load(first + 100);
        if (s->header_length < QCOW2_V3_HEADER_MIN) {
            return bdrv_error_set(err, -EBADIMAGE, "image '%s': qcow2 header too short "
                                  "(header_length %u, at least 104 needed)", fn,
                                  s->header_length);
        }
    }
    if (s->header_length > cs) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': header_length %u exceeds the "
                              "cluster size %u", fn, s->header_length, cs);
    }

    /* Cluster 0 holds the header, the extensions and the backing file name. */
    hdr = calloc(1, cs);
    if (!hdr) {
        return bdrv_error_set(err, -ENOMEM, "out of memory opening '%s'", fn);
    }
    ret = bdrv_pread(bs->file, 0, hdr, cs);
    if (ret < 0) {
        bdrv_error_set(err, ret, "could not read the header of '%s': %s", fn, strerror(-ret));
        goto fail;
    }
    if (s->header_length > QCOW2_V3_HEADER_MIN) {
        s->header_tail = malloc(s->header_length - QCOW2_V3_HEADER_MIN);
        if (!s->header_tail) {
            ret = bdrv_error_set(err, -ENOMEM, "out of memory opening '%s'", fn);
            goto fail;
        }
        memcpy(s->header_tail, hdr + QCOW2_V3_HEADER_MIN,
               s->header_length - QCOW2_V3_HEADER_MIN);
    }
    backing_off = be64_load(hdr + 8);
    backing_len = be32_load(hdr + 16);
    if (backing_off > cs) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': invalid backing file offset 0x%llx "
                             "(beyond the first cluster)", fn, (unsigned long long)backing_off);
        goto fail;
    }
    ext_end = backing_off ? backing_off : cs;

    /* Compression type (v3 with a header long enough to hold it). */
    s->compression_type = QCOW2_COMPRESSION_ZLIB;
    if (s->header_length > QCOW2_V3_HEADER_MIN) {
        s->compression_type = hdr[104];
    }
    if (s->compression_type > QCOW2_COMPRESSION_ZSTD) {
        ret = bdrv_error_set(err, -ENOTSUP, "image '%s': unknown compression type %u", fn,
                             s->compression_type);
        goto fail;
    }
    if ((s->compression_type != QCOW2_COMPRESSION_ZLIB) !=
        !!(s->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': the compression type field (%u) "
                             "and incompatible feature bit 3 disagree", fn,
                             s->compression_type);
        goto fail;
    }

    ret = read_extensions(bs, hdr, s->qcow_version == 2 ? QCOW2_V2_HEADER_SIZE
                                                        : s->header_length, ext_end, err);
    if (ret < 0) {
        goto fail;
    }

    if (s->incompatible_features & ~QCOW2_INCOMPAT_SUPPORTED & ~QCOW2_INCOMPAT_DATA_FILE) {
        char desc[512];
        describe_incompat(s, s->incompatible_features & ~QCOW2_INCOMPAT_SUPPORTED &
                          ~QCOW2_INCOMPAT_DATA_FILE, desc, sizeof(desc));
        ret = bdrv_error_set(err, -ENOTSUP, "image '%s': unsupported qcow2 feature(s): %s",
                             fn, desc);
        goto fail;
    }
    if (s->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) {
        ret = bdrv_error_set(err, -ENOTSUP, "image '%s': external data files are not "
                             "supported", fn);
        goto fail;
    }
    if ((s->incompatible_features & QCOW2_INCOMPAT_CORRUPT) && !s->read_only) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s' is marked corrupt; it can only be "
                             "opened read-only (repair it with a check first)", fn);
        goto fail;
    }
    if (s->refcount_order > 6) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': refcount width 2^%d is too large; "
                             "it may not exceed 64 bits", fn, s->refcount_order);
        goto fail;
    }
    crypt = be32_load(hdr + 32);
    if (crypt > 2) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': unsupported encryption method %u",
                             fn, crypt);
        goto fail;
    }
    if (crypt != 0) {
        bs->encrypted = true;
        ret = bdrv_error_set(err, -ENOTSUP, "image '%s': encrypted qcow2 images are not "
                             "supported", fn);
        goto fail;
    }
    s->extended_l2 = (s->incompatible_features & QCOW2_INCOMPAT_EXTL2) != 0;
    if (s->extended_l2 && s->cluster_bits < 14) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': extended L2 entries need clusters "
                             "of at least 16 KiB (cluster size is %u)", fn, cs);
        goto fail;
    }
#ifndef CONFIG_ZSTD
    /* Without libzstd only reading a compressed cluster fails (-ENOTSUP there). */
#endif

    /* Derived geometry. */
    s->l2_entry_bytes = s->extended_l2 ? 16 : 8;
    s->l2_size = cs / (uint32_t)s->l2_entry_bytes;
    s->l2_bits = s->cluster_bits - (s->extended_l2 ? 4 : 3);
    s->subclusters_per_cluster = s->extended_l2 ? QCOW2_SUBCLUSTERS : 1;
    s->subcluster_bits = s->cluster_bits - (s->extended_l2 ? 5 : 0);
    s->subcluster_size = 1u << s->subcluster_bits;
    s->refcount_bits = 1 << s->refcount_order;
    s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX : (1ull << s->refcount_bits) - 1;
    s->refcount_block_bits = s->cluster_bits + 3 - s->refcount_order;
    s->refcount_block_size = 1u << s->refcount_block_bits;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
    s->cluster_offset_mask = (1ull << s->csize_shift) - 1;

    s->size = be64_load(hdr + 24);
    l1_min = qcow2_size_to_l1(s, s->size);
    if (s->size > (uint64_t)INT64_MAX || l1_min > (uint64_t)INT32_MAX / 8) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': virtual size %llu is too big for "
                             "the cluster size", fn, (unsigned long long)s->size);
        goto fail;
    }

    s->refcount_table_offset = be64_load(hdr + 48);
    s->refcount_table_clusters = be32_load(hdr + 56);
    if (s->refcount_table_clusters == 0) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s' does not contain a reference count "
                             "table (refcount_table_clusters is 0)", fn);
        goto fail;
    }
    ret = validate_table(bs, s->refcount_table_offset, s->refcount_table_clusters, cs,
                         QCOW2_MAX_REFTABLE_SIZE, "reference count table", err);
    if (ret < 0) {
        goto fail;
    }

    s->nb_snapshots = be32_load(hdr + 60);
    s->snapshots_offset = be64_load(hdr + 64);
    if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': snapshot table too large (%u "
                             "snapshots, the limit is %u)", fn, s->nb_snapshots,
                             QCOW2_MAX_SNAPSHOTS);
        goto fail;
    }
    if (s->nb_snapshots) {
        ret = validate_table(bs, s->snapshots_offset, s->nb_snapshots, 40,
                             40ull * QCOW2_MAX_SNAPSHOTS, "snapshot table", err);
        if (ret < 0) {
            goto fail;
        }
    }

    s->l1_size = be32_load(hdr + 36);
    s->l1_table_offset = be64_load(hdr + 40);
    if (s->l1_size > QCOW2_MAX_L1_SIZE / 8) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': active L1 table too large (%u "
                             "entries, the limit is %u)", fn, s->l1_size,
                             QCOW2_MAX_L1_SIZE / 8);
        goto fail;
    }
    if (s->l1_size < l1_min) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': L1 table is too small (%u entries "
                             "for a virtual size that needs %llu)", fn, s->l1_size,
                             (unsigned long long)l1_min);
        goto fail;
    }
    if (s->l1_size) {
        ret = validate_table(bs, s->l1_table_offset, s->l1_size, 8, QCOW2_MAX_L1_SIZE,
                             "active L1 table", err);
        if (ret < 0) {
            goto fail;
        }
    }
    ret = bdrv_policy_charge_metadata(bs, (uint64_t)s->l1_size * 8, "active L1 table", err);
    if (ret < 0) {
        goto fail;
    }
    s->l1_alloc = s->l1_size;
    s->l1_table = calloc(s->l1_size ? s->l1_size : 1, 8);
    if (!s->l1_table) {
        ret = bdrv_error_set(err, -ENOMEM, "out of memory for the L1 table of '%s'", fn);
        goto fail;
    }
    if (s->l1_size) {
        uint8_t *raw = malloc((size_t)s->l1_size * 8);
        if (!raw) {
            ret = bdrv_error_set(err, -ENOMEM, "out of memory for the L1 table of '%s'", fn);
            goto fail;
        }
        ret = bdrv_pread(bs->file, s->l1_table_offset, raw, (size_t)s->l1_size * 8);
        if (ret < 0) {
            free(raw);
            bdrv_error_set(err, ret, "could not read the L1 table of '%s': %s", fn,
                           strerror(-ret));
            goto fail;
        }
        for (uint32_t i = 0; i < s->l1_size; i++) {
            s->l1_table[i] = be64_load(raw + 8 * (size_t)i);
        }
        free(raw);
    }

    ret = qcow2_refcount_init(bs, err);
    if (ret < 0) {
        goto fail;
    }

    /* Known extensions. */
    {
        const Qcow2HeaderExt *e = find_ext(s, QCOW2_EXT_BACKING_FORMAT);
        if (e) {
            if (e->len >= 16 || e->len >= sizeof(bs->backing_format)) {
                ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': backing format name of %u "
                                     "bytes is too long (at most 15)", fn, e->len);
                goto fail;
            }
            memcpy(bs->backing_format, e->data, e->len);
            bs->backing_format[e->len] = '\0';
        }
        if (find_ext(s, QCOW2_EXT_FEATURE_TABLE) &&
            find_ext(s, QCOW2_EXT_FEATURE_TABLE)->len % 48) {
            /* QEMU only reads whole entries; the rest is ignored, so do the same. */
        }
    }
    ret = parse_bitmaps_ext(bs, err);
    if (ret < 0) {
        goto fail;
    }

    if (backing_off) {
        uint64_t max = MIN((uint64_t)QCOW2_MAX_BACKING_NAME, cs - backing_off);
        if (backing_len > max) {
            ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': backing file name too long "
                                 "(%u bytes)", fn, backing_len);
            goto fail;
        }
        memcpy(bs->backing_file, hdr + backing_off, backing_len);
        bs->backing_file[backing_len] = '\0';
        if (strlen(bs->backing_file) != backing_len) {
            ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': backing file name contains a "
                                 "NUL byte", fn);
            goto fail;
        }
    }

    ret = qcow2_read_snapshots(bs, err);
    if (ret < 0) {
        goto fail;
    }

    /* Caches, sized as QEMU sizes them by default. */
    {
        uint64_t table_span = (uint64_t)s->l2_size << s->cluster_bits;
        uint64_t need = DIV_ROUND_UP(MIN(s->size, 8ull << 30), table_span);
        uint64_t max_tables = MAX(L2_CACHE_MIN_TABLES, L2_CACHE_BYTES / cs);
        int l2n = (int)MAX((uint64_t)L2_CACHE_MIN_TABLES, MIN(need + 1, max_tables));
        int rbn = (int)MAX((uint64_t)REFBLOCK_CACHE_MIN, REFBLOCK_CACHE_BYTES / cs);

        ret = bdrv_policy_charge_metadata(bs, (uint64_t)(l2n + rbn) * cs, "metadata cache", err);
        if (ret < 0) {
            goto fail;
        }
        s->l2_cache = qcow2_cache_create(l2n, cs);
        s->refblock_cache = qcow2_cache_create(rbn, cs);
        s->cbuf = malloc(2 * (size_t)cs);
        s->dbuf = malloc(cs);
        if (!s->l2_cache || !s->refblock_cache || !s->cbuf || !s->dbuf) {
            ret = bdrv_error_set(err, -ENOMEM, "out of memory for the caches of '%s'", fn);
            goto fail;
        }
    }

    bs->total_sectors = (int64_t)DIV_ROUND_UP(s->size, BDRV_SECTOR_SIZE);
    s->lazy_refcounts = !s->read_only && s->qcow_version >= 3 &&
                        (s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS);

    if (!s->read_only) {
        /* Autoclear bits this driver does not maintain are cleared before any write. */
        if (s->qcow_version >= 3 && s->autoclear_features) {
            s->autoclear_features = 0;
            ret = qcow2_update_header(bs);
            if (ret < 0) {
                bdrv_error_set(err, ret, "image '%s': could not clear the autoclear feature "
                               "bits: %s", fn, strerror(-ret));
                goto fail;
            }
        }
        /* A dirty image has refcounts that may lag behind: rebuild them now. */
        if (s->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
            BdrvCheckResult res;
            BdrvError cerr = { 0 };

            memset(&res, 0, sizeof(res));
            ret = qcow2_check(bs, &res, BDRV_FIX_ERRORS | BDRV_FIX_LEAKS, &cerr);
            if (ret < 0 || res.check_errors || res.corruptions) {
                ret = bdrv_error_set(err, ret < 0 ? ret : -EBADIMAGE,
                                     "image '%s' is dirty and could not be repaired%s%s", fn,
                                     cerr.code ? ": " : "", cerr.code ? cerr.msg : "");
                goto fail;
            }
            s->open_leaks_fixed = res.leaks_fixed;
            s->open_corruptions_fixed = res.corruptions_fixed;
            s->dirty_set = true;
            ret = qcow2_mark_clean(bs);
            if (ret < 0) {
                bdrv_error_set(err, ret, "image '%s': could not clear the dirty bit: %s", fn,
                               strerror(-ret));
                goto fail;
            }
        }
    }
    free(hdr);
    return 0;

fail:
    free(hdr);
    qcow2_free_state(bs);
    return ret;
}

static int qcow2_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = qcow2_do_open(bs, flags, err);

    if (ret < 0) {
        memset(s, 0, sizeof(*s));
        bs->backing_file[0] = '\0';
        bs->backing_format[0] = '\0';
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Flush and close                                                     */

int qcow2_flush_all(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (s->read_only) {
        return 0;
    }
    ret = qcow2_refcounts_sync(bs);
    if (ret == 0) {
        ret = qcow2_l2_sync(bs);
    }
    if (ret == 0) {
        ret = qcow2_process_frees(bs);
    }
    if (ret == 0) {
        ret = qcow2_cache_write(bs, s->refblock_cache);
    }
    if (ret == 0 && s->compressed_tail) {
        /*
         * Compressed data may end the file in the middle of a sector; the
         * file is padded to a whole sector, as qemu-img leaves it, so
         * that readers working in sectors find the last one complete.
         */
        int64_t len = bdrv_getlength(bs->file);
        ret = len < 0 ? (int)len : 0;
        if (len > 0 && len % 512) {
            ret = bdrv_truncate(bs->file, ROUND_UP((uint64_t)len, 512), BDRV_PREALLOC_OFF, NULL);
        }
        s->compressed_tail = ret < 0;
    }
    return ret;
}

static int qcow2_flush(BlockDriverState *bs)
{
    return qcow2_flush_all(bs);
}

static void qcow2_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    qcow2_drain_aio_reads(bs);
    if (!s->read_only && s->l2_cache) {
        /* Errors here cannot be reported; the data stays as durable as the last flush. */
        if (qcow2_flush_all(bs) == 0 && !s->corrupt) {
            if (s->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
                qcow2_mark_clean(bs);
            }
        }
    }
    qcow2_free_state(bs);
}

/* ------------------------------------------------------------------ */
/* Reads                                                               */

/* Guest [off, off+n) of an unallocated area: the backing file up to its end, then zeros. */
static int read_backing(BlockDriverState *bs, uint64_t off, QBIOVector *qiov, size_t pos,
                        uint64_t n)
{
    int64_t blen;
    uint64_t avail;
    QBIOVector slice;
    int ret;

    if (!bs->backing) {
        qiov_memset(qiov, pos, 0, n);
        return 0;
    }
    blen = bdrv_getlength(bs->backing);
    if (blen < 0) {
        return (int)blen;
    }
    if (off >= (uint64_t)blen) {
        qiov_memset(qiov, pos, 0, n);
        return 0;
    }
    avail = MIN(n, ROUND_UP((uint64_t)blen, BDRV_SECTOR_SIZE) - off);
    ret = qiov_init_slice(&slice, qiov, pos, avail);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_preadv(bs->backing, off, &slice);
    qiov_destroy(&slice);
    if (ret < 0) {
        return ret;
    }
    if (off + avail > (uint64_t)blen) {
        qiov_memset(qiov, pos + ((uint64_t)blen - off), 0, off + avail - (uint64_t)blen);
    }
    if (avail < n) {
        qiov_memset(qiov, pos + avail, 0, n - avail);
    }
    return 0;
}

/*
 * Guest reads. @shared: the read runs under the node's rw_lock held shared
 * (qcow2_preadv_shared below) and returns -EAGAIN for whatever it cannot
 * serve without changing state; otherwise it runs exclusively.
 */
static int read_guest(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov, bool shared)
{
    BDRVQcow2State *s = bs->opaque;
    size_t pos = 0;
    int ret;

    while (pos < qiov->size) {
        uint64_t off = offset + pos;
        uint64_t n = qiov->size - pos;
        uint64_t host;
        Qcow2SubclusterType type;
        QBIOVector slice;

        ret = shared ? qcow2_peek_host_offset(bs, off, &n, &host, &type)
                     : qcow2_get_host_offset(bs, off, &n, &host, &type);
        if (ret < 0) {
            return ret;
        }
        switch (type) {
        case QCOW2_SC_UNALLOCATED_PLAIN:
        case QCOW2_SC_UNALLOCATED_ALLOC:
            if (shared && bs->backing) {
                return -EAGAIN;
            }
            ret = read_backing(bs, off, qiov, pos, n);
            break;
        case QCOW2_SC_ZERO_PLAIN:
        case QCOW2_SC_ZERO_ALLOC:
            qiov_memset(qiov, pos, 0, n);
            ret = 0;
            break;
        case QCOW2_SC_NORMAL:
            ret = qiov_init_slice(&slice, qiov, pos, n);
            if (ret == 0) {
                ret = bdrv_preadv(bs->file, host, &slice);
                qiov_destroy(&slice);
            }
            break;
        case QCOW2_SC_COMPRESSED:
            if (shared) {
                return -EAGAIN;   /* decompressed into the one shared s->dbuf */
            }
            ret = qcow2_decompress_cluster(bs, host);
            if (ret == -ENOTSUP) {
                return -ENOTSUP;   /* zstd without libzstd in this build */
            }
            if (ret == 0) {
                qiov_from_buf(qiov, pos, s->dbuf + qcow2_offset_into_cluster(s, off), n);
            }
            break;
        default:
            ret = -EIO;
            break;
        }
        if (ret < 0) {
            return ret;
        }
        pos += n;
    }
    return 0;
}

int qcow2_read_guest(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    return read_guest(bs, offset, qiov, false);
}

/*
 * Guest reads from several threads run in parallel (block_int.h,
 * bdrv_preadv_shared): the generic layer holds the node's rw_lock shared,
 * and every other callback, the allocator and the cache's loads and
 * evictions among them, holds it exclusively. So the L2 tables a read
 * finds cached stay as they are, and no host cluster it reads from can be
 * freed and reused, until the read is over. The shared path serves data
 * clusters, zeros and holes without a backing file; a table not cached, a
 * compressed cluster, a backing file or a malformed entry send the read to
 * the exclusive path, which loads the table, so that the next read of that
 * area stays shared.
 */
static int qcow2_preadv_shared(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    return read_guest(bs, offset, qiov, true);
}

/*
 * Asynchronous reads (bdrv_aio_preadv), started under the rw_lock held
 * shared. A read whose clusters the cached L2 tables show as zeros, or as
 * holes with no backing file, completes at once. A read of one contiguous
 * run of data clusters goes to the file as a native read, and returns
 * before it completes: unlike a shared read, it no longer holds the lock
 * when the data arrives, so it counts itself in s->aio_reads until then,
 * and a cluster whose refcount drops to zero waits for the count to drain
 * (qcow2_drain_aio_reads) before it can be reused. Everything else, and a
 * file without native AIO, is -EAGAIN: the caller's worker reads it.
 */
typedef struct Qcow2AioRead {
    BlockDriverState *bs;
    BdrvAioCompletionFunc *cb;
    void *opaque;
} Qcow2AioRead;

static void qcow2_aio_read_done(void *opaque, int ret)
{
    Qcow2AioRead *r = opaque;
    BDRVQcow2State *s = r->bs->opaque;
    BdrvAioCompletionFunc *cb = r->cb;
    void *cb_opaque = r->opaque;

    free(r);
    __atomic_sub_fetch(&s->aio_reads, 1, __ATOMIC_RELEASE);
    cb(cb_opaque, ret);
}

static int qcow2_aio_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov,
                            int notify_fd, BdrvAioCompletionFunc *cb, void *opaque)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t n = qiov->size, host;
    Qcow2SubclusterType type;
    Qcow2AioRead *r;
    int ret = qcow2_peek_host_offset(bs, offset, &n, &host, &type);

    if (ret < 0 || n < qiov->size) {
        return -EAGAIN;
    }
    switch (type) {
    case QCOW2_SC_UNALLOCATED_PLAIN:
    case QCOW2_SC_UNALLOCATED_ALLOC:
        if (bs->backing) {
            return -EAGAIN;
        }
        /* fall through */
    case QCOW2_SC_ZERO_PLAIN:
    case QCOW2_SC_ZERO_ALLOC:
        qiov_memset(qiov, 0, 0, qiov->size);
        cb(opaque, 0);
        return 0;
    case QCOW2_SC_NORMAL:
        break;
    default:
        return -EAGAIN;
    }
    if (__atomic_load_n(&s->file_aio_off, __ATOMIC_RELAXED)) {
        return -EAGAIN;
    }
    r = malloc(sizeof(*r));
    if (!r) {
        return -EAGAIN;
    }
    *r = (Qcow2AioRead) { .bs = bs, .cb = cb, .opaque = opaque };
    /* Counted while the shared lock still keeps the cluster from being freed. */
    __atomic_add_fetch(&s->aio_reads, 1, __ATOMIC_ACQ_REL);
    ret = bdrv_aio_preadv(bs->file, host, qiov, notify_fd, qcow2_aio_read_done, r);
    if (ret < 0) {
        __atomic_sub_fetch(&s->aio_reads, 1, __ATOMIC_RELEASE);
        free(r);
        if (ret == -ENOTSUP) {
            __atomic_store_n(&s->file_aio_off, true, __ATOMIC_RELAXED);
        }
        return -EAGAIN;
    }
    return 0;
}

static void qcow2_aio_poll(BlockDriverState *bs)
{
    bdrv_aio_poll(bs->file);
}

void qcow2_drain_aio_reads(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    while (__atomic_load_n(&s->aio_reads, __ATOMIC_ACQUIRE) > 0) {
        bdrv_aio_poll(bs->file);
        if (__atomic_load_n(&s->aio_reads, __ATOMIC_ACQUIRE) > 0) {
            /* Another thread is reaping: its completions arrive shortly. */
            struct timespec ts = { .tv_sec = 0, .tv_nsec = 20000 };
            nanosleep(&ts, NULL);
        }
    }
}

/*
 * Guest writes that only overwrite data in place run in parallel as well
 * (bdrv_pwritev_shared), under the same rule as shared reads: the L2 tables
 * consulted stay cached and unchanged, and no cluster written to can be
 * freed or reused meanwhile, because everything that changes metadata holds
 * the rw_lock exclusively. Such a write changes no metadata at all: its
 * clusters are allocated, not shared with a snapshot and not flagged zero,
 * and the image needs no dirty flag set first. Anything else (an
 * allocation, a zero flag to clear, an uncached table, a write that would
 * land on metadata, which the exclusive path refuses and reports) gives
 * -EAGAIN, and the exclusive path writes the whole request, rewriting what
 * this one may already have written with the same bytes.
 */
static int qcow2_pwritev_shared(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVQcow2State *s = bs->opaque;
    size_t pos = 0;

    if (s->read_only || s->corrupt || (s->lazy_refcounts && !s->dirty_set)) {
        return -EAGAIN;
    }
    while (pos < qiov->size) {
        uint64_t n = qiov->size - pos, host;
        QBIOVector slice;
        int ret = qcow2_peek_in_place(bs, offset + pos, &n, &host);

        if (ret < 0) {
            return ret;
        }
        if (qcow2_overlaps_metadata(bs, host, n)) {
            return -EAGAIN;
        }
        ret = qiov_init_slice(&slice, qiov, pos, n);
        if (ret == 0) {
            ret = bdrv_pwritev(bs->file, host, &slice);
            qiov_destroy(&slice);
        }
        if (ret < 0) {
            return ret;
        }
        pos += n;
    }
    return 0;
}

static int qcow2_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->read_only) {
        return -EROFS;
    }
    return qcow2_write_guest(bs, offset, qiov);
}

static int qcow2_pwritev_compressed(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVQcow2State *s = bs->opaque;

    if (s->read_only) {
        return -EROFS;
    }
    return qcow2_write_compressed(bs, offset, qiov);
}

static int qcow2_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return qcow2_zero_guest(bs, offset, bytes, false);
}

static int qcow2_pwrite_zeroes_unmap(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return qcow2_zero_guest(bs, offset, bytes, true);
}

static int qcow2_pdiscard(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return qcow2_discard_guest(bs, offset, bytes, false);
}

/* ------------------------------------------------------------------ */
/* Status and facts                                                    */

/*
 * QEMU's test for metadata preallocation: many more clusters in use than
 * the file really stores. Such images get their holes reported as zeros.
 * "Many more" is at least a ninth more than the host allocation in whole
 * clusters, and at least two more: a small image, whose header, tables and
 * a partly written cluster can round down to fewer clusters than it uses,
 * must not count as preallocated (qemu-img map then keeps a cluster that
 * has a hole inside as one data extent).
 */
static bool detect_metadata_preallocation(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t flen = bdrv_getlength(bs->file);
    int64_t alloc = bdrv_get_allocated_file_size(bs->file);
    uint64_t stored, threshold, count = 0, end;

    if (flen < 0 || alloc < 0) {
        return false;
    }
    stored = (uint64_t)alloc / s->cluster_size;
    threshold = MAX(stored * 10 / 9, stored + 2);
    end = qcow2_size_to_clusters(s, (uint64_t)flen);
    for (uint64_t i = 0; i < end && count < threshold; i++) {
        uint64_t rc;
        if (qcow2_get_refcount(bs, i, &rc) < 0) {
            return false;
        }
        count += rc != 0;
    }
    return count >= threshold;
}

static int qcow2_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                              uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t n = bytes, host;
    Qcow2SubclusterType type;
    int ret;

    ret = qcow2_get_host_offset(bs, offset, &n, &host, &type);
    if (ret < 0) {
        return ret;
    }
    *pnum = n;
    switch (type) {
    case QCOW2_SC_ZERO_PLAIN:
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
    case QCOW2_SC_ZERO_ALLOC:
        *map = host;
        *file = bs->file;
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
    case QCOW2_SC_NORMAL:
        *map = host;
        *file = bs->file;
        ret = BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
        if (!s->metadata_prealloc_checked) {
            s->metadata_prealloc = detect_metadata_preallocation(bs);
            s->metadata_prealloc_checked = true;
        }
        if (s->metadata_prealloc) {
            uint64_t fn;
            int fr = bdrv_block_status(bs->file, host, n, &fn, NULL, NULL);
            if (fr >= 0) {
                if ((fr & BDRV_BLOCK_EOF) && (fn == 0 || (fr & BDRV_BLOCK_ZERO))) {
                    ret |= BDRV_BLOCK_ZERO;
                } else if (fn > 0) {
                    *pnum = MIN(n, fn);
                    ret |= fr & BDRV_BLOCK_ZERO;
                }
            }
        }
        return ret;
    case QCOW2_SC_COMPRESSED:
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
    case QCOW2_SC_UNALLOCATED_ALLOC:
        /* Not this layer's data, but QEMU still reports where it would live. */
        *map = host;
        *file = bs->file;
        return BDRV_BLOCK_OFFSET_VALID;
    default:
        return 0;
    }
}

static int64_t qcow2_getlength(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    return (int64_t)s->size;
}

static int qcow2_has_zero_init(BlockDriverState *bs)
{
    (void)bs;
    return 1;
}

static int qcow2_is_dirty(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    return (s->incompatible_features & QCOW2_INCOMPAT_DIRTY) ? 1 : 0;
}

static int qcow2_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQcow2State *s = bs->opaque;
    bdi->cluster_size = (int)s->cluster_size;
    bdi->is_dirty = qcow2_is_dirty(bs) != 0;
    return 0;
}

static int qcow2_check_cb(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = qcow2_check(bs, res, fix, err);

    /*
     * qemu-img check -r opens a dirty image without repairing it and
     * reports the repair as its own; here the open already repaired it, so
     * the first repairing check reports what that repair fixed.
     */
    if (ret == 0 && fix) {
        res->leaks_fixed += s->open_leaks_fixed;
        res->corruptions_fixed += s->open_corruptions_fixed;
        s->open_leaks_fixed = 0;
        s->open_corruptions_fixed = 0;
    }
    /* A successful repair makes a dirty image clean, as QEMU's check does. */
    if (ret == 0 && fix && !res->corruptions && !res->check_errors &&
        (s->incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        ret = qcow2_mark_clean(bs);
        if (ret < 0) {
            bdrv_error_set(err, ret, "image '%s': could not clear the dirty bit",
                           bs->filename);
        }
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Truncate                                                            */

int qcow2_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                   BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old = s->size;
    uint8_t v[8];
    int ret;

    if (offset % BDRV_SECTOR_SIZE) {
        return bdrv_error_set(err, -EINVAL, "'%s': the new size must be a multiple of 512",
                              bs->filename);
    }
    if (s->corrupt) {
        return bdrv_error_set(err, -EIO, "'%s' was found corrupt", bs->filename);
    }
    if (s->nb_snapshots && s->qcow_version < 3) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': a v2 image with snapshots cannot be "
                              "resized", bs->filename);
    }
    if (offset == old) {
        return 0;
    }
    if (qcow2_size_to_l1(s, offset) > QCOW2_MAX_L1_SIZE / 8) {
        return bdrv_error_set(err, -EFBIG, "'%s': %llu bytes would need an L1 table larger "
                              "than 32 MiB", bs->filename, (unsigned long long)offset);
    }
    ret = qcow2_mark_dirty(bs);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not mark the image dirty", bs->filename);
    }
    if (offset < old) {
        int64_t flen;
        uint64_t last = 0;

        if (prealloc != BDRV_PREALLOC_OFF) {
            return bdrv_error_set(err, -ENOTSUP, "'%s': preallocation cannot be used when "
                                  "shrinking an image", bs->filename);
        }
        ret = qcow2_shrink_mappings(bs, offset);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "'%s': could not drop the clusters past the new "
                                  "end: %s", bs->filename, strerror(-ret));
        }
        be64_store(v, offset);
        ret = qcow2_write_header_field(bs, 24, v, 8);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "'%s': could not update the size", bs->filename);
        }
        s->size = offset;
        bs->total_sectors = (int64_t)DIV_ROUND_UP(offset, BDRV_SECTOR_SIZE);
        ret = qcow2_flush_all(bs);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "'%s': flush failed", bs->filename);
        }
        /* Give back the file's tail past the last cluster still in use. */
        flen = bdrv_getlength(bs->file);
        if (flen > 0) {
            for (uint64_t c = qcow2_size_to_clusters(s, (uint64_t)flen); c > 0; c--) {
                uint64_t rc;
                ret = qcow2_get_refcount(bs, c - 1, &rc);
                if (ret < 0) {
                    return bdrv_error_set(err, ret, "'%s': refcount lookup failed",
                                          bs->filename);
                }
                if (rc) {
                    last = c;
                    break;
                }
            }
            if (last && (last << s->cluster_bits) < (uint64_t)flen) {
                bdrv_truncate(bs->file, last << s->cluster_bits, BDRV_PREALLOC_OFF, NULL);
            }
        }
        return 0;
    }

    ret = qcow2_grow_l1_table(bs, qcow2_size_to_l1(s, offset));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not grow the L1 table: %s", bs->filename,
                              strerror(-ret));
    }
    if (prealloc == BDRV_PREALLOC_FALLOC || prealloc == BDRV_PREALLOC_FULL) {
        ret = qcow2_preallocate_data(bs, old, offset, prealloc);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "'%s': preallocation failed: %s", bs->filename,
                                  strerror(-ret));
        }
    } else if (prealloc != BDRV_PREALLOC_OFF) {
        ret = qcow2_preallocate(bs, old, offset - old, prealloc);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "'%s': preallocation failed: %s", bs->filename,
                                  strerror(-ret));
        }
    }
    ret = qcow2_flush_all(bs);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': flush failed", bs->filename);
    }
    be64_store(v, offset);
    ret = qcow2_write_header_field(bs, 24, v, 8);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not update the size", bs->filename);
    }
    s->size = offset;
    bs->total_sectors = (int64_t)DIV_ROUND_UP(offset, BDRV_SECTOR_SIZE);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

static const char *const qcow2_compat_choices[] = { "0.10", "v2", "1.1", "v3", NULL };
static const char *const qcow2_prealloc_choices[] = { "off", "metadata", "falloc", "full",
                                                      NULL };
static const char *const qcow2_compression_choices[] = { "zlib", "zstd", NULL };

static const BdrvOptDesc qcow2_create_opts[] = {
    { .name = "size", .type = BDRV_OPT_SIZE, .def = "0", .help = "Size of the virtual disk" },
    { .name = "compat", .type = BDRV_OPT_STRING, .def = "1.1",
      .help = "On-disk version: 0.10 (version 2) or 1.1 (version 3)", .choices = qcow2_compat_choices },
    { .name = "backing_file", .type = BDRV_OPT_STRING, .help = "Image that unwritten areas are read from" },
    { .name = "backing_fmt", .type = BDRV_OPT_STRING, .help = "Format name of the backing image" },
    { .name = "encryption", .type = BDRV_OPT_BOOL, .def = "off",
      .help = "Legacy AES encryption switch (refused: not supported)" },
    { .name = "encrypt.format", .type = BDRV_OPT_STRING,
      .help = "Encryption scheme, aes or luks (refused: not supported)" },
    { .name = "cluster_size", .type = BDRV_OPT_SIZE, .def = "65536",
      .help = "Bytes per cluster, a power of two from 512 to 2M" },
    { .name = "preallocation", .type = BDRV_OPT_STRING, .def = "off",
      .help = "What to allocate at creation: off, metadata, falloc or full",
      .choices = qcow2_prealloc_choices },
    { .name = "lazy_refcounts", .type = BDRV_OPT_BOOL, .def = "off",
      .help = "Defer reference count updates, marking the image dirty instead" },
    { .name = "refcount_bits", .type = BDRV_OPT_NUMBER, .def = "16",
      .help = "Bits per reference count entry, a power of two up to 64" },
    { .name = "extended_l2", .type = BDRV_OPT_BOOL, .def = "off",
      .help = "Split each cluster into 32 separately allocated subclusters" },
    { .name = "compression_type", .type = BDRV_OPT_STRING, .def = "zlib",
      .help = "Algorithm for compressed clusters: zlib or zstd",
      .choices = qcow2_compression_choices },
    { .name = "data_file", .type = BDRV_OPT_STRING,
      .help = "Separate file for guest data (refused: not supported)" },
    { .name = "data_file_raw", .type = BDRV_OPT_BOOL, .def = "off",
      .help = "Keep the separate data file usable as raw (refused: not supported)" },
    { 0 }
};

/* Append a header extension to @buf at *off (padded to 8). */
static void put_ext(uint8_t *buf, size_t *off, uint32_t type, const void *data, uint32_t len)
{
    be32_store(buf + *off, type);
    be32_store(buf + *off + 4, len);
    memcpy(buf + *off + 8, data, len);
    *off += 8 + ROUND_UP((size_t)len, 8);
}

int qcow2_parse_create_opts(BdrvOpts *opts, Qcow2CreateParams *p, BdrvError *err)
{
    const char *compat = bdrv_opts_get_str(opts, "compat");
    const char *ctype = bdrv_opts_get_str(opts, "compression_type");
    uint64_t cs = bdrv_opts_get_size(opts, "cluster_size");
    uint64_t refcount_bits = bdrv_opts_get_size(opts, "refcount_bits");

    memset(p, 0, sizeof(*p));
    p->size = ROUND_UP(bdrv_opts_get_size(opts, "size"), BDRV_SECTOR_SIZE);
    p->backing = bdrv_opts_get_str(opts, "backing_file");
    p->backing_fmt = bdrv_opts_get_str(opts, "backing_fmt");
    p->lazy = bdrv_opts_get_bool(opts, "lazy_refcounts");
    p->extl2 = bdrv_opts_get_bool(opts, "extended_l2");
    p->zstd = ctype && strcmp(ctype, "zstd") == 0;
    p->cluster_size = cs;
    if (!compat || strcmp(compat, "1.1") == 0 || strcmp(compat, "v3") == 0) {
        p->version = 3;
    } else if (strcmp(compat, "0.10") == 0 || strcmp(compat, "v2") == 0) {
        p->version = 2;
    } else {
        return bdrv_error_set(err, -EINVAL, "qcow2: invalid compatibility level '%s'", compat);
    }
    if (bdrv_parse_prealloc(bdrv_opts_get(opts, "preallocation"), &p->prealloc) < 0) {
        return bdrv_error_set(err, -EINVAL, "qcow2: invalid preallocation mode '%s'",
                              bdrv_opts_get(opts, "preallocation"));
    }
    if (bdrv_opts_get_bool(opts, "encryption") || bdrv_opts_get_str(opts, "encrypt.format")) {
        return bdrv_error_set(err, -ENOTSUP, "qcow2: encrypted qcow2 images are not supported");
    }
    if (bdrv_opts_get_str(opts, "data_file") || bdrv_opts_get_bool(opts, "data_file_raw")) {
        return bdrv_error_set(err, -ENOTSUP, "qcow2: external data files are not supported");
    }
    if (!IS_POW2(cs) || cs < 512 || cs > (2u << 20)) {
        return bdrv_error_set(err, -EINVAL, "qcow2: cluster size must be a power of two "
                              "between 512 and 2048k (got %llu)", (unsigned long long)cs);
    }
    while ((1ull << p->cluster_bits) < cs) {
        p->cluster_bits++;
    }
    if (!IS_POW2(refcount_bits) || refcount_bits > 64) {
        return bdrv_error_set(err, -EINVAL, "qcow2: refcount width must be a power of two and "
                              "may not exceed 64 bits (got %llu)",
                              (unsigned long long)refcount_bits);
    }
    while ((1ull << p->refcount_order) < refcount_bits) {
        p->refcount_order++;
    }
    if (p->version < 3) {
        if (refcount_bits != 16) {
            return bdrv_error_set(err, -EINVAL, "qcow2: refcount widths other than 16 bits "
                                  "require compatibility level 1.1 or above (use compat=1.1)");
        }
        if (p->lazy) {
            return bdrv_error_set(err, -EINVAL, "qcow2: lazy refcounts require compatibility "
                                  "level 1.1 or above (use compat=1.1)");
        }
        if (p->extl2) {
            return bdrv_error_set(err, -EINVAL, "qcow2: extended L2 entries require "
                                  "compatibility level 1.1 or above (use compat=1.1)");
        }
        if (p->zstd) {
            return bdrv_error_set(err, -EINVAL, "qcow2: non-zlib compression types require "
                                  "compatibility level 1.1 or above (use compat=1.1)");
        }
    }
#ifndef CONFIG_ZSTD
    if (p->zstd) {
        return bdrv_error_set(err, -ENOTSUP, "qcow2: this build has no zstd support");
    }
#endif
    if (p->extl2 && cs < 16384) {
        return bdrv_error_set(err, -EINVAL, "qcow2: extended L2 entries need a cluster size "
                              "of at least 16384 bytes");
    }
    if (p->backing_fmt && !p->backing) {
        return bdrv_error_set(err, -EINVAL, "qcow2: a backing format needs a backing file");
    }
    if (p->backing && strlen(p->backing) > QCOW2_MAX_BACKING_NAME) {
        return bdrv_error_set(err, -EINVAL, "qcow2: backing file name is longer than 1023 "
                              "bytes");
    }
    if (p->backing_fmt && strlen(p->backing_fmt) >= 16) {
        return bdrv_error_set(err, -EINVAL, "qcow2: backing format name '%s' is too long",
                              p->backing_fmt);
    }
    if (p->backing && p->prealloc != BDRV_PREALLOC_OFF && !p->extl2) {
        return bdrv_error_set(err, -EINVAL, "qcow2: a backing file and preallocation can only "
                              "be used together with extended_l2=on");
    }
    return qcow2_check_size_fits(p, p->size, err);
}

int qcow2_check_size_fits(const Qcow2CreateParams *p, uint64_t size, BdrvError *err)
{
    int l2_bits = p->cluster_bits - (p->extl2 ? 4 : 3);
    int shift = p->cluster_bits + l2_bits;
    uint64_t l1 = (size >> shift) + ((size & ((1ull << shift) - 1)) != 0);

    if (l1 > QCOW2_MAX_L1_SIZE / 8 || size > (uint64_t)INT64_MAX) {
        return bdrv_error_set(err, -EFBIG, "qcow2: image size %llu is too big for cluster "
                              "size %llu", (unsigned long long)size,
                              (unsigned long long)p->cluster_size);
    }
    return 0;
}

static int qcow2_create(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    Qcow2CreateParams p;
    uint64_t size, cs;
    const char *backing, *backing_fmt;
    bool lazy, extl2, zstd;
    BdrvPrealloc prealloc;
    int version, cluster_bits, refcount_order, cache_flags;
    uint8_t *buf = NULL;
    BlockDriverState *file = NULL, *bs = NULL;
    size_t off;
    int ret;

    ret = qcow2_parse_create_opts(opts, &p, err);
    if (ret < 0) {
        return ret;
    }
    size = p.size;
    cs = p.cluster_size;
    backing = p.backing;
    backing_fmt = p.backing_fmt;
    lazy = p.lazy;
    extl2 = p.extl2;
    zstd = p.zstd;
    prealloc = p.prealloc;
    version = p.version;
    cluster_bits = p.cluster_bits;
    refcount_order = p.refcount_order;

    /* Clusters 0-2: header, refcount table, refcount block 0. The L1 comes with the size. */
    buf = calloc(3, cs);
    if (!buf) {
        return bdrv_error_set(err, -ENOMEM, "qcow2: out of memory");
    }
    be32_store(buf, QCOW2_MAGIC);
    be32_store(buf + 4, (uint32_t)version);
    be32_store(buf + 20, (uint32_t)cluster_bits);
    be64_store(buf + 24, 0);   /* the size is set by the resize below, as QEMU does */
    be64_store(buf + 48, cs);
    be32_store(buf + 56, 1);
    if (version >= 3) {
        uint64_t incompat = (zstd ? QCOW2_INCOMPAT_COMPRESSION : 0) |
                            (extl2 ? QCOW2_INCOMPAT_EXTL2 : 0);
        be64_store(buf + 72, incompat);
        be64_store(buf + 80, lazy ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
        be32_store(buf + 96, (uint32_t)refcount_order);
        be32_store(buf + 100, QCOW2_V3_HEADER_SIZE);
        buf[104] = zstd ? QCOW2_COMPRESSION_ZSTD : QCOW2_COMPRESSION_ZLIB;
        off = QCOW2_V3_HEADER_SIZE;
    } else {
        off = QCOW2_V2_HEADER_SIZE;
    }
    if (backing_fmt) {
        put_ext(buf, &off, QCOW2_EXT_BACKING_FORMAT, backing_fmt, (uint32_t)strlen(backing_fmt));
    }
    /*
     * The feature-name table (392 bytes) is left out with clusters of 4 KiB
     * and less, where it would crowd out the backing file name: QEMU 7.2
     * does the same, so fresh images stay byte-identical.
     */
    if (version >= 3 && cs > 4096) {
        uint8_t table[QCOW2_FEATURE_TABLE_SIZE];
        qcow2_feature_table(table);
        put_ext(buf, &off, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table));
    }
    off += 8;   /* end of extensions */
    if (backing) {
        size_t len = strlen(backing);
        if (off + len > cs) {
            free(buf);
            return bdrv_error_set(err, -EINVAL, "qcow2: backing file name does not fit in "
                                  "the header cluster");
        }
        be64_store(buf + 8, off);
        be32_store(buf + 16, (uint32_t)len);
        memcpy(buf + off, backing, len);
    }
    /* Refcount table -> block 0 at cluster 2, which counts clusters 0, 1 and 2. */
    be64_store(buf + cs, 2 * cs);
    {
        BDRVQcow2State tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.refcount_order = refcount_order;
        for (uint32_t i = 0; i < 3; i++) {
            qcow2_refblock_set(&tmp, buf + 2 * cs, i, 1);
        }
    }

    ret = bdrv_create_file(filename, 0, BDRV_PREALLOC_OFF, flags, err);
    if (ret < 0) {
        free(buf);
        return ret;
    }
    /* The caller's cache mode applies to the new file too (a scratch overlay skips flushes). */
    cache_flags = flags & (BDRV_O_NO_FLUSH | BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO);
    ret = bdrv_file_open_for(&file, filename, &bdrv_qcow2, BDRV_O_RDWR | cache_flags, err);
    if (ret < 0) {
        free(buf);
        return ret;
    }
    ret = bdrv_pwrite(file, 0, buf, 3 * cs);
    if (ret == 0) {
        ret = bdrv_flush(file);
    }
    bdrv_close(file);
    free(buf);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "qcow2: could not write '%s': %s", filename,
                              strerror(-ret));
    }

    /* Size and preallocation go through the driver itself, as a resize. */
    ret = bdrv_open(&bs, filename, "qcow2", BDRV_O_RDWR | BDRV_O_NO_BACKING | cache_flags, err);
    if (ret < 0) {
        return ret;
    }
    if (size > 0 || prealloc != BDRV_PREALLOC_OFF) {
        ret = bdrv_truncate(bs, size, prealloc, err);
    }
    if (ret == 0) {
        ret = bdrv_flush(bs);
        if (ret < 0) {
            bdrv_error_set(err, ret, "qcow2: could not flush '%s': %s", filename,
                           strerror(-ret));
        }
    }
    bdrv_close(bs);
    return ret;
}

const BlockDriver bdrv_qcow2 = {
    .format_name = "qcow2",
    .instance_size = sizeof(BDRVQcow2State),
    .thread_safe = false,
    .shares_write = false,
    .supports_backing = true,
    .caps = BDRV_CAP_SHRINK | BDRV_CAP_REPAIR | BDRV_CAP_COMPRESSED_READ | BDRV_CAP_INTERNAL_SNAPSHOTS,
    .bdrv_probe = qcow2_probe,
    .bdrv_open = qcow2_open,
    .bdrv_close = qcow2_close,
    .bdrv_create = qcow2_create,
    .create_opts = qcow2_create_opts,
    .bdrv_preadv = qcow2_read_guest,
    .bdrv_preadv_shared = qcow2_preadv_shared,
    .bdrv_aio_preadv = qcow2_aio_preadv,
    .bdrv_aio_poll = qcow2_aio_poll,
    .bdrv_pwritev_shared = qcow2_pwritev_shared,
    .bdrv_pwritev = qcow2_pwritev,
    .bdrv_pwritev_compressed = qcow2_pwritev_compressed,
    .bdrv_pwrite_zeroes = qcow2_pwrite_zeroes,
    .bdrv_pwrite_zeroes_unmap = qcow2_pwrite_zeroes_unmap,
    .bdrv_flush = qcow2_flush,
    .bdrv_pdiscard = qcow2_pdiscard,
    .bdrv_block_status = qcow2_block_status,
    .bdrv_getlength = qcow2_getlength,
    .bdrv_truncate = qcow2_truncate,
    .bdrv_has_zero_init = qcow2_has_zero_init,
    .bdrv_is_dirty = qcow2_is_dirty,
    .bdrv_get_info = qcow2_get_info,
    .bdrv_measure = qcow2_measure,
    .bdrv_check = qcow2_check_cb,
    .bdrv_get_specific_info = qcow2_get_specific_info,
    .bdrv_snapshot_list = qcow2_snapshot_list,
    .bdrv_snapshot_create = qcow2_snapshot_create,
    .bdrv_snapshot_goto = qcow2_snapshot_goto,
    .bdrv_snapshot_delete = qcow2_snapshot_delete,
    .bdrv_change_backing_file = qcow2_change_backing_file,
    .bdrv_amend = qcow2_amend,
    .bdrv_make_empty = qcow2_make_empty,
};
