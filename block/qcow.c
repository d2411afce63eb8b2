/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qcow.c: the original QEMU copy-on-write format (qcow version 1): a
 * 48-byte big-endian header, a two-level table of cluster offsets, clusters
 * appended at the end of the file, optional deflate-compressed clusters.
 *
 * Layout facts come from the libyal/libqcow format documentation and from
 * images qemu-img 7.2 wrote (formats.md §3); the code is this library's own.
 * AES-encrypted images are refused (-ENOTSUP): the scheme is broken by
 * design and QEMU itself only keeps it for converting old images away.
 *
 * Ordering of metadata writes (the invariants a crash must not break):
 *
 *  1. Clusters and L2 tables are only appended past the end of the file,
 *     never reused, so an entry can never come to point at space that held
 *     something else. (qcow has no reference counts; space left behind by a
 *     crash, or by rewriting a compressed cluster, is merely unused.)
 *  2. Data is written before the L2 entry that points at it. With a backing
 *     file, the data is flushed first: otherwise a crash could leave an
 *     entry pointing at a cluster whose copy of the backing data never
 *     reached the disk, which would then read as zeros. Without a backing
 *     file, a cluster that never received its data reads as zeros, which is
 *     what the unallocated cluster read as before.
 *  3. A new L2 table is written in full and flushed before the L1 entry
 *     that points at it.
 *  4. Metadata is written through: the table cache never holds a change the
 *     disk lacks, so flush and close have no metadata to write back.
 *
 * A crash between any two writes therefore leaves at worst unused space at
 * the end of the file; no entry points at unwritten or reused space.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "block/block_int.h"
#include "table-cache.h"

#define QCOW_MAGIC             0x514649FBu   /* "QFI\xfb" */
#define QCOW_VERSION           1
#define QCOW_HEADER_BYTES      48
#define QCOW_CRYPT_NONE        0
#define QCOW_CRYPT_AES         1
#define QCOW_OFLAG_COMPRESSED  (UINT64_C(1) << 63)
#define QCOW_MAX_BACKING_NAME  1023u

/* QEMU's open limits (formats.md §3.3). */
#define QCOW_MIN_CLUSTER_BITS  9
#define QCOW_MAX_CLUSTER_BITS  16
#define QCOW_MIN_L2_BITS       6
#define QCOW_MAX_L2_BITS       13

/*
 * Metadata is cached as 4 KiB pages of the file (L1 and L2 entries alike),
 * 128 of them: 512 KiB at most, whatever the size of the tables.
 */
#define QCOW_PAGE_SIZE         4096u
#define QCOW_CACHE_SLOTS       128

typedef struct QcowHeader {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t mtime;
    uint64_t size;
    uint8_t cluster_bits;
    uint8_t l2_bits;
    uint32_t crypt_method;
    uint64_t l1_table_offset;
} QcowHeader;

typedef struct BDRVQcowState {
    QcowHeader header;
    uint32_t cluster_size;
    uint64_t l2_nelems;
    uint64_t l2_bytes;
    uint64_t l1_size;         /* entries */
    uint64_t file_end;        /* next allocation: the file's end rounded up to a cluster */
    uint64_t file_len;        /* bytes of the file (bounds for compressed data) */
    TableCache tables;
    /* The last cluster decompressed, kept because reads often come in pieces. */
    uint8_t *zbuf;            /* compressed input, one cluster at most */
    uint8_t *zcluster;        /* decompressed cluster */
    uint64_t zcluster_entry;  /* the L2 entry it came from; 0 when none */
} BDRVQcowState;

typedef enum QcowKind {
    QCOW_KIND_UNALLOC,
    QCOW_KIND_DATA,
    QCOW_KIND_COMPRESSED,
} QcowKind;

typedef struct QcowRun {
    QcowKind kind;
    uint64_t bytes;
    uint64_t host;            /* DATA: file offset of the request offset */
    uint64_t entry;           /* COMPRESSED: the L2 entry (one cluster per run) */
    uint64_t l2_offset;       /* 0 when the L2 table does not exist */
} QcowRun;

static const BdrvOptDesc qcow_create_opts[] = {
    { .name = "size", .type = BDRV_OPT_SIZE, .def = "0", .help = "Size of the virtual disk" },
    { .name = "backing_file", .type = BDRV_OPT_STRING,
      .help = "Image that unwritten areas are read from" },
    { .name = "backing_fmt", .type = BDRV_OPT_STRING,
      .help = "Format name of the backing image (accepted; qcow has nowhere to "
              "record it)" },
    { .name = "encryption", .type = BDRV_OPT_BOOL, .def = "off",
      .help = "AES encryption of the image (refused: not supported)" },
    { 0 }
};

/* ------------------------------------------------------------------ */
/* Tables                                                              */

/* The big-endian entry at file offset @off (8-aligned). */
static int qcow_get_u64(BlockDriverState *bs, uint64_t off, uint64_t *val)
{
    BDRVQcowState *s = bs->opaque;
    return table_cache_get(&s->tables, bs->file, off, val);
}

/*
 * Write @n entries @first, @first+@step, ... at file offset @off (8-aligned)
 * through the cache to the disk; exactly those bytes are written, because a
 * table need not fill whole sectors.
 */
static int qcow_set_u64s(BlockDriverState *bs, uint64_t off, uint64_t n, uint64_t first,
                         uint64_t step)
{
    BDRVQcowState *s = bs->opaque;
    return table_cache_set(&s->tables, bs->file, off, n, first, step);
}

static void qcow_free_buffers(BDRVQcowState *s)
{
    table_cache_free(&s->tables);
    free(s->zbuf);
    free(s->zcluster);
    s->zbuf = NULL;
    s->zcluster = NULL;
}

/* ------------------------------------------------------------------ */
/* Mapping                                                             */

static bool qcow_l2_offset_valid(BDRVQcowState *s, uint64_t off)
{
    uint64_t end;
    return IS_ALIGNED(off, 8) && off >= QCOW_HEADER_BYTES &&
           !ADD_OVERFLOW(off, s->l2_bytes, &end) && end <= s->file_end;
}

static QcowKind qcow_entry_kind(uint64_t e)
{
    if (e == 0) {
        return QCOW_KIND_UNALLOC;
    }
    return (e & QCOW_OFLAG_COMPRESSED) ? QCOW_KIND_COMPRESSED : QCOW_KIND_DATA;
}

static bool qcow_data_offset_valid(BDRVQcowState *s, uint64_t e)
{
    return IS_ALIGNED(e, BDRV_SECTOR_SIZE) && e >= QCOW_HEADER_BYTES && e < s->file_end &&
           e <= (uint64_t)INT64_MAX - s->cluster_size;
}

static void qcow_compressed_extent(BDRVQcowState *s, uint64_t e, uint64_t *off, uint64_t *len)
{
    unsigned shift = 63u - s->header.cluster_bits;
    *off = e & ((UINT64_C(1) << shift) - 1);
    *len = (e >> shift) & (s->cluster_size - 1);
}

/*
 * The run starting at guest @offset, at most @bytes long, of clusters of
 * one kind within one L2 table (data runs contiguous in the file,
 * compressed runs one cluster long).
 */
static int qcow_find_run(BlockDriverState *bs, uint64_t offset, uint64_t bytes, QcowRun *run)
{
    BDRVQcowState *s = bs->opaque;
    uint32_t cb = s->header.cluster_bits;
    uint32_t l1_shift = cb + s->header.l2_bits;
    uint64_t l1_index = offset >> l1_shift;
    uint64_t l2_index = (offset >> cb) & (s->l2_nelems - 1);
    uint64_t in_cluster = offset & (s->cluster_size - 1);
    uint64_t span_end = (l1_index + 1) << l1_shift;
    uint64_t limit = MIN(bytes, span_end - offset);
    uint64_t l2, e, n;
    int ret;

    if (l1_index >= s->l1_size) {
        return -EBADIMAGE;   /* cannot happen for requests inside the image */
    }
    ret = qcow_get_u64(bs, s->header.l1_table_offset + l1_index * 8, &l2);
    if (ret < 0) {
        return ret;
    }
    run->l2_offset = l2;
    run->host = 0;
    run->entry = 0;
    if (l2 == 0) {
        run->kind = QCOW_KIND_UNALLOC;
        run->bytes = limit;
        return 0;
    }
    if (!qcow_l2_offset_valid(s, l2)) {
        return -EBADIMAGE;
    }
    ret = qcow_get_u64(bs, l2 + l2_index * 8, &e);
    if (ret < 0) {
        return ret;
    }
    run->kind = qcow_entry_kind(e);
    n = s->cluster_size - in_cluster;
    if (run->kind == QCOW_KIND_COMPRESSED) {
        uint64_t zoff, zlen, zend;
        qcow_compressed_extent(s, e, &zoff, &zlen);
        if (zlen == 0 || ADD_OVERFLOW(zoff, zlen, &zend) || zend > s->file_len ||
            zoff < QCOW_HEADER_BYTES) {
            return -EBADIMAGE;
        }
        run->entry = e;
        run->bytes = MIN(n, limit);
        return 0;
    }
    if (run->kind == QCOW_KIND_DATA) {
        if (!qcow_data_offset_valid(s, e)) {
            return -EBADIMAGE;
        }
        run->host = e + in_cluster;
    }
    while (n < limit) {
        uint64_t next;
        ret = qcow_get_u64(bs, l2 + (++l2_index) * 8, &next);
        if (ret < 0) {
            return ret;
        }
        if (qcow_entry_kind(next) != run->kind) {
            break;
        }
        if (run->kind == QCOW_KIND_DATA) {
            if (next != e + s->cluster_size || !qcow_data_offset_valid(s, next)) {
                break;
            }
            e = next;
        }
        n += s->cluster_size;
    }
    run->bytes = MIN(n, limit);
    return 0;
}

/* Decompress the cluster of L2 entry @e into s->zcluster. */
static int qcow_load_compressed(BlockDriverState *bs, uint64_t e)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t zoff, zlen;
    z_stream zs;
    int ret, zret;

    if (s->zcluster_entry == e && s->zcluster) {
        return 0;
    }
    if (!s->zbuf) {
        s->zbuf = malloc(s->cluster_size);
        s->zcluster = malloc(s->cluster_size);
        if (!s->zbuf || !s->zcluster) {
            free(s->zbuf);
            free(s->zcluster);
            s->zbuf = s->zcluster = NULL;
            return -ENOMEM;
        }
    }
    s->zcluster_entry = 0;
    qcow_compressed_extent(s, e, &zoff, &zlen);
    ret = bdrv_pread(bs->file, zoff, s->zbuf, (size_t)zlen);
    if (ret < 0) {
        return ret;
    }
    memset(&zs, 0, sizeof(zs));
    /* Raw deflate, no zlib header, 4 KiB window: what qemu-img writes. */
    if (inflateInit2(&zs, -12) != Z_OK) {
        return -ENOMEM;
    }
    zs.next_in = s->zbuf;
    zs.avail_in = (uInt)zlen;
    zs.next_out = s->zcluster;
    zs.avail_out = s->cluster_size;
    zret = inflate(&zs, Z_FINISH);
    inflateEnd(&zs);
    /* A stream that fills the cluster is complete even without its end marker. */
    if ((zret != Z_STREAM_END && zret != Z_BUF_ERROR) || zs.avail_out != 0) {
        return -EBADIMAGE;
    }
    s->zcluster_entry = e;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Probe, open, close                                                  */

static int qcow_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    (void)filename;
    if (buf_size >= 8 && be32_load(buf) == QCOW_MAGIC && be32_load(buf + 4) == QCOW_VERSION) {
        return 100;
    }
    return 0;
}

static void qcow_header_decode(QcowHeader *h, const uint8_t *b)
{
    h->magic = be32_load(b + 0);
    h->version = be32_load(b + 4);
    h->backing_file_offset = be64_load(b + 8);
    h->backing_file_size = be32_load(b + 16);
    h->mtime = be32_load(b + 20);
    h->size = be64_load(b + 24);
    h->cluster_bits = b[32];
    h->l2_bits = b[33];
    h->crypt_method = be32_load(b + 36);
    h->l1_table_offset = be64_load(b + 40);
}

static void qcow_header_encode(const QcowHeader *h, uint8_t *b)
{
    memset(b, 0, QCOW_HEADER_BYTES);
    be32_store(b + 0, h->magic);
    be32_store(b + 4, h->version);
    be64_store(b + 8, h->backing_file_offset);
    be32_store(b + 16, h->backing_file_size);
    be32_store(b + 20, h->mtime);
    be64_store(b + 24, h->size);
    b[32] = h->cluster_bits;
    b[33] = h->l2_bits;
    be32_store(b + 36, h->crypt_method);
    be64_store(b + 40, h->l1_table_offset);
}

static int qcow_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVQcowState *s = bs->opaque;
    QcowHeader *h = &s->header;
    uint8_t buf[QCOW_HEADER_BYTES];
    uint64_t span, l1_bytes, end;
    int64_t file_len;
    int ret;

    (void)flags;
    file_len = bdrv_getlength(bs->file);
    if (file_len < 0) {
        return bdrv_error_set(err, (int)file_len, "image '%s': could not get the file size",
                              bs->filename);
    }
    if (file_len < QCOW_HEADER_BYTES) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': file too small for a qcow header",
                              bs->filename);
    }
    ret = bdrv_pread(bs->file, 0, buf, sizeof(buf));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "image '%s': could not read the header: %s",
                              bs->filename, strerror(-ret));
    }
    qcow_header_decode(h, buf);
    s->file_len = (uint64_t)file_len;

    if (h->magic != QCOW_MAGIC) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': not in qcow format", bs->filename);
    }
    if (h->version != QCOW_VERSION) {
        return bdrv_error_set(err, -ENOTSUP, "image '%s': qcow version %" PRIu32 " is not "
                              "supported by the qcow (v1) driver%s", bs->filename, h->version,
                              h->version == 2 || h->version == 3 ? " (open it as qcow2)" : "");
    }
    if (h->size <= 1) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': image size %" PRIu64 " is too "
                              "small (must be at least 2 bytes)", bs->filename, h->size);
    }
    if (h->cluster_bits < QCOW_MIN_CLUSTER_BITS || h->cluster_bits > QCOW_MAX_CLUSTER_BITS) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': cluster_bits %u is invalid (the "
                              "cluster size must be between 512 and 64k)", bs->filename,
                              h->cluster_bits);
    }
    if (h->l2_bits < QCOW_MIN_L2_BITS || h->l2_bits > QCOW_MAX_L2_BITS) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': l2_bits %u is invalid (the L2 "
                              "table size must be between 512 and 64k)", bs->filename,
                              h->l2_bits);
    }
    if (h->crypt_method > QCOW_CRYPT_AES) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': invalid encryption method %" PRIu32
                              " in the qcow header", bs->filename, h->crypt_method);
    }
    if (h->crypt_method == QCOW_CRYPT_AES) {
        return bdrv_error_set(err, -ENOTSUP, "image '%s': AES-encrypted qcow images are not "
                              "supported (the scheme is insecure; decrypt the image with "
                              "qemu-img convert)", bs->filename);
    }
    s->cluster_size = 1u << h->cluster_bits;
    s->l2_nelems = UINT64_C(1) << h->l2_bits;
    s->l2_bytes = s->l2_nelems * 8;
    span = UINT64_C(1) << (h->cluster_bits + h->l2_bits);
    if (h->size > UINT64_MAX - span) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': image too large", bs->filename);
    }
    s->l1_size = DIV_ROUND_UP(h->size, span);
    if (s->l1_size > INT32_MAX / 8 || h->size > (uint64_t)INT64_MAX) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': image too large (%" PRIu64
                              " L1 entries)", bs->filename, s->l1_size);
    }
    l1_bytes = s->l1_size * 8;
    if (!IS_ALIGNED(h->l1_table_offset, 8) || h->l1_table_offset < QCOW_HEADER_BYTES) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': L1 table offset 0x%" PRIx64
                              " is invalid (it must be 8-byte aligned and after the header)",
                              bs->filename, h->l1_table_offset);
    }
    if (ADD_OVERFLOW(h->l1_table_offset, l1_bytes, &end) || end > s->file_len) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': the L1 table (offset 0x%" PRIx64
                              ", %" PRIu64 " bytes) extends past the end of the file",
                              bs->filename, h->l1_table_offset, l1_bytes);
    }
    s->file_end = ROUND_UP(s->file_len, (uint64_t)s->cluster_size);

    if (h->backing_file_offset) {
        uint32_t len = h->backing_file_size;
        if (len > QCOW_MAX_BACKING_NAME || len == 0) {
            return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': backing file name size %"
                                  PRIu32 " is invalid", bs->filename, len);
        }
        if (ADD_OVERFLOW(h->backing_file_offset, (uint64_t)len, &end) || end > s->file_len ||
            h->backing_file_offset < QCOW_HEADER_BYTES) {
            return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': backing file name (offset %"
                                  PRIu64 ", size %" PRIu32 ") lies outside the file",
                                  bs->filename, h->backing_file_offset, len);
        }
        ret = bdrv_pread(bs->file, h->backing_file_offset, bs->backing_file, len);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "image '%s': could not read the backing file "
                                  "name: %s", bs->filename, strerror(-ret));
        }
        bs->backing_file[len] = '\0';
        if (strlen(bs->backing_file) != len) {
            bs->backing_file[0] = '\0';
            return bdrv_error_set(err, -EBADIMAGE, "invalid qcow image '%s': backing file name contains "
                                  "a NUL byte", bs->filename);
        }
        /* qcow records no backing format: the generic layer probes it. */
    }

    table_cache_init(&s->tables, QCOW_CACHE_SLOTS, QCOW_PAGE_SIZE, 8, true);
    s->zbuf = NULL;
    s->zcluster = NULL;
    s->zcluster_entry = 0;
    /* Like QEMU, a size that is not a whole number of sectors is rounded down. */
    bs->total_sectors = (int64_t)(h->size / BDRV_SECTOR_SIZE);
    return 0;
}

static void qcow_close(BlockDriverState *bs)
{
    qcow_free_buffers(bs->opaque);
}

/* ------------------------------------------------------------------ */
/* Reads                                                               */

/* The backing file's contents of guest range [@offset, +size); zeros where it has none. */
static int qcow_read_backing(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVQcowState *s = bs->opaque;

    return bdrv_read_backing(bs, offset, qiov, offset < s->header.size ?
                             ROUND_UP(s->header.size, BDRV_SECTOR_SIZE) : 0);
}

static int qcow_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t done = 0;
    int ret;

    while (done < qiov->size) {
        QcowRun run;
        QBIOVector part;
        uint64_t pos = offset + done;

        ret = qcow_find_run(bs, pos, qiov->size - done, &run);
        if (ret < 0) {
            return ret;
        }
        ret = qiov_init_slice(&part, qiov, (size_t)done, (size_t)run.bytes);
        if (ret < 0) {
            return ret;
        }
        switch (run.kind) {
        case QCOW_KIND_DATA:
            ret = bdrv_preadv(bs->file, run.host, &part);
            break;
        case QCOW_KIND_COMPRESSED:
            ret = qcow_load_compressed(bs, run.entry);
            if (ret == 0) {
                qiov_from_buf(&part, 0, s->zcluster + (pos & (s->cluster_size - 1)),
                              part.size);
            }
            break;
        case QCOW_KIND_UNALLOC:
            ret = qcow_read_backing(bs, pos, &part);
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

static int qcow_alloc(BDRVQcowState *s, uint64_t bytes, uint64_t *offset)
{
    uint64_t start = ROUND_UP(s->file_end, (uint64_t)s->cluster_size);
    uint64_t end;

    if (ADD_OVERFLOW(start, bytes, &end) || end > (uint64_t)INT64_MAX ||
        end >= (UINT64_C(1) << (63 - s->header.cluster_bits))) {
        return -EFBIG;
    }
    *offset = start;
    s->file_end = end;
    return 0;
}

/*
 * Make room for a new L2 table at the end of the file and zero it; it is
 * linked into the L1 by qcow_update_l2 once its entries are written. Like
 * qemu-img, the table is placed before the data clusters that need it.
 */
static int qcow_alloc_l2(BlockDriverState *bs, uint64_t *l2)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t bytes = ROUND_UP(s->l2_bytes, (uint64_t)s->cluster_size);
    int ret = qcow_alloc(s, bytes, l2);

    if (ret < 0) {
        return ret;
    }
    ret = bdrv_pwrite_zeroes(bs->file, *l2, bytes);
    table_cache_invalidate(&s->tables, *l2, bytes);
    return ret;
}

/*
 * Point the L2 entries of guest clusters [@offset, +@bytes) (one L2 table,
 * at @l2) at @first, @first+@step...; when the table is @new_table, it is
 * flushed and then linked into the L1 (invariant 3).
 */
static int qcow_update_l2(BlockDriverState *bs, uint64_t offset, uint64_t bytes, uint64_t l2,
                          bool new_table, uint64_t first, uint64_t step)
{
    BDRVQcowState *s = bs->opaque;
    uint32_t cb = s->header.cluster_bits;
    uint64_t l1_index = offset >> (cb + s->header.l2_bits);
    uint64_t l2_index = (offset >> cb) & (s->l2_nelems - 1);
    int ret;

    ret = qcow_set_u64s(bs, l2 + l2_index * 8, bytes >> cb, first, step);
    if (ret < 0 || !new_table) {
        return ret;
    }
    ret = bdrv_flush(bs->file);
    if (ret == 0) {
        ret = qcow_set_u64s(bs, s->header.l1_table_offset + l1_index * 8, 1, l2, 0);
    }
    return ret;
}

/* Old contents of guest range [@offset, +@len) of a cluster of @kind being rewritten. */
static int qcow_cow_fill(BlockDriverState *bs, const QcowRun *run, uint64_t offset,
                         uint8_t *buf, size_t len)
{
    BDRVQcowState *s = bs->opaque;
    QBIOVector q;
    int ret;

    if (len == 0) {
        return 0;
    }
    if (run->kind == QCOW_KIND_COMPRESSED) {
        ret = qcow_load_compressed(bs, run->entry);
        if (ret == 0) {
            memcpy(buf, s->zcluster + (offset & (s->cluster_size - 1)), len);
        }
        return ret;
    }
    if (!bs->backing) {
        memset(buf, 0, len);
        return 0;
    }
    qiov_init_buf(&q, buf, len);
    return qcow_read_backing(bs, offset, &q);
}

/*
 * Allocating write of guest range [@offset, +@bytes) over a run of
 * unallocated or compressed clusters: whole new clusters at the end of the
 * file, the edges completed with the old contents.
 */
static int qcow_write_alloc(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                            QBIOVector *data, const QcowRun *run)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t start = ROUND_DOWN(offset, cs);
    uint64_t end = ROUND_UP(offset + bytes, cs);
    size_t head = (size_t)(offset - start);
    size_t tail = (size_t)(end - offset - bytes);
    uint8_t *pad = NULL;
    uint64_t host, l2 = run->l2_offset;
    QBIOVector v;
    int ret;

    if (!l2) {
        ret = qcow_alloc_l2(bs, &l2);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow_alloc(s, end - start, &host);
    if (ret < 0) {
        return ret;
    }
    ret = qiov_init(&v, data->niov + 2);
    if (ret < 0) {
        return ret;
    }
    if (head + tail) {
        pad = malloc(head + tail);
        if (!pad) {
            ret = -ENOMEM;
            goto out;
        }
        ret = qcow_cow_fill(bs, run, start, pad, head);
        if (ret == 0) {
            ret = qcow_cow_fill(bs, run, offset + bytes, pad + head, tail);
        }
        if (ret == 0) {
            ret = qiov_add(&v, pad, head);
        }
    }
    for (int i = 0; i < data->niov && ret == 0; i++) {
        ret = qiov_add(&v, data->iov[i].iov_base, data->iov[i].iov_len);
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
    table_cache_invalidate(&s->tables, host, end - start);
    if (s->file_len < host + (end - start)) {
        s->file_len = host + (end - start);
    }
    /* Invariant 2. */
    if (bs->backing) {
        ret = bdrv_flush(bs->file);
        if (ret < 0) {
            goto out;
        }
    }
    ret = qcow_update_l2(bs, start, end - start, l2, run->l2_offset == 0, host, cs);
out:
    qiov_destroy(&v);
    free(pad);
    return ret;
}

static int qcow_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVQcowState *s = bs->opaque;
    uint64_t done = 0;
    int ret;

    while (done < qiov->size) {
        QcowRun run;
        QBIOVector part;

        ret = qcow_find_run(bs, offset + done, qiov->size - done, &run);
        if (ret < 0) {
            return ret;
        }
        ret = qiov_init_slice(&part, qiov, (size_t)done, (size_t)run.bytes);
        if (ret < 0) {
            return ret;
        }
        if (run.kind == QCOW_KIND_DATA) {
            ret = bdrv_pwritev(bs->file, run.host, &part);
            if (ret == 0) {
                table_cache_invalidate(&s->tables, run.host, run.bytes);
            }
        } else {
            ret = qcow_write_alloc(bs, offset + done, run.bytes, &part, &run);
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
 * qcow has no zero clusters. Unallocated clusters without a backing file
 * already read as zeros and are left alone; everything else takes the
 * generic path (-ENOTSUP: the block layer writes a zeroed buffer).
 */
static int qcow_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    uint64_t done = 0;

    if (bs->backing) {
        return -ENOTSUP;
    }
    while (done < bytes) {
        QcowRun run;
        int ret = qcow_find_run(bs, offset + done, bytes - done, &run);
        if (ret < 0) {
            return ret;
        }
        if (run.kind != QCOW_KIND_UNALLOC) {
            return -ENOTSUP;
        }
        done += run.bytes;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Status and information                                              */

static int qcow_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    QcowRun first;
    uint64_t done;
    int ret;

    ret = qcow_find_run(bs, offset, bytes, &first);
    if (ret < 0) {
        return ret;
    }
    done = first.bytes;
    /* Extend over following runs (other L2 tables, more compressed clusters) alike. */
    while (done < bytes) {
        QcowRun next;
        ret = qcow_find_run(bs, offset + done, bytes - done, &next);
        if (ret < 0 || next.kind != first.kind ||
            (first.kind == QCOW_KIND_DATA && next.host != first.host + done)) {
            break;
        }
        done += next.bytes;
    }
    *pnum = done;
    switch (first.kind) {
    case QCOW_KIND_DATA:
        *map = first.host;
        *file = bs->file;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
    case QCOW_KIND_COMPRESSED:
        /* Compressed data has no host offset a reader could use directly. */
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
    default:
        return 0;
    }
}

static int qcow_has_zero_init(BlockDriverState *bs)
{
    (void)bs;
    return 1;
}

static int qcow_get_specific_info(BlockDriverState *bs, QBlockSpecificInfo *info,
                                  BdrvError *err)
{
    BDRVQcowState *s = bs->opaque;

    (void)err;
    info->fmt_type = QB_FMT_QCOW;
    info->u.qcow.version = s->header.version;
    info->u.qcow.cluster_bits = s->header.cluster_bits;
    info->u.qcow.l2_bits = s->header.l2_bits;
    info->u.qcow.crypt_method = s->header.crypt_method;
    info->u.qcow.mtime = s->header.mtime;
    return 0;
}

static int qcow_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQcowState *s = bs->opaque;
    bdi->cluster_size = (int)s->cluster_size;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

static int qcow_create(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    uint64_t size = ROUND_UP(bdrv_opts_get_size(opts, "size"), BDRV_SECTOR_SIZE);
    const char *backing = bdrv_opts_get_str(opts, "backing_file");
    size_t name_len = backing ? strlen(backing) : 0;
    BlockDriverState *file = NULL;
    uint8_t hdr[QCOW_HEADER_BYTES];
    QcowHeader h;
    uint64_t span, l1_size, l1_bytes, file_len;
    int ret;

    if (bdrv_opts_get_bool(opts, "encryption")) {
        return bdrv_error_set(err, -ENOTSUP, "qcow: AES encryption is not supported (it is "
                              "insecure; use qcow2 with LUKS or an encrypted device instead)");
    }
    if (name_len > QCOW_MAX_BACKING_NAME) {
        return bdrv_error_set(err, -EINVAL, "qcow: backing file name '%.64s...' is too long "
                              "(at most %u bytes)", backing, QCOW_MAX_BACKING_NAME);
    }
    memset(&h, 0, sizeof(h));
    h.magic = QCOW_MAGIC;
    h.version = QCOW_VERSION;
    h.size = size;
    /* qemu-img's layout: small clusters with a backing file, for finer copy-on-write. */
    if (backing) {
        h.cluster_bits = 9;
        h.l2_bits = 12;
        h.backing_file_offset = QCOW_HEADER_BYTES;
        h.backing_file_size = (uint32_t)name_len;
    } else {
        h.cluster_bits = 12;
        h.l2_bits = 9;
    }
    span = UINT64_C(1) << (h.cluster_bits + h.l2_bits);
    if (size > (uint64_t)INT64_MAX - span) {
        return bdrv_error_set(err, -EINVAL, "qcow: image size %" PRIu64 " is too large", size);
    }
    l1_size = DIV_ROUND_UP(size, span);
    if (l1_size > INT32_MAX / 8) {
        return bdrv_error_set(err, -EINVAL, "qcow: image size %" PRIu64 " is too large", size);
    }
    l1_bytes = l1_size * 8;
    h.l1_table_offset = ROUND_UP(QCOW_HEADER_BYTES + name_len, 8);
    /* The L1 is zero-filled in whole sectors, as qemu-img does. */
    file_len = h.l1_table_offset + ROUND_UP(l1_bytes, BDRV_SECTOR_SIZE);
    qcow_header_encode(&h, hdr);

    ret = bdrv_create_file(filename, 0, BDRV_PREALLOC_OFF, flags, err);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_file_open_for(&file, filename, &bdrv_qcow, BDRV_O_RDWR | (flags & BDRV_O_NO_FLUSH), err);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_truncate(file, file_len, BDRV_PREALLOC_OFF, err);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_pwrite(file, 0, hdr, sizeof(hdr));
    if (ret == 0 && name_len) {
        ret = bdrv_pwrite(file, QCOW_HEADER_BYTES, backing, name_len);
    }
    if (ret == 0) {
        ret = bdrv_flush(file);
    }
    if (ret < 0) {
        bdrv_error_set(err, ret, "could not write the qcow header of '%s': %s", filename,
                       strerror(-ret));
    }
out:
    bdrv_close(file);
    return ret;
}

const BlockDriver bdrv_qcow = {
    .format_name = "qcow",
    .instance_size = sizeof(BDRVQcowState),
    .thread_safe = false,
    .shares_write = false,
    .supports_backing = true,
    .caps = BDRV_CAP_COMPRESSED_READ,
    .bdrv_probe = qcow_probe,
    .bdrv_open = qcow_open,
    .bdrv_close = qcow_close,
    .bdrv_create = qcow_create,
    .create_opts = qcow_create_opts,
    .bdrv_preadv = qcow_preadv,
    .bdrv_pwritev = qcow_pwritev,
    .bdrv_pwrite_zeroes = qcow_pwrite_zeroes,
    .bdrv_block_status = qcow_block_status,
    .bdrv_has_zero_init = qcow_has_zero_init,
    .bdrv_get_info = qcow_get_info,
    .bdrv_get_specific_info = qcow_get_specific_info,
};
