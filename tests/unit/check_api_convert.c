/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* check_api_convert.c: qb_convert and qb_compare through the public API: every error path, copies checked against a model, progress and cancellation. */

#include "qbtest.h"

#include <signal.h>
#include <sys/wait.h>

#define MIB (1024 * 1024ull)

/* The source every copy test reads: 5 MiB + 1.5 KiB (three requests and a partial sector's worth). */
#define SRC_SIZE (5 * MIB + 1536)

/*
 * Writes the model source straight into a raw file (not through the
 * library): random data in a few places, the rest a hole. @model receives
 * the same bytes.
 */
static void make_source(const char *path, uint8_t *model, uint64_t size, uint64_t seed)
{
    static const uint64_t spots[][2] = {
        { 0, 4096 }, { 1 * MIB - 512, 64 * 1024 }, { 2 * MIB + 7, 300000 }, { 5 * MIB, 1536 },
    };
    QbtRng rng;

    qbt_rng_seed(&rng, seed);
    memset(model, 0, size);
    qbt_make_sparse_file(path, (off_t)size);
    for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
        uint64_t off = spots[i][0], len = spots[i][1];
        if (off >= size) {
            continue;
        }
        len = off + len > size ? size - off : len;
        qbt_rng_fill(&rng, model + off, len);
        qbt_pwrite_file(path, model + off, len, (off_t)off);
    }
}

/* Reads all of @qbs and checks it against @model (and zeros past it, up to the image's end). */
static void expect_content(QBroker *b, QBlockState *qbs, const uint8_t *model, uint64_t len,
                           uint64_t at, const char *what)
{
    uint8_t *buf = malloc(len);

    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(qb_read(b, qbs, buf, len, at) == (int64_t)len, "%s: read: %s", what, qbt_msg(b));
    qbt_assert_same(buf, model, len, what);
    free(buf);
}

/* Progress calls as seen by the callback. */
typedef struct ProgressLog {
    int calls;
    uint64_t last_done, total;
    bool went_back;             /* a call had less done than the one before */
    int cancel_at;              /* return non-zero on this call (1-based); 0 never */
} ProgressLog;

static int log_progress(uint64_t done, uint64_t total, void *opaque)
{
    ProgressLog *p = opaque;

    if (p->calls > 0 && (done < p->last_done || total != p->total)) {
        p->went_back = true;
    }
    p->calls++;
    p->last_done = done;
    p->total = total;
    return p->cancel_at && p->calls >= p->cancel_at;
}

/* Create-mode parameters: copy @srcs into a new image of @type at @path, through @target. */
static void create_params(QBlockConvertParams *p, QBlockState **srcs, uint32_t n,
                          QBlockState *target, QBlockProtInfo *loc, QBlockFmtInfo *fmt,
                          enum QBlockFmtType type, const char *path)
{
    memset(fmt, 0, sizeof(*fmt));
    fmt->fmt_type = type;
    *loc = qbt_loc(path);
    memset(p, 0, sizeof(*p));
    p->sources = srcs;
    p->nb_sources = n;
    p->target = target;
    p->target_loc = loc;
    p->target_fmt = fmt;
}

/* ------------------------------------------------------------------ */
/* qb_convert: errors                                                  */

START_TEST(convert_bad_arguments_invalid_param)
{
    QBroker *b = NULL;
    QBlockState *src = NULL, *dst = NULL, *ro = NULL, *small = NULL, *closed = NULL;
    QBlockState *srcs[2];
    QBlockConvertParams p;
    QBlockFmtInfo fmt;
    QBlockProtInfo loc;
    char sp[PATH_MAX], dp[PATH_MAX], smp[PATH_MAX];

    qbt_path(sp, sizeof(sp), "err-src.raw");
    qbt_path(dp, sizeof(dp), "err-dst.raw");
    qbt_path(smp, sizeof(smp), "err-small.raw");
    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_create_raw(b, sp, 1 * MIB);
    qbt_create_raw(b, dp, 1 * MIB);
    qbt_create_raw(b, smp, 512 * 1024);
    src = qbt_open(b, sp, 0, 0);
    dst = qbt_open(b, dp, 0, LIBQBLOCK_O_RDWR);
    ro = qbt_open(b, dp, 0, 0);
    small = qbt_open(b, smp, 0, LIBQBLOCK_O_RDWR);
    ck_assert_int_eq(qb_state_new(b, &closed), 0);
    srcs[0] = src;
    srcs[1] = NULL;

    memset(&p, 0, sizeof(p));
    p.sources = srcs;
    p.nb_sources = 1;
    p.target = dst;
    ck_assert_int_eq(qb_convert(NULL, &p), QB_ERR_INVALID_PARAM);
    EXPECT_FAIL(b, qb_convert(b, NULL), QB_ERR_INVALID_PARAM, "NULL parameters");

    p.nb_sources = 0;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "no source");
    p.nb_sources = 1;
    p.sources = NULL;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "no source");
    p.sources = srcs;
    p.nb_sources = 2;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "source 1 is NULL");
    srcs[1] = closed;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "source 1 is not open");
    p.nb_sources = 1;
    p.target = NULL;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "NULL target");
    p.target = dst;
    p.flags = 0x100;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "unknown flags");
    p.flags = 0;
    p.num_requests = QB_CONVERT_MAX_REQUESTS + 1;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "requests");
    p.num_requests = 0;
    p.sparse_size = 1000;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "sparse size");
    p.sparse_size = QB_CONVERT_MAX_SPARSE_SIZE + 512;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "sparse size");
    p.sparse_size = 4096;

    /* -n mode: the target must be open, writable, large enough and not a source. */
    p.target = closed;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "not open");
    p.target = ro;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_READ_ONLY, "read-only");
    p.target = small;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "smaller than input");
    p.target = src;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "also the source");
    p.target = dst;
    p.flags = QB_CONVERT_COMPRESSED;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_NOT_SUPPORTED, "Compression not supported");
    p.flags = 0;

    /* Create mode: a closed state, a file location, not over a source, a format that compresses. */
    memset(&fmt, 0, sizeof(fmt));
    fmt.fmt_type = QB_FMT_QCOW2;
    p.target_fmt = &fmt;
    p.target = closed;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "file location");
    loc = qbt_loc(dp);
    p.target_loc = &loc;
    p.target = dst;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "closed target");
    p.target = closed;
    loc = qbt_loc(sp);
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "also the source");
    ck_assert_int_eq(qbt_file_size(sp), (off_t)(1 * MIB));   /* not truncated */
    loc = qbt_loc(dp);
    fmt.fmt_type = QB_FMT_VDI;
    p.flags = QB_CONVERT_COMPRESSED;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_NOT_SUPPORTED, "Compression not supported");
    p.flags = 0;
    /* A failed create leaves the state closed. */
    fmt.fmt_type = QB_FMT_QCOW2;
    fmt.fmt_op.o_qcow2.cluster_size = 3000;
    ck_assert_int_lt(qb_convert(b, &p), 0);
    EXPECT_FAIL(b, qb_close(b, closed), QB_ERR_INVALID_PARAM, "");

    qbt_close(b, &src);
    qbt_close(b, &dst);
    qbt_close(b, &ro);
    qbt_close(b, &small);
    qb_state_delete(b, &closed);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(convert_compressed_sources_not_whole_clusters_invalid_param)
{
    QBroker *b = NULL;
    QBlockState *s1, *s2, *dst = NULL;
    QBlockState *srcs[2];
    QBlockConvertParams p;
    QBlockFmtInfo fmt;
    QBlockProtInfo loc;
    char p1[PATH_MAX], p2[PATH_MAX], dp[PATH_MAX];

    qbt_path(p1, sizeof(p1), "cc-1.raw");
    qbt_path(p2, sizeof(p2), "cc-2.raw");
    qbt_path(dp, sizeof(dp), "cc-out.qcow2");
    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_create_raw(b, p1, 100 * 1024);      /* not a multiple of 64 KiB clusters */
    qbt_create_raw(b, p2, 64 * 1024);
    s1 = qbt_open(b, p1, 0, 0);
    s2 = qbt_open(b, p2, 0, 0);
    srcs[0] = s1;
    srcs[1] = s2;
    ck_assert_int_eq(qb_state_new(b, &dst), 0);
    create_params(&p, srcs, 2, dst, &loc, &fmt, QB_FMT_QCOW2, dp);
    p.flags = QB_CONVERT_COMPRESSED;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "multiple of the cluster size");
    EXPECT_FAIL(b, qb_close(b, dst), QB_ERR_INVALID_PARAM, "");
    qb_state_delete(b, &dst);
    qbt_close(b, &s1);
    qbt_close(b, &s2);
    qb_broker_delete(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_convert: copies                                                  */

/* Request counts and orders the copy test runs with. */
static const struct {
    uint32_t requests;
    uint32_t flags;
    enum QBlockFmtType fmt;
    uint64_t sparse;
} copies[] = {
    { 1, 0, QB_FMT_QCOW2, 4096 },
    { 4, 0, QB_FMT_QCOW2, 4096 },
    { 16, QB_CONVERT_OUT_OF_ORDER, QB_FMT_QCOW2, 0 },
    { 0, QB_CONVERT_OUT_OF_ORDER, QB_FMT_RAW, 4096 },
    { 3, QB_CONVERT_COMPRESSED | QB_CONVERT_OUT_OF_ORDER, QB_FMT_QCOW2, 4096 },
    { 8, 0, QB_FMT_VDI, 65536 },
};

START_TEST(convert_two_sources_equal_model)
{
    QBroker *b = NULL;
    QBlockState *s1, *s2, *dst = NULL;
    QBlockState *srcs[2];
    QBlockConvertParams p;
    QBlockFmtInfo fmt;
    QBlockProtInfo loc;
    ProgressLog log;
    uint8_t *m1 = malloc(SRC_SIZE), *m2 = malloc(2 * MIB);
    char p1[PATH_MAX], p2[PATH_MAX], dp[PATH_MAX], what[64];

    ck_assert_ptr_nonnull(m1);
    ck_assert_ptr_nonnull(m2);
    snprintf(what, sizeof(what), "copy %d", _i);
    qbt_path(p1, sizeof(p1), "copy-1.raw");
    qbt_path(p2, sizeof(p2), "copy-2.raw");
    qbt_path(dp, sizeof(dp), "copy-out.img");
    ck_assert_int_eq(qb_broker_new(&b), 0);
    /* The first source is whole clusters long for compressed runs, which need that. */
    make_source(p1, m1, copies[_i].flags & QB_CONVERT_COMPRESSED ? 5 * MIB : SRC_SIZE, 11 + _i);
    make_source(p2, m2, 2 * MIB, 23 + _i);
    s1 = qbt_open(b, p1, 0, 0);
    s2 = qbt_open(b, p2, 0, 0);
    srcs[0] = s1;
    srcs[1] = s2;
    ck_assert_int_eq(qb_state_new(b, &dst), 0);
    create_params(&p, srcs, 2, dst, &loc, &fmt, copies[_i].fmt, dp);
    memset(&log, 0, sizeof(log));
    p.num_requests = copies[_i].requests;
    p.flags = copies[_i].flags;
    p.sparse_size = copies[_i].sparse;
    p.progress = log_progress;
    p.progress_opaque = &log;
    ck_assert_msg(qb_convert(b, &p) == 0, "%s: %s", what, qbt_msg(b));

    {
        uint64_t n1 = (uint64_t)qbt_file_size(p1), total = n1 + 2 * MIB;
        QBlockStaticInfo *info = NULL;

        /* The target is left open, sized to both sources, and holds them one after the other. */
        ck_assert_int_eq(qb_info_image_static_get(b, dst, &info), 0);
        ck_assert_uint_eq(info->virt_size, total);
        ck_assert_int_eq(info->fmt_type, copies[_i].fmt);
        qb_info_image_static_delete(b, &info);
        expect_content(b, dst, m1, n1, 0, what);
        expect_content(b, dst, m2, 2 * MIB, n1, what);
        ck_assert_msg(log.calls >= 1 && !log.went_back, "%s: progress went back", what);
        ck_assert_uint_eq(log.total, total);
        ck_assert_uint_eq(log.last_done, total);
    }
    qbt_close(b, &dst);
    qbt_close(b, &s1);
    qbt_close(b, &s2);
    qb_broker_delete(&b);
    free(m1);
    free(m2);
}
END_TEST

/* -n: an existing target full of other bytes; zero ranges must be written, the tail kept. */
START_TEST(convert_into_existing_target_overwrites_everything)
{
    QBroker *b = NULL;
    QBlockState *src, *dst;
    QBlockState *srcs[1];
    QBlockConvertParams p;
    uint8_t *model = malloc(SRC_SIZE), *fill = malloc(SRC_SIZE + MIB), *tail = malloc(MIB);
    char sp[PATH_MAX], dp[PATH_MAX];

    ck_assert_ptr_nonnull(model);
    ck_assert_ptr_nonnull(fill);
    ck_assert_ptr_nonnull(tail);
    qbt_path(sp, sizeof(sp), "n-src.raw");
    qbt_path(dp, sizeof(dp), "n-dst.qcow2");
    ck_assert_int_eq(qb_broker_new(&b), 0);
    make_source(sp, model, SRC_SIZE, 77);
    qbt_create_fmt(b, dp, QB_FMT_QCOW2, SRC_SIZE + MIB);
    dst = qbt_open_fmt(b, QB_FMT_QCOW2, dp, LIBQBLOCK_O_RDWR);
    memset(fill, 0xee, SRC_SIZE + MIB);
    ck_assert_int_eq(qb_write(b, dst, fill, SRC_SIZE + MIB, 0), (int64_t)(SRC_SIZE + MIB));
    src = qbt_open(b, sp, 0, 0);
    srcs[0] = src;
    memset(&p, 0, sizeof(p));
    p.sources = srcs;
    p.nb_sources = 1;
    p.target = dst;
    p.num_requests = 5;
    p.flags = QB_CONVERT_OUT_OF_ORDER;
    p.sparse_size = 4096;
    ck_assert_msg(qb_convert(b, &p) == 0, "%s", qbt_msg(b));
    expect_content(b, dst, model, SRC_SIZE, 0, "-n copy");
    memset(tail, 0xee, MIB);
    expect_content(b, dst, tail, MIB, SRC_SIZE, "-n tail beyond the source");
    qbt_close(b, &dst);
    qbt_close(b, &src);
    qb_broker_delete(&b);
    free(model);
    free(fill);
    free(tail);
}
END_TEST

/* A non-zero answer from the callback stops the copy: ECANCELED, target closed, data partial. */
START_TEST(convert_progress_cancel_stops)
{
    QBroker *b = NULL;
    QBlockState *src, *dst = NULL;
    QBlockState *srcs[1];
    QBlockConvertParams p;
    QBlockFmtInfo fmt;
    QBlockProtInfo loc;
    ProgressLog log;
    uint8_t *model = malloc(SRC_SIZE);
    char sp[PATH_MAX], dp[PATH_MAX];

    ck_assert_ptr_nonnull(model);
    qbt_path(sp, sizeof(sp), "cancel-src.raw");
    qbt_path(dp, sizeof(dp), "cancel-out.qcow2");
    ck_assert_int_eq(qb_broker_new(&b), 0);
    make_source(sp, model, SRC_SIZE, 5);
    src = qbt_open(b, sp, 0, 0);
    srcs[0] = src;
    ck_assert_int_eq(qb_state_new(b, &dst), 0);
    create_params(&p, srcs, 1, dst, &loc, &fmt, QB_FMT_QCOW2, dp);
    memset(&log, 0, sizeof(log));
    log.cancel_at = 1;
    p.num_requests = (uint32_t)_i + 1;
    p.progress = log_progress;
    p.progress_opaque = &log;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_CANCELED, "canceled");
    ck_assert_int_eq(qb_error_get_errno(b), ECANCELED);
    ck_assert_int_eq(log.calls, 1);
    if (p.num_requests == 1) {
        /* In the caller's thread alone, the first report comes after the first request. */
        ck_assert_uint_eq(log.last_done, 2 * MIB);
    }
    EXPECT_FAIL(b, qb_close(b, dst), QB_ERR_INVALID_PARAM, "");
    qb_state_delete(b, &dst);
    qbt_close(b, &src);
    qb_broker_delete(&b);
    free(model);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_convert: requests in flight                                      */

/* A qcow2 source of several chunks: data everywhere but in a few holes, so that most chunks read. */
#define FLIGHT_SIZE (9 * MIB + 4096)

static void make_flight_source(QBroker *b, const char *path, uint8_t *model)
{
    QBlockState *s;
    QbtRng rng;

    qbt_rng_seed(&rng, 91);
    qbt_rng_fill(&rng, model, FLIGHT_SIZE);
    /* Holes: inside one chunk, across a chunk boundary, and a whole chunk. */
    memset(model + 300 * 1024, 0, 200 * 1024);
    memset(model + 4 * MIB - 64 * 1024, 0, 192 * 1024);
    memset(model + 6 * MIB, 0, 2 * MIB);
    qbt_create_fmt(b, path, QB_FMT_QCOW2, FLIGHT_SIZE);
    s = qbt_open_fmt(b, QB_FMT_QCOW2, path, LIBQBLOCK_O_RDWR);
    for (uint64_t off = 0; off < FLIGHT_SIZE; off += MIB) {
        uint64_t n = FLIGHT_SIZE - off < MIB ? FLIGHT_SIZE - off : MIB;
        bool zero = true;
        for (uint64_t i = 0; i < n && zero; i++) {
            zero = model[off + i] == 0;
        }
        if (!zero) {
            ck_assert_int_eq(qb_write(b, s, model + off, n, off), (int64_t)n);
        }
    }
    qbt_close(b, &s);
}

/* Converts @sp into a new qcow2 @dp with @requests in flight and @flags. */
static void flight_convert(QBroker *b, const char *sp, const char *dp, uint32_t requests,
                           uint32_t flags, const uint8_t *model)
{
    QBlockState *src, *dst = NULL;
    QBlockState *srcs[1];
    QBlockConvertParams p;
    QBlockFmtInfo fmt;
    QBlockProtInfo loc;
    char what[64];

    snprintf(what, sizeof(what), "-m %u flags 0x%x", requests, flags);
    src = qbt_open_fmt(b, QB_FMT_QCOW2, sp, 0);
    srcs[0] = src;
    ck_assert_int_eq(qb_state_new(b, &dst), 0);
    create_params(&p, srcs, 1, dst, &loc, &fmt, QB_FMT_QCOW2, dp);
    p.num_requests = requests;
    p.flags = flags;
    p.sparse_size = 4096;
    ck_assert_msg(qb_convert(b, &p) == 0, "%s: %s", what, qbt_msg(b));
    expect_content(b, dst, model, FLIGHT_SIZE, 0, what);
    qbt_close(b, &dst);
    qbt_close(b, &src);
}

/*
 * In order, the target's writes come in ascending offsets whatever the
 * number of requests, so qcow2 allocates its clusters in the same order:
 * 1 and 16 requests give byte-identical files (-W need only give the same
 * content). 64, beyond qemu-img's range too, is refused.
 */
START_TEST(convert_requests_1_and_16_same_file)
{
    QBroker *b = NULL;
    QBlockState *src, *dst = NULL;
    QBlockState *srcs[1];
    QBlockConvertParams p;
    QBlockFmtInfo fmt;
    QBlockProtInfo loc;
    uint8_t *model = malloc(FLIGHT_SIZE), *f1, *f16;
    char sp[PATH_MAX], d1[PATH_MAX], d16[PATH_MAX], dw[PATH_MAX], d64[PATH_MAX];
    off_t n1, n16;

    ck_assert_ptr_nonnull(model);
    qbt_path(sp, sizeof(sp), "flight-src.qcow2");
    qbt_path(d1, sizeof(d1), "flight-1.qcow2");
    qbt_path(d16, sizeof(d16), "flight-16.qcow2");
    qbt_path(dw, sizeof(dw), "flight-16W.qcow2");
    qbt_path(d64, sizeof(d64), "flight-64.qcow2");
    ck_assert_int_eq(qb_broker_new(&b), 0);
    make_flight_source(b, sp, model);
    flight_convert(b, sp, d1, 1, 0, model);
    flight_convert(b, sp, d16, 16, 0, model);
    flight_convert(b, sp, dw, 16, QB_CONVERT_OUT_OF_ORDER, model);

    n1 = qbt_file_size(d1);
    n16 = qbt_file_size(d16);
    ck_assert_int_eq(n1, n16);
    f1 = malloc((size_t)n1);
    f16 = malloc((size_t)n16);
    ck_assert_ptr_nonnull(f1);
    ck_assert_ptr_nonnull(f16);
    qbt_pread_file(d1, f1, (size_t)n1, 0);
    qbt_pread_file(d16, f16, (size_t)n16, 0);
    qbt_assert_same(f16, f1, (size_t)n1, "-m 16 against -m 1");

    src = qbt_open_fmt(b, QB_FMT_QCOW2, sp, 0);
    srcs[0] = src;
    ck_assert_int_eq(qb_state_new(b, &dst), 0);
    create_params(&p, srcs, 1, dst, &loc, &fmt, QB_FMT_QCOW2, d64);
    p.num_requests = 64;
    EXPECT_FAIL(b, qb_convert(b, &p), QB_ERR_INVALID_PARAM, "64 requests");
    qb_state_delete(b, &dst);
    qbt_close(b, &src);
    qb_broker_delete(&b);
    free(f1);
    free(f16);
    free(model);
}
END_TEST

/*
 * The fault-injection child (see convert_read_fault_reported): converts a
 * raw source whose third read and every later one fail. Exit 0 when the
 * error reaches the caller as a read error, 1 otherwise (with the reason
 * on stderr).
 */
static int fault_child(const char *dir)
{
    QBroker *b = NULL;
    QBlockState *src = NULL, *dst = NULL;
    QBlockState *srcs[1];
    QBlockConvertParams p;
    QBlockFmtInfo fmt;
    QBlockProtInfo sloc, dloc;
    char sp[PATH_MAX], dp[PATH_MAX];
    bool opened = false;
    int ret, status = 1;

    snprintf(sp, sizeof(sp), "%s/fault-src.raw", dir);
    snprintf(dp, sizeof(dp), "%s/fault-out.raw", dir);
    sloc = qbt_loc(sp);
    dloc = qbt_loc(dp);
    memset(&fmt, 0, sizeof(fmt));
    fmt.fmt_type = QB_FMT_RAW;
    if (qb_broker_new(&b) < 0 || qb_state_new(b, &src) < 0 || qb_state_new(b, &dst) < 0 ||
        qb_open(b, src, &sloc, &fmt, 0) < 0) {
        fprintf(stderr, "fault child: setup: %s\n", b ? qbt_msg(b) : "no broker");
        goto out;
    }
    opened = true;
    srcs[0] = src;
    memset(&p, 0, sizeof(p));
    p.sources = srcs;
    p.nb_sources = 1;
    p.target = dst;
    p.target_loc = &dloc;
    p.target_fmt = &fmt;
    p.num_requests = 4;
    ret = qb_convert(b, &p);
    if (ret >= 0 || qb_error_get_errno(b) != EIO ||
        !strstr(qbt_msg(b), "qb_convert: error while reading at byte ")) {
        fprintf(stderr, "fault child: qb_convert returned %d, errno %d: %s\n", ret,
                qb_error_get_errno(b), qbt_msg(b));
        goto out;
    }
    status = 0;
out:
    if (opened) {
        qb_close(b, src);
    }
    qb_state_delete(b, &src);
    qb_state_delete(b, &dst);
    qb_broker_delete(&b);
    return status;
}

/*
 * A source whose reads fail part-way (the fault protocol): the failure
 * reaches the caller as qb_convert's read error, with requests in flight
 * and nothing hanging. The rule is read from the environment once per
 * process, so the copy runs in a fresh process (this program, re-run).
 */
/* This program's own file, for the fault child (not /proc/self/exe: under valgrind that is valgrind). */
static char self_path[PATH_MAX];

START_TEST(convert_read_fault_reported)
{
    uint8_t *model = malloc(9 * MIB);
    char sp[PATH_MAX], dir[PATH_MAX], log[PATH_MAX];
    pid_t pid;
    int status = -1;

    ck_assert_ptr_nonnull(model);
    qbt_path(sp, sizeof(sp), "fault-src.raw");
    qbt_path(log, sizeof(log), "fault.log");
    snprintf(dir, sizeof(dir), "%s", sp);
    *strrchr(dir, '/') = '\0';
    qbt_make_sparse_file(sp, 9 * MIB);
    memset(model, 0x5a, 9 * MIB);
    qbt_pwrite_file(sp, model, 9 * MIB, 0);
    free(model);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("LIBQBLOCK_FAULT_INJECT", "read:3:eio:sticky", 1);
        setenv("LIBQBLOCK_FAULT_LOG", log, 1);
        setenv("QBT_CONVERT_FAULT_CHILD", dir, 1);
        execl(self_path, "check_api_convert", (char *)NULL);
        _exit(127);
    }
    /* A hang is a failure, not a stuck suite: give the child a minute. */
    for (int i = 0; i < 600 && waitpid(pid, &status, WNOHANG) == 0; i++) {
        usleep(100 * 1000);
    }
    if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_abort_msg("qb_convert hung on a failing source");
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the fault child failed (status 0x%x)", status);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_compare                                                          */

START_TEST(compare_bad_arguments_invalid_param)
{
    QBroker *b = NULL;
    QBlockState *a, *closed = NULL;
    QBlockCompareResult res;
    char ap[PATH_MAX];

    qbt_path(ap, sizeof(ap), "cmp-err.raw");
    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_create_raw(b, ap, MIB);
    a = qbt_open(b, ap, 0, 0);
    ck_assert_int_eq(qb_state_new(b, &closed), 0);
    ck_assert_int_eq(qb_compare(NULL, a, a, 0, NULL, NULL, &res), QB_ERR_INVALID_PARAM);
    EXPECT_FAIL(b, qb_compare(b, NULL, a, 0, NULL, NULL, &res), QB_ERR_INVALID_PARAM, "NULL state");
    EXPECT_FAIL(b, qb_compare(b, a, NULL, 0, NULL, NULL, &res), QB_ERR_INVALID_PARAM, "NULL state");
    EXPECT_FAIL(b, qb_compare(b, a, closed, 0, NULL, NULL, &res), QB_ERR_INVALID_PARAM, "not open");
    EXPECT_FAIL(b, qb_compare(b, a, a, 0, NULL, NULL, NULL), QB_ERR_INVALID_PARAM, "NULL result");
    EXPECT_FAIL(b, qb_compare(b, a, a, 2, NULL, NULL, &res), QB_ERR_INVALID_PARAM, "unknown flags");
    qb_state_delete(b, &closed);
    qbt_close(b, &a);
    qb_broker_delete(&b);
}
END_TEST

/* Compares two raw files written directly; returns qb_compare's result. */
static int compare_files(QBroker *b, const char *pa, const char *pb, int flags,
                         QBlockCompareResult *res, ProgressLog *log)
{
    QBlockState *a = qbt_open(b, pa, 0, 0), *c = qbt_open(b, pb, 0, 0);
    int ret = qb_compare(b, a, c, flags, log ? log_progress : NULL, log, res);

    qbt_close(b, &a);
    qbt_close(b, &c);
    return ret;
}

START_TEST(compare_finds_first_difference)
{
    QBroker *b = NULL;
    QBlockCompareResult res;
    ProgressLog log;
    uint8_t *model = malloc(SRC_SIZE), byte = 0x99, zeros[4096] = { 0 };
    char ap[PATH_MAX], bp[PATH_MAX], big[PATH_MAX];

    ck_assert_ptr_nonnull(model);
    qbt_path(ap, sizeof(ap), "cmp-a.raw");
    qbt_path(bp, sizeof(bp), "cmp-b.raw");
    qbt_path(big, sizeof(big), "cmp-big.raw");
    ck_assert_int_eq(qb_broker_new(&b), 0);
    make_source(ap, model, SRC_SIZE, 3);
    make_source(bp, model, SRC_SIZE, 3);

    /* Equal: 0, progress reaching the size without going back. */
    memset(&log, 0, sizeof(log));
    ck_assert_int_eq(compare_files(b, ap, bp, 0, &res, &log), 0);
    ck_assert_int_eq(res.mismatch, QB_COMPARE_SAME);
    ck_assert(!res.size_differs);
    ck_assert(!log.went_back);
    ck_assert_uint_eq(log.last_done, SRC_SIZE);
    ck_assert_uint_eq(log.total, SRC_SIZE);

    /* One byte in a hole, unaligned: reported at its sector. */
    qbt_pwrite_file(bp, &byte, 1, 3 * MIB + 1000);
    ck_assert_int_eq(compare_files(b, ap, bp, 0, &res, NULL), 1);
    ck_assert_int_eq(res.mismatch, QB_COMPARE_CONTENT);
    ck_assert_uint_eq(res.offset, 3 * MIB + 512);
    /* An earlier one, inside data, wins. */
    byte = (uint8_t)(model[1 * MIB] ^ 1);
    qbt_pwrite_file(bp, &byte, 1, 1 * MIB);
    ck_assert_int_eq(compare_files(b, bp, ap, QB_COMPARE_STRICT, &res, NULL), 1);
    ck_assert_int_eq(res.mismatch, QB_COMPARE_CONTENT);
    ck_assert_uint_eq(res.offset, 1 * MIB);

    /* Sizes: a zero tail is equal unless strict; data in the tail differs. */
    make_source(big, model, SRC_SIZE, 3);
    ck_assert_int_eq(truncate(big, SRC_SIZE + MIB), 0);
    ck_assert_int_eq(compare_files(b, ap, big, 0, &res, NULL), 0);
    ck_assert(res.size_differs);
    ck_assert_int_eq(compare_files(b, big, ap, QB_COMPARE_STRICT, &res, NULL), 1);
    ck_assert_int_eq(res.mismatch, QB_COMPARE_SIZE);
    byte = 1;
    qbt_pwrite_file(big, &byte, 1, SRC_SIZE + 4096);
    memset(&log, 0, sizeof(log));
    ck_assert_int_eq(compare_files(b, big, ap, 0, &res, &log), 1);
    ck_assert_int_eq(res.mismatch, QB_COMPARE_CONTENT);
    ck_assert_uint_eq(res.offset, SRC_SIZE + 4096);
    ck_assert(res.size_differs);
    ck_assert_uint_eq(log.total, SRC_SIZE + MIB);
    ck_assert(!log.went_back);

    /* Strict: zeros written as data where the other has a hole differ in status only. */
    make_source(bp, model, SRC_SIZE, 3);
    qbt_pwrite_file(bp, zeros, sizeof(zeros), 4 * MIB);
    ck_assert_int_eq(compare_files(b, ap, bp, 0, &res, NULL), 0);
    ck_assert_int_eq(compare_files(b, ap, bp, QB_COMPARE_STRICT, &res, NULL), 1);
    ck_assert_int_eq(res.mismatch, QB_COMPARE_STATUS);
    ck_assert_uint_le(res.offset, 4 * MIB);

    /* Cancellation through the callback. */
    memset(&log, 0, sizeof(log));
    log.cancel_at = 1;
    EXPECT_FAIL(b, compare_files(b, ap, bp, 0, &res, &log), QB_ERR_CANCELED, "canceled");
    ck_assert_int_eq(qb_error_get_errno(b), ECANCELED);
    ck_assert_int_eq(log.calls, 1);
    qb_broker_delete(&b);
    free(model);
}
END_TEST

static Suite *convert_suite(void)
{
    Suite *s = suite_create("api_convert");
    TCase *tc = tcase_create("convert");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, convert_bad_arguments_invalid_param);
    tcase_add_test(tc, convert_compressed_sources_not_whole_clusters_invalid_param);
    tcase_add_loop_test(tc, convert_two_sources_equal_model, 0,
                        (int)(sizeof(copies) / sizeof(copies[0])));
    tcase_add_test(tc, convert_into_existing_target_overwrites_everything);
    tcase_add_loop_test(tc, convert_progress_cancel_stops, 0, 2);
    tcase_add_test(tc, convert_requests_1_and_16_same_file);
    tcase_add_test(tc, convert_read_fault_reported);
    tcase_add_test(tc, compare_bad_arguments_invalid_param);
    tcase_add_test(tc, compare_finds_first_difference);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    const char *fault_dir = getenv("QBT_CONVERT_FAULT_CHILD");

    (void)argc;
    if (fault_dir) {
        return fault_child(fault_dir);
    }
    if (!realpath(argv[0], self_path)) {
        fprintf(stderr, "check_api_convert: cannot resolve %s: %s\n", argv[0], strerror(errno));
        return 1;
    }
    return qbt_run(convert_suite(), argv[0]);
}
