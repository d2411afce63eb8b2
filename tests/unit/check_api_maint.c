/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* check_api_maint.c: qb_check and qb_truncate through the public API: argument errors and real runs. */

#include "qbtest.h"

/* Creates a qcow2 image of @size bytes (64 KiB clusters) through the library. */
static void create_qcow2(QBroker *b, const char *path, uint64_t size)
{
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    QBlockFmtInfo fmt;
    int ret;

    memset(&fmt, 0, sizeof(fmt));
    fmt.fmt_type = QB_FMT_QCOW2;
    fmt.fmt_op.o_qcow2.virt_size = size;
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ret = qb_create(b, qbs, &loc, &fmt, 0);
    ck_assert_msg(ret == 0, "qb_create qcow2 %s: %d %s", path, ret, qbt_msg(b));
    qb_state_delete(b, &qbs);
}

/* Opens @path as qcow2 (explicitly) into a new state. */
static QBlockState *open_qcow2(QBroker *b, const char *path, int flag)
{
    return qbt_open_fmt(b, QB_FMT_QCOW2, path, flag);
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* The file offset of the 16-bit refcount of cluster @cluster (first refcount block only). */
static off_t refcount_entry(const char *path, unsigned cluster)
{
    uint8_t buf[8];
    uint64_t table, block;

    qbt_pread_file(path, buf, 8, 48);          /* refcount_table_offset */
    table = be64(buf);
    qbt_pread_file(path, buf, 8, (off_t)table);
    block = be64(buf);
    ck_assert_msg(block != 0 && block % 512 == 0, "refcount block offset 0x%" PRIx64, block);
    return (off_t)(block + 2 * cluster);
}

START_TEST(maint_argument_errors)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL, *closed = NULL;
    QBlockCheckResult res;
    char path[PATH_MAX];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "args.qcow2");
    create_qcow2(b, path, 1 << 20);
    qbs = open_qcow2(b, path, 0);
    ck_assert_int_eq(qb_state_new(b, &closed), 0);

    EXPECT_FAIL(NULL, qb_check(NULL, qbs, 0, &res), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(NULL, qb_truncate(NULL, qbs, 1 << 21), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(b, qb_check(b, NULL, 0, &res), QB_ERR_INVALID_PARAM, "qb_check");
    EXPECT_FAIL(b, qb_truncate(b, NULL, 1 << 21), QB_ERR_INVALID_PARAM, "qb_truncate");
    EXPECT_FAIL(b, qb_check(b, closed, 0, &res), QB_ERR_INVALID_PARAM, "not open");
    EXPECT_FAIL(b, qb_truncate(b, closed, 1 << 21), QB_ERR_INVALID_PARAM, "not open");
    EXPECT_FAIL(b, qb_check(b, qbs, 0, NULL), QB_ERR_INVALID_PARAM, "qb_check");
    EXPECT_FAIL(b, qb_check(b, qbs, 4, &res), QB_ERR_INVALID_PARAM, "fix");
    EXPECT_FAIL(b, qb_check(b, qbs, -1, &res), QB_ERR_INVALID_PARAM, "fix");
    /* Opened read-only: no repair, no resize, and the image keeps its size. */
    EXPECT_FAIL(b, qb_check(b, qbs, QB_CHECK_FIX_LEAKS, &res), QB_ERR_READ_ONLY, "args.qcow2");
    EXPECT_FAIL(b, qb_truncate(b, qbs, 1 << 21), QB_ERR_READ_ONLY, "args.qcow2");
    qbt_close(b, &qbs);
    qb_state_delete(b, &closed);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(maint_raw_not_supported)
{
    QBroker *b = NULL;
    QBlockState *qbs;
    QBlockCheckResult res;
    char path[PATH_MAX];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "plain.raw");
    qbt_create_raw(b, path, 1 << 20);
    qbs = qbt_open(b, path, 0, LIBQBLOCK_O_RDWR);
    memset(&res, 0xff, sizeof(res));
    EXPECT_FAIL(b, qb_check(b, qbs, 0, &res), QB_ERR_NOT_SUPPORTED, "does not support checks");
    ck_assert_int_eq(qb_error_get_errno(b), ENOTSUP);
    /* A failed check leaves no stale numbers behind. */
    ck_assert_int_eq(res.corruptions, 0);
    ck_assert_int_eq(res.leaks, 0);
    /* raw resizes: grow, then shrink, each seen in the file. */
    ck_assert_msg(qb_truncate(b, qbs, 3 << 20) == 0, "grow: %s", qbt_msg(b));
    ck_assert_int_eq(qbt_file_size(path), 3 << 20);
    ck_assert_msg(qb_truncate(b, qbs, 512 << 10) == 0, "shrink: %s", qbt_msg(b));
    ck_assert_int_eq(qbt_file_size(path), 512 << 10);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(maint_qcow2_check_leak_repair_and_grow)
{
    QBroker *b = NULL;
    QBlockState *qbs;
    QBlockCheckResult res;
    QBlockStaticInfo *info = NULL;
    uint8_t buf[65536], got[65536];
    uint8_t rc[2];
    char path[PATH_MAX];
    off_t entry;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "real.qcow2");
    create_qcow2(b, path, 1 << 20);
    qbs = open_qcow2(b, path, LIBQBLOCK_O_RDWR);
    memset(buf, 0x5a, sizeof(buf));
    ck_assert_int_eq(qb_write(b, qbs, buf, sizeof(buf), 0), (int64_t)sizeof(buf));
    ck_assert_int_eq(qb_flush(b, qbs), 0);

    /* Clean: one data cluster of the sixteen of a 1 MiB disk. */
    ck_assert_msg(qb_check(b, qbs, 0, &res) == 0, "check: %s", qbt_msg(b));
    ck_assert_int_eq(res.corruptions, 0);
    ck_assert_int_eq(res.leaks, 0);
    ck_assert_int_eq(res.check_errors, 0);
    ck_assert_uint_eq(res.total_clusters, 16);
    ck_assert_uint_eq(res.allocated_clusters, 1);
    ck_assert_int_eq(res.image_end_offset % 65536, 0);
    ck_assert_int_le(res.image_end_offset, qbt_file_size(path));
    ck_assert_int_ge(res.image_end_offset, 3 * 65536);
    qbt_close(b, &qbs);

    /* One more reference on the header cluster's refcount than it has: a leak. */
    entry = refcount_entry(path, 0);
    qbt_pread_file(path, rc, 2, entry);
    ck_assert_int_eq(rc[0], 0);
    ck_assert_int_eq(rc[1], 1);
    rc[1] = 2;
    qbt_pwrite_file(path, rc, 2, entry);

    qbs = open_qcow2(b, path, 0);
    ck_assert_msg(qb_check(b, qbs, 0, &res) == 0, "check: %s", qbt_msg(b));
    ck_assert_int_eq(res.leaks, 1);
    ck_assert_int_eq(res.corruptions, 0);
    ck_assert_int_eq(res.leaks_fixed, 0);
    qbt_close(b, &qbs);

    qbs = open_qcow2(b, path, LIBQBLOCK_O_RDWR);
    ck_assert_msg(qb_check(b, qbs, QB_CHECK_FIX_LEAKS, &res) == 0, "repair: %s", qbt_msg(b));
    ck_assert_int_eq(res.leaks_fixed, 1);
    ck_assert_msg(qb_check(b, qbs, 0, &res) == 0, "recheck: %s", qbt_msg(b));
    ck_assert_int_eq(res.leaks, 0);
    ck_assert_int_eq(res.corruptions, 0);

    /* Grow to 3 MiB: the size is reported, old data stays, the new area is zero. */
    ck_assert_msg(qb_truncate(b, qbs, 3 << 20) == 0, "grow: %s", qbt_msg(b));
    ck_assert_int_eq(qb_info_image_static_get(b, qbs, &info), 0);
    ck_assert_uint_eq(info->virt_size, 3 << 20);
    qb_info_image_static_delete(b, &info);
    ck_assert_int_eq(qb_read(b, qbs, got, sizeof(got), 0), (int64_t)sizeof(got));
    qbt_assert_bytes(got, 0x5a, sizeof(got), "old data after grow");
    ck_assert_int_eq(qb_read(b, qbs, got, sizeof(got), (2 << 20) + 4096), (int64_t)sizeof(got));
    qbt_assert_bytes(got, 0, sizeof(got), "new area after grow");
    /* qcow2 takes only multiples of 512, as qemu-img resize reports. */
    EXPECT_FAIL(b, qb_truncate(b, qbs, (4 << 20) + 1), QB_ERR_INVALID_PARAM, "512");
    ck_assert_msg(qb_check(b, qbs, 0, &res) == 0, "check after grow: %s", qbt_msg(b));
    ck_assert_int_eq(res.leaks + res.corruptions + res.check_errors, 0);
    ck_assert_uint_eq(res.total_clusters, 48);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(maint_measure)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL, *closed = NULL;
    QBlockFmtInfo fmt;
    QBlockMeasureInfo mi;
    char path[PATH_MAX];
    uint8_t buf[4096];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    memset(&fmt, 0, sizeof(fmt));
    fmt.fmt_type = QB_FMT_QCOW2;
    fmt.fmt_op.o_qcow2.virt_size = 1ull << 30;

    EXPECT_FAIL(b, qb_measure(NULL, &fmt, NULL, &mi), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(b, qb_measure(b, NULL, NULL, &mi), QB_ERR_INVALID_PARAM, "NULL");
    EXPECT_FAIL(b, qb_measure(b, &fmt, NULL, NULL), QB_ERR_INVALID_PARAM, "NULL");
    fmt.fmt_type = QB_FMT_MAX;
    EXPECT_FAIL(b, qb_measure(b, &fmt, NULL, &mi), QB_ERR_INVALID_PARAM, "unknown format");
    fmt.fmt_type = QB_FMT_VMDK;
    fmt.fmt_op.o_vmdk.virt_size = 1ull << 30;
    EXPECT_FAIL(b, qb_measure(b, &fmt, NULL, &mi), QB_ERR_NOT_SUPPORTED, "measurement");
    ck_assert_int_eq(qb_state_new(b, &closed), 0);
    fmt.fmt_type = QB_FMT_QCOW2;
    EXPECT_FAIL(b, qb_measure(b, &fmt, closed, &mi), QB_ERR_INVALID_PARAM, "not open");
    qb_state_delete(b, &closed);
    fmt.fmt_op.o_qcow2.cluster_size = 3000;
    EXPECT_FAIL(b, qb_measure(b, &fmt, NULL, &mi), QB_ERR_INVALID_PARAM, "cluster size");
    fmt.fmt_op.o_qcow2.cluster_size = 0;

    /* 1 GiB, 64 KiB clusters: header, 2 L2 tables... as qemu-img measure counts them. */
    ck_assert_int_eq(qb_measure(b, &fmt, NULL, &mi), 0);
    ck_assert_uint_eq(mi.required, 393216);
    ck_assert_uint_eq(mi.fully_allocated, 1074135040);
    ck_assert(!mi.has_bitmaps);

    /* A source: one 4 KiB write costs one 64 KiB cluster more than an empty one. */
    qbt_path(path, sizeof(path), "measure.raw");
    qbt_create_raw(b, path, 1ull << 30);
    qbs = qbt_open(b, path, 0, LIBQBLOCK_O_RDWR);
    memset(buf, 0x5a, sizeof(buf));
    ck_assert_int_eq(qb_write(b, qbs, buf, sizeof(buf), 123 << 20), (int64_t)sizeof(buf));
    ck_assert_int_eq(qb_measure(b, &fmt, qbs, &mi), 0);
    ck_assert_uint_eq(mi.required, 393216 + 65536);
    ck_assert_uint_eq(mi.fully_allocated, 1074135040);
    fmt.fmt_type = QB_FMT_RAW;
    ck_assert_int_eq(qb_measure(b, &fmt, qbs, &mi), 0);
    ck_assert_uint_eq(mi.required, 1ull << 30);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

static Suite *maint_suite(void)
{
    Suite *s = suite_create("api_maint");
    TCase *tc = tcase_create("maint");

    tcase_add_test(tc, maint_argument_errors);
    tcase_add_test(tc, maint_raw_not_supported);
    tcase_add_test(tc, maint_qcow2_check_leak_repair_and_grow);
    tcase_add_test(tc, maint_measure);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(maint_suite(), argv[0]);
}
