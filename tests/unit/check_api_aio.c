/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_api_aio.c: vectored (qb_readv/qb_writev) and asynchronous (qb_aio_*)
 * requests: completion through the eventfd, many requests in flight checked
 * against an in-memory model and a plain pread of the file (or qemu-img's
 * conversion of a qcow2 image), ordering of overlapping writes, flush,
 * cancellation, the queue depth, errors at submission and in completions,
 * and the drain that closing does.
 */
#include "qbtest.h"

#include <poll.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define KiB 1024
#define MiB (1024 * 1024)

/* What the callbacks of one test record. */
typedef struct Done {
    int count;
    int64_t last_ret;
    int order[1024];        /* the tags of completed requests, in completion order */
    int64_t rets[1024];     /* by tag */
} Done;

typedef struct Tag {
    Done *done;
    int tag;
} Tag;

static void on_done(QBlockAIOReq *req, int64_t ret, void *opaque)
{
    Tag *t = opaque;

    (void)req;
    ck_assert_int_lt(t->done->count, 1024);
    t->done->order[t->done->count++] = t->tag;
    t->done->rets[t->tag] = ret;
    t->done->last_ret = ret;
}

/* Wait until the fd polls readable, then run the completions; how many ran. */
static int wait_completions(QBroker *b, QBlockState *qbs)
{
    int fd = qb_aio_get_fd(b, qbs);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n;

    ck_assert_msg(fd >= 0, "qb_aio_get_fd: %d %s", fd, qbt_msg(b));
    ck_assert_int_eq(poll(&p, 1, 60000), 1);
    n = qb_aio_run_completions(b, qbs);
    ck_assert_msg(n >= 0, "qb_aio_run_completions: %d %s", n, qbt_msg(b));
    return n;
}

/* Run completions until @done has counted @want callbacks. */
static void wait_for(QBroker *b, QBlockState *qbs, Done *done, int want)
{
    while (done->count < want) {
        wait_completions(b, qbs);
    }
}

static QBlockState *new_image(QBroker *b, char *path, size_t size, const char *name,
                              enum QBlockFmtType fmt, uint64_t bytes, int flag)
{
    qbt_path(path, size, name);
    qbt_create_fmt(b, path, fmt, bytes);
    return qbt_open_fmt(b, fmt, path, flag);
}

/* The virtual content of a qcow2 image, read by qemu-img (converted to raw) into @buf. */
static void qemu_img_content(const char *qcow2, uint8_t *buf, size_t len)
{
    const char *qemu_img = qbt_qemu_img();
    char raw[PATH_MAX], cmd[3 * PATH_MAX];
    int st;

    ck_assert_msg(qemu_img != NULL, "qemu-img is needed as the oracle of this test");
    snprintf(raw, sizeof(raw), "%s.raw", qcow2);
    snprintf(cmd, sizeof(cmd), "'%s' convert -U -f qcow2 -O raw '%s' '%s'", qemu_img, qcow2, raw);
    st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed", cmd);
    ck_assert_int_eq(qbt_file_size(raw), (off_t)len);
    qbt_pread_file(raw, buf, len, 0);
    unlink(raw);
}

/* ------------------------------------------------------------------ */

START_TEST(aio_read_completes_through_fd)
{
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    uint8_t want[8192], got[8192];
    Done done = { 0 };
    Tag t = { &done, 0 };
    QBlockAIOReq *req = NULL;
    QbtRng rng;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "read.raw");
    qbt_make_sparse_file(path, 1 * MiB);
    qbt_rng_seed(&rng, qbt_seed("aio-read"));
    qbt_rng_fill(&rng, want, sizeof(want));
    qbt_pwrite_file(path, want, sizeof(want), 4096);

    qbs = qbt_open(b, path, 0, 0);
    memset(got, 0, sizeof(got));
    ck_assert_int_eq(qb_aio_read(b, qbs, got, 5000, 4097, on_done, &t, &req), 0);
    ck_assert_ptr_nonnull(req);
    wait_for(b, qbs, &done, 1);
    ck_assert_int_eq(done.last_ret, 5000);
    qbt_assert_same(got, want + 1, 5000, "aio read");
    /* Nothing is due any more. */
    ck_assert_int_eq(qb_aio_run_completions(b, qbs), 0);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/*
 * 600 requests of random sizes and unaligned offsets, up to 64 in flight,
 * writes into disjoint stripes and reads of already written stripes, then
 * the file compared with the model.
 */
static void many_in_flight(enum QBlockFmtType fmt, const char *name)
{
    enum { N = 600, STRIPE = 64 * KiB, DEPTH = 64 };
    const uint64_t size = (uint64_t)N * STRIPE;
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    uint8_t *model = calloc(1, size), *bufs = malloc(size), *file = malloc(size);
    Done done = { 0 };
    Tag *tags = calloc(N, sizeof(*tags));
    QbtRng rng;
    int submitted = 0;

    ck_assert(model && bufs && file && tags);
    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbs = new_image(b, path, sizeof(path), name, fmt, size, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    ck_assert_int_eq(qb_aio_set_max_queue_depth(b, qbs, DEPTH), 0);
    qbt_rng_seed(&rng, qbt_seed(name));
    for (int i = 0; i < N; i++) {
        uint64_t off = (uint64_t)i * STRIPE + qbt_rng_below(&rng, 4 * KiB);
        uint64_t len = 1 + qbt_rng_below(&rng, STRIPE - 4 * KiB);
        int ret;

        tags[i].done = &done;
        tags[i].tag = i;
        qbt_rng_fill(&rng, bufs + off, len);
        memcpy(model + off, bufs + off, len);
        for (;;) {
            ret = qb_aio_write(b, qbs, bufs + off, len, off, on_done, &tags[i], NULL);
            if (ret != QB_ERR_BUSY) {
                break;
            }
            ck_assert_int_eq(submitted - done.count, DEPTH);
            wait_completions(b, qbs);
        }
        ck_assert_msg(ret == 0, "qb_aio_write %d: %d %s", i, ret, qbt_msg(b));
        submitted++;
    }
    ck_assert_int_ge(qb_aio_drain(b, qbs), 0);
    ck_assert_int_eq(done.count, N);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(done.rets[i] > 0, "write %d completed with %lld", i, (long long)done.rets[i]);
    }
    /* Read every stripe back asynchronously into a second buffer. */
    memset(&done, 0, sizeof(done));
    memset(bufs, 0xee, size);
    for (int i = 0; i < N; i++) {
        while (qb_aio_read(b, qbs, bufs + (uint64_t)i * STRIPE, STRIPE, (uint64_t)i * STRIPE,
                           on_done, &tags[i], NULL) == QB_ERR_BUSY) {
            wait_completions(b, qbs);
        }
    }
    qb_aio_drain(b, qbs);
    ck_assert_int_eq(done.count, N);
    qbt_assert_same(bufs, model, size, "aio reads");
    qbt_close(b, &qbs);

    /* The independent view: the raw file itself, or qemu-img's reading of qcow2. */
    if (fmt == QB_FMT_RAW) {
        qbt_pread_file(path, file, size, 0);
    } else {
        qemu_img_content(path, file, size);
    }
    qbt_assert_same(file, model, size, "image content");
    free(model);
    free(bufs);
    free(file);
    free(tags);
    qb_broker_delete(&b);
}

START_TEST(aio_many_in_flight_raw)
{
    many_in_flight(QB_FMT_RAW, "many.raw");
}
END_TEST

START_TEST(aio_many_in_flight_qcow2)
{
    many_in_flight(QB_FMT_QCOW2, "many.qcow2");
}
END_TEST

/*
 * 200 writes over one 96 KiB window at unaligned offsets, each with its own
 * byte, submitted at once: overlapping ones must complete in submission order and the
 * image must hold the result of applying them in that order.
 */
static void overlapping_writes(enum QBlockFmtType fmt, const char *name)
{
    enum { N = 200, WIN = 96 * KiB };
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    static uint8_t bufs[N][32 * KiB];
    uint8_t model[WIN], got[WIN];
    uint64_t offs[N], lens[N];
    int pos[N];
    Done done = { 0 };
    Tag tags[N];
    QbtRng rng;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbs = new_image(b, path, sizeof(path), name, fmt, 1 * MiB, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    ck_assert_int_eq(qb_aio_set_max_queue_depth(b, qbs, N), 0);
    memset(model, 0, sizeof(model));
    qbt_rng_seed(&rng, qbt_seed(name));
    for (int i = 0; i < N; i++) {
        uint64_t off = qbt_rng_below(&rng, WIN - 32 * KiB);
        uint64_t len = 1 + qbt_rng_below(&rng, 32 * KiB);
        int ret;

        offs[i] = off;
        lens[i] = len;
        memset(bufs[i], i + 1, len);
        memcpy(model + off, bufs[i], len);
        tags[i].done = &done;
        tags[i].tag = i;
        ret = qb_aio_write(b, qbs, bufs[i], len, 4096 + off, on_done, &tags[i], NULL);
        ck_assert_msg(ret == 0, "write %d: %d %s", i, ret, qbt_msg(b));
    }
    ck_assert_int_eq(qb_aio_drain(b, qbs), N);
    ck_assert_int_eq(done.count, N);
    for (int i = 0; i < N; i++) {
        pos[done.order[i]] = i;
        ck_assert_int_gt(done.rets[i], 0);
    }
    /* Overlapping pairs complete in submission order; the others in any. */
    for (int i = 0; i < N; i++) {
        for (int j = i + 1; j < N; j++) {
            if (offs[i] < offs[j] + lens[j] && offs[j] < offs[i] + lens[i]) {
                ck_assert_msg(pos[i] < pos[j], "overlapping writes %d and %d completed as %d, %d",
                              i, j, pos[i], pos[j]);
            }
        }
    }
    ck_assert_int_eq(qb_read(b, qbs, got, WIN, 4096), WIN);
    qbt_assert_same(got, model, WIN, "overlapping writes");
    qbt_close(b, &qbs);
    if (fmt == QB_FMT_RAW) {
        qbt_pread_file(path, got, WIN, 4096);
        qbt_assert_same(got, model, WIN, "file after overlapping writes");
    }
    qb_broker_delete(&b);
}

START_TEST(aio_overlapping_writes_in_order_raw)
{
    overlapping_writes(QB_FMT_RAW, "overlap.raw");
}
END_TEST

START_TEST(aio_overlapping_writes_in_order_qcow2)
{
    overlapping_writes(QB_FMT_QCOW2, "overlap.qcow2");
}
END_TEST

/* A read submitted after an overlapping write sees that write. */
START_TEST(aio_read_after_write_sees_it)
{
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    static uint8_t wbuf[4 * MiB], rbuf[4 * MiB];
    Done done = { 0 };
    Tag tw = { &done, 0 }, tr = { &done, 1 };

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbs = new_image(b, path, sizeof(path), "raw-after.qcow2", QB_FMT_QCOW2, 8 * MiB,
                    LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    memset(wbuf, 0x5a, sizeof(wbuf));
    ck_assert_int_eq(qb_aio_write(b, qbs, wbuf, sizeof(wbuf), 1000, on_done, &tw, NULL), 0);
    ck_assert_int_eq(qb_aio_read(b, qbs, rbuf, sizeof(rbuf), 0, on_done, &tr, NULL), 0);
    qb_aio_drain(b, qbs);
    ck_assert_int_eq(done.count, 2);
    ck_assert_int_eq(done.order[0], 0);
    qbt_assert_bytes(rbuf, 0, 1000, "before the write");
    qbt_assert_bytes(rbuf + 1000, 0x5a, sizeof(rbuf) - 1000, "the write");
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/* A flush after completed writes succeeds, and the writes are in the file. */
START_TEST(aio_flush_after_writes)
{
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    static uint8_t buf[256 * KiB], file[256 * KiB];
    Done done = { 0 };
    Tag tags[9];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbs = new_image(b, path, sizeof(path), "flush.raw", QB_FMT_RAW, 4 * MiB,
                    LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    for (int i = 0; i < 8; i++) {
        tags[i].done = &done;
        tags[i].tag = i;
        memset(buf + i * 32 * KiB, 0x10 + i, 32 * KiB);
        ck_assert_int_eq(qb_aio_write(b, qbs, buf + i * 32 * KiB, 32 * KiB, (uint64_t)i * 32 * KiB,
                                      on_done, &tags[i], NULL), 0);
    }
    wait_for(b, qbs, &done, 8);
    tags[8].done = &done;
    tags[8].tag = 8;
    ck_assert_int_eq(qb_aio_flush(b, qbs, on_done, &tags[8], NULL), 0);
    wait_for(b, qbs, &done, 9);
    ck_assert_int_eq(done.order[8], 8);
    ck_assert_int_eq(done.rets[8], 0);
    qbt_pread_file(path, file, sizeof(file), 0);
    qbt_assert_same(file, buf, sizeof(buf), "flushed writes");
    /* A flush on a read-only state is allowed, as qb_flush is. */
    qbt_close(b, &qbs);
    qbs = qbt_open(b, path, 0, 0);
    memset(&done, 0, sizeof(done));
    ck_assert_int_eq(qb_aio_flush(b, qbs, on_done, &tags[0], NULL), 0);
    wait_for(b, qbs, &done, 1);
    ck_assert_int_eq(done.rets[0], 0);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/*
 * A write queued behind an overlapping one cannot have started, so
 * cancelling it must succeed, complete it with QB_ERR_CANCELED and leave its
 * bytes unwritten; a request that already finished (its completion due,
 * callback not yet run) is not cancelled and keeps its own result.
 */
START_TEST(aio_cancel_queued_and_finished)
{
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    static uint8_t big[16 * MiB], small[4 * KiB], file[16 * MiB];
    Done done = { 0 };
    Tag t0 = { &done, 0 }, t1 = { &done, 1 }, t2 = { &done, 2 };
    QBlockAIOReq *r1 = NULL, *r2 = NULL;
    struct pollfd p;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbs = new_image(b, path, sizeof(path), "cancel.raw", QB_FMT_RAW, 32 * MiB,
                    LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    memset(big, 0x11, sizeof(big));
    memset(small, 0x22, sizeof(small));
    ck_assert_int_eq(qb_aio_write(b, qbs, big, sizeof(big), 0, on_done, &t0, NULL), 0);
    ck_assert_int_eq(qb_aio_write(b, qbs, small, sizeof(small), 8 * MiB, on_done, &t1, &r1), 0);
    ck_assert_int_eq(qb_aio_cancel(b, r1), 1);
    wait_for(b, qbs, &done, 2);
    ck_assert_int_eq(done.rets[1], QB_ERR_CANCELED);
    ck_assert_int_eq(done.rets[0], (int64_t)sizeof(big));
    ck_assert_str_eq(qb_strerror(QB_ERR_CANCELED), "request cancelled");
    qbt_pread_file(path, file, sizeof(file), 0);
    qbt_assert_bytes(file, 0x11, sizeof(file), "the cancelled write left no trace");

    /* Finished, not yet completed: too late to cancel. */
    ck_assert_int_eq(qb_aio_write(b, qbs, small, sizeof(small), 20 * MiB, on_done, &t2, &r2), 0);
    p.fd = qb_aio_get_fd(b, qbs);
    p.events = POLLIN;
    ck_assert_int_eq(poll(&p, 1, 60000), 1);
    ck_assert_int_eq(qb_aio_cancel(b, r2), 0);
    wait_for(b, qbs, &done, 3);
    ck_assert_int_eq(done.rets[2], (int64_t)sizeof(small));
    qbt_pread_file(path, file, sizeof(small), 20 * MiB);
    qbt_assert_bytes(file, 0x22, sizeof(small), "the uncancelled write");
    EXPECT_FAIL(b, qb_aio_cancel(b, NULL), QB_ERR_INVALID_PARAM, "NULL");
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/* Completions not yet run hold their slots, so the fifth of four fails at once. */
START_TEST(aio_queue_full_is_busy)
{
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    uint8_t buf[4][512];
    Done done = { 0 };
    Tag tags[5];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbs = new_image(b, path, sizeof(path), "busy.raw", QB_FMT_RAW, 1 * MiB, 0);
    EXPECT_FAIL(b, qb_aio_set_max_queue_depth(b, qbs, 0), QB_ERR_INVALID_PARAM, "depth");
    EXPECT_FAIL(b, qb_aio_set_max_queue_depth(b, qbs, QB_AIO_MAX_QUEUE_DEPTH + 1),
                QB_ERR_INVALID_PARAM, "depth");
    ck_assert_int_eq(qb_aio_set_max_queue_depth(b, qbs, 4), 0);
    for (int i = 0; i < 5; i++) {
        tags[i].done = &done;
        tags[i].tag = i;
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(qb_aio_read(b, qbs, buf[i], 512, (uint64_t)i * 512, on_done, &tags[i], NULL), 0);
    }
    EXPECT_FAIL(b, qb_aio_read(b, qbs, buf[0], 512, 0, on_done, &tags[4], NULL), QB_ERR_BUSY,
                "queue depth");
    EXPECT_FAIL(b, qb_aio_flush(b, qbs, on_done, &tags[4], NULL), QB_ERR_BUSY, "queue depth");
    wait_for(b, qbs, &done, 1);
    ck_assert_int_eq(qb_aio_read(b, qbs, buf[0], 512, 0, on_done, &tags[4], NULL), 0);
    ck_assert_int_ge(qb_aio_drain(b, qbs), 0);
    ck_assert_int_eq(done.count, 5);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/* Big-endian helpers for patching a qcow2 header. */
static uint64_t be64_at(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

START_TEST(aio_errors_at_submit_and_in_completion)
{
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    uint8_t buf[4096], hdr[64], entry[8];
    Done done = { 0 };
    Tag t = { &done, 0 };
    uint64_t l1_off, l2_off;
    int64_t sync_ret;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbs = new_image(b, path, sizeof(path), "err.qcow2", QB_FMT_QCOW2, 1 * MiB, LIBQBLOCK_O_RDWR);
    memset(buf, 0x77, sizeof(buf));
    ck_assert_int_eq(qb_write(b, qbs, buf, sizeof(buf), 0), (int64_t)sizeof(buf));
    /* Argument and state errors come back from the submitting call. */
    EXPECT_FAIL(b, qb_aio_read(b, qbs, buf, 4096, 1 * MiB - 100, on_done, &t, NULL),
                QB_ERR_BLOCK_OUT_OF_RANGE, "outside");
    EXPECT_FAIL(b, qb_aio_readv(b, qbs, &iov, 1, 1 * MiB, on_done, &t, NULL),
                QB_ERR_BLOCK_OUT_OF_RANGE, "outside");
    EXPECT_FAIL(b, qb_aio_discard(b, qbs, 1 * MiB, 1, on_done, &t, NULL),
                QB_ERR_BLOCK_OUT_OF_RANGE, "outside");
    EXPECT_FAIL(b, qb_aio_read(b, qbs, buf, 4096, 0, NULL, &t, NULL), QB_ERR_INVALID_PARAM,
                "callback");
    EXPECT_FAIL(b, qb_aio_read(b, qbs, NULL, 4096, 0, on_done, &t, NULL), QB_ERR_INVALID_PARAM,
                "NULL");
    EXPECT_FAIL(b, qb_aio_writev(b, qbs, &iov, -1, 0, on_done, &t, NULL), QB_ERR_INVALID_PARAM,
                "vector");
    EXPECT_FAIL(b, qb_aio_writev(b, qbs, &iov, QB_IOV_MAX + 1, 0, on_done, &t, NULL),
                QB_ERR_INVALID_PARAM, "vector");
    EXPECT_FAIL(b, qb_aio_read(NULL, qbs, buf, 1, 0, on_done, &t, NULL), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(b, qb_aio_get_fd(b, NULL), QB_ERR_INVALID_PARAM, "NULL state");
    EXPECT_FAIL(b, qb_aio_drain(b, NULL), QB_ERR_INVALID_PARAM, "NULL state");
    EXPECT_FAIL(b, qb_aio_run_completions(b, NULL), QB_ERR_INVALID_PARAM, "NULL state");
    ck_assert_int_eq(done.count, 0);
    qbt_close(b, &qbs);

    /* A state that is not open. */
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    EXPECT_FAIL(b, qb_aio_flush(b, qbs, on_done, &t, NULL), QB_ERR_INVALID_PARAM, "not open");
    EXPECT_FAIL(b, qb_aio_get_fd(b, qbs), QB_ERR_INVALID_PARAM, "not open");
    qb_state_delete(b, &qbs);

    /* Read-only states refuse writes and discards at submission. */
    qbs = qbt_open_fmt(b, QB_FMT_QCOW2, path, 0);
    EXPECT_FAIL(b, qb_aio_write(b, qbs, buf, 512, 0, on_done, &t, NULL), QB_ERR_READ_ONLY,
                "read-only");
    EXPECT_FAIL(b, qb_aio_writev(b, qbs, &iov, 1, 0, on_done, &t, NULL), QB_ERR_READ_ONLY,
                "read-only");
    EXPECT_FAIL(b, qb_aio_discard(b, qbs, 0, 512, on_done, &t, NULL), QB_ERR_READ_ONLY,
                "read-only");
    qbt_close(b, &qbs);

    /*
     * Errors found while running arrive in the callback: point the first L2
     * entry at an unaligned host offset, which the format must refuse, and
     * expect the asynchronous read to fail exactly as the synchronous one.
     */
    qbt_pread_file(path, hdr, sizeof(hdr), 0);
    l1_off = be64_at(hdr + 40);
    qbt_pread_file(path, entry, 8, (off_t)l1_off);
    l2_off = be64_at(entry) & 0x00fffffffffffe00ULL;
    ck_assert_uint_ne(l2_off, 0);
    qbt_pread_file(path, entry, 8, (off_t)l2_off);
    put_be64(entry, ((be64_at(entry) & 0x00fffffffffffe00ULL) + 512) | (1ULL << 63));
    qbt_pwrite_file(path, entry, 8, (off_t)l2_off);
    qbs = qbt_open_fmt(b, QB_FMT_QCOW2, path, 0);
    sync_ret = qb_read(b, qbs, buf, 4096, 0);
    ck_assert_msg(sync_ret < 0, "a corrupt L2 entry was read without error");
    ck_assert_int_eq(qb_aio_read(b, qbs, buf, 4096, 0, on_done, &t, NULL), 0);
    wait_for(b, qbs, &done, 1);
    ck_assert_int_eq(done.rets[0], sync_ret);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/* Closing with requests in flight waits for them and runs every callback. */
START_TEST(aio_close_drains)
{
    enum { N = 100 };
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    static uint8_t buf[N][16 * KiB], file[4 * MiB];
    Done done = { 0 };
    Tag tags[N];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbs = new_image(b, path, sizeof(path), "drain.qcow2", QB_FMT_QCOW2, 4 * MiB,
                    LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    for (int i = 0; i < N; i++) {
        tags[i].done = &done;
        tags[i].tag = i;
        memset(buf[i], i + 1, sizeof(buf[i]));
        ck_assert_int_eq(qb_aio_write(b, qbs, buf[i], sizeof(buf[i]), (uint64_t)i * sizeof(buf[i]),
                                      on_done, &tags[i], NULL), 0);
    }
    qbt_close(b, &qbs);
    ck_assert_int_eq(done.count, N);
    qemu_img_content(path, file, sizeof(file));
    for (int i = 0; i < N; i++) {
        qbt_assert_bytes(file + (size_t)i * sizeof(buf[i]), (uint8_t)(i + 1), sizeof(buf[i]),
                         "a write finished by the close");
    }
    qbt_assert_bytes(file + sizeof(buf), 0, sizeof(file) - sizeof(buf), "the rest");
    qb_broker_delete(&b);
}
END_TEST

/* qb_readv/qb_writev and their asynchronous forms with many small odd segments. */
static void odd_vectors(enum QBlockFmtType fmt, const char *name, bool async)
{
    enum { NSEG = 300 };
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    struct iovec wiov[NSEG], riov[NSEG];
    static uint8_t wmem[64 * KiB], rmem[64 * KiB], file[1 * MiB];
    uint8_t *model = calloc(1, 1 * MiB);
    uint64_t total = 0, off = 0;
    Done done = { 0 };
    Tag tw = { &done, 0 }, tr = { &done, 1 };
    QbtRng rng;
    int64_t ret;

    ck_assert_ptr_nonnull(model);
    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbs = new_image(b, path, sizeof(path), name, fmt, 1 * MiB, LIBQBLOCK_O_RDWR);
    qbt_rng_seed(&rng, qbt_seed(name));
    qbt_rng_fill(&rng, wmem, sizeof(wmem));
    /* Segments of 0 to 200 bytes at scattered places of the source memory. */
    for (int i = 0; i < NSEG; i++) {
        size_t len = i % 17 == 0 ? 0 : 1 + qbt_rng_below(&rng, 200);
        wiov[i].iov_base = wmem + (size_t)i * 200;
        wiov[i].iov_len = len;
        riov[i].iov_base = rmem + (size_t)i * 200;
        riov[i].iov_len = len;
        memcpy(model + 100003 + total, wiov[i].iov_base, len);
        total += len;
    }
    off = 100003;
    if (async) {
        ck_assert_int_eq(qb_aio_writev(b, qbs, wiov, NSEG, off, on_done, &tw, NULL), 0);
        ck_assert_int_eq(qb_aio_readv(b, qbs, riov, NSEG, off, on_done, &tr, NULL), 0);
        ck_assert_int_eq(qb_aio_drain(b, qbs), 2);
        ck_assert_int_eq(done.rets[0], (int64_t)total);
        ck_assert_int_eq(done.rets[1], (int64_t)total);
    } else {
        ret = qb_writev(b, qbs, wiov, NSEG, off);
        ck_assert_msg(ret == (int64_t)total, "qb_writev: %lld %s", (long long)ret, qbt_msg(b));
        ret = qb_readv(b, qbs, riov, NSEG, off);
        ck_assert_msg(ret == (int64_t)total, "qb_readv: %lld %s", (long long)ret, qbt_msg(b));
        EXPECT_FAIL(b, qb_readv(b, qbs, riov, NSEG, 1 * MiB - 10), QB_ERR_BLOCK_OUT_OF_RANGE,
                    "outside");
        EXPECT_FAIL(b, qb_writev(b, qbs, NULL, 1, 0), QB_ERR_INVALID_PARAM, "vector");
        ck_assert_int_eq(qb_readv(b, qbs, riov, 0, 0), 0);
    }
    for (int i = 0; i < NSEG; i++) {
        qbt_assert_same(riov[i].iov_base, wiov[i].iov_base, riov[i].iov_len, "segment");
    }
    qbt_close(b, &qbs);
    if (fmt == QB_FMT_RAW) {
        qbt_pread_file(path, file, sizeof(file), 0);
    } else {
        qemu_img_content(path, file, sizeof(file));
    }
    qbt_assert_same(file, model, sizeof(file), "image after writev");
    free(model);
    qb_broker_delete(&b);
}

START_TEST(readv_writev_odd_segments_raw)
{
    odd_vectors(QB_FMT_RAW, "odd.raw", false);
}
END_TEST

START_TEST(readv_writev_odd_segments_qcow2)
{
    odd_vectors(QB_FMT_QCOW2, "odd.qcow2", false);
}
END_TEST

START_TEST(aio_readv_writev_odd_segments_qcow2)
{
    odd_vectors(QB_FMT_QCOW2, "aodd.qcow2", true);
}
END_TEST

/* Callbacks may submit more requests; drain waits for those too. */
typedef struct Chain {
    QBlockState *qbs;
    QBroker *b;
    uint8_t buf[512];
    int left;
    int ran;
} Chain;

static void on_chain(QBlockAIOReq *req, int64_t ret, void *opaque)
{
    Chain *c = opaque;

    (void)req;
    ck_assert_int_eq(ret, 512);
    c->ran++;
    if (--c->left > 0) {
        ck_assert_int_eq(qb_aio_read(c->b, c->qbs, c->buf, 512, (uint64_t)c->left * 512,
                                     on_chain, c, NULL), 0);
    }
    /* Draining from inside a callback of the same state is refused. */
    EXPECT_FAIL(c->b, qb_aio_drain(c->b, c->qbs), QB_ERR_INVALID_PARAM, "completions");
}

START_TEST(aio_drain_follows_resubmissions)
{
    QBroker *b = NULL;
    char path[PATH_MAX];
    Chain c;

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(qb_broker_new(&b), 0);
    c.b = b;
    c.qbs = new_image(b, path, sizeof(path), "chain.raw", QB_FMT_RAW, 1 * MiB, 0);
    c.left = 50;
    ck_assert_int_eq(qb_aio_read(b, c.qbs, c.buf, 512, 0, on_chain, &c, NULL), 0);
    ck_assert_int_eq(qb_aio_drain(b, c.qbs), 50);
    ck_assert_int_eq(c.ran, 50);
    qbt_close(b, &c.qbs);
    qb_broker_delete(&b);
}
END_TEST

/*
 * A discard between two overlapping writes runs between them: the image
 * ends up as the same three calls made synchronously leave it.
 */
START_TEST(aio_discard_ordered_with_writes)
{
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX], spath[PATH_MAX];
    static uint8_t buf[256 * KiB], got[1 * MiB], want[1 * MiB];
    Done done = { 0 };
    Tag t0 = { &done, 0 }, t1 = { &done, 1 }, t2 = { &done, 2 };

    ck_assert_int_eq(qb_broker_new(&b), 0);
    memset(buf, 0x3c, sizeof(buf));
    qbs = new_image(b, spath, sizeof(spath), "discard-sync.qcow2", QB_FMT_QCOW2, 1 * MiB,
                    LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    ck_assert_int_eq(qb_write(b, qbs, buf, sizeof(buf), 0), (int64_t)sizeof(buf));
    ck_assert_int_eq(qb_discard(b, qbs, 0, 128 * KiB), 0);
    ck_assert_int_eq(qb_write(b, qbs, buf, 4096, 64 * KiB), 4096);
    qbt_close(b, &qbs);

    qbs = new_image(b, path, sizeof(path), "discard.qcow2", QB_FMT_QCOW2, 1 * MiB,
                    LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    ck_assert_int_eq(qb_aio_write(b, qbs, buf, sizeof(buf), 0, on_done, &t0, NULL), 0);
    ck_assert_int_eq(qb_aio_discard(b, qbs, 0, 128 * KiB, on_done, &t1, NULL), 0);
    ck_assert_int_eq(qb_aio_write(b, qbs, buf, 4096, 64 * KiB, on_done, &t2, NULL), 0);
    ck_assert_int_eq(qb_aio_drain(b, qbs), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(done.order[i], i);
    }
    ck_assert_int_eq(done.rets[1], 0);
    qbt_close(b, &qbs);
    qemu_img_content(spath, want, sizeof(want));
    qemu_img_content(path, got, sizeof(got));
    qbt_assert_same(got, want, sizeof(got), "async against sync");
    qbt_assert_bytes(got + 64 * KiB, 0x3c, 4096, "the last write");
    qbt_assert_bytes(got + 128 * KiB, 0x3c, 128 * KiB, "the first write's tail");
    qb_broker_delete(&b);
}
END_TEST

/*
 * A raw image opened with O_DIRECT and native AIO: aligned reads go to the
 * kernel from the submitting thread, unaligned ones to the workers, and a
 * read submitted behind an overlapping write waits for it; every byte is
 * checked against what plain pwrite put in the file.
 */
START_TEST(aio_native_reads_raw)
{
    enum { NREQ = 120, BLK = 4096 };
    const uint64_t size = 4 * MiB;
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX];
    uint8_t *model = malloc(size), *bufs, *wbuf;
    uint64_t offs[NREQ], lens[NREQ];
    Done done = { 0 };
    Tag tags[NREQ + 1];
    QbtRng rng;

    ck_assert_ptr_nonnull(model);
    ck_assert_int_eq(posix_memalign((void **)&bufs, BLK, (size_t)NREQ * 2 * BLK), 0);
    ck_assert_int_eq(posix_memalign((void **)&wbuf, BLK, BLK), 0);
    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "native.raw");
    qbt_rng_seed(&rng, qbt_seed("native"));
    qbt_rng_fill(&rng, model, size);
    qbt_make_sparse_file(path, (off_t)size);
    qbt_pwrite_file(path, model, size, 0);
    qbs = qbt_open(b, path, 0, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_NOCACHE | LIBQBLOCK_O_NATIVE_AIO |
                               LIBQBLOCK_O_CACHE_WB);
    ck_assert_int_eq(qb_aio_set_max_queue_depth(b, qbs, NREQ + 1), 0);
    for (int i = 0; i < NREQ; i++) {
        bool aligned = i % 4 != 3;
        tags[i].done = &done;
        tags[i].tag = i;
        offs[i] = aligned ? qbt_rng_below(&rng, size / BLK) * BLK : qbt_rng_below(&rng, size - 2 * BLK);
        lens[i] = aligned ? BLK * (1 + (uint64_t)(i % 2)) : 1 + qbt_rng_below(&rng, 2 * BLK - 1);
        ck_assert_int_eq(qb_aio_read(b, qbs, bufs + (size_t)i * 2 * BLK, lens[i], offs[i], on_done,
                                     &tags[i], NULL), 0);
        /* Halfway, a write to the block the next read reads. */
        if (i == NREQ / 2) {
            memset(wbuf, 0xa5, BLK);
            memset(model + 8 * BLK, 0xa5, BLK);
            tags[NREQ].done = &done;
            tags[NREQ].tag = NREQ;
            ck_assert_int_eq(qb_aio_write(b, qbs, wbuf, BLK, 8 * BLK, on_done, &tags[NREQ], NULL), 0);
            offs[i + 1] = 8 * BLK;
            lens[i + 1] = BLK;
            tags[i + 1].done = &done;
            tags[i + 1].tag = i + 1;
            ck_assert_int_eq(qb_aio_read(b, qbs, bufs + (size_t)(i + 1) * 2 * BLK, BLK, 8 * BLK,
                                         on_done, &tags[i + 1], NULL), 0);
            i++;
        }
    }
    ck_assert_int_eq(qb_aio_drain(b, qbs), NREQ + 1);
    for (int i = 0; i < NREQ; i++) {
        ck_assert_msg(done.rets[i] == (int64_t)lens[i], "read %d: %lld", i, (long long)done.rets[i]);
        qbt_assert_same(bufs + (size_t)i * 2 * BLK, model + offs[i], lens[i], "native read");
    }
    ck_assert_int_eq(done.rets[NREQ], BLK);
    qbt_close(b, &qbs);
    qbt_pread_file(path, bufs, BLK, 8 * BLK);
    qbt_assert_bytes(bufs, 0xa5, BLK, "the write");
    free(model);
    free(bufs);
    free(wbuf);
    qb_broker_delete(&b);
}
END_TEST

/*
 * The same on qcow2, whose reads translate first: data clusters go to the
 * kernel, zero clusters and holes complete at once, and a compressed
 * cluster or a read across two clusters apart in the file goes to the
 * workers. qemu-io writes the image; qemu-img's reading of it is the model.
 */
START_TEST(aio_native_reads_qcow2)
{
    enum { NREQ = 300, BLK = 4096 };
    const uint64_t size = 8 * MiB;
    QBroker *b = NULL;
    QBlockState *qbs;
    char path[PATH_MAX], cmd[2 * PATH_MAX + 512];
    uint8_t *model = malloc(size), *bufs;
    uint64_t offs[NREQ], lens[NREQ];
    Done done = { 0 };
    Tag tags[NREQ];
    QbtRng rng;
    int st;

    ck_assert_ptr_nonnull(model);
    ck_assert_int_eq(posix_memalign((void **)&bufs, BLK, (size_t)NREQ * 16 * BLK), 0);
    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "native.qcow2");
    snprintf(cmd, sizeof(cmd),
             "'%s' create -q -f qcow2 '%s' 8M && qemu-io -f qcow2 -c 'write -P 0x11 0 1M' "
             "-c 'write -z 1M 256k' -c 'write -c -P 0x22 2M 64k' -c 'write -P 0x44 5184k 64k' "
             "-c 'write -P 0x55 5M 64k' '%s' >/dev/null",
             qbt_qemu_img(), path, path);
    st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed", cmd);
    qemu_img_content(path, model, size);
    qbt_rng_seed(&rng, qbt_seed("native-qcow2"));
    qbs = qbt_open_fmt(b, QB_FMT_QCOW2, path, LIBQBLOCK_O_NOCACHE | LIBQBLOCK_O_NATIVE_AIO);
    ck_assert_int_eq(qb_aio_set_max_queue_depth(b, qbs, NREQ), 0);
    /* One synchronous read first, so that the L2 table is cached and reads can go native. */
    ck_assert_int_eq(qb_read(b, qbs, bufs, BLK, 0), BLK);
    for (int i = 0; i < NREQ; i++) {
        tags[i].done = &done;
        tags[i].tag = i;
        switch (i % 4) {
        case 0:         /* 4 KiB, aligned */
            offs[i] = qbt_rng_below(&rng, size / BLK) * BLK;
            lens[i] = BLK;
            break;
        case 1:         /* a whole cluster */
            offs[i] = qbt_rng_below(&rng, size / (64 * KiB)) * 64 * KiB;
            lens[i] = 64 * KiB;
            break;
        case 2:         /* across the two clusters written in reverse order */
            offs[i] = 5 * MiB + 60 * KiB;
            lens[i] = 8 * KiB;
            break;
        default:        /* unaligned */
            offs[i] = qbt_rng_below(&rng, size - 64 * KiB);
            lens[i] = 1 + qbt_rng_below(&rng, 64 * KiB - 1);
            break;
        }
        ck_assert_int_eq(qb_aio_read(b, qbs, bufs + (size_t)i * 16 * BLK, lens[i], offs[i],
                                     on_done, &tags[i], NULL), 0);
    }
    ck_assert_int_eq(qb_aio_drain(b, qbs), NREQ);
    for (int i = 0; i < NREQ; i++) {
        ck_assert_msg(done.rets[i] == (int64_t)lens[i], "read %d: %lld", i, (long long)done.rets[i]);
        qbt_assert_same(bufs + (size_t)i * 16 * BLK, model + offs[i], lens[i], "native qcow2 read");
    }
    qbt_close(b, &qbs);
    free(model);
    free(bufs);
    qb_broker_delete(&b);
}
END_TEST

static Suite *aio_suite(void)
{
    Suite *s = suite_create("api_aio");
    TCase *tc = tcase_create("aio");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, aio_read_completes_through_fd);
    tcase_add_test(tc, aio_many_in_flight_raw);
    tcase_add_test(tc, aio_many_in_flight_qcow2);
    tcase_add_test(tc, aio_overlapping_writes_in_order_raw);
    tcase_add_test(tc, aio_overlapping_writes_in_order_qcow2);
    tcase_add_test(tc, aio_read_after_write_sees_it);
    tcase_add_test(tc, aio_flush_after_writes);
    tcase_add_test(tc, aio_cancel_queued_and_finished);
    tcase_add_test(tc, aio_queue_full_is_busy);
    tcase_add_test(tc, aio_errors_at_submit_and_in_completion);
    tcase_add_test(tc, aio_close_drains);
    tcase_add_test(tc, readv_writev_odd_segments_raw);
    tcase_add_test(tc, readv_writev_odd_segments_qcow2);
    tcase_add_test(tc, aio_readv_writev_odd_segments_qcow2);
    tcase_add_test(tc, aio_drain_follows_resubmissions);
    tcase_add_test(tc, aio_discard_ordered_with_writes);
    tcase_add_test(tc, aio_native_reads_raw);
    tcase_add_test(tc, aio_native_reads_qcow2);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(aio_suite(), argv[0]);
}
