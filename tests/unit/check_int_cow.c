/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_cow.c: white-box tests of the User-Mode-Linux cow driver
 * (block/cow.c): headers of versions 1, 2 and 3 (and the unpacked version 3
 * of old 64-bit builds) built here byte by byte, the layout uml_mkcow
 * writes, the ubd bitmap bit order and the write-back of bitmap bits only
 * after a flush (checked by reading the file with plain POSIX calls), and
 * hostile headers.
 */

#define _GNU_SOURCE

#include <limits.h>

#define QBINT_NAME "check_int_cow"
#define QBINT_BIG_ENDIAN
#define QBINT_FMT_CREATE "cow"
#include "qbint.h"

/* ------------------------------------------------------------------ */
/* Hand-built legacy headers                                           */

/* A file holding @len bytes of @hdr, then the bitmap and data areas given. */
static void write_file(const char *file, const uint8_t *hdr, size_t len)
{
    int fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, hdr, len), (ssize_t)len);
    close(fd);
}

/* The base file: @len bytes of pattern @seed. */
static void make_base(const char *file, size_t len, uint32_t seed)
{
    uint8_t *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    fill(b, len, seed);
    write_file(file, b, len);
    free(b);
}

/*
 * For a cow file with its bitmap at @bitmap_off and data at @data_off:
 * store sector @n (pattern @seed) and set its bit (bit n&7 of byte n>>3).
 */
static void put_sector(const char *file, uint64_t bitmap_off, uint64_t data_off, uint64_t n,
                       uint32_t seed)
{
    uint8_t b[512], bit;

    fill(b, sizeof(b), seed);
    file_write(file, data_off + n * 512, b, sizeof(b));
    file_read(file, bitmap_off + n / 8, &bit, 1);
    bit |= (uint8_t)(1u << (n % 8));
    file_write(file, bitmap_off + n / 8, &bit, 1);
}

/* Every sector of [0, @sectors) reads as the base (pattern 1) except @n (pattern @seed). */
static void check_image(const char *file, uint64_t sectors, uint64_t n, uint32_t seed)
{
    BlockDriverState *bs = open_img(file, NULL, 0);
    uint8_t *base = malloc(sectors * 512), *got = malloc(sectors * 512);

    ck_assert_ptr_nonnull(base);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(bdrv_get_format_name(bs), "cow");
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)(sectors * 512));
    fill(base, sectors * 512, 1);
    ck_assert_int_eq(bdrv_pread(bs, 0, got, sectors * 512), 0);
    ck_assert_mem_eq(got, base, n * 512);
    fill(base + n * 512, 512, seed);
    ck_assert_mem_eq(got + n * 512, base + n * 512, 512);
    ck_assert_mem_eq(got + (n + 1) * 512, base + (n + 1) * 512, (sectors - n - 1) * 512);
    bdrv_close(bs);
    free(base);
    free(got);
}

START_TEST(cow_read_v1_little_endian)
{
    const char *f = P("v1.cow");
    uint8_t h[280] = { 0 };
    const uint64_t sectors = 64;

    make_base(P("base.raw"), sectors * 512, 1);
    le32_store(h, 0x4F4F4F4D);          /* host-endian on x86: "MOOO" */
    le32_store(h + 4, 1);
    snprintf((char *)h + 8, 256, "%s", P("base.raw"));
    le32_store(h + 264, 0);
    le64_store(h + 268, sectors * 512);
    le32_store(h + 276, 512);
    write_file(f, h, sizeof(h));
    /* bitmap at 280, (size + 511) / 4096 = 8 bytes; data at roundup(288, 512). */
    ck_assert_int_eq(truncate(f, 512 + sectors * 512), 0);
    put_sector(f, 280, 512, 9, 77);
    check_image(f, sectors, 9, 77);
}
END_TEST

START_TEST(cow_read_v2)
{
    const char *f = P("v2.cow");
    uint8_t *h = calloc(1, 4120);
    const uint64_t sectors = 40;

    ck_assert_ptr_nonnull(h);
    make_base(P("base.raw"), sectors * 512, 1);
    be32_store(h, 0x4F4F4F4D);
    be32_store(h + 4, 2);
    snprintf((char *)h + 8, 4096, "base.raw");    /* relative to the image */
    be64_store(h + 4108, sectors * 512);
    be32_store(h + 4116, 512);
    write_file(f, h, 4120);
    free(h);
    /* bitmap at 4120, 5 bytes; data at roundup(4125, 512) = 4608. */
    ck_assert_int_eq(truncate(f, 4608 + sectors * 512), 0);
    put_sector(f, 4120, 4608, 39, 55);
    check_image(f, sectors, 39, 55);
}
END_TEST

START_TEST(cow_read_v3_unpacked_layout)
{
    const char *f = P("v3b.cow");
    uint8_t *h = calloc(1, 4136);
    const uint64_t sectors = 100;

    ck_assert_ptr_nonnull(h);
    make_base(P("base.raw"), sectors * 512, 1);
    be32_store(h, 0x4F4F4F4D);
    be32_store(h + 4, 3);
    be32_store(h + 8, 12345);                  /* mtime as a 64-bit field */
    be64_store(h + 16, sectors * 512);
    be32_store(h + 24, 512);
    be32_store(h + 28, 512);
    be32_store(h + 32, 0);                     /* cow_format, where packed has the name */
    snprintf((char *)h + 36, 4096, "%s", P("base.raw"));
    write_file(f, h, 4136);
    free(h);
    /* bitmap at roundup(4136, 512) = 4608, 13 bytes; data at 5120. */
    ck_assert_int_eq(truncate(f, 5120 + sectors * 512), 0);
    put_sector(f, 4608, 5120, 0, 33);
    check_image(f, sectors, 0, 33);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Create and write                                                    */

START_TEST(cow_create_matches_uml_mkcow_layout)
{
    const char *f = P("a.cow"), *base = P("base.raw");
    char abs[PATH_MAX], name[PATH_MAX] = { 0 };
    struct stat st;
    BdrvError err = { 0 };
    BdrvOpts o;

    make_base(base, 3000000, 1);   /* not a whole number of sectors */
    ck_assert_int_eq(stat(base, &st), 0);
    ck_assert_ptr_nonnull(realpath(base, abs));
    create_img("cow", f, "backing_file=base.raw");
    ck_assert_uint_eq(rd32(f, 0), 0x4F4F4F4D);
    ck_assert_uint_eq(rd32(f, 4), 3);
    ck_assert_uint_eq(rd32(f, 8), (uint32_t)st.st_mtime);
    ck_assert_uint_eq(rd64(f, 12), 3000000);
    ck_assert_uint_eq(rd32(f, 20), 512);
    ck_assert_uint_eq(rd32(f, 24), 4096);
    ck_assert_uint_eq(rd32(f, 28), 0);
    file_read(f, 32, name, strlen(abs) + 1);
    ck_assert_str_eq(name, abs);
    /* 5860 sectors: a 733-byte bitmap at 8192, data at 12288, sparse to the end. */
    ck_assert_uint_eq(file_size(f), 12288 + 3000000);

    /* The size must be the backing file's (rounded to a sector) or 0. */
    create_img("cow", P("b.cow"), "size=3000320,backing_file=base.raw");
    bdrv_opts_init(&o);
    ck_assert_int_eq(bdrv_opts_parse(&o, "size=4M,backing_file=base.raw", &err), 0);
    ck_assert_int_eq(bdrv_create("cow", P("c.cow"), &o, 0, &err), -EINVAL);
    bdrv_opts_free(&o);
    bdrv_opts_init(&o);
    ck_assert_int_eq(bdrv_opts_parse(&o, "size=4M", &err), 0);
    ck_assert_int_eq(bdrv_create("cow", P("d.cow"), &o, 0, &err), -EINVAL);
    bdrv_opts_free(&o);
}
END_TEST

START_TEST(cow_write_sets_bits_in_ubd_order_after_flush)
{
    const char *f = P("w.cow"), *base = P("base.raw");
    BlockDriverState *bs;
    uint8_t bm[4];

    make_base(base, 1 << 20, 1);
    create_img("cow", f, "backing_file=base.raw");
    bs = open_img(f, NULL, BDRV_O_RDWR);
    ck_assert_str_eq(bs->backing_format, "raw");
    write_pattern(bs, 1 * 512, 512, 10);
    write_pattern(bs, 15 * 512, 512, 11);
    write_pattern(bs, 16 * 512, 8 * 512, 12);
    /* Invariant 2: no bit reaches the disk before a flush. */
    file_read(f, 8192, bm, sizeof(bm));
    ck_assert(buffer_is_zero(bm, sizeof(bm)));
    check_pattern(bs, 1 * 512, 512, 10);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    file_read(f, 8192, bm, sizeof(bm));
    ck_assert_uint_eq(bm[0], 0x02);      /* sector 1: bit 1 of byte 0 */
    ck_assert_uint_eq(bm[1], 0x80);      /* sector 15: bit 7 of byte 1 */
    ck_assert_uint_eq(bm[2], 0xFF);      /* sectors 16..23 */
    ck_assert_uint_eq(bm[3], 0x00);
    bdrv_close(bs);

    /* The data sits in the sector's own slot: data_offset + n * 512. */
    {
        uint8_t want[512], got[512];
        fill(want, 512, 11);
        file_read(f, 12288 + 15 * 512, got, 512);
        ck_assert_mem_eq(want, got, 512);
    }
    bs = open_img(f, NULL, 0);
    check_pattern(bs, 1 * 512, 512, 10);
    check_pattern(bs, 15 * 512, 512, 11);
    check_pattern(bs, 16 * 512, 8 * 512, 12);
    {
        uint8_t got[512], want[1 << 12];
        fill(want, sizeof(want), 1);
        ck_assert_int_eq(bdrv_pread(bs, 0, got, 512), 0);
        ck_assert_mem_eq(got, want, 512);
        ck_assert_int_eq(bdrv_pread(bs, 2 * 512, got, 512), 0);
        ck_assert_mem_eq(got, want + 1024, 512);
    }
    {
        uint64_t pnum, map;
        BlockDriverState *file;
        int ret = bdrv_block_status(bs, 16 * 512, 64 * 512, &pnum, &map, &file);
        ck_assert_int_eq(ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID),
                         BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID);
        ck_assert_uint_eq(pnum, 8 * 512);
        ck_assert_uint_eq(map, 12288 + 16 * 512);
        ret = bdrv_block_status(bs, 24 * 512, 1 << 19, &pnum, &map, &file);
        ck_assert_int_eq(ret & BDRV_BLOCK_ALLOCATED, 0);
        ck_assert_uint_eq(pnum, (1 << 19));
    }
    bdrv_close(bs);
}
END_TEST

START_TEST(cow_random_writes_match_mirror)
{
    const char *f = P("r.cow"), *base = P("base.raw");
    const uint64_t size = 6 << 20;
    uint8_t *mirror = malloc(size), *buf = malloc(1 << 20);
    uint32_t seed = 4242;
    BlockDriverState *bs;

    ck_assert_ptr_nonnull(mirror);
    ck_assert_ptr_nonnull(buf);
    make_base(base, size, 1);
    fill(mirror, size, 1);
    create_img("cow", f, "size=0,backing_file=base.raw");
    bs = open_img(f, NULL, BDRV_O_RDWR);
    for (int i = 0; i < 500; i++) {
        uint64_t len, off;
        seed = seed * 1103515245u + 12345u;
        len = ((seed >> 8) % 128 + 1) * 512;
        seed = seed * 1103515245u + 12345u;
        off = ((seed >> 4) % ((size - len) / 512 + 1)) * 512;
        fill(buf, len, seed);
        ck_assert_int_eq(bdrv_pwrite(bs, off, buf, len), 0);
        memcpy(mirror + off, buf, len);
        if (i % 100 == 99) {
            ck_assert_int_eq(bdrv_flush(bs), 0);
        }
    }
    bdrv_close(bs);
    bs = open_img(f, NULL, 0);
    for (uint64_t off = 0; off < size; off += 1 << 20) {
        ck_assert_int_eq(bdrv_pread(bs, off, buf, 1 << 20), 0);
        ck_assert_msg(memcmp(buf, mirror + off, 1 << 20) == 0, "mismatch in MiB %" PRIu64,
                      off >> 20);
    }
    bdrv_close(bs);
    free(mirror);
    free(buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile headers                                                     */

typedef struct HeaderPatch {
    const char *what;
    uint64_t off;
    uint32_t value;
    int expect;
} HeaderPatch;

START_TEST(cow_hostile_headers_refused)
{
    static const HeaderPatch patches[] = {
        { "version 4", 4, 4, -ENOTSUP },
        { "version 0", 4, 0, -ENOTSUP },
        { "sector size 0", 20, 0, -EBADIMAGE },
        { "sector size 1000", 20, 1000, -EBADIMAGE },
        { "sector size 4096", 20, 4096, -ENOTSUP },
        { "alignment 0", 24, 0, -EBADIMAGE },
        { "alignment 2^31", 24, 0x80000000u, -EBADIMAGE },
        { "alignment past the file", 24, 1u << 22, -EBADIMAGE },
        { "cow_format 1", 28, 1, -ENOTSUP },
        { "size (high word) far past the bitmap", 12, 0x100, -EBADIMAGE },
        { "size (high word) near 2^64", 12, 0xFFFFFFFFu, -EBADIMAGE },
    };
    const char *f = P("h.cow");
    char msg[1024];
    uint8_t *orig = malloc(4128), *fill_name = malloc(4096);

    ck_assert_ptr_nonnull(orig);
    ck_assert_ptr_nonnull(fill_name);
    make_base(P("base.raw"), 1 << 20, 1);
    create_img("cow", f, "backing_file=base.raw");
    ck_assert_int_eq(try_open(f, BDRV_O_NO_BACKING, NULL, 0), 0);
    file_read(f, 0, orig, 4128);
    for (size_t i = 0; i < ARRAY_SIZE(patches); i++) {
        const HeaderPatch *p = &patches[i];
        int ret;

        wr32(f, p->off, p->value);
        ret = try_open(f, BDRV_O_NO_BACKING, msg, sizeof(msg));
        ck_assert_msg(ret == p->expect, "%s: got %d (%s), want %d", p->what, ret, msg,
                      p->expect);
        ck_assert_msg(strstr(msg, "h.cow") != NULL, "%s: message '%s' does not name the "
                      "image", p->what, msg);
        file_write(f, 0, orig, 4128);
    }
    /* A name that fills its whole field, with no terminating NUL. */
    memset(fill_name, 'a', 4096);
    file_write(f, 32, fill_name, 4096);
    ck_assert_int_eq(try_open(f, BDRV_O_NO_BACKING, msg, sizeof(msg)), -EBADIMAGE);
    file_write(f, 0, orig, 4128);
    /* An empty name: the format has no meaning without a backing file. */
    memset(fill_name, 0, 8);
    file_write(f, 32, fill_name, 8);
    ck_assert_int_eq(try_open(f, BDRV_O_NO_BACKING, msg, sizeof(msg)), -EBADIMAGE);
    file_write(f, 0, orig, 4128);
    ck_assert_int_eq(try_open(f, BDRV_O_NO_BACKING, NULL, 0), 0);
    /* A bitmap cut short by the end of the file. */
    ck_assert_int_eq(truncate(f, 8192 + 100), 0);
    ck_assert_int_eq(try_open(f, BDRV_O_NO_BACKING, msg, sizeof(msg)), -EBADIMAGE);
    /* A header cut short. */
    ck_assert_int_eq(truncate(f, 2000), 0);
    ck_assert_int_eq(try_open(f, BDRV_O_NO_BACKING, msg, sizeof(msg)), -EBADIMAGE);
    free(orig);
    free(fill_name);
}
END_TEST

START_TEST(cow_probe_scores)
{
    uint8_t buf[512] = { 'O', 'O', 'O', 'M', 0, 0, 0, 3 };
    const BlockDriver *drv = bdrv_find_format("cow");

    ck_assert_ptr_nonnull(drv);
    ck_assert_int_eq(drv->bdrv_probe(buf, sizeof(buf), "x"), 100);
    ck_assert_ptr_eq(bdrv_probe_format(buf, sizeof(buf), "x"), drv);
    /* Version 1 in little-endian byte order. */
    memcpy(buf, "MOOO\x01\0\0\0", 8);
    ck_assert_int_eq(drv->bdrv_probe(buf, sizeof(buf), "x"), 100);
    memcpy(buf, "OOOM\0\0\0\x09", 8);
    ck_assert_int_eq(drv->bdrv_probe(buf, sizeof(buf), "x"), 0);
}
END_TEST

static Suite *cow_suite(void)
{
    Suite *s = suite_create("cow");
    TCase *tc;

    tc = tcase_create("legacy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cow_read_v1_little_endian);
    tcase_add_test(tc, cow_read_v2);
    tcase_add_test(tc, cow_read_v3_unpacked_layout);
    tcase_add_test(tc, cow_probe_scores);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cow_create_matches_uml_mkcow_layout);
    tcase_add_test(tc, cow_write_sets_bits_in_ubd_order_after_flush);
    tcase_add_test(tc, cow_random_writes_match_mirror);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cow_hostile_headers_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(cow_suite());
}
