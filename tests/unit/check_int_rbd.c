/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_rbd.c: the RBD driver's location parser and writer (escapes,
 * namespaces, snapshots, options, malformed names), the refusals that need
 * no cluster, the public QB_PROT_RBD validation, and the note a timed-out
 * request leaves for the facade's message. The driver's I/O is tested
 * against a real Ceph cluster by interop 620, its timeouts by 621.
 */

#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/rbd.h"
#include "libqblock/libqblock.h"

static void parse_ok(const char *name, RBDAddress *a)
{
    char msg[256] = "";
    int ret = rbd_parse_location(name, a, msg, sizeof(msg));

    ck_assert_msg(ret == 0, "%s: %d %s", name, ret, msg);
}

static void parse_bad(const char *name, const char *why)
{
    RBDAddress a;
    char msg[256] = "";

    ck_assert_int_eq(rbd_parse_location(name, &a, msg, sizeof(msg)), -EINVAL);
    ck_assert_msg(strstr(msg, why), "%s: message '%s' lacks '%s'", name, msg, why);
}

START_TEST(rbd_location_forms)
{
    RBDAddress a;

    ck_assert(rbd_is_location("rbd:p/i"));
    ck_assert(!rbd_is_location("./rbd:p/i"));
    ck_assert(!rbd_is_location("nbd://h/x"));

    parse_ok("rbd:pool/img", &a);
    ck_assert_str_eq(a.pool, "pool");
    ck_assert_str_eq(a.image, "img");
    ck_assert_ptr_null(a.nspace);
    ck_assert_ptr_null(a.snap);
    ck_assert_ptr_null(a.user);
    ck_assert_ptr_null(a.conf);
    ck_assert_int_eq(a.n_kv, 0);
    rbd_address_free(&a);

    parse_ok("rbd:pool/ns/img@snap:conf=/etc/c.conf:id=bob:mon_host=1.2.3.4\\:6789", &a);
    ck_assert_str_eq(a.pool, "pool");
    ck_assert_str_eq(a.nspace, "ns");
    ck_assert_str_eq(a.image, "img");
    ck_assert_str_eq(a.snap, "snap");
    ck_assert_str_eq(a.conf, "/etc/c.conf");
    ck_assert_str_eq(a.user, "bob");
    ck_assert_int_eq(a.n_kv, 1);
    ck_assert_str_eq(a.keys[0], "mon_host");
    ck_assert_str_eq(a.values[0], "1.2.3.4:6789");
    rbd_address_free(&a);

    /* Escaped separators belong to the name. */
    parse_ok("rbd:p/a\\:b\\@c\\/d", &a);
    ck_assert_str_eq(a.image, "a:b@c/d");
    rbd_address_free(&a);
}
END_TEST

START_TEST(rbd_location_malformed)
{
    parse_bad("rbd:pool", "needs a pool and an image");
    parse_bad("rbd:/img", "needs a pool and an image");
    parse_bad("rbd:pool/", "needs a pool and an image");
    parse_bad("rbd:a/b/c/d", "too many '/'");
    parse_bad("rbd:p/i@", "empty snapshot name");
    parse_bad("rbd:p/i:conf", "needs key=value");
    parse_bad("rbd:p/i:=x", "needs key=value");
    parse_bad("nbd:p/i", "not an RBD location");
}
END_TEST

/* What rbd_format_location writes, rbd_parse_location reads back unchanged. */
START_TEST(rbd_location_round_trip)
{
    static const char *const names[][5] = {
        { "rbd", "img", NULL, NULL, NULL },
        { "p:o@o/l", "i=m\\g", "s:n@p", "u:s", "/a:b/c.conf" },
        { "pool", "image", "", "", "" },
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *loc = rbd_format_location(names[i][0], names[i][1], names[i][2], names[i][3],
                                        names[i][4]);
        RBDAddress a;

        ck_assert_ptr_nonnull(loc);
        parse_ok(loc, &a);
        ck_assert_str_eq(a.pool, names[i][0]);
        ck_assert_str_eq(a.image, names[i][1]);
        for (int k = 2; k < 5; k++) {
            const char *got = k == 2 ? a.snap : k == 3 ? a.user : a.conf;
            if (names[i][k] && names[i][k][0]) {
                ck_assert_ptr_nonnull(got);
                ck_assert_str_eq(got, names[i][k]);
            } else {
                ck_assert_ptr_null(got);
            }
        }
        ck_assert_ptr_null(a.nspace);
        rbd_address_free(&a);
        free(loc);
    }
}
END_TEST

/* Refusals that come before any connection to a cluster. */
START_TEST(rbd_refusals_without_a_cluster)
{
    BdrvOpts opts;
    BdrvError err = { 0 };

    bdrv_opts_init(&opts);
    ck_assert_int_eq(bdrv_opts_set(&opts, "size", "1M"), 0);
    /* Format rbd on a local file is not a thing. */
    ck_assert_int_eq(bdrv_create("rbd", "/tmp/not-rbd.img", &opts, 0, &err), -ENOTSUP);
#ifdef CONFIG_RBD
    ck_assert_int_eq(bdrv_opts_set(&opts, "cluster_size", "3M"), 0);
    ck_assert_int_eq(bdrv_create("rbd", "rbd:p/i", &opts, 0, &err), -EINVAL);
    ck_assert_int_eq(bdrv_opts_set(&opts, "cluster_size", "2K"), 0);
    ck_assert_int_eq(bdrv_create("rbd", "rbd:p/i", &opts, 0, &err), -EINVAL);
    ck_assert_int_eq(bdrv_opts_set(&opts, "cluster_size", "64K"), 0);
    ck_assert_int_eq(bdrv_create("rbd", "rbd:p/i@snap", &opts, 0, &err), -EINVAL);
#else
    ck_assert_int_eq(bdrv_create("rbd", "rbd:p/i", &opts, 0, &err), -ENOTSUP);
#endif
    bdrv_opts_free(&opts);
}
END_TEST

START_TEST(rbd_public_location_validated)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockProtInfo loc;
    char msg[512];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_RBD;
#ifdef CONFIG_RBD
    ck_assert_int_eq(qb_open(b, qbs, &loc, NULL, 0), QB_ERR_INVALID_PARAM);
    qb_error_get_human_str(b, msg, sizeof(msg));
    ck_assert_msg(strstr(msg, "needs a pool and an image"), "%s", msg);
    loc.prot_op.o_rbd.pool = "rbd";
    loc.prot_op.o_rbd.image = "img";
    loc.prot_op.o_rbd.reserved[3] = 1;
    ck_assert_int_eq(qb_open(b, qbs, &loc, NULL, 0), QB_ERR_INVALID_PARAM);
    qb_error_get_human_str(b, msg, sizeof(msg));
    ck_assert_msg(strstr(msg, "reserved"), "%s", msg);
#else
    ck_assert_int_eq(qb_open(b, qbs, &loc, NULL, 0), QB_ERR_NOT_SUPPORTED);
    qb_error_get_human_str(b, msg, sizeof(msg));
    ck_assert_msg(strstr(msg, "librbd"), "%s", msg);
#endif
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/*
 * A driver's note on a failed request (the RBD driver's "did not answer in
 * N s") reaches only the report of that error, once, in its thread.
 */
START_TEST(rbd_io_error_note_goes_with_its_error)
{
    char buf[128] = "";

    /* A note for another errno is not this error's, and is forgotten. */
    bdrv_io_error_note(-ETIMEDOUT, "'rbd:p/i': the Ceph cluster did not answer in %d s", 7);
    ck_assert(!bdrv_io_error_take(-EIO, buf, sizeof(buf)));
    ck_assert_str_eq(buf, "");
    ck_assert(!bdrv_io_error_take(-ETIMEDOUT, buf, sizeof(buf)));
    /* The matching error takes it, cut to the buffer, and only once. */
    bdrv_io_error_note(-ETIMEDOUT, "'rbd:p/i': the Ceph cluster did not answer in %d s", 7);
    ck_assert(bdrv_io_error_take(-ETIMEDOUT, buf, 12));
    ck_assert_str_eq(buf, "'rbd:p/i': ");
    ck_assert(!bdrv_io_error_take(-ETIMEDOUT, buf, sizeof(buf)));
    bdrv_io_error_note(-ETIMEDOUT, "'rbd:p/i': the Ceph cluster did not answer in %d s", 7);
    ck_assert(bdrv_io_error_take(-ETIMEDOUT, buf, sizeof(buf)));
    ck_assert_str_eq(buf, "'rbd:p/i': the Ceph cluster did not answer in 7 s");
}
END_TEST

static Suite *rbd_suite(void)
{
    Suite *s = suite_create("rbd");
    TCase *tc = tcase_create("location");

    tcase_add_test(tc, rbd_location_forms);
    tcase_add_test(tc, rbd_location_malformed);
    tcase_add_test(tc, rbd_location_round_trip);
    tcase_add_test(tc, rbd_refusals_without_a_cluster);
    tcase_add_test(tc, rbd_public_location_validated);
    tcase_add_test(tc, rbd_io_error_note_goes_with_its_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rbd_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
