/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cow.c: the User-Mode-Linux copy-on-write format (the ubd driver's COW
 * files, made by uml_mkcow and merged by uml_moo): a header naming a raw
 * backing file, a bitmap with one bit per 512-byte sector, and a data area
 * that mirrors the backing file sector for sector.
 *
 * Layout facts come from the kernel's arch/um/drivers/cow_user.c and
 * ubd_kern.c and from files this machine's uml_mkcow wrote (formats.md §9);
 * the code is this library's own.
 *
 * Versions: headers of versions 1 (host-endian), 2 and 3 (big-endian) are
 * read, including the unpacked "broken" version 3 layout of old 64-bit
 * binaries. New files are version 3 with 4 KiB alignment, byte for byte the
 * layout uml_mkcow writes today: QEMU 7.2 dropped its own cow driver (whose
 * version 2 layout, with a 1024-byte name field, UML never understood), so
 * the UML tools and the ubd driver are the only other consumers, and
 * version 3 is what they write and expect. As uml_mkcow does, the backing
 * file is recorded by absolute path with its mtime and size, which ubd and
 * uml_moo compare against the backing file before using it.
 *
 * Ordering (the invariants a crash must not break):
 *
 *  1. A sector's data is written to its slot in the data area before its
 *     bitmap bit is set on disk. Data slots are fixed (sector n always lives
 *     at data_offset + n*512), so no space is ever allocated or reused.
 *  2. Bitmap changes are kept in memory (write-back) and reach the disk
 *     only after a flush of the file has made the data they expose durable:
 *     at bdrv_flush, at close, and when a changed bitmap chunk must leave
 *     the cache. A bit that reached the disk therefore always exposes data
 *     that is there.
 *  3. A crash loses at most the bits of writes made since the last flush;
 *     those sectors read their backing data again, as they did before the
 *     writes. Nothing ever reads unwritten space in place of backing data.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "block/block_int.h"

#define COW_MAGIC              0x4F4F4F4Du   /* "OOOM" read big-endian */
#define COW_SECTOR_SIZE        512u
#define COW_V1_PATH_LEN        256u
#define COW_V3_PATH_LEN        4096u
#define COW_V1_HEADER_BYTES    280u          /* packed v1 */
#define COW_V2_HEADER_BYTES    4120u         /* packed v2 */
#define COW_V3_HEADER_BYTES    4128u         /* packed v3 */
#define COW_V3B_HEADER_BYTES   4136u         /* unpacked ("broken") v3 of old 64-bit builds */
#define COW_CREATE_ALIGNMENT   4096u         /* what uml_mkcow writes */
#define COW_MAX_ALIGNMENT      (1u << 24)    /* a sane cap on a header field */
#define COW_FORMAT_BITMAP      0

/*
 * The bitmap is cached in 4 KiB chunks (each covers 32768 sectors, 16 MiB
 * of disk), 256 of them: 1 MiB at most, whole bitmaps of disks up to 4 GiB.
 */
#define COW_CHUNK_SIZE         4096u
#define COW_CACHE_SLOTS        256

typedef struct CowChunk {
    uint64_t index;           /* chunk number; UINT64_MAX when the slot is empty */
    uint64_t last_use;
    uint32_t dirty_lo, dirty_hi;   /* changed bytes [lo, hi); lo == hi: clean */
    uint8_t *data;
} CowChunk;

typedef struct BDRVCowState {
    uint32_t version;
    uint32_t mtime;           /* the backing file's mtime as recorded */
    uint32_t alignment;       /* bytes; the bitmap's alignment (v3), else the sector size */
    uint64_t size;            /* virtual size in bytes (the backing file's size) */
    uint64_t sectors;         /* ceil(size / 512) */
    uint64_t bitmap_offset;
    uint64_t bitmap_len;      /* bytes of bitmap this driver reads and writes */
    uint64_t data_offset;
    uint64_t use_clock;
    CowChunk cache[COW_CACHE_SLOTS];
    int last_slot;
    int ndirty;
} BDRVCowState;

static const BdrvOptDesc cow_create_opts[] = {
    { .name = "size", .type = BDRV_OPT_SIZE, .def = "0",
      .help = "Size of the virtual disk (0, or the base image's own size)" },
    { .name = "backing_file", .type = BDRV_OPT_STRING,
      .help = "Raw image whose changes this file records (required)" },
    { 0 }
};

/* ------------------------------------------------------------------ */
/* Bitmap cache                                                        */

static void cow_cache_free(BDRVCowState *s)
{
    for (int i = 0; i < COW_CACHE_SLOTS; i++) {
        free(s->cache[i].data);
        s->cache[i].data = NULL;
        s->cache[i].index = UINT64_MAX;
    }
}

static int cow_cache_init(BDRVCowState *s)
{
    for (int i = 0; i < COW_CACHE_SLOTS; i++) {
        s->cache[i].index = UINT64_MAX;
        s->cache[i].data = NULL;
        s->cache[i].last_use = 0;
        s->cache[i].dirty_lo = s->cache[i].dirty_hi = 0;
    }
    s->last_slot = 0;
    s->ndirty = 0;
    return 0;
}

/* Bytes of bitmap chunk @index that exist (the last chunk is partial). */
static uint32_t cow_chunk_bytes(BDRVCowState *s, uint64_t index)
{
    uint64_t start = index * COW_CHUNK_SIZE;
    return (uint32_t)MIN((uint64_t)COW_CHUNK_SIZE, s->bitmap_len - start);
}

/* Invariant 2: data first (flush), then every changed bitmap byte. */
static int cow_writeback(BlockDriverState *bs)
{
    BDRVCowState *s = bs->opaque;
    int ret;

    if (s->ndirty == 0) {
        return 0;
    }
    ret = bdrv_flush(bs->file);
    if (ret < 0) {
        return ret;
    }
    for (int i = 0; i < COW_CACHE_SLOTS; i++) {
        CowChunk *c = &s->cache[i];
        if (c->dirty_lo == c->dirty_hi) {
            continue;
        }
        ret = bdrv_pwrite(bs->file, s->bitmap_offset + c->index * COW_CHUNK_SIZE + c->dirty_lo,
                          c->data + c->dirty_lo, c->dirty_hi - c->dirty_lo);
        if (ret < 0) {
            return ret;
        }
        c->dirty_lo = c->dirty_hi = 0;
        s->ndirty--;
    }
    return 0;
}

static int cow_chunk_get(BlockDriverState *bs, uint64_t index, CowChunk **out)
{
    BDRVCowState *s = bs->opaque;
    int victim = -1;
    uint32_t n;
    int ret;

    if (s->cache[s->last_slot].index == index) {
        s->cache[s->last_slot].last_use = ++s->use_clock;
        *out = &s->cache[s->last_slot];
        return 0;
    }
    for (int i = 0; i < COW_CACHE_SLOTS; i++) {
        if (s->cache[i].index == index) {
            s->cache[i].last_use = ++s->use_clock;
            s->last_slot = i;
            *out = &s->cache[i];
            return 0;
        }
        if (victim < 0 || s->cache[i].last_use < s->cache[victim].last_use) {
            victim = i;
        }
    }
    if (s->cache[victim].dirty_lo != s->cache[victim].dirty_hi) {
        /* Evicting a changed chunk: write back everything changed, in order. */
        ret = cow_writeback(bs);
        if (ret < 0) {
            return ret;
        }
    }
    if (!s->cache[victim].data) {
        s->cache[victim].data = malloc(COW_CHUNK_SIZE);
        if (!s->cache[victim].data) {
            return -ENOMEM;
        }
    }
    s->cache[victim].index = UINT64_MAX;
    n = cow_chunk_bytes(s, index);
    memset(s->cache[victim].data + n, 0, COW_CHUNK_SIZE - n);
    ret = bdrv_pread(bs->file, s->bitmap_offset + index * COW_CHUNK_SIZE,
                     s->cache[victim].data, n);
    if (ret < 0) {
        return ret;
    }
    s->cache[victim].index = index;
    s->cache[victim].last_use = ++s->use_clock;
    s->last_slot = victim;
    *out = &s->cache[victim];
    return 0;
}

/*
 * Bit of sector @n: bit n&7 (least significant first) of byte n>>3, the
 * ubd driver's order. Returns 0/1, or -errno.
 */
static int cow_test_bit(BlockDriverState *bs, uint64_t n)
{
    uint64_t byte = n >> 3;
    CowChunk *c;
    int ret = cow_chunk_get(bs, byte / COW_CHUNK_SIZE, &c);

    if (ret < 0) {
        return ret;
    }
    return (c->data[byte % COW_CHUNK_SIZE] >> (n & 7)) & 1;
}

/* The number of sectors from @n (at most @max) whose bits all equal @n's; *bit gets it. */
static int cow_bit_run(BlockDriverState *bs, uint64_t n, uint64_t max, int *bit)
{
    uint64_t count = 0;
    int b = cow_test_bit(bs, n);

    max = MIN(max, (uint64_t)INT_MAX);
    if (b < 0) {
        return b;
    }
    *bit = b;
    while (count < max) {
        uint64_t sec = n + count;
        uint64_t byte = sec >> 3;
        CowChunk *c;
        int ret;

        if ((sec & 7) == 0 && max - count >= 8) {
            ret = cow_chunk_get(bs, byte / COW_CHUNK_SIZE, &c);
            if (ret < 0) {
                return ret;
            }
            uint8_t v = c->data[byte % COW_CHUNK_SIZE];
            if (v == (b ? 0xFF : 0x00)) {
                count += 8;
                continue;
            }
        }
        ret = cow_test_bit(bs, sec);
        if (ret < 0) {
            return ret;
        }
        if (ret != b) {
            break;
        }
        count++;
    }
    return (int)MIN(count, (uint64_t)INT_MAX);
}

/* Set the bits of sectors [@n, +@count) in the cache (written back per invariant 2). */
static int cow_set_bits(BlockDriverState *bs, uint64_t n, uint64_t count)
{
    BDRVCowState *s = bs->opaque;

    while (count > 0) {
        uint64_t byte = n >> 3;
        uint64_t index = byte / COW_CHUNK_SIZE;
        uint32_t in_chunk = (uint32_t)(byte % COW_CHUNK_SIZE);
        uint32_t lo = in_chunk, hi;
        CowChunk *c;
        int ret = cow_chunk_get(bs, index, &c);

        if (ret < 0) {
            return ret;
        }
        /* Every sector whose bit lies in this chunk. */
        while (count > 0 && (n >> 3) / COW_CHUNK_SIZE == index) {
            if ((n & 7) == 0 && count >= 8) {
                c->data[(n >> 3) % COW_CHUNK_SIZE] = 0xFF;
                n += 8;
                count -= 8;
            } else {
                c->data[(n >> 3) % COW_CHUNK_SIZE] |= (uint8_t)(1u << (n & 7));
                n++;
                count--;
            }
        }
        hi = (uint32_t)(((n - 1) >> 3) % COW_CHUNK_SIZE) + 1;
        if (c->dirty_lo == c->dirty_hi) {
            c->dirty_lo = lo;
            c->dirty_hi = hi;
            s->ndirty++;
        } else {
            c->dirty_lo = MIN(c->dirty_lo, lo);
            c->dirty_hi = MAX(c->dirty_hi, hi);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Header                                                              */

static int cow_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    (void)filename;
    if (buf_size < 8) {
        return 0;
    }
    if (be32_load(buf) == COW_MAGIC) {
        uint32_t v = be32_load(buf + 4);
        return v >= 1 && v <= 3 ? 100 : 0;
    }
    /* Version 1 files are host-endian; x86 UML wrote them little-endian. */
    if (le32_load(buf) == COW_MAGIC && le32_load(buf + 4) == 1) {
        return 100;
    }
    return 0;
}

typedef struct CowHeaderInfo {
    uint32_t version;
    uint32_t mtime;
    uint64_t size;
    uint32_t sectorsize;
    uint32_t alignment;
    uint32_t cow_format;
    uint64_t bitmap_offset;
    bool legacy_rounding;     /* v1/v2 computed the bitmap length with a rounding bug */
    const char *name;
    size_t name_field;
} CowHeaderInfo;

/* Decode the header in @b (@n valid bytes, zero-padded to COW_V3B_HEADER_BYTES). */
static int cow_parse_header(const uint8_t *b, size_t n, CowHeaderInfo *hi, const char **why)
{
    bool le = false;

    if (be32_load(b) == COW_MAGIC) {
        hi->version = be32_load(b + 4);
    } else if (le32_load(b) == COW_MAGIC) {
        le = true;
        hi->version = le32_load(b + 4);
    } else {
        *why = "bad magic";
        return -EBADIMAGE;
    }
    hi->cow_format = COW_FORMAT_BITMAP;
    switch (hi->version) {
    case 1:
        if (n < COW_V1_HEADER_BYTES) {
            *why = "the version 1 header is truncated";
            return -EBADIMAGE;
        }
        hi->name = (const char *)b + 8;
        hi->name_field = COW_V1_PATH_LEN;
        /* v1 fields are in the writer's byte order, which the magic tells. */
        hi->mtime = le ? le32_load(b + 264) : be32_load(b + 264);
        hi->size = le ? le64_load(b + 268) : be64_load(b + 268);
        hi->sectorsize = le ? le32_load(b + 276) : be32_load(b + 276);
        hi->alignment = hi->sectorsize;
        hi->bitmap_offset = COW_V1_HEADER_BYTES;
        hi->legacy_rounding = true;
        return 0;
    case 2:
        if (n < COW_V2_HEADER_BYTES) {
            *why = "the version 2 header is truncated";
            return -EBADIMAGE;
        }
        hi->name = (const char *)b + 8;
        hi->name_field = COW_V3_PATH_LEN;
        hi->mtime = be32_load(b + 4104);
        hi->size = be64_load(b + 4108);
        hi->sectorsize = be32_load(b + 4116);
        hi->alignment = hi->sectorsize;
        hi->bitmap_offset = COW_V2_HEADER_BYTES;
        hi->legacy_rounding = true;
        return 0;
    case 3:
        hi->legacy_rounding = false;
        /* Both layouts keep the mtime right after the version. */
        hi->mtime = be32_load(b + 8);
        /*
         * A real path never starts with four NUL bytes; in the unpacked
         * layout, cow_format (always 0) sits where the packed name starts.
         */
        if (le32_load(b + 32) != 0) {
            if (n < COW_V3_HEADER_BYTES) {
                *why = "the version 3 header is truncated";
                return -EBADIMAGE;
            }
            hi->size = be64_load(b + 12);
            hi->sectorsize = be32_load(b + 20);
            hi->alignment = be32_load(b + 24);
            hi->cow_format = be32_load(b + 28);
            hi->name = (const char *)b + 32;
            hi->bitmap_offset = COW_V3_HEADER_BYTES;
        } else {
            if (n < COW_V3B_HEADER_BYTES) {
                *why = "the (unpacked) version 3 header is truncated";
                return -EBADIMAGE;
            }
            hi->size = be64_load(b + 16);
            hi->sectorsize = be32_load(b + 24);
            hi->alignment = be32_load(b + 28);
            hi->cow_format = be32_load(b + 32);
            hi->name = (const char *)b + 36;
            hi->bitmap_offset = COW_V3B_HEADER_BYTES;
        }
        hi->name_field = COW_V3_PATH_LEN;
        if (hi->alignment == 0 || hi->alignment > COW_MAX_ALIGNMENT) {
            *why = "the alignment field is invalid";
            return -EBADIMAGE;
        }
        hi->bitmap_offset = ROUND_UP(hi->bitmap_offset, (uint64_t)hi->alignment);
        return 0;
    default:
        *why = "unknown version";
        return -ENOTSUP;
    }
}

static int cow_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVCowState *s = bs->opaque;
    uint8_t *buf;
    CowHeaderInfo hi;
    const char *why = NULL;
    int64_t file_len;
    uint64_t need, legacy_len, end;
    size_t n, name_len;
    int ret;

    (void)flags;
    file_len = bdrv_getlength(bs->file);
    if (file_len < 0) {
        return bdrv_error_set(err, (int)file_len, "image '%s': could not get the file size",
                              bs->filename);
    }
    if (file_len < 8) {
        return bdrv_error_set(err, -EBADIMAGE, "invalid cow image '%s': file too small for a cow header",
                              bs->filename);
    }
    buf = calloc(1, COW_V3B_HEADER_BYTES);
    if (!buf) {
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
    }
    n = (size_t)MIN((uint64_t)file_len, (uint64_t)COW_V3B_HEADER_BYTES);
    ret = bdrv_pread(bs->file, 0, buf, n);
    if (ret < 0) {
        free(buf);
        return bdrv_error_set(err, ret, "image '%s': could not read the header: %s",
                              bs->filename, strerror(-ret));
    }
    ret = cow_parse_header(buf, n, &hi, &why);
    if (ret < 0) {
        free(buf);
        if (ret == -ENOTSUP) {
            return bdrv_error_set(err, ret, "image '%s': unsupported cow version %" PRIu32,
                                  bs->filename, hi.version);
        }
        return bdrv_error_set(err, ret, "image '%s': invalid cow header: %s", bs->filename,
                              why);
    }
    name_len = strnlen(hi.name, hi.name_field);
    if (name_len == hi.name_field || name_len >= sizeof(bs->backing_file)) {
        free(buf);
        return bdrv_error_set(err, -EBADIMAGE, "invalid cow image '%s': the backing file name is not "
                              "terminated", bs->filename);
    }
    if (name_len == 0) {
        free(buf);
        return bdrv_error_set(err, -EBADIMAGE, "invalid cow image '%s': the cow header names no backing "
                              "file", bs->filename);
    }
    memcpy(bs->backing_file, hi.name, name_len + 1);
    free(buf);

    if (hi.cow_format != COW_FORMAT_BITMAP) {
        bs->backing_file[0] = '\0';
        return bdrv_error_set(err, -ENOTSUP, "image '%s': unsupported cow_format %" PRIu32
                              " (only the bitmap format 0 exists)", bs->filename,
                              hi.cow_format);
    }
    /* The ubd driver only ever writes 512-byte sectors, and so does this driver. */
    if (hi.sectorsize == 0 || !IS_POW2(hi.sectorsize)) {
        bs->backing_file[0] = '\0';
        return bdrv_error_set(err, -EBADIMAGE, "invalid cow image '%s': sector size %" PRIu32
                              " is not a power of two", bs->filename, hi.sectorsize);
    }
    if (hi.sectorsize != COW_SECTOR_SIZE) {
        bs->backing_file[0] = '\0';
        return bdrv_error_set(err, -ENOTSUP, "image '%s': sector size %" PRIu32 " is not "
                              "supported (only 512)", bs->filename, hi.sectorsize);
    }
    if (hi.size > (uint64_t)INT64_MAX - COW_SECTOR_SIZE) {
        bs->backing_file[0] = '\0';
        return bdrv_error_set(err, -EBADIMAGE, "invalid cow image '%s': size %" PRIu64 " is too large",
                              bs->filename, hi.size);
    }
    s->version = hi.version;
    s->mtime = hi.mtime;
    s->alignment = hi.alignment;
    s->size = hi.size;
    s->sectors = DIV_ROUND_UP(hi.size, COW_SECTOR_SIZE);
    s->bitmap_offset = hi.bitmap_offset;
    need = DIV_ROUND_UP(s->sectors, 8);
    if (hi.legacy_rounding) {
        /*
         * Versions 1 and 2 sized the bitmap as (size + ss - 1) / (8 * ss),
         * which can be a byte short; the missing bits are then in the padding
         * before the data area, which starts at the next sector boundary.
         */
        legacy_len = (hi.size + COW_SECTOR_SIZE - 1) / (8 * COW_SECTOR_SIZE);
        s->data_offset = ROUND_UP(s->bitmap_offset + legacy_len, (uint64_t)COW_SECTOR_SIZE);
    } else {
        s->data_offset = ROUND_UP(s->bitmap_offset + need, (uint64_t)hi.alignment);
    }
    s->bitmap_len = need;
    if (ADD_OVERFLOW(s->bitmap_offset, need, &end) || end > s->data_offset) {
        bs->backing_file[0] = '\0';
        return bdrv_error_set(err, -EBADIMAGE, "invalid cow image '%s': the bitmap (%" PRIu64 " bytes at %"
                              PRIu64 ") is shorter than the image's %" PRIu64 " sectors",
                              bs->filename, s->data_offset - MIN(s->data_offset,
                              s->bitmap_offset), s->bitmap_offset, s->sectors);
    }
    if (end > (uint64_t)file_len) {
        bs->backing_file[0] = '\0';
        return bdrv_error_set(err, -EBADIMAGE, "invalid cow image '%s': the bitmap (%" PRIu64 " bytes at %"
                              PRIu64 ") extends past the end of the %" PRId64 "-byte file",
                              bs->filename, need, s->bitmap_offset, file_len);
    }
    if (s->data_offset > (uint64_t)INT64_MAX - s->size - COW_SECTOR_SIZE) {
        bs->backing_file[0] = '\0';
        return bdrv_error_set(err, -EBADIMAGE, "invalid cow image '%s': the data area offset is too large",
                              bs->filename);
    }
    /* UML backing files are always raw disks: never probe them. */
    snprintf(bs->backing_format, sizeof(bs->backing_format), "raw");
    cow_cache_init(s);
    bs->total_sectors = (int64_t)s->sectors;
    return 0;
}

static void cow_close(BlockDriverState *bs)
{
    BDRVCowState *s = bs->opaque;

    if (!bs->read_only) {
        /* Nothing can report an error here; the facade flushed before closing. */
        cow_writeback(bs);
    }
    cow_cache_free(s);
}

static int cow_flush(BlockDriverState *bs)
{
    return cow_writeback(bs);
}

/* ------------------------------------------------------------------ */
/* I/O                                                                 */

static int cow_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVCowState *s = bs->opaque;
    uint64_t done = 0;
    int ret;

    while (done < qiov->size) {
        uint64_t sec = (offset + done) / COW_SECTOR_SIZE;
        uint64_t left = (qiov->size - done) / COW_SECTOR_SIZE;
        QBIOVector part;
        int bit, run;

        run = cow_bit_run(bs, sec, left, &bit);
        if (run < 0) {
            return run;
        }
        ret = qiov_init_slice(&part, qiov, (size_t)done, (size_t)run * COW_SECTOR_SIZE);
        if (ret < 0) {
            return ret;
        }
        if (bit) {
            ret = bdrv_preadv(bs->file, s->data_offset + sec * COW_SECTOR_SIZE, &part);
        } else {
            ret = bdrv_read_backing(bs, offset + done, &part, UINT64_MAX);
        }
        qiov_destroy(&part);
        if (ret < 0) {
            return ret;
        }
        done += (uint64_t)run * COW_SECTOR_SIZE;
    }
    return 0;
}

static int cow_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVCowState *s = bs->opaque;
    int ret;

    /* Invariant 1: the data first, in its fixed slot. */
    ret = bdrv_pwritev(bs->file, s->data_offset + offset, qiov);
    if (ret < 0) {
        return ret;
    }
    return cow_set_bits(bs, offset / COW_SECTOR_SIZE, qiov->size / COW_SECTOR_SIZE);
}

static int cow_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    BDRVCowState *s = bs->opaque;
    int bit;
    int run = cow_bit_run(bs, offset / COW_SECTOR_SIZE,
                          DIV_ROUND_UP(bytes, COW_SECTOR_SIZE), &bit);

    if (run < 0) {
        return run;
    }
    *pnum = MIN((uint64_t)run * COW_SECTOR_SIZE, bytes);
    if (!bit) {
        return 0;
    }
    *map = s->data_offset + offset;
    *file = bs->file;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
}

static int64_t cow_getlength(BlockDriverState *bs)
{
    BDRVCowState *s = bs->opaque;
    return (int64_t)s->size;
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

static int cow_create(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    const char *backing = bdrv_opts_get_str(opts, "backing_file");
    uint64_t req_size = bdrv_opts_get_size(opts, "size");
    char resolved[PATH_MAX], abs_path[PATH_MAX];
    BlockDriverState *file = NULL;
    uint8_t *hdr = NULL;
    struct stat st;
    uint64_t size, sectors, bitmap_offset, bitmap_len, data_offset;
    size_t name_len;
    int ret;

    if (!backing) {
        return bdrv_error_set(err, -EINVAL, "cow: a backing file is required (a cow image "
                              "only records changes to one)");
    }
    ret = bdrv_resolve_backing_name(resolved, sizeof(resolved), filename, backing);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "cow: backing file name '%.64s...' is too long",
                              backing);
    }
    /*
     * The header records the backing file's absolute path, mtime and size,
     * which the ubd driver and uml_moo check before using it. stat() is the
     * one way to learn an mtime; no descriptor is opened for it.
     */
    if (!realpath(resolved, abs_path)) {
        return bdrv_error_set(err, -errno, "cow: could not find backing file '%s': %s",
                              resolved, strerror(errno));
    }
    if (stat(abs_path, &st) < 0) {
        return bdrv_error_set(err, -errno, "cow: could not stat backing file '%s': %s",
                              abs_path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return bdrv_error_set(err, -EINVAL, "cow: backing file '%s' is not a regular file",
                              abs_path);
    }
    name_len = strlen(abs_path);
    if (name_len >= COW_V3_PATH_LEN) {
        return bdrv_error_set(err, -EINVAL, "cow: backing file path '%.64s...' is longer than "
                              "%u bytes", abs_path, COW_V3_PATH_LEN - 1);
    }
    size = (uint64_t)st.st_size;
    /* The virtual size is the backing file's size: the UML tools refuse anything else. */
    if (req_size && ROUND_UP(req_size, BDRV_SECTOR_SIZE) != ROUND_UP(size, BDRV_SECTOR_SIZE)) {
        return bdrv_error_set(err, -EINVAL, "cow: size %" PRIu64 " differs from the size of "
                              "backing file '%s' (%" PRIu64 "); a cow image always has its "
                              "backing file's size", req_size, abs_path, size);
    }
    sectors = DIV_ROUND_UP(size, COW_SECTOR_SIZE);
    bitmap_offset = ROUND_UP((uint64_t)COW_V3_HEADER_BYTES, (uint64_t)COW_CREATE_ALIGNMENT);
    bitmap_len = DIV_ROUND_UP(sectors, 8);
    data_offset = ROUND_UP(bitmap_offset + bitmap_len, (uint64_t)COW_CREATE_ALIGNMENT);
    if (size > (uint64_t)INT64_MAX - data_offset) {
        return bdrv_error_set(err, -EINVAL, "cow: backing file '%s' is too large", abs_path);
    }

    hdr = calloc(1, COW_V3_HEADER_BYTES);
    if (!hdr) {
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    be32_store(hdr + 0, COW_MAGIC);
    be32_store(hdr + 4, 3);
    be32_store(hdr + 8, (uint32_t)st.st_mtime);
    be64_store(hdr + 12, size);
    be32_store(hdr + 20, COW_SECTOR_SIZE);
    be32_store(hdr + 24, COW_CREATE_ALIGNMENT);
    be32_store(hdr + 28, COW_FORMAT_BITMAP);
    memcpy(hdr + 32, abs_path, name_len);

    ret = bdrv_create_file(filename, 0, BDRV_PREALLOC_OFF, flags, err);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_file_open_for(&file, filename, &bdrv_cow, BDRV_O_RDWR | (flags & BDRV_O_NO_FLUSH), err);
    if (ret < 0) {
        goto out;
    }
    /* Sparse: a zero bitmap and a data area as long as the disk, as uml_mkcow leaves it. */
    ret = bdrv_truncate(file, data_offset + size, BDRV_PREALLOC_OFF, err);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_pwrite(file, 0, hdr, COW_V3_HEADER_BYTES);
    if (ret == 0) {
        ret = bdrv_flush(file);
    }
    if (ret < 0) {
        bdrv_error_set(err, ret, "could not write the cow header of '%s': %s", filename,
                       strerror(-ret));
    }
out:
    bdrv_close(file);
    free(hdr);
    return ret;
}

static int cow_get_specific_info(BlockDriverState *bs, QBlockSpecificInfo *info, BdrvError *err)
{
    BDRVCowState *s = bs->opaque;

    info->fmt_type = QB_FMT_COW;
    info->u.cow.version = s->version;
    info->u.cow.mtime = s->mtime;
    info->u.cow.sector_size = COW_SECTOR_SIZE;
    info->u.cow.alignment = s->alignment;
    info->u.cow.backing_file = strdup(bs->backing_file);
    if (!info->u.cow.backing_file) {
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
    }
    return 0;
}

const BlockDriver bdrv_cow = {
    .format_name = "cow",
    .instance_size = sizeof(BDRVCowState),
    .thread_safe = false,
    .shares_write = false,
    .supports_backing = true,
    .bdrv_probe = cow_probe,
    .bdrv_open = cow_open,
    .bdrv_close = cow_close,
    .bdrv_create = cow_create,
    .create_opts = cow_create_opts,
    .bdrv_preadv = cow_preadv,
    .bdrv_pwritev = cow_pwritev,
    .bdrv_flush = cow_flush,
    .bdrv_block_status = cow_block_status,
    .bdrv_getlength = cow_getlength,
    .bdrv_get_specific_info = cow_get_specific_info,
};
