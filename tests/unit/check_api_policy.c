/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_api_policy.c: the safe open policy (qb_state_set_policy): its
 * defaults, and each limit refusing an image with QB_ERR_LIMIT and a
 * message naming it, while the opt-out lets the same image open.
 */

#include "qbtest.h"

/* Makes an image of @type with option string @opts (through the library). */
static void create_opts(QBroker *b, const char *path, enum QBlockFmtType type, const char *opts)
{
    QBlockState *qbs = NULL;
    QBlockFmtInfo *fi = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    int ret;

    ck_assert_int_eq(qb_fmt_info_new(b, &fi), 0);
    fi->fmt_type = type;
    ret = qb_fmt_info_set_options(b, fi, opts);
    ck_assert_msg(ret == 0, "options '%s': %s", opts, qbt_msg(b));
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ret = qb_create(b, qbs, &loc, fi, 0);
    ck_assert_msg(ret == 0, "qb_create %s: %d %s", path, ret, qbt_msg(b));
    qb_state_delete(b, &qbs);
    qb_fmt_info_delete(b, &fi);
}

/* qb_open of @path (format @type, QB_FMT_NONE probes) under @pol (NULL: default); closes it. */
static int open_with(QBroker *b, const char *path, enum QBlockFmtType type,
                     const QBlockOpenPolicy *pol)
{
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    QBlockFmtInfo fi;
    int ret;

    memset(&fi, 0, sizeof(fi));
    fi.fmt_type = type;
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ret = qb_state_set_policy(b, qbs, pol);
    ck_assert_msg(ret == 0, "qb_state_set_policy: %s", qbt_msg(b));
    ret = qb_open(b, qbs, &loc, type == QB_FMT_NONE ? NULL : &fi, 0);
    if (ret == 0) {
        ck_assert_int_eq(qb_close(b, qbs), 0);
    }
    qb_state_delete(b, &qbs);
    return ret;
}

static void mkdir_p(const char *path)
{
    ck_assert_msg(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

START_TEST(policy_defaults_and_bad_arguments)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockOpenPolicy p;
    char img[PATH_MAX], missing[PATH_MAX];
    const char *dirs[] = { missing, NULL };

    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    memset(&p, 0xff, sizeof(p));
    ck_assert_int_eq(qb_state_get_policy(b, qbs, &p), 0);
    ck_assert_uint_eq(p.flags, 0);
    ck_assert_uint_eq(p.max_chain_depth, QB_POLICY_DEFAULT_MAX_CHAIN_DEPTH);
    ck_assert_uint_eq(p.max_metadata_size, QB_POLICY_DEFAULT_MAX_METADATA_SIZE);
    ck_assert_uint_eq(p.max_descriptor_size, QB_POLICY_DEFAULT_MAX_DESCRIPTOR_SIZE);
    ck_assert_ptr_null(p.allowed_dirs);

    memset(&p, 0, sizeof(p));
    p.flags = 0x80;
    EXPECT_FAIL(b, qb_state_set_policy(b, qbs, &p), QB_ERR_INVALID_PARAM, "unknown flags");
    p.flags = 0;
    p.reserved[3] = 1;
    EXPECT_FAIL(b, qb_state_set_policy(b, qbs, &p), QB_ERR_INVALID_PARAM, "reserved");
    p.reserved[3] = 0;
    qbt_path(missing, sizeof(missing), "no-such-folder");
    p.allowed_dirs = dirs;
    EXPECT_FAIL(b, qb_state_set_policy(b, qbs, &p), QB_ERR_INVALID_PARAM, "no-such-folder");
    EXPECT_FAIL(b, qb_state_set_policy(NULL, qbs, &p), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(b, qb_state_set_policy(b, NULL, &p), QB_ERR_INVALID_PARAM, "NULL state");
    EXPECT_FAIL(b, qb_state_get_policy(b, qbs, NULL), QB_ERR_INVALID_PARAM, "NULL policy");

    /* Explicit limits are kept as given; NULL restores the defaults. */
    memset(&p, 0, sizeof(p));
    p.flags = QB_POLICY_ALLOW_RAW_PROBE;
    p.max_chain_depth = 3;
    p.max_metadata_size = QB_POLICY_UNLIMITED;
    ck_assert_int_eq(qb_state_set_policy(b, qbs, &p), 0);
    ck_assert_int_eq(qb_state_get_policy(b, qbs, &p), 0);
    ck_assert_uint_eq(p.flags, QB_POLICY_ALLOW_RAW_PROBE);
    ck_assert_uint_eq(p.max_chain_depth, 3);
    ck_assert_uint_eq(p.max_metadata_size, QB_POLICY_UNLIMITED);
    ck_assert_uint_eq(p.max_descriptor_size, QB_POLICY_DEFAULT_MAX_DESCRIPTOR_SIZE);
    ck_assert_int_eq(qb_state_set_policy(b, qbs, NULL), 0);
    ck_assert_int_eq(qb_state_get_policy(b, qbs, &p), 0);
    ck_assert_uint_eq(p.flags, 0);
    ck_assert_uint_eq(p.max_chain_depth, QB_POLICY_DEFAULT_MAX_CHAIN_DEPTH);

    /* Not while an image is open: the open follows the policy it started with. */
    qbt_path(img, sizeof(img), "d.raw");
    qbt_create_raw(b, img, 65536);
    {
        QBlockProtInfo loc = qbt_loc(img);
        QBlockFmtInfo fi;

        memset(&fi, 0, sizeof(fi));
        fi.fmt_type = QB_FMT_RAW;
        ck_assert_int_eq(qb_open(b, qbs, &loc, &fi, 0), 0);
        EXPECT_FAIL(b, qb_state_set_policy(b, qbs, NULL), QB_ERR_INVALID_PARAM, "open");
        ck_assert_int_eq(qb_close(b, qbs), 0);
    }
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(policy_no_raw_guess)
{
    QBroker *b = NULL;
    QBlockOpenPolicy p;
    char img[PATH_MAX];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(img, sizeof(img), "guess.img");
    qbt_create_raw(b, img, 65536);
    EXPECT_FAIL(b, open_with(b, img, QB_FMT_NONE, NULL), QB_ERR_LIMIT,
                "not allow opening it as raw");
    ck_assert_int_eq(qb_error_get_errno(b), EKEYREJECTED);
    /* Named, it opens; and a caller may ask for the guess. */
    ck_assert_int_eq(open_with(b, img, QB_FMT_RAW, NULL), 0);
    memset(&p, 0, sizeof(p));
    p.flags = QB_POLICY_ALLOW_RAW_PROBE;
    ck_assert_msg(open_with(b, img, QB_FMT_NONE, &p) == 0, "%s", qbt_msg(b));
    ck_assert_str_eq(qb_strerror(QB_ERR_LIMIT), "a limit of the open policy was hit");
    qb_broker_delete(&b);
}
END_TEST

START_TEST(policy_backing_confined)
{
    QBroker *b = NULL;
    QBlockOpenPolicy p;
    char a[PATH_MAX], other[PATH_MAX], sub[PATH_MAX], base[PATH_MAX], subbase[PATH_MAX];
    char top[PATH_MAX], top2[PATH_MAX], top3[PATH_MAX], link[PATH_MAX], opts[3 * PATH_MAX];
    const char *dirs[] = { other, NULL };

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(a, sizeof(a), "a");
    qbt_path(other, sizeof(other), "other");
    ck_assert_int_lt(snprintf(sub, sizeof(sub), "%s/sub", a), (int)sizeof(sub));
    mkdir_p(a);
    mkdir_p(other);
    mkdir_p(sub);
    ck_assert_int_lt(snprintf(base, sizeof(base), "%s/base.raw", other), (int)sizeof(base));
    ck_assert_int_lt(snprintf(subbase, sizeof(subbase), "%s/base.raw", sub), (int)sizeof(subbase));
    qbt_create_raw(b, base, 65536);
    qbt_create_raw(b, subbase, 65536);

    /* A backing file in a sibling folder, by absolute name. */
    ck_assert_int_lt(snprintf(top, sizeof(top), "%s/top.qcow2", a), (int)sizeof(top));
    snprintf(opts, sizeof(opts), "size=64k,backing_file=%s,backing_fmt=raw", base);
    create_opts(b, top, QB_FMT_QCOW2, opts);
    EXPECT_FAIL(b, open_with(b, top, QB_FMT_QCOW2, NULL), QB_ERR_LIMIT,
                "outside the image's folder");
    memset(&p, 0, sizeof(p));
    p.allowed_dirs = dirs;
    ck_assert_msg(open_with(b, top, QB_FMT_QCOW2, &p) == 0, "%s", qbt_msg(b));
    memset(&p, 0, sizeof(p));
    p.flags = QB_POLICY_ALLOW_ANY_PATH;
    ck_assert_msg(open_with(b, top, QB_FMT_QCOW2, &p) == 0, "%s", qbt_msg(b));

    /* Relative, with "..": the same refusal. */
    ck_assert_int_lt(snprintf(top2, sizeof(top2), "%s/dotdot.qcow2", a), (int)sizeof(top2));
    create_opts(b, top2, QB_FMT_QCOW2, "size=64k,backing_file=../other/base.raw,backing_fmt=raw");
    EXPECT_FAIL(b, open_with(b, top2, QB_FMT_QCOW2, NULL), QB_ERR_LIMIT, "outside");

    /* A symbolic link inside the folder that leads out of it. */
    ck_assert_int_lt(snprintf(link, sizeof(link), "%s/link.raw", a), (int)sizeof(link));
    ck_assert_int_eq(symlink(base, link), 0);
    ck_assert_int_lt(snprintf(top3, sizeof(top3), "%s/viasym.qcow2", a), (int)sizeof(top3));
    create_opts(b, top3, QB_FMT_QCOW2, "size=64k,backing_file=link.raw,backing_fmt=raw");
    EXPECT_FAIL(b, open_with(b, top3, QB_FMT_QCOW2, NULL), QB_ERR_LIMIT, "outside");

    /* Below the image's folder is inside it. */
    create_opts(b, top3, QB_FMT_QCOW2, "size=64k,backing_file=sub/base.raw,backing_fmt=raw");
    ck_assert_msg(open_with(b, top3, QB_FMT_QCOW2, NULL) == 0, "%s", qbt_msg(b));
    qb_broker_delete(&b);
}
END_TEST

START_TEST(policy_backing_not_a_regular_file)
{
    QBroker *b = NULL;
    QBlockOpenPolicy p;
    char top[PATH_MAX];
    const char *dirs[] = { "/dev", NULL };

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(top, sizeof(top), "dev.qcow2");
    create_opts(b, top, QB_FMT_QCOW2, "size=64k,backing_file=/dev/null,backing_fmt=raw");
    EXPECT_FAIL(b, open_with(b, top, QB_FMT_QCOW2, NULL), QB_ERR_LIMIT, "outside");
    /* Even in an allowed folder, a device is not an image file. */
    memset(&p, 0, sizeof(p));
    p.allowed_dirs = dirs;
    EXPECT_FAIL(b, open_with(b, top, QB_FMT_QCOW2, &p), QB_ERR_LIMIT, "not a regular file");
    p.flags = QB_POLICY_ALLOW_ANY_PATH;
    ck_assert_msg(open_with(b, top, QB_FMT_QCOW2, &p) == 0, "%s", qbt_msg(b));
    qb_broker_delete(&b);
}
END_TEST

START_TEST(policy_chain_depth)
{
    QBroker *b = NULL;
    QBlockOpenPolicy p;
    char path[5][PATH_MAX], opts[PATH_MAX + 64];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    /* l0 <- l1 <- l2 <- l3 <- l4: four backing files below l4. */
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "l%d.qcow2", i);
        qbt_path(path[i], sizeof(path[i]), name);
        if (i == 0) {
            create_opts(b, path[i], QB_FMT_QCOW2, "size=64k");
        } else {
            snprintf(opts, sizeof(opts), "size=64k,backing_file=l%d.qcow2,backing_fmt=qcow2",
                     i - 1);
            create_opts(b, path[i], QB_FMT_QCOW2, opts);
        }
    }
    memset(&p, 0, sizeof(p));
    p.max_chain_depth = 3;
    EXPECT_FAIL(b, open_with(b, path[4], QB_FMT_QCOW2, &p), QB_ERR_LIMIT, "max_chain_depth (3");
    p.max_chain_depth = 4;
    ck_assert_msg(open_with(b, path[4], QB_FMT_QCOW2, &p) == 0, "%s", qbt_msg(b));
    ck_assert_msg(open_with(b, path[4], QB_FMT_QCOW2, NULL) == 0, "%s", qbt_msg(b));
    qb_broker_delete(&b);
}
END_TEST

START_TEST(policy_metadata_budget)
{
    QBroker *b = NULL;
    QBlockOpenPolicy p;
    char q[PATH_MAX], v[PATH_MAX];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    /* 4 GiB of 512-byte clusters: 131072 L1 entries, a table of 1 MiB. */
    qbt_path(q, sizeof(q), "big-l1.qcow2");
    create_opts(b, q, QB_FMT_QCOW2, "size=4G,cluster_size=512");
    memset(&p, 0, sizeof(p));
    p.max_metadata_size = 64 << 10;
    EXPECT_FAIL(b, open_with(b, q, QB_FMT_QCOW2, &p), QB_ERR_LIMIT,
                "active L1 table (1048576 bytes) takes the metadata kept in memory past the "
                "open policy's max_metadata_size (65536 bytes)");
    ck_assert_msg(open_with(b, q, QB_FMT_QCOW2, NULL) == 0, "%s", qbt_msg(b));

    /* A header claiming 65536 snapshots (QEMU's limit), whose table lies past the end. */
    qbt_path(q, sizeof(q), "many-snapshots.qcow2");
    create_opts(b, q, QB_FMT_QCOW2, "size=1M");
    {
        uint8_t f[12] = { 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0 };   /* 65536 at 1 MiB */
        qbt_pwrite_file(q, f, sizeof(f), 60);
    }
    p.max_metadata_size = 1 << 20;
    EXPECT_FAIL(b, open_with(b, q, QB_FMT_QCOW2, &p), QB_ERR_LIMIT,
                "the snapshot table (");
    ck_assert_msg(open_with(b, q, QB_FMT_QCOW2, NULL) == 0, "%s", qbt_msg(b));

    /* 64 GiB of VDI blocks: a block map of 256 KiB. */
    qbt_path(v, sizeof(v), "big-map.vdi");
    create_opts(b, v, QB_FMT_VDI, "size=64G");
    p.max_metadata_size = 128 << 10;
    EXPECT_FAIL(b, open_with(b, v, QB_FMT_VDI, &p), QB_ERR_LIMIT,
                "block map (262144 bytes)");
    p.max_metadata_size = 256 << 10;
    ck_assert_msg(open_with(b, v, QB_FMT_VDI, &p) == 0, "%s", qbt_msg(b));
    qb_broker_delete(&b);
}
END_TEST

START_TEST(policy_descriptor_size)
{
    QBroker *b = NULL;
    QBlockOpenPolicy p;
    char d[PATH_MAX], line[128];
    FILE *f;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(d, sizeof(d), "big.vmdk");
    create_opts(b, d, QB_FMT_VMDK, "size=1M,subformat=monolithicFlat");
    /* Comment lines are legal anywhere: 100 KiB of them. */
    f = fopen(d, "a");
    ck_assert_ptr_nonnull(f);
    memset(line, 'x', sizeof(line) - 2);
    line[0] = '#';
    line[sizeof(line) - 2] = '\n';
    line[sizeof(line) - 1] = '\0';
    for (int i = 0; i < 800; i++) {
        fputs(line, f);
    }
    ck_assert_int_eq(fclose(f), 0);
    EXPECT_FAIL(b, open_with(b, d, QB_FMT_VMDK, NULL), QB_ERR_LIMIT,
                "larger than the open policy's max_descriptor_size (65536 bytes)");
    memset(&p, 0, sizeof(p));
    p.max_descriptor_size = QB_POLICY_UNLIMITED;
    ck_assert_msg(open_with(b, d, QB_FMT_VMDK, &p) == 0, "%s", qbt_msg(b));
    qb_broker_delete(&b);
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("api_policy");
    TCase *tc = tcase_create("policy");

    tcase_add_test(tc, policy_defaults_and_bad_arguments);
    tcase_add_test(tc, policy_no_raw_guess);
    tcase_add_test(tc, policy_backing_confined);
    tcase_add_test(tc, policy_backing_not_a_regular_file);
    tcase_add_test(tc, policy_chain_depth);
    tcase_add_test(tc, policy_metadata_budget);
    tcase_add_test(tc, policy_descriptor_size);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(policy_suite(), argv[0]);
}
