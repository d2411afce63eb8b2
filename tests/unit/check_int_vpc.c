/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_vpc.c: white-box tests of the VHD driver (block/vpc.c): the CHS
 * geometry and the sizes qemu-img 7.2 gives (its observed table), the size
 * rule by creator application, the footer and dynamic header it creates
 * (read back with POSIX calls), block allocation and the sector bitmaps,
 * what a crash leaves, and hostile footers and headers.
 */

#define _GNU_SOURCE

#define QBINT_NAME "check_int_vpc"
#define QBINT_BIG_ENDIAN
#define QBINT_FMT "vpc"
#include "qbint.h"

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* The driver's helpers (block/vpc.c), reachable from the internal archive. */
void vpc_calculate_geometry(uint64_t total_sectors, uint16_t *cyls, uint8_t *heads,
                            uint8_t *spt);
int vpc_create_geometry(uint64_t *total_sectors, bool force_size, uint16_t *cyls,
                        uint8_t *heads, uint8_t *spt);
uint64_t vpc_virtual_size(const uint8_t *footer);
uint32_t vpc_checksum(const uint8_t *buf, size_t len, size_t csum_off);

/* Change footer bytes (at @foff) and fix its checksum, as a VHD tool would write them. */
static void patch_footer(const char *file, uint64_t foff, size_t field, const void *v,
                         size_t len)
{
    uint8_t ft[512];

    file_read(file, foff, ft, sizeof(ft));
    memcpy(ft + field, v, len);
    be32_store(ft + 64, vpc_checksum(ft, sizeof(ft), 64));
    file_write(file, foff, ft, sizeof(ft));
}

/* ------------------------------------------------------------------ */
/* Geometry and size                                                   */

START_TEST(vpc_geometry_matches_qemu_table)
{
    /* formats.md §7.3: what qemu-img 7.2 created, checked with xxd. */
    static const struct {
        uint64_t request;
        uint16_t c;
        uint8_t h, s;
        uint64_t size;
    } rows[] = {
        { 1 * MiB, 31, 4, 17, 1079296 },
        { 8 * MiB, 241, 4, 17, 8390656 },
        { 64 * MiB, 964, 8, 17, 67125248 },
        { 1 * GiB, 2081, 16, 63, 1073995776 },
        { 127 * GiB, 65279, 16, 255, 136365219840ull },
        { 200 * GiB, 65535, 16, 255, 214748364800ull },
    };

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        uint64_t ts = rows[i].request / 512;
        uint16_t c;
        uint8_t h, s;
        ck_assert_int_eq(vpc_create_geometry(&ts, false, &c, &h, &s), 0);
        ck_assert_msg(c == rows[i].c && h == rows[i].h && s == rows[i].s,
                      "row %zu: %u/%u/%u", i, c, h, s);
        ck_assert_uint_eq(ts * 512, rows[i].size);
    }
    /* force_size keeps the size and records the maximal geometry (qemu-img's "qem2"). */
    {
        uint64_t ts = 8 * MiB / 512;
        uint16_t c;
        uint8_t h, s;
        ck_assert_int_eq(vpc_create_geometry(&ts, true, &c, &h, &s), 0);
        ck_assert_uint_eq(ts, 8 * MiB / 512);
        ck_assert(c == 65535 && h == 16 && s == 255);
    }
    /* Past 2040 GiB: refused. */
    {
        uint64_t ts = 2041 * GiB / 512;
        uint16_t c;
        uint8_t h, s;
        ck_assert_int_eq(vpc_create_geometry(&ts, false, &c, &h, &s), -EFBIG);
        ts = 2040 * GiB / 512;
        ck_assert_int_eq(vpc_create_geometry(&ts, false, &c, &h, &s), 0);
    }
    /* The plain algorithm: the 17/31/63/255 steps. */
    {
        uint16_t c;
        uint8_t h, s;
        vpc_calculate_geometry(2048, &c, &h, &s);
        ck_assert(c == 30 && h == 4 && s == 17);
        vpc_calculate_geometry(65535ull * 16 * 63, &c, &h, &s);
        ck_assert(s == 255 && h == 16);
        vpc_calculate_geometry(UINT64_MAX, &c, &h, &s);
        ck_assert(c == 65535 && h == 16 && s == 255);
    }
}
END_TEST

START_TEST(vpc_size_rule_by_creator)
{
    uint8_t ft[512];

    memset(ft, 0, sizeof(ft));
    be16_store(ft + 56, 241);
    ft[58] = 4;
    ft[59] = 17;
    be64_store(ft + 48, 7 * MiB + 100);
    memcpy(ft + 28, "qemu", 4);
    ck_assert_uint_eq(vpc_virtual_size(ft), 8390656);      /* CHS */
    memcpy(ft + 28, "vpc ", 4);
    ck_assert_uint_eq(vpc_virtual_size(ft), 8390656);
    memcpy(ft + 28, "d2v\0", 4);                           /* QEMU 7.2: no match */
    ck_assert_uint_eq(vpc_virtual_size(ft), 8390656);
    memcpy(ft + 28, "win ", 4);
    ck_assert_uint_eq(vpc_virtual_size(ft), 7 * MiB);      /* current_size, whole sectors */
    memcpy(ft + 28, "qem2", 4);
    ck_assert_uint_eq(vpc_virtual_size(ft), 7 * MiB);
    memcpy(ft + 28, "d2v ", 4);
    ck_assert_uint_eq(vpc_virtual_size(ft), 7 * MiB);
    memcpy(ft + 28, "CTXS", 4);
    ck_assert_uint_eq(vpc_virtual_size(ft), 7 * MiB);
    memcpy(ft + 28, "tap\0", 4);
    ck_assert_uint_eq(vpc_virtual_size(ft), 7 * MiB);
    memcpy(ft + 28, "qemu", 4);
    be16_store(ft + 56, 65535);
    ft[58] = 16;
    ft[59] = 255;
    ck_assert_uint_eq(vpc_virtual_size(ft), 7 * MiB);      /* maximal CHS */
}
END_TEST

/* ------------------------------------------------------------------ */
/* Create                                                              */

START_TEST(vpc_create_dynamic_layout_matches_qemu)
{
    const char *f = P("d.vhd");
    uint8_t a[512], b[512], dh[1024];

    create_img(f, "size=8M");
    ck_assert_uint_eq(file_size(f), 2560);
    file_read(f, 0, a, sizeof(a));
    file_read(f, 2048, b, sizeof(b));
    ck_assert(memcmp(a, b, 512) == 0);               /* the footer copy equals the footer */
    ck_assert(memcmp(a, "conectix", 8) == 0);
    ck_assert_uint_eq(be32_load(a + 8), 2);
    ck_assert_uint_eq(be32_load(a + 12), 0x00010000);
    ck_assert_uint_eq(be64_load(a + 16), 512);
    ck_assert(memcmp(a + 28, "qemu", 4) == 0);
    ck_assert_uint_eq(be32_load(a + 32), 0x00050003);
    ck_assert(memcmp(a + 36, "Wi2k", 4) == 0);
    ck_assert_uint_eq(be64_load(a + 40), 8390656);
    ck_assert_uint_eq(be64_load(a + 48), 8390656);
    ck_assert_uint_eq(be16_load(a + 56), 241);
    ck_assert_uint_eq(a[58], 4);
    ck_assert_uint_eq(a[59], 17);
    ck_assert_uint_eq(be32_load(a + 60), 3);
    ck_assert_uint_eq(be32_load(a + 64), vpc_checksum(a, 512, 64));
    ck_assert(!buffer_is_zero(a + 68, 16));

    file_read(f, 512, dh, sizeof(dh));
    ck_assert(memcmp(dh, "cxsparse", 8) == 0);
    ck_assert_uint_eq(be64_load(dh + 8), UINT64_MAX);
    ck_assert_uint_eq(be64_load(dh + 16), 0x600);
    ck_assert_uint_eq(be32_load(dh + 24), 0x00010000);
    ck_assert_uint_eq(be32_load(dh + 28), 5);
    ck_assert_uint_eq(be32_load(dh + 32), 0x200000);
    ck_assert_uint_eq(be32_load(dh + 36), vpc_checksum(dh, 1024, 36));
    for (int i = 0; i < 128; i++) {
        ck_assert_uint_eq(rd32(f, 0x600 + 4 * (uint64_t)i), 0xFFFFFFFF);
    }
}
END_TEST

START_TEST(vpc_create_fixed_force_and_probe)
{
    const char *f = P("f.vhd"), *q = P("q.vhd"), *d = P("dd.vhd");
    uint8_t buf[512];
    BlockDriverState *bs;
    char msg[1024];

    create_img(f, "size=8M,subformat=fixed");
    ck_assert_uint_eq(file_size(f), 8390656 + 512);
    ck_assert_uint_eq(rd64(f, 8390656 + 16), UINT64_MAX);
    ck_assert_uint_eq(rd32(f, 8390656 + 60), 2);
    /* Like QEMU, a fixed image is not recognised by its first bytes. */
    file_read(f, 0, buf, sizeof(buf));
    ck_assert_int_eq(bdrv_vpc.bdrv_probe(buf, sizeof(buf), "f.vhd"), 0);
    create_img(d, "size=8M");
    file_read(d, 0, buf, sizeof(buf));
    ck_assert_int_eq(bdrv_vpc.bdrv_probe(buf, sizeof(buf), "d.vhd"), 100);
    ck_assert_ptr_eq(bdrv_probe_format(buf, sizeof(buf), "d.vhd"), &bdrv_vpc);
    bs = open_img(f, 0);
    ck_assert_int_eq(bdrv_getlength(bs), 8390656);
    bdrv_close(bs);

    create_img(q, "size=8M,force_size=on");
    file_read(q, 0, buf, sizeof(buf));
    ck_assert(memcmp(buf + 28, "qem2", 4) == 0);
    ck_assert_uint_eq(be16_load(buf + 56), 65535);
    bs = open_img(q, 0);
    ck_assert_int_eq(bdrv_getlength(bs), 8 * MiB);
    bdrv_close(bs);

    ck_assert_int_eq(create_ret(P("x.vhd"), "size=2041G", msg, sizeof(msg)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "too large"));
    ck_assert_int_eq(create_ret(P("x.vhd"), "size=1M,subformat=dynamicish", msg, sizeof(msg)),
                     -EINVAL);
    create_img(P("z.vhd"), "size=0");
    bs = open_img(P("z.vhd"), 0);
    ck_assert_int_eq(bdrv_getlength(bs), 0);
    bdrv_close(bs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* I/O                                                                 */

START_TEST(vpc_write_allocates_block_at_old_footer)
{
    const char *f = P("w.vhd");
    BlockDriverState *bs;
    uint8_t a[4096], b[4096], ft0[512], ft1[512];

    create_img(f, "size=8M");
    file_read(f, 2048, ft0, sizeof(ft0));
    bs = open_img(f, BDRV_O_RDWR);
    fill(a, sizeof(a), 9);
    ck_assert_int_eq(bdrv_pwrite(bs, 2 * MiB + 4096, a, sizeof(a)), 0);
    bdrv_close(bs);

    /* formats.md §7.2 (obs): BAT[1] = 4, bitmap at 0x800 all ones, data at 0xA00. */
    ck_assert_uint_eq(rd32(f, 0x604), 4);
    ck_assert_uint_eq(rd32(f, 0x600), 0xFFFFFFFF);
    file_read(f, 0x800, b, 512);
    for (int i = 0; i < 512; i++) {
        ck_assert_uint_eq(b[i], 0xFF);
    }
    file_read(f, 0xA00 + 4096, b, sizeof(b));
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    file_read(f, 0xA00, b, sizeof(b));
    ck_assert(buffer_is_zero(b, sizeof(b)));
    /* The footer moved to the new end, unchanged. */
    ck_assert_uint_eq(file_size(f), 0xA00 + 2 * MiB + 512);
    file_read(f, 0xA00 + 2 * MiB, ft1, sizeof(ft1));
    ck_assert(memcmp(ft0, ft1, 512) == 0);

    bs = open_img(f, 0);
    ck_assert_int_eq(bdrv_pread(bs, 2 * MiB + 4096, b, sizeof(b)), 0);
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    bdrv_close(bs);
}
END_TEST

START_TEST(vpc_random_writes_match_mirror)
{
    static const char *const opts[] = { "size=20M", "size=20M,subformat=fixed" };

    for (size_t k = 0; k < ARRAY_SIZE(opts); k++) {
        const char *f = P("r.vhd");
        BlockDriverState *bs;
        uint64_t size;
        uint8_t *mirror, *got, *buf = malloc(3 * MiB);
        uint32_t seed = 777 + (uint32_t)k;

        create_img(f, opts[k]);
        bs = open_img(f, BDRV_O_RDWR | BDRV_O_NO_FLUSH);
        size = (uint64_t)bdrv_getlength(bs);
        mirror = calloc(1, size);
        got = malloc(size);
        ck_assert_ptr_nonnull(mirror);
        ck_assert_ptr_nonnull(got);
        random_writes(bs, mirror, buf, size, seed, 300, 6000, 5, 2);
        ck_assert_int_eq(bdrv_flush(bs), 0);
        bdrv_close(bs);
        bs = open_img(f, 0);
        ck_assert_int_eq(bdrv_pread(bs, 0, got, size), 0);
        ck_assert_msg(memcmp(got, mirror, size) == 0, "%s: content differs", opts[k]);
        bdrv_close(bs);
        free(mirror);
        free(got);
        free(buf);
    }
}
END_TEST

START_TEST(vpc_sector_bitmaps_are_honoured)
{
    const char *f = P("b.vhd");
    BlockDriverState *bs, *file;
    uint8_t a[2048], bits[512];
    uint64_t pnum, map;
    int ret;

    create_img(f, "size=8M");
    bs = open_img(f, BDRV_O_RDWR);
    memset(a, 0x6B, sizeof(a));
    ck_assert_int_eq(bdrv_pwrite(bs, 0, a, sizeof(a)), 0);     /* block 0 at 0x800 */
    bdrv_close(bs);

    /* Another writer's bitmap: sectors 1 and 2 not present (their data must not show). */
    file_read(f, 0x800, bits, sizeof(bits));
    bits[0] = 0x9F;          /* 1001 1111: sectors 1 and 2 clear */
    file_write(f, 0x800, bits, sizeof(bits));
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_pread(bs, 0, a, sizeof(a)), 0);
    for (int i = 0; i < 2048; i++) {
        ck_assert_uint_eq(a[i], (i >= 512 && i < 1536) ? 0 : 0x6B);
    }
    ret = bdrv_block_status(bs, 0, 8 * MiB, &pnum, &map, &file);
    ck_assert(ret & BDRV_BLOCK_DATA);
    ck_assert_uint_eq(pnum, 512);
    ck_assert_uint_eq(map, 0xA00);
    ret = bdrv_block_status(bs, 512, 8 * MiB - 512, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA), BDRV_BLOCK_ZERO);
    ck_assert_uint_eq(pnum, 1024);
    /* Writing sector 2 sets its bit (after the data); sector 1 stays absent. */
    memset(a, 0x3C, 512);
    ck_assert_int_eq(bdrv_pwrite(bs, 1024, a, 512), 0);
    bdrv_close(bs);
    file_read(f, 0x800, bits, 1);
    ck_assert_uint_eq(bits[0], 0xBF);
    bs = open_img(f, 0);
    ck_assert_int_eq(bdrv_pread(bs, 512, a, 1024), 0);
    ck_assert(buffer_is_zero(a, 512));
    ck_assert_uint_eq(a[512], 0x3C);
    /* Unallocated blocks read zeros and are shown present and zero, as in QEMU's map. */
    ret = bdrv_block_status(bs, 4 * MiB, 4 * MiB, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_DATA),
                     BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED);
    bdrv_close(bs);
}
END_TEST

START_TEST(vpc_crash_leaked_block_is_reused)
{
    const char *f = P("k.vhd");
    BlockDriverState *bs;
    uint8_t a[512], junk[4096];
    uint8_t ft[512];

    create_img(f, "size=8M");
    file_read(f, 2048, ft, sizeof(ft));
    /*
     * A crash before invariant 4: a footer at the new end and a block of old
     * bytes where the BAT points nowhere.
     */
    memset(junk, 0xCD, sizeof(junk));
    for (uint64_t o = 0x800; o < 0xA00 + 2 * MiB; o += sizeof(junk)) {
        file_write(f, o, junk, (size_t)MIN((uint64_t)sizeof(junk), 0xA00 + 2 * MiB - o));
    }
    file_write(f, 0xA00 + 2 * MiB, ft, sizeof(ft));
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_pread(bs, 0, junk, sizeof(junk)), 0);
    ck_assert(buffer_is_zero(junk, sizeof(junk)));
    memset(a, 0x42, sizeof(a));
    ck_assert_int_eq(bdrv_pwrite(bs, 6 * MiB + 512, a, sizeof(a)), 0);
    bdrv_close(bs);
    ck_assert_uint_eq(rd32(f, 0x600 + 4 * 3), 4);      /* the leaked space, reused */
    bs = open_img(f, 0);
    ck_assert_int_eq(bdrv_pread(bs, 6 * MiB, junk, sizeof(junk)), 0);
    ck_assert(buffer_is_zero(junk, 512));
    ck_assert(memcmp(junk + 512, a, 512) == 0);
    ck_assert(buffer_is_zero(junk + 1024, sizeof(junk) - 1024));
    bdrv_close(bs);
    /* The file still ends with a valid footer. */
    file_read(f, file_size(f) - 512, junk, 512);
    ck_assert(memcmp(junk, ft, 512) == 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile images                                                      */

START_TEST(vpc_hostile_images_refused)
{
    const char *f = P("h.vhd"), *g = P("hp.vhd"), *x = P("hx.vhd");
    char msg[1024];
    uint8_t v[8];
    int ret;

    create_img(f, "size=8M");
    create_img(x, "size=8M,subformat=fixed");

    /* A bad footer checksum is fatal, as in QEMU 7.2. */
    copy_file(f, g);
    wr32(g, 64, 0x01020304);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "Incorrect header checksum"));
    copy_file(x, g);
    wr32(g, 8390656 + 64, 0x01020304);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);

    /* No cookie anywhere; a trailing footer that is not fixed. */
    copy_file(f, g);
    file_write(g, 0, "conectiy", 8);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "invalid VPC image"));
    copy_file(x, g);
    be32_store(v, 3);
    patch_footer(g, 8390656, 60, v, 4);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);

    /* The dynamic header: offset past the end, cookie, block size, table entries. */
    copy_file(f, g);
    be64_store(v, UINT64_MAX);
    patch_footer(g, 0, 16, v, 8);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "dynamic VHD header"));
    copy_file(f, g);
    file_write(g, 512, "cxsparsf", 8);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "Invalid header magic"));
    copy_file(f, g);
    wr32(g, 512 + 32, 3000);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "Invalid block size 3000"));
    copy_file(f, g);
    wr32(g, 512 + 32, 256);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    copy_file(f, g);
    wr32(g, 512 + 28, 0x7FFFFFFF);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "Max Table Entries too large"));
    copy_file(f, g);
    wr32(g, 512 + 28, 4);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "Page table too small"));
    /* 0x1FFFFFFF entries fit QEMU's limit but not this 2.5 KiB file: no 2 GiB table. */
    copy_file(f, g);
    wr32(g, 512 + 28, 0x1FFFFFFF);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    /* BAT offset or BAT entries past the end of the file. */
    copy_file(f, g);
    be64_store(v, 0x100000);
    file_write(g, 512 + 16, v, 8);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    copy_file(f, g);
    wr32(g, 0x600, 0x100000);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "free_data_block_offset"));
    /* Sizes past 2040 GiB (a creator whose current_size counts). */
    copy_file(f, g);
    be64_store(v, 1ull << 50);
    patch_footer(g, 0, 48, v, 8);
    patch_footer(g, 0, 28, "win ", 4);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    /* Too short for a footer. */
    copy_file(f, g);
    ck_assert_int_eq(truncate(g, 100), 0);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "File too small"));

    /* Accepted as QEMU accepts them: the dynamic header checksum, other disk types. */
    copy_file(f, g);
    wr32(g, 512 + 36, 0x1234);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), 0);
    copy_file(f, g);
    be32_store(v, 4);
    patch_footer(g, 0, 60, v, 4);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), 0);
    /* A fixed footer claiming more data than the file holds: reads work, writes refused. */
    copy_file(x, g);
    be64_store(v, 9 * MiB);
    patch_footer(g, 8390656, 48, v, 8);
    patch_footer(g, 8390656, 28, "win ", 4);
    {
        BlockDriverState *bs = open_img(g, BDRV_O_RDWR);
        uint8_t b[512] = { 0 };
        ck_assert_int_eq(bdrv_getlength(bs), 9 * MiB);
        ck_assert_int_eq(bdrv_pread(bs, 9 * MiB - 512, b, sizeof(b)), 0);
        ret = bdrv_pwrite(bs, 9 * MiB - 512, b, sizeof(b));
        ck_assert_int_eq(ret, -EBADIMAGE);
        bdrv_close(bs);
    }
}
END_TEST

static Suite *vpc_suite(void)
{
    Suite *s = suite_create("vpc");
    TCase *tc;

    tc = tcase_create("size");
    tcase_add_test(tc, vpc_geometry_matches_qemu_table);
    tcase_add_test(tc, vpc_size_rule_by_creator);
    suite_add_tcase(s, tc);

    tc = tcase_create("create");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, vpc_create_dynamic_layout_matches_qemu);
    tcase_add_test(tc, vpc_create_fixed_force_and_probe);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, vpc_write_allocates_block_at_old_footer);
    tcase_add_test(tc, vpc_random_writes_match_mirror);
    tcase_add_test(tc, vpc_sector_bitmaps_are_honoured);
    tcase_add_test(tc, vpc_crash_leaked_block_is_reused);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, vpc_hostile_images_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(vpc_suite());
}
