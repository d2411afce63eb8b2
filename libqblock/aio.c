/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * aio.c: asynchronous requests on an image state: a per-state pool of worker
 * threads runs the synchronous request code, and completions are handed
 * back to the caller's thread through an eventfd.
 *
 * Invariants (all under QbAio.lock):
 *  1. Every request is on exactly one of: the queue (not started), the
 *     running list, or the done list (finished, callback not yet run).
 *     `outstanding` counts all three; it is what the queue depth limits.
 *  2. A queued request starts only when no running request and no request
 *     queued before it overlaps it with a write or discard on either side.
 *     Because of that a later request that conflicts with an earlier one
 *     can never be running while the earlier one is queued, so checking the
 *     running list and the queue ahead is enough; overlapping writes thus
 *     finish, and reach the done list, in submission order.
 *  3. A worker writes the eventfd after putting a request on the done list,
 *     and qb_aio_run_completions reads the eventfd before taking the list,
 *     so no completion is left behind unsignalled (a spurious wake-up with
 *     an empty list is possible and harmless).
 *  4. Callbacks run with the lock released, so they may submit and cancel.
 *  5. Native reads (raw images opened with LIBQBLOCK_O_NOCACHE |
 *     LIBQBLOCK_O_NATIVE_AIO) bypass the workers: a read that may start at
 *     once is put on the running list and submitted to the kernel from the
 *     submitting thread, and the kernel signals the same eventfd when it
 *     completes; qb_aio_run_completions reaps it (bdrv_aio_poll). A read the
 *     node cannot take that way goes back to the queue in submission order.
 *     The block layer may call the completion with its own lock held, so
 *     this file never calls into the block layer with QbAio.lock held.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

#define AIO_MAX_THREADS 16

typedef enum AioOp { AIO_READ, AIO_WRITE, AIO_FLUSH, AIO_DISCARD } AioOp;
typedef enum AioReqState { AIO_QUEUED, AIO_RUNNING, AIO_DONE } AioReqState;

struct QBlockAIOReq {
    struct QbAio *aio;
    AioOp op;
    AioReqState state;
    uint64_t offset, len;       /* the byte range (none for a flush) */
    QBIOVector qiov;            /* the caller's buffers (read and write) */
    QBlockAIOFunc cb;
    void *opaque;
    int64_t ret;
    int err_no;                 /* of a failure, with its message (NULL if none) */
    char *err_msg;
    uint64_t seq;               /* submission order */
    QBlockAIOReq *prev, *next;  /* on the queue, running or done list */
};

typedef struct AioList {
    QBlockAIOReq *head, *tail;
} AioList;

typedef struct QbAio {
    QBlockState *qbs;
    pthread_mutex_t lock;
    pthread_cond_t work_cond;   /* a request was queued, or a conflict went away */
    AioList queue, running, done;
    uint64_t seq;               /* of the last request submitted */
    bool native_off;            /* the image takes no native asynchronous reads */
    bool native_used;           /* some were submitted: completions need reaping */
    int nwrites;                /* writes and discards queued or running */
    int outstanding;            /* see invariant 1 */
    bool stop;
    bool in_completions;        /* qb_aio_run_completions is running callbacks */
    int efd;
    int nthreads;
    pthread_t threads[AIO_MAX_THREADS];
} QbAio;

static void list_append(AioList *l, QBlockAIOReq *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail) {
        l->tail->next = r;
    } else {
        l->head = r;
    }
    l->tail = r;
}

static void list_remove(AioList *l, QBlockAIOReq *r)
{
    if (r->prev) {
        r->prev->next = r->next;
    } else {
        l->head = r->next;
    }
    if (r->next) {
        r->next->prev = r->prev;
    } else {
        l->tail = r->prev;
    }
    r->prev = r->next = NULL;
}

static bool req_is_write(const QBlockAIOReq *r)
{
    return r->op == AIO_WRITE || r->op == AIO_DISCARD;
}

/* Whether @a and @b must not run at the same time (invariant 2). */
static bool req_conflict(const QBlockAIOReq *a, const QBlockAIOReq *b)
{
    if (a->op == AIO_FLUSH || b->op == AIO_FLUSH || (!req_is_write(a) && !req_is_write(b))) {
        return false;
    }
    return a->offset < b->offset + b->len && b->offset < a->offset + a->len;
}

/* The first queued request that may start now, or NULL; lock held. */
static QBlockAIOReq *aio_pick(QbAio *aio)
{
    if (aio->nwrites == 0) {
        /* Only reads and flushes: nothing can conflict. */
        return aio->queue.head;
    }
    for (QBlockAIOReq *r = aio->queue.head; r; r = r->next) {
        bool blocked = false;
        for (QBlockAIOReq *o = aio->running.head; o && !blocked; o = o->next) {
            blocked = req_conflict(r, o);
        }
        for (QBlockAIOReq *o = aio->queue.head; o != r && !blocked; o = o->next) {
            blocked = req_conflict(r, o);
        }
        if (!blocked) {
            return r;
        }
    }
    return NULL;
}

static void aio_signal_fd(QbAio *aio)
{
    uint64_t one = 1;
    ssize_t n;

    /* Only fails when the counter would overflow, which means it is readable anyway. */
    do {
        n = write(aio->efd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

/*
 * Run one request with the worker's own broker; the result is a QB_ERR_* or
 * a length. A failure's message and errno stay on the request.
 */
static int64_t aio_execute(QBlockAIOReq *r)
{
    QBlockState *qbs = r->aio->qbs;
    QBroker broker;
    int64_t ret = QB_ERR_INTERNAL_ERR;

    memset(&broker, 0, sizeof(broker));
    switch (r->op) {
    case AIO_READ:
    case AIO_WRITE: {
        /* As the synchronous calls do: a truncate or check waits for this request. */
        state_shared_begin(qbs);
        ret = r->op == AIO_READ
              ? state_preadv(&broker, "qb_aio_read", qbs, &r->qiov, r->offset)
              : state_pwritev(&broker, "qb_aio_write", qbs, &r->qiov, r->offset);
        state_shared_end(qbs);
        break;
    }
    case AIO_FLUSH:
        ret = qb_flush(&broker, qbs);
        break;
    case AIO_DISCARD:
        ret = qb_discard(&broker, qbs, r->offset, r->len);
        break;
    }
    if (ret < 0) {
        /* Kept for library callers that report it (aio_req_error); no memory, no message. */
        r->err_no = broker.err_no;
        r->err_msg = strdup(broker.msg);
    }
    return ret;
}

/* Run queued request @r, which aio_pick chose, to the done list; lock held, released meanwhile. */
static void aio_run_one(QbAio *aio, QBlockAIOReq *r)
{
    bool was_write;

    list_remove(&aio->queue, r);
    r->state = AIO_RUNNING;
    list_append(&aio->running, r);
    pthread_mutex_unlock(&aio->lock);

    r->ret = aio_execute(r);

    pthread_mutex_lock(&aio->lock);
    list_remove(&aio->running, r);
    was_write = req_is_write(r);
    if (was_write) {
        aio->nwrites--;
    }
    r->state = AIO_DONE;
    list_append(&aio->done, r);
    aio_signal_fd(aio);
    /* A finished write may unblock queued requests that other workers gave up on. */
    if (was_write && aio->queue.head) {
        pthread_cond_broadcast(&aio->work_cond);
    }
}

static void *aio_worker(void *opaque)
{
    QbAio *aio = opaque;

    pthread_mutex_lock(&aio->lock);
    for (;;) {
        QBlockAIOReq *r = aio_pick(aio);

        if (!r) {
            if (aio->stop) {
                break;
            }
            pthread_cond_wait(&aio->work_cond, &aio->lock);
            continue;
        }
        aio_run_one(aio, r);
    }
    pthread_mutex_unlock(&aio->lock);
    return NULL;
}

int aio_help(QBlockState *qbs)
{
    QbAio *aio = qbs->aio;
    QBlockAIOReq *r;

    if (!aio) {
        return 0;
    }
    pthread_mutex_lock(&aio->lock);
    r = aio_pick(aio);
    if (r) {
        aio_run_one(aio, r);
    }
    pthread_mutex_unlock(&aio->lock);
    return r != NULL;
}

static int aio_thread_count(const QBlockState *qbs)
{
    long n;

    /* Requests of an O_DIRECT state mostly wait for the device, not a core. */
    if (qbs->flags & LIBQBLOCK_O_NOCACHE) {
        return AIO_MAX_THREADS;
    }
    n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        n = 1;
    }
    return n > AIO_MAX_THREADS ? AIO_MAX_THREADS : (int)n;
}

static void aio_stop_threads(QbAio *aio)
{
    pthread_mutex_lock(&aio->lock);
    aio->stop = true;
    pthread_cond_broadcast(&aio->work_cond);
    pthread_mutex_unlock(&aio->lock);
    for (int i = 0; i < aio->nthreads; i++) {
        pthread_join(aio->threads[i], NULL);
    }
    aio->nthreads = 0;
}

static void aio_free(QbAio *aio)
{
    if (aio->efd >= 0) {
        close(aio->efd);
    }
    pthread_cond_destroy(&aio->work_cond);
    pthread_mutex_destroy(&aio->lock);
    free(aio);
}

/* The state's engine, started on first use; a broker error when it cannot be. */
static int aio_get(QBroker *broker, const char *func, QBlockState *qbs, QbAio **out)
{
    QbAio *aio;
    int ret = 0;

    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: %s", func,
                       qbs ? "the state is not open" : "NULL state");
    }
    pthread_mutex_lock(&qbs->req_lock);
    aio = qbs->aio;
    if (aio) {
        goto out;
    }
    aio = calloc(1, sizeof(*aio));
    if (!aio) {
        ret = qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", func);
        goto out;
    }
    aio->qbs = qbs;
    aio->efd = -1;
    if (pthread_mutex_init(&aio->lock, NULL) != 0) {
        free(aio);
        aio = NULL;
        ret = qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: cannot create a lock", func);
        goto out;
    }
    if (pthread_cond_init(&aio->work_cond, NULL) != 0) {
        pthread_mutex_destroy(&aio->lock);
        free(aio);
        aio = NULL;
        ret = qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: cannot create a lock", func);
        goto out;
    }
    aio->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (aio->efd < 0) {
        int e = errno;
        aio_free(aio);
        aio = NULL;
        ret = qb_fail(broker, QB_ERR_INTERNAL_ERR, e, "%s: '%s': cannot create an eventfd: %s",
                      func, qbs->filename, strerror(e));
        goto out;
    }
    for (int i = aio_thread_count(qbs); aio->nthreads < i; aio->nthreads++) {
        int e = pthread_create(&aio->threads[aio->nthreads], NULL, aio_worker, aio);
        if (e != 0) {
            /* A smaller pool still works; none at all does not. */
            if (aio->nthreads == 0) {
                aio_free(aio);
                aio = NULL;
                ret = qb_fail(broker, QB_ERR_INTERNAL_ERR, e,
                              "%s: '%s': cannot start a worker thread: %s", func,
                              qbs->filename, strerror(e));
                goto out;
            }
            break;
        }
    }
    qbs->aio = aio;
out:
    pthread_mutex_unlock(&qbs->req_lock);
    *out = aio;
    return ret;
}

static int aio_max_depth(const QBlockState *qbs)
{
    return qbs->aio_max_depth > 0 ? qbs->aio_max_depth : QB_AIO_DEFAULT_QUEUE_DEPTH;
}

/* Allocate a request of @aio within the queue depth; a broker error otherwise. */
static int aio_req_new(QBroker *broker, const char *func, QbAio *aio, AioOp op, QBlockAIOFunc cb,
                       void *opaque, QBlockAIOReq **out)
{
    QBlockAIOReq *r;
    int depth;

    *out = NULL;
    if (!cb) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: NULL callback", func);
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", func);
    }
    pthread_mutex_lock(&aio->lock);
    depth = aio_max_depth(aio->qbs);
    if (aio->outstanding >= depth) {
        pthread_mutex_unlock(&aio->lock);
        free(r);
        return qb_fail(broker, QB_ERR_BUSY, EAGAIN,
                       "%s: '%s': %d requests are in flight, the queue depth", func,
                       aio->qbs->filename, depth);
    }
    aio->outstanding++;
    pthread_mutex_unlock(&aio->lock);
    r->aio = aio;
    r->op = op;
    r->cb = cb;
    r->opaque = opaque;
    *out = r;
    return 0;
}

/* Give back a request that was never queued. */
static void aio_req_abandon(QBlockAIOReq *r)
{
    QbAio *aio = r->aio;

    pthread_mutex_lock(&aio->lock);
    aio->outstanding--;
    pthread_mutex_unlock(&aio->lock);
    qiov_destroy(&r->qiov);
    free(r);
}

/* Put @r on the queue in submission order and wake a worker; lock held. */
static void aio_queue_insert(QbAio *aio, QBlockAIOReq *r)
{
    QBlockAIOReq *after = aio->queue.tail;

    while (after && after->seq > r->seq) {
        after = after->prev;
    }
    r->state = AIO_QUEUED;
    r->prev = after;
    r->next = after ? after->next : aio->queue.head;
    if (r->next) {
        r->next->prev = r;
    } else {
        aio->queue.tail = r;
    }
    if (after) {
        after->next = r;
    } else {
        aio->queue.head = r;
    }
    pthread_cond_signal(&aio->work_cond);
}

/* Whether queued request @r could start now (invariant 2); lock held. */
static bool aio_may_start(QbAio *aio, const QBlockAIOReq *r)
{
    if (aio->nwrites == 0) {
        return true;
    }
    for (QBlockAIOReq *o = aio->running.head; o; o = o->next) {
        if (req_conflict(r, o)) {
            return false;
        }
    }
    for (QBlockAIOReq *o = aio->queue.head; o && o != r; o = o->next) {
        if (req_conflict(r, o)) {
            return false;
        }
    }
    return true;
}

/* The kernel finished a native read (invariant 5); may run on any thread. */
static void aio_native_done(void *opaque, int ret)
{
    QBlockAIOReq *r = opaque;
    QbAio *aio = r->aio;

    pthread_mutex_lock(&aio->lock);
    list_remove(&aio->running, r);
    if (ret == -EAGAIN) {
        /* Not done after all: a worker redoes it the synchronous way. */
        aio_queue_insert(aio, r);
    } else {
        r->ret = ret < 0 ? qb_code_from_errno(ret) : (int64_t)r->len;
        r->state = AIO_DONE;
        list_append(&aio->done, r);
        aio_signal_fd(aio);
        if (aio->queue.head) {
            pthread_cond_broadcast(&aio->work_cond);
        }
    }
    pthread_mutex_unlock(&aio->lock);
}

static void aio_submit(QBlockAIOReq *r, QBlockAIOReq **preq)
{
    QbAio *aio = r->aio;
    bool native;
    int ret;

    /* The handle is published before a worker can finish the request. */
    if (preq) {
        *preq = r;
    }
    pthread_mutex_lock(&aio->lock);
    r->seq = ++aio->seq;
    if (req_is_write(r)) {
        aio->nwrites++;
    }
    native = r->op == AIO_READ && !aio->native_off && aio_may_start(aio, r);
    if (!native) {
        aio_queue_insert(aio, r);
        pthread_mutex_unlock(&aio->lock);
        return;
    }
    r->state = AIO_RUNNING;
    list_append(&aio->running, r);
    aio->native_used = true;
    pthread_mutex_unlock(&aio->lock);

    ret = bdrv_aio_preadv(aio->qbs->bs, r->offset, &r->qiov, aio->efd, aio_native_done, r);
    if (ret == 0) {
        return;
    }
    pthread_mutex_lock(&aio->lock);
    if (ret == -ENOTSUP) {
        aio->native_off = true;
    }
    list_remove(&aio->running, r);
    aio_queue_insert(aio, r);
    pthread_mutex_unlock(&aio->lock);
}

/* Shared by the four data calls: @iov describes the caller's buffers. */
static int aio_rw(QBroker *broker, const char *func, QBlockState *qbs, bool write,
                  const struct iovec *iov, int iovcnt, uint64_t offset, QBlockAIOFunc cb,
                  void *opaque, QBlockAIOReq **preq)
{
    QBlockAIOReq *r;
    QbAio *aio;
    int ret;

    if (preq) {
        *preq = NULL;
    }
    ret = aio_get(broker, func, qbs, &aio);
    if (ret < 0) {
        return ret;
    }
    if (write && !(qbs->flags & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS, "%s: '%s' is opened read-only", func,
                       qbs->filename);
    }
    ret = aio_req_new(broker, func, aio, write ? AIO_WRITE : AIO_READ, cb, opaque, &r);
    if (ret < 0) {
        return ret;
    }
    ret = state_qiov_from_iovec(broker, func, qbs, iov, iovcnt, offset, &r->qiov);
    if (ret < 0) {
        aio_req_abandon(r);
        return ret;
    }
    r->offset = offset;
    r->len = r->qiov.size;
    aio_submit(r, preq);
    return 0;
}

/* qb_aio_read and qb_aio_write: one buffer as a vector of one entry. */
static int aio_rw_buf(QBroker *broker, const char *func, QBlockState *qbs, bool write,
                      const uint8_t *buf, uint64_t len, uint64_t offset, QBlockAIOFunc cb,
                      void *opaque, QBlockAIOReq **req)
{
    /* A write's buffer is only ever read from. */
    struct iovec iov = { .iov_base = (uint8_t *)buf, .iov_len = len };

    QB_REQUIRE_BROKER(broker);
    if (len > SIZE_MAX) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: length too large", func);
    }
    if (len && !buf) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: NULL buffer", func);
    }
    return aio_rw(broker, func, qbs, write, &iov, 1, offset, cb, opaque, req);
}

int qb_aio_read(QBroker *broker, QBlockState *qbs, uint8_t *buf, uint64_t len, uint64_t offset,
                QBlockAIOFunc cb, void *opaque, QBlockAIOReq **req)
{
    return aio_rw_buf(broker, "qb_aio_read", qbs, false, buf, len, offset, cb, opaque, req);
}

int qb_aio_write(QBroker *broker, QBlockState *qbs, const uint8_t *buf, uint64_t len,
                 uint64_t offset, QBlockAIOFunc cb, void *opaque, QBlockAIOReq **req)
{
    return aio_rw_buf(broker, "qb_aio_write", qbs, true, buf, len, offset, cb, opaque, req);
}

int qb_aio_readv(QBroker *broker, QBlockState *qbs, const struct iovec *iov, int iovcnt,
                 uint64_t offset, QBlockAIOFunc cb, void *opaque, QBlockAIOReq **req)
{
    QB_REQUIRE_BROKER(broker);
    return aio_rw(broker, "qb_aio_readv", qbs, false, iov, iovcnt, offset, cb, opaque, req);
}

int qb_aio_writev(QBroker *broker, QBlockState *qbs, const struct iovec *iov, int iovcnt,
                  uint64_t offset, QBlockAIOFunc cb, void *opaque, QBlockAIOReq **req)
{
    QB_REQUIRE_BROKER(broker);
    return aio_rw(broker, "qb_aio_writev", qbs, true, iov, iovcnt, offset, cb, opaque, req);
}

/* qb_aio_flush and qb_aio_discard: requests without buffers. */
static int aio_nodata(QBroker *broker, const char *func, QBlockState *qbs, AioOp op,
                      uint64_t offset, uint64_t len, QBlockAIOFunc cb, void *opaque,
                      QBlockAIOReq **req)
{
    QBlockAIOReq *r;
    QbAio *aio;
    int ret;

    QB_REQUIRE_BROKER(broker);
    if (req) {
        *req = NULL;
    }
    ret = aio_get(broker, func, qbs, &aio);
    if (ret < 0) {
        return ret;
    }
    if (op == AIO_DISCARD) {
        if (!(qbs->flags & LIBQBLOCK_O_RDWR)) {
            return qb_fail(broker, QB_ERR_READ_ONLY, EROFS, "%s: '%s' is opened read-only",
                           func, qbs->filename);
        }
        ret = state_check_range(broker, func, qbs, offset, len);
        if (ret < 0) {
            return ret;
        }
    }
    ret = aio_req_new(broker, func, aio, op, cb, opaque, &r);
    if (ret == 0) {
        r->offset = offset;
        r->len = len;
        aio_submit(r, req);
    }
    return ret;
}

int qb_aio_flush(QBroker *broker, QBlockState *qbs, QBlockAIOFunc cb, void *opaque,
                 QBlockAIOReq **req)
{
    return aio_nodata(broker, "qb_aio_flush", qbs, AIO_FLUSH, 0, 0, cb, opaque, req);
}

int qb_aio_discard(QBroker *broker, QBlockState *qbs, uint64_t offset, uint64_t len,
                   QBlockAIOFunc cb, void *opaque, QBlockAIOReq **req)
{
    return aio_nodata(broker, "qb_aio_discard", qbs, AIO_DISCARD, offset, len, cb, opaque, req);
}

const char *aio_req_error(const QBlockAIOReq *req, int *err_no)
{
    *err_no = req->err_no;
    return req->err_msg;
}

int qb_aio_get_fd(QBroker *broker, QBlockState *qbs)
{
    QbAio *aio;
    int ret;

    QB_REQUIRE_BROKER(broker);
    ret = aio_get(broker, "qb_aio_get_fd", qbs, &aio);
    return ret < 0 ? ret : aio->efd;
}

/* Run the callbacks of the finished requests; how many ran. */
static int aio_run_completions(QbAio *aio)
{
    QBlockAIOReq *list;
    uint64_t count;
    int n = 0;

    bool native;

    /* Invariant 3: the counter is reset before the list is taken. */
    while (read(aio->efd, &count, sizeof(count)) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&aio->lock);
    native = aio->native_used;
    pthread_mutex_unlock(&aio->lock);
    if (native) {
        bdrv_aio_poll(aio->qbs->bs);
    }
    pthread_mutex_lock(&aio->lock);
    list = aio->done.head;
    aio->done.head = aio->done.tail = NULL;
    aio->in_completions = true;
    pthread_mutex_unlock(&aio->lock);

    while (list) {
        QBlockAIOReq *r = list;
        list = r->next;
        r->cb(r, r->ret, r->opaque);
        qiov_destroy(&r->qiov);
        free(r->err_msg);
        free(r);
        n++;
        /* Freed slots are counted one by one, so a callback may submit again. */
        pthread_mutex_lock(&aio->lock);
        aio->outstanding--;
        pthread_mutex_unlock(&aio->lock);
    }
    pthread_mutex_lock(&aio->lock);
    aio->in_completions = false;
    pthread_mutex_unlock(&aio->lock);
    return n;
}

int qb_aio_run_completions(QBroker *broker, QBlockState *qbs)
{
    QB_REQUIRE_BROKER(broker);
    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_aio_run_completions: %s",
                       qbs ? "the state is not open" : "NULL state");
    }
    /* A state that never started the engine has nothing to complete. */
    return qbs->aio ? aio_run_completions(qbs->aio) : 0;
}

int qb_aio_cancel(QBroker *broker, QBlockAIOReq *req)
{
    QbAio *aio;
    int ret = 0;

    QB_REQUIRE_BROKER(broker);
    if (!req) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_aio_cancel: NULL request");
    }
    aio = req->aio;
    pthread_mutex_lock(&aio->lock);
    if (req->state == AIO_QUEUED) {
        list_remove(&aio->queue, req);
        if (req_is_write(req)) {
            aio->nwrites--;
            /* Requests queued behind it may now be free to start. */
            pthread_cond_broadcast(&aio->work_cond);
        }
        req->state = AIO_DONE;
        req->ret = QB_ERR_CANCELED;
        list_append(&aio->done, req);
        aio_signal_fd(aio);
        ret = 1;
    }
    pthread_mutex_unlock(&aio->lock);
    return ret;
}

/*
 * Wait for every request and run every callback; how many ran. Waiting is
 * on the eventfd, which both the workers and the kernel (native reads)
 * signal, so that native reads get reaped too.
 */
static int aio_drain(QbAio *aio)
{
    int n = 0;

    for (;;) {
        bool idle, due;

        pthread_mutex_lock(&aio->lock);
        idle = aio->outstanding == 0;
        due = aio->done.head != NULL;
        pthread_mutex_unlock(&aio->lock);
        if (idle) {
            return n;
        }
        if (!due) {
            struct pollfd p = { .fd = aio->efd, .events = POLLIN };
            poll(&p, 1, -1);
        }
        n += aio_run_completions(aio);
    }
}

int qb_aio_drain(QBroker *broker, QBlockState *qbs)
{
    bool inside;

    QB_REQUIRE_BROKER(broker);
    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_aio_drain: %s",
                       qbs ? "the state is not open" : "NULL state");
    }
    if (!qbs->aio) {
        return 0;
    }
    pthread_mutex_lock(&qbs->aio->lock);
    inside = qbs->aio->in_completions;
    pthread_mutex_unlock(&qbs->aio->lock);
    if (inside) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_aio_drain: '%s': called while its completions run", qbs->filename);
    }
    return aio_drain(qbs->aio);
}

int qb_aio_set_max_queue_depth(QBroker *broker, QBlockState *qbs, int depth)
{
    QB_REQUIRE_BROKER(broker);
    if (!qbs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_aio_set_max_queue_depth: NULL state");
    }
    if (depth < 1 || depth > QB_AIO_MAX_QUEUE_DEPTH) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_aio_set_max_queue_depth: depth %d is outside 1..%d", depth,
                       QB_AIO_MAX_QUEUE_DEPTH);
    }
    if (qbs->aio) {
        pthread_mutex_lock(&qbs->aio->lock);
        qbs->aio_max_depth = depth;
        pthread_mutex_unlock(&qbs->aio->lock);
    } else {
        qbs->aio_max_depth = depth;
    }
    return 0;
}

void aio_state_shutdown(QBlockState *qbs)
{
    QbAio *aio = qbs->aio;

    if (!aio) {
        return;
    }
    aio_drain(aio);
    aio_stop_threads(aio);
    qbs->aio = NULL;
    aio_free(aio);
}
