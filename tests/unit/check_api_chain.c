/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* check_api_chain.c: qb_change_backing, qb_rebase, qb_commit and qb_amend through the public API. */

#include "qbtest.h"

#define MIB (1u << 20)
#define K64 (64u << 10)

/* Creates a qcow2 image of @size bytes, backed by @backing (qcow2) when not NULL. */
static void create_qcow2(QBroker *b, const char *path, uint64_t size, const char *backing)
{
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    QBlockFmtInfo fmt;
    int ret;

    memset(&fmt, 0, sizeof(fmt));
    fmt.fmt_type = QB_FMT_QCOW2;
    fmt.fmt_op.o_qcow2.virt_size = size;
    if (backing) {
        fmt.fmt_op.o_qcow2.backing_loc = qbt_loc(backing);
        fmt.fmt_op.o_qcow2.backing_fmt = QB_FMT_QCOW2;
    }
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ret = qb_create(b, qbs, &loc, &fmt, 0);
    ck_assert_msg(ret == 0, "qb_create %s: %d %s", path, ret, qbt_msg(b));
    qb_state_delete(b, &qbs);
}

/* Fills @len bytes at @off of the open image with @byte. */
static void fill(QBroker *b, QBlockState *qbs, uint8_t byte, uint64_t len, uint64_t off)
{
    uint8_t *buf = malloc(len);

    ck_assert_ptr_nonnull(buf);
    memset(buf, byte, len);
    ck_assert_int_eq(qb_write(b, qbs, buf, len, off), (int64_t)len);
    free(buf);
}

/* The image reads @byte over [off, off+len). */
static void expect(QBroker *b, QBlockState *qbs, uint8_t byte, uint64_t len, uint64_t off)
{
    uint8_t *buf = malloc(len);

    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(qb_read(b, qbs, buf, len, off), (int64_t)len);
    qbt_assert_bytes(buf, byte, len, "chain read");
    free(buf);
}

/* The backing file name the qcow2 header at @path records ("" for none). */
static void header_backing(const char *path, char *name, size_t size)
{
    uint8_t h[20];
    uint64_t off = 0;
    uint32_t len = 0;

    qbt_pread_file(path, h, sizeof(h), 0);
    for (int i = 0; i < 8; i++) {
        off = (off << 8) | h[8 + i];
    }
    for (int i = 0; i < 4; i++) {
        len = (len << 8) | h[16 + i];
    }
    ck_assert_uint_lt(len, size);
    name[0] = '\0';
    if (off) {
        qbt_pread_file(path, name, len, (off_t)off);
        name[len] = '\0';
    }
}

/* Bytes [@start, +1 MiB) of the top layer: allocated (1) or not (0). */
static int allocated(QBroker *b, QBlockState *qbs, uint64_t start)
{
    int st = -1;
    int64_t n = 0;

    ck_assert_int_eq(qb_check_allocation(b, qbs, start, K64, &st, &n), 0);
    return st;
}

static int cancel_at_once(uint64_t done, uint64_t total, void *opaque)
{
    (void)done;
    (void)total;
    (*(int *)opaque)++;
    return 1;
}

static int count_calls(uint64_t done, uint64_t total, void *opaque)
{
    ck_assert_uint_le(done, total);
    (*(int *)opaque)++;
    return 0;
}

START_TEST(chain_argument_errors)
{
    QBroker *b = NULL;
    QBlockState *ro = NULL, *rw = NULL, *closed = NULL, *raw = NULL;
    char base[PATH_MAX], top[PATH_MAX], rawp[PATH_MAX];
    QBlockProtInfo loc, bad;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(base, sizeof(base), "args-base.qcow2");
    qbt_path(top, sizeof(top), "args-top.qcow2");
    qbt_path(rawp, sizeof(rawp), "args.raw");
    create_qcow2(b, base, MIB, NULL);
    create_qcow2(b, top, 0, base);
    qbt_create_raw(b, rawp, MIB);
    loc = qbt_loc(base);
    bad = loc;
    bad.prot_type = QB_PROT_MAX;
    ck_assert_int_eq(qb_state_new(b, &closed), 0);

    EXPECT_FAIL(NULL, qb_change_backing(NULL, closed, &loc, QB_FMT_QCOW2), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(NULL, qb_rebase(NULL, closed, &loc, QB_FMT_QCOW2, 0, NULL, NULL),
                QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(NULL, qb_commit(NULL, closed, NULL, 0, NULL, NULL), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(NULL, qb_amend(NULL, closed, "compat=1.1"), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(b, qb_change_backing(b, NULL, &loc, QB_FMT_QCOW2), QB_ERR_INVALID_PARAM,
                "qb_change_backing");
    EXPECT_FAIL(b, qb_rebase(b, NULL, &loc, QB_FMT_QCOW2, 0, NULL, NULL), QB_ERR_INVALID_PARAM,
                "qb_rebase");
    EXPECT_FAIL(b, qb_commit(b, NULL, NULL, 0, NULL, NULL), QB_ERR_INVALID_PARAM, "qb_commit");
    EXPECT_FAIL(b, qb_amend(b, NULL, "compat=1.1"), QB_ERR_INVALID_PARAM, "qb_amend");
    EXPECT_FAIL(b, qb_change_backing(b, closed, &loc, QB_FMT_QCOW2), QB_ERR_INVALID_PARAM,
                "not open");
    EXPECT_FAIL(b, qb_commit(b, closed, NULL, 0, NULL, NULL), QB_ERR_INVALID_PARAM, "not open");
    EXPECT_FAIL(b, qb_amend(b, closed, "compat=1.1"), QB_ERR_INVALID_PARAM, "not open");

    /* Read-only: nothing may change, except that commit -d only writes the base. */
    ro = qbt_open_fmt(b, QB_FMT_QCOW2, top, 0);
    EXPECT_FAIL(b, qb_change_backing(b, ro, NULL, QB_FMT_NONE), QB_ERR_READ_ONLY, "read-only");
    EXPECT_FAIL(b, qb_rebase(b, ro, NULL, QB_FMT_NONE, 0, NULL, NULL), QB_ERR_READ_ONLY,
                "read-only");
    EXPECT_FAIL(b, qb_commit(b, ro, NULL, 0, NULL, NULL), QB_ERR_READ_ONLY, "read-only");
    EXPECT_FAIL(b, qb_amend(b, ro, "compat=0.10"), QB_ERR_READ_ONLY, "read-only");
    qbt_close(b, &ro);

    rw = qbt_open_fmt(b, QB_FMT_QCOW2, top, LIBQBLOCK_O_RDWR);
    EXPECT_FAIL(b, qb_rebase(b, rw, &loc, QB_FMT_QCOW2, 0x10, NULL, NULL), QB_ERR_INVALID_PARAM,
                "flags");
    EXPECT_FAIL(b, qb_commit(b, rw, NULL, 0x10, NULL, NULL), QB_ERR_INVALID_PARAM, "flags");
    EXPECT_FAIL(b, qb_rebase(b, rw, &loc, (enum QBlockFmtType)99, 0, NULL, NULL),
                QB_ERR_INVALID_PARAM, "format");
    EXPECT_FAIL(b, qb_change_backing(b, rw, &bad, QB_FMT_QCOW2), QB_ERR_INVALID_PARAM,
                "protocol");
    EXPECT_FAIL(b, qb_amend(b, rw, NULL), QB_ERR_INVALID_PARAM, "NULL options");
    EXPECT_FAIL(b, qb_amend(b, rw, "foo=bar"), QB_ERR_INVALID_PARAM, "foo");
    EXPECT_FAIL(b, qb_amend(b, rw, "cluster_size=4k"), QB_ERR_INVALID_PARAM, "creation");
    EXPECT_FAIL(b, qb_amend(b, rw, "compat=2"), QB_ERR_INVALID_PARAM, "compatibility level 2");
    EXPECT_FAIL(b, qb_amend(b, rw, "backing_file=x"), QB_ERR_INVALID_PARAM, "backing file");
    EXPECT_FAIL(b, qb_amend(b, rw, "refcount_bits=8"), QB_ERR_NOT_SUPPORTED, "refcount_bits");
    /* A refused option list changes nothing, even its valid options. */
    EXPECT_FAIL(b, qb_amend(b, rw, "compat=0.10,foo=1"), QB_ERR_INVALID_PARAM, "foo");
    {
        uint8_t v[4];
        qbt_pread_file(top, v, 4, 4);
        ck_assert_int_eq(v[3], 3);
    }
    /* The safe mode opens the new backing file first. */
    loc = qbt_loc("does-not-exist.qcow2");
    EXPECT_FAIL(b, qb_rebase(b, rw, &loc, QB_FMT_QCOW2, 0, NULL, NULL), QB_ERR_INTERNAL_ERR,
                "Could not open new backing file");
    loc = qbt_loc(rawp);
    EXPECT_FAIL(b, qb_commit(b, rw, &loc, 0, NULL, NULL), QB_ERR_INVALID_PARAM, "Did not find");
    qbt_close(b, &rw);

    /* Raw records no backing file and has nothing to amend. */
    raw = qbt_open_fmt(b, QB_FMT_RAW, rawp, LIBQBLOCK_O_RDWR);
    loc = qbt_loc(base);
    EXPECT_FAIL(b, qb_change_backing(b, raw, &loc, QB_FMT_QCOW2), QB_ERR_NOT_SUPPORTED, "raw");
    EXPECT_FAIL(b, qb_amend(b, raw, "compat=1.1"), QB_ERR_NOT_SUPPORTED, "amendment");
    EXPECT_FAIL(b, qb_commit(b, raw, NULL, 0, NULL, NULL), QB_ERR_INVALID_PARAM, "backing file");
    qbt_close(b, &raw);

    /* Snapshot mode writes to a temporary overlay: no chain changes there. */
    rw = qbt_open_fmt(b, QB_FMT_QCOW2, top, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_SNAPSHOT);
    EXPECT_FAIL(b, qb_amend(b, rw, "compat=1.1"), QB_ERR_NOT_SUPPORTED, "snapshot");
    qbt_close(b, &rw);
    qb_state_delete(b, &closed);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(chain_rebase_and_commit)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL, *nbs = NULL;
    char base[PATH_MAX], top[PATH_MAX], newp[PATH_MAX], name[PATH_MAX];
    QBlockProtInfo loc;
    int calls = 0;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(base, sizeof(base), "rc-base.qcow2");
    qbt_path(top, sizeof(top), "rc-top.qcow2");
    qbt_path(newp, sizeof(newp), "rc-new.qcow2");
    create_qcow2(b, base, 2 * MIB, NULL);
    create_qcow2(b, top, 0, base);
    create_qcow2(b, newp, 2 * MIB, NULL);
    qbs = qbt_open_fmt(b, QB_FMT_QCOW2, base, LIBQBLOCK_O_RDWR);
    fill(b, qbs, 0x11, MIB, 0);
    qbt_close(b, &qbs);
    qbs = qbt_open_fmt(b, QB_FMT_QCOW2, newp, LIBQBLOCK_O_RDWR);
    fill(b, qbs, 0x11, K64, 0);   /* the new backing file agrees with the old on one cluster */
    qbt_close(b, &qbs);

    qbs = qbt_open_fmt(b, QB_FMT_QCOW2, top, LIBQBLOCK_O_RDWR);
    fill(b, qbs, 0x22, K64, MIB);

    /* A cancel stops the rebase before the reference changes. */
    loc = qbt_loc(newp);
    EXPECT_FAIL(b, qb_rebase(b, qbs, &loc, QB_FMT_QCOW2, 0, cancel_at_once, &calls),
                QB_ERR_CANCELED, "canceled");
    ck_assert_int_eq(qb_error_get_errno(b), ECANCELED);
    ck_assert_int_eq(calls, 1);
    header_backing(top, name, sizeof(name));
    ck_assert_str_eq(name, base);

    /* Safe mode: what differs is copied in, what agrees is left to the new backing file. */
    calls = 0;
    ck_assert_int_eq(qb_rebase(b, qbs, &loc, QB_FMT_QCOW2, 0, count_calls, &calls), 0);
    ck_assert_int_gt(calls, 0);
    header_backing(top, name, sizeof(name));
    ck_assert_str_eq(name, newp);
    expect(b, qbs, 0x11, MIB, 0);
    expect(b, qbs, 0x22, K64, MIB);
    expect(b, qbs, 0x00, MIB - K64, MIB + K64);
    ck_assert_int_eq(allocated(b, qbs, 0), 0);
    ck_assert_int_eq(allocated(b, qbs, K64), 1);

    /* Commit into the new backing file empties the top (qcow2), which reads the same. */
    ck_assert_int_eq(qb_commit(b, qbs, NULL, 0, NULL, NULL), 0);
    ck_assert_int_eq(allocated(b, qbs, K64), 0);
    ck_assert_int_eq(allocated(b, qbs, MIB), 0);
    expect(b, qbs, 0x11, MIB, 0);
    expect(b, qbs, 0x22, K64, MIB);
    nbs = qbt_open_fmt(b, QB_FMT_QCOW2, newp, 0);
    expect(b, nbs, 0x11, MIB, 0);
    expect(b, nbs, 0x22, K64, MIB);
    qbt_close(b, &nbs);

    /* Unsafe removal: the reference goes, nothing is copied, unallocated areas read zeros. */
    ck_assert_int_eq(qb_change_backing(b, qbs, NULL, QB_FMT_NONE), 0);
    header_backing(top, name, sizeof(name));
    ck_assert_str_eq(name, "");
    expect(b, qbs, 0x00, 2 * MIB, 0);
    EXPECT_FAIL(b, qb_commit(b, qbs, NULL, 0, NULL, NULL), QB_ERR_INVALID_PARAM, "backing file");
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(chain_amend_compat)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    char path[PATH_MAX];
    uint8_t v[4];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "amend.qcow2");
    create_qcow2(b, path, MIB, NULL);
    qbs = qbt_open_fmt(b, QB_FMT_QCOW2, path, LIBQBLOCK_O_RDWR);
    fill(b, qbs, 0x33, K64, K64);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 0, K64, 0), 0);

    ck_assert_int_eq(qb_amend(b, qbs, "compat=0.10"), 0);
    qbt_pread_file(path, v, 4, 4);
    ck_assert_int_eq(v[3], 2);
    expect(b, qbs, 0x00, K64, 0);
    expect(b, qbs, 0x33, K64, K64);
    EXPECT_FAIL(b, qb_amend(b, qbs, "lazy_refcounts=on"), QB_ERR_INVALID_PARAM, "Lazy refcounts");
    ck_assert_int_eq(qb_amend(b, qbs, "compat=1.1,lazy_refcounts=on,size=2M"), 0);
    qbt_pread_file(path, v, 4, 4);
    ck_assert_int_eq(v[3], 3);
    qbt_close(b, &qbs);

    /* What was written survives both conversions, and the check finds nothing. */
    qbs = qbt_open_fmt(b, QB_FMT_QCOW2, path, 0);
    {
        QBlockCheckResult res;
        QBlockStaticInfo *info = NULL;
        ck_assert_int_eq(qb_check(b, qbs, 0, &res), 0);
        ck_assert_int_eq(res.corruptions + res.leaks + res.check_errors, 0);
        ck_assert_int_eq(qb_info_image_static_get(b, qbs, &info), 0);
        ck_assert_uint_eq(info->virt_size, 2 * MIB);
        qb_info_image_static_delete(b, &info);
    }
    expect(b, qbs, 0x33, K64, K64);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

static Suite *chain_suite(void)
{
    Suite *s = suite_create("api_chain");
    TCase *tc = tcase_create("chain");

    tcase_add_test(tc, chain_argument_errors);
    tcase_add_test(tc, chain_rebase_and_commit);
    tcase_add_test(tc, chain_amend_compat);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(chain_suite(), argv[0]);
}
