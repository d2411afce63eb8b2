/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_qcow.c: white-box tests of the qcow (version 1) driver
 * (block/qcow.c): the layouts qemu-img creates, the two-level mapping
 * (checked by reading the file with plain POSIX calls), copy-on-write from
 * a backing file, compressed clusters built here with zlib, the refusal of
 * AES images, and hostile headers and tables.
 */

#define _GNU_SOURCE

#include <zlib.h>

#define QBINT_NAME "check_int_qcow"
#define QBINT_BIG_ENDIAN
#define QBINT_FMT_CREATE "qcow"
#include "qbint.h"

/* ------------------------------------------------------------------ */
/* Create                                                              */

START_TEST(qcow_create_layout_matches_qemu)
{
    const char *f = P("a.qcow"), *g = P("b.qcow");
    char name[16] = { 0 };
    uint8_t b[2];

    /* Facts of qemu-img 7.2 images (formats.md 3.3). */
    create_img("qcow", f, "size=64M");
    ck_assert_uint_eq(file_size(f), 560);
    ck_assert_uint_eq(rd32(f, 0), 0x514649FB);
    ck_assert_uint_eq(rd32(f, 4), 1);
    ck_assert_uint_eq(rd64(f, 8), 0);
    ck_assert_uint_eq(rd64(f, 24), 64 << 20);
    file_read(f, 32, b, 2);
    ck_assert_uint_eq(b[0], 12);
    ck_assert_uint_eq(b[1], 9);
    ck_assert_uint_eq(rd32(f, 36), 0);
    ck_assert_uint_eq(rd64(f, 40), 48);

    create_img("raw", P("base.raw"), "size=8M");
    create_img("qcow", g, "size=8M,backing_file=base.raw,backing_fmt=raw");
    ck_assert_uint_eq(file_size(g), 568);
    ck_assert_uint_eq(rd64(g, 8), 48);
    ck_assert_uint_eq(rd32(g, 16), 8);
    file_read(g, 48, name, 8);
    ck_assert_str_eq(name, "base.raw");
    file_read(g, 32, b, 2);
    ck_assert_uint_eq(b[0], 9);
    ck_assert_uint_eq(b[1], 12);
    ck_assert_uint_eq(rd64(g, 40), 56);
}
END_TEST

START_TEST(qcow_create_encryption_refused)
{
    BdrvError err = { 0 };
    BdrvOpts o;

    bdrv_opts_init(&o);
    ck_assert_int_eq(bdrv_opts_parse(&o, "size=1M,encryption=on", &err), 0);
    ck_assert_int_eq(bdrv_create("qcow", P("e.qcow"), &o, 0, &err), -ENOTSUP);
    ck_assert(strstr(err.msg, "encryption") != NULL);
    bdrv_opts_free(&o);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Mapping and data                                                    */

START_TEST(qcow_write_maps_to_table_entries)
{
    const char *f = P("m.qcow");
    BlockDriverState *bs;
    BlockDriverState *file;
    BlockDriverInfo bdi;
    uint8_t want[4096], got[4096];
    /* 4 KiB clusters, 512-entry L2 tables: 2 MiB per L1 entry. */
    const uint64_t guest = 5 * (2 << 20) + 7 * 4096 + 1024;
    uint64_t l2, data, pnum, map;
    int ret;

    create_img("qcow", f, "size=64M");
    bs = open_img(f, "qcow", BDRV_O_RDWR);
    write_pattern(bs, guest, 2048, 11);
    bdrv_close(bs);

    l2 = rd64(f, 48 + 5 * 8);
    ck_assert_uint_eq(l2, 4096);                 /* appended, cluster aligned */
    data = rd64(f, l2 + 7 * 8);
    ck_assert_uint_eq(data, 8192);
    ck_assert_uint_eq(file_size(f), 12288);      /* one whole data cluster */
    fill(want, 2048, 11);
    file_read(f, data + 1024, got, 2048);
    ck_assert_mem_eq(want, got, 2048);
    file_read(f, data, got, 1024);
    ck_assert(buffer_is_zero(got, 1024));

    bs = open_img(f, "qcow", 0);
    check_pattern(bs, guest, 2048, 11);
    check_zero(bs, guest - 1024, 1024);
    ret = bdrv_block_status(bs, guest - 1024, 4096, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_ALLOCATED),
                     BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_ALLOCATED);
    ck_assert_uint_eq(map, data);
    ck_assert_uint_eq(pnum, 4096);
    ck_assert_ptr_eq(file, bs->file);
    ret = bdrv_block_status(bs, 0, 1 << 20, &pnum, &map, &file);
    ck_assert_int_eq(ret & BDRV_BLOCK_ALLOCATED, 0);
    ck_assert_uint_eq(pnum, 1 << 20);
    ck_assert_int_eq(bdrv_get_info(bs, &bdi), 0);
    ck_assert_int_eq(bdi.cluster_size, 4096);
    bdrv_close(bs);
}
END_TEST

START_TEST(qcow_random_writes_with_backing_match_mirror)
{
    const char *base = P("base.raw"), *f = P("r.qcow");
    const uint64_t size = 8 << 20, blen = 5 << 20;
    uint8_t *mirror = calloc(1, size), *buf = malloc(1 << 20);
    uint32_t seed = 777;
    BlockDriverState *bs;

    ck_assert_ptr_nonnull(mirror);
    ck_assert_ptr_nonnull(buf);
    fill(mirror, blen, 42);
    create_img("raw", base, "size=0");
    file_write(base, 0, mirror, blen);
    create_img("qcow", f, "size=8M,backing_file=base.raw");
    bs = open_img(f, NULL, BDRV_O_RDWR);
    ck_assert_str_eq(bs->backing_file, "base.raw");
    ck_assert_ptr_nonnull(bs->backing);
    for (int i = 0; i < 300; i++) {
        uint64_t len, off;
        seed = seed * 1103515245u + 12345u;
        len = ((seed >> 8) % 64 + 1) * 512;
        seed = seed * 1103515245u + 12345u;
        off = ((seed >> 4) % ((size - len) / 512 + 1)) * 512;
        fill(buf, len, seed);
        ck_assert_int_eq(bdrv_pwrite(bs, off, buf, len), 0);
        memcpy(mirror + off, buf, len);
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

/* Raw deflate (no zlib header, 4 KiB window), as qemu-img writes compressed clusters. */
static size_t deflate_raw(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    z_stream z;
    size_t n;

    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (uint8_t *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

START_TEST(qcow_compressed_cluster_read_and_rewrite)
{
    const char *f = P("z.qcow");
    uint8_t plain[4096], comp[8192], got[4096], zeros[4096] = { 0 };
    BlockDriverState *bs;
    BlockDriverState *file;
    uint64_t zoff, entry, pnum, map;
    size_t zlen;
    int ret;

    /* Compressible data: a repeated short pattern. */
    for (size_t i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t)("libqblock"[i % 9] + i / 512);
    }
    zlen = deflate_raw(plain, sizeof(plain), comp, sizeof(comp));
    ck_assert_uint_lt(zlen, 4096);
    create_img("qcow", f, "size=4M");
    /* An L2 table at 4096 for L1[0]; the compressed bytes at 8192 + 3 (unaligned). */
    wr64(f, 48, 4096);
    file_write(f, 4096, zeros, sizeof(zeros));
    zoff = 8192 + 3;
    file_write(f, zoff, comp, zlen);
    /* cluster_bits 12: the offset in bits 0..50, the size in bytes in bits 51..62. */
    entry = (UINT64_C(1) << 63) | ((uint64_t)zlen << 51) | zoff;
    wr64(f, 4096 + 2 * 8, entry);

    bs = open_img(f, "qcow", 0);
    ck_assert_int_eq(bdrv_pread(bs, 2 * 4096, got, sizeof(got)), 0);
    ck_assert_mem_eq(got, plain, sizeof(plain));
    ck_assert_int_eq(bdrv_pread(bs, 2 * 4096 + 1024, got, 512), 0);
    ck_assert_mem_eq(got, plain + 1024, 512);
    ret = bdrv_block_status(bs, 2 * 4096, 4096, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID),
                     BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED);
    bdrv_close(bs);

    /* A partial write decompresses, then moves the cluster to a normal one. */
    bs = open_img(f, "qcow", BDRV_O_RDWR);
    memset(got, 0x5A, 512);
    ck_assert_int_eq(bdrv_pwrite(bs, 2 * 4096 + 512, got, 512), 0);
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, 4096 + 2 * 8) >> 63, 0);
    bs = open_img(f, "qcow", 0);
    ck_assert_int_eq(bdrv_pread(bs, 2 * 4096, got, sizeof(got)), 0);
    ck_assert_mem_eq(got, plain, 512);
    for (int i = 512; i < 1024; i++) {
        ck_assert_uint_eq(got[i], 0x5A);
    }
    ck_assert_mem_eq(got + 1024, plain + 1024, 3072);
    bdrv_close(bs);

    /* Corrupt compressed data is refused, not returned. */
    memset(comp, 0xFF, 16);
    file_write(f, zoff, comp, 16);
    wr64(f, 4096 + 3 * 8, entry);
    bs = open_img(f, "qcow", 0);
    ck_assert_int_eq(bdrv_pread(bs, 3 * 4096, got, 512), -EBADIMAGE);
    bdrv_close(bs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile headers                                                     */

typedef struct HeaderPatch {
    const char *what;
    uint64_t off;
    int width;                /* 1, 4 or 8 */
    uint64_t value;
    int expect;
} HeaderPatch;

START_TEST(qcow_hostile_headers_refused)
{
    static const HeaderPatch patches[] = {
        { "version 2", 4, 4, 2, -ENOTSUP },
        { "size 0", 24, 8, 0, -EBADIMAGE },
        { "size 1", 24, 8, 1, -EBADIMAGE },
        { "size near 2^64", 24, 8, UINT64_MAX - 100, -EBADIMAGE },
        { "size needing a huge L1", 24, 8, UINT64_C(1) << 62, -EBADIMAGE },
        { "size whose L1 is past the end", 24, 8, UINT64_C(1) << 40, -EBADIMAGE },
        { "cluster_bits 8", 32, 1, 8, -EBADIMAGE },
        { "cluster_bits 17", 32, 1, 17, -EBADIMAGE },
        { "l2_bits 5", 33, 1, 5, -EBADIMAGE },
        { "l2_bits 14", 33, 1, 14, -EBADIMAGE },
        { "crypt_method AES", 36, 4, 1, -ENOTSUP },
        { "crypt_method 2", 36, 4, 2, -EBADIMAGE },
        { "L1 offset unaligned", 40, 8, 60, -EBADIMAGE },
        { "L1 offset inside the header", 40, 8, 8, -EBADIMAGE },
        { "L1 offset past the end", 40, 8, 1 << 20, -EBADIMAGE },
        { "L1 offset near 2^64", 40, 8, UINT64_MAX - 7, -EBADIMAGE },
        { "backing name past the end", 8, 8, 100000, -EBADIMAGE },
        { "backing name too long", 16, 4, 1024, -EBADIMAGE },
    };
    const char *f = P("h.qcow");
    char msg[1024];

    create_img("qcow", f, "size=64M,backing_file=x");
    ck_assert_int_eq(try_open(f, BDRV_O_NO_BACKING, NULL, 0), 0);
    for (size_t i = 0; i < ARRAY_SIZE(patches); i++) {
        const HeaderPatch *p = &patches[i];
        uint8_t orig[64];
        int ret;

        file_read(f, 0, orig, sizeof(orig));
        if (p->width == 1) {
            uint8_t b = (uint8_t)p->value;
            file_write(f, p->off, &b, 1);
        } else if (p->width == 4) {
            wr32(f, p->off, (uint32_t)p->value);
        } else {
            wr64(f, p->off, p->value);
        }
        ret = try_open(f, BDRV_O_NO_BACKING, msg, sizeof(msg));
        ck_assert_msg(ret == p->expect, "%s: got %d (%s), want %d", p->what, ret, msg,
                      p->expect);
        ck_assert_msg(strstr(msg, "h.qcow") != NULL, "%s: message '%s' does not name the "
                      "image", p->what, msg);
        file_write(f, 0, orig, sizeof(orig));
    }
    ck_assert_int_eq(try_open(f, BDRV_O_NO_BACKING, NULL, 0), 0);
    ck_assert_int_eq(truncate(f, 40), 0);
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
}
END_TEST

START_TEST(qcow_hostile_tables_refused_on_read)
{
    const char *f = P("t.qcow");
    BlockDriverState *bs;
    uint8_t b[4096];

    create_img("qcow", f, "size=64M");
    ck_assert_int_eq(truncate(f, 8192), 0);
    wr64(f, 48, 1 << 20);                              /* an L2 table past the end */
    wr64(f, 48 + 8, 4096);                             /* a valid L2 table ... */
    wr64(f, 4096, UINT64_C(1) << 40);                  /* ... a data offset past the end */
    wr64(f, 4096 + 8, (UINT64_C(1) << 63) | (UINT64_C(4000) << 51) | 6000); /* compressed, past the end */
    bs = open_img(f, "qcow", 0);
    ck_assert_int_eq(bdrv_pread(bs, 0, b, sizeof(b)), -EBADIMAGE);
    ck_assert_int_eq(bdrv_pread(bs, 2 << 20, b, sizeof(b)), -EBADIMAGE);
    ck_assert_int_eq(bdrv_pread(bs, (2 << 20) + 4096, b, sizeof(b)), -EBADIMAGE);
    bdrv_close(bs);
}
END_TEST

START_TEST(qcow_probe_scores)
{
    uint8_t buf[512] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 1 };
    const BlockDriver *drv = bdrv_find_format("qcow");

    ck_assert_ptr_nonnull(drv);
    ck_assert_int_eq(drv->bdrv_probe(buf, sizeof(buf), "x"), 100);
    ck_assert_ptr_eq(bdrv_probe_format(buf, sizeof(buf), "x"), drv);
    buf[7] = 2;   /* qcow2 shares the magic */
    ck_assert_int_eq(drv->bdrv_probe(buf, sizeof(buf), "x"), 0);
}
END_TEST

static Suite *qcow_suite(void)
{
    Suite *s = suite_create("qcow");
    TCase *tc;

    tc = tcase_create("create");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, qcow_create_layout_matches_qemu);
    tcase_add_test(tc, qcow_create_encryption_refused);
    tcase_add_test(tc, qcow_probe_scores);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, qcow_write_maps_to_table_entries);
    tcase_add_test(tc, qcow_random_writes_with_backing_match_mirror);
    tcase_add_test(tc, qcow_compressed_cluster_read_and_rewrite);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, qcow_hostile_headers_refused);
    tcase_add_test(tc, qcow_hostile_tables_refused_on_read);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(qcow_suite());
}
