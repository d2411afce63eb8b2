/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * file-posix.c: the "file" protocol, where image bytes live in a local file
 * or block device, with O_DIRECT, Linux native AIO and QEMU-compatible
 * image locking.
 *
 * This is the only file of the library that touches file descriptors,
 * fallocate, libaio or fcntl locks.
 *
 * Concurrency. The driver is thread_safe: every callback may run on one
 * node from several threads at once. The descriptor never changes after
 * open. With O_DIRECT the file can only be written in whole aligned
 * blocks, so a write whose ends are not aligned reads the edge blocks,
 * patches them and writes them back (read-modify-write). Two such writes
 * on one block, or one and an aligned write or zeroing that touches the
 * same block, would lose bytes, so the node keeps a reader/writer lock:
 * read-modify-write, truncation and size fix-ups take it exclusively,
 * every other write-like request shares it, reads never take it (an RMW
 * writes back the bytes it did not change unchanged, so a reader sees
 * either the old or the new content of what was written).
 *
 * Locking (see block/perm.c for the observed QEMU 7.2 protocol): each node
 * remembers which lock bytes it holds, and bdrv_set_perm moves from that
 * set to a new one: take what is new, test for conflicts, then release
 * what is no longer needed; on a conflict it goes back to the old set.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include("config-host.h")
#include "config-host.h"
#endif
#endif

#ifdef CONFIG_LIBAIO
#include <libaio.h>
#endif

#include "block/block_int.h"

/* Lock bytes: permission bit n held is byte 100+n, not shared is 200+n. */
#define LOCK_PERM_BASE      100
#define LOCK_SHARED_BASE    200
/* Only the first four permission bits are locked (QEMU 7.2 locks 100..103, 200..203). */
#define LOCK_PERM_BITS      4
#define LOCK_PERM_MASK      ((1ULL << LOCK_PERM_BITS) - 1)

/* Bounce buffers (O_DIRECT with unaligned requests) and zero buffers stay this small. */
#define BOUNCE_MAX          (1024 * 1024)
#define ZERO_BUF_SIZE       (1024 * 1024)
/* The largest alignment we believe a device could ask for. */
#define MAX_DIRECT_ALIGN    65536
/* How many native AIO requests one node keeps in flight at once. */
#define AIO_MAX_EVENTS      128

typedef struct RawLockSet {
    uint64_t perm;        /* bits whose byte 100+n this descriptor holds */
    uint64_t unshared;    /* bits whose byte 200+n this descriptor holds */
} RawLockSet;

typedef struct BDRVRawState {
    int fd;
    uint32_t align;               /* 1, or the O_DIRECT alignment of offsets, lengths, memory */
    bool no_flush;
    bool use_aio;
    bool rw_lock_init;
    bool perm_lock_init;
    pthread_rwlock_t rmw_lock;    /* see "Concurrency" above */
    pthread_mutex_t perm_lock;    /* protects locks */
    RawLockSet locks;
#ifdef CONFIG_LIBAIO
    bool aio_init;
    io_context_t aio_ctx;         /* shared by every request of the node */
    pthread_mutex_t aio_lock;     /* protects the fields below and the requests' done flags */
    pthread_cond_t aio_cond;      /* a request completed, a slot freed or the reaper left */
    int aio_inflight;             /* submitted and not yet reaped */
    bool aio_reaping;             /* a caller is inside io_getevents */
    int aio_err;                  /* set when the context can no longer be reaped */
#endif
} BDRVRawState;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

/* QEMU accepts a "file:" prefix on names of the file protocol; so do we. */
static const char *raw_strip_prefix(const char *filename)
{
    return strncmp(filename, "file:", 5) == 0 ? filename + 5 : filename;
}

/* An aligned buffer of @size bytes (memory for O_DIRECT), or NULL. */
static void *raw_alloc_aligned(size_t align, size_t size)
{
    void *p = NULL;

    if (align < sizeof(void *)) {
        align = sizeof(void *);
    }
    if (posix_memalign(&p, align, size ? size : align) != 0) {
        return NULL;
    }
    return p;
}

static int64_t raw_fd_length(int fd)
{
    struct stat st;
    off_t end;

    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (S_ISREG(st.st_mode)) {
        return st.st_size;
    }
    /* Block devices report 0 in st_size; their end is where lseek says. */
    end = lseek(fd, 0, SEEK_END);
    return end < 0 ? -errno : (int64_t)end;
}

static void raw_wrlock(BDRVRawState *s)
{
    if (s->align > 1) {
        pthread_rwlock_wrlock(&s->rmw_lock);
    }
}

static void raw_rdlock(BDRVRawState *s)
{
    if (s->align > 1) {
        pthread_rwlock_rdlock(&s->rmw_lock);
    }
}

static void raw_unlock(BDRVRawState *s)
{
    if (s->align > 1) {
        pthread_rwlock_unlock(&s->rmw_lock);
    }
}

/* ------------------------------------------------------------------ */
/* Image locks                                                         */

static const char *const perm_names[LOCK_PERM_BITS] = {
    "consistent read", "write", "write unchanged", "resize",
};

static bool ofd_available;
static pthread_once_t ofd_once = PTHREAD_ONCE_INIT;

/*
 * Open file description locks (Linux 3.15+) belong to the descriptor, so two
 * opens of one image in one process see each other, and closing some other
 * descriptor of the file does not drop them. Process-wide POSIX locks are
 * the fallback where the kernel lacks them.
 */
static void raw_probe_ofd(void)
{
#ifdef F_OFD_GETLK
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (fd >= 0) {
        ofd_available = fcntl(fd, F_OFD_GETLK, &fl) == 0;
        close(fd);
    }
#endif
}

static int raw_lock_cmd(bool test)
{
    pthread_once(&ofd_once, raw_probe_ofd);
#ifdef F_OFD_GETLK
    if (ofd_available) {
        return test ? F_OFD_GETLK : F_OFD_SETLK;
    }
#endif
    return test ? F_GETLK : F_SETLK;
}

/* Take (F_RDLCK) or release (F_UNLCK) one lock byte; 0 or -errno. */
static int raw_lock_byte(int fd, int byte, short type)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    int cmd = raw_lock_cmd(false);

    while (fcntl(fd, cmd, &fl) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

/* 1 when another descriptor holds a lock on @byte, 0 when none, -errno. */
static int raw_test_byte(int fd, int byte)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    int cmd = raw_lock_cmd(true);

    while (fcntl(fd, cmd, &fl) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return fl.l_type != F_UNLCK;
}

static int raw_lock_error(BdrvError *err, int ret, const char *filename, int byte)
{
    if (ret == -EAGAIN || ret == -EACCES) {
        return bdrv_error_set(err, -ELOCKED,
                              "Failed to lock byte %d of '%s': another process holds it "
                              "(is the image in use by QEMU?)", byte, filename);
    }
    return bdrv_error_set(err, ret, "could not lock byte %d of '%s': %s", byte, filename,
                          strerror(-ret));
}

/*
 * Move the locks of @fd from *@held to @perm / @unshared (BLK_PERM_* bits):
 * take the new bytes first and only then test for conflicts, so that of two
 * processes racing for the image at least one sees the other. On failure
 * *@held and the bytes are as they were.
 */
static int raw_apply_locks(int fd, const char *filename, RawLockSet *held, uint64_t perm,
                           uint64_t unshared, BdrvError *err)
{
    RawLockSet got = { 0, 0 };
    int ret = 0;

    perm &= LOCK_PERM_MASK;
    unshared &= LOCK_PERM_MASK;

    for (int n = 0; n < LOCK_PERM_BITS; n++) {
        uint64_t bit = 1ULL << n;
        if ((perm & bit) && !(held->perm & bit)) {
            ret = raw_lock_byte(fd, LOCK_PERM_BASE + n, F_RDLCK);
            if (ret < 0) {
                raw_lock_error(err, ret, filename, LOCK_PERM_BASE + n);
                goto rollback;
            }
            got.perm |= bit;
        }
        if ((unshared & bit) && !(held->unshared & bit)) {
            ret = raw_lock_byte(fd, LOCK_SHARED_BASE + n, F_RDLCK);
            if (ret < 0) {
                raw_lock_error(err, ret, filename, LOCK_SHARED_BASE + n);
                goto rollback;
            }
            got.unshared |= bit;
        }
    }

    for (int n = 0; n < LOCK_PERM_BITS; n++) {
        uint64_t bit = 1ULL << n;
        if (perm & bit) {
            /* Someone who does not share what we want to do. */
            ret = raw_test_byte(fd, LOCK_SHARED_BASE + n);
            if (ret > 0) {
                ret = bdrv_error_set(err, -ELOCKED,
                                     "Failed to get \"%s\" lock on '%s': another process is "
                                     "using the image and does not allow it (is it in use by "
                                     "QEMU?)", perm_names[n], filename);
                goto rollback;
            }
        }
        if (ret >= 0 && (unshared & bit)) {
            /* Someone who already does what we do not let others do. */
            ret = raw_test_byte(fd, LOCK_PERM_BASE + n);
            if (ret > 0) {
                ret = bdrv_error_set(err, -ELOCKED,
                                     "Failed to get shared \"%s\" lock on '%s': another "
                                     "process is using the image with that permission (is "
                                     "it in use by QEMU?)", perm_names[n], filename);
                goto rollback;
            }
        }
        if (ret < 0) {
            bdrv_error_set(err, ret, "could not test the locks of '%s': %s", filename,
                           strerror(-ret));
            goto rollback;
        }
    }

    /* Release what the new set no longer needs; failure here only leaves a stale share lock. */
    for (int n = 0; n < LOCK_PERM_BITS; n++) {
        uint64_t bit = 1ULL << n;
        if ((held->perm & bit) && !(perm & bit)) {
            raw_lock_byte(fd, LOCK_PERM_BASE + n, F_UNLCK);
        }
        if ((held->unshared & bit) && !(unshared & bit)) {
            raw_lock_byte(fd, LOCK_SHARED_BASE + n, F_UNLCK);
        }
    }
    held->perm = perm;
    held->unshared = unshared;
    return 0;

rollback:
    for (int n = 0; n < LOCK_PERM_BITS; n++) {
        if (got.perm & (1ULL << n)) {
            raw_lock_byte(fd, LOCK_PERM_BASE + n, F_UNLCK);
        }
        if (got.unshared & (1ULL << n)) {
            raw_lock_byte(fd, LOCK_SHARED_BASE + n, F_UNLCK);
        }
    }
    return ret;
}

static int raw_set_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared, BdrvError *err)
{
    BDRVRawState *s = bs->opaque;
    uint64_t unshared = ~shared & LOCK_PERM_MASK;
    int ret;

    if (bs->open_flags & BDRV_O_NO_LOCK) {
        return 0;
    }
    /* Force-share (qemu-img -U) keeps what it uses visible but forbids nothing. */
    if (bs->open_flags & BDRV_O_FORCE_SHARE) {
        unshared = 0;
    }
    pthread_mutex_lock(&s->perm_lock);
    ret = raw_apply_locks(s->fd, raw_strip_prefix(bs->filename), &s->locks, perm, unshared,
                          err);
    pthread_mutex_unlock(&s->perm_lock);
    return ret;
}

/* What creating (truncating) a file takes, as qemu-img create does: write and resize,
 * letting nobody else resize meanwhile. */
#define CREATE_PERM      (BLK_PERM_WRITE | BLK_PERM_RESIZE)
#define CREATE_UNSHARED  (BLK_PERM_RESIZE)

/* ------------------------------------------------------------------ */
/* Linux native AIO                                                    */

#ifdef CONFIG_LIBAIO
/*
 * All requests of a node share one context. A node used to keep a pool of
 * contexts, one per concurrent request, but io_destroy waits for an RCU
 * grace period (tens of milliseconds each), so closing a node that had
 * run 64 requests at once took over a second. Now each caller submits its
 * own iocb, and whichever waiting caller finds nobody reaping becomes the
 * reaper: it collects every completion the kernel has, hands each one to
 * its request and wakes the others; a caller returns once its own request
 * is marked done.
 */
typedef struct RawAioReq {
    struct iocb cb;
    long res;
    bool done;
    /*
     * Asynchronous requests (bdrv_aio_preadv) are heap-allocated and handed
     * to @complete by whichever caller reaps them; synchronous ones have
     * @complete NULL and are woken through @done.
     */
    BdrvAioCompletionFunc *complete;
    void *opaque;
    size_t size;
} RawAioReq;

/* Hand one reaped completion to its request; aio_lock is held. */
static void raw_aio_dispatch(BDRVRawState *s, RawAioReq *r, long res)
{
    s->aio_inflight--;
    if (!r->complete) {
        r->res = res;
        r->done = true;
        return;
    }
    /*
     * A short read can only be the end of the file, or an interrupted
     * transfer; either way the synchronous path, which zero-fills and
     * retries as needed, redoes it (-EAGAIN tells the caller so).
     */
    if (res >= 0 && (size_t)res < r->size) {
        res = -EAGAIN;
    }
    r->complete(r->opaque, res < 0 ? (int)res : 0);
    free(r);
}

/*
 * Reap completions and dispatch all it got; aio_lock is held, and nobody
 * else may be reaping. With @wait at least one is waited for; without, only
 * those the kernel already has are taken.
 */
static void raw_aio_reap(BDRVRawState *s, bool wait)
{
    struct io_event ev[64];
    struct timespec zero = { 0, 0 };
    int n;

    s->aio_reaping = true;
    pthread_mutex_unlock(&s->aio_lock);
    n = io_getevents(s->aio_ctx, wait ? 1 : 0, (long)ARRAY_SIZE(ev), ev, wait ? NULL : &zero);
    pthread_mutex_lock(&s->aio_lock);
    s->aio_reaping = false;
    for (int i = 0; i < n; i++) {
        raw_aio_dispatch(s, ev[i].data, (long)ev[i].res);
    }
    if (n < 0 && n != -EINTR) {
        /*
         * io_getevents only fails on arguments that we got wrong. The
         * iocbs in flight can no longer be waited for, so every waiter
         * gives up with this error, and so does every later request: the
         * node's AIO is broken (close still waits for them in io_destroy).
         */
        s->aio_err = n;
    }
    pthread_cond_broadcast(&s->aio_cond);
}

static ssize_t raw_aio_rw(BDRVRawState *s, uint64_t offset, struct iovec *iov, int niov,
                          bool is_write)
{
    RawAioReq req;
    struct iocb *cbs[1] = { &req.cb };
    ssize_t ret;

    memset(&req, 0, sizeof(req));
    if (is_write) {
        io_prep_pwritev(&req.cb, s->fd, iov, niov, (long long)offset);
    } else {
        io_prep_preadv(&req.cb, s->fd, iov, niov, (long long)offset);
    }
    req.cb.data = &req;

    /* Never more requests in flight than the context has events for. */
    pthread_mutex_lock(&s->aio_lock);
    while (s->aio_inflight >= AIO_MAX_EVENTS && !s->aio_err) {
        pthread_cond_wait(&s->aio_cond, &s->aio_lock);
    }
    if (s->aio_err) {
        pthread_mutex_unlock(&s->aio_lock);
        return s->aio_err;
    }
    s->aio_inflight++;
    pthread_mutex_unlock(&s->aio_lock);

    do {
        ret = io_submit(s->aio_ctx, 1, cbs);
    } while (ret == -EINTR || ret == -EAGAIN);

    pthread_mutex_lock(&s->aio_lock);
    if (ret != 1) {
        s->aio_inflight--;
        pthread_cond_broadcast(&s->aio_cond);
        pthread_mutex_unlock(&s->aio_lock);
        return ret < 0 ? ret : -EIO;
    }
    while (!req.done && !s->aio_err) {
        if (s->aio_reaping) {
            pthread_cond_wait(&s->aio_cond, &s->aio_lock);
        } else {
            raw_aio_reap(s, true);
        }
    }
    ret = req.done ? (ssize_t)req.res : s->aio_err;
    pthread_mutex_unlock(&s->aio_lock);
    return ret;
}

static bool raw_qiov_aligned(const BDRVRawState *s, uint64_t offset, const QBIOVector *qiov);

/*
 * An asynchronous read: submitted here, completed by whoever reaps next
 * (raw_file_aio_poll or a synchronous request waiting on the context). The
 * kernel signals @notify_fd when it completes the iocb.
 */
static int raw_aio_submit_read(BDRVRawState *s, uint64_t offset, QBIOVector *qiov, int notify_fd,
                               BdrvAioCompletionFunc *cb, void *opaque)
{
    struct iocb *cbs[1];
    RawAioReq *req;
    int ret;

    if (!raw_qiov_aligned(s, offset, qiov) || qiov->niov > IOV_MAX) {
        return -EAGAIN;
    }
    req = calloc(1, sizeof(*req));
    if (!req) {
        return -ENOMEM;
    }
    io_prep_preadv(&req->cb, s->fd, qiov->iov, qiov->niov, (long long)offset);
    io_set_eventfd(&req->cb, notify_fd);
    req->cb.data = req;
    req->complete = cb;
    req->opaque = opaque;
    req->size = qiov->size;
    cbs[0] = &req->cb;

    /* A full context is not waited for here: the caller has a slower path. */
    pthread_mutex_lock(&s->aio_lock);
    if (s->aio_err || s->aio_inflight >= AIO_MAX_EVENTS) {
        pthread_mutex_unlock(&s->aio_lock);
        free(req);
        return -EAGAIN;
    }
    s->aio_inflight++;
    pthread_mutex_unlock(&s->aio_lock);

    do {
        ret = io_submit(s->aio_ctx, 1, cbs);
    } while (ret == -EINTR);
    if (ret != 1) {
        pthread_mutex_lock(&s->aio_lock);
        s->aio_inflight--;
        pthread_cond_broadcast(&s->aio_cond);
        pthread_mutex_unlock(&s->aio_lock);
        free(req);
        return -EAGAIN;
    }
    /* From here on the request belongs to the reaper; it may already be freed. */
    return 0;
}

static void raw_aio_cleanup(BDRVRawState *s)
{
    if (!s->aio_init) {
        return;
    }
    io_destroy(s->aio_ctx);
    pthread_cond_destroy(&s->aio_cond);
    pthread_mutex_destroy(&s->aio_lock);
    s->aio_init = false;
}

static int raw_aio_setup(BDRVRawState *s, const char *filename, BdrvError *err)
{
    int ret;

    /* Find out now, not on the first request, whether the kernel gives us a context. */
    s->aio_ctx = 0;
    ret = io_setup(AIO_MAX_EVENTS, &s->aio_ctx);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': Linux native AIO is unavailable (io_setup: %s)",
                              filename, strerror(-ret));
    }
    if (pthread_mutex_init(&s->aio_lock, NULL) != 0) {
        io_destroy(s->aio_ctx);
        return bdrv_error_set(err, -ENOMEM, "'%s': cannot create the AIO lock", filename);
    }
    if (pthread_cond_init(&s->aio_cond, NULL) != 0) {
        pthread_mutex_destroy(&s->aio_lock);
        io_destroy(s->aio_ctx);
        return bdrv_error_set(err, -ENOMEM, "'%s': cannot create the AIO lock", filename);
    }
    s->aio_inflight = 0;
    s->aio_reaping = false;
    s->aio_err = 0;
    s->aio_init = true;
    return 0;
}
#endif /* CONFIG_LIBAIO */

/* ------------------------------------------------------------------ */
/* Data transfer                                                       */

/* One system call (or one AIO request): bytes transferred or -errno. */
static ssize_t raw_submit(BDRVRawState *s, uint64_t offset, struct iovec *iov, int niov,
                          bool is_write)
{
    ssize_t n;

#ifdef CONFIG_LIBAIO
    if (s->use_aio) {
        return raw_aio_rw(s, offset, iov, niov, is_write);
    }
#endif
    n = is_write ? pwritev(s->fd, iov, niov, (off_t)offset)
                 : preadv(s->fd, iov, niov, (off_t)offset);
    return n < 0 ? -errno : n;
}

static void iov_zero_from(struct iovec *v, int idx, int niov)
{
    for (; idx < niov; idx++) {
        memset(v[idx].iov_base, 0, v[idx].iov_len);
    }
}

/*
 * Transfer the whole of @iov at @offset: retries interrupted and short
 * transfers, splits vectors longer than IOV_MAX, and zero-fills whatever a
 * read finds past the end of the file. With O_DIRECT the caller has
 * aligned everything; a short read that stops at an unaligned offset can
 * only be the end of the file.
 */
static int raw_rw_vec(BDRVRawState *s, uint64_t offset, const struct iovec *iov, int niov,
                      bool is_write)
{
    struct iovec stackv[16];
    struct iovec *v = stackv;
    int idx = 0;
    int ret = 0;

    if (niov > (int)ARRAY_SIZE(stackv)) {
        v = malloc(sizeof(*v) * (size_t)niov);
        if (!v) {
            return -ENOMEM;
        }
    }
    memcpy(v, iov, sizeof(*v) * (size_t)niov);

    while (idx < niov) {
        ssize_t n;
        size_t left;

        if (v[idx].iov_len == 0) {
            idx++;
            continue;
        }
        n = raw_submit(s, offset, &v[idx], MIN(niov - idx, IOV_MAX), is_write);
        if (n == -EINTR) {
            continue;
        }
        if (n < 0) {
            ret = (int)n;
            break;
        }
        if (n == 0) {
            if (is_write) {
                /* A write that makes no progress would loop for ever. */
                ret = -EIO;
            } else {
                iov_zero_from(v, idx, niov);
            }
            break;
        }
        offset += (uint64_t)n;
        left = (size_t)n;
        while (idx < niov && left >= v[idx].iov_len) {
            left -= v[idx].iov_len;
            idx++;
        }
        if (left) {
            v[idx].iov_base = (char *)v[idx].iov_base + left;
            v[idx].iov_len -= left;
        }
        if (!is_write && s->align > 1 && !IS_ALIGNED(offset, s->align)) {
            iov_zero_from(v, idx, niov);
            break;
        }
    }

    if (v != stackv) {
        free(v);
    }
    return ret;
}

static int raw_rw_buf(BDRVRawState *s, uint64_t offset, void *buf, size_t len, bool is_write)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    return raw_rw_vec(s, offset, &iov, 1, is_write);
}

/* True when O_DIRECT can take @qiov at @offset as it is. */
static bool raw_qiov_aligned(const BDRVRawState *s, uint64_t offset, const QBIOVector *qiov)
{
    if (s->align == 1) {
        return true;
    }
    if (!IS_ALIGNED(offset, s->align) || !IS_ALIGNED(qiov->size, s->align)) {
        return false;
    }
    for (int i = 0; i < qiov->niov; i++) {
        if (!IS_ALIGNED((uintptr_t)qiov->iov[i].iov_base, s->align) ||
            !IS_ALIGNED(qiov->iov[i].iov_len, s->align)) {
            return false;
        }
    }
    return true;
}

/* O_DIRECT read of an unaligned request through an aligned bounce buffer. */
static int raw_bounce_read(BDRVRawState *s, uint64_t offset, QBIOVector *qiov)
{
    uint64_t start = ROUND_DOWN(offset, s->align);
    uint64_t end = ROUND_UP(offset + qiov->size, s->align);
    size_t bufsize = (size_t)MIN(end - start, (uint64_t)BOUNCE_MAX);
    uint8_t *buf = raw_alloc_aligned(s->align, bufsize);
    int ret = 0;

    if (!buf) {
        return -ENOMEM;
    }
    for (uint64_t pos = start; pos < end; pos += bufsize) {
        size_t chunk = (size_t)MIN(end - pos, (uint64_t)bufsize);
        uint64_t lo = MAX(pos, offset);
        uint64_t hi = MIN(pos + chunk, offset + qiov->size);

        ret = raw_rw_buf(s, pos, buf, chunk, false);
        if (ret < 0) {
            break;
        }
        qiov_from_buf(qiov, (size_t)(lo - offset), buf + (lo - pos), (size_t)(hi - lo));
    }
    free(buf);
    return ret;
}

/*
 * O_DIRECT write of an unaligned request. Edge blocks only partly covered
 * are read first (the caller holds rmw_lock exclusively when there are
 * any). Writing whole blocks may push the end of the file past the end of
 * the request; the file is cut back to where a plain write would have left
 * it.
 */
static int raw_bounce_write(BDRVRawState *s, uint64_t offset, QBIOVector *qiov)
{
    uint64_t req_end = offset + qiov->size;
    uint64_t start = ROUND_DOWN(offset, s->align);
    uint64_t end = ROUND_UP(req_end, s->align);
    size_t bufsize = (size_t)MIN(end - start, (uint64_t)BOUNCE_MAX);
    bool edges = start != offset || end != req_end;
    int64_t old_size = 0;
    uint8_t *buf;
    int ret = 0;

    bufsize = MAX(bufsize, (size_t)s->align);
    buf = raw_alloc_aligned(s->align, bufsize);
    if (!buf) {
        return -ENOMEM;
    }
    if (edges) {
        old_size = raw_fd_length(s->fd);
        if (old_size < 0) {
            free(buf);
            return (int)old_size;
        }
    }
    for (uint64_t pos = start; pos < end; pos += bufsize) {
        size_t chunk = (size_t)MIN(end - pos, (uint64_t)bufsize);
        uint64_t lo = MAX(pos, offset);
        uint64_t hi = MIN(pos + chunk, req_end);

        if (pos < offset) {
            ret = raw_rw_buf(s, pos, buf, s->align, false);
            if (ret < 0) {
                break;
            }
        }
        /* The tail block, unless it is the head block just read. */
        if (pos + chunk > req_end && !(pos < offset && chunk == s->align)) {
            ret = raw_rw_buf(s, pos + chunk - s->align, buf + chunk - s->align, s->align, false);
            if (ret < 0) {
                break;
            }
        }
        qiov_to_buf(qiov, (size_t)(lo - offset), buf + (lo - pos), (size_t)(hi - lo));
        ret = raw_rw_buf(s, pos, buf, chunk, true);
        if (ret < 0) {
            break;
        }
    }
    if (edges && ret == 0 && end > (uint64_t)old_size) {
        uint64_t want = MAX((uint64_t)old_size, req_end);
        if (ftruncate(s->fd, (off_t)want) < 0) {
            ret = -errno;
        }
    }
    free(buf);
    return ret;
}

static int raw_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVRawState *s = bs->opaque;

    if (qiov->size == 0) {
        return 0;
    }
    if (raw_qiov_aligned(s, offset, qiov)) {
        return raw_rw_vec(s, offset, qiov->iov, qiov->niov, false);
    }
    return raw_bounce_read(s, offset, qiov);
}

static int raw_file_aio_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov,
                               int notify_fd, BdrvAioCompletionFunc *cb, void *opaque)
{
#ifdef CONFIG_LIBAIO
    BDRVRawState *s = bs->opaque;

    if (s->use_aio) {
        return raw_aio_submit_read(s, offset, qiov, notify_fd, cb, opaque);
    }
#else
    (void)bs; (void)offset; (void)qiov; (void)notify_fd; (void)cb; (void)opaque;
#endif
    return -ENOTSUP;
}

/* Take the completions the kernel has, unless another caller is already reaping them. */
static void raw_file_aio_poll(BlockDriverState *bs)
{
#ifdef CONFIG_LIBAIO
    BDRVRawState *s = bs->opaque;

    if (!s->use_aio) {
        return;
    }
    pthread_mutex_lock(&s->aio_lock);
    if (!s->aio_reaping && s->aio_inflight > 0 && !s->aio_err) {
        raw_aio_reap(s, false);
    }
    pthread_mutex_unlock(&s->aio_lock);
#else
    (void)bs;
#endif
}

/* A write with rmw_lock already taken in a mode that suits it. */
static int raw_pwritev_locked(BDRVRawState *s, uint64_t offset, QBIOVector *qiov)
{
    if (raw_qiov_aligned(s, offset, qiov)) {
        return raw_rw_vec(s, offset, qiov->iov, qiov->niov, true);
    }
    return raw_bounce_write(s, offset, qiov);
}

/* Whether a write must hold rmw_lock exclusively (its ends are not aligned). */
static bool raw_write_needs_rmw(const BDRVRawState *s, uint64_t offset, uint64_t bytes)
{
    return s->align > 1 && (!IS_ALIGNED(offset, s->align) || !IS_ALIGNED(bytes, s->align));
}

static int raw_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVRawState *s = bs->opaque;
    int ret;

    if (qiov->size == 0) {
        return 0;
    }
    if (raw_write_needs_rmw(s, offset, qiov->size)) {
        raw_wrlock(s);
    } else {
        raw_rdlock(s);
    }
    ret = raw_pwritev_locked(s, offset, qiov);
    raw_unlock(s);
    return ret;
}

/* Write real zeros over [offset, offset+bytes), a bounded buffer at a time. */
static int raw_write_zero_buffers(BDRVRawState *s, uint64_t offset, uint64_t bytes, bool locked)
{
    size_t bufsize = (size_t)MIN(bytes, (uint64_t)ZERO_BUF_SIZE);
    uint8_t *buf = raw_alloc_aligned(MAX(s->align, 4096u), ROUND_UP(bufsize, 4096));
    int ret = 0;

    if (!buf) {
        return -ENOMEM;
    }
    memset(buf, 0, ROUND_UP(bufsize, 4096));
    while (bytes) {
        size_t n = (size_t)MIN(bytes, (uint64_t)bufsize);
        QBIOVector qiov;

        qiov_init_buf(&qiov, buf, n);
        if (locked) {
            ret = raw_pwritev_locked(s, offset, &qiov);
        } else {
            bool rmw = raw_write_needs_rmw(s, offset, n);
            if (rmw) {
                raw_wrlock(s);
            } else {
                raw_rdlock(s);
            }
            ret = raw_pwritev_locked(s, offset, &qiov);
            raw_unlock(s);
        }
        if (ret < 0) {
            break;
        }
        offset += n;
        bytes -= n;
    }
    free(buf);
    return ret;
}

static int raw_fallocate(int fd, int mode, uint64_t offset, uint64_t len)
{
    while (fallocate(fd, mode, (off_t)offset, (off_t)len) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

static bool raw_fallocate_unsupported(int ret)
{
    return ret == -EOPNOTSUPP || ret == -ENOTSUP || ret == -ENOSYS || ret == -EINVAL;
}

static int raw_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVRawState *s = bs->opaque;
    int64_t size;
    int ret;

    if (bytes == 0) {
        return 0;
    }
    raw_rdlock(s);
    /* Zeroing a range extends the file as a write would; punching does not. */
    ret = raw_fallocate(s->fd, FALLOC_FL_ZERO_RANGE, offset, bytes);
    if (ret == 0 || !raw_fallocate_unsupported(ret)) {
        raw_unlock(s);
        return ret;
    }
    size = raw_fd_length(s->fd);
    if (size < 0) {
        raw_unlock(s);
        return (int)size;
    }
    /* A punched hole always reads as zeros, so it is a valid way to zero. */
    ret = 0;
    if (offset < (uint64_t)size) {
        ret = raw_fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset,
                            MIN(bytes, (uint64_t)size - offset));
    }
    if (ret == 0) {
        raw_unlock(s);
        if (offset + bytes > (uint64_t)size) {
            /* Extending by truncation adds zeros too; never shrink a file that grew meanwhile. */
            raw_wrlock(s);
            size = raw_fd_length(s->fd);
            if (size >= 0 && (uint64_t)size < offset + bytes &&
                ftruncate(s->fd, (off_t)(offset + bytes)) < 0) {
                ret = -errno;
            } else if (size < 0) {
                ret = (int)size;
            }
            raw_unlock(s);
        }
        return ret;
    }
    raw_unlock(s);
    if (!raw_fallocate_unsupported(ret)) {
        return ret;
    }
    return raw_write_zero_buffers(s, offset, bytes, false);
}

static int raw_pdiscard(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVRawState *s = bs->opaque;
    int ret;

    if (bytes == 0) {
        return 0;
    }
    raw_rdlock(s);
    ret = raw_fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, bytes);
    raw_unlock(s);
    /* Discard is advisory: a file system that cannot punch holes just keeps the data. */
    if (raw_fallocate_unsupported(ret)) {
        return 0;
    }
    return ret;
}

static int raw_flush(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;

    if (s->no_flush) {
        return 0;
    }
    while (fdatasync(s->fd) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Allocation status                                                   */

static int raw_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    BDRVRawState *s = bs->opaque;
    const int hole = BDRV_BLOCK_ZERO | BDRV_BLOCK_HOLE | BDRV_BLOCK_ALLOCATED |
                     BDRV_BLOCK_OFFSET_VALID;
    const int data = BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
    int64_t size = raw_fd_length(s->fd);
    uint64_t end, limit;
    off_t d, h;
    int ret;

    if (size < 0) {
        return (int)size;
    }
    *map = offset;
    *file = bs;
    if (bytes == 0) {
        *pnum = 0;
        return data;
    }
    if (offset >= (uint64_t)size) {
        /* Past the end a file reads as zeros and stores nothing. */
        *pnum = bytes;
        return hole | BDRV_BLOCK_EOF;
    }
    limit = MIN(offset + bytes, (uint64_t)size);

    d = lseek(s->fd, (off_t)offset, SEEK_DATA);
    if (d < 0) {
        if (errno == ENXIO) {
            /* No data at or after @offset: a hole up to the end of the file. */
            end = limit;
            ret = hole;
        } else {
            /* SEEK_DATA not supported here (EINVAL and others): everything is data. */
            end = limit;
            ret = data;
        }
    } else if ((uint64_t)d > offset) {
        end = MIN((uint64_t)d, limit);
        ret = hole;
    } else {
        h = lseek(s->fd, (off_t)offset, SEEK_HOLE);
        if (h < 0 || (uint64_t)h <= offset) {
            /* The file changed under us or the query failed: claim data, which is safe. */
            end = limit;
        } else {
            end = MIN((uint64_t)h, limit);
        }
        ret = data;
    }
    *pnum = end - offset;
    if (end >= (uint64_t)size) {
        ret |= BDRV_BLOCK_EOF;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Size                                                                */

static int64_t raw_getlength(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    return raw_fd_length(s->fd);
}

static int64_t raw_get_allocated_file_size(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return (int64_t)st.st_blocks * 512;
}

static int raw_has_zero_init(BlockDriverState *bs)
{
    (void)bs;
    return 1;
}

/*
 * Resize the file behind @fd from @cur to @size bytes. Growing with falloc
 * reserves the new blocks; with full writes zeros into them (through @s
 * when given, which handles O_DIRECT; the caller holds rmw_lock
 * exclusively).
 */
static int raw_resize_fd(int fd, BDRVRawState *s, const char *filename, uint64_t cur,
                         uint64_t size, BdrvPrealloc prealloc, BdrvError *err)
{
    int ret;

    if (size > (uint64_t)INT64_MAX) {
        return bdrv_error_set(err, -EFBIG, "'%s': size %llu is too large", filename,
                              (unsigned long long)size);
    }
    if (prealloc == BDRV_PREALLOC_METADATA) {
        return bdrv_error_set(err, -ENOTSUP,
                              "'%s': preallocation=metadata is not supported by the file "
                              "protocol", filename);
    }
    if (prealloc != BDRV_PREALLOC_OFF && size < cur) {
        return bdrv_error_set(err, -ENOTSUP,
                              "'%s': preallocation can only be used when growing a file",
                              filename);
    }
    if (prealloc == BDRV_PREALLOC_OFF || size == cur) {
        if (ftruncate(fd, (off_t)size) < 0) {
            return bdrv_error_set(err, -errno, "could not resize '%s': %s", filename,
                                  strerror(errno));
        }
        return 0;
    }
    if (prealloc == BDRV_PREALLOC_FALLOC) {
        ret = posix_fallocate(fd, (off_t)cur, (off_t)(size - cur));
        if (ret != 0) {
            return bdrv_error_set(err, -ret, "could not preallocate '%s' (falloc): %s",
                                  filename, strerror(ret));
        }
        return 0;
    }

    /* Full preallocation: real zeros on disk. */
    if (s) {
        ret = raw_write_zero_buffers(s, cur, size - cur, true);
    } else {
        uint8_t *buf = calloc(1, ZERO_BUF_SIZE);
        uint64_t pos = cur;

        ret = buf ? 0 : -ENOMEM;
        while (ret == 0 && pos < size) {
            size_t n = (size_t)MIN(size - pos, (uint64_t)ZERO_BUF_SIZE);
            ssize_t w = pwrite(fd, buf, n, (off_t)pos);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                ret = w < 0 ? -errno : -EIO;
                break;
            }
            pos += (uint64_t)w;
        }
        free(buf);
    }
    if (ret < 0) {
        /* Leave the file as it was rather than half preallocated. */
        if (ftruncate(fd, (off_t)cur) < 0) {
            /* Nothing more to do: the write error is the one to report. */
        }
        return bdrv_error_set(err, ret, "could not preallocate '%s' (full): %s", filename,
                              strerror(-ret));
    }
    return 0;
}

static int raw_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                        BdrvError *err)
{
    BDRVRawState *s = bs->opaque;
    const char *filename = raw_strip_prefix(bs->filename);
    int64_t cur;
    int ret;

    raw_wrlock(s);
    cur = raw_fd_length(s->fd);
    if (cur < 0) {
        raw_unlock(s);
        return bdrv_error_set(err, (int)cur, "could not get the size of '%s': %s", filename,
                              strerror((int)-cur));
    }
    ret = raw_resize_fd(s->fd, s, filename, (uint64_t)cur, offset, prealloc, err);
    raw_unlock(s);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Open, close, create                                                 */

/*
 * The alignment O_DIRECT needs for offsets, lengths and memory on @fd: what
 * the kernel says (statx, or the logical block size of a device), else what
 * a trial read accepts, else 4096, which every device we know accepts.
 */
static uint32_t raw_probe_alignment(int fd)
{
    struct stat st;
    uint8_t *buf;
    uint32_t found = 0;

#ifdef STATX_DIOALIGN
    {
        struct statx stx;
        if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
            (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
            uint32_t a = MAX(stx.stx_dio_offset_align, stx.stx_dio_mem_align);
            if (IS_POW2(a) && a <= MAX_DIRECT_ALIGN) {
                return a;
            }
        }
    }
#endif
    if (fstat(fd, &st) < 0) {
        return 4096;
    }
    if (S_ISBLK(st.st_mode)) {
        int sector = 0;
        if (ioctl(fd, BLKSSZGET, &sector) == 0 && sector > 0 && IS_POW2((uint32_t)sector) &&
            sector <= MAX_DIRECT_ALIGN) {
            return MAX((uint32_t)sector, 512u);
        }
    }
    /*
     * A trial read proves an alignment only where there is data to read: at
     * the end of a file the kernel may answer 0 before checking alignment.
     * The buffer sits exactly @a past an 8 KiB boundary so that it is aligned
     * to @a and to nothing larger.
     */
    if (!S_ISREG(st.st_mode) || st.st_size >= 4096) {
        buf = raw_alloc_aligned(8192, 16384);
        if (buf) {
            static const uint32_t candidates[] = { 512, 4096 };
            for (size_t i = 0; i < ARRAY_SIZE(candidates) && !found; i++) {
                uint32_t a = candidates[i];
                ssize_t n;
                do {
                    n = pread(fd, buf + 8192 + a, a, 0);
                } while (n < 0 && errno == EINTR);
                if (n > 0) {
                    found = a;
                } else if (n < 0 && errno != EINVAL) {
                    break;
                }
            }
            free(buf);
        }
    }
    return found ? found : 4096;
}

static void raw_free_state(BDRVRawState *s)
{
#ifdef CONFIG_LIBAIO
    raw_aio_cleanup(s);
#endif
    if (s->rw_lock_init) {
        pthread_rwlock_destroy(&s->rmw_lock);
        s->rw_lock_init = false;
    }
    if (s->perm_lock_init) {
        pthread_mutex_destroy(&s->perm_lock);
        s->perm_lock_init = false;
    }
    if (s->fd >= 0) {
        /* Closing the descriptor also drops every lock byte it held. */
        close(s->fd);
        s->fd = -1;
    }
}

static int raw_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVRawState *s = bs->opaque;
    const char *filename = raw_strip_prefix(bs->filename);
    pthread_rwlockattr_t rwattr;
    struct stat st;
    int oflags = O_CLOEXEC;
    int ret;

    s->fd = -1;
    oflags |= (flags & BDRV_O_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & BDRV_O_NOCACHE) {
        oflags |= O_DIRECT;
    }
    if ((flags & BDRV_O_CREATE) && (flags & BDRV_O_RDWR)) {
        oflags |= O_CREAT;
    }
    do {
        s->fd = open(filename, oflags, 0644);
    } while (s->fd < 0 && errno == EINTR);
    if (s->fd < 0) {
        ret = -errno;
        if (ret == -EINVAL && (flags & BDRV_O_NOCACHE)) {
            return bdrv_error_set(err, ret,
                                  "could not open '%s': the file system does not support "
                                  "O_DIRECT (cache=none / LIBQBLOCK_O_NOCACHE)", filename);
        }
        return bdrv_error_set(err, ret, "could not open '%s': %s", filename, strerror(-ret));
    }
    if (fstat(s->fd, &st) < 0) {
        ret = bdrv_error_set(err, -errno, "could not stat '%s': %s", filename, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        ret = bdrv_error_set(err, -EISDIR, "'%s' is a directory, not an image", filename);
        goto fail;
    }

    if (pthread_mutex_init(&s->perm_lock, NULL) != 0) {
        ret = bdrv_error_set(err, -ENOMEM, "'%s': cannot create a lock", filename);
        goto fail;
    }
    s->perm_lock_init = true;
    /* Writers (read-modify-write) must not starve behind a stream of aligned writes. */
    if (pthread_rwlockattr_init(&rwattr) != 0) {
        ret = bdrv_error_set(err, -ENOMEM, "'%s': cannot create a lock", filename);
        goto fail;
    }
    pthread_rwlockattr_setkind_np(&rwattr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    ret = pthread_rwlock_init(&s->rmw_lock, &rwattr);
    pthread_rwlockattr_destroy(&rwattr);
    if (ret != 0) {
        ret = bdrv_error_set(err, -ENOMEM, "'%s': cannot create a lock", filename);
        goto fail;
    }
    s->rw_lock_init = true;

    s->no_flush = (flags & BDRV_O_NO_FLUSH) != 0;
    s->align = (flags & BDRV_O_NOCACHE) ? raw_probe_alignment(s->fd) : 1;

    /* Native AIO needs O_DIRECT to be asynchronous at all; QEMU ignores it otherwise too. */
    if ((flags & BDRV_O_NATIVE_AIO) && (flags & BDRV_O_NOCACHE)) {
#ifdef CONFIG_LIBAIO
        ret = raw_aio_setup(s, filename, err);
        if (ret < 0) {
            goto fail;
        }
        s->use_aio = true;
#else
        ret = bdrv_error_set(err, -ENOTSUP,
                             "'%s': Linux native AIO was requested, but this build of "
                             "libqblock has no libaio support", filename);
        goto fail;
#endif
    }

    /*
     * Creating through open truncates the file; like bdrv_create_file it
     * first takes the locks qemu-img create takes, so that an image in use
     * is never emptied under its user.
     */
    if ((flags & BDRV_O_CREATE) && (flags & BDRV_O_RDWR)) {
        if (!(flags & (BDRV_O_NO_LOCK | BDRV_O_FORCE_SHARE))) {
            ret = raw_apply_locks(s->fd, filename, &s->locks, CREATE_PERM, CREATE_UNSHARED,
                                  err);
            if (ret < 0) {
                goto fail;
            }
        }
        if (S_ISREG(st.st_mode) && ftruncate(s->fd, 0) < 0) {
            ret = bdrv_error_set(err, -errno, "could not truncate '%s': %s", filename,
                                 strerror(errno));
            goto fail;
        }
    }

    bs->request_alignment = 1;
    {
        int64_t len = raw_fd_length(s->fd);
        bs->total_sectors = len > 0 ? (int64_t)DIV_ROUND_UP((uint64_t)len, BDRV_SECTOR_SIZE) : 0;
    }
    return 0;

fail:
    raw_free_state(s);
    return ret;
}

static void raw_close(BlockDriverState *bs)
{
    raw_free_state(bs->opaque);
}

/*
 * Create @filename, or empty an existing one, as qemu-img create does: the
 * file is opened without O_TRUNC, locked, and only then truncated, so an
 * image another process holds is refused, not destroyed.
 */
static int raw_create_file(const char *filename, uint64_t size, BdrvPrealloc prealloc,
                           int flags, BdrvError *err)
{
    RawLockSet held = { 0, 0 };
    struct stat st;
    int fd, ret;

    filename = raw_strip_prefix(filename);
    if (prealloc == BDRV_PREALLOC_METADATA) {
        return bdrv_error_set(err, -ENOTSUP,
                              "'%s': preallocation=metadata is not supported by the file "
                              "protocol", filename);
    }
    if (size > (uint64_t)INT64_MAX) {
        return bdrv_error_set(err, -EFBIG, "'%s': size %llu is too large", filename,
                              (unsigned long long)size);
    }
    do {
        fd = open(filename, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return bdrv_error_set(err, -errno, "could not create '%s': %s", filename,
                              strerror(errno));
    }
    if (!(flags & (BDRV_O_NO_LOCK | BDRV_O_FORCE_SHARE))) {
        ret = raw_apply_locks(fd, filename, &held, CREATE_PERM, CREATE_UNSHARED, err);
        if (ret < 0) {
            goto out;
        }
    }
    if (fstat(fd, &st) < 0) {
        ret = bdrv_error_set(err, -errno, "could not stat '%s': %s", filename, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        /* A device keeps its size; it only has to be large enough. */
        int64_t len = raw_fd_length(fd);
        if (len < 0) {
            ret = bdrv_error_set(err, (int)len, "could not get the size of '%s': %s",
                                 filename, strerror((int)-len));
        } else if ((uint64_t)len < size) {
            ret = bdrv_error_set(err, -ENOSPC, "'%s' is only %lld bytes, %llu requested",
                                 filename, (long long)len, (unsigned long long)size);
        } else {
            ret = 0;
        }
        goto out;
    }
    if (ftruncate(fd, 0) < 0) {
        ret = bdrv_error_set(err, -errno, "could not truncate '%s': %s", filename,
                             strerror(errno));
        goto out;
    }
    ret = raw_resize_fd(fd, NULL, filename, 0, size, prealloc, err);

out:
    /* Closing releases the locks. */
    close(fd);
    return ret;
}

int bdrv_file_make_temp(char *path, size_t size)
{
    const char *dir = getenv("TMPDIR");
    int fd, n;

    /* Where QEMU puts its snapshot overlays too: $TMPDIR, else /var/tmp. */
    if (!dir || !*dir) {
        dir = "/var/tmp";
    }
    n = snprintf(path, size, "%s/qblock-snapshot-XXXXXX", dir);
    if (n < 0 || (size_t)n >= size) {
        return -ENAMETOOLONG;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    close(fd);
    return 0;
}

int bdrv_file_unlink(const char *path)
{
    return unlink(path) < 0 ? -errno : 0;
}

const BlockDriver bdrv_file = {
    .format_name = "file",
    .instance_size = sizeof(BDRVRawState),
    .is_protocol = true,
    .thread_safe = true,
    .shares_write = true,
    .caps = BDRV_CAP_SHRINK,

    .bdrv_open = raw_open,
    .bdrv_close = raw_close,

    .bdrv_preadv = raw_preadv,
    .bdrv_aio_preadv = raw_file_aio_preadv,
    .bdrv_aio_poll = raw_file_aio_poll,
    .bdrv_pwritev = raw_pwritev,
    .bdrv_pwrite_zeroes = raw_pwrite_zeroes,
    .bdrv_flush = raw_flush,
    .bdrv_pdiscard = raw_pdiscard,
    .bdrv_block_status = raw_block_status,

    .bdrv_getlength = raw_getlength,
    .bdrv_truncate = raw_truncate,
    .bdrv_has_zero_init = raw_has_zero_init,
    .bdrv_get_allocated_file_size = raw_get_allocated_file_size,

    .bdrv_set_perm = raw_set_perm,
    .bdrv_create_file = raw_create_file,
};
