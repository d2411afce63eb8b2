/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_fault.c: white-box tests of the fault-injection protocol
 * (block/faulty.c): its rule syntax, which request of a kind fails and how
 * (EIO, ENOSPC, sticky, a torn write's sector-aligned prefix), that a
 * disarmed process opens plain file nodes, and that a format's write error
 * reaches its caller. Plain POSIX reads of the same files are the oracle.
 * The per-format sweeps over every request are interop 520.
 */

#define _GNU_SOURCE

#define QBINT_NAME "check_int_fault"
#define QBINT_LITTLE_ENDIAN
#define QBINT_FMT_CREATE "qcow2"
#include "qbint.h"

#include "block/fault.h"

/* Arm the rule @spec (LIBQBLOCK_FAULT_INJECT syntax). */
static void arm(const char *spec)
{
    BdrvFaultRule rule;

    ck_assert_msg(bdrv_fault_parse(spec, &rule) == 0, "spec %s", spec);
    bdrv_fault_arm(&rule);
}

static uint64_t count_of(BdrvFaultKind kind, uint64_t *injected)
{
    uint64_t c[BDRV_FAULT_KINDS];
    bdrv_fault_counts(c, injected);
    return c[kind];
}

START_TEST(fault_parse_accepts_the_documented_rules_only)
{
    BdrvFaultRule r;

    ck_assert_int_eq(bdrv_fault_parse("count", &r), 0);
    ck_assert(!r.inject);
    ck_assert_int_eq(bdrv_fault_parse("read:7:eio", &r), 0);
    ck_assert(r.inject && r.kind == BDRV_FAULT_READ && r.nth == 7 && r.error == EIO);
    ck_assert(!r.torn && !r.sticky);
    ck_assert_int_eq(bdrv_fault_parse("write:2:enospc:sticky", &r), 0);
    ck_assert(r.kind == BDRV_FAULT_WRITE && r.error == ENOSPC && r.sticky);
    ck_assert_int_eq(bdrv_fault_parse("write:1:torn", &r), 0);
    ck_assert(r.torn && r.error == EIO);
    ck_assert_int_eq(bdrv_fault_parse("flush:3:eio", &r), 0);
    ck_assert(r.kind == BDRV_FAULT_FLUSH && r.nth == 3);

    ck_assert_int_eq(bdrv_fault_parse("read:0:eio", &r), -EINVAL);      /* 1-based */
    ck_assert_int_eq(bdrv_fault_parse("read:1:torn", &r), -EINVAL);     /* writes only */
    ck_assert_int_eq(bdrv_fault_parse("discard:1:eio", &r), -EINVAL);
    ck_assert_int_eq(bdrv_fault_parse("write:1:eperm", &r), -EINVAL);
    ck_assert_int_eq(bdrv_fault_parse("write:1:eio:once", &r), -EINVAL);
    ck_assert_int_eq(bdrv_fault_parse("write", &r), -EINVAL);
}
END_TEST

START_TEST(fault_disarmed_process_opens_plain_file_nodes)
{
    BlockDriverState *bs;

    bdrv_fault_arm(NULL);
    bs = open_file_node("f", 4096, 0);
    ck_assert_ptr_eq(bs->drv, &bdrv_file);
    bdrv_close(bs);
}
END_TEST

START_TEST(fault_read_fails_only_the_nth_with_eio)
{
    BlockDriverState *bs;
    uint8_t buf[512];
    uint64_t injected;

    arm("read:3:eio");
    bs = open_file_node("f", 4096, 0x5a);
    ck_assert_ptr_eq(bs->drv, &bdrv_faulty);
    for (int i = 1; i <= 5; i++) {
        memset(buf, 0, sizeof(buf));
        int ret = bdrv_pread(bs, (uint64_t)i * 512, buf, sizeof(buf));
        if (i == 3) {
            ck_assert_int_eq(ret, -EIO);
        } else {
            ck_assert_int_eq(ret, 0);
            ck_assert_int_eq(buf[0], 0x5a);
            ck_assert_int_eq(buf[511], 0x5a);
        }
    }
    ck_assert_uint_eq(count_of(BDRV_FAULT_READ, &injected), 5);
    ck_assert_uint_eq(injected, 1);
    bdrv_close(bs);
}
END_TEST

START_TEST(fault_sticky_enospc_fails_every_later_write)
{
    BlockDriverState *bs;
    uint8_t buf[512], got[512];
    uint64_t injected;

    arm("write:2:enospc:sticky");
    bs = open_file_node("f", 4096, 0);
    memset(buf, 0x11, sizeof(buf));
    ck_assert_int_eq(bdrv_pwrite(bs, 0, buf, sizeof(buf)), 0);
    ck_assert_int_eq(bdrv_pwrite(bs, 512, buf, sizeof(buf)), -ENOSPC);
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 1024, 512), -ENOSPC);
    ck_assert_int_eq(bdrv_pwrite(bs, 1536, buf, sizeof(buf)), -ENOSPC);
    /* Reads and flushes are a different kind: they still work. */
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_int_eq(bdrv_pread(bs, 0, got, sizeof(got)), 0);
    ck_assert_uint_eq(count_of(BDRV_FAULT_WRITE, &injected), 4);
    ck_assert_uint_eq(injected, 3);
    bdrv_close(bs);

    /* Only the first write reached the file. */
    file_read(P("f"), 0, got, sizeof(got));
    ck_assert_int_eq(got[0], 0x11);
    file_read(P("f"), 512, got, sizeof(got));
    ck_assert_int_eq(got[0], 0);
    ck_assert_int_eq(got[511], 0);
}
END_TEST

START_TEST(fault_torn_write_keeps_whole_sectors_of_its_first_half)
{
    enum { OFF = 100, LEN = 3000, CUT = 1536 };   /* ROUND_DOWN(100 + 1500, 512) */
    BlockDriverState *bs;
    uint8_t buf[LEN], got[LEN];

    arm("write:1:torn");
    bs = open_file_node("f", 8192, 0xaa);
    memset(buf, 0x33, sizeof(buf));
    ck_assert_int_eq(bdrv_pwrite(bs, OFF, buf, sizeof(buf)), -EIO);
    bdrv_close(bs);

    file_read(P("f"), OFF, got, sizeof(got));
    for (size_t i = 0; i < LEN; i++) {
        uint8_t want = OFF + i < CUT ? 0x33 : 0xaa;
        ck_assert_msg(got[i] == want, "byte %zu: 0x%02x, want 0x%02x", OFF + i, got[i], want);
    }
}
END_TEST

START_TEST(fault_torn_write_inside_one_sector_writes_nothing)
{
    BlockDriverState *bs;
    uint8_t buf[200], got[200];

    arm("write:1:torn");
    bs = open_file_node("f", 4096, 0xaa);
    memset(buf, 0x33, sizeof(buf));
    ck_assert_int_eq(bdrv_pwrite(bs, 600, buf, sizeof(buf)), -EIO);
    bdrv_close(bs);
    file_read(P("f"), 600, got, sizeof(got));
    for (size_t i = 0; i < sizeof(got); i++) {
        ck_assert_int_eq(got[i], 0xaa);
    }
}
END_TEST

START_TEST(fault_flush_fails_once)
{
    BlockDriverState *bs;
    uint64_t injected;

    arm("flush:2:eio");
    bs = open_file_node("f", 4096, 0);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_int_eq(bdrv_flush(bs), -EIO);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(count_of(BDRV_FAULT_FLUSH, &injected), 3);
    ck_assert_uint_eq(injected, 1);
    bdrv_close(bs);
}
END_TEST

START_TEST(fault_count_rule_counts_without_failing)
{
    BlockDriverState *bs;
    uint8_t buf[512] = { 0 };
    uint64_t injected;

    arm("count");
    bs = open_file_node("f", 4096, 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(bdrv_pwrite(bs, 0, buf, sizeof(buf)), 0);
        ck_assert_int_eq(bdrv_pread(bs, 0, buf, sizeof(buf)), 0);
    }
    ck_assert_uint_eq(count_of(BDRV_FAULT_WRITE, &injected), 4);
    ck_assert_uint_eq(count_of(BDRV_FAULT_READ, &injected), 4);
    ck_assert_uint_eq(injected, 0);
    bdrv_close(bs);
}
END_TEST

/* Every write of a fresh qcow2 cluster allocation fails in turn: the error
 * reaches the caller, and the image, reopened without faults, checks clean. */
START_TEST(fault_qcow2_write_errors_reach_the_caller)
{
    uint8_t buf[65536];
    int failed = 0;

    memset(buf, 0x42, sizeof(buf));
    for (int n = 1; n <= 8; n++) {
        char spec[32];
        BlockDriverState *bs;
        BdrvCheckResult r;
        BdrvError err = { 0 };
        int ret;

        bdrv_fault_arm(NULL);
        unlink(P("a.qcow2"));
        create_img("qcow2", P("a.qcow2"), "size=4M");
        snprintf(spec, sizeof(spec), "write:%d:eio", n);
        arm(spec);
        bs = open_img(P("a.qcow2"), "qcow2", BDRV_O_RDWR | BDRV_O_CACHE_WB);
        ret = bdrv_pwrite(bs, 65536, buf, sizeof(buf));
        if (ret == 0) {
            ret = bdrv_flush(bs);
        }
        uint64_t injected;
        (void)count_of(BDRV_FAULT_WRITE, &injected);
        /* Whenever a write failed, the write or its flush said so. */
        ck_assert_msg(injected == 0 || ret == -EIO, "write:%d: %d after an injected EIO", n,
                      ret);
        failed += injected != 0;
        bdrv_close(bs);

        bdrv_fault_arm(NULL);
        bs = open_img(P("a.qcow2"), "qcow2", 0);
        ck_assert_int_eq(bdrv_check(bs, &r, 0, &err), 0);
        ck_assert_msg(r.corruptions == 0, "write:%d: %d corruptions", n, r.corruptions);
        bdrv_close(bs);
    }
    /* The loop must have hit real writes, or it tested nothing. */
    ck_assert_int_ge(failed, 3);
}
END_TEST

static Suite *fault_suite(void)
{
    Suite *s = suite_create("fault");
    TCase *tc = tcase_create("faulty");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, fault_parse_accepts_the_documented_rules_only);
    tcase_add_test(tc, fault_disarmed_process_opens_plain_file_nodes);
    tcase_add_test(tc, fault_read_fails_only_the_nth_with_eio);
    tcase_add_test(tc, fault_sticky_enospc_fails_every_later_write);
    tcase_add_test(tc, fault_torn_write_keeps_whole_sectors_of_its_first_half);
    tcase_add_test(tc, fault_torn_write_inside_one_sector_writes_nothing);
    tcase_add_test(tc, fault_flush_fails_once);
    tcase_add_test(tc, fault_count_rule_counts_without_failing);
    tcase_add_test(tc, fault_qcow2_write_errors_reach_the_caller);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * Interop 522 runs this binary (the library linked in, so no search path
 * is needed, which a set-user-ID program would not honour) with
 * QBT_FAULT_ENV_CHILD naming a file and LIBQBLOCK_FAULT_INJECT set, once
 * plainly and once set-user-ID: it opens the file, reads its first sector
 * and prints what it ran as, which node the file got and the read's result.
 */
static int env_child(const char *file)
{
    BdrvError err = { 0 };
    BlockDriverState *bs = NULL;
    uint8_t buf[512];
    int ret = bdrv_file_open(&bs, file, 0, &err);

    if (ret < 0) {
        fprintf(stderr, "env child: open %s: %s\n", file, err.msg);
        return 1;
    }
    ret = bdrv_pread(bs, 0, buf, sizeof(buf));
    printf("euid=%u node=%s read=%s\n", (unsigned)geteuid(),
           bs->drv == &bdrv_faulty ? "faulty" : bs->drv == &bdrv_file ? "file" : "other",
           ret == 0 ? "ok" : strerror(-ret));
    bdrv_close(bs);
    /*
     * Past LeakSanitizer's check at exit: in a sanitized build it cannot
     * inspect a set-user-ID process (not dumpable, its /proc files closed
     * to it) and would fail the run. Nothing is left allocated here.
     */
    fflush(stdout);
    _exit(0);
}

int main(void)
{
    const char *child = getenv("QBT_FAULT_ENV_CHILD");

    if (child) {
        return env_child(child);
    }
    /* The faults are logged; keep them out of the test's output. */
    setenv("LIBQBLOCK_FAULT_LOG", "/dev/null", 1);
    return run_suite(fault_suite());
}
