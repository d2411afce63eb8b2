/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_rmw.c: unaligned reads and writes (read-modify-write of partial
 * sectors) checked byte for byte against a shadow copy in memory and against
 * the host file, with the page cache and with LIBQBLOCK_O_NOCACHE (O_DIRECT).
 *
 * Every write is followed by a comparison of the whole image with the shadow,
 * so a read-modify-write that clobbers a neighbouring byte is caught at once.
 * The data comes from a seeded PRNG; the seed is printed and QB_TEST_SEED
 * replays a run.
 */
#include "qbtest.h"

/* Each test runs once per cache mode (the loop index of tcase_add_loop_test). */
static const int cache_modes[] = { 0, LIBQBLOCK_O_NOCACHE };
static const char *const cache_names[] = { "cached", "nocache" };

typedef struct Rmw {
    QBroker *b;
    QBlockState *qbs;
    char path[PATH_MAX];
    uint64_t size;      /* virtual size: not a multiple of 4 KiB, to test the last sector */
    uint8_t *shadow;    /* what every byte of the image must read */
    uint8_t *scratch;   /* whole-image read buffer */
    uint8_t *data;      /* write source, one byte past an aligned address */
    uint8_t *data_base;
    QbtRng rng;
    const char *mode;
} Rmw;

/* The largest "several MiB" request; smaller under valgrind or QB_TEST_QUICK. */
static uint64_t big_len(void)
{
    return qbt_quick() ? 768 * 1024 + 3 : 3 * 1024 * 1024 + 5;
}

static void rmw_init(Rmw *r, const char *name, int mode_index)
{
    char fname[128];
    int ret;

    memset(r, 0, sizeof(*r));
    r->mode = cache_names[mode_index];
    r->size = (qbt_quick() ? 1024 * 1024 : 4 * 1024 * 1024) + 1536;
    ck_assert_int_eq(qb_broker_new(&r->b), 0);
    snprintf(fname, sizeof(fname), "%s-%s.raw", name, r->mode);
    qbt_path(r->path, sizeof(r->path), fname);
    qbt_create_raw(r->b, r->path, r->size);
    ck_assert_int_eq(qbt_file_size(r->path), (off_t)r->size);

    r->shadow = calloc(1, r->size);
    r->scratch = malloc(r->size + 2);
    r->data_base = malloc(r->size + 64);
    ck_assert_ptr_nonnull(r->shadow);
    ck_assert_ptr_nonnull(r->scratch);
    ck_assert_ptr_nonnull(r->data_base);
    /* An odd address: the library must not assume the caller's buffer is aligned. */
    r->data = r->data_base + 1;
    qbt_rng_seed(&r->rng, qbt_seed(name) ^ (uint64_t)mode_index);

    ck_assert_int_eq(qb_state_new(r->b, &r->qbs), 0);
    {
        QBlockProtInfo loc = qbt_loc(r->path);
        QBlockFmtInfo fmt;

        memset(&fmt, 0, sizeof(fmt));
        fmt.fmt_type = QB_FMT_RAW;
        ret = qb_open(r->b, r->qbs, &loc, &fmt, LIBQBLOCK_O_RDWR | cache_modes[mode_index]);
        ck_assert_msg(ret == 0, "qb_open %s (%s): %d %s%s", r->path, r->mode, ret,
                      qbt_msg(r->b),
                      mode_index ? " (does the file system of TMPDIR support O_DIRECT?)" : "");
    }
}

static void rmw_fini(Rmw *r)
{
    qbt_close(r->b, &r->qbs);
    qb_broker_delete(&r->b);
    free(r->shadow);
    free(r->scratch);
    free(r->data_base);
}

static void assert_same(const uint8_t *got, const uint8_t *want, uint64_t len, uint64_t base,
                        const char *what, const Rmw *r)
{
    if (memcmp(got, want, len) != 0) {
        uint64_t i = 0;

        while (got[i] == want[i]) {
            i++;
        }
        ck_abort_msg("%s (%s): first difference at image byte %" PRIu64 ": got 0x%02x, want 0x%02x",
                     what, r->mode, base + i, got[i], want[i]);
    }
}

/* The whole image, read through libqblock and from the host file, equals the shadow. */
static void verify_all(Rmw *r, const char *after)
{
    int64_t n;
    uint8_t *dst = r->scratch + 1;   /* an unaligned destination */
    char what[160];

    n = qb_read(r->b, r->qbs, dst, r->size, 0);
    ck_assert_msg(n == (int64_t)r->size, "whole-image qb_read: %" PRId64 " %s", n, qbt_msg(r->b));
    snprintf(what, sizeof(what), "qb_read after %s", after);
    assert_same(dst, r->shadow, r->size, 0, what, r);
    qbt_pread_file(r->path, r->scratch, r->size, 0);
    snprintf(what, sizeof(what), "host file after %s", after);
    assert_same(r->scratch, r->shadow, r->size, 0, what, r);
}

/* Writes fresh random bytes to [off, off+len) and mirrors them in the shadow. */
static void rmw_write(Rmw *r, uint64_t off, uint64_t len)
{
    int64_t n;

    ck_assert_uint_le(off + len, r->size);
    qbt_rng_fill(&r->rng, r->data, len);
    n = qb_write(r->b, r->qbs, r->data, len, off);
    ck_assert_msg(n == (int64_t)len, "qb_write(len %" PRIu64 ", offset %" PRIu64 ") (%s): %" PRId64
                  " %s", len, off, r->mode, n, qbt_msg(r->b));
    memcpy(r->shadow + off, r->data, len);
}

/* Reads [off, off+len) into a guarded buffer and compares it with the shadow. */
static void rmw_read_check(Rmw *r, uint64_t off, uint64_t len)
{
    const size_t guard = 61;   /* odd, so the destination is unaligned too */
    uint8_t *buf = malloc(len + 2 * guard);
    int64_t n;
    char what[128];

    ck_assert_ptr_nonnull(buf);
    memset(buf, 0xe5, len + 2 * guard);
    n = qb_read(r->b, r->qbs, buf + guard, len, off);
    ck_assert_msg(n == (int64_t)len, "qb_read(len %" PRIu64 ", offset %" PRIu64 ") (%s): %" PRId64
                  " %s", len, off, r->mode, n, qbt_msg(r->b));
    snprintf(what, sizeof(what), "qb_read(len %" PRIu64 ", offset %" PRIu64 ")", len, off);
    assert_same(buf + guard, r->shadow + off, len, off, what, r);
    for (size_t i = 0; i < guard; i++) {
        if (buf[i] != 0xe5 || buf[guard + len + i] != 0xe5) {
            ck_abort_msg("%s (%s) wrote outside the buffer", what, r->mode);
        }
    }
    free(buf);
}

/* Fills the whole image (and shadow) with random bytes, in one write. */
static void rmw_fill(Rmw *r)
{
    rmw_write(r, 0, r->size);
    verify_all(r, "the initial fill");
}

static const uint64_t heads[] = { 0, 1, 255, 511 };

/* The request lengths of the combinations; the last is "several MiB". */
static uint64_t combo_len(size_t i)
{
    static const uint64_t lens[] = { 1, 511, 512, 513, 1023, 4096 + 7 };

    return i < sizeof(lens) / sizeof(lens[0]) ? lens[i] : big_len();
}
#define N_LENS 7

/*
 * Three places for each head and length: the start of the image, the middle
 * (crossing a 4 KiB page boundary for the short ones), and as close to the
 * end as the head allows, so the last sector is written too.
 */
static uint64_t combo_offset(const Rmw *r, int where, uint64_t head, uint64_t len)
{
    uint64_t off;

    switch (where) {
    case 0:
        off = head;
        break;
    case 1:
        off = (r->size / 2 / 4096) * 4096 - 512 + head;
        if (off + len > r->size) {
            /* Too long for the middle: centre it instead. */
            off = (r->size - len) / 2 / 512 * 512 + head;
        }
        break;
    default:
        off = (r->size - len) / 512 * 512 + head;
        break;
    }
    while (off + len > r->size) {
        off -= 512;
    }
    return off;
}

START_TEST(rmw_write_alignment_combinations_match_shadow)
{
    Rmw r;

    rmw_init(&r, "write-combos", _i);
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        for (size_t l = 0; l < N_LENS; l++) {
            for (int where = 0; where < 3; where++) {
                uint64_t len = combo_len(l);
                uint64_t off = combo_offset(&r, where, heads[h], len);
                char after[96];

                rmw_write(&r, off, len);
                snprintf(after, sizeof(after), "qb_write(len %" PRIu64 ", offset %" PRIu64 ")",
                         len, off);
                verify_all(&r, after);
            }
        }
    }
    rmw_fini(&r);
}
END_TEST

START_TEST(rmw_read_alignment_combinations_match_shadow)
{
    Rmw r;

    rmw_init(&r, "read-combos", _i);
    rmw_fill(&r);
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        for (size_t l = 0; l < N_LENS; l++) {
            for (int where = 0; where < 3; where++) {
                uint64_t len = combo_len(l);

                rmw_read_check(&r, combo_offset(&r, where, heads[h], len), len);
            }
        }
    }
    rmw_fini(&r);
}
END_TEST

START_TEST(rmw_last_sector_edges_match_shadow)
{
    static const uint64_t lens[] = { 1, 2, 100, 511, 512, 513, 1000, 1536, 4097 };
    Rmw r;

    rmw_init(&r, "last-sector", _i);
    rmw_fill(&r);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char after[64];

        /* Ending exactly at the end of the image. */
        rmw_write(&r, r.size - lens[i], lens[i]);
        snprintf(after, sizeof(after), "a write of %" PRIu64 " ending at the end", lens[i]);
        verify_all(&r, after);
        rmw_read_check(&r, r.size - lens[i], lens[i]);
        /* Ending one byte before it. */
        rmw_write(&r, r.size - lens[i] - 1, lens[i]);
        verify_all(&r, "a write ending one byte before the end");
        rmw_read_check(&r, r.size - lens[i] - 1, lens[i]);
    }
    rmw_write(&r, r.size - 1, 1);
    rmw_read_check(&r, r.size - 1, 1);
    rmw_read_check(&r, r.size - 513, 513);
    verify_all(&r, "the last byte");
    /* Nothing was written past the end. */
    ck_assert_int_eq(qbt_file_size(r.path), (off_t)r.size);
    rmw_fini(&r);
}
END_TEST

START_TEST(rmw_many_sectors_and_whole_image)
{
    Rmw r;

    rmw_init(&r, "whole", _i);
    rmw_fill(&r);
    /* Requests crossing many sectors with both edges unaligned. */
    rmw_write(&r, 1, r.size - 2);
    verify_all(&r, "everything but the first and last byte");
    rmw_write(&r, 511, r.size / 2);
    verify_all(&r, "half the image from byte 511");
    rmw_write(&r, 12345, 65536 * 3 + 17);
    verify_all(&r, "200 KiB at 12345");
    rmw_read_check(&r, 0, r.size);
    rmw_read_check(&r, 1, r.size - 1);
    rmw_read_check(&r, 0, r.size - 1);
    rmw_read_check(&r, 257, r.size - 514);
    /* And the whole image in one aligned write. */
    rmw_write(&r, 0, r.size);
    verify_all(&r, "a whole-image write");
    rmw_fini(&r);
}
END_TEST

START_TEST(rmw_adjacent_small_writes_in_one_sector)
{
    Rmw r;
    const uint64_t base = 8192;

    rmw_init(&r, "adjacent", _i);
    rmw_fill(&r);
    /* Byte-by-byte across a sector boundary, then small runs that tile a sector. */
    for (uint64_t off = base + 500; off < base + 530; off++) {
        rmw_write(&r, off, 1);
    }
    verify_all(&r, "single bytes across a sector boundary");
    for (uint64_t off = base + 1024; off < base + 2048; off += 37) {
        rmw_write(&r, off, 37);
    }
    verify_all(&r, "37-byte runs tiling two sectors");
    rmw_fini(&r);
}
END_TEST

START_TEST(rmw_random_ops_match_shadow)
{
    Rmw r;
    int ops = qbt_quick() ? 60 : 400;

    rmw_init(&r, "random", _i);
    rmw_fill(&r);
    for (int i = 0; i < ops; i++) {
        uint64_t kind = qbt_rng_below(&r.rng, 4);
        uint64_t len, off;

        /* Mostly short requests; one in four up to 256 KiB. */
        len = kind == 0 ? 1 + qbt_rng_below(&r.rng, 256 * 1024) : 1 + qbt_rng_below(&r.rng, 3000);
        off = qbt_rng_below(&r.rng, r.size - len + 1);
        if (qbt_rng_below(&r.rng, 2)) {
            char after[96];

            rmw_write(&r, off, len);
            /* A whole-image check every few operations keeps the test fast. */
            if (i % 8 == 0) {
                snprintf(after, sizeof(after), "random op %d: qb_write(len %" PRIu64
                         ", offset %" PRIu64 ")", i, len, off);
                verify_all(&r, after);
            }
        } else {
            rmw_read_check(&r, off, len);
        }
    }
    verify_all(&r, "the random operations");
    rmw_fini(&r);
}
END_TEST

/* After closing and reopening (other cache mode), the data is still the shadow. */
START_TEST(rmw_survives_reopen_in_other_mode)
{
    Rmw r;
    QBlockProtInfo loc;

    rmw_init(&r, "reopen", _i);
    rmw_fill(&r);
    for (int i = 0; i < 20; i++) {
        rmw_write(&r, (uint64_t)i * 1031 + 3, 700);
    }
    ck_assert_int_eq(qb_close(r.b, r.qbs), 0);
    loc = qbt_loc(r.path);
    qbt_allow_raw_guess(r.b, r.qbs);
    ck_assert_int_eq(qb_open(r.b, r.qbs, &loc, NULL,
                             LIBQBLOCK_O_RDWR | cache_modes[1 - _i]), 0);
    verify_all(&r, "reopening in the other cache mode");
    rmw_fini(&r);
}
END_TEST

static Suite *rmw_suite(void)
{
    Suite *s = suite_create("rmw");
    TCase *tc;

    tc = tcase_create("write");
    tcase_add_loop_test(tc, rmw_write_alignment_combinations_match_shadow, 0, 2);
    tcase_add_loop_test(tc, rmw_adjacent_small_writes_in_one_sector, 0, 2);
    tcase_add_loop_test(tc, rmw_many_sectors_and_whole_image, 0, 2);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    tc = tcase_create("read");
    tcase_add_loop_test(tc, rmw_read_alignment_combinations_match_shadow, 0, 2);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    tc = tcase_create("edges");
    tcase_add_loop_test(tc, rmw_last_sector_edges_match_shadow, 0, 2);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_add_loop_test(tc, rmw_random_ops_match_shadow, 0, 2);
    tcase_add_loop_test(tc, rmw_survives_reopen_in_other_mode, 0, 2);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(rmw_suite(), argv[0]);
}
