/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state.c: image states: create, open, close, and the byte-offset requests,
 * turned into 512-byte sector requests with read-modify-write of unaligned
 * edges.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SECTOR BDRV_SECTOR_SIZE

/*
 * The state's io_lock prefers writers (bdrv_rwlock_init_writer_first): a
 * check or truncate waits for the calls in flight, and new readers queue
 * behind it rather than starving it. Such a lock must never be taken
 * shared twice by one thread (the second would wait for the queued
 * writer, which waits for the first), so facade calls never call each
 * other through their public, locking entry points.
 */
void state_shared_begin(QBlockState *qbs)
{
    if (qbs) {
        pthread_rwlock_rdlock(&qbs->io_lock);
    }
}

void state_shared_end(QBlockState *qbs)
{
    if (qbs) {
        pthread_rwlock_unlock(&qbs->io_lock);
    }
}

void state_exclusive_begin(QBlockState *qbs)
{
    if (qbs) {
        pthread_rwlock_wrlock(&qbs->io_lock);
    }
}

void state_exclusive_end(QBlockState *qbs)
{
    if (qbs) {
        pthread_rwlock_unlock(&qbs->io_lock);
    }
}

/*
 * The body of a public call on an open state: @call under the state's
 * io_lock, shared. Each locked_<name> below is the body of qb_<name>.
 */
#define SHARED_CALL(type, qbs, call) \
    do { \
        type ret_; \
        state_shared_begin(qbs); \
        ret_ = (call); \
        state_shared_end(qbs); \
        return ret_; \
    } while (0)

int qb_state_new(QBroker *broker, QBlockState **qbs)
{
    QBlockState *s;

    QB_REQUIRE_BROKER(broker);

    if (!qbs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_state_new: NULL pointer");
    }
    *qbs = NULL;
    s = calloc(1, sizeof(*s));
    if (!s) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_state_new: out of memory");
    }
    if (pthread_mutex_init(&s->req_lock, NULL) != 0) {
        free(s);
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_state_new: cannot create a lock");
    }
    if (pthread_cond_init(&s->req_cond, NULL) != 0) {
        pthread_mutex_destroy(&s->req_lock);
        free(s);
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_state_new: cannot create a lock");
    }
    if (bdrv_rwlock_init_writer_first(&s->io_lock) != 0) {
        pthread_cond_destroy(&s->req_cond);
        pthread_mutex_destroy(&s->req_lock);
        free(s);
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_state_new: cannot create a lock");
    }
    qb_policy_init(s);
    *qbs = s;
    return 0;
}

static int state_close(QBroker *broker, QBlockState *s)
{
    int ret = 0;
    int r;

    /* Requests in flight finish (and their callbacks run) before the image goes. */
    aio_state_shutdown(s);
    r = bdrv_flush(s->bs);

    if (r < 0) {
        ret = qb_fail_errno(broker, r, NULL, "qb_close", s->filename);
    }
    bdrv_close(s->bs);
    s->bs = NULL;
    free(s->filename);
    s->filename = NULL;
    s->flags = 0;
    return ret;
}

void qb_state_delete(QBroker *broker, QBlockState **qbs)
{
    QBlockState *s;

    if (!qbs || !*qbs) {
        return;
    }
    s = *qbs;
    if (s->bs) {
        state_close(broker, s);
    }
    pthread_rwlock_destroy(&s->io_lock);
    pthread_cond_destroy(&s->req_cond);
    pthread_mutex_destroy(&s->req_lock);
    qb_policy_free(s);
    free(s);
    *qbs = NULL;
}

/*
 * The block layer's name of a location, or a broker error: a file's name,
 * or for QB_PROT_NBD (QB_PROT_RBD) the name that block/nbd.c (block/rbd.c) parses, malloc'ed into
 * *owned (the caller frees it; NULL for files).
 */
static int loc_filename(QBroker *broker, const char *func, const QBlockProtInfo *loc,
                        const char **filename, char **owned)
{
    *owned = NULL;
    if (!loc) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: NULL location", func);
    }
    if (loc->prot_type == QB_PROT_NBD) {
        return qb_nbd_location(broker, func, &loc->prot_op.o_nbd, owned, filename);
    }
    if (loc->prot_type == QB_PROT_RBD) {
        return qb_rbd_location(broker, func, &loc->prot_op.o_rbd, owned, filename);
    }
    if (loc->prot_type != QB_PROT_FILE) {
        if (loc->prot_type > QB_PROT_NONE && loc->prot_type < QB_PROT_MAX) {
            return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                           "%s: protocol %d is not supported", func, (int)loc->prot_type);
        }
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: invalid protocol type %d",
                       func, (int)loc->prot_type);
    }
    if (!loc->prot_op.o_file.filename || !loc->prot_op.o_file.filename[0]) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: empty file name", func);
    }
    *filename = loc->prot_op.o_file.filename;
    return 0;
}

static int check_flags(QBroker *broker, const char *func, int flag)
{
    if (flag & ~LIBQBLOCK_O_ALL_FLAGS) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: unknown flags 0x%x", func, (unsigned)(flag & ~LIBQBLOCK_O_ALL_FLAGS));
    }
    if ((flag & LIBQBLOCK_O_FORCE_SHARE) && (flag & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: LIBQBLOCK_O_FORCE_SHARE is only for read-only opens", func);
    }
    if ((flag & LIBQBLOCK_O_NATIVE_AIO) && !(flag & LIBQBLOCK_O_NOCACHE)) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: LIBQBLOCK_O_NATIVE_AIO needs LIBQBLOCK_O_NOCACHE", func);
    }
    return 0;
}

static int create_at(QBroker *broker, const char *filename, QBlockFmtInfo *fmt, int flag);

int qb_create(QBroker *broker, QBlockState *qbs, QBlockProtInfo *loc, QBlockFmtInfo *fmt,
              int flag)
{
    const char *filename;
    char *owned;
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!qbs || !fmt) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_create: NULL %s",
                       qbs ? "format info" : "state");
    }
    ret = loc_filename(broker, "qb_create", loc, &filename, &owned);
    if (ret == 0) {
        ret = create_at(broker, filename, fmt, flag);
    }
    free(owned);
    return ret;
}

static int create_at(QBroker *broker, const char *filename, QBlockFmtInfo *fmt, int flag)
{
    const char *fname;
    BdrvOpts opts;
    BdrvError err = { 0 };
    int ret;

    ret = check_flags(broker, "qb_create", flag);
    if (ret < 0) {
        return ret;
    }
    fname = qb_fmttype2str(fmt->fmt_type);
    if (!fname) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_create: '%s': fmt_type %d is not a format", filename,
                       (int)fmt->fmt_type);
    }
    bdrv_opts_init(&opts);
    ret = qb_fmt_info_to_opts(broker, fmt, &opts);
    if (ret == 0) {
        ret = bdrv_create(fname, filename, &opts, flag & BDRV_O_PUBLIC_MASK, &err);
        if (ret < 0) {
            ret = qb_fail_errno(broker, ret, &err, "qb_create", filename);
        }
    }
    bdrv_opts_free(&opts);
    return ret;
}

static int open_at(QBroker *broker, QBlockState *qbs, const char *filename, QBlockFmtInfo *fmt,
                   int flag);

int qb_open(QBroker *broker, QBlockState *qbs, QBlockProtInfo *loc, QBlockFmtInfo *fmt,
            int flag)
{
    const char *filename;
    char *owned;
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!qbs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_open: NULL state");
    }
    ret = loc_filename(broker, "qb_open", loc, &filename, &owned);
    if (ret == 0) {
        ret = open_at(broker, qbs, filename, fmt, flag);
    }
    free(owned);
    return ret;
}

static int open_at(QBroker *broker, QBlockState *qbs, const char *filename, QBlockFmtInfo *fmt,
                   int flag)
{
    const char *fname = NULL;
    BdrvError err = { 0 };
    int ret;

    if (qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_open: the state already has '%s' open", qbs->filename);
    }
    ret = check_flags(broker, "qb_open", flag);
    if (ret < 0) {
        return ret;
    }
    if (fmt && fmt->fmt_type != QB_FMT_NONE) {
        fname = qb_fmttype2str(fmt->fmt_type);
        if (!fname) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "qb_open: '%s': fmt_type %d is not a format", filename,
                           (int)fmt->fmt_type);
        }
    }
    qbs->filename = strdup(filename);
    if (!qbs->filename) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_open: out of memory");
    }
    /* The state's policy outlives the open: qb_state_set_policy refuses an open state. */
    ret = bdrv_open_policy(&qbs->bs, filename, fname, flag & BDRV_O_PUBLIC_MASK, &qbs->policy,
                           &err);
    if (ret < 0) {
        free(qbs->filename);
        qbs->filename = NULL;
        qbs->bs = NULL;
        return qb_fail_errno(broker, ret, &err, "qb_open", filename);
    }
    qbs->flags = flag;
    return 0;
}

int qb_close(QBroker *broker, QBlockState *qbs)
{
    int ret;

    QB_REQUIRE_BROKER(broker);
    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_close: %s",
                       qbs ? "the state is not open" : "NULL state");
    }
    /*
     * Asynchronous requests finish first: their workers take the io_lock
     * shared, so they must not find it held exclusively by this thread.
     * Then a call still in flight on another thread finishes before the
     * node goes.
     */
    aio_state_shutdown(qbs);
    state_exclusive_begin(qbs);
    ret = state_close(broker, qbs);
    state_exclusive_end(qbs);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

/* The state is open and [offset, offset+len) lies inside the image. */
int state_check_range(QBroker *broker, const char *func, QBlockState *qbs, uint64_t offset,
                      uint64_t len)
{
    int64_t size;
    uint64_t end;

    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: %s", func,
                       qbs ? "the state is not open" : "NULL state");
    }
    size = bdrv_getlength(qbs->bs);
    if (size < 0) {
        return qb_fail_errno(broker, (int)size, NULL, func, qbs->filename);
    }
    if (ADD_OVERFLOW(offset, len, &end) || end > (uint64_t)size) {
        return qb_fail(broker, QB_ERR_BLOCK_OUT_OF_RANGE, ERANGE,
                       "%s: '%s': range %llu+%llu is outside the image (size %lld)", func,
                       qbs->filename, (unsigned long long)offset, (unsigned long long)len,
                       (long long)size);
    }
    return 0;
}

/*
 * Writes that touch the same sectors, when either of them rewrites partial
 * sectors, run one after the other: a read-modify-write racing another
 * write of the same sector would otherwise put back stale bytes.
 */
static void write_begin(QBlockState *qbs, QbWriteReq *req)
{
    pthread_mutex_lock(&qbs->req_lock);
    for (;;) {
        bool conflict = false;
        for (QbWriteReq *r = qbs->writes; r; r = r->next) {
            if ((r->rmw || req->rmw) && r->start < req->end && req->start < r->end) {
                conflict = true;
                break;
            }
        }
        if (!conflict) {
            break;
        }
        pthread_cond_wait(&qbs->req_cond, &qbs->req_lock);
    }
    req->next = qbs->writes;
    qbs->writes = req;
    pthread_mutex_unlock(&qbs->req_lock);
}

static void write_end(QBlockState *qbs, QbWriteReq *req)
{
    pthread_mutex_lock(&qbs->req_lock);
    for (QbWriteReq **pp = &qbs->writes; *pp; pp = &(*pp)->next) {
        if (*pp == req) {
            *pp = req->next;
            break;
        }
    }
    pthread_cond_broadcast(&qbs->req_cond);
    pthread_mutex_unlock(&qbs->req_lock);
}

/*
 * Describe [offset, offset+len) of the image as I/O aligned to the node's
 * request alignment: the caller's vector in the middle, and one bounce
 * block at each unaligned edge (a single one when both edges fall in the
 * same block). Nodes that take any byte range (raw) need none of this.
 * The caller's memory is never copied except for the edge bytes.
 */
typedef struct AlignedReq {
    uint64_t align;
    uint64_t start;            /* aligned start */
    uint64_t end;              /* aligned end */
    uint8_t *head;             /* bounce for the first block when unaligned */
    uint8_t *tail;             /* bounce for the last block when unaligned */
    bool has_head, has_tail;   /* tail is false when the head block is also the last */
    QBIOVector qiov;
    uint8_t bounce[];          /* 2 * align bytes behind head and tail */
} AlignedReq;

static AlignedReq *aligned_req_new(QBIOVector *user, uint64_t offset, uint64_t align)
{
    uint64_t len = user->size;
    uint64_t end = offset + len;
    uint64_t mid_start, mid_end;
    QBIOVector mid;
    bool single;
    AlignedReq *ar;

    ar = malloc(sizeof(*ar) + 2 * align);
    if (!ar) {
        return NULL;
    }
    ar->align = align;
    ar->head = ar->bounce;
    ar->tail = ar->bounce + align;
    ar->start = ROUND_DOWN(offset, align);
    ar->end = ROUND_UP(end, align);
    single = ar->end - ar->start == align;
    ar->has_head = offset % align != 0 || (single && end % align != 0);
    ar->has_tail = end % align != 0 && !single;
    mid_start = ar->has_head ? ar->start + align : ar->start;
    mid_end = ar->has_tail ? ar->end - align : ar->end;

    if (qiov_init(&ar->qiov, user->niov + 2) < 0) {
        free(ar);
        return NULL;
    }
    /* Room for every part was reserved above, so the adds cannot fail. */
    if (ar->has_head) {
        qiov_add(&ar->qiov, ar->head, align);
    }
    if (mid_end > mid_start) {
        if (qiov_init_slice(&mid, user, mid_start - offset, mid_end - mid_start) < 0) {
            qiov_destroy(&ar->qiov);
            free(ar);
            return NULL;
        }
        for (int i = 0; i < mid.niov; i++) {
            qiov_add(&ar->qiov, mid.iov[i].iov_base, mid.iov[i].iov_len);
        }
        qiov_destroy(&mid);
    }
    if (ar->has_tail) {
        qiov_add(&ar->qiov, ar->tail, align);
    }
    return ar;
}

static void aligned_req_free(AlignedReq *ar)
{
    qiov_destroy(&ar->qiov);
    free(ar);
}

/* Copy the edge bytes between the caller's vector and the bounce blocks. */
static void aligned_req_copy(AlignedReq *ar, QBIOVector *user, uint64_t offset, bool to_bounce)
{
    uint64_t len = user->size;
    uint64_t end = offset + len;

    if (ar->has_head) {
        uint64_t in = offset - ar->start;
        uint64_t n = MIN(len, ar->align - in);
        if (to_bounce) {
            qiov_to_buf(user, 0, ar->head + in, n);
        } else {
            qiov_from_buf(user, 0, ar->head + in, n);
        }
    }
    if (ar->has_tail) {
        uint64_t n = end % ar->align;
        if (to_bounce) {
            qiov_to_buf(user, len - n, ar->tail, n);
        } else {
            qiov_from_buf(user, len - n, ar->tail, n);
        }
    }
}

/* Read the bounce blocks of a write's unaligned edges from the image. */
static int aligned_req_fill_edges(BlockDriverState *bs, AlignedReq *ar)
{
    int ret = 0;
    if (ar->has_head) {
        ret = bdrv_pread(bs, ar->start, ar->head, ar->align);
    }
    if (ret == 0 && ar->has_tail) {
        ret = bdrv_pread(bs, ar->end - ar->align, ar->tail, ar->align);
    }
    return ret;
}

/* Common argument checks of qb_read and qb_write. */
static int check_rw(QBroker *broker, const char *func, QBlockState *qbs, const void *buf,
                    uint64_t len, uint64_t offset)
{
    int ret = state_check_range(broker, func, qbs, offset, len);

    if (ret < 0) {
        return ret;
    }
    if (len && !buf) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: NULL buffer", func);
    }
    if (len > (uint64_t)INT64_MAX || len > SIZE_MAX) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: length too large", func);
    }
    return 0;
}

/*
 * Describe the caller's iovec array as a vector (its entries, not a copy of
 * the data), after checking it as qb_readv/qb_writev document.
 */
int state_qiov_from_iovec(QBroker *broker, const char *func, QBlockState *qbs,
                          const struct iovec *iov, int iovcnt, uint64_t offset,
                          QBIOVector *qiov)
{
    uint64_t total = 0;
    int ret;

    if (iovcnt < 0 || (iovcnt > 0 && !iov) || iovcnt > QB_IOV_MAX) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: invalid vector (%d entries; 0..%d allowed)", func, iovcnt,
                       QB_IOV_MAX);
    }
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len && !iov[i].iov_base) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "%s: NULL buffer in vector entry %d", func, i);
        }
        if (ADD_OVERFLOW(total, (uint64_t)iov[i].iov_len, &total) || total > (uint64_t)INT64_MAX) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: length too large", func);
        }
    }
    ret = state_check_range(broker, func, qbs, offset, total);
    if (ret < 0) {
        return ret;
    }
    if (qiov_init(qiov, iovcnt) < 0) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", func);
    }
    for (int i = 0; i < iovcnt; i++) {
        /* Cannot fail: the room was reserved. */
        qiov_add(qiov, iov[i].iov_base, iov[i].iov_len);
    }
    return 0;
}

int64_t state_preadv(QBroker *broker, const char *func, QBlockState *qbs, QBIOVector *qiov,
                     uint64_t offset)
{
    uint64_t len = qiov->size;
    uint64_t align;
    AlignedReq *ar;
    int ret;

    if (len == 0) {
        return 0;
    }
    align = bdrv_get_request_alignment(qbs->bs);
    if (IS_ALIGNED(offset, align) && IS_ALIGNED(len, align)) {
        ret = bdrv_preadv(qbs->bs, offset, qiov);
    } else {
        ar = aligned_req_new(qiov, offset, align);
        if (!ar) {
            return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", func);
        }
        ret = bdrv_preadv(qbs->bs, ar->start, &ar->qiov);
        if (ret == 0) {
            aligned_req_copy(ar, qiov, offset, false);
        }
        aligned_req_free(ar);
    }
    if (ret < 0) {
        return qb_fail_errno(broker, ret, NULL, func, qbs->filename);
    }
    return (int64_t)len;
}

int64_t state_pwritev(QBroker *broker, const char *func, QBlockState *qbs, QBIOVector *qiov,
                      uint64_t offset)
{
    uint64_t len = qiov->size;
    QbWriteReq req;
    uint64_t align;
    AlignedReq *ar;
    int ret;

    if (!(qbs->flags & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS,
                       "%s: '%s' is opened read-only", func, qbs->filename);
    }
    if (len == 0) {
        return 0;
    }
    align = bdrv_get_request_alignment(qbs->bs);
    ar = aligned_req_new(qiov, offset, align);
    if (!ar) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", func);
    }
    req.start = ar->start;
    req.end = ar->end;
    req.rmw = ar->has_head || ar->has_tail;
    write_begin(qbs, &req);
    ret = aligned_req_fill_edges(qbs->bs, ar);
    if (ret == 0) {
        aligned_req_copy(ar, qiov, offset, true);
        ret = bdrv_pwritev(qbs->bs, ar->start, &ar->qiov);
    }
    write_end(qbs, &req);
    aligned_req_free(ar);
    /* Without writeback caching every write is durable when it returns. */
    if (ret == 0 && !(qbs->flags & LIBQBLOCK_O_CACHE_WB)) {
        ret = bdrv_flush(qbs->bs);
    }
    if (ret == -EPERM) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EPERM,
                       "%s: '%s': refused to write data that would make this image, "
                       "whose format was probed as raw, look like another format; open it "
                       "with an explicit format to allow this", func, qbs->filename);
    }
    if (ret < 0) {
        return qb_fail_errno(broker, ret, NULL, func, qbs->filename);
    }
    return (int64_t)len;
}

static int64_t locked_read(QBroker *broker, QBlockState *qbs, uint8_t *buf, uint64_t len,
                           uint64_t offset)
{
    QBIOVector qiov;
    int ret;

    QB_REQUIRE_BROKER(broker);
    ret = check_rw(broker, "qb_read", qbs, buf, len, offset);
    if (ret < 0) {
        return ret;
    }
    qiov_init_buf(&qiov, buf, len);
    return state_preadv(broker, "qb_read", qbs, &qiov, offset);
}

int64_t qb_read(QBroker *broker, QBlockState *qbs, uint8_t *buf, uint64_t len, uint64_t offset)
{
    SHARED_CALL(int64_t, qbs, locked_read(broker, qbs, buf, len, offset));
}

static int64_t locked_write(QBroker *broker, QBlockState *qbs, const uint8_t *buf,
                            uint64_t len, uint64_t offset)
{
    QBIOVector qiov;
    int ret;

    QB_REQUIRE_BROKER(broker);
    ret = check_rw(broker, "qb_write", qbs, buf, len, offset);
    if (ret < 0) {
        return ret;
    }
    /* The caller's buffer is only ever read from. */
    qiov_init_buf(&qiov, (uint8_t *)buf, len);
    return state_pwritev(broker, "qb_write", qbs, &qiov, offset);
}

int64_t qb_write(QBroker *broker, QBlockState *qbs, const uint8_t *buf, uint64_t len,
                 uint64_t offset)
{
    SHARED_CALL(int64_t, qbs, locked_write(broker, qbs, buf, len, offset));
}

/* qb_readv and qb_writev: the caller's vector, described without copying. */
static int64_t state_rwv(QBroker *broker, const char *func, QBlockState *qbs,
                         const struct iovec *iov, int iovcnt, uint64_t offset, bool write)
{
    QBIOVector qiov;
    int64_t ret;

    QB_REQUIRE_BROKER(broker);
    ret = state_qiov_from_iovec(broker, func, qbs, iov, iovcnt, offset, &qiov);
    if (ret < 0) {
        return ret;
    }
    ret = write ? state_pwritev(broker, func, qbs, &qiov, offset)
                : state_preadv(broker, func, qbs, &qiov, offset);
    qiov_destroy(&qiov);
    return ret;
}

static int64_t shared_rwv(QBroker *broker, const char *func, QBlockState *qbs,
                          const struct iovec *iov, int iovcnt, uint64_t offset, bool write)
{
    SHARED_CALL(int64_t, qbs, state_rwv(broker, func, qbs, iov, iovcnt, offset, write));
}

int64_t qb_readv(QBroker *broker, QBlockState *qbs, const struct iovec *iov, int iovcnt,
                 uint64_t offset)
{
    return shared_rwv(broker, "qb_readv", qbs, iov, iovcnt, offset, false);
}

int64_t qb_writev(QBroker *broker, QBlockState *qbs, const struct iovec *iov, int iovcnt,
                  uint64_t offset)
{
    return shared_rwv(broker, "qb_writev", qbs, iov, iovcnt, offset, true);
}

static int locked_flush(QBroker *broker, QBlockState *qbs)
{
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_flush: %s",
                       qbs ? "the state is not open" : "NULL state");
    }
    ret = bdrv_flush(qbs->bs);
    return ret < 0 ? qb_fail_errno(broker, ret, NULL, "qb_flush", qbs->filename) : 0;
}

int qb_flush(QBroker *broker, QBlockState *qbs)
{
    SHARED_CALL(int, qbs, locked_flush(broker, qbs));
}

static int locked_discard(QBroker *broker, QBlockState *qbs, uint64_t offset, uint64_t len)
{
    QbWriteReq req;
    int64_t size;
    uint64_t start, end;
    int ret;

    QB_REQUIRE_BROKER(broker);

    ret = state_check_range(broker, "qb_discard", qbs, offset, len);
    if (ret < 0) {
        return ret;
    }
    if (!(qbs->flags & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS,
                       "qb_discard: '%s' is opened read-only", qbs->filename);
    }
    /* Only whole sectors are released; the sector the image ends in counts as whole. */
    size = bdrv_getlength(qbs->bs);
    start = ROUND_UP(offset, SECTOR);
    end = offset + len == (uint64_t)size ? ROUND_UP(offset + len, SECTOR)
                                         : ROUND_DOWN(offset + len, SECTOR);
    if (end <= start) {
        return 0;
    }
    req.start = start;
    req.end = end;
    req.rmw = false;
    write_begin(qbs, &req);
    ret = bdrv_pdiscard(qbs->bs, start, end - start);
    write_end(qbs, &req);
    return ret < 0 ? qb_fail_errno(broker, ret, NULL, "qb_discard", qbs->filename) : 0;
}

int qb_discard(QBroker *broker, QBlockState *qbs, uint64_t offset, uint64_t len)
{
    SHARED_CALL(int, qbs, locked_discard(broker, qbs, offset, len));
}

/*
 * Zeros on the unaligned edge [offset, offset+len) of a qb_write_zeroes
 * range: the sector is read, patched and rewritten as qb_write does it.
 */
static int write_zero_edge(QBroker *broker, QBlockState *qbs, uint64_t offset, uint64_t len)
{
    static const uint8_t zeros[4096];

    while (len) {
        uint64_t n = MIN(len, (uint64_t)sizeof(zeros));
        int64_t ret = locked_write(broker, qbs, zeros, n, offset);
        if (ret < 0) {
            return (int)ret;
        }
        offset += n;
        len -= n;
    }
    return 0;
}

static int locked_write_zeroes(QBroker *broker, QBlockState *qbs, uint64_t offset,
                               uint64_t len, int flags)
{
    QbWriteReq req;
    uint64_t align, start, end;
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (flags & ~QB_WRITE_ZEROES_MAY_UNMAP) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_write_zeroes: unknown flags 0x%x", (unsigned)flags);
    }
    ret = state_check_range(broker, "qb_write_zeroes", qbs, offset, len);
    if (ret < 0) {
        return ret;
    }
    if (!(qbs->flags & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS,
                       "qb_write_zeroes: '%s' is opened read-only", qbs->filename);
    }
    if (len == 0) {
        return 0;
    }
    align = bdrv_get_request_alignment(qbs->bs);
    start = ROUND_UP(offset, align);
    end = ROUND_DOWN(offset + len, align);
    if (start >= end) {
        /* Not one whole aligned block: only the read-modify-write path fits. */
        return write_zero_edge(broker, qbs, offset, len);
    }
    if (offset < start) {
        ret = write_zero_edge(broker, qbs, offset, start - offset);
        if (ret < 0) {
            return ret;
        }
    }
    req.start = start;
    req.end = end;
    req.rmw = false;
    write_begin(qbs, &req);
    ret = bdrv_pwrite_zeroes_flags(qbs->bs, start, end - start,
                                   (flags & QB_WRITE_ZEROES_MAY_UNMAP) ? BDRV_REQ_MAY_UNMAP : 0);
    write_end(qbs, &req);
    /* Without writeback caching the zeros are durable when the call returns. */
    if (ret == 0 && !(qbs->flags & LIBQBLOCK_O_CACHE_WB)) {
        ret = bdrv_flush(qbs->bs);
    }
    if (ret < 0) {
        return qb_fail_errno(broker, ret, NULL, "qb_write_zeroes", qbs->filename);
    }
    if (end < offset + len) {
        return write_zero_edge(broker, qbs, end, offset + len - end);
    }
    return 0;
}

int qb_write_zeroes(QBroker *broker, QBlockState *qbs, uint64_t offset, uint64_t len, int flags)
{
    SHARED_CALL(int, qbs, locked_write_zeroes(broker, qbs, offset, len, flags));
}

/* ------------------------------------------------------------------ */
/* Allocation                                                          */

/* The query range covering [start, start+length), aligned as the node wants it. */
static void status_range(BlockDriverState *bs, uint64_t start, uint64_t length,
                         uint64_t *qstart, uint64_t *qbytes)
{
    uint64_t align = bdrv_get_request_alignment(bs);

    *qstart = ROUND_DOWN(start, align);
    *qbytes = ROUND_UP(start + length, align) - *qstart;
}

static int locked_check_allocation(QBroker *broker, QBlockState *qbs, uint64_t start,
                                   int64_t length, int *pstatus, int64_t *plength)
{
    uint64_t qstart, qbytes, pnum;
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!pstatus || !plength) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_check_allocation: NULL result pointer");
    }
    if (length <= 0) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_check_allocation: length %lld must be positive", (long long)length);
    }
    ret = state_check_range(broker, "qb_check_allocation", qbs, start, (uint64_t)length);
    if (ret < 0) {
        return ret;
    }
    status_range(qbs->bs, start, (uint64_t)length, &qstart, &qbytes);
    ret = bdrv_is_allocated(qbs->bs, qstart, qbytes, &pnum);
    if (ret < 0) {
        return qb_fail_errno(broker, ret, NULL, "qb_check_allocation", qbs->filename);
    }
    *pstatus = ret;
    *plength = (int64_t)MIN(pnum - (start - qstart), (uint64_t)length);
    return 0;
}

int qb_check_allocation(QBroker *broker, QBlockState *qbs, uint64_t start, int64_t length,
                        int *pstatus, int64_t *plength)
{
    SHARED_CALL(int, qbs, locked_check_allocation(broker, qbs, start, length, pstatus, plength));
}

static int locked_block_status(QBroker *broker, QBlockState *qbs, uint64_t offset,
                               uint64_t length, QBlockStatusInfo *st)
{
    uint64_t qstart, qbytes, pnum, map = 0;
    BlockDriverState *file = NULL;
    int depth = 0;
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!st) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_block_status: NULL result");
    }
    if (length == 0) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_block_status: length must be positive");
    }
    ret = state_check_range(broker, "qb_block_status", qbs, offset, length);
    if (ret < 0) {
        return ret;
    }
    status_range(qbs->bs, offset, length, &qstart, &qbytes);
    ret = bdrv_block_status_above(qbs->bs, qstart, qbytes, &pnum, &map, &file, &depth);
    if (ret < 0) {
        return qb_fail_errno(broker, ret, NULL, "qb_block_status", qbs->filename);
    }
    memset(st, 0, sizeof(*st));
    st->length = MIN(pnum - (offset - qstart), length);
    st->depth = depth;
    st->flags = ((ret & BDRV_BLOCK_DATA) ? QB_BLOCK_DATA : 0) |
                ((ret & BDRV_BLOCK_ZERO) ? QB_BLOCK_ZERO : 0) |
                ((ret & BDRV_BLOCK_ALLOCATED) ? QB_BLOCK_ALLOCATED : 0) |
                ((ret & BDRV_BLOCK_OFFSET_VALID) ? QB_BLOCK_OFFSET_VALID : 0);
    if (ret & BDRV_BLOCK_OFFSET_VALID) {
        st->host_offset = map + (offset - qstart);
    }
    return 0;
}

int qb_block_status(QBroker *broker, QBlockState *qbs, uint64_t offset, uint64_t length,
                    QBlockStatusInfo *st)
{
    SHARED_CALL(int, qbs, locked_block_status(broker, qbs, offset, length, st));
}

/* ------------------------------------------------------------------ */
/* Facts                                                               */

static int check_open(QBroker *broker, const char *func, QBlockState *qbs)
{
    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: %s", func,
                       qbs ? "the state is not open" : "NULL state");
    }
    return 0;
}

/* The static info with the strings it owns; pub comes first so the two addresses match. */
typedef struct StaticInfoPriv {
    QBlockStaticInfo pub;
    char *filename;
    char *backing;
} StaticInfoPriv;

static int locked_info_image_static_get(QBroker *broker, QBlockState *qbs, QBlockStaticInfo **info)
{
    StaticInfoPriv *p;
    BlockDriverState *bs;
    BlockDriverInfo bdi;
    int64_t size;
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!info) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_info_image_static_get: NULL result pointer");
    }
    *info = NULL;
    ret = check_open(broker, "qb_info_image_static_get", qbs);
    if (ret < 0) {
        return ret;
    }
    bs = qbs->bs;
    size = bdrv_getlength(bs);
    if (size < 0) {
        return qb_fail_errno(broker, (int)size, NULL, "qb_info_image_static_get", qbs->filename);
    }
    ret = bdrv_get_info(bs, &bdi);
    if (ret < 0) {
        return qb_fail_errno(broker, ret, NULL, "qb_info_image_static_get", qbs->filename);
    }
    p = calloc(1, sizeof(*p));
    if (!p || !(p->filename = strdup(qbs->filename)) ||
        (bdrv_get_backing_file(bs)[0] && !(p->backing = strdup(bdrv_get_backing_file(bs))))) {
        if (p) {
            free(p->filename);
        }
        free(p);
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_info_image_static_get: out of memory");
    }
    p->pub.loc.prot_type = QB_PROT_FILE;
    p->pub.loc.prot_op.o_file.filename = p->filename;
    p->pub.fmt_type = qb_str2fmttype(bdrv_get_format_name(bs));
    p->pub.virt_size = (uint64_t)size;
    if (p->backing) {
        p->pub.backing_loc.prot_type = QB_PROT_FILE;
        p->pub.backing_loc.prot_op.o_file.filename = p->backing;
        p->pub.backing_fmt = qb_str2fmttype(bdrv_get_backing_format(bs));
    }
    p->pub.encrypt = bdrv_is_encrypted(bs);
    p->pub.sector_size = (int)SECTOR;
    p->pub.cluster_size = bdi.cluster_size > 0 ? (uint64_t)bdi.cluster_size : 0;
    *info = &p->pub;
    return 0;
}

int qb_info_image_static_get(QBroker *broker, QBlockState *qbs, QBlockStaticInfo **info)
{
    SHARED_CALL(int, qbs, locked_info_image_static_get(broker, qbs, info));
}

void qb_info_image_static_delete(QBroker *broker, QBlockStaticInfo **info)
{
    (void)broker;
    if (info && *info) {
        StaticInfoPriv *p = (StaticInfoPriv *)(void *)*info;
        free(p->filename);
        free(p->backing);
        free(p);
        *info = NULL;
    }
}

static int locked_info_image_specific_get(QBroker *broker, QBlockState *qbs,
                                          QBlockSpecificInfo **info)
{
    static const char func[] = "qb_info_image_specific_get";
    QBlockSpecificInfo *p;
    BdrvError err = { 0 };
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!info) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: NULL result pointer", func);
    }
    *info = NULL;
    ret = check_open(broker, func, qbs);
    if (ret < 0) {
        return ret;
    }
    p = malloc(sizeof(*p));
    if (!p) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", func);
    }
    ret = bdrv_get_specific_info(qbs->bs, p, &err);
    if (ret < 0) {
        free(p);
        return qb_fail_errno(broker, ret, &err, func, qbs->filename);
    }
    *info = p;
    return 0;
}

int qb_info_image_specific_get(QBroker *broker, QBlockState *qbs, QBlockSpecificInfo **info)
{
    SHARED_CALL(int, qbs, locked_info_image_specific_get(broker, qbs, info));
}

void qb_info_image_specific_delete(QBroker *broker, QBlockSpecificInfo **info)
{
    (void)broker;
    if (info && *info) {
        bdrv_specific_info_clear(*info);
        free(*info);
        *info = NULL;
    }
}

static int64_t locked_get_allocated_file_size(QBroker *broker, QBlockState *qbs)
{
    int64_t ret;

    QB_REQUIRE_BROKER(broker);
    ret = check_open(broker, "qb_get_allocated_file_size", qbs);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_get_allocated_file_size(qbs->bs);
    if (ret < 0) {
        return qb_fail_errno(broker, (int)ret, NULL, "qb_get_allocated_file_size",
                             qbs->filename);
    }
    return ret;
}

int64_t qb_get_allocated_file_size(QBroker *broker, QBlockState *qbs)
{
    SHARED_CALL(int64_t, qbs, locked_get_allocated_file_size(broker, qbs));
}

static int locked_is_dirty(QBroker *broker, QBlockState *qbs)
{
    int ret;

    QB_REQUIRE_BROKER(broker);
    ret = check_open(broker, "qb_is_dirty", qbs);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_is_dirty(qbs->bs);
    return ret < 0 ? qb_fail_errno(broker, ret, NULL, "qb_is_dirty", qbs->filename) : ret;
}

int qb_is_dirty(QBroker *broker, QBlockState *qbs)
{
    SHARED_CALL(int, qbs, locked_is_dirty(broker, qbs));
}

static int locked_has_zero_init(QBroker *broker, QBlockState *qbs)
{
    int ret;

    QB_REQUIRE_BROKER(broker);
    ret = check_open(broker, "qb_has_zero_init", qbs);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_has_zero_init(qbs->bs);
    return ret < 0 ? qb_fail_errno(broker, ret, NULL, "qb_has_zero_init", qbs->filename) : ret;
}

int qb_has_zero_init(QBroker *broker, QBlockState *qbs)
{
    SHARED_CALL(int, qbs, locked_has_zero_init(broker, qbs));
}

static int64_t locked_write_compressed(QBroker *broker, QBlockState *qbs, const uint8_t *buf,
                                       uint64_t len, uint64_t offset)
{
    QbWriteReq req;
    QBIOVector qiov;
    int ret;

    QB_REQUIRE_BROKER(broker);
    ret = check_rw(broker, "qb_write_compressed", qbs, buf, len, offset);
    if (ret < 0) {
        return ret;
    }
    if (!(qbs->flags & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS,
                       "qb_write_compressed: '%s' is opened read-only", qbs->filename);
    }
    if (len == 0) {
        return 0;
    }
    req.start = offset;
    req.end = offset + len;
    req.rmw = false;
    /* The caller's buffer is only ever read from. */
    qiov_init_buf(&qiov, (void *)buf, len);
    write_begin(qbs, &req);
    ret = bdrv_pwritev_compressed(qbs->bs, offset, &qiov);
    write_end(qbs, &req);
    if (ret == 0 && !(qbs->flags & LIBQBLOCK_O_CACHE_WB)) {
        ret = bdrv_flush(qbs->bs);
    }
    if (ret == -ENOTSUP) {
        return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                       "qb_write_compressed: '%s': the %s format cannot store compressed "
                       "data%s", qbs->filename, bdrv_get_format_name(qbs->bs),
                       strcmp(bdrv_get_format_name(qbs->bs), "qcow2") != 0 ? "" :
                       " of this compression type in this build");
    }
    if (ret == -EINVAL) {
        BlockDriverInfo bdi;

        memset(&bdi, 0, sizeof(bdi));
        bdrv_get_info(qbs->bs, &bdi);
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_write_compressed: '%s': offset %llu and length %llu must be "
                       "multiples of the cluster size (%d), except at the end of the image",
                       qbs->filename, (unsigned long long)offset, (unsigned long long)len,
                       bdi.cluster_size);
    }
    if (ret < 0) {
        return qb_fail_errno(broker, ret, NULL, "qb_write_compressed", qbs->filename);
    }
    return (int64_t)len;
}

int64_t qb_write_compressed(QBroker *broker, QBlockState *qbs, const uint8_t *buf,
                            uint64_t len, uint64_t offset)
{
    SHARED_CALL(int64_t, qbs, locked_write_compressed(broker, qbs, buf, len, offset));
}
