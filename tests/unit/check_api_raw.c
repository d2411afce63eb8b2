/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_api_raw.c: the whole public API on raw images, checked against the
 * host file itself (a raw image is its bytes) and, where it is installed,
 * against qemu-img.
 */
#include "qbtest.h"

#include <sys/wait.h>

#define MiB (1024 * 1024)

typedef struct Env {
    QBroker *b;
    QBlockState *qbs;
    char path[PATH_MAX];
} Env;

/* A broker and the path of a fresh raw image of @size made by qb_create. */
static void env_init(Env *e, const char *name, uint64_t size)
{
    memset(e, 0, sizeof(*e));
    ck_assert_int_eq(qb_broker_new(&e->b), 0);
    qbt_path(e->path, sizeof(e->path), name);
    qbt_create_raw(e->b, e->path, size);
}

static void env_fini(Env *e)
{
    if (e->qbs) {
        qbt_close(e->b, &e->qbs);
    }
    qb_broker_delete(&e->b);
}

#define EXPECT_OK(b, expr, value)                                                           \
    do {                                                                                    \
        int64_t r_ = (int64_t)(expr);                                                      \
        ck_assert_msg(r_ == (int64_t)(value), "%s: expected %" PRId64 ", got %" PRId64     \
                      " (%s)", #expr, (int64_t)(value), r_, qbt_msg(b));                    \
    } while (0)

static int64_t allocated_bytes(const char *path)
{
    struct stat st;

    ck_assert_int_eq(stat(path, &st), 0);
    return (int64_t)st.st_blocks * 512;
}

static void assert_zeros(const uint8_t *buf, size_t len, const char *what)
{
    qbt_assert_bytes(buf, 0, len, what);
}

static void assert_bytes(const uint8_t *buf, uint8_t v, size_t len, const char *what)
{
    qbt_assert_bytes(buf, v, len, what);
}

/* ------------------------------------------------------------------ */
/* qb_create                                                           */

START_TEST(create_size_rounds_up_to_sector)
{
    static const uint64_t sizes[] = { 0, 1, 511, 512, 513, 1000, 65537, 3 * MiB - 100 };
    const char *qimg = qbt_qemu_img();
    QBroker *b = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char path[PATH_MAX], name[64];
        uint64_t expect = (sizes[i] + 511) / 512 * 512;
        QBlockState *qbs;
        QBlockStaticInfo *info = NULL;

        snprintf(name, sizeof(name), "round-%zu.raw", i);
        qbt_path(path, sizeof(path), name);
        qbt_create_raw(b, path, sizes[i]);
        ck_assert_msg((uint64_t)qbt_file_size(path) == expect, "size %" PRIu64 ": file is %jd",
                      sizes[i], (intmax_t)qbt_file_size(path));
        qbs = qbt_open(b, path, 0, 0);
        EXPECT_OK(b, qb_info_image_static_get(b, qbs, &info), 0);
        ck_assert_uint_eq(info->virt_size, expect);
        qb_info_image_static_delete(b, &info);
        qbt_close(b, &qbs);

        /* qemu-img rounds the same way. */
        if (qimg) {
            char cmd[PATH_MAX * 2 + 64], qpath[PATH_MAX];

            snprintf(name, sizeof(name), "round-%zu.qemu.raw", i);
            qbt_path(qpath, sizeof(qpath), name);
            snprintf(cmd, sizeof(cmd), "'%s' create -q -f raw '%s' %" PRIu64, qimg, qpath,
                     sizes[i]);
            ck_assert_int_eq(system(cmd), 0);
            ck_assert_int_eq(qbt_file_size(qpath), qbt_file_size(path));
        }
    }
    if (!qimg) {
        fprintf(stderr, "NOTE: qemu-img not found; sizes checked against 512-byte rounding only\n");
    }
    qb_broker_delete(&b);
}
END_TEST

START_TEST(create_overwrites_existing_file_with_zeros)
{
    Env e;
    uint8_t *buf = malloc(MiB);

    ck_assert_ptr_nonnull(buf);
    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(qb_broker_new(&e.b), 0);
    qbt_path(e.path, sizeof(e.path), "overwrite.raw");
    qbt_make_sparse_file(e.path, MiB);
    memset(buf, 0xab, MiB);
    qbt_pwrite_file(e.path, buf, MiB, 0);

    qbt_create_raw(e.b, e.path, 65536);
    ck_assert_int_eq(qbt_file_size(e.path), 65536);
    qbt_pread_file(e.path, buf, 65536, 0);
    assert_zeros(buf, 65536, "recreated image");
    free(buf);
    env_fini(&e);
}
END_TEST

/* Creates a 4 MiB raw image with @opts through qb_fmt_info_set_options. */
static void create_with_options(QBroker *b, const char *path, const char *opts)
{
    QBlockFmtInfo *fmt = NULL;
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);

    ck_assert_int_eq(qb_fmt_info_new(b, &fmt), 0);
    fmt->fmt_type = QB_FMT_RAW;
    EXPECT_OK(b, qb_fmt_info_set_options(b, fmt, opts), 0);
    ck_assert_uint_eq(fmt->fmt_op.o_raw.virt_size, 4 * MiB);
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    EXPECT_OK(b, qb_create(b, qbs, &loc, fmt, 0), 0);
    qb_state_delete(b, &qbs);
    qb_fmt_info_delete(b, &fmt);
}

START_TEST(create_preallocation_modes_allocate)
{
    QBroker *b = NULL;
    char path[PATH_MAX];
    uint8_t *buf = malloc(4 * MiB);

    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(qb_broker_new(&b), 0);

    /* off: a sparse file (qemu-img itself allocates at most the first block). */
    qbt_path(path, sizeof(path), "prealloc-off.raw");
    create_with_options(b, path, "size=4M,preallocation=off");
    ck_assert_int_eq(qbt_file_size(path), 4 * MiB);
    ck_assert_msg(allocated_bytes(path) <= 65536, "preallocation=off allocated %" PRId64,
                  allocated_bytes(path));

    /* Default (no preallocation option) is off too. */
    qbt_path(path, sizeof(path), "prealloc-default.raw");
    create_with_options(b, path, "size=4M");
    ck_assert_msg(allocated_bytes(path) <= 65536, "default allocated %" PRId64,
                  allocated_bytes(path));

    qbt_path(path, sizeof(path), "prealloc-falloc.raw");
    create_with_options(b, path, "size=4M,preallocation=falloc");
    ck_assert_int_eq(qbt_file_size(path), 4 * MiB);
    ck_assert_msg(allocated_bytes(path) >= 4 * MiB, "falloc allocated %" PRId64,
                  allocated_bytes(path));
    qbt_pread_file(path, buf, 4 * MiB, 0);
    assert_zeros(buf, 4 * MiB, "falloc image");

    qbt_path(path, sizeof(path), "prealloc-full.raw");
    create_with_options(b, path, "preallocation=full,size=4M");
    ck_assert_int_eq(qbt_file_size(path), 4 * MiB);
    ck_assert_msg(allocated_bytes(path) >= 4 * MiB, "full allocated %" PRId64,
                  allocated_bytes(path));
    qbt_pread_file(path, buf, 4 * MiB, 0);
    assert_zeros(buf, 4 * MiB, "full image");

    free(buf);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(create_preallocation_struct_member_allocates)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    char path[PATH_MAX];
    QBlockProtInfo loc;
    QBlockFmtInfo fmt;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "prealloc-struct.raw");
    loc = qbt_loc(path);
    memset(&fmt, 0, sizeof(fmt));
    fmt.fmt_type = QB_FMT_RAW;
    fmt.fmt_op.o_raw.virt_size = 2 * MiB + 512;
    fmt.fmt_op.o_raw.pre_mode = QBO_FMT_RAW_PREALLOC_FULL;
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    EXPECT_OK(b, qb_create(b, qbs, &loc, &fmt, 0), 0);
    ck_assert_int_eq(qbt_file_size(path), 2 * MiB + 512);
    ck_assert_int_ge(allocated_bytes(path), 2 * MiB + 512);
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(create_does_not_open_state)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    char path[PATH_MAX];
    QBlockProtInfo loc;
    QBlockFmtInfo fmt;
    uint8_t buf[512];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "not-opened.raw");
    loc = qbt_loc(path);
    memset(&fmt, 0, sizeof(fmt));
    fmt.fmt_type = QB_FMT_RAW;
    fmt.fmt_op.o_raw.virt_size = 65536;
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    EXPECT_OK(b, qb_create(b, qbs, &loc, &fmt, 0), 0);
    EXPECT_OK(b, qb_read(b, qbs, buf, sizeof(buf), 0), QB_ERR_INVALID_PARAM);
    EXPECT_OK(b, qb_close(b, qbs), QB_ERR_INVALID_PARAM);
    /* The same state then opens the image it made. */
    EXPECT_OK(b, qb_open(b, qbs, &loc, &fmt, LIBQBLOCK_O_RDWR), 0);
    EXPECT_OK(b, qb_read(b, qbs, buf, sizeof(buf), 0), sizeof(buf));
    assert_zeros(buf, sizeof(buf), "new image");
    EXPECT_OK(b, qb_close(b, qbs), 0);
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_open                                                             */

START_TEST(open_probed_and_explicit_raw)
{
    Env e;
    QBlockStaticInfo *info = NULL;
    QBlockProtInfo loc;
    QBlockFmtInfo fmt;

    env_init(&e, "probe.raw", MiB);
    /* fmt NULL probes. */
    e.qbs = qbt_open(e.b, e.path, 1, 0);
    EXPECT_OK(e.b, qb_info_image_static_get(e.b, e.qbs, &info), 0);
    ck_assert_int_eq(info->fmt_type, QB_FMT_RAW);
    qb_info_image_static_delete(e.b, &info);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);

    /* fmt_type QB_FMT_NONE probes too. */
    loc = qbt_loc(e.path);
    memset(&fmt, 0, sizeof(fmt));
    EXPECT_OK(e.b, qb_open(e.b, e.qbs, &loc, &fmt, LIBQBLOCK_O_RDWR), 0);
    EXPECT_OK(e.b, qb_info_image_static_get(e.b, e.qbs, &info), 0);
    ck_assert_int_eq(info->fmt_type, QB_FMT_RAW);
    qb_info_image_static_delete(e.b, &info);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);

    /* Explicit raw. */
    fmt.fmt_type = QB_FMT_RAW;
    EXPECT_OK(e.b, qb_open(e.b, e.qbs, &loc, &fmt, 0), 0);
    EXPECT_OK(e.b, qb_info_image_static_get(e.b, e.qbs, &info), 0);
    ck_assert_int_eq(info->fmt_type, QB_FMT_RAW);
    ck_assert_uint_eq(info->virt_size, MiB);
    qb_info_image_static_delete(e.b, &info);
    env_fini(&e);
}
END_TEST

START_TEST(open_close_reopen_same_state_keeps_data)
{
    Env e;
    uint8_t data[4096], back[4096];

    env_init(&e, "reopen.raw", MiB);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    for (int round = 0; round < 5; round++) {
        memset(data, 0x10 + round, sizeof(data));
        EXPECT_OK(e.b, qb_write(e.b, e.qbs, data, sizeof(data), (uint64_t)round * 100000),
                  sizeof(data));
        EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
        qbt_allow_raw_guess(e.b, e.qbs);
        EXPECT_OK(e.b, qb_open(e.b, e.qbs, &(QBlockProtInfo){ .prot_type = QB_PROT_FILE,
                                .prot_op.o_file.filename = e.path }, NULL, LIBQBLOCK_O_RDWR), 0);
    }
    for (int round = 0; round < 5; round++) {
        EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, sizeof(back), (uint64_t)round * 100000),
                  sizeof(back));
        assert_bytes(back, (uint8_t)(0x10 + round), sizeof(back), "reopened data");
    }
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_read / qb_write                                                  */

START_TEST(read_write_round_trip_matches_host_file)
{
    static const struct {
        uint64_t off, len;
    } spots[] = {
        { 0, 512 }, { 512, 4096 }, { 3, 5 }, { 1000, 3000 }, { 65536 - 7, 14 },
        { 2 * MiB - 512, 512 }, { 2 * MiB - 1, 1 }, { 777777, 200000 }, { 0, 2 * MiB },
    };
    Env e;
    QbtRng rng;
    uint8_t *data = malloc(2 * MiB), *back = malloc(2 * MiB), *shadow = calloc(1, 2 * MiB);

    ck_assert_ptr_nonnull(data);
    ck_assert_ptr_nonnull(back);
    ck_assert_ptr_nonnull(shadow);
    qbt_rng_seed(&rng, 42);
    env_init(&e, "roundtrip.raw", 2 * MiB);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
        qbt_rng_fill(&rng, data, spots[i].len);
        EXPECT_OK(e.b, qb_write(e.b, e.qbs, data, spots[i].len, spots[i].off), spots[i].len);
        memcpy(shadow + spots[i].off, data, spots[i].len);
        memset(back, 0, spots[i].len);
        EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, spots[i].len, spots[i].off), spots[i].len);
        ck_assert_msg(memcmp(back, data, spots[i].len) == 0, "read-back at %" PRIu64, spots[i].off);
        /* The host file holds exactly the image bytes (raw). */
        qbt_pread_file(e.path, back, 2 * MiB, 0);
        ck_assert_msg(memcmp(back, shadow, 2 * MiB) == 0, "host file differs after write at %"
                      PRIu64, spots[i].off);
    }
    EXPECT_OK(e.b, qb_flush(e.b, e.qbs), 0);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, 2 * MiB, 0), 2 * MiB);
    ck_assert_int_eq(memcmp(back, shadow, 2 * MiB), 0);
    ck_assert_int_eq(qbt_file_size(e.path), 2 * MiB);
    free(data);
    free(back);
    free(shadow);
    env_fini(&e);
}
END_TEST

START_TEST(read_sees_bytes_written_outside)
{
    Env e;
    uint8_t data[10000], back[12345];

    env_init(&e, "outside.raw", MiB);
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 31 + 7);
    }
    qbt_pwrite_file(e.path, data, sizeof(data), 12345);
    e.qbs = qbt_open(e.b, e.path, 1, 0);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, sizeof(data), 12345), sizeof(data));
    ck_assert_int_eq(memcmp(back, data, sizeof(data)), 0);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, 12345, 0), 12345);
    assert_zeros(back, 12345, "untouched head");
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_flush                                                            */

START_TEST(flush_returns_zero_in_every_mode)
{
    static const int modes[] = {
        LIBQBLOCK_O_RDWR, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB,
        LIBQBLOCK_O_RDWR | LIBQBLOCK_O_NO_FLUSH, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_NOCACHE, 0,
    };
    Env e;
    uint8_t data[4096], back[4096];

    env_init(&e, "flush.raw", MiB);
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        e.qbs = qbt_open(e.b, e.path, 0, modes[i]);
        EXPECT_OK(e.b, qb_flush(e.b, e.qbs), 0);
        if (modes[i] & LIBQBLOCK_O_RDWR) {
            memset(data, (int)(0x40 + i), sizeof(data));
            EXPECT_OK(e.b, qb_write(e.b, e.qbs, data, sizeof(data), i * 4096), sizeof(data));
            EXPECT_OK(e.b, qb_flush(e.b, e.qbs), 0);
            qbt_pread_file(e.path, back, sizeof(back), (off_t)(i * 4096));
            ck_assert_int_eq(memcmp(back, data, sizeof(data)), 0);
        }
        qbt_close(e.b, &e.qbs);
    }
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_discard                                                          */

START_TEST(discard_aligned_reads_zeros_and_frees)
{
    Env e;
    uint8_t *buf = malloc(256 * 1024);
    int st = -1;
    int64_t len = -1;

    ck_assert_ptr_nonnull(buf);
    env_init(&e, "discard.raw", 4 * MiB);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    memset(buf, 0xaa, 256 * 1024);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 256 * 1024, 256 * 1024), 256 * 1024);
    EXPECT_OK(e.b, qb_flush(e.b, e.qbs), 0);
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, 256 * 1024, 256 * 1024, &st, &len), 0);
    ck_assert_int_eq(st, 1);
    ck_assert_int_eq(len, 256 * 1024);

    EXPECT_OK(e.b, qb_discard(e.b, e.qbs, 256 * 1024, 256 * 1024), 0);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, buf, 256 * 1024, 256 * 1024), 256 * 1024);
    assert_zeros(buf, 256 * 1024, "discarded range (qb_read)");
    qbt_pread_file(e.path, buf, 256 * 1024, 256 * 1024);
    assert_zeros(buf, 256 * 1024, "discarded range (host file)");
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, 256 * 1024, 256 * 1024, &st, &len), 0);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(len, 256 * 1024);
    /* The file keeps its size. */
    ck_assert_int_eq(qbt_file_size(e.path), 4 * MiB);
    free(buf);
    env_fini(&e);
}
END_TEST

START_TEST(discard_unaligned_edges_left_alone)
{
    const uint64_t x = 640 * 1024;
    Env e;
    uint8_t buf[8192];

    env_init(&e, "discard-edges.raw", 2 * MiB);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    memset(buf, 0xbb, sizeof(buf));
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, sizeof(buf), x), sizeof(buf));
    /* [x+100, x+4196): whole sectors [x+512, x+4096) lie inside; the edges do not. */
    EXPECT_OK(e.b, qb_discard(e.b, e.qbs, x + 100, 4096), 0);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, buf, sizeof(buf), x), sizeof(buf));
    assert_bytes(buf, 0xbb, 512, "head sector (partly discarded, must be kept)");
    assert_zeros(buf + 512, 4096 - 512, "whole sectors inside the discard");
    assert_bytes(buf + 4096, 0xbb, 4096, "tail (partly discarded sector and beyond)");

    /* A discard smaller than a sector changes nothing. */
    memset(buf, 0xcc, 512);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 512, x + 65536), 512);
    EXPECT_OK(e.b, qb_discard(e.b, e.qbs, x + 65536 + 1, 510), 0);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, buf, 512, x + 65536), 512);
    assert_bytes(buf, 0xcc, 512, "sub-sector discard");
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_check_allocation                                                 */

START_TEST(check_allocation_holes_and_data)
{
    Env e;
    uint8_t *buf = malloc(4 * MiB);
    int st = -1;
    int64_t len = -1;

    ck_assert_ptr_nonnull(buf);
    env_init(&e, "alloc.raw", 4 * MiB);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    memset(buf, 0x5c, 4 * MiB);

    /* A freshly created sparse image: far from the start it is all hole. */
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, 2 * MiB, 2 * MiB, &st, &len), 0);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(len, 2 * MiB);

    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 65536, MiB), 65536);
    EXPECT_OK(e.b, qb_flush(e.b, e.qbs), 0);

    /* Data: exactly the 64 KiB written. */
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, MiB, 3 * MiB, &st, &len), 0);
    ck_assert_int_eq(st, 1);
    ck_assert_int_eq(len, 65536);
    /* The hole before it ends where the data starts. */
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, 512 * 1024, 3 * MiB, &st, &len), 0);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(len, 512 * 1024);
    /* The hole after it runs to the end of the image. */
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, MiB + 65536, 3 * MiB - 65536, &st, &len), 0);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(len, 3 * MiB - 65536);
    /* *plength never exceeds the length asked for. */
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, MiB, 4096, &st, &len), 0);
    ck_assert_int_eq(st, 1);
    ck_assert_int_eq(len, 4096);
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, 2 * MiB, 1000, &st, &len), 0);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(len, 1000);
    /* An unaligned start inside the data. */
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, MiB + 100, 1000, &st, &len), 0);
    ck_assert_int_eq(st, 1);
    ck_assert_msg(len >= 1 && len <= 1000, "length %" PRId64, len);

    /* Fill the whole image: one allocated run. */
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 4 * MiB, 0), 4 * MiB);
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, 0, 4 * MiB, &st, &len), 0);
    ck_assert_int_eq(st, 1);
    ck_assert_int_eq(len, 4 * MiB);
    free(buf);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_block_status                                                     */

typedef struct Extent {
    uint64_t start, length, offset;
    int depth;
    bool present, zero, data, has_offset;
} Extent;

#define MAX_EXTENTS 64

/* Adds @x to @v, merging it into the last extent when qemu-img map would. */
static void extent_push(Extent *v, int *n, const Extent *x)
{
    if (*n > 0) {
        Extent *p = &v[*n - 1];

        if (p->depth == x->depth && p->present == x->present && p->zero == x->zero &&
            p->data == x->data && p->has_offset == x->has_offset &&
            p->start + p->length == x->start &&
            (!p->has_offset || p->offset + p->length == x->offset)) {
            p->length += x->length;
            return;
        }
    }
    ck_assert_int_lt(*n, MAX_EXTENTS);
    v[(*n)++] = *x;
}

/* Walks qb_block_status over the whole image. */
static int walk_status(Env *e, uint64_t size, Extent *v)
{
    int n = 0;
    uint64_t off = 0;

    while (off < size) {
        QBlockStatusInfo si;
        Extent x;

        memset(&si, 0xff, sizeof(si));
        EXPECT_OK(e->b, qb_block_status(e->b, e->qbs, off, size - off, &si), 0);
        ck_assert_msg(si.length >= 1 && si.length <= size - off, "length %" PRIu64 " at %" PRIu64,
                      si.length, off);
        ck_assert_msg(si.length % 512 == 0 || off + si.length == size,
                      "run %" PRIu64 " at %" PRIu64 " is not whole sectors", si.length, off);
        ck_assert_msg((si.flags & ~0xf) == 0, "unknown flags 0x%x", si.flags);
        x.start = off;
        x.length = si.length;
        x.depth = si.depth;
        x.present = (si.flags & QB_BLOCK_ALLOCATED) != 0;
        x.zero = (si.flags & QB_BLOCK_ZERO) != 0;
        x.data = (si.flags & QB_BLOCK_DATA) != 0;
        x.has_offset = (si.flags & QB_BLOCK_OFFSET_VALID) != 0;
        x.offset = x.has_offset ? si.host_offset : 0;
        extent_push(v, &n, &x);
        off += si.length;
    }
    return n;
}

/* Runs qemu-img map --output=json on @path and parses its extents. */
static int qemu_map(const char *qimg, const char *path, Extent *v)
{
    char cmd[PATH_MAX * 2 + 64], line[512];
    FILE *f;
    int n = 0;

    snprintf(cmd, sizeof(cmd), "'%s' map --output=json -f raw '%s'", qimg, path);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        Extent x;
        char present[8], zero[8], data[8];
        const char *p = strchr(line, '{');
        const char *o;

        if (!p) {
            continue;
        }
        memset(&x, 0, sizeof(x));
        ck_assert_msg(sscanf(p, "{ \"start\": %" SCNu64 ", \"length\": %" SCNu64
                             ", \"depth\": %d, \"present\": %7[a-z], \"zero\": %7[a-z],"
                             " \"data\": %7[a-z]",
                             &x.start, &x.length, &x.depth, present, zero, data) == 6,
                      "cannot parse qemu-img map line: %s", line);
        x.present = strcmp(present, "true") == 0;
        x.zero = strcmp(zero, "true") == 0;
        x.data = strcmp(data, "true") == 0;
        o = strstr(p, "\"offset\":");
        if (o) {
            x.has_offset = true;
            x.offset = strtoull(o + 9, NULL, 10);
        }
        ck_assert_int_lt(n, MAX_EXTENTS);
        v[n++] = x;
    }
    ck_assert_int_eq(pclose(f), 0);
    return n;
}

START_TEST(block_status_flags_for_holes_and_data)
{
    const uint64_t size = 4 * MiB;
    Env e;
    uint8_t *buf = malloc(256 * 1024);
    QBlockStatusInfo si;
    Extent ours[MAX_EXTENTS], theirs[MAX_EXTENTS];
    int n_ours, n_theirs;
    const char *qimg = qbt_qemu_img();

    ck_assert_ptr_nonnull(buf);
    env_init(&e, "status.raw", size);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    memset(buf, 0x3d, 256 * 1024);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 128 * 1024, MiB), 128 * 1024);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 256 * 1024, 3 * MiB), 256 * 1024);
    EXPECT_OK(e.b, qb_flush(e.b, e.qbs), 0);

    /* Data: present, data, not zero, at its own offset in the file, depth 0. */
    EXPECT_OK(e.b, qb_block_status(e.b, e.qbs, MiB, size - MiB, &si), 0);
    ck_assert_int_eq(si.flags & (QB_BLOCK_DATA | QB_BLOCK_ZERO | QB_BLOCK_ALLOCATED),
                     QB_BLOCK_DATA | QB_BLOCK_ALLOCATED);
    ck_assert_int_ne(si.flags & QB_BLOCK_OFFSET_VALID, 0);
    ck_assert_uint_eq(si.host_offset, MiB);
    ck_assert_uint_eq(si.length, 128 * 1024);
    ck_assert_int_eq(si.depth, 0);

    /* A hole of a raw file: present (raw decides its content), zero, no data. */
    EXPECT_OK(e.b, qb_block_status(e.b, e.qbs, 2 * MiB, MiB, &si), 0);
    ck_assert_int_eq(si.flags & (QB_BLOCK_DATA | QB_BLOCK_ZERO | QB_BLOCK_ALLOCATED),
                     QB_BLOCK_ZERO | QB_BLOCK_ALLOCATED);
    ck_assert_uint_eq(si.length, MiB);
    ck_assert_int_eq(si.depth, 0);
    if (si.flags & QB_BLOCK_OFFSET_VALID) {
        ck_assert_uint_eq(si.host_offset, 2 * MiB);
    }

    /* Capped by the length asked for. */
    EXPECT_OK(e.b, qb_block_status(e.b, e.qbs, 3 * MiB, 4096, &si), 0);
    ck_assert_uint_eq(si.length, 4096);
    ck_assert_int_ne(si.flags & QB_BLOCK_DATA, 0);

    n_ours = walk_status(&e, size, ours);
    qbt_close(e.b, &e.qbs);

    /* qemu-img map reads the same file the same way. */
    if (!qimg) {
        fprintf(stderr, "NOTE: qemu-img not found; map comparison not run\n");
    } else {
        n_theirs = qemu_map(qimg, e.path, theirs);
        for (int i = 0; i < n_ours || i < n_theirs; i++) {
            ck_assert_msg(i < n_ours && i < n_theirs, "extent counts differ: ours %d, qemu %d",
                          n_ours, n_theirs);
            ck_assert_msg(ours[i].start == theirs[i].start && ours[i].length == theirs[i].length &&
                          ours[i].depth == theirs[i].depth &&
                          ours[i].present == theirs[i].present &&
                          ours[i].zero == theirs[i].zero && ours[i].data == theirs[i].data &&
                          ours[i].has_offset == theirs[i].has_offset &&
                          ours[i].offset == theirs[i].offset,
                          "extent %d: ours start %" PRIu64 " len %" PRIu64 " depth %d p%d z%d d%d "
                          "off %d/%" PRIu64 "; qemu start %" PRIu64 " len %" PRIu64 " depth %d "
                          "p%d z%d d%d off %d/%" PRIu64, i,
                          ours[i].start, ours[i].length, ours[i].depth, ours[i].present,
                          ours[i].zero, ours[i].data, ours[i].has_offset, ours[i].offset,
                          theirs[i].start, theirs[i].length, theirs[i].depth, theirs[i].present,
                          theirs[i].zero, theirs[i].data, theirs[i].has_offset, theirs[i].offset);
        }
    }
    free(buf);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* static info and queries                                             */

START_TEST(static_info_raw_facts)
{
    Env e;
    QBlockStaticInfo *info = NULL;
    QBlockProtInfo loc;
    char *name;

    env_init(&e, "info.raw", 3 * MiB + 512);
    ck_assert_int_eq(qb_state_new(e.b, &e.qbs), 0);
    qbt_allow_raw_guess(e.b, e.qbs);
    /* The caller's filename string is gone after open: the library keeps its own copy. */
    name = strdup(e.path);
    ck_assert_ptr_nonnull(name);
    loc = qbt_loc(name);
    EXPECT_OK(e.b, qb_open(e.b, e.qbs, &loc, NULL, 0), 0);
    memset(name, 'X', strlen(name));
    free(name);

    EXPECT_OK(e.b, qb_info_image_static_get(e.b, e.qbs, &info), 0);
    ck_assert_ptr_nonnull(info);
    ck_assert_int_eq(info->loc.prot_type, QB_PROT_FILE);
    ck_assert_ptr_nonnull(info->loc.prot_op.o_file.filename);
    ck_assert_str_eq(info->loc.prot_op.o_file.filename, e.path);
    ck_assert_int_eq(info->fmt_type, QB_FMT_RAW);
    ck_assert_uint_eq(info->virt_size, 3 * MiB + 512);
    ck_assert_int_eq(info->backing_loc.prot_type, QB_PROT_NONE);
    ck_assert_int_eq(info->backing_fmt, QB_FMT_NONE);
    ck_assert(!info->encrypt);
    ck_assert_int_eq(info->sector_size, 512);
    ck_assert_uint_eq(info->cluster_size, 0);
    qb_info_image_static_delete(e.b, &info);
    ck_assert_ptr_null(info);
    env_fini(&e);
}
END_TEST

START_TEST(allocated_file_size_grows_with_writes)
{
    Env e;
    uint8_t *buf = malloc(MiB);
    int64_t before, after;

    ck_assert_ptr_nonnull(buf);
    env_init(&e, "allocsize.raw", 8 * MiB);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    before = qb_get_allocated_file_size(e.b, e.qbs);
    ck_assert_msg(before >= 0, "qb_get_allocated_file_size: %" PRId64, before);
    ck_assert_int_eq(before, allocated_bytes(e.path));
    ck_assert_int_lt(before, 8 * MiB);

    memset(buf, 0x77, MiB);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, MiB, 4 * MiB), MiB);
    EXPECT_OK(e.b, qb_flush(e.b, e.qbs), 0);
    after = qb_get_allocated_file_size(e.b, e.qbs);
    ck_assert_int_eq(after, allocated_bytes(e.path));
    ck_assert_msg(after - before >= MiB, "grew by %" PRId64 " after 1 MiB of data",
                  after - before);
    free(buf);
    env_fini(&e);
}
END_TEST

START_TEST(is_dirty_zero_and_has_zero_init_one)
{
    Env e;
    uint8_t buf[512] = { 1 };

    env_init(&e, "dirty.raw", MiB);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    EXPECT_OK(e.b, qb_is_dirty(e.b, e.qbs), 0);
    EXPECT_OK(e.b, qb_has_zero_init(e.b, e.qbs), 1);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, sizeof(buf), 4096), sizeof(buf));
    /* Raw has no dirty flag: still clean after a write. */
    EXPECT_OK(e.b, qb_is_dirty(e.b, e.qbs), 0);
    qbt_close(e.b, &e.qbs);
    e.qbs = qbt_open(e.b, e.path, 1, 0);
    EXPECT_OK(e.b, qb_is_dirty(e.b, e.qbs), 0);
    EXPECT_OK(e.b, qb_has_zero_init(e.b, e.qbs), 1);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* format names                                                        */

START_TEST(fmttype_names_both_directions)
{
    static const struct {
        const char *name;
        enum QBlockFmtType type;
    } names[] = {
        { "cow", QB_FMT_COW }, { "qed", QB_FMT_QED }, { "qcow", QB_FMT_QCOW },
        { "qcow2", QB_FMT_QCOW2 }, { "raw", QB_FMT_RAW }, { "rbd", QB_FMT_RBD },
        { "sheepdog", QB_FMT_SHEEPDOG }, { "vdi", QB_FMT_VDI }, { "vmdk", QB_FMT_VMDK },
        { "vpc", QB_FMT_VPC },
    };

    ck_assert_uint_eq(sizeof(names) / sizeof(names[0]), QB_FMT_MAX - 1);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *s = qb_fmttype2str(names[i].type);

        ck_assert_msg(qb_str2fmttype(names[i].name) == names[i].type, "'%s' gave %d",
                      names[i].name, qb_str2fmttype(names[i].name));
        ck_assert_msg(s != NULL, "no name for %d", names[i].type);
        ck_assert_str_eq(s, names[i].name);
        /* A round trip through both. */
        ck_assert_int_eq(qb_str2fmttype(qb_fmttype2str(names[i].type)), names[i].type);
    }
    ck_assert_int_eq(qb_str2fmttype("vhd"), QB_FMT_VPC);
    ck_assert_str_eq(qb_fmttype2str(QB_FMT_VPC), "vpc");
}
END_TEST

/* ------------------------------------------------------------------ */
/* the raw probing hole                                                 */

/* Sector 0 of a qcow2 version 3 image: "QFI\xfb", then a big-endian 3. */
static void qcow2_sector(uint8_t *s)
{
    memset(s, 0, 512);
    memcpy(s, "QFI\xfb\0\0\0\x03", 8);
}

START_TEST(probe_raw_refuses_sector0_that_looks_like_qcow2)
{
    Env e;
    uint8_t sec[512], back[512], harmless[512];
    int64_t r;

    env_init(&e, "probe-guard.raw", MiB);
    e.qbs = qbt_open(e.b, e.path, 1, LIBQBLOCK_O_RDWR);

    qcow2_sector(sec);
    r = qb_write(e.b, e.qbs, sec, 512, 0);
    ck_assert_msg(r < 0, "a probed raw image accepted a qcow2 header in sector 0 (%" PRId64 ")", r);
    ck_assert_ptr_nonnull(strstr(qbt_msg(e.b), "qb_write"));
    /* The same header as part of a larger write. */
    {
        uint8_t big[4096];

        memset(big, 0, sizeof(big));
        qcow2_sector(big);
        r = qb_write(e.b, e.qbs, big, sizeof(big), 0);
        ck_assert_msg(r < 0, "a 4 KiB write with a qcow2 header was accepted (%" PRId64 ")", r);
    }
    qbt_pread_file(e.path, back, 512, 0);
    assert_zeros(back, 512, "sector 0 after refused writes");

    /* Harmless writes to sector 0 succeed. */
    memset(harmless, 0x11, sizeof(harmless));
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, harmless, 512, 0), 512);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, (const uint8_t *)"hello", 5, 17), 5);
    memcpy(harmless + 17, "hello", 5);
    /* Bytes 4..7 = version 3 alone do not make a qcow2 header: allowed. */
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, (const uint8_t *)"\0\0\0\x03", 4, 4), 4);
    memcpy(harmless + 4, "\0\0\0\x03", 4);
    qbt_pread_file(e.path, back, 512, 0);
    ck_assert_int_eq(memcmp(back, harmless, 512), 0);

    /* ...but completing the header with an unaligned 4-byte magic is refused. */
    r = qb_write(e.b, e.qbs, (const uint8_t *)"QFI\xfb", 4, 0);
    ck_assert_msg(r < 0, "an unaligned write completing a qcow2 header was accepted (%" PRId64 ")",
                  r);
    qbt_pread_file(e.path, back, 512, 0);
    ck_assert_int_eq(memcmp(back, harmless, 512), 0);

    /* The image is still usable afterwards, and other sectors take anything. */
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, sec, 512, 512), 512);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, 512, 512), 512);
    ck_assert_int_eq(memcmp(back, sec, 512), 0);
    env_fini(&e);
}
END_TEST

START_TEST(probe_explicit_raw_allows_any_sector0)
{
    Env e;
    uint8_t sec[512], back[512];
    QBlockStaticInfo *info = NULL;

    env_init(&e, "explicit-raw.raw", MiB);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    qcow2_sector(sec);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, sec, 512, 0), 512);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, 512, 0), 512);
    ck_assert_int_eq(memcmp(back, sec, 512), 0);
    qbt_close(e.b, &e.qbs);
    qbt_pread_file(e.path, back, 512, 0);
    ck_assert_int_eq(memcmp(back, sec, 512), 0);

    /* Opened explicitly as raw again, it is still raw of the same size. */
    e.qbs = qbt_open(e.b, e.path, 0, 0);
    EXPECT_OK(e.b, qb_info_image_static_get(e.b, e.qbs, &info), 0);
    ck_assert_int_eq(info->fmt_type, QB_FMT_RAW);
    ck_assert_uint_eq(info->virt_size, MiB);
    qb_info_image_static_delete(e.b, &info);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* snapshot mode                                                       */

START_TEST(snapshot_writes_visible_then_dropped)
{
    Env e;
    uint8_t data[8192], back[8192];

    env_init(&e, "snapshot.raw", MiB);
    memset(data, 0x21, sizeof(data));
    qbt_pwrite_file(e.path, data, sizeof(data), 0);
    e.qbs = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_SNAPSHOT);
    memset(data, 0x99, sizeof(data));
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, data, 5000, 1000), 5000);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, sizeof(back), 0), sizeof(back));
    assert_bytes(back, 0x21, 1000, "snapshot: head from the image");
    assert_bytes(back + 1000, 0x99, 5000, "snapshot: overlay data");
    assert_bytes(back + 6000, 0x21, 8192 - 6000, "snapshot: tail from the image");
    /* The image file itself is untouched while the snapshot is open... */
    qbt_pread_file(e.path, back, sizeof(back), 0);
    assert_bytes(back, 0x21, sizeof(back), "image under an open snapshot");
    qbt_close(e.b, &e.qbs);
    /* ...and after it is dropped. */
    qbt_pread_file(e.path, back, sizeof(back), 0);
    assert_bytes(back, 0x21, sizeof(back), "image after the snapshot closed");
    ck_assert_int_eq(qbt_file_size(e.path), MiB);
    env_fini(&e);
}
END_TEST

static Suite *api_raw_suite(void)
{
    Suite *s = suite_create("api_raw");
    TCase *tc;

    tc = tcase_create("create");
    tcase_add_test(tc, create_size_rounds_up_to_sector);
    tcase_add_test(tc, create_overwrites_existing_file_with_zeros);
    tcase_add_test(tc, create_preallocation_modes_allocate);
    tcase_add_test(tc, create_preallocation_struct_member_allocates);
    tcase_add_test(tc, create_does_not_open_state);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("open");
    tcase_add_test(tc, open_probed_and_explicit_raw);
    tcase_add_test(tc, open_close_reopen_same_state_keeps_data);
    suite_add_tcase(s, tc);

    tc = tcase_create("read_write");
    tcase_add_test(tc, read_write_round_trip_matches_host_file);
    tcase_add_test(tc, read_sees_bytes_written_outside);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("flush");
    tcase_add_test(tc, flush_returns_zero_in_every_mode);
    suite_add_tcase(s, tc);

    tc = tcase_create("discard");
    tcase_add_test(tc, discard_aligned_reads_zeros_and_frees);
    tcase_add_test(tc, discard_unaligned_edges_left_alone);
    suite_add_tcase(s, tc);

    tc = tcase_create("check_allocation");
    tcase_add_test(tc, check_allocation_holes_and_data);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("block_status");
    tcase_add_test(tc, block_status_flags_for_holes_and_data);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("static_info");
    tcase_add_test(tc, static_info_raw_facts);
    suite_add_tcase(s, tc);

    tc = tcase_create("allocated_file_size");
    tcase_add_test(tc, allocated_file_size_grows_with_writes);
    suite_add_tcase(s, tc);

    tc = tcase_create("is_dirty");
    tcase_add_test(tc, is_dirty_zero_and_has_zero_init_one);
    suite_add_tcase(s, tc);

    tc = tcase_create("fmttype");
    tcase_add_test(tc, fmttype_names_both_directions);
    suite_add_tcase(s, tc);

    tc = tcase_create("probe");
    tcase_add_test(tc, probe_raw_refuses_sector0_that_looks_like_qcow2);
    tcase_add_test(tc, probe_explicit_raw_allows_any_sector0);
    suite_add_tcase(s, tc);

    tc = tcase_create("snapshot");
    tcase_add_test(tc, snapshot_writes_visible_then_dropped);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(api_raw_suite(), argv[0]);
}
