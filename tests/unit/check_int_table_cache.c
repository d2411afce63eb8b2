/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_table_cache.c: white-box tests of the page cache of table
 * entries that qcow and qed share (block/table-cache.c): both byte orders,
 * entries across a page boundary, how much of a page a change writes,
 * least-recently-used eviction, and that a failed read or write leaves no
 * page the disk may not hold. The file itself, read and changed with plain
 * POSIX calls behind the cache's back, is the oracle. A page that cannot be
 * allocated is covered by the OOM sweep over qcow and qed (interop 521).
 */

#define _GNU_SOURCE

#define QBINT_NAME "check_int_table_cache"
#define QBINT_BIG_ENDIAN
#define QBINT_FMT_CREATE "raw"
#include "qbint.h"

#include "block/fault.h"
#include "../../block/table-cache.h"

enum { PAGE = 4096, FILE_BYTES = 4 * PAGE };

static uint64_t get(TableCache *tc, BlockDriverState *bs, uint64_t off)
{
    uint64_t v = 0;
    int ret = table_cache_get(tc, bs, off, &v);

    ck_assert_msg(ret == 0, "get at %" PRIu64 ": %d", off, ret);
    return v;
}

static uint64_t file_le64(const char *name, uint64_t off)
{
    uint8_t b[8];
    file_read(P(name), off, b, 8);
    return le64_load(b);
}

START_TEST(table_cache_both_byte_orders_across_a_page_boundary)
{
    BlockDriverState *bs = open_file_node("f", FILE_BYTES, 0);
    TableCache be, le;

    /* Three entries from 8 bytes before the end of page 0: two pages change. */
    table_cache_init(&be, 4, PAGE, 8, true);
    ck_assert_int_eq(table_cache_set(&be, bs, PAGE - 8, 3, 0x0102030405060708ull, 0x100), 0);
    ck_assert_uint_eq(rd64(P("f"), PAGE - 8), 0x0102030405060708ull);
    ck_assert_uint_eq(rd64(P("f"), PAGE), 0x0102030405060808ull);
    ck_assert_uint_eq(rd64(P("f"), PAGE + 8), 0x0102030405060908ull);
    ck_assert_uint_eq(rd64(P("f"), PAGE + 16), 0);
    ck_assert_uint_eq(get(&be, bs, PAGE + 8), 0x0102030405060908ull);
    table_cache_free(&be);

    table_cache_init(&le, 4, PAGE, 8, false);
    ck_assert_int_eq(table_cache_set(&le, bs, 2 * PAGE, 1, 0x1122334455667788ull, 0), 0);
    ck_assert_uint_eq(file_le64("f", 2 * PAGE), 0x1122334455667788ull);
    /* What the big-endian cache wrote reads back byte-swapped. */
    ck_assert_uint_eq(get(&le, bs, PAGE - 8), 0x0807060504030201ull);
    ck_assert_uint_eq(get(&le, bs, 2 * PAGE), 0x1122334455667788ull);
    table_cache_free(&le);
    bdrv_close(bs);
}
END_TEST

/*
 * With write_align 8 a change writes its entries alone; with a sector, the
 * whole sectors around them, from the cached page. A byte changed behind
 * the cache's back next to the entry tells which.
 */
START_TEST(table_cache_writes_whole_units_of_write_align)
{
    BlockDriverState *bs = open_file_node("f", FILE_BYTES, 0);
    TableCache tc;
    uint8_t b;

    table_cache_init(&tc, 4, PAGE, 8, true);
    ck_assert_uint_eq(get(&tc, bs, 64), 0);
    file_write(P("f"), 72, "\x5a", 1);
    ck_assert_int_eq(table_cache_set(&tc, bs, 64, 1, 7, 0), 0);
    file_read(P("f"), 72, &b, 1);
    ck_assert_uint_eq(b, 0x5a);
    table_cache_free(&tc);

    table_cache_init(&tc, 4, PAGE, BDRV_SECTOR_SIZE, true);
    file_write(P("f"), 72, "\0", 1);
    ck_assert_uint_eq(get(&tc, bs, 64), 7);
    file_write(P("f"), 72, "\x5a", 1);
    file_write(P("f"), 512, "\x5a", 1);
    ck_assert_int_eq(table_cache_set(&tc, bs, 64, 1, 8, 0), 0);
    ck_assert_uint_eq(rd64(P("f"), 64), 8);
    file_read(P("f"), 72, &b, 1);
    ck_assert_uint_eq(b, 0);      /* the cached sector went back whole */
    file_read(P("f"), 512, &b, 1);
    ck_assert_uint_eq(b, 0x5a);   /* the next sector was not written */
    table_cache_free(&tc);
    bdrv_close(bs);
}
END_TEST

START_TEST(table_cache_evicts_the_least_recently_used_page)
{
    BlockDriverState *bs = open_file_node("f", FILE_BYTES, 0);
    TableCache tc;

    table_cache_init(&tc, 2, PAGE, 8, true);
    get(&tc, bs, 0);
    get(&tc, bs, PAGE);
    get(&tc, bs, 8);            /* page 0 again: page 1 is now the older */
    get(&tc, bs, 2 * PAGE);     /* evicts page 1 */
    wr64(P("f"), 16, 1);
    wr64(P("f"), PAGE + 16, 2);
    ck_assert_uint_eq(get(&tc, bs, 16), 0);          /* still cached */
    ck_assert_uint_eq(get(&tc, bs, PAGE + 16), 2);   /* read again */
    /* Invalidating forgets exactly the pages the range touches. */
    wr64(P("f"), PAGE + 24, 3);
    table_cache_invalidate(&tc, PAGE - 1, 1);
    ck_assert_uint_eq(get(&tc, bs, PAGE + 24), 0);   /* page 1 was not in the range */
    table_cache_invalidate(&tc, PAGE - 1, 2);
    ck_assert_uint_eq(get(&tc, bs, PAGE + 24), 3);
    table_cache_free(&tc);

    /* Slot counts are clamped to 1..TABLE_CACHE_MAX_SLOTS. */
    table_cache_init(&tc, 0, PAGE, 8, true);
    ck_assert_uint_eq(tc.nslots, 1);
    ck_assert_uint_eq(get(&tc, bs, 0), 0);
    ck_assert_uint_eq(get(&tc, bs, PAGE + 16), 2);
    table_cache_free(&tc);
    table_cache_init(&tc, 1000, PAGE, 8, true);
    ck_assert_uint_eq(tc.nslots, TABLE_CACHE_MAX_SLOTS);
    table_cache_free(&tc);
    bdrv_close(bs);
}
END_TEST

/* A failed read leaves no slot claiming the page; a failed write drops the page. */
START_TEST(table_cache_failed_io_leaves_no_page_the_disk_may_not_hold)
{
    BdrvFaultRule rule;
    BlockDriverState *bs;
    TableCache tc;
    uint64_t v = 99;

    ck_assert_int_eq(bdrv_fault_parse("read:1:eio", &rule), 0);
    bdrv_fault_arm(&rule);
    bs = open_file_node("f", FILE_BYTES, 0);
    ck_assert_ptr_eq(bs->drv, &bdrv_faulty);
    table_cache_init(&tc, 2, PAGE, 8, true);
    ck_assert_int_eq(table_cache_get(&tc, bs, 0, &v), -EIO);
    ck_assert_uint_eq(v, 99);
    wr64(P("f"), 0, 5);
    ck_assert_uint_eq(get(&tc, bs, 0), 5);
    table_cache_free(&tc);
    bdrv_close(bs);

    ck_assert_int_eq(bdrv_fault_parse("write:1:eio", &rule), 0);
    bdrv_fault_arm(&rule);
    bs = open_file_node("f", FILE_BYTES, 0);
    table_cache_init(&tc, 2, PAGE, 8, true);
    ck_assert_uint_eq(get(&tc, bs, 0), 0);
    ck_assert_int_eq(table_cache_set(&tc, bs, 0, 1, 6, 0), -EIO);
    /* The disk kept the old entry, and so must the next read. */
    ck_assert_uint_eq(rd64(P("f"), 0), 0);
    ck_assert_uint_eq(get(&tc, bs, 0), 0);
    ck_assert_int_eq(table_cache_set(&tc, bs, 0, 1, 6, 0), 0);
    ck_assert_uint_eq(rd64(P("f"), 0), 6);
    table_cache_free(&tc);
    bdrv_close(bs);
    bdrv_fault_arm(NULL);
}
END_TEST

static Suite *table_cache_suite(void)
{
    Suite *s = suite_create("table_cache");
    TCase *tc = tcase_create("table_cache");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, table_cache_both_byte_orders_across_a_page_boundary);
    tcase_add_test(tc, table_cache_writes_whole_units_of_write_align);
    tcase_add_test(tc, table_cache_evicts_the_least_recently_used_page);
    tcase_add_test(tc, table_cache_failed_io_leaves_no_page_the_disk_may_not_hold);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    setenv("LIBQBLOCK_FAULT_LOG", "/dev/null", 1);
    return run_suite(table_cache_suite());
}
