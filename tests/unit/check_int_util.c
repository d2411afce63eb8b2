/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_util.c: white-box tests of the block layer's helpers: util.h
 * (alignment, byte order, zero detection), I/O vectors, create-option
 * parsing and validation, backing-name resolution and the error object.
 */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"

/* ---- util.h ---- */

START_TEST(util_byteorder_roundtrips)
{
    uint8_t b[8];

    be16_store(b, 0x1234);
    ck_assert_uint_eq(b[0], 0x12);
    ck_assert_uint_eq(be16_load(b), 0x1234);
    be32_store(b, 0x514649fbu);
    ck_assert(memcmp(b, "QFI\xfb", 4) == 0);
    ck_assert_uint_eq(be32_load(b), 0x514649fbu);
    le32_store(b, 0x00444551u);
    ck_assert(memcmp(b, "QED\0", 4) == 0);
    ck_assert_uint_eq(le32_load(b), 0x00444551u);
    be64_store(b, 0x0102030405060708ull);
    ck_assert_uint_eq(b[7], 8);
    ck_assert_uint_eq(be64_load(b), 0x0102030405060708ull);
    le64_store(b, 0x0102030405060708ull);
    ck_assert_uint_eq(b[0], 8);
    ck_assert_uint_eq(le64_load(b), 0x0102030405060708ull);
    le16_store(b, 0xbeef);
    ck_assert_uint_eq(le16_load(b), 0xbeef);
}
END_TEST

START_TEST(util_alignment_macros_compute)
{
    ck_assert_uint_eq(ROUND_UP(1000u, 512u), 1024u);
    ck_assert_uint_eq(ROUND_UP(1024u, 512u), 1024u);
    ck_assert_uint_eq(ROUND_DOWN(1023u, 512u), 512u);
    ck_assert_uint_eq(DIV_ROUND_UP(1025u, 512u), 3u);
    ck_assert(IS_ALIGNED(4096u, 512u));
    ck_assert(!IS_ALIGNED(4097u, 512u));
    ck_assert(IS_POW2(65536u));
    ck_assert(!IS_POW2(0u));
    ck_assert(!IS_POW2(3000u));
    uint64_t r;
    ck_assert(ADD_OVERFLOW(UINT64_MAX, (uint64_t)1, &r));
    ck_assert(!ADD_OVERFLOW((uint64_t)1, (uint64_t)2, &r));
    ck_assert_uint_eq(r, 3);
    ck_assert(MUL_OVERFLOW(UINT64_MAX / 2 + 1, (uint64_t)2, &r));
}
END_TEST

START_TEST(util_buffer_is_zero_finds_any_byte)
{
    uint8_t buf[300];

    memset(buf, 0, sizeof(buf));
    ck_assert(buffer_is_zero(buf, sizeof(buf)));
    ck_assert(buffer_is_zero(buf, 0));
    /* Every position, including unaligned heads and the tail after the word loop. */
    for (size_t start = 0; start < 9; start++) {
        for (size_t i = start; i < sizeof(buf); i++) {
            buf[i] = 1;
            ck_assert(!buffer_is_zero(buf + start, sizeof(buf) - start));
            buf[i] = 0;
        }
    }
}
END_TEST

/* ---- I/O vectors ---- */

START_TEST(qiov_slice_copies_right_bytes)
{
    uint8_t a[10], b[20], c[5], out[35], flat[35];
    QBIOVector q, s;

    for (int i = 0; i < 35; i++) {
        flat[i] = (uint8_t)i;
    }
    memcpy(a, flat, 10);
    memcpy(b, flat + 10, 20);
    memcpy(c, flat + 30, 5);
    ck_assert_int_eq(qiov_init(&q, 1), 0);
    ck_assert_int_eq(qiov_add(&q, a, 10), 0);
    ck_assert_int_eq(qiov_add(&q, b, 20), 0);   /* grows past the hint */
    ck_assert_int_eq(qiov_add(&q, c, 5), 0);
    ck_assert_uint_eq(q.size, 35);
    ck_assert_uint_eq(qiov_to_buf(&q, 0, out, 35), 35);
    ck_assert(memcmp(out, flat, 35) == 0);

    for (size_t off = 0; off < 35; off++) {
        for (size_t len = 0; off + len <= 35; len++) {
            ck_assert_int_eq(qiov_init_slice(&s, &q, off, len), 0);
            ck_assert_uint_eq(s.size, len);
            memset(out, 0xff, sizeof(out));
            ck_assert_uint_eq(qiov_to_buf(&s, 0, out, len), len);
            ck_assert(memcmp(out, flat + off, len) == 0);
            qiov_destroy(&s);
        }
    }
    ck_assert_int_eq(qiov_init_slice(&s, &q, 30, 6), -EINVAL);

    /* from_buf and memset write through to the underlying buffers. */
    memset(out, 0xab, sizeof(out));
    ck_assert_uint_eq(qiov_from_buf(&q, 8, out, 4), 4);
    ck_assert_uint_eq(a[8], 0xab);
    ck_assert_uint_eq(b[1], 0xab);
    ck_assert_uint_eq(b[2], flat[12]);
    ck_assert(!qiov_is_zero(&q));
    ck_assert_uint_eq(qiov_memset(&q, 0, 0, 35), 35);
    ck_assert(qiov_is_zero(&q));
    qiov_destroy(&q);
}
END_TEST

START_TEST(qiov_buf_is_fixed)
{
    uint8_t x[4] = { 1, 2, 3, 4 };
    QBIOVector q;

    qiov_init_buf(&q, x, sizeof(x));
    ck_assert_int_eq(q.niov, 1);
    ck_assert_uint_eq(q.size, 4);
    ck_assert_int_eq(qiov_add(&q, x, 1), -EINVAL);
    qiov_destroy(&q);
}
END_TEST

/* ---- options ---- */

START_TEST(opts_parse_size_accepts_qemu_forms)
{
    static const struct { const char *s; uint64_t v; } good[] = {
        { "0", 0 }, { "512", 512 }, { "1k", 1024 }, { "1K", 1024 }, { "64M", 64ull << 20 },
        { "1G", 1ull << 30 }, { "2T", 2ull << 40 }, { "1P", 1ull << 50 }, { "1E", 1ull << 60 },
        { "1.5G", 3ull << 29 }, { "100b", 100 }, { "0.5k", 512 },
    };
    static const char *const bad[] = { "", "k", "-1", "1x", "1.5", "1..5k", "12 k", "1kk",
                                       "16E", "99999999999999999999" };
    uint64_t v;

    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        ck_assert_msg(bdrv_parse_size(good[i].s, &v) == 0, "'%s' rejected", good[i].s);
        ck_assert_msg(v == good[i].v, "'%s' -> %llu", good[i].s, (unsigned long long)v);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        ck_assert_msg(bdrv_parse_size(bad[i], &v) < 0, "'%s' accepted", bad[i]);
    }
}
END_TEST

START_TEST(opts_parse_splits_and_unescapes)
{
    BdrvOpts o;
    BdrvError err = { 0 };

    bdrv_opts_init(&o);
    ck_assert_int_eq(bdrv_opts_parse(&o, "size=1M,backing_file=a,,b.img,compat=1.1", &err), 0);
    ck_assert_int_eq(o.n, 3);
    ck_assert_str_eq(bdrv_opts_get(&o, "size"), "1M");
    ck_assert_str_eq(bdrv_opts_get(&o, "backing_file"), "a,b.img");
    ck_assert_str_eq(bdrv_opts_get(&o, "compat"), "1.1");
    /* A repeated key replaces the earlier value. */
    ck_assert_int_eq(bdrv_opts_parse(&o, "size=2M", &err), 0);
    ck_assert_int_eq(o.n, 3);
    ck_assert_str_eq(bdrv_opts_get(&o, "size"), "2M");
    /* ",," at the very end is a comma inside the value. */
    ck_assert_int_eq(bdrv_opts_parse(&o, "name=x,,", &err), 0);
    ck_assert_str_eq(bdrv_opts_get(&o, "name"), "x,");
    bdrv_opts_free(&o);

    static const char *const bad[] = { "size", "=1", "size=1,", "a=1,b", "a=1,,,b" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        bdrv_opts_init(&o);
        memset(&err, 0, sizeof(err));
        ck_assert_msg(bdrv_opts_parse(&o, bad[i], &err) == -EINVAL, "'%s' accepted", bad[i]);
        ck_assert_int_eq(err.code, -EINVAL);
        ck_assert(err.msg[0] != '\0');
        bdrv_opts_free(&o);
    }
}
END_TEST

static const char *const test_choices[] = { "off", "full", NULL };
static const BdrvOptDesc test_desc[] = {
    { .name = "size", .type = BDRV_OPT_SIZE, .def = "0" },
    { .name = "lazy", .type = BDRV_OPT_BOOL, .def = "off" },
    { .name = "count", .type = BDRV_OPT_NUMBER },
    { .name = "mode", .type = BDRV_OPT_STRING, .def = "off", .choices = test_choices },
    { .name = "name", .type = BDRV_OPT_STRING },
    { 0 }
};

START_TEST(opts_validate_checks_and_defaults)
{
    BdrvOpts o;
    BdrvError err = { 0 };

    bdrv_opts_init(&o);
    ck_assert_int_eq(bdrv_opts_parse(&o, "size=1k,lazy=on,count=7", &err), 0);
    ck_assert_int_eq(bdrv_opts_validate(&o, test_desc, "test", &err), 0);
    ck_assert_uint_eq(bdrv_opts_get_size(&o, "size"), 1024);
    ck_assert(bdrv_opts_get_bool(&o, "lazy"));
    ck_assert_uint_eq(bdrv_opts_get_size(&o, "count"), 7);
    ck_assert_str_eq(bdrv_opts_get(&o, "mode"), "off");       /* default added */
    ck_assert_ptr_null(bdrv_opts_get_str(&o, "name"));        /* no default */
    bdrv_opts_free(&o);

    static const char *const bad[] = { "nosuch=1", "size=big", "lazy=maybe", "count=-1",
                                       "count=1k", "mode=half" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        bdrv_opts_init(&o);
        memset(&err, 0, sizeof(err));
        ck_assert_int_eq(bdrv_opts_parse(&o, bad[i], &err), 0);
        ck_assert_msg(bdrv_opts_validate(&o, test_desc, "test", &err) == -EINVAL,
                      "'%s' accepted", bad[i]);
        ck_assert_msg(strstr(err.msg, "test") != NULL, "message '%s' lacks the format", err.msg);
        bdrv_opts_free(&o);
    }
}
END_TEST

START_TEST(opts_prealloc_names_parse)
{
    BdrvPrealloc p;

    ck_assert_int_eq(bdrv_parse_prealloc("off", &p), 0);
    ck_assert_int_eq(p, BDRV_PREALLOC_OFF);
    ck_assert_int_eq(bdrv_parse_prealloc("metadata", &p), 0);
    ck_assert_int_eq(p, BDRV_PREALLOC_METADATA);
    ck_assert_int_eq(bdrv_parse_prealloc("falloc", &p), 0);
    ck_assert_int_eq(p, BDRV_PREALLOC_FALLOC);
    ck_assert_int_eq(bdrv_parse_prealloc("full", &p), 0);
    ck_assert_int_eq(p, BDRV_PREALLOC_FULL);
    ck_assert_int_eq(bdrv_parse_prealloc(NULL, &p), 0);
    ck_assert_int_eq(p, BDRV_PREALLOC_OFF);
    ck_assert_int_eq(bdrv_parse_prealloc("sparse", &p), -EINVAL);
}
END_TEST

/* ---- backing names and errors ---- */

START_TEST(backing_name_resolves_against_overlay_folder)
{
    char out[64];

    ck_assert_int_eq(bdrv_resolve_backing_name(out, sizeof(out), "/img/top.qcow2", "base.raw"), 0);
    ck_assert_str_eq(out, "/img/base.raw");
    ck_assert_int_eq(bdrv_resolve_backing_name(out, sizeof(out), "dir/top", "../b"), 0);
    ck_assert_str_eq(out, "dir/../b");
    ck_assert_int_eq(bdrv_resolve_backing_name(out, sizeof(out), "top", "base"), 0);
    ck_assert_str_eq(out, "base");
    ck_assert_int_eq(bdrv_resolve_backing_name(out, sizeof(out), "/a/top", "/abs/base"), 0);
    ck_assert_str_eq(out, "/abs/base");
    ck_assert_int_eq(bdrv_resolve_backing_name(out, sizeof(out), "/a/top", "nbd://h/x"), 0);
    ck_assert_str_eq(out, "nbd://h/x");
    ck_assert_int_eq(bdrv_resolve_backing_name(out, 8, "/a/top", "longname.img"),
                     -ENAMETOOLONG);
}
END_TEST

START_TEST(error_set_and_prefix)
{
    BdrvError err = { 0 };

    ck_assert_int_eq(bdrv_error_set(NULL, -EINVAL, "x"), -EINVAL);
    bdrv_error_prefix(&err, "ignored");           /* nothing set: no change */
    ck_assert_str_eq(err.msg, "");
    ck_assert_int_eq(bdrv_error_set(&err, -EBADIMAGE, "bad %s", "header"), -EBADIMAGE);
    ck_assert_int_eq(err.code, -EBADIMAGE);
    bdrv_error_prefix(&err, "image '%s'", "a.img");
    ck_assert_str_eq(err.msg, "image 'a.img': bad header");
}
END_TEST

static Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc;

    tc = tcase_create("util_h");
    tcase_add_test(tc, util_byteorder_roundtrips);
    tcase_add_test(tc, util_alignment_macros_compute);
    tcase_add_test(tc, util_buffer_is_zero_finds_any_byte);
    suite_add_tcase(s, tc);

    tc = tcase_create("qiov");
    tcase_add_test(tc, qiov_slice_copies_right_bytes);
    tcase_add_test(tc, qiov_buf_is_fixed);
    suite_add_tcase(s, tc);

    tc = tcase_create("opts");
    tcase_add_test(tc, opts_parse_size_accepts_qemu_forms);
    tcase_add_test(tc, opts_parse_splits_and_unescapes);
    tcase_add_test(tc, opts_validate_checks_and_defaults);
    tcase_add_test(tc, opts_prealloc_names_parse);
    suite_add_tcase(s, tc);

    tc = tcase_create("names_errors");
    tcase_add_test(tc, backing_name_resolves_against_overlay_folder);
    tcase_add_test(tc, error_set_and_prefix);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(util_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
