/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vpc.c: the Virtual PC / Hyper-V VHD format ("vpc"): fixed images (raw data
 * and a footer) and dynamic images (footer copy, dynamic header, block
 * allocation table, per-block sector bitmaps), sized the way QEMU 7.2 sizes
 * them.
 *
 * Dynamic layout: the 512-byte footer copy at 0, the 1024-byte dynamic
 * header at footer.data_offset, the BAT (big-endian u32 sector numbers,
 * 0xFFFFFFFF unallocated) at header.table_offset, then blocks, each a sector
 * bitmap (MSB first, a set bit: the sector is stored here) followed by the
 * block's data, and the footer again in the last 512 bytes of the file.
 *
 * Allocating write order (the numbered invariants):
 *   1. A new block goes at free_data_block_offset, the end of the last block
 *      the BAT references (or of the BAT itself): where the trailing footer
 *      normally sits. It never overlaps a block the BAT references.
 *   2. The footer is first written at the new end of the file (after the new
 *      block), so that the file ends with a valid footer at every moment.
 *   3. The block's bitmap (all ones, as QEMU writes it), the guest data, and
 *      zeros over the rest of the block (which may hold a stale footer or the
 *      remains of a block leaked by a crash) are written, then flushed.
 *   4. The BAT entry is written (no flush of its own: the next allocation's
 *      flush, or the caller's, makes it durable, and nothing written in
 *      between depends on it).
 * A crash before 4 leaves a block the BAT does not reference between the
 * last referenced block and the trailing footer: leaked space, reused by the
 * next allocation. Nothing the BAT references is ever unwritten or reused.
 * For a block already allocated whose bitmap lacks bits for written sectors
 * (images from other writers), the data is flushed before the bitmap bits
 * are set.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "block/block_int.h"

#define VHD_FOOTER_SIZE        512
#define VHD_DYN_HEADER_SIZE    1024
#define VHD_TYPE_FIXED         2
#define VHD_TYPE_DYNAMIC       3
#define VHD_BAT_UNALLOCATED    0xFFFFFFFFu
#define VHD_DEFAULT_BLOCK_SIZE 0x200000u
#define VHD_TIMESTAMP_BASE     946684800u   /* 2000-01-01 00:00:00 UTC in Unix time */
#define VHD_CREATOR_VERSION    0x00050003u
/* The largest CHS geometry and the largest size QEMU opens or creates (2040 GiB). */
#define VHD_MAX_CYLINDERS      65535u
#define VHD_MAX_HEADS          16u
#define VHD_MAX_SPT            255u
#define VHD_MAX_GEOMETRY       ((uint64_t)VHD_MAX_CYLINDERS * VHD_MAX_HEADS * VHD_MAX_SPT)
#define VHD_MAX_SECTORS        0xFF000000ull
/* QEMU refuses more BAT entries than this (the BAT must stay addressable in an int). */
#define VHD_MAX_TABLE_ENTRIES  (0x7FFFFFFFu / 4)
#define VPC_BITMAP_CACHE_SLOTS 8

/* Footer field offsets. */
enum {
    FT_COOKIE = 0,
    FT_FEATURES = 8,
    FT_VERSION = 12,
    FT_DATA_OFFSET = 16,
    FT_TIMESTAMP = 24,
    FT_CREATOR_APP = 28,
    FT_CREATOR_VERSION = 32,
    FT_CREATOR_OS = 36,
    FT_ORIGINAL_SIZE = 40,
    FT_CURRENT_SIZE = 48,
    FT_CYLINDERS = 56,
    FT_HEADS = 58,
    FT_SPT = 59,
    FT_DISK_TYPE = 60,
    FT_CHECKSUM = 64,
    FT_UUID = 68,
    FT_SAVED_STATE = 84,
};

/* Dynamic header field offsets. */
enum {
    DH_COOKIE = 0,
    DH_DATA_OFFSET = 8,
    DH_TABLE_OFFSET = 16,
    DH_VERSION = 24,
    DH_MAX_TABLE_ENTRIES = 28,
    DH_BLOCK_SIZE = 32,
    DH_CHECKSUM = 36,
};

typedef struct VpcBitmapSlot {
    bool valid;
    bool full;                  /* every sector bit of the block is set */
    uint32_t block;
    uint64_t stamp;             /* last use, for eviction */
    uint8_t *bits;
} VpcBitmapSlot;

typedef struct BDRVVpcState {
    uint8_t footer[VHD_FOOTER_SIZE];    /* the footer in use (from offset 0 or the end) */
    bool fixed;
    uint64_t size;                      /* virtual size in bytes (whole sectors) */
    uint64_t fixed_data_end;            /* fixed: where the data stops (the footer starts) */
    uint32_t block_size;
    uint32_t bitmap_size;               /* bytes before each block's data */
    uint32_t max_table_entries;
    uint64_t bat_offset;
    uint32_t *bat;                      /* host order */
    uint64_t free_data_block_offset;    /* where the next block goes */
    VpcBitmapSlot bm[VPC_BITMAP_CACHE_SLOTS];
    uint64_t bm_clock;
} BDRVVpcState;

static const char *const vpc_subformat_choices[] = { "dynamic", "fixed", NULL };
static const char *const vpc_prealloc_choices[] = { "off", "falloc", "full", NULL };

static const BdrvOptDesc vpc_create_opts[] = {
    { .name = "size", .type = BDRV_OPT_SIZE, .def = "0", .help = "Size of the virtual disk" },
    { .name = "subformat", .type = BDRV_OPT_STRING, .def = "dynamic",
      .help = "dynamic (the default: grows as written) or fixed (allocated in full)", .choices = vpc_subformat_choices },
    { .name = "force_size", .type = BDRV_OPT_BOOL, .def = "off",
      .help = "Keep the exact size given instead of rounding it to a CHS geometry" },
    { .name = "preallocation", .type = BDRV_OPT_STRING, .def = "off",
      .help = "What to allocate at creation for fixed images: off, falloc or full",
      .choices = vpc_prealloc_choices,
      .flags = BDRV_OPT_F_PROTOCOL },
    { 0 }
};

HIDDEN void vpc_calculate_geometry(uint64_t total_sectors, uint16_t *cyls, uint8_t *heads,
                                   uint8_t *spt);
HIDDEN int vpc_create_geometry(uint64_t *total_sectors, bool force_size, uint16_t *cyls,
                               uint8_t *heads, uint8_t *spt);
HIDDEN uint64_t vpc_virtual_size(const uint8_t *footer);
HIDDEN uint32_t vpc_checksum(const uint8_t *buf, size_t len, size_t csum_off);

/*
 * Fixed VHDs carry their cookie only in the last sector, so like QEMU the
 * probe recognises dynamic and differencing images alone; fixed ones need
 * the format named.
 */
static int vpc_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    (void)filename;
    if (buf_size >= 8 && memcmp(buf, "conectix", 8) == 0) {
        return 100;
    }
    return 0;
}

/* The one's complement of the byte sum, the checksum field counted as zero. */
uint32_t vpc_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
    uint32_t sum = 0;

    for (size_t i = 0; i < len; i++) {
        if (i >= csum_off && i < csum_off + 4) {
            continue;
        }
        sum += buf[i];
    }
    return ~sum;
}

/*
 * The CHS geometry of the VHD specification (QEMU's calculate_geometry):
 * 17, then 31, then 63 sectors per track as the cylinders overflow, and 255
 * for disks past 65535*16*63 sectors; capped at 65535/16/255.
 */
void vpc_calculate_geometry(uint64_t total_sectors, uint16_t *cyls, uint8_t *heads,
                            uint8_t *spt)
{
    uint64_t ts = MIN(total_sectors, VHD_MAX_GEOMETRY);
    uint64_t cth;
    uint32_t h, s;

    if (ts >= 65535ull * 16 * 63) {
        s = 255;
        h = 16;
        cth = ts / s;
    } else {
        s = 17;
        cth = ts / s;
        h = (uint32_t)DIV_ROUND_UP(cth, 1024);
        if (h < 4) {
            h = 4;
        }
        if (cth >= (uint64_t)h * 1024 || h > 16) {
            s = 31;
            h = 16;
            cth = ts / s;
        }
        if (cth >= (uint64_t)h * 1024) {
            s = 63;
            h = 16;
            cth = ts / s;
        }
    }
    *cyls = (uint16_t)(cth / h);
    *heads = (uint8_t)h;
    *spt = (uint8_t)s;
}

/*
 * The geometry and size qemu-img 7.2 gives a new image of *@total_sectors:
 * the first geometry whose C*H*S covers the request, and that product as
 * the size, except at the maximal geometry (or with force_size, which
 * records the maximal geometry) where the requested size is kept. Returns
 * -EFBIG past 2040 GiB.
 */
int vpc_create_geometry(uint64_t *total_sectors, bool force_size, uint16_t *cyls,
                        uint8_t *heads, uint8_t *spt)
{
    uint64_t ts = *total_sectors;
    uint16_t c = 0;
    uint8_t h = 0, s = 0;

    if (force_size) {
        c = VHD_MAX_CYLINDERS;
        h = VHD_MAX_HEADS;
        s = VHD_MAX_SPT;
    } else {
        /* Each step adds one sector; the geometry changes at most every 16*255 of them. */
        for (uint64_t i = 0; ts > (uint64_t)c * h * s; i++) {
            vpc_calculate_geometry(ts + i, &c, &h, &s);
            if ((uint64_t)c * h * s == VHD_MAX_GEOMETRY) {
                break;
            }
        }
        if ((uint64_t)c * h * s != VHD_MAX_GEOMETRY) {
            ts = (uint64_t)c * h * s;
        }
    }
    if (ts > VHD_MAX_SECTORS) {
        return -EFBIG;
    }
    *total_sectors = ts;
    *cyls = c;
    *heads = h;
    *spt = s;
    return 0;
}

/*
 * QEMU 7.2's size rule: C*H*S sectors, unless the image comes from a creator
 * known to store the exact size in current_size (Hyper-V "win ", QEMU with
 * force_size "qem2", Disk2vhd "d2v ", XenServer "CTXS", blktap "tap\0") or
 * its geometry is the maximal one. Disk2vhd's "d2v\0" does not match "d2v "
 * in QEMU 7.2, so such images get the CHS size there and here.
 */
static uint64_t vpc_chs_sectors(const uint8_t *footer)
{
    return (uint64_t)be16_load(footer + FT_CYLINDERS) * footer[FT_HEADS] * footer[FT_SPT];
}

/* True when the size rule below takes the footer's current_size rather than C*H*S. */
static bool vpc_size_from_footer(const uint8_t *footer)
{
    static const char *const exact_creators[] = { "win ", "qem2", "d2v ", "CTXS" };
    const uint8_t *app = footer + FT_CREATOR_APP;
    bool use_current = vpc_chs_sectors(footer) == VHD_MAX_GEOMETRY ||
                       memcmp(app, "tap\0", 4) == 0;

    for (size_t i = 0; i < ARRAY_SIZE(exact_creators); i++) {
        /* QEMU compares with strncmp: a NUL in the field ends the comparison. */
        if (strncmp((const char *)app, exact_creators[i], 4) == 0) {
            use_current = true;
        }
    }
    return use_current;
}

uint64_t vpc_virtual_size(const uint8_t *footer)
{
    if (vpc_size_from_footer(footer)) {
        return be64_load(footer + FT_CURRENT_SIZE) / 512 * 512;
    }
    return vpc_chs_sectors(footer) * 512;
}

static void vpc_bitmap_cache_free(BDRVVpcState *s)
{
    for (int i = 0; i < VPC_BITMAP_CACHE_SLOTS; i++) {
        free(s->bm[i].bits);
        s->bm[i].bits = NULL;
        s->bm[i].valid = false;
    }
}

/* Sectors per block (the bits of a bitmap that mean something). */
static uint32_t vpc_block_sectors(const BDRVVpcState *s)
{
    return s->block_size / 512;
}

static bool vpc_bit(const uint8_t *bits, uint32_t sector)
{
    return (bits[sector >> 3] >> (7 - (sector & 7))) & 1;
}

static bool vpc_bits_all_set(const BDRVVpcState *s, const uint8_t *bits)
{
    uint32_t n = vpc_block_sectors(s);

    for (uint32_t i = 0; i < n / 8; i++) {
        if (bits[i] != 0xFF) {
            return false;
        }
    }
    for (uint32_t i = n / 8 * 8; i < n; i++) {
        if (!vpc_bit(bits, i)) {
            return false;
        }
    }
    return true;
}

static uint64_t vpc_block_start(const BDRVVpcState *s, uint32_t block)
{
    return (uint64_t)s->bat[block] * 512;
}

/* The cached bitmap of allocated @block, read on a miss. */
static int vpc_bitmap_get(BlockDriverState *bs, uint32_t block, VpcBitmapSlot **out)
{
    BDRVVpcState *s = bs->opaque;
    VpcBitmapSlot *victim = &s->bm[0];
    int ret;

    for (int i = 0; i < VPC_BITMAP_CACHE_SLOTS; i++) {
        VpcBitmapSlot *slot = &s->bm[i];
        if (slot->valid && slot->block == block) {
            slot->stamp = ++s->bm_clock;
            *out = slot;
            return 0;
        }
        if (!slot->valid || (victim->valid && slot->stamp < victim->stamp)) {
            victim = slot;
        }
    }
    if (!victim->bits) {
        victim->bits = malloc(s->bitmap_size);
        if (!victim->bits) {
            return -ENOMEM;
        }
    }
    victim->valid = false;
    ret = bdrv_pread(bs->file, vpc_block_start(s, block), victim->bits, s->bitmap_size);
    if (ret < 0) {
        return ret;
    }
    victim->valid = true;
    victim->block = block;
    victim->full = vpc_bits_all_set(s, victim->bits);
    victim->stamp = ++s->bm_clock;
    *out = victim;
    return 0;
}

/* Forget any cached bitmap of @block (it is about to be rewritten). */
static void vpc_bitmap_forget(BDRVVpcState *s, uint32_t block)
{
    for (int i = 0; i < VPC_BITMAP_CACHE_SLOTS; i++) {
        if (s->bm[i].valid && s->bm[i].block == block) {
            s->bm[i].valid = false;
        }
    }
}

/*
 * Within block @block, from @sector for at most @count sectors: how many
 * sectors share the first one's state, and that state (1 stored, 0 not).
 */
static int vpc_sector_run(BlockDriverState *bs, uint32_t block, uint32_t sector, uint32_t count,
                          uint32_t *run, bool *stored)
{
    VpcBitmapSlot *slot;
    bool first;
    uint32_t n = 1;
    int ret = vpc_bitmap_get(bs, block, &slot);

    if (ret < 0) {
        return ret;
    }
    if (slot->full) {
        *run = count;
        *stored = true;
        return 0;
    }
    first = vpc_bit(slot->bits, sector);
    while (n < count && vpc_bit(slot->bits, sector + n) == first) {
        n++;
    }
    *run = n;
    *stored = first;
    return 0;
}

static int vpc_open_dynamic(BlockDriverState *bs, int64_t file_len, BdrvError *err)
{
    BDRVVpcState *s = bs->opaque;
    uint8_t dh[VHD_DYN_HEADER_SIZE];
    uint64_t dh_off = be64_load(s->footer + FT_DATA_OFFSET);
    uint64_t bat_bytes, end, needed;
    uint8_t *raw = NULL;
    int ret;

    if (dh_off > (uint64_t)file_len || (uint64_t)file_len - dh_off < VHD_DYN_HEADER_SIZE) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': Error reading dynamic VHD header (offset 0x%" PRIx64
                              " is past the end of the file)", bs->filename, dh_off);
    }
    ret = bdrv_pread(bs->file, dh_off, dh, sizeof(dh));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "image '%s': Error reading dynamic VHD header: %s",
                              bs->filename, strerror(-ret));
    }
    if (memcmp(dh + DH_COOKIE, "cxsparse", 8) != 0) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': Invalid header magic in the dynamic VHD header",
                              bs->filename);
    }
    /* QEMU does not verify the dynamic header's checksum; neither does this. */
    s->block_size = be32_load(dh + DH_BLOCK_SIZE);
    if (!IS_POW2(s->block_size) || s->block_size < 512) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': Invalid block size %" PRIu32,
                              bs->filename, s->block_size);
    }
    s->bitmap_size = (uint32_t)ROUND_UP((uint64_t)s->block_size / 512 / 8, 512);
    s->max_table_entries = be32_load(dh + DH_MAX_TABLE_ENTRIES);
    if (s->max_table_entries > VHD_MAX_TABLE_ENTRIES) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': Max Table Entries too large (%" PRIu32 ")",
                              bs->filename, s->max_table_entries);
    }
    needed = DIV_ROUND_UP(s->size, s->block_size);
    if ((uint64_t)s->max_table_entries < needed) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': Page table too small (%" PRIu32 " entries of %" PRIu32
                              " bytes for %" PRIu64 " bytes)", bs->filename,
                              s->max_table_entries, s->block_size, s->size);
    }
    s->bat_offset = be64_load(dh + DH_TABLE_OFFSET);
    bat_bytes = (uint64_t)s->max_table_entries * 4;
    if (ADD_OVERFLOW(s->bat_offset, bat_bytes, &end) || end > (uint64_t)file_len) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': block-vpc: the BAT (%" PRIu64 " bytes at 0x%" PRIx64
                              ") extends past the end of the file", bs->filename, bat_bytes,
                              s->bat_offset);
    }
    ret = bdrv_policy_charge_metadata(bs, bat_bytes, "BAT", err);
    if (ret < 0) {
        return ret;
    }
    s->bat = malloc(MAX(bat_bytes, (uint64_t)4));
    raw = malloc(MAX(bat_bytes, (uint64_t)4));
    if (!s->bat || !raw) {
        free(raw);
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory for the BAT",
                              bs->filename);
    }
    if (bat_bytes) {
        ret = bdrv_pread(bs->file, s->bat_offset, raw, (size_t)bat_bytes);
        if (ret < 0) {
            free(raw);
            return bdrv_error_set(err, ret, "image '%s': could not read the BAT: %s",
                                  bs->filename, strerror(-ret));
        }
    }
    /* The first free byte: past the BAT (sector aligned) and past every referenced block. */
    s->free_data_block_offset = ROUND_UP(end, 512);
    for (uint32_t i = 0; i < s->max_table_entries; i++) {
        s->bat[i] = be32_load(raw + (size_t)i * 4);
        if (s->bat[i] != VHD_BAT_UNALLOCATED) {
            uint64_t block_end = (uint64_t)s->bat[i] * 512 + s->bitmap_size + s->block_size;
            if (block_end > s->free_data_block_offset) {
                s->free_data_block_offset = block_end;
            }
        }
    }
    free(raw);
    if (s->free_data_block_offset > (uint64_t)file_len) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': block-vpc: free_data_block_offset points after the "
                              "end of file. The image has been truncated.", bs->filename);
    }
    return 0;
}

static int vpc_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVVpcState *s = bs->opaque;
    int64_t file_len;
    uint32_t stored, computed;
    bool at_start;
    int ret;

    (void)flags;
    file_len = bdrv_getlength(bs->file);
    if (file_len < 0) {
        return bdrv_error_set(err, (int)file_len, "image '%s': could not get the file size",
                              bs->filename);
    }
    if (file_len < VHD_FOOTER_SIZE) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': File too small for a VHD header",
                              bs->filename);
    }
    /* Dynamic images have a copy of the footer at 0; fixed ones only at the end. */
    at_start = true;
    ret = bdrv_pread(bs->file, 0, s->footer, VHD_FOOTER_SIZE);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "image '%s': could not read the VHD footer: %s",
                              bs->filename, strerror(-ret));
    }
    if (memcmp(s->footer + FT_COOKIE, "conectix", 8) != 0) {
        at_start = false;
        ret = bdrv_pread(bs->file, (uint64_t)file_len - VHD_FOOTER_SIZE, s->footer,
                         VHD_FOOTER_SIZE);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "image '%s': could not read the VHD footer: %s",
                                  bs->filename, strerror(-ret));
        }
        if (memcmp(s->footer + FT_COOKIE, "conectix", 8) != 0 ||
            be32_load(s->footer + FT_DISK_TYPE) != VHD_TYPE_FIXED) {
            return bdrv_error_set(err, -EBADIMAGE, "image '%s': invalid VPC image",
                                  bs->filename);
        }
    }
    stored = be32_load(s->footer + FT_CHECKSUM);
    computed = vpc_checksum(s->footer, VHD_FOOTER_SIZE, FT_CHECKSUM);
    if (stored != computed) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': Incorrect header checksum (0x%08" PRIx32
                              ", expected 0x%08" PRIx32 ")", bs->filename, stored, computed);
    }
    s->size = vpc_virtual_size(s->footer);
    if (s->size / 512 > VHD_MAX_SECTORS) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': virtual size %" PRIu64 " exceeds the VHD maximum of "
                              "2040 GiB", bs->filename, s->size);
    }
    /* QEMU treats every type but fixed (dynamic, differencing, unknown) as dynamic. */
    s->fixed = be32_load(s->footer + FT_DISK_TYPE) == VHD_TYPE_FIXED;
    /*
     * A footer at offset 0 means a dynamic header follows, and QEMU checks it
     * even when the type says fixed (the data then still starts at 0). The
     * one exception here is a file that is nothing but the footer, an empty
     * fixed image, which QEMU creates but cannot open.
     */
    if (!s->fixed || (at_start && file_len > VHD_FOOTER_SIZE)) {
        ret = vpc_open_dynamic(bs, file_len, err);
        if (ret < 0) {
            free(s->bat);
            s->bat = NULL;
            return ret;
        }
    }
    if (s->fixed) {
        free(s->bat);
        s->bat = NULL;
        s->fixed_data_end = (uint64_t)file_len - VHD_FOOTER_SIZE;
    }
    bs->total_sectors = (int64_t)(s->size / 512);
    return 0;
}

static void vpc_close(BlockDriverState *bs)
{
    BDRVVpcState *s = bs->opaque;

    vpc_bitmap_cache_free(s);
    free(s->bat);
    s->bat = NULL;
}

static int64_t vpc_getlength(BlockDriverState *bs)
{
    BDRVVpcState *s = bs->opaque;
    return (int64_t)s->size;
}

static int vpc_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVVpcState *s = bs->opaque;
    size_t done = 0;
    int ret;

    if (s->fixed) {
        return bdrv_preadv(bs->file, offset, qiov);
    }
    while (done < qiov->size) {
        uint64_t pos = offset + done;
        uint32_t block = (uint32_t)(pos / s->block_size);
        uint32_t in_block = (uint32_t)(pos % s->block_size);
        size_t n = (size_t)MIN((uint64_t)(s->block_size - in_block), qiov->size - done);

        if (s->bat[block] == VHD_BAT_UNALLOCATED) {
            qiov_memset(qiov, done, 0, n);
        } else {
            uint32_t run;
            bool stored;
            ret = vpc_sector_run(bs, block, in_block / 512, (uint32_t)(n / 512), &run, &stored);
            if (ret < 0) {
                return ret;
            }
            n = (size_t)run * 512;
            if (!stored) {
                qiov_memset(qiov, done, 0, n);
            } else {
                QBIOVector part;
                ret = qiov_init_slice(&part, qiov, done, n);
                if (ret < 0) {
                    return ret;
                }
                ret = bdrv_preadv(bs->file, vpc_block_start(s, block) + s->bitmap_size + in_block,
                                  &part);
                qiov_destroy(&part);
                if (ret < 0) {
                    return ret;
                }
            }
        }
        done += n;
    }
    return 0;
}

/* Write bitmap bits for @count sectors from @sector of allocated @block (data is durable). */
static int vpc_bitmap_set(BlockDriverState *bs, uint32_t block, uint32_t sector, uint32_t count)
{
    BDRVVpcState *s = bs->opaque;
    VpcBitmapSlot *slot;
    uint32_t first_byte, last_byte, lo, hi;
    bool changed = false;
    int ret = vpc_bitmap_get(bs, block, &slot);

    if (ret < 0 || slot->full) {
        return ret;
    }
    for (uint32_t i = sector; i < sector + count; i++) {
        if (!vpc_bit(slot->bits, i)) {
            slot->bits[i >> 3] |= (uint8_t)(0x80 >> (i & 7));
            changed = true;
        }
    }
    if (!changed) {
        return 0;
    }
    ret = bdrv_flush(bs->file);
    if (ret < 0) {
        slot->valid = false;
        return ret;
    }
    first_byte = sector >> 3;
    last_byte = (sector + count - 1) >> 3;
    lo = ROUND_DOWN(first_byte, 512);
    hi = MIN((uint32_t)ROUND_UP(last_byte + 1, 512), s->bitmap_size);
    ret = bdrv_pwrite(bs->file, vpc_block_start(s, block) + lo, slot->bits + lo, hi - lo);
    if (ret < 0) {
        slot->valid = false;
        return ret;
    }
    slot->full = vpc_bits_all_set(s, slot->bits);
    return 0;
}

/* Allocate @block holding @n bytes of @qiov from @qoff at @in_block (invariants 1-4). */
static int vpc_allocate_block(BlockDriverState *bs, uint32_t block, uint32_t in_block,
                              QBIOVector *qiov, size_t qoff, size_t n)
{
    BDRVVpcState *s = bs->opaque;
    uint64_t start = s->free_data_block_offset;
    uint64_t data = start + s->bitmap_size;
    uint64_t new_end = data + s->block_size;
    uint8_t *bitmap;
    uint8_t entry[4];
    QBIOVector part;
    int ret;

    if (start / 512 >= VHD_BAT_UNALLOCATED) {
        return -EFBIG;   /* the BAT cannot address a block this far into the file */
    }
    ret = bdrv_pwrite(bs->file, new_end, s->footer, VHD_FOOTER_SIZE);   /* invariant 2 */
    if (ret < 0) {
        return ret;
    }
    bitmap = malloc(s->bitmap_size);
    if (!bitmap) {
        return -ENOMEM;
    }
    memset(bitmap, 0xFF, s->bitmap_size);
    ret = bdrv_pwrite(bs->file, start, bitmap, s->bitmap_size);         /* invariant 3 */
    free(bitmap);
    if (ret == 0 && in_block) {
        ret = bdrv_pwrite_zeroes(bs->file, data, in_block);
    }
    if (ret == 0) {
        ret = qiov_init_slice(&part, qiov, qoff, n);
        if (ret == 0) {
            ret = bdrv_pwritev(bs->file, data + in_block, &part);
            qiov_destroy(&part);
        }
    }
    if (ret == 0 && in_block + n < s->block_size) {
        ret = bdrv_pwrite_zeroes(bs->file, data + in_block + n, s->block_size - in_block - n);
    }
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    be32_store(entry, (uint32_t)(start / 512));
    ret = bdrv_pwrite(bs->file, s->bat_offset + (uint64_t)block * 4, entry, 4);  /* inv. 4 */
    if (ret < 0) {
        return ret;
    }
    vpc_bitmap_forget(s, block);
    s->bat[block] = (uint32_t)(start / 512);
    s->free_data_block_offset = new_end;
    return 0;
}

static int vpc_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVVpcState *s = bs->opaque;
    size_t done = 0;
    int ret;

    if (s->fixed) {
        if (offset + qiov->size > s->fixed_data_end) {
            /* The footer claims more data than the file holds before the footer. */
            return -EBADIMAGE;
        }
        return bdrv_pwritev(bs->file, offset, qiov);
    }
    while (done < qiov->size) {
        uint64_t pos = offset + done;
        uint32_t block = (uint32_t)(pos / s->block_size);
        uint32_t in_block = (uint32_t)(pos % s->block_size);
        size_t n = (size_t)MIN((uint64_t)(s->block_size - in_block), qiov->size - done);

        if (s->bat[block] == VHD_BAT_UNALLOCATED) {
            ret = vpc_allocate_block(bs, block, in_block, qiov, done, n);
        } else {
            QBIOVector part;
            ret = qiov_init_slice(&part, qiov, done, n);
            if (ret < 0) {
                return ret;
            }
            ret = bdrv_pwritev(bs->file, vpc_block_start(s, block) + s->bitmap_size + in_block,
                               &part);
            qiov_destroy(&part);
            if (ret == 0) {
                ret = vpc_bitmap_set(bs, block, in_block / 512, (uint32_t)(n / 512));
            }
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/*
 * Unallocated blocks and sectors whose bitmap bit is clear already read as
 * zeros; stored sectors get zeros written through the file layer, which may
 * punch them out.
 */
static int vpc_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVVpcState *s = bs->opaque;
    uint64_t done = 0;

    if (s->fixed) {
        if (offset + bytes > s->fixed_data_end) {
            return -EBADIMAGE;
        }
        return bdrv_pwrite_zeroes(bs->file, offset, bytes);
    }
    while (done < bytes) {
        uint64_t pos = offset + done;
        uint32_t block = (uint32_t)(pos / s->block_size);
        uint32_t in_block = (uint32_t)(pos % s->block_size);
        uint64_t n = MIN((uint64_t)(s->block_size - in_block), bytes - done);

        if (s->bat[block] != VHD_BAT_UNALLOCATED) {
            int ret = bdrv_pwrite_zeroes(bs->file,
                                         vpc_block_start(s, block) + s->bitmap_size + in_block, n);
            if (ret < 0) {
                return ret;
            }
        }
        done += n;
    }
    return 0;
}

static int vpc_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    BDRVVpcState *s = bs->opaque;
    uint32_t block, in_block, run;
    uint64_t n, host;
    bool stored;
    int ret;

    if (s->fixed) {
        *pnum = bytes;
        *map = offset;
        *file = bs->file;
        return bdrv_status_look_through(bs->file, offset, pnum,
                                        BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED |
                                        BDRV_BLOCK_OFFSET_VALID);
    }
    block = (uint32_t)(offset / s->block_size);
    in_block = (uint32_t)(offset % s->block_size);
    n = MIN((uint64_t)(s->block_size - in_block), bytes);
    if (s->bat[block] == VHD_BAT_UNALLOCATED) {
        /* Unallocated blocks read as zeros: QEMU's map shows them present and zero. */
        while (n < bytes && s->bat[++block] == VHD_BAT_UNALLOCATED) {
            n += MIN((uint64_t)s->block_size, bytes - n);
        }
        *pnum = n;
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
    }
    ret = vpc_sector_run(bs, block, in_block / 512, (uint32_t)(n / 512), &run, &stored);
    if (ret < 0) {
        return ret;
    }
    *pnum = (uint64_t)run * 512;
    if (!stored) {
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
    }
    host = vpc_block_start(s, block) + s->bitmap_size + in_block;
    *map = host;
    *file = bs->file;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
}

static int vpc_has_zero_init(BlockDriverState *bs)
{
    BDRVVpcState *s = bs->opaque;

    if (s->fixed) {
        return bdrv_has_zero_init(bs->file);
    }
    return 1;
}

static int vpc_get_specific_info(BlockDriverState *bs, QBlockSpecificInfo *info, BdrvError *err)
{
    BDRVVpcState *s = bs->opaque;
    struct QBlockSpecificVpc *v = &info->u.vpc;

    (void)err;
    info->fmt_type = QB_FMT_VPC;
    v->disk_type = be32_load(s->footer + FT_DISK_TYPE);
    memcpy(v->creator_app, s->footer + FT_CREATOR_APP, 4);
    memcpy(v->creator_os, s->footer + FT_CREATOR_OS, 4);
    v->creator_version = be32_load(s->footer + FT_CREATOR_VERSION);
    v->cylinders = be16_load(s->footer + FT_CYLINDERS);
    v->heads = s->footer[FT_HEADS];
    v->sectors_per_track = s->footer[FT_SPT];
    v->block_size = s->fixed ? 0 : s->block_size;
    v->size_from_footer = vpc_size_from_footer(s->footer);
    v->current_size = be64_load(s->footer + FT_CURRENT_SIZE);
    v->original_size = be64_load(s->footer + FT_ORIGINAL_SIZE);
    return 0;
}

static int vpc_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVVpcState *s = bs->opaque;

    bdi->cluster_size = s->fixed ? 0 : (int)s->block_size;
    bdi->is_dirty = false;
    return 0;
}

static void vpc_uuid_generate(uint8_t *u)
{
    size_t got = 0;

    while (got < 16) {
        ssize_t n = getrandom(u + got, 16 - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    if (got < 16) {
        uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)u << 16) ^ (uint64_t)clock();
        for (int i = 0; i < 16; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            u[i] = (uint8_t)(x >> 56);
        }
    }
    u[6] = (uint8_t)((u[6] & 0x0F) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3F) | 0x80);
}

static int vpc_create(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    uint64_t size = ROUND_UP(bdrv_opts_get_size(opts, "size"), 512);
    const char *subformat = bdrv_opts_get_str(opts, "subformat");
    bool force_size = bdrv_opts_get_bool(opts, "force_size");
    bool fixed = subformat && strcmp(subformat, "fixed") == 0;
    BdrvPrealloc prealloc;
    uint64_t total_sectors = size / 512;
    uint8_t footer[VHD_FOOTER_SIZE];
    BlockDriverState *file = NULL;
    uint16_t cyls;
    uint8_t heads, spt;
    uint8_t *meta = NULL;
    int ret;

    if (bdrv_parse_prealloc(bdrv_opts_get(opts, "preallocation"), &prealloc) < 0 ||
        prealloc == BDRV_PREALLOC_METADATA) {
        return bdrv_error_set(err, -EINVAL, "vpc: invalid preallocation mode '%s'",
                              bdrv_opts_get(opts, "preallocation"));
    }
    if (subformat && !fixed && strcmp(subformat, "dynamic") != 0) {
        return bdrv_error_set(err, -EINVAL, "vpc: Invalid subformat '%s'", subformat);
    }
    ret = vpc_create_geometry(&total_sectors, force_size, &cyls, &heads, &spt);
    if (ret < 0) {
        return bdrv_error_set(err, -EINVAL,
                              "vpc: The image size is too large for file format 'vpc' "
                              "(at most 2040 GiB)");
    }
    size = total_sectors * 512;

    memset(footer, 0, sizeof(footer));
    memcpy(footer + FT_COOKIE, "conectix", 8);
    be32_store(footer + FT_FEATURES, 2);
    be32_store(footer + FT_VERSION, 0x00010000);
    be64_store(footer + FT_DATA_OFFSET, fixed ? UINT64_MAX : VHD_FOOTER_SIZE);
    be32_store(footer + FT_TIMESTAMP, (uint32_t)((uint64_t)time(NULL) - VHD_TIMESTAMP_BASE));
    memcpy(footer + FT_CREATOR_APP, force_size ? "qem2" : "qemu", 4);
    be32_store(footer + FT_CREATOR_VERSION, VHD_CREATOR_VERSION);
    memcpy(footer + FT_CREATOR_OS, "Wi2k", 4);
    be64_store(footer + FT_ORIGINAL_SIZE, size);
    be64_store(footer + FT_CURRENT_SIZE, size);
    be16_store(footer + FT_CYLINDERS, cyls);
    footer[FT_HEADS] = heads;
    footer[FT_SPT] = spt;
    be32_store(footer + FT_DISK_TYPE, fixed ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC);
    vpc_uuid_generate(footer + FT_UUID);
    be32_store(footer + FT_CHECKSUM, vpc_checksum(footer, sizeof(footer), FT_CHECKSUM));

    ret = bdrv_create_file(filename, 0, BDRV_PREALLOC_OFF, flags, err);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_file_open_for(&file, filename, &bdrv_vpc, flags | BDRV_O_RDWR, err);
    if (ret < 0) {
        return ret;
    }
    if (fixed) {
        ret = bdrv_truncate(file, size, prealloc, err);
        if (ret < 0) {
            goto out;
        }
        ret = bdrv_pwrite(file, size, footer, sizeof(footer));
    } else {
        /* Footer copy, dynamic header, BAT (0xFF-padded to a sector), footer. */
        uint32_t entries = (uint32_t)DIV_ROUND_UP(size, VHD_DEFAULT_BLOCK_SIZE);
        uint64_t bat_off = VHD_FOOTER_SIZE + VHD_DYN_HEADER_SIZE;
        uint64_t bat_bytes = ROUND_UP((uint64_t)entries * 4, 512);
        uint64_t total = bat_off + bat_bytes + VHD_FOOTER_SIZE;
        uint8_t *dh;

        meta = malloc((size_t)total);
        if (!meta) {
            ret = bdrv_error_set(err, -ENOMEM, "vpc: out of memory creating '%s'", filename);
            goto out;
        }
        memset(meta, 0, (size_t)bat_off);
        memcpy(meta, footer, sizeof(footer));
        dh = meta + VHD_FOOTER_SIZE;
        memcpy(dh + DH_COOKIE, "cxsparse", 8);
        be64_store(dh + DH_DATA_OFFSET, UINT64_MAX);
        be64_store(dh + DH_TABLE_OFFSET, bat_off);
        be32_store(dh + DH_VERSION, 0x00010000);
        be32_store(dh + DH_MAX_TABLE_ENTRIES, entries);
        be32_store(dh + DH_BLOCK_SIZE, VHD_DEFAULT_BLOCK_SIZE);
        be32_store(dh + DH_CHECKSUM, vpc_checksum(dh, VHD_DYN_HEADER_SIZE, DH_CHECKSUM));
        memset(meta + bat_off, 0xFF, (size_t)bat_bytes);
        memcpy(meta + bat_off + bat_bytes, footer, sizeof(footer));
        ret = bdrv_pwrite(file, 0, meta, (size_t)total);
    }
    if (ret < 0) {
        bdrv_error_set(err, ret, "vpc: could not write '%s': %s", filename, strerror(-ret));
        goto out;
    }
    ret = bdrv_flush(file);
    if (ret < 0) {
        bdrv_error_set(err, ret, "vpc: could not flush '%s': %s", filename, strerror(-ret));
    }
out:
    free(meta);
    bdrv_close(file);
    return ret;
}

const BlockDriver bdrv_vpc = {
    .format_name = "vpc",
    .instance_size = sizeof(BDRVVpcState),
    .thread_safe = false,
    .shares_write = false,
    .supports_backing = false,
    .bdrv_probe = vpc_probe,
    .bdrv_open = vpc_open,
    .bdrv_close = vpc_close,
    .bdrv_create = vpc_create,
    .create_opts = vpc_create_opts,
    .bdrv_preadv = vpc_preadv,
    .bdrv_pwritev = vpc_pwritev,
    .bdrv_pwrite_zeroes = vpc_pwrite_zeroes,
    .bdrv_block_status = vpc_block_status,
    .bdrv_getlength = vpc_getlength,
    .bdrv_has_zero_init = vpc_has_zero_init,
    .bdrv_get_info = vpc_get_info,
    .bdrv_get_specific_info = vpc_get_specific_info,
};
