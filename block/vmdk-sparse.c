/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmdk-sparse.c: VMDK sparse extents: hosted sparse "KDMV" files (plain,
 * zeroed-grain and stream-optimized, with deflate-compressed grains) and ESX
 * "COWD" files (read only): their headers, grain directory (GD) and grain
 * tables (GT, cached), and the allocation of grains.
 *
 * Allocating write order (the numbered invariants):
 *   1. New grains (and new grain tables) are placed at next_sector, at or
 *      past the end of the extent file as it was at open, so they never
 *      overlap anything a table references.
 *   2. A new grain is written whole: the guest data, and around it the
 *      parent's data (copy-on-write) or zeros; a stream-optimized grain is
 *      written as its marker and deflate stream. Then the file is flushed.
 *   3. Only then are the GT entries written: first in the primary GT, then
 *      in the redundant GT. A new GT is zero-filled and flushed before the
 *      GD (then redundant GD) entry points at it.
 * A crash before 3 leaves a grain no table references at the end of the
 * file: leaked space. A crash between the primary and redundant GT writes
 * leaves the redundant copy behind, which readers (QEMU's and this one)
 * ignore while the primary is valid. Nothing a table references is ever
 * unwritten or reused.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef CONFIG_ZLIB
#include <zlib.h>
#endif

#include "vmdk.h"

/* Sparse header field offsets (hosted sparse, "KDMV"). */
enum {
    H4_MAGIC = 0x00,
    H4_VERSION = 0x04,
    H4_FLAGS = 0x08,
    H4_CAPACITY = 0x0C,
    H4_GRAIN = 0x14,
    H4_DESC_OFFSET = 0x1C,
    H4_DESC_SIZE = 0x24,
    H4_GTES = 0x2C,
    H4_RGD_OFFSET = 0x30,
    H4_GD_OFFSET = 0x38,
    H4_OVERHEAD = 0x40,
    H4_UNCLEAN = 0x48,
    H4_NL = 0x49,
    H4_COMPRESS = 0x4D,
};

/* COWD header field offsets. */
enum {
    H3_VERSION = 4,
    H3_FLAGS = 8,
    H3_CAPACITY = 12,
    H3_GRAIN = 16,
    H3_GD_OFFSET = 20,
    H3_GD_ENTRIES = 24,
    H3_FREE_SECTOR = 28,
};

static uint64_t grain_bytes(const VmdkExtent *e)
{
    return e->grain_sectors * VMDK_SECTOR;
}

/* Read a table of @n LE u32 entries at @offset (checked against the file). */
static int vmdk_read_table(BlockDriverState *file, uint64_t offset, uint32_t n, int64_t file_len,
                           uint32_t **out)
{
    uint64_t bytes = (uint64_t)n * 4;
    uint64_t end;
    uint8_t *raw;
    uint32_t *t;
    int ret;

    *out = NULL;
    if (ADD_OVERFLOW(offset, bytes, &end) || end > (uint64_t)file_len) {
        return -EBADIMAGE;
    }
    raw = malloc(MAX(bytes, (uint64_t)4));
    t = malloc(MAX(bytes, (uint64_t)4));
    if (!raw || !t) {
        free(raw);
        free(t);
        return -ENOMEM;
    }
    ret = bytes ? bdrv_pread(file, offset, raw, (size_t)bytes) : 0;
    if (ret < 0) {
        free(raw);
        free(t);
        return ret;
    }
    for (uint32_t i = 0; i < n; i++) {
        t[i] = le32_load(raw + (size_t)i * 4);
    }
    free(raw);
    *out = t;
    return 0;
}

static int vmdk_open_cowd(BlockDriverState *bs, VmdkExtent *e, const uint8_t *h,
                          int64_t file_len, BdrvError *err)
{
    uint64_t gd_off;
    uint64_t need;
    int ret;

    e->version = le32_load(h + H3_VERSION);
    e->flags = le32_load(h + H3_FLAGS);
    e->capacity = le32_load(h + H3_CAPACITY);
    e->grain_sectors = le32_load(h + H3_GRAIN);
    e->gtes = VMDK3_GTES;
    gd_off = (uint64_t)le32_load(h + H3_GD_OFFSET) * VMDK_SECTOR;
    e->gd_entries = le32_load(h + H3_GD_ENTRIES);
    if (e->grain_sectors == 0 || e->grain_sectors > VMDK_MAX_GRAIN_SECTORS) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s': Invalid granularity %" PRIu64
                              ", image may be corrupt", bs->filename, e->name, e->grain_sectors);
    }
    if (e->gd_entries > VMDK_MAX_GD_ENTRIES) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s': L1 size too big (%" PRIu32 " entries)",
                              bs->filename, e->name, e->gd_entries);
    }
    need = DIV_ROUND_UP(e->capacity, (uint64_t)e->gtes * e->grain_sectors);
    if (need > e->gd_entries) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s': the grain directory (%" PRIu32
                              " entries) does not cover the capacity of %" PRIu64 " sectors",
                              bs->filename, e->name, e->gd_entries, e->capacity);
    }
    ret = bdrv_policy_charge_metadata(bs, (uint64_t)e->gd_entries * 4 *
                                      1,
                                      "grain directory", err);
    if (ret < 0) {
        return ret;
    }
    e->gd_offset = gd_off;
    ret = vmdk_read_table(e->file, gd_off, e->gd_entries, file_len, &e->gd);
    if (ret < 0) {
        return bdrv_error_set(err, ret,
                              "image '%s': extent '%s': cannot read the grain directory at 0x%"
                              PRIx64 "%s", bs->filename, e->name, gd_off,
                              ret == -EBADIMAGE ? " (it lies past the end of the file)" : "");
    }
    e->next_sector = DIV_ROUND_UP((uint64_t)file_len, VMDK_SECTOR);
    return 0;
}

/* The footer of a stream-optimized extent whose header says GD_AT_END. */
static int vmdk_read_footer(BlockDriverState *bs, VmdkExtent *e, uint8_t *h, int64_t file_len,
                            BdrvError *err)
{
    uint8_t buf[1536];
    int ret;

    if (file_len < 2048) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s': Invalid footer (the file is too short)",
                              bs->filename, e->name);
    }
    ret = bdrv_pread(e->file, (uint64_t)file_len - sizeof(buf), buf, sizeof(buf));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "image '%s': extent '%s': cannot read the footer",
                              bs->filename, e->name);
    }
    /* [footer marker | footer (a header) | end-of-stream marker] */
    if (le32_load(buf + 8) != 0 || le32_load(buf + 12) != VMDK_MARKER_FOOTER ||
        memcmp(buf + 512, VMDK4_MAGIC, 4) != 0 ||
        le32_load(buf + 1024 + 8) != 0 || le32_load(buf + 1024 + 12) != VMDK_MARKER_EOS) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': extent '%s': Invalid footer",
                              bs->filename, e->name);
    }
    memcpy(h, buf + 512, 512);
    return 0;
}

int vmdk_sparse_open(BlockDriverState *bs, VmdkExtent *e, bool writable, BdrvError *err)
{
    uint8_t h[512];
    int64_t file_len = bdrv_getlength(e->file);
    uint64_t gd_sector, rgd_sector, overhead, l1_sectors, end;
    uint16_t compress;
    int ret;

    if (file_len < 0) {
        return bdrv_error_set(err, (int)file_len, "image '%s': cannot get the size of '%s'",
                              bs->filename, e->name);
    }
    if (file_len < 512) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s' is too short for a sparse header",
                              bs->filename, e->name);
    }
    ret = bdrv_pread(e->file, 0, h, sizeof(h));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "image '%s': cannot read extent '%s': %s",
                              bs->filename, e->name, strerror(-ret));
    }
    if (memcmp(h, VMDK3_MAGIC, 4) == 0) {
        e->type = VMDK_EXTENT_COWD;
        return vmdk_open_cowd(bs, e, h, file_len, err);
    }
    if (memcmp(h, VMDK4_MAGIC, 4) != 0) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s' is not a VMDK sparse extent",
                              bs->filename, e->name);
    }
    e->type = VMDK_EXTENT_SPARSE;
    if (le64_load(h + H4_GD_OFFSET) == VMDK_GD_AT_END) {
        ret = vmdk_read_footer(bs, e, h, file_len, err);
        if (ret < 0) {
            return ret;
        }
    }
    e->version = le32_load(h + H4_VERSION);
    e->flags = le32_load(h + H4_FLAGS);
    e->capacity = le64_load(h + H4_CAPACITY);
    e->grain_sectors = le64_load(h + H4_GRAIN);
    e->gtes = le32_load(h + H4_GTES);
    gd_sector = le64_load(h + H4_GD_OFFSET);
    rgd_sector = le64_load(h + H4_RGD_OFFSET);
    overhead = le64_load(h + H4_OVERHEAD);
    compress = le16_load(h + H4_COMPRESS);

    if (e->version > 3) {
        return bdrv_error_set(err, -ENOTSUP, "image '%s': extent '%s': Unsupported VMDK version %"
                              PRIu32, bs->filename, e->name, e->version);
    }
    /* QEMU's rule: the compressAlgorithm field, not the flag, tells if grains are compressed. */
    e->compressed = compress == VMDK4_COMPRESSION_DEFLATE;
    e->markers = (e->flags & VMDK4_FLAG_MARKER) != 0;
    e->zero_grain = (e->flags & VMDK4_FLAG_ZERO_GRAIN) != 0;
    /* Inflating needs a grain-sized buffer: a hostile grain size must not make it huge. */
    if (e->compressed && e->grain_sectors > 4096) {
        return bdrv_error_set(err, -ENOTSUP,
                              "image '%s': extent '%s': compressed grains of %" PRIu64
                              " sectors are not supported (at most 4096)", bs->filename,
                              e->name, e->grain_sectors);
    }
    if (e->version == 3 && writable && !e->compressed) {
        return bdrv_error_set(err, -ENOTSUP,
                              "image '%s': extent '%s': VMDK version 3 must be read only",
                              bs->filename, e->name);
    }
    if (e->gtes > VMDK_MAX_GTES) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s': L2 table size too big (%" PRIu32
                              " entries)", bs->filename, e->name, e->gtes);
    }
    if (MUL_OVERFLOW((uint64_t)e->gtes, e->grain_sectors, &l1_sectors) || l1_sectors == 0) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': extent '%s': L1 entry size is invalid",
                              bs->filename, e->name);
    }
    if (e->grain_sectors > VMDK_MAX_GRAIN_SECTORS) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s': Invalid granularity %" PRIu64
                              ", image may be corrupt", bs->filename, e->name, e->grain_sectors);
    }
    {
        uint64_t n = e->capacity / l1_sectors + (e->capacity % l1_sectors != 0);
        if (n > VMDK_MAX_GD_ENTRIES) {
            return bdrv_error_set(err, -EBADIMAGE,
                                  "image '%s': extent '%s': L1 size too big (%" PRIu64
                                  " entries)", bs->filename, e->name, n);
        }
        e->gd_entries = (uint32_t)n;
    }
    if (overhead > (uint64_t)INT64_MAX / VMDK_SECTOR ||
        overhead * VMDK_SECTOR > (uint64_t)file_len) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s': File truncated, expecting at least %"
                              PRIu64 " bytes", bs->filename, e->name,
                              overhead > (uint64_t)INT64_MAX / VMDK_SECTOR ? UINT64_MAX
                              : overhead * VMDK_SECTOR);
    }
    if (gd_sector > (uint64_t)INT64_MAX / VMDK_SECTOR) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': extent '%s': grain directory offset %" PRIu64
                              " is out of range", bs->filename, e->name, gd_sector);
    }
    ret = bdrv_policy_charge_metadata(bs, (uint64_t)e->gd_entries * 4 *
                                      ((e->flags & VMDK4_FLAG_RGD) ? 2 : 1),
                                      "grain directory", err);
    if (ret < 0) {
        return ret;
    }
    e->gd_offset = gd_sector * VMDK_SECTOR;
    ret = vmdk_read_table(e->file, e->gd_offset, e->gd_entries, file_len, &e->gd);
    if (ret < 0) {
        return bdrv_error_set(err, ret,
                              "image '%s': extent '%s': cannot read the grain directory at 0x%"
                              PRIx64 "%s", bs->filename, e->name, e->gd_offset,
                              ret == -EBADIMAGE ? " (it lies past the end of the file)" : "");
    }
    /*
     * The redundant directory is only ever written, never read for data; one
     * that does not fit in the file is dropped (as QEMU ignores it) rather
     * than failing the open.
     */
    if ((e->flags & VMDK4_FLAG_RGD) && rgd_sector != 0 &&
        rgd_sector <= (uint64_t)INT64_MAX / VMDK_SECTOR) {
        e->rgd_offset = rgd_sector * VMDK_SECTOR;
        ret = vmdk_read_table(e->file, e->rgd_offset, e->gd_entries, file_len, &e->rgd);
        if (ret == -EBADIMAGE) {
            e->rgd = NULL;
            e->rgd_offset = 0;
        } else if (ret < 0) {
            return bdrv_error_set(err, ret,
                                  "image '%s': extent '%s': cannot read the redundant grain "
                                  "directory: %s", bs->filename, e->name, strerror(-ret));
        }
    }
    /*
     * New grains go past everything in the file: sector-packed for
     * compressed grains (as QEMU writes them), grain-aligned otherwise.
     */
    end = MAX(DIV_ROUND_UP((uint64_t)file_len, VMDK_SECTOR), overhead);
    e->next_sector = e->compressed ? end : ROUND_UP(end, e->grain_sectors);
    return 0;
}

void vmdk_sparse_close(VmdkExtent *e)
{
    free(e->pending_buf);
    e->pending_buf = NULL;
    e->pending_g = UINT64_MAX;
    free(e->gd);
    free(e->rgd);
    e->gd = e->rgd = NULL;
    for (int i = 0; i < VMDK_GT_CACHE_SLOTS; i++) {
        free(e->gt_cache[i].entries);
        e->gt_cache[i].entries = NULL;
        e->gt_cache[i].valid = false;
    }
}

/* The cached grain table @gdi (its GD entry non-zero), read on a miss. */
static int vmdk_gt_get(VmdkExtent *e, uint32_t gdi, VmdkGtSlot **out)
{
    VmdkGtSlot *victim = &e->gt_cache[0];
    uint64_t off = (uint64_t)e->gd[gdi] * VMDK_SECTOR;
    size_t bytes = (size_t)e->gtes * 4;
    int64_t file_len;
    uint8_t *raw;
    int ret;

    for (int i = 0; i < VMDK_GT_CACHE_SLOTS; i++) {
        VmdkGtSlot *slot = &e->gt_cache[i];
        if (slot->valid && slot->gdi == gdi) {
            slot->stamp = ++e->gt_clock;
            *out = slot;
            return 0;
        }
        if (!slot->valid || (victim->valid && slot->stamp < victim->stamp)) {
            victim = slot;
        }
    }
    file_len = bdrv_getlength(e->file);
    if (file_len < 0) {
        return (int)file_len;
    }
    if (off + bytes > (uint64_t)file_len) {
        return -EBADIMAGE;   /* a grain table past the end of the file */
    }
    if (!victim->entries) {
        victim->entries = malloc(bytes);
        if (!victim->entries) {
            return -ENOMEM;
        }
    }
    raw = malloc(bytes);
    if (!raw) {
        return -ENOMEM;
    }
    victim->valid = false;
    ret = bdrv_pread(e->file, off, raw, bytes);
    if (ret < 0) {
        free(raw);
        return ret;
    }
    for (uint32_t i = 0; i < e->gtes; i++) {
        victim->entries[i] = le32_load(raw + (size_t)i * 4);
    }
    free(raw);
    victim->valid = true;
    victim->gdi = gdi;
    victim->stamp = ++e->gt_clock;
    *out = victim;
    return 0;
}

/* The grain table entry of grain @g (0 when its table is absent). */
static int vmdk_get_gte(VmdkExtent *e, uint64_t g, uint32_t *gte)
{
    uint64_t gdi = g / e->gtes;
    VmdkGtSlot *slot;
    int ret;

    *gte = 0;
    if (gdi >= e->gd_entries || e->gd[gdi] == 0) {
        return 0;
    }
    ret = vmdk_gt_get(e, (uint32_t)gdi, &slot);
    if (ret < 0) {
        return ret;
    }
    *gte = slot->entries[g % e->gtes];
    return 0;
}

static bool gte_is_zeroed(const VmdkExtent *e, uint32_t gte)
{
    return e->zero_grain && gte == VMDK_GTE_ZEROED;
}

static bool gte_is_data(const VmdkExtent *e, uint32_t gte)
{
    return gte != 0 && !gte_is_zeroed(e, gte);
}

static int vmdk_ensure_buffers(BDRVVmdkState *s, uint64_t gbytes)
{
    size_t want_c = (size_t)(gbytes + gbytes / 8 + 4096);

    if (s->grain_buf_size < gbytes) {
        free(s->grain_buf);
        s->grain_buf = malloc((size_t)gbytes);
        s->grain_buf_size = s->grain_buf ? (size_t)gbytes : 0;
        if (!s->grain_buf) {
            return -ENOMEM;
        }
    }
    if (s->cbuf_size < want_c) {
        free(s->cbuf);
        s->cbuf = malloc(want_c);
        s->cbuf_size = s->cbuf ? want_c : 0;
        if (!s->cbuf) {
            return -ENOMEM;
        }
    }
    return 0;
}

/* Inflate the compressed grain at sector @gte into s->grain_buf (grain_bytes long). */
static int vmdk_read_compressed(BlockDriverState *bs, VmdkExtent *e, uint32_t gte)
{
#ifdef CONFIG_ZLIB
    BDRVVmdkState *s = bs->opaque;
    uint64_t gbytes = grain_bytes(e);
    uint64_t off = (uint64_t)gte * VMDK_SECTOR;
    int64_t file_len = bdrv_getlength(e->file);
    size_t hdr = e->markers ? 12 : 0;
    size_t clen, avail;
    z_stream zs;
    int ret, zret;

    if (file_len < 0) {
        return (int)file_len;
    }
    ret = vmdk_ensure_buffers(s, gbytes);
    if (ret < 0) {
        return ret;
    }
    if (off >= (uint64_t)file_len) {
        return -EBADIMAGE;
    }
    avail = (size_t)MIN((uint64_t)s->cbuf_size, (uint64_t)file_len - off);
    if (e->markers) {
        uint8_t m[512];
        ret = bdrv_pread(e->file, off, m, MIN(sizeof(m), avail));
        if (ret < 0) {
            return ret;
        }
        clen = le32_load(m + 8);
        if (clen == 0 || hdr + clen > avail) {
            return -EBADIMAGE;   /* not a grain marker, or a size past the buffer or file */
        }
    } else {
        clen = avail;
    }
    ret = bdrv_pread(e->file, off, s->cbuf, hdr + clen);
    if (ret < 0) {
        return ret;
    }
    memset(&zs, 0, sizeof(zs));
    if (inflateInit(&zs) != Z_OK) {
        return -ENOMEM;
    }
    zs.next_in = s->cbuf + hdr;
    zs.avail_in = (uInt)clen;
    zs.next_out = s->grain_buf;
    zs.avail_out = (uInt)gbytes;
    zret = inflate(&zs, Z_FINISH);
    /* A full output buffer ends the grain even if the stream's end is missing ... */
    if (zret != Z_STREAM_END && !(zs.avail_out == 0 && (zret == Z_OK || zret == Z_BUF_ERROR))) {
        inflateEnd(&zs);
        return -EBADIMAGE;
    }
    if (zret != Z_STREAM_END) {
        /* ... but not if it has data past the grain: qemu-img 7.2 refuses that too. */
        uint8_t extra;
        zs.next_out = &extra;
        zs.avail_out = 1;
        (void)inflate(&zs, Z_FINISH);
        if (zs.avail_out == 0) {
            inflateEnd(&zs);
            return -EBADIMAGE;
        }
        zs.avail_out = 0;
    }
    memset(s->grain_buf + (gbytes - zs.avail_out), 0, zs.avail_out);
    inflateEnd(&zs);
    return 0;
#else
    (void)bs;
    (void)e;
    (void)gte;
    return -ENOTSUP;
#endif
}

int vmdk_sparse_read(BlockDriverState *bs, VmdkExtent *e, uint64_t off, QBIOVector *qiov,
                     size_t qoff, size_t n)
{
    BDRVVmdkState *s = bs->opaque;
    uint64_t gbytes = grain_bytes(e);
    size_t done = 0;
    int ret;

    while (done < n) {
        uint64_t pos = off + done;
        uint64_t g = pos / gbytes;
        uint64_t in = pos % gbytes;
        size_t chunk = (size_t)MIN(gbytes - in, (uint64_t)(n - done));
        uint32_t gte, next;

        if (g == e->pending_g) {
            qiov_from_buf(qiov, qoff + done, e->pending_buf + in, chunk);
            done += chunk;
            continue;
        }
        ret = vmdk_get_gte(e, g, &gte);
        if (ret < 0) {
            return ret;
        }
        if (!gte_is_data(e, gte) || !e->compressed) {
            /* Extend over following grains that read the same way (and lie contiguously). */
            uint32_t last = gte;
            while (done + chunk < n && g + 1 != e->pending_g) {
                ret = vmdk_get_gte(e, g + 1, &next);
                if (ret < 0) {
                    return ret;
                }
                if (gte_is_data(e, gte) ? next != last + e->grain_sectors : next != gte) {
                    break;
                }
                last = next;
                g++;
                chunk += (size_t)MIN(gbytes, (uint64_t)(n - done - chunk));
            }
        }
        if (gte == 0) {
            ret = vmdk_read_parent(bs, e->start + pos, qiov, qoff + done, chunk);
        } else if (gte_is_zeroed(e, gte)) {
            qiov_memset(qiov, qoff + done, 0, chunk);
            ret = 0;
        } else if (e->compressed) {
            ret = vmdk_read_compressed(bs, e, gte);
            if (ret == 0) {
                qiov_from_buf(qiov, qoff + done, s->grain_buf + in, chunk);
            }
        } else {
            QBIOVector part;
            ret = qiov_init_slice(&part, qiov, qoff + done, chunk);
            if (ret == 0) {
                ret = bdrv_preadv(e->file, (uint64_t)gte * VMDK_SECTOR + in, &part);
                qiov_destroy(&part);
            }
        }
        if (ret < 0) {
            return ret;
        }
        done += chunk;
    }
    return 0;
}

/* Write GT entries [i0, i1) of table @gdi from the cache to the GT and its redundant copy. */
static int vmdk_gt_write(VmdkExtent *e, uint32_t gdi, const uint32_t *entries, uint32_t i0,
                         uint32_t i1)
{
    uint8_t buf[VMDK_MAX_GTES * 4];
    size_t len = (size_t)(i1 - i0) * 4;
    int ret;

    for (uint32_t i = i0; i < i1; i++) {
        le32_store(buf + (size_t)(i - i0) * 4, entries[i]);
    }
    ret = bdrv_pwrite(e->file, (uint64_t)e->gd[gdi] * VMDK_SECTOR + (uint64_t)i0 * 4, buf, len);
    if (ret < 0 || !e->rgd || e->rgd[gdi] == 0) {
        return ret;
    }
    return bdrv_pwrite(e->file, (uint64_t)e->rgd[gdi] * VMDK_SECTOR + (uint64_t)i0 * 4, buf,
                       len);
}

/* Give the grain table @gdi, absent until now, a zeroed table (and redundant copy). */
static int vmdk_gt_allocate(VmdkExtent *e, uint32_t gdi)
{
    uint64_t gt_sectors = DIV_ROUND_UP((uint64_t)e->gtes * 4, VMDK_SECTOR);
    uint64_t sec = e->next_sector, rsec = 0;
    uint8_t entry[4];
    int ret;

    if (e->compressed || sec + 2 * gt_sectors > UINT32_MAX) {
        return -ENOTSUP;
    }
    ret = bdrv_pwrite_zeroes(e->file, sec * VMDK_SECTOR, gt_sectors * VMDK_SECTOR);
    if (ret == 0 && e->rgd) {
        rsec = sec + gt_sectors;
        ret = bdrv_pwrite_zeroes(e->file, rsec * VMDK_SECTOR, gt_sectors * VMDK_SECTOR);
    }
    if (ret == 0) {
        ret = bdrv_flush(e->file);
    }
    if (ret < 0) {
        return ret;
    }
    e->next_sector = ROUND_UP(sec + gt_sectors * (e->rgd ? 2 : 1), e->grain_sectors);
    le32_store(entry, (uint32_t)sec);
    ret = bdrv_pwrite(e->file, e->gd_offset + (uint64_t)gdi * 4, entry, 4);
    if (ret < 0) {
        return ret;
    }
    e->gd[gdi] = (uint32_t)sec;
    if (e->rgd) {
        le32_store(entry, (uint32_t)rsec);
        ret = bdrv_pwrite(e->file, e->rgd_offset + (uint64_t)gdi * 4, entry, 4);
        if (ret < 0) {
            return ret;
        }
        e->rgd[gdi] = (uint32_t)rsec;
    }
    return 0;
}

/* Fill @buf (@len bytes at extent byte @pos of a new grain) from the old content. */
static int vmdk_fill_old(BlockDriverState *bs, VmdkExtent *e, uint32_t old_gte, uint64_t pos,
                         uint8_t *buf, size_t len)
{
    QBIOVector v;

    if (len == 0) {
        return 0;
    }
    if (gte_is_zeroed(e, old_gte)) {
        memset(buf, 0, len);
        return 0;
    }
    qiov_init_buf(&v, buf, len);
    return vmdk_read_parent(bs, e->start + pos, &v, 0, len);
}

/*
 * Old content around a write is filled into buffers of at most this size: a
 * hostile extent may claim grains of up to 1 GiB, and an allocating write of
 * 512 bytes must not need two grain-sized buffers for it.
 */
#define VMDK_FILL_PIECE ((size_t)1 << 20)

/* Write @len bytes of old content of extent byte @pos to file byte @at, a piece at a time. */
static int vmdk_write_old(BlockDriverState *bs, VmdkExtent *e, uint32_t old_gte, uint64_t pos,
                          uint64_t at, size_t len)
{
    size_t piece = MIN(len, VMDK_FILL_PIECE);
    uint8_t *buf = malloc(piece);
    int ret = buf ? 0 : -ENOMEM;

    for (size_t done = 0; ret == 0 && done < len; done += piece) {
        piece = MIN(piece, len - done);
        ret = vmdk_fill_old(bs, e, old_gte, pos + done, buf, piece);
        if (ret == 0) {
            ret = bdrv_pwrite(e->file, at + done, buf, piece);
        }
    }
    free(buf);
    return ret;
}

/*
 * The old content [@pos, @pos+@len) of grain table entry @old_gte, to be
 * written at file byte @at before or after a write's data: up to a fill
 * piece it is read into *@buf (the caller frees it) and added to @v, the
 * one vectored write; larger, it is written now, a piece at a time.
 */
static int vmdk_old_part(BlockDriverState *bs, VmdkExtent *e, uint32_t old_gte, uint64_t pos,
                         uint64_t at, size_t len, QBIOVector *v, uint8_t **buf)
{
    int ret;

    if (len > VMDK_FILL_PIECE) {
        return vmdk_write_old(bs, e, old_gte, pos, at, len);
    }
    if (len == 0) {
        return 0;
    }
    *buf = malloc(len);
    ret = *buf ? vmdk_fill_old(bs, e, old_gte, pos, *buf, len) : -ENOMEM;
    return ret == 0 ? qiov_add(v, *buf, len) : ret;
}

#ifdef CONFIG_ZLIB
/* Append grain @g (@len bytes of @data, zero-padded to a grain) compressed; returns its sector. */
static int vmdk_write_compressed(BlockDriverState *bs, VmdkExtent *e, uint64_t g,
                                 const uint8_t *data, uint32_t *sector)
{
    BDRVVmdkState *s = bs->opaque;
    uint64_t gbytes = grain_bytes(e);
    size_t hdr = e->markers ? 12 : 0;
    uLongf clen;
    size_t total;
    int ret;

    ret = vmdk_ensure_buffers(s, gbytes);
    if (ret < 0) {
        return ret;
    }
    clen = (uLongf)(s->cbuf_size - hdr - 512);
    if (compress2(s->cbuf + hdr, &clen, data, (uLong)gbytes, Z_DEFAULT_COMPRESSION) != Z_OK) {
        return -EIO;
    }
    if (e->markers) {
        le64_store(s->cbuf, g * e->grain_sectors);
        le32_store(s->cbuf + 8, (uint32_t)clen);
    }
    total = ROUND_UP(hdr + clen, VMDK_SECTOR);
    memset(s->cbuf + hdr + clen, 0, total - hdr - clen);
    if (e->next_sector + total / VMDK_SECTOR > UINT32_MAX) {
        return -EFBIG;
    }
    ret = bdrv_pwrite(e->file, e->next_sector * VMDK_SECTOR, s->cbuf, total);
    if (ret < 0) {
        return ret;
    }
    *sector = (uint32_t)e->next_sector;
    e->next_sector += total / VMDK_SECTOR;
    return 0;
}
#endif

#ifdef CONFIG_ZLIB
/* Store grain @g (a whole grain buffer) compressed at the end of the file (invariants 1-3). */
static int vmdk_stream_store(BlockDriverState *bs, VmdkExtent *e, uint64_t g, const uint8_t *data)
{
    uint64_t gdi = g / e->gtes;
    uint32_t sector = 0;
    VmdkGtSlot *slot;
    int ret;

    /* All-zero grains are left unallocated, as QEMU does, unless a parent shows through. */
    if (buffer_is_zero(data, (size_t)grain_bytes(e)) && !bs->backing_file[0]) {
        return 0;
    }
    if (gdi >= e->gd_entries || e->gd[gdi] == 0) {
        return -ENOTSUP;   /* QEMU creates every grain table of a stream image up front */
    }
    ret = vmdk_note_write(bs);
    if (ret == 0) {
        ret = vmdk_write_compressed(bs, e, g, data, &sector);
    }
    if (ret == 0) {
        ret = bdrv_flush(e->file);
    }
    if (ret == 0) {
        ret = vmdk_gt_get(e, (uint32_t)gdi, &slot);
    }
    if (ret < 0) {
        return ret;
    }
    slot->entries[g % e->gtes] = sector;
    ret = vmdk_gt_write(e, (uint32_t)gdi, slot->entries, (uint32_t)(g % e->gtes),
                        (uint32_t)(g % e->gtes) + 1);
    if (ret < 0) {
        slot->valid = false;
    }
    return ret;
}
#endif

int vmdk_stream_commit(BlockDriverState *bs, VmdkExtent *e)
{
#ifdef CONFIG_ZLIB
    int ret;

    if (!e->pending_buf || e->pending_g == UINT64_MAX) {
        return 0;
    }
    ret = vmdk_stream_store(bs, e, e->pending_g, e->pending_buf);
    if (ret == 0) {
        e->pending_g = UINT64_MAX;
    }
    return ret;
#else
    (void)bs;
    (void)e;
    return 0;
#endif
}

/*
 * Stream-optimized extents are written front to back: each grain is stored
 * once, compressed, at the end of the file (rewriting a stored grain fails
 * with EINVAL, as in QEMU). A grain written in pieces is gathered in memory
 * (the pending grain) and stored when a write moves on to another grain or
 * at the next flush; until then reads are served from that buffer.
 */
static int vmdk_stream_write(BlockDriverState *bs, VmdkExtent *e, uint64_t off,
                             QBIOVector *qiov, size_t qoff, size_t n)
{
#ifdef CONFIG_ZLIB
    uint64_t gbytes = grain_bytes(e);
    uint8_t *data = NULL;
    size_t done = 0;
    int ret = 0;

    while (done < n) {
        uint64_t pos = off + done;
        uint64_t g = pos / gbytes;
        uint64_t in = pos % gbytes;
        size_t chunk = (size_t)MIN(gbytes - in, (uint64_t)(n - done));
        bool whole = in == 0 && (chunk == gbytes || pos + chunk == e->length);
        uint32_t gte;

        if (g == e->pending_g) {
            qiov_to_buf(qiov, qoff + done, e->pending_buf + in, chunk);
            done += chunk;
            continue;
        }
        ret = vmdk_stream_commit(bs, e);
        if (ret == 0) {
            ret = vmdk_get_gte(e, g, &gte);
        }
        if (ret < 0) {
            break;
        }
        if (gte != 0) {
            ret = -EINVAL;   /* QEMU: "Could not write to allocated cluster for streamOptimized" */
            break;
        }
        if (whole) {
            if (!data) {
                data = malloc((size_t)gbytes);
                if (!data) {
                    ret = -ENOMEM;
                    break;
                }
            }
            memset(data, 0, (size_t)gbytes);
            qiov_to_buf(qiov, qoff + done, data, chunk);
            ret = vmdk_stream_store(bs, e, g, data);
        } else {
            QBIOVector v;
            if (!e->pending_buf) {
                e->pending_buf = malloc((size_t)gbytes);
                if (!e->pending_buf) {
                    ret = -ENOMEM;
                    break;
                }
            }
            /* What the grain held before: the parent's data, or zeros. */
            qiov_init_buf(&v, e->pending_buf, (size_t)gbytes);
            ret = vmdk_read_parent(bs, e->start + g * gbytes, &v, 0,
                                   (size_t)MIN(gbytes, e->length - g * gbytes));
            if (ret == 0) {
                memset(e->pending_buf + MIN(gbytes, e->length - g * gbytes), 0,
                       (size_t)(gbytes - MIN(gbytes, e->length - g * gbytes)));
                qiov_to_buf(qiov, qoff + done, e->pending_buf + in, chunk);
                e->pending_g = g;
            }
        }
        if (ret < 0) {
            break;
        }
        done += chunk;
    }
    free(data);
    return ret;
#else
    (void)bs;
    (void)e;
    (void)off;
    (void)qiov;
    (void)qoff;
    (void)n;
    return -ENOTSUP;
#endif
}

/*
 * Allocate the run of grains [g0, g0+count) of one grain table (none of
 * which holds data) and write them whole: @n bytes of @qiov from @qoff at
 * extent byte @pos, the old content around them (invariants 1-3).
 */
static int vmdk_allocate_run(BlockDriverState *bs, VmdkExtent *e, uint64_t g0, uint32_t count,
                             const uint32_t *old, uint64_t pos, QBIOVector *qiov, size_t qoff,
                             size_t n)
{
    uint64_t gbytes = grain_bytes(e);
    uint64_t run_start = g0 * gbytes;
    size_t head = (size_t)(pos - run_start);
    size_t tail = (size_t)((uint64_t)count * gbytes - head - n);
    uint64_t sector = e->next_sector;
    uint32_t gdi = (uint32_t)(g0 / e->gtes);
    uint32_t i0 = (uint32_t)(g0 % e->gtes);
    uint64_t at = sector * VMDK_SECTOR;
    uint8_t *hbuf = NULL, *tbuf = NULL;
    VmdkGtSlot *slot;
    QBIOVector v, part;
    int ret;

    if (sector + (uint64_t)count * e->grain_sectors > UINT32_MAX) {
        return -EFBIG;   /* grain table entries are 32-bit sector numbers */
    }
    ret = qiov_init(&v, qiov->niov + 2);
    if (ret < 0) {
        return ret;
    }
    ret = vmdk_old_part(bs, e, old[0], run_start, at, head, &v, &hbuf);
    if (ret == 0) {
        ret = qiov_init_slice(&part, qiov, qoff, n);
        if (ret == 0) {
            for (int i = 0; ret == 0 && i < part.niov; i++) {
                ret = qiov_add(&v, part.iov[i].iov_base, part.iov[i].iov_len);
            }
            qiov_destroy(&part);
        }
    }
    if (ret == 0) {
        ret = vmdk_old_part(bs, e, old[count - 1], pos + n, at + head + n, tail, &v, &tbuf);
    }
    if (ret == 0) {
        /* The vector starts with the head unless the head went out on its own. */
        ret = bdrv_pwritev(e->file, at + (head > VMDK_FILL_PIECE ? head : 0), &v);  /* invariant 2 */
    }
    qiov_destroy(&v);
    free(hbuf);
    free(tbuf);
    if (ret == 0) {
        ret = bdrv_flush(e->file);
    }
    if (ret < 0) {
        return ret;
    }
    e->next_sector = sector + (uint64_t)count * e->grain_sectors;
    ret = vmdk_gt_get(e, gdi, &slot);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < count; i++) {
        slot->entries[i0 + i] = (uint32_t)(sector + (uint64_t)i * e->grain_sectors);
    }
    ret = vmdk_gt_write(e, gdi, slot->entries, i0, i0 + count);   /* invariant 3 */
    if (ret < 0) {
        slot->valid = false;
    }
    return ret;
}

int vmdk_sparse_write(BlockDriverState *bs, VmdkExtent *e, uint64_t off, QBIOVector *qiov,
                      size_t qoff, size_t n)
{
    uint64_t gbytes = grain_bytes(e);
    uint32_t old[VMDK_MAX_GTES];
    size_t done = 0;
    int ret;

    if (e->type == VMDK_EXTENT_COWD) {
        return -ENOTSUP;
    }
    if (e->compressed) {
        return vmdk_stream_write(bs, e, off, qiov, qoff, n);
    }
    ret = vmdk_note_write(bs);
    if (ret < 0) {
        return ret;
    }
    while (done < n) {
        uint64_t pos = off + done;
        uint64_t g = pos / gbytes;
        uint64_t in = pos % gbytes;
        uint64_t gdi = g / e->gtes;
        size_t chunk = (size_t)MIN(gbytes - in, (uint64_t)(n - done));
        uint32_t gte, next, count;

        if (gdi >= e->gd_entries) {
            return -ERANGE;   /* past the capacity the header declares */
        }
        if (e->gd[gdi] == 0) {
            ret = vmdk_gt_allocate(e, (uint32_t)gdi);
            if (ret < 0) {
                return ret;
            }
        }
        ret = vmdk_get_gte(e, g, &gte);
        if (ret < 0) {
            return ret;
        }
        if (gte_is_data(e, gte)) {
            QBIOVector part;
            uint64_t host = (uint64_t)gte * VMDK_SECTOR + in;
            /* Extend over grains that follow on disk as they do in the table. */
            while (done + chunk < n && (g + 1) / e->gtes == gdi) {
                ret = vmdk_get_gte(e, g + 1, &next);
                if (ret < 0) {
                    return ret;
                }
                if (next != gte + e->grain_sectors || !gte_is_data(e, next)) {
                    break;
                }
                gte = next;
                g++;
                chunk += (size_t)MIN(gbytes, (uint64_t)(n - done - chunk));
            }
            ret = qiov_init_slice(&part, qiov, qoff + done, chunk);
            if (ret < 0) {
                return ret;
            }
            ret = bdrv_pwritev(e->file, host, &part);
            qiov_destroy(&part);
            if (ret < 0) {
                return ret;
            }
            done += chunk;
            continue;
        }
        /* A run of grains without data in this table, allocated together. */
        old[0] = gte;
        count = 1;
        while (done + chunk < n && (g + count) / e->gtes == gdi) {
            ret = vmdk_get_gte(e, g + count, &next);
            if (ret < 0) {
                return ret;
            }
            if (gte_is_data(e, next)) {
                break;
            }
            old[count++] = next;
            chunk += (size_t)MIN(gbytes, (uint64_t)(n - done - chunk));
        }
        ret = vmdk_allocate_run(bs, e, g, count, old, pos, qiov, qoff + done, chunk);
        if (ret < 0) {
            return ret;
        }
        done += chunk;
    }
    return 0;
}

int vmdk_sparse_zero(BlockDriverState *bs, VmdkExtent *e, uint64_t off, uint64_t n)
{
    uint64_t gbytes = grain_bytes(e);
    uint64_t done = 0;
    uint8_t *zero = NULL;
    int ret = 0;

    if (e->type == VMDK_EXTENT_COWD) {
        return -ENOTSUP;
    }
    while (done < n && ret == 0) {
        uint64_t pos = off + done;
        uint64_t g = pos / gbytes;
        uint64_t in = pos % gbytes;
        uint64_t chunk = MIN(gbytes - in, n - done);
        bool whole = in == 0 && (chunk == gbytes || pos + chunk == e->length);
        uint32_t gte;

        if (g == e->pending_g) {
            memset(e->pending_buf + in, 0, (size_t)chunk);
            done += chunk;
            continue;
        }
        ret = vmdk_get_gte(e, g, &gte);
        if (ret < 0) {
            break;
        }
        if (gte_is_zeroed(e, gte) || (gte == 0 && !bs->backing_file[0])) {
            /* Already reads as zeros. */
        } else if (whole && e->zero_grain && !e->compressed && g / e->gtes < e->gd_entries) {
            /* A zeroed-grain entry: no data is written (any old grain is left unused). */
            uint32_t gdi = (uint32_t)(g / e->gtes);
            VmdkGtSlot *slot;
            ret = vmdk_note_write(bs);
            if (ret == 0 && e->gd[gdi] == 0) {
                ret = vmdk_gt_allocate(e, gdi);
            }
            if (ret == 0) {
                ret = vmdk_gt_get(e, gdi, &slot);
            }
            if (ret == 0) {
                slot->entries[g % e->gtes] = VMDK_GTE_ZEROED;
                ret = vmdk_gt_write(e, gdi, slot->entries, (uint32_t)(g % e->gtes),
                                    (uint32_t)(g % e->gtes) + 1);
                if (ret < 0) {
                    slot->valid = false;
                }
            }
        } else if (gte_is_data(e, gte) && !e->compressed) {
            /* Stored data: zero it where it lies (the file layer may punch it out). */
            ret = vmdk_note_write(bs);
            if (ret == 0) {
                ret = bdrv_pwrite_zeroes(e->file, (uint64_t)gte * VMDK_SECTOR + in, chunk);
            }
        } else {
            QBIOVector v;
            if (!zero) {
                zero = calloc(1, (size_t)gbytes);
                if (!zero) {
                    ret = -ENOMEM;
                    break;
                }
            }
            qiov_init_buf(&v, zero, (size_t)chunk);
            ret = vmdk_sparse_write(bs, e, pos, &v, 0, (size_t)chunk);
        }
        done += chunk;
    }
    free(zero);
    return ret;
}

int vmdk_sparse_status(BlockDriverState *bs, VmdkExtent *e, uint64_t off, uint64_t n,
                       uint64_t *pnum, uint64_t *map)
{
    uint64_t gbytes = grain_bytes(e);
    uint64_t g = off / gbytes;
    uint64_t in = off % gbytes;
    uint32_t gte;
    int ret;

    (void)bs;
    /*
     * One grain at most per answer, as QEMU's vmdk driver gives: callers
     * that merge runs (map, convert) see no difference, but qemu-img
     * compare -s compares the raw answers, end-of-image flag included, and
     * a run reaching the end must be reported only from its last grain.
     */
    *pnum = MIN(gbytes - in, n);
    if (g == e->pending_g) {
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
    }
    ret = vmdk_get_gte(e, g, &gte);
    if (ret < 0) {
        return ret;
    }
    if (gte == 0) {
        return 0;
    }
    if (gte_is_zeroed(e, gte)) {
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
    }
    if (e->compressed) {
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
    }
    *map = (uint64_t)gte * VMDK_SECTOR + in;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
}

/*
 * qemu-img's verdict for sparse extents: every grain table and every grain
 * a table references must start inside the file. QEMU stops at the first
 * such error and fails the check with EINVAL; so does this.
 */
int vmdk_sparse_check(BlockDriverState *bs, VmdkExtent *e, BdrvCheckResult *res, BdrvError *err)
{
    int64_t file_len = bdrv_getlength(e->file);
    uint64_t gbytes = grain_bytes(e);
    uint64_t grains = DIV_ROUND_UP(e->capacity, e->grain_sectors);

    if (file_len < 0) {
        return bdrv_error_set(err, (int)file_len, "image '%s': cannot get the size of '%s'",
                              bs->filename, e->name);
    }
    for (uint32_t gdi = 0; gdi < e->gd_entries; gdi++) {
        VmdkGtSlot *slot;
        int ret;

        if (e->gd[gdi] == 0) {
            continue;
        }
        ret = vmdk_gt_get(e, gdi, &slot);
        if (ret == -EBADIMAGE) {
            res->corruptions++;
            return bdrv_error_set(err, -EINVAL,
                                  "ERROR: grain table %" PRIu32 " of extent '%s' points after "
                                  "EOF", gdi, e->name);
        }
        if (ret < 0) {
            res->check_errors++;
            return bdrv_error_set(err, ret, "image '%s': cannot read a grain table of '%s'",
                                  bs->filename, e->name);
        }
        for (uint32_t i = 0; i < e->gtes; i++) {
            uint64_t g = (uint64_t)gdi * e->gtes + i;
            uint32_t gte = slot->entries[i];
            if (g >= grains) {
                break;
            }
            if (gte_is_data(e, gte) && (uint64_t)gte * VMDK_SECTOR >= (uint64_t)file_len) {
                res->corruptions++;
                return bdrv_error_set(err, -EINVAL,
                                      "ERROR: cluster offset for sector %" PRIu64
                                      " points after EOF", (e->start + g * gbytes) / VMDK_SECTOR);
            }
        }
    }
    return 0;
}

/*
 * QEMU's layout for a new hosted sparse extent: header, descriptor at
 * sector 1 (20 sectors), the redundant GD and its GTs, the GD and its GTs,
 * all tables preallocated and zeroed, the first grain on a grain boundary.
 */
int vmdk_create_sparse_extent(const char *filename, uint64_t sectors, bool zeroed_grain,
                              bool stream, const char *desc, int flags, BdrvError *err)
{
    const uint64_t grain = VMDK_DEFAULT_GRAIN;
    const uint32_t gtes = VMDK_MAX_GTES;
    uint64_t gd_entries = DIV_ROUND_UP(sectors, grain * gtes);
    uint64_t gd_sectors = DIV_ROUND_UP(gd_entries * 4, VMDK_SECTOR);
    uint64_t gt_sectors = DIV_ROUND_UP((uint64_t)gtes * 4, VMDK_SECTOR);
    uint64_t rgd = 21, rgt = rgd + gd_sectors;
    uint64_t gd = rgt + gd_entries * gt_sectors, gt = gd + gd_sectors;
    uint64_t overhead = ROUND_UP(gt + gd_entries * gt_sectors, grain);
    uint32_t fl = VMDK4_FLAG_NL_DETECT | VMDK4_FLAG_RGD;
    BlockDriverState *file = NULL;
    uint8_t *meta = NULL, *dir = NULL;
    size_t desc_len = desc ? strlen(desc) : 0;
    int ret;

    if (gd_entries > VMDK_MAX_GD_ENTRIES || overhead > UINT32_MAX) {
        return bdrv_error_set(err, -EINVAL, "vmdk: '%s' would be too large (%" PRIu64
                              " sectors)", filename, sectors);
    }
    if (desc_len > 20 * VMDK_SECTOR) {
        return bdrv_error_set(err, -EINVAL, "vmdk: the descriptor of '%s' is too long",
                              filename);
    }
    if (zeroed_grain) {
        fl |= VMDK4_FLAG_ZERO_GRAIN;
    }
    if (stream) {
        fl |= VMDK4_FLAG_COMPRESS | VMDK4_FLAG_MARKER;
    }
    meta = calloc(1, 21 * VMDK_SECTOR);
    dir = calloc(1, (size_t)(gd_sectors * VMDK_SECTOR) + 1);
    if (!meta || !dir) {
        ret = bdrv_error_set(err, -ENOMEM, "vmdk: out of memory creating '%s'", filename);
        goto out;
    }
    memcpy(meta + H4_MAGIC, VMDK4_MAGIC, 4);
    le32_store(meta + H4_VERSION, stream ? 3 : zeroed_grain ? 2 : 1);
    le32_store(meta + H4_FLAGS, fl);
    le64_store(meta + H4_CAPACITY, sectors);
    le64_store(meta + H4_GRAIN, grain);
    le64_store(meta + H4_DESC_OFFSET, 1);
    le64_store(meta + H4_DESC_SIZE, 20);
    le32_store(meta + H4_GTES, gtes);
    le64_store(meta + H4_RGD_OFFSET, rgd);
    le64_store(meta + H4_GD_OFFSET, gd);
    le64_store(meta + H4_OVERHEAD, overhead);
    meta[H4_UNCLEAN] = 0;
    memcpy(meta + H4_NL, "\n \r\n", 4);
    le16_store(meta + H4_COMPRESS, stream ? VMDK4_COMPRESSION_DEFLATE : 0);
    if (desc_len) {
        memcpy(meta + VMDK_SECTOR, desc, desc_len);
    }

    ret = bdrv_create_file(filename, 0, BDRV_PREALLOC_OFF, flags, err);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_file_open_for(&file, filename, &bdrv_vmdk, flags | BDRV_O_RDWR, err);
    if (ret < 0) {
        goto out;
    }
    /* The tables are zeros; sizing the file first keeps them sparse. */
    ret = bdrv_truncate(file, overhead * VMDK_SECTOR, BDRV_PREALLOC_OFF, err);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_pwrite(file, 0, meta, 21 * VMDK_SECTOR);
    for (uint64_t i = 0; ret == 0 && i < gd_entries; i++) {
        le32_store(dir + i * 4, (uint32_t)(rgt + i * gt_sectors));
    }
    if (ret == 0 && gd_entries) {
        ret = bdrv_pwrite(file, rgd * VMDK_SECTOR, dir, (size_t)(gd_sectors * VMDK_SECTOR));
    }
    for (uint64_t i = 0; ret == 0 && i < gd_entries; i++) {
        le32_store(dir + i * 4, (uint32_t)(gt + i * gt_sectors));
    }
    if (ret == 0 && gd_entries) {
        ret = bdrv_pwrite(file, gd * VMDK_SECTOR, dir, (size_t)(gd_sectors * VMDK_SECTOR));
    }
    if (ret == 0) {
        ret = bdrv_flush(file);
    }
    if (ret < 0) {
        bdrv_error_set(err, ret, "vmdk: could not write '%s': %s", filename, strerror(-ret));
    }
out:
    bdrv_close(file);
    free(meta);
    free(dir);
    return ret;
}
