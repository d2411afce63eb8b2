/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* check_api_compress.c: qb_write_compressed through the public API: argument errors and real runs. */

#include "qbtest.h"

#define MIB (1024 * 1024ull)

/* Creates a qcow2 image through qb_fmt_info_set_options (qemu-img's option names). */
static void create_qcow2(QBroker *b, const char *path, const char *opts)
{
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    QBlockFmtInfo *fmt = NULL;
    int ret;

    ck_assert_int_eq(qb_fmt_info_new(b, &fmt), 0);
    fmt->fmt_type = QB_FMT_QCOW2;
    ret = qb_fmt_info_set_options(b, fmt, opts);
    ck_assert_msg(ret == 0, "set_options '%s': %d %s", opts, ret, qbt_msg(b));
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ret = qb_create(b, qbs, &loc, fmt, 0);
    ck_assert_msg(ret == 0, "qb_create qcow2 %s (%s): %d %s", path, opts, ret, qbt_msg(b));
    qb_state_delete(b, &qbs);
    qb_fmt_info_delete(b, &fmt);
}

static QBlockState *open_probed(QBroker *b, const char *path, int flag)
{
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    int ret;

    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ret = qb_open(b, qbs, &loc, NULL, flag);
    ck_assert_msg(ret == 0, "qb_open %s: %d %s", path, ret, qbt_msg(b));
    return qbs;
}

static uint64_t cluster_size_of(QBroker *b, QBlockState *qbs)
{
    QBlockStaticInfo *info = NULL;
    uint64_t cs;

    ck_assert_int_eq(qb_info_image_static_get(b, qbs, &info), 0);
    cs = info->cluster_size;
    qb_info_image_static_delete(b, &info);
    return cs;
}

/* Data that deflates well but is not all zeros: a short repeating text with a counter. */
static void fill_compressible(uint8_t *buf, size_t len, unsigned salt)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)("compressible cluster "[i % 21] + ((i / 4096 + salt) % 7));
    }
}

static void expect_status(QBroker *b, QBlockState *qbs, uint64_t off, uint64_t len,
                          bool offset_valid, const char *what)
{
    QBlockStatusInfo st;
    int ret;

    memset(&st, 0, sizeof(st));
    ret = qb_block_status(b, qbs, off, len, &st);
    ck_assert_msg(ret == 0, "%s: qb_block_status: %d %s", what, ret, qbt_msg(b));
    ck_assert_msg(st.flags & QB_BLOCK_DATA, "%s: not data (flags 0x%x)", what, st.flags);
    ck_assert_msg(!!(st.flags & QB_BLOCK_OFFSET_VALID) == offset_valid,
                  "%s: host offset %s expected (flags 0x%x): %s", what,
                  offset_valid ? "is" : "not", st.flags,
                  offset_valid ? "stored uncompressed" : "stored compressed");
}

START_TEST(compress_argument_errors)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL, *closed = NULL;
    char path[PATH_MAX], rawpath[PATH_MAX];
    uint8_t *buf = calloc(1, 128 * 1024);

    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "args.qcow2");
    create_qcow2(b, path, "size=4M");

    ck_assert_int_eq(qb_write_compressed(NULL, NULL, buf, 65536, 0), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_write_compressed(b, NULL, buf, 65536, 0), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_state_new(b, &closed), 0);
    ck_assert_int_eq(qb_write_compressed(b, closed, buf, 65536, 0), QB_ERR_INVALID_PARAM);
    qb_state_delete(b, &closed);

    /* Read-only: refused, nothing written. */
    qbs = open_probed(b, path, 0);
    ck_assert_int_eq(qb_write_compressed(b, qbs, buf, 65536, 0), QB_ERR_READ_ONLY);
    qbt_close(b, &qbs);

    qbs = open_probed(b, path, LIBQBLOCK_O_RDWR);
    ck_assert_int_eq(qb_write_compressed(b, qbs, NULL, 65536, 0), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_write_compressed(b, qbs, buf, 0, 0), 0);
    /* Misaligned offset or length: the cluster size is named. */
    ck_assert_int_eq(qb_write_compressed(b, qbs, buf, 65536, 512), QB_ERR_INVALID_PARAM);
    ck_assert_msg(strstr(qbt_msg(b), "65536") != NULL, "message: %s", qbt_msg(b));
    ck_assert_int_eq(qb_write_compressed(b, qbs, buf, 4096, 0), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_write_compressed(b, qbs, buf, 65536 + 512, 0), QB_ERR_INVALID_PARAM);
    /* Out of range, and an overflowing range. */
    ck_assert_int_eq(qb_write_compressed(b, qbs, buf, 65536, 4 * MIB), QB_ERR_BLOCK_OUT_OF_RANGE);
    ck_assert_int_eq(qb_write_compressed(b, qbs, buf, 65536, UINT64_MAX - 4096),
                     QB_ERR_BLOCK_OUT_OF_RANGE);
    qbt_close(b, &qbs);

    /* A format without compressed clusters. */
    qbt_path(rawpath, sizeof(rawpath), "args.raw");
    qbt_create_raw(b, rawpath, 4 * MIB);
    qbs = qbt_open(b, rawpath, 0, LIBQBLOCK_O_RDWR);
    ck_assert_int_eq(qb_write_compressed(b, qbs, buf, 65536, 0), QB_ERR_NOT_SUPPORTED);
    ck_assert_msg(strstr(qbt_msg(b), "raw") != NULL, "message: %s", qbt_msg(b));
    qbt_close(b, &qbs);

    qb_broker_delete(&b);
    free(buf);
}
END_TEST

/*
 * For each layout: compressed clusters, normal writes over part of them
 * (copy-on-write of a compressed cluster), compressed writes over normal
 * clusters, incompressible data (stored as it is), a partial last cluster,
 * a reopen; every read compared with a plain buffer holding the same writes.
 */
static const char *const layouts[] = {
    "size=3M",
    "size=3M,compat=0.10",
    "size=3M,cluster_size=512",
    "size=3M,cluster_size=4096",
    "size=6M,cluster_size=2M",
    "size=3M,extended_l2=on",
    "size=3M,refcount_bits=1",
    "size=3M,refcount_bits=64",
    "size=3M,compression_type=zstd",
    "size=3000000",   /* a partial last cluster */
};

START_TEST(compress_roundtrip)
{
    const char *opts = layouts[_i];
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    uint64_t size, cs, tail;
    uint8_t *mirror, *got, *data;
    QbtRng rng;
    int64_t r;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "rt.qcow2");
    create_qcow2(b, path, opts);
    qbs = open_probed(b, path, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    {
        QBlockStaticInfo *info = NULL;
        ck_assert_int_eq(qb_info_image_static_get(b, qbs, &info), 0);
        size = info->virt_size;
        qb_info_image_static_delete(b, &info);
    }
    cs = cluster_size_of(b, qbs);
    ck_assert_uint_gt(cs, 0);
    mirror = calloc(1, size);
    got = malloc(size);
    data = malloc(size);
    ck_assert(mirror && got && data);
    qbt_rng_seed(&rng, 0xc0ffee + (uint64_t)_i);

    /* 1. The first third compressed, in one request. */
    fill_compressible(data, size / 3 / cs * cs, 1);
    r = qb_write_compressed(b, qbs, data, size / 3 / cs * cs, 0);
    ck_assert_msg(r == (int64_t)(size / 3 / cs * cs), "%s: compressed write: %lld %s", opts,
                  (long long)r, qbt_msg(b));
    memcpy(mirror, data, size / 3 / cs * cs);
    expect_status(b, qbs, 0, cs, false, opts);

    /* 2. Incompressible data is stored as it is (a host offset exists). */
    qbt_rng_fill(&rng, data, cs);
    r = qb_write_compressed(b, qbs, data, cs, size / 2 / cs * cs);
    ck_assert_msg(r == (int64_t)cs, "%s: incompressible: %lld %s", opts, (long long)r, qbt_msg(b));
    memcpy(mirror + size / 2 / cs * cs, data, cs);
    expect_status(b, qbs, size / 2 / cs * cs, cs, true, opts);

    /* 3. A normal write across the middle of compressed clusters. */
    qbt_rng_fill(&rng, data, cs + 1000);
    ck_assert_int_eq(qb_write(b, qbs, data, cs + 1000, cs / 2 + 7), (int64_t)(cs + 1000));
    memcpy(mirror + cs / 2 + 7, data, cs + 1000);

    /* 4. Compressed again over the clusters just written normally, and over itself. */
    fill_compressible(data, 2 * cs, 3);
    ck_assert_int_eq(qb_write_compressed(b, qbs, data, 2 * cs, 0), (int64_t)(2 * cs));
    memcpy(mirror, data, 2 * cs);
    fill_compressible(data, cs, 4);
    ck_assert_int_eq(qb_write_compressed(b, qbs, data, cs, cs), (int64_t)cs);
    memcpy(mirror + cs, data, cs);

    /* 5. The last cluster, partial when the size is not a multiple of the cluster. */
    tail = size % cs ? size % cs : cs;
    fill_compressible(data, tail, 5);
    ck_assert_int_eq(qb_write_compressed(b, qbs, data, tail, size - tail), (int64_t)tail);
    memcpy(mirror + size - tail, data, tail);

    ck_assert_int_eq(qb_read(b, qbs, got, size, 0), (int64_t)size);
    qbt_assert_same(got, mirror, size, opts);
    qbt_close(b, &qbs);

    /* 6. After a reopen, and clean by the library's own check. */
    qbs = open_probed(b, path, 0);
    ck_assert_int_eq(qb_read(b, qbs, got, size, 0), (int64_t)size);
    qbt_assert_same(got, mirror, size, opts);
    {
        QBlockCheckResult res;
        memset(&res, 0, sizeof(res));
        ck_assert_int_eq(qb_check(b, qbs, 0, &res), 0);
        ck_assert_msg(res.corruptions == 0 && res.leaks == 0 && res.check_errors == 0,
                      "%s: check: %d corruptions, %d leaks", opts, res.corruptions, res.leaks);
    }
    qbt_close(b, &qbs);
    free(mirror);
    free(got);
    free(data);
    qb_broker_delete(&b);
}
END_TEST

static Suite *compress_suite(void)
{
    Suite *s = suite_create("api_compress");
    TCase *tc = tcase_create("compress");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, compress_argument_errors);
    tcase_add_loop_test(tc, compress_roundtrip, 0, (int)(sizeof(layouts) / sizeof(layouts[0])));
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(compress_suite(), argv[0]);
}
