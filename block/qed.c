/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qed.c: the QED format (QEMU Enhanced Disk): a header cluster, an L1 table
 * and L2 tables of little-endian cluster offsets, allocation by appending
 * clusters at the end of the file, a "need check" flag instead of refcounts.
 *
 * Layout facts come from the QED specification (qemu/qemu
 * docs/interop/qed_spec.rst) and from images qemu-img 7.2 wrote; the code
 * is this library's own.
 *
 * Ordering of metadata writes (the invariants a crash must not break):
 *
 *  1. Clusters are only ever appended past the end of the file (s->file_end)
 *     and never reused, so a table entry can never come to point at space
 *     that held something else. Space whose pointer was never written is a
 *     leak, which is harmless and which the check reports.
 *  2. Before the first write in a session that changes a table (an
 *     allocating write, a zero-cluster write, a repair), the NEED_CHECK
 *     feature bit is written to the header and flushed. While it is set, the
 *     image may hold leaked clusters; an image opened read-write with the bit
 *     set is checked (and repaired) before use.
 *  3. Data is written before the L2 entry that points at it. When the image
 *     has a backing file, the data is flushed before the L2 entry is
 *     written: otherwise a crash could leave an entry pointing at a cluster
 *     whose copy of the backing data never reached the disk, and that
 *     cluster would read as zeros instead of the backing file's contents.
 *     Without a backing file the previous contents were zeros, which is
 *     also what a cluster whose data never arrived reads as, so no flush is
 *     needed there.
 *  4. A new L2 table is written in full (zeros plus its new entries) and
 *     flushed before the L1 entry that points at it is written, so an L1
 *     entry never points at a table that is not on the disk.
 *  5. Metadata is written through: the table cache never holds a change
 *     the disk does not have, so there is nothing to write back at flush or
 *     close except the header.
 *  6. NEED_CHECK is cleared only on a clean close, or on a flush once no
 *     table has changed for QED_NEED_CHECK_TIMEOUT seconds (QEMU clears it
 *     on a 5-second idle timer; clearing it at every flush would cost two
 *     more header writes and syncs per allocating write in write-through
 *     mode), and always after the data and tables have been flushed
 *     (flush, header write, flush).
 *
 * A crash between any two writes therefore leaves at worst leaked clusters
 * (data written but never linked, an L2 table written but never linked);
 * no entry ever points at unwritten or reused space.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/block_int.h"
#include "table-cache.h"

#define QED_MAGIC                 0x00444551u   /* "QED\0" little-endian */
#define QED_HEADER_BYTES          64

#define QED_F_BACKING_FILE        UINT64_C(0x01)
#define QED_F_NEED_CHECK          UINT64_C(0x02)
#define QED_F_BACKING_NO_PROBE    UINT64_C(0x04)
#define QED_F_KNOWN               (QED_F_BACKING_FILE | QED_F_NEED_CHECK | QED_F_BACKING_NO_PROBE)

#define QED_MIN_CLUSTER_SIZE      (4u * 1024)
#define QED_MAX_CLUSTER_SIZE      (64u * 1024 * 1024)
#define QED_DEFAULT_CLUSTER_SIZE  (64u * 1024)
#define QED_MIN_TABLE_SIZE        1u
#define QED_MAX_TABLE_SIZE        16u
#define QED_DEFAULT_TABLE_SIZE    4u
/* The backing name must fit the library's path buffers (and QEMU's 4095). */
#define QED_MAX_BACKING_NAME      4095u

/* Special data cluster entries. */
#define QED_ENTRY_UNALLOC         0
#define QED_ENTRY_ZERO            1

/*
 * Tables are cached in pages of at most 64 KiB (8192 entries), so that
 * memory stays bounded whatever the table size (a table can be 1 GiB with
 * 64 MiB clusters and table_size 16): 32 pages, 2 MiB at most.
 */
#define QED_PAGE_MAX              (64u * 1024)
/* Seconds without table changes after which a flush clears NEED_CHECK. */
#define QED_NEED_CHECK_TIMEOUT    5
#define QED_CACHE_SLOTS           32

typedef struct QEDHeader {
    uint32_t magic;
    uint32_t cluster_size;
    uint32_t table_size;
    uint32_t header_size;
    uint64_t features;
    uint64_t compat_features;
    uint64_t autoclear_features;
    uint64_t l1_table_offset;
    uint64_t image_size;
    uint32_t backing_filename_offset;
    uint32_t backing_filename_size;
} QEDHeader;

typedef struct BDRVQEDState {
    QEDHeader header;
    uint32_t cluster_bits;
    uint32_t table_bits;      /* log2 of the entries per table */
    uint64_t table_nelems;
    uint64_t table_bytes;
    uint64_t header_bytes;    /* header_size * cluster_size: the first regular cluster */
    uint64_t file_end;        /* next cluster to allocate; the file's end rounded down */
    TableCache tables;
    struct timespec last_table_change;   /* CLOCK_MONOTONIC */
} BDRVQEDState;

typedef enum QEDKind {
    QED_KIND_UNALLOC,
    QED_KIND_ZERO,
    QED_KIND_DATA,
} QEDKind;

/* A run of clusters of one kind (and for data, contiguous in the file). */
typedef struct QEDRun {
    QEDKind kind;
    uint64_t bytes;           /* guest bytes from the request offset */
    uint64_t host;            /* KIND_DATA: file offset of the request offset */
    uint64_t l2_offset;       /* the L2 table holding the run; 0 when there is none */
} QEDRun;

static const BdrvOptDesc qed_create_opts[] = {
    { .name = "size", .type = BDRV_OPT_SIZE, .def = "0", .help = "Size of the virtual disk" },
    { .name = "backing_file", .type = BDRV_OPT_STRING,
      .help = "Image that unwritten areas are read from" },
    { .name = "backing_fmt", .type = BDRV_OPT_STRING,
      .help = "Format name of the backing image" },
    { .name = "cluster_size", .type = BDRV_OPT_SIZE, .def = "65536",
      .help = "Bytes per cluster, a power of two from 4k to 64M" },
    { .name = "table_size", .type = BDRV_OPT_SIZE, .def = "4",
      .help = "Clusters per L1 or L2 table, a power of two from 1 to 16" },
    { 0 }
};

/* ------------------------------------------------------------------ */
/* Header                                                              */

static void qed_header_decode(QEDHeader *h, const uint8_t *b)
{
    h->magic = le32_load(b + 0);
    h->cluster_size = le32_load(b + 4);
    h->table_size = le32_load(b + 8);
    h->header_size = le32_load(b + 12);
    h->features = le64_load(b + 16);
    h->compat_features = le64_load(b + 24);
    h->autoclear_features = le64_load(b + 32);
    h->l1_table_offset = le64_load(b + 40);
    h->image_size = le64_load(b + 48);
    h->backing_filename_offset = le32_load(b + 56);
    h->backing_filename_size = le32_load(b + 60);
}

static void qed_header_encode(const QEDHeader *h, uint8_t *b)
{
    le32_store(b + 0, h->magic);
    le32_store(b + 4, h->cluster_size);
    le32_store(b + 8, h->table_size);
    le32_store(b + 12, h->header_size);
    le64_store(b + 16, h->features);
    le64_store(b + 24, h->compat_features);
    le64_store(b + 32, h->autoclear_features);
    le64_store(b + 40, h->l1_table_offset);
    le64_store(b + 48, h->image_size);
    le32_store(b + 56, h->backing_filename_offset);
    le32_store(b + 60, h->backing_filename_size);
}

static int ilog2_u64(uint64_t v)
{
    int n = 0;
    while (v > 1) {
        v >>= 1;
        n++;
    }
    return n;
}

/*
 * The largest virtual size the tables can map: nelems^2 clusters. With
 * large clusters and tables that passes 2^63, so it is capped at the
 * largest 512-aligned signed 64-bit size.
 */
static uint64_t qed_max_image_size(uint32_t cluster_size, uint32_t table_size)
{
    int bits = 2 * (ilog2_u64((uint64_t)table_size * cluster_size / 8)) +
               ilog2_u64(cluster_size);
    if (bits >= 63) {
        return ROUND_DOWN((uint64_t)INT64_MAX, BDRV_SECTOR_SIZE);
    }
    return 1ULL << bits;
}

static bool qed_cluster_size_valid(uint64_t v)
{
    return IS_POW2(v) && v >= QED_MIN_CLUSTER_SIZE && v <= QED_MAX_CLUSTER_SIZE;
}

static bool qed_table_size_valid(uint64_t v)
{
    return IS_POW2(v) && v >= QED_MIN_TABLE_SIZE && v <= QED_MAX_TABLE_SIZE;
}

static int qed_write_header(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    uint8_t buf[QED_HEADER_BYTES];

    /* Only the fixed fields: the backing name that follows never changes. */
    qed_header_encode(&s->header, buf);
    return bdrv_pwrite(bs->file, 0, buf, sizeof(buf));
}

/*
 * Rebase: the new name goes right after the fixed header fields, as create
 * puts it, in the same single write as the header that points at it; a raw
 * backing file is flagged so that it is never probed.
 */
static int qed_change_backing_file(BlockDriverState *bs, const char *name, const char *format,
                                   BdrvError *err)
{
    BDRVQEDState *s = bs->opaque;
    QEDHeader h = s->header;
    size_t len = name ? strlen(name) : 0;
    uint8_t *buf;
    int ret;

    if (len > QED_MAX_BACKING_NAME || QED_HEADER_BYTES + len > s->header_bytes) {
        return bdrv_error_set(err, -ENOSPC, "'%s': the backing file name does not fit in the "
                              "header", bs->filename);
    }
    h.features &= ~(QED_F_BACKING_FILE | QED_F_BACKING_NO_PROBE);
    h.backing_filename_offset = 0;
    h.backing_filename_size = 0;
    if (len) {
        h.features |= QED_F_BACKING_FILE;
        if (format && strcmp(format, "raw") == 0) {
            h.features |= QED_F_BACKING_NO_PROBE;
        }
        h.backing_filename_offset = QED_HEADER_BYTES;
        h.backing_filename_size = (uint32_t)len;
    }
    buf = calloc(1, QED_HEADER_BYTES + len);
    if (!buf) {
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    qed_header_encode(&h, buf);
    memcpy(buf + QED_HEADER_BYTES, name ? name : "", len);
    ret = bdrv_pwrite(bs->file, 0, buf, QED_HEADER_BYTES + len);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    free(buf);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not write the header: %s", bs->filename,
                              strerror(-ret));
    }
    s->header = h;
    snprintf(bs->backing_file, sizeof(bs->backing_file), "%s", len ? name : "");
    snprintf(bs->backing_format, sizeof(bs->backing_format), "%s",
             len && (h.features & QED_F_BACKING_NO_PROBE) ? "raw" : "");
    return 0;
}

/* Invariant 2: the flag reaches the disk before any table changes. */
static int qed_mark_need_check(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    int ret;

    clock_gettime(CLOCK_MONOTONIC, &s->last_table_change);
    if (s->header.features & QED_F_NEED_CHECK) {
        return 0;
    }
    s->header.features |= QED_F_NEED_CHECK;
    ret = qed_write_header(bs);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        /* The disk may or may not have it; claim it is set so it is written again. */
        s->header.features &= ~QED_F_NEED_CHECK;
    }
    return ret;
}

/* Invariant 6: everything before the header reaches the disk first. */
static int qed_mark_clean(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    int ret;

    if (!(s->header.features & QED_F_NEED_CHECK) || bs->read_only) {
        return 0;
    }
    ret = bdrv_flush(bs->file);
    if (ret < 0) {
        return ret;
    }
    s->header.features &= ~QED_F_NEED_CHECK;
    ret = qed_write_header(bs);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        s->header.features |= QED_F_NEED_CHECK;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */

/* Entry @index of the table at @table_off. */
static int qed_get_entry(BlockDriverState *bs, uint64_t table_off, uint64_t index,
                         uint64_t *val)
{
    BDRVQEDState *s = bs->opaque;
    return table_cache_get(&s->tables, bs->file, table_off + index * 8, val);
}

/*
 * Set entries [@index, @index+@n) of the table at @table_off to @first,
 * @first+@step, ... and write them through to the disk (whole sectors of
 * the cached page).
 */
static int qed_set_entries(BlockDriverState *bs, uint64_t table_off, uint64_t index,
                           uint64_t n, uint64_t first, uint64_t step)
{
    BDRVQEDState *s = bs->opaque;
    return table_cache_set(&s->tables, bs->file, table_off + index * 8, n, first, step);
}

/* ------------------------------------------------------------------ */
/* Offsets                                                             */

static bool qed_cluster_offset_valid(BDRVQEDState *s, uint64_t off)
{
    return (off & (s->header.cluster_size - 1)) == 0 && off >= s->header_bytes &&
           off < s->file_end;
}

static bool qed_table_offset_valid(BDRVQEDState *s, uint64_t off)
{
    uint64_t end;

    return (off & (s->header.cluster_size - 1)) == 0 && off >= s->header_bytes &&
           !ADD_OVERFLOW(off, s->table_bytes, &end) && end <= s->file_end;
}

static QEDKind qed_entry_kind(uint64_t e)
{
    if (e == QED_ENTRY_UNALLOC) {
        return QED_KIND_UNALLOC;
    }
    return e == QED_ENTRY_ZERO ? QED_KIND_ZERO : QED_KIND_DATA;
}

/*
 * The run of clusters starting at guest @offset, at most @bytes long, that
 * share one kind (data runs also contiguous in the file), inside one L2
 * table.
 */
static int qed_find_run(BlockDriverState *bs, uint64_t offset, uint64_t bytes, QEDRun *run)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    uint32_t l1_shift = s->cluster_bits + s->table_bits;
    uint64_t l1_index = offset >> l1_shift;
    uint64_t l2_index = (offset >> s->cluster_bits) & (s->table_nelems - 1);
    uint64_t in_cluster = offset & (cs - 1);
    uint64_t span_end = (l1_index + 1) << l1_shift;
    uint64_t limit = MIN(bytes, span_end - offset);
    uint64_t l2_off, e, n;
    int ret;

    ret = qed_get_entry(bs, s->header.l1_table_offset, l1_index, &l2_off);
    if (ret < 0) {
        return ret;
    }
    run->l2_offset = l2_off;
    run->host = 0;
    if (l2_off == 0) {
        run->kind = QED_KIND_UNALLOC;
        run->bytes = limit;
        return 0;
    }
    if (!qed_table_offset_valid(s, l2_off)) {
        return -EBADIMAGE;
    }
    ret = qed_get_entry(bs, l2_off, l2_index, &e);
    if (ret < 0) {
        return ret;
    }
    run->kind = qed_entry_kind(e);
    if (run->kind == QED_KIND_DATA) {
        if (!qed_cluster_offset_valid(s, e)) {
            return -EBADIMAGE;
        }
        run->host = e + in_cluster;
    }
    n = cs - in_cluster;
    while (n < limit) {
        uint64_t next;
        ret = qed_get_entry(bs, l2_off, ++l2_index, &next);
        if (ret < 0) {
            return ret;
        }
        if (qed_entry_kind(next) != run->kind) {
            break;
        }
        if (run->kind == QED_KIND_DATA) {
            if (next != e + cs || !qed_cluster_offset_valid(s, next)) {
                break;
            }
            e = next;
        }
        n += cs;
    }
    run->bytes = MIN(n, limit);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Probe, open, close                                                  */

static int qed_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    (void)filename;
    if (buf_size < QED_HEADER_BYTES || le32_load(buf) != QED_MAGIC) {
        return 0;
    }
    return 100;
}

static int qed_check_impl(BlockDriverState *bs, BdrvCheckResult *res, bool fix,
                          BdrvError *err);

static int qed_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVQEDState *s = bs->opaque;
    QEDHeader *h = &s->header;
    uint8_t buf[QED_HEADER_BYTES];
    int64_t file_len;
    uint64_t end;
    int ret;

    (void)flags;
    file_len = bdrv_getlength(bs->file);
    if (file_len < 0) {
        return bdrv_error_set(err, (int)file_len, "image '%s': could not get the file size",
                              bs->filename);
    }
    if (file_len < QED_HEADER_BYTES) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid QED image '%s': file too small for a QED header",
                              bs->filename);
    }
    ret = bdrv_pread(bs->file, 0, buf, sizeof(buf));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "image '%s': could not read the header: %s",
                              bs->filename, strerror(-ret));
    }
    qed_header_decode(h, buf);

    if (h->magic != QED_MAGIC) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid QED image '%s': not in QED format", bs->filename);
    }
    if (!qed_cluster_size_valid(h->cluster_size)) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "invalid QED image '%s': QED cluster size %" PRIu32 " is invalid",
                              bs->filename, h->cluster_size);
    }
    if (!qed_table_size_valid(h->table_size)) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "invalid QED image '%s': QED table size %" PRIu32 " is invalid",
                              bs->filename, h->table_size);
    }
    if (h->features & ~QED_F_KNOWN) {
        return bdrv_error_set(err, -ENOTSUP, "image '%s': unsupported QED features: %" PRIx64,
                              bs->filename, h->features & ~QED_F_KNOWN);
    }
    s->header_bytes = (uint64_t)h->header_size * h->cluster_size;
    if (h->header_size == 0 || s->header_bytes > UINT32_MAX) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "invalid QED image '%s': QED header size %" PRIu32 " clusters is invalid",
                              bs->filename, h->header_size);
    }
    s->cluster_bits = (uint32_t)ilog2_u64(h->cluster_size);
    s->table_bytes = (uint64_t)h->table_size * h->cluster_size;
    s->table_nelems = s->table_bytes / 8;
    s->table_bits = (uint32_t)ilog2_u64(s->table_nelems);
    s->file_end = ROUND_DOWN((uint64_t)file_len, (uint64_t)h->cluster_size);

    if (!IS_ALIGNED(h->image_size, BDRV_SECTOR_SIZE) ||
        h->image_size > qed_max_image_size(h->cluster_size, h->table_size)) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "invalid QED image '%s': QED image size %" PRIu64 " is invalid",
                              bs->filename, h->image_size);
    }
    if (s->header_bytes > s->file_end) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "invalid QED image '%s': the %" PRIu64 "-byte header area is past the end "
                              "of the file", bs->filename, s->header_bytes);
    }
    if (!IS_ALIGNED(h->l1_table_offset, (uint64_t)h->cluster_size)) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "invalid QED image '%s': L1 table offset 0x%" PRIx64
                              " is not cluster-aligned", bs->filename, h->l1_table_offset);
    }
    if (!qed_table_offset_valid(s, h->l1_table_offset)) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "invalid QED image '%s': L1 table offset 0x%" PRIx64 " is out of range "
                              "(the table must lie between the header and the end of the file)",
                              bs->filename, h->l1_table_offset);
    }

    if (h->features & QED_F_BACKING_FILE) {
        uint32_t len = h->backing_filename_size;
        if (ADD_OVERFLOW((uint64_t)h->backing_filename_offset, (uint64_t)len, &end) ||
            end > s->header_bytes || h->backing_filename_offset < QED_HEADER_BYTES) {
            return bdrv_error_set(err, -EBADIMAGE,
                                  "invalid QED image '%s': backing file name (offset %" PRIu32 ", size %"
                                  PRIu32 ") lies outside the header area", bs->filename,
                                  h->backing_filename_offset, len);
        }
        if (len == 0 || len > QED_MAX_BACKING_NAME || len >= sizeof(bs->backing_file)) {
            return bdrv_error_set(err, -EBADIMAGE,
                                  "invalid QED image '%s': backing file name size %" PRIu32 " is invalid",
                                  bs->filename, len);
        }
        ret = bdrv_pread(bs->file, h->backing_filename_offset, bs->backing_file, len);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "image '%s': could not read the backing file "
                                  "name: %s", bs->filename, strerror(-ret));
        }
        bs->backing_file[len] = '\0';
        if (strlen(bs->backing_file) != len) {
            bs->backing_file[0] = '\0';
            return bdrv_error_set(err, -EBADIMAGE,
                                  "invalid QED image '%s': backing file name contains a NUL byte",
                                  bs->filename);
        }
        if (h->features & QED_F_BACKING_NO_PROBE) {
            snprintf(bs->backing_format, sizeof(bs->backing_format), "raw");
        }
    }

    table_cache_init(&s->tables, QED_CACHE_SLOTS,
                     (uint32_t)MIN(s->table_bytes, (uint64_t)QED_PAGE_MAX), BDRV_SECTOR_SIZE,
                     false);
    bs->total_sectors = (int64_t)(h->image_size / BDRV_SECTOR_SIZE);

    if (!bs->read_only) {
        /* Unknown self-resetting features are dropped by writers that do not know them. */
        if (h->autoclear_features) {
            h->autoclear_features = 0;
            ret = qed_write_header(bs);
            if (ret < 0) {
                bdrv_error_set(err, ret, "image '%s': could not update the header: %s",
                               bs->filename, strerror(-ret));
                goto fail;
            }
        }
        /*
         * A read-write open of an image that was not closed cleanly checks and
         * repairs it first, as QEMU does; a read-only open cannot repair and
         * reads it as it is.
         */
        if (h->features & QED_F_NEED_CHECK) {
            BdrvCheckResult res;
            memset(&res, 0, sizeof(res));
            ret = qed_check_impl(bs, &res, true, err);
            if (ret < 0) {
                bdrv_error_prefix(err, "image '%s': the consistency check at open failed",
                                  bs->filename);
                goto fail;
            }
        }
    }
    return 0;

fail:
    table_cache_free(&s->tables);
    bs->backing_file[0] = '\0';
    bs->backing_format[0] = '\0';
    return ret;
}

static void qed_close(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;

    /* A clean close leaves a clean image (invariant 6); on error the flag stays set. */
    if (!bs->read_only) {
        qed_mark_clean(bs);
    }
    table_cache_free(&s->tables);
}

static int qed_flush(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - s->last_table_change.tv_sec < QED_NEED_CHECK_TIMEOUT) {
        return 0;
    }
    return qed_mark_clean(bs);
}

/* ------------------------------------------------------------------ */
/* Reads                                                               */

/*
 * Read guest range [@offset, +@qiov->size) from the backing file, or zeros
 * where there is none or it is shorter; past this image's own size (the
 * tail of its last cluster) too.
 */
static int qed_read_backing(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVQEDState *s = bs->opaque;

    return bdrv_read_backing(bs, offset, qiov, s->header.image_size);
}

static int qed_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    uint64_t done = 0;
    int ret = 0;

    while (done < qiov->size) {
        QEDRun run;
        QBIOVector part;

        ret = qed_find_run(bs, offset + done, qiov->size - done, &run);
        if (ret < 0) {
            return ret;
        }
        ret = qiov_init_slice(&part, qiov, (size_t)done, (size_t)run.bytes);
        if (ret < 0) {
            return ret;
        }
        switch (run.kind) {
        case QED_KIND_DATA:
            ret = bdrv_preadv(bs->file, run.host, &part);
            break;
        case QED_KIND_ZERO:
            qiov_memset(&part, 0, 0, part.size);
            break;
        case QED_KIND_UNALLOC:
            ret = qed_read_backing(bs, offset + done, &part);
            break;
        }
        qiov_destroy(&part);
        if (ret < 0) {
            return ret;
        }
        done += run.bytes;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Writes                                                              */

/* Reserve @bytes at the end of the file (invariant 1). */
static int qed_alloc(BlockDriverState *bs, uint64_t bytes, uint64_t *offset)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t end;

    if (ADD_OVERFLOW(s->file_end, bytes, &end) || end > (uint64_t)INT64_MAX) {
        return -EFBIG;
    }
    *offset = s->file_end;
    s->file_end = end;
    return 0;
}

/* Make the L2 table for L1 entry @l1_index, returning its offset (invariant 4). */
static int qed_alloc_l2(BlockDriverState *bs, uint64_t l1_index, uint64_t *l2_off)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t off;
    int ret;

    ret = qed_alloc(bs, s->table_bytes, &off);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_pwrite_zeroes(bs->file, off, s->table_bytes);
    if (ret < 0) {
        return ret;
    }
    *l2_off = off;
    (void)l1_index;
    return 0;
}

/* Link a new L2 table (already written and, per invariant 4, to be flushed) into the L1. */
static int qed_link_l2(BlockDriverState *bs, uint64_t l1_index, uint64_t l2_off)
{
    BDRVQEDState *s = bs->opaque;
    int ret = bdrv_flush(bs->file);

    if (ret < 0) {
        return ret;
    }
    return qed_set_entries(bs, s->header.l1_table_offset, l1_index, 1, l2_off, 0);
}

/*
 * Point the entries for guest clusters [@offset, +@bytes) (cluster aligned,
 * inside one L2 table) at @first, @first+@step...; the L2 table is made
 * when @run_l2 is 0.
 */
static int qed_update_l2(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                         uint64_t run_l2, uint64_t first, uint64_t step)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t l1_index = offset >> (s->cluster_bits + s->table_bits);
    uint64_t l2_index = (offset >> s->cluster_bits) & (s->table_nelems - 1);
    uint64_t n = bytes >> s->cluster_bits;
    int ret;

    if (run_l2) {
        return qed_set_entries(bs, run_l2, l2_index, n, first, step);
    }
    ret = qed_alloc_l2(bs, l1_index, &run_l2);
    if (ret < 0) {
        return ret;
    }
    ret = qed_set_entries(bs, run_l2, l2_index, n, first, step);
    if (ret < 0) {
        return ret;
    }
    return qed_link_l2(bs, l1_index, run_l2);
}

/* Old contents of guest range [@offset, +@len) in a cluster of @kind being allocated. */
static int qed_cow_fill(BlockDriverState *bs, QEDKind kind, uint64_t offset, uint8_t *buf,
                        size_t len)
{
    QBIOVector q;

    if (len == 0) {
        return 0;
    }
    if (kind == QED_KIND_ZERO || !bs->backing) {
        memset(buf, 0, len);
        return 0;
    }
    qiov_init_buf(&q, buf, len);
    return qed_read_backing(bs, offset, &q);
}

/*
 * Allocating write: new clusters for the guest range [@offset, +@bytes) of
 * a run of @kind (unallocated or zero) in L2 table @run_l2; @data holds the
 * bytes to write, or is NULL to write zeros. Partial clusters at the edges
 * are completed with their old contents, and whole clusters are written so
 * the file never ends inside a cluster.
 */
static int qed_write_alloc(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                           QBIOVector *data, QEDKind kind, uint64_t run_l2)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    uint64_t start = ROUND_DOWN(offset, cs);
    uint64_t end = ROUND_UP(offset + bytes, cs);
    size_t head = (size_t)(offset - start);
    size_t tail = (size_t)(end - offset - bytes);
    uint8_t *pad = NULL, *zeros = NULL;
    QBIOVector v;
    uint64_t host;
    uint64_t old_end = s->file_end;
    bool linking = false;
    int ret;

    ret = qed_mark_need_check(bs);
    if (ret < 0) {
        return ret;
    }
    ret = qed_alloc(bs, end - start, &host);
    if (ret < 0) {
        return ret;
    }
    ret = qiov_init(&v, (data ? data->niov : 1) + 2);
    if (ret < 0) {
        goto out;
    }
    if (head + tail) {
        pad = malloc(head + tail);
        if (!pad) {
            ret = -ENOMEM;
            goto out;
        }
        ret = qed_cow_fill(bs, kind, start, pad, head);
        if (ret == 0) {
            ret = qed_cow_fill(bs, kind, offset + bytes, pad + head, tail);
        }
        if (ret < 0) {
            goto out;
        }
        ret = qiov_add(&v, pad, head);
        if (ret < 0) {
            goto out;
        }
    }
    if (data) {
        for (int i = 0; i < data->niov && ret == 0; i++) {
            ret = qiov_add(&v, data->iov[i].iov_base, data->iov[i].iov_len);
        }
    } else {
        zeros = calloc(1, (size_t)bytes);
        ret = zeros ? qiov_add(&v, zeros, (size_t)bytes) : -ENOMEM;
    }
    if (ret == 0 && tail) {
        ret = qiov_add(&v, pad + head, tail);
    }
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_pwritev(bs->file, host, &v);
    if (ret < 0) {
        goto out;
    }
    /* Invariant 3. */
    if (bs->backing && kind == QED_KIND_UNALLOC) {
        ret = bdrv_flush(bs->file);
        if (ret < 0) {
            goto out;
        }
    }
    linking = true;
    ret = qed_update_l2(bs, start, end - start, run_l2, host, cs);

out:
    if (ret < 0 && !linking && s->file_end == host + (end - start) && host == old_end) {
        /*
         * No table write was attempted, so nothing can point at the space:
         * the next allocation may reuse it. Once a table write was tried,
         * the disk may hold the new entry whatever the error said, and the
         * space must stay taken (invariant 1).
         */
        s->file_end = old_end;
    }
    qiov_destroy(&v);
    free(pad);
    free(zeros);
    return ret;
}

static int qed_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    uint64_t done = 0;
    int ret;

    while (done < qiov->size) {
        QEDRun run;
        QBIOVector part;

        ret = qed_find_run(bs, offset + done, qiov->size - done, &run);
        if (ret < 0) {
            return ret;
        }
        ret = qiov_init_slice(&part, qiov, (size_t)done, (size_t)run.bytes);
        if (ret < 0) {
            return ret;
        }
        if (run.kind == QED_KIND_DATA) {
            ret = bdrv_pwritev(bs->file, run.host, &part);
        } else {
            ret = qed_write_alloc(bs, offset + done, run.bytes, &part, run.kind,
                                  run.l2_offset);
        }
        qiov_destroy(&part);
        if (ret < 0) {
            return ret;
        }
        done += run.bytes;
    }
    return 0;
}

/*
 * Zeros: allocated clusters are zeroed in place (nothing leaks), whole
 * unallocated clusters become zero clusters (which also hide the backing
 * file), and partial clusters that would not already read as zeros get an
 * ordinary allocating write.
 */
static int qed_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    uint64_t done = 0;
    int ret;

    while (done < bytes) {
        uint64_t pos = offset + done;
        uint64_t n, first, last;
        QEDRun run;

        ret = qed_find_run(bs, pos, bytes - done, &run);
        if (ret < 0) {
            return ret;
        }
        n = run.bytes;
        switch (run.kind) {
        case QED_KIND_DATA:
            ret = bdrv_pwrite_zeroes(bs->file, run.host, n);
            break;
        case QED_KIND_ZERO:
            ret = 0;
            break;
        case QED_KIND_UNALLOC:
            if (!bs->backing && !run.l2_offset) {
                /* Reads as zeros already; an L2 table made for it would only waste space. */
                ret = 0;
                break;
            }
            first = ROUND_UP(pos, cs);
            last = ROUND_DOWN(pos + n, cs);
            if (first != pos || last == pos) {
                /*
                 * The partial cluster at either edge: it already reads as zeros
                 * without a backing file, else it needs real zeros written.
                 */
                if (first != pos) {
                    n = MIN(n, first - pos);
                }
                ret = bs->backing ? qed_write_alloc(bs, pos, n, NULL, run.kind, run.l2_offset)
                                  : 0;
                break;
            }
            n = last - pos;
            ret = qed_mark_need_check(bs);
            if (ret == 0) {
                ret = qed_update_l2(bs, pos, n, run.l2_offset, QED_ENTRY_ZERO, 0);
            }
            break;
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/*
 * Discard keeps every mapping and punches holes in the data clusters
 * instead: QED has no free-space accounting, so unlinking a cluster would
 * only leak it (qemu-img check would count it). The range then reads as
 * whatever the host file system returns for a hole (zeros), or as before
 * where it cannot punch holes.
 */
static int qed_pdiscard(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    uint64_t done = 0;
    int ret;

    while (done < bytes) {
        QEDRun run;
        uint64_t pos = offset + done;

        ret = qed_find_run(bs, pos, bytes - done, &run);
        if (ret < 0) {
            return ret;
        }
        if (run.kind == QED_KIND_DATA) {
            /* Only whole clusters: a partial one keeps its data. */
            uint64_t first = ROUND_UP(pos, cs), last = ROUND_DOWN(pos + run.bytes, cs);
            if (first < last) {
                ret = bdrv_pdiscard(bs->file, run.host + (first - pos), last - first);
                if (ret < 0 && ret != -ENOTSUP) {
                    return ret;
                }
            }
        }
        done += run.bytes;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Status, size, information                                           */

static int qed_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    uint64_t done = 0;
    QEDRun first;
    int ret;

    ret = qed_find_run(bs, offset, bytes, &first);
    if (ret < 0) {
        return ret;
    }
    done = first.bytes;
    /* Runs continue across L2 tables when they keep the same kind (and contiguity). */
    while (done < bytes) {
        QEDRun next;
        ret = qed_find_run(bs, offset + done, bytes - done, &next);
        if (ret < 0 || next.kind != first.kind ||
            (first.kind == QED_KIND_DATA && next.host != first.host + done)) {
            break;
        }
        done += next.bytes;
    }
    *pnum = done;
    switch (first.kind) {
    case QED_KIND_DATA:
        *map = first.host;
        *file = bs->file;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
    case QED_KIND_ZERO:
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
    default:
        return 0;
    }
}

/* Grow only: QEMU refuses to shrink QED images, and so does this driver. */
static int qed_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                        BdrvError *err)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t old = s->header.image_size;
    int ret;

    if (prealloc != BDRV_PREALLOC_OFF) {
        return bdrv_error_set(err, -ENOTSUP, "image '%s': QED supports only "
                              "preallocation=off when resizing", bs->filename);
    }
    if (offset < old) {
        return bdrv_error_set(err, -ENOTSUP, "image '%s': shrinking QED images is not "
                              "supported", bs->filename);
    }
    if (!IS_ALIGNED(offset, BDRV_SECTOR_SIZE) ||
        offset > qed_max_image_size(s->header.cluster_size, s->header.table_size)) {
        return bdrv_error_set(err, -EINVAL, "image '%s': invalid QED image size %" PRIu64
                              " (it must be a multiple of 512 and at most %" PRIu64 ")",
                              bs->filename, offset,
                              qed_max_image_size(s->header.cluster_size, s->header.table_size));
    }
    if (offset == old) {
        return 0;
    }
    s->header.image_size = offset;
    ret = qed_write_header(bs);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        s->header.image_size = old;
        return bdrv_error_set(err, ret, "image '%s': could not write the new size: %s",
                              bs->filename, strerror(-ret));
    }
    bs->total_sectors = (int64_t)(offset / BDRV_SECTOR_SIZE);
    return 0;
}

static int qed_has_zero_init(BlockDriverState *bs)
{
    (void)bs;
    return 1;
}

static int qed_is_dirty(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    return (s->header.features & QED_F_NEED_CHECK) != 0;
}

static int qed_get_specific_info(BlockDriverState *bs, QBlockSpecificInfo *info, BdrvError *err)
{
    BDRVQEDState *s = bs->opaque;
    struct QBlockSpecificQed *q = &info->u.qed;

    info->fmt_type = QB_FMT_QED;
    q->cluster_size = s->header.cluster_size;
    q->table_size = s->header.table_size;
    q->features = s->header.features;
    q->need_check = (s->header.features & QED_F_NEED_CHECK) != 0;
    if ((bs->backing_file[0] && !(q->backing_file = strdup(bs->backing_file))) ||
        (bs->backing_format[0] && !(q->backing_fmt = strdup(bs->backing_format)))) {
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
    }
    return 0;
}

static int qed_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQEDState *s = bs->opaque;

    bdi->cluster_size = (int)s->header.cluster_size;
    bdi->is_dirty = (s->header.features & QED_F_NEED_CHECK) != 0;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Check                                                               */

/*
 * The verdicts follow qemu-img check on QED (observed with 7.2): every
 * data entry other than 0 and 1 counts as an allocated cluster, and as
 * fragmented when it does not follow the previous one of its table; an
 * entry that is unaligned or outside [header, end of file rounded down)
 * is a corruption, fixed by clearing it; a cluster referenced twice is a
 * corruption that cannot be fixed; clusters past the header that nothing
 * references are leaks, which QED cannot reclaim.
 */
typedef struct QEDCheck {
    BlockDriverState *bs;
    BdrvCheckResult *res;
    bool fix;
    uint64_t nclusters;
    uint8_t *used;
} QEDCheck;

/* Mark @n clusters from @off used; false (and corruptions counted) if any already was. */
static bool qed_check_mark_used(QEDCheck *c, uint64_t off, uint64_t n)
{
    BDRVQEDState *s = c->bs->opaque;
    uint64_t cl = off >> s->cluster_bits;
    int dups = 0;

    for (uint64_t i = 0; i < n; i++, cl++) {
        if (cl >= c->nclusters) {
            continue;   /* callers only pass validated offsets; be safe anyway */
        }
        if (c->used[cl / 8] & (1u << (cl % 8))) {
            dups++;
        }
        c->used[cl / 8] |= (uint8_t)(1u << (cl % 8));
    }
    c->res->corruptions += dups;
    return dups == 0;
}

static int qed_check_l2(QEDCheck *c, uint64_t l2_off)
{
    BlockDriverState *bs = c->bs;
    BDRVQEDState *s = bs->opaque;
    uint64_t last = 0;
    int ret;

    for (uint64_t i = 0; i < s->table_nelems; i++) {
        uint64_t e;

        ret = qed_get_entry(bs, l2_off, i, &e);
        if (ret < 0) {
            return ret;
        }
        if (e == QED_ENTRY_UNALLOC || e == QED_ENTRY_ZERO) {
            continue;
        }
        c->res->allocated_clusters++;
        if (last && last + s->header.cluster_size != e) {
            c->res->fragmented_clusters++;
        }
        last = e;
        if (!qed_cluster_offset_valid(s, e)) {
            if (c->fix) {
                ret = qed_set_entries(bs, l2_off, i, 1, QED_ENTRY_UNALLOC, 0);
                if (ret < 0) {
                    return ret;
                }
                c->res->corruptions_fixed++;
            } else {
                c->res->corruptions++;
            }
            continue;
        }
        qed_check_mark_used(c, e, 1);
    }
    return 0;
}

static int qed_check_impl(BlockDriverState *bs, BdrvCheckResult *res, bool fix,
                          BdrvError *err)
{
    BDRVQEDState *s = bs->opaque;
    QEDCheck c = { .bs = bs, .res = res, .fix = fix };
    bool scanned = true;
    int ret;

    /* Repairs change tables: the flag goes first (invariant 2). */
    if (fix) {
        ret = qed_mark_need_check(bs);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "image '%s': could not mark the image for "
                                  "checking: %s", bs->filename, strerror(-ret));
        }
    }
    c.nclusters = s->file_end >> s->cluster_bits;
    c.used = calloc(1, (size_t)(c.nclusters / 8 + 1));
    if (!c.used) {
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory for the check of "
                              "%" PRIu64 " clusters", bs->filename, c.nclusters);
    }
    res->total_clusters = DIV_ROUND_UP(s->header.image_size, (uint64_t)s->header.cluster_size);
    for (uint64_t i = 0; i < s->header.header_size && i < c.nclusters; i++) {
        c.used[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    qed_check_mark_used(&c, s->header.l1_table_offset, s->header.table_size);

    for (uint64_t i = 0; i < s->table_nelems; i++) {
        uint64_t l2;

        ret = qed_get_entry(bs, s->header.l1_table_offset, i, &l2);
        if (ret < 0) {
            res->check_errors++;
            scanned = false;
            break;
        }
        if (l2 == 0) {
            continue;
        }
        if (!qed_table_offset_valid(s, l2)) {
            if (fix) {
                ret = qed_set_entries(bs, s->header.l1_table_offset, i, 1, 0, 0);
                if (ret < 0) {
                    res->check_errors++;
                    scanned = false;
                    continue;
                }
                res->corruptions_fixed++;
            } else {
                res->corruptions++;
            }
            continue;
        }
        if (!qed_check_mark_used(&c, l2, s->header.table_size)) {
            continue;   /* a table that overlaps another is not trusted */
        }
        ret = qed_check_l2(&c, l2);
        if (ret < 0) {
            res->check_errors++;
            scanned = false;
        }
    }
    /* Leaks are only meaningful when every table was read. */
    if (scanned) {
        for (uint64_t cl = s->header.header_size; cl < c.nclusters; cl++) {
            if (!(c.used[cl / 8] & (1u << (cl % 8)))) {
                res->leaks++;
            }
        }
    }
    free(c.used);

    if (fix && res->corruptions == 0 && res->check_errors == 0) {
        ret = qed_mark_clean(bs);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "image '%s': could not clear the need-check "
                                  "flag: %s", bs->filename, strerror(-ret));
        }
    }
    return 0;
}

static int qed_check(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err)
{
    /* Like QEMU, any repair request repairs everything repairable. */
    return qed_check_impl(bs, res, fix != 0, err);
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

static int qed_create(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    uint64_t size = ROUND_UP(bdrv_opts_get_size(opts, "size"), BDRV_SECTOR_SIZE);
    uint64_t cluster_size = bdrv_opts_get_size(opts, "cluster_size");
    uint64_t table_size = bdrv_opts_get_size(opts, "table_size");
    const char *backing = bdrv_opts_get_str(opts, "backing_file");
    const char *backing_fmt = bdrv_opts_get_str(opts, "backing_fmt");
    uint8_t *hdr = NULL;
    BlockDriverState *file = NULL;
    QEDHeader h;
    size_t name_len = backing ? strlen(backing) : 0;
    int ret;

    if (!qed_cluster_size_valid(cluster_size)) {
        return bdrv_error_set(err, -EINVAL, "QED cluster size must be within range [%u, %u] "
                              "and power of 2", QED_MIN_CLUSTER_SIZE, QED_MAX_CLUSTER_SIZE);
    }
    if (!qed_table_size_valid(table_size)) {
        return bdrv_error_set(err, -EINVAL, "QED table size must be within range [%u, %u] "
                              "and power of 2", QED_MIN_TABLE_SIZE, QED_MAX_TABLE_SIZE);
    }
    /*
     * With large clusters and tables the addressable size passes 2^64, where
     * qemu-img 7.2's 64-bit arithmetic wraps to 0: it refuses to create such
     * images and could not open them. Refuse them too, for compatibility.
     */
    if (2 * ilog2_u64(table_size * cluster_size / 8) + ilog2_u64(cluster_size) >= 64) {
        return bdrv_error_set(err, -EINVAL, "QED cluster size %" PRIu64 " with table size %"
                              PRIu64 " is not usable: the addressable size overflows 64 bits "
                              "(QEMU cannot open such images)", cluster_size, table_size);
    }
    if (size > qed_max_image_size((uint32_t)cluster_size, (uint32_t)table_size)) {
        return bdrv_error_set(err, -EINVAL, "invalid image size specified: it must be a "
                              "multiple of 512 and at most %" PRIu64 " bytes",
                              qed_max_image_size((uint32_t)cluster_size, (uint32_t)table_size));
    }
    if (backing && (name_len > QED_MAX_BACKING_NAME ||
                    name_len > cluster_size - QED_HEADER_BYTES)) {
        return bdrv_error_set(err, -EINVAL, "backing file name '%.64s...' is too long for a "
                              "QED header", backing);
    }

    memset(&h, 0, sizeof(h));
    h.magic = QED_MAGIC;
    h.cluster_size = (uint32_t)cluster_size;
    h.table_size = (uint32_t)table_size;
    h.header_size = 1;
    h.l1_table_offset = cluster_size;
    h.image_size = size;
    if (backing) {
        h.features |= QED_F_BACKING_FILE;
        h.backing_filename_offset = QED_HEADER_BYTES;
        h.backing_filename_size = (uint32_t)name_len;
        /* A raw backing file is never probed, so its data cannot pass for a format. */
        if (backing_fmt && strcmp(backing_fmt, "raw") == 0) {
            h.features |= QED_F_BACKING_NO_PROBE;
        }
    }

    hdr = calloc(1, QED_HEADER_BYTES + name_len);
    if (!hdr) {
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    qed_header_encode(&h, hdr);
    if (name_len) {
        memcpy(hdr + QED_HEADER_BYTES, backing, name_len);
    }

    ret = bdrv_create_file(filename, 0, BDRV_PREALLOC_OFF, flags, err);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_file_open_for(&file, filename, &bdrv_qed, BDRV_O_RDWR | (flags & BDRV_O_NO_FLUSH), err);
    if (ret < 0) {
        goto out;
    }
    /* The header cluster and an all-zero L1 table; the file ends after the L1. */
    ret = bdrv_truncate(file, cluster_size + table_size * cluster_size, BDRV_PREALLOC_OFF, err);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_pwrite(file, 0, hdr, QED_HEADER_BYTES + name_len);
    if (ret == 0) {
        ret = bdrv_flush(file);
    }
    if (ret < 0) {
        bdrv_error_set(err, ret, "could not write the QED header of '%s': %s", filename,
                       strerror(-ret));
    }
out:
    bdrv_close(file);
    free(hdr);
    return ret;
}

const BlockDriver bdrv_qed = {
    .bdrv_change_backing_file = qed_change_backing_file,
    .format_name = "qed",
    .instance_size = sizeof(BDRVQEDState),
    .thread_safe = false,
    .shares_write = false,
    .supports_backing = true,
    .caps = BDRV_CAP_REPAIR,
    .bdrv_probe = qed_probe,
    .bdrv_open = qed_open,
    .bdrv_close = qed_close,
    .bdrv_create = qed_create,
    .create_opts = qed_create_opts,
    .bdrv_preadv = qed_preadv,
    .bdrv_pwritev = qed_pwritev,
    .bdrv_pwrite_zeroes = qed_pwrite_zeroes,
    .bdrv_flush = qed_flush,
    .bdrv_pdiscard = qed_pdiscard,
    .bdrv_block_status = qed_block_status,
    .bdrv_truncate = qed_truncate,
    .bdrv_has_zero_init = qed_has_zero_init,
    .bdrv_is_dirty = qed_is_dirty,
    .bdrv_get_info = qed_get_info,
    .bdrv_check = qed_check,
    .bdrv_get_specific_info = qed_get_specific_info,
};
