/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* internal.h: what the facade's files share (brokers, states, the option table). */
#ifndef LIBQBLOCK_INTERNAL_H
#define LIBQBLOCK_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "libqblock/libqblock.h"

struct QBroker {
    int err_code;          /* QB_ERR_* of the last failure, 0 if none */
    int err_no;            /* positive errno behind it, 0 if none */
    char msg[1024];
};

/* A write in flight, tracked so that read-modify-write edges are serialised. */
typedef struct QbWriteReq {
    uint64_t start, end;   /* sector-aligned byte range it touches */
    bool rmw;              /* it reads and rewrites partial sectors */
    struct QbWriteReq *next;
} QbWriteReq;

struct QBlockState {
    BlockDriverState *bs;  /* NULL while closed */
    char *filename;
    int flags;             /* LIBQBLOCK_O_* given to qb_open */
    pthread_mutex_t req_lock;
    pthread_cond_t req_cond;
    QbWriteReq *writes;
    /*
     * Held shared by every call that uses the open image (reads, writes,
     * status, facts), exclusively by the calls that change what the others
     * rely on: the size (truncate), the whole mapping (snapshot create,
     * apply, delete) or the metadata a check walks and repairs.
     */
    pthread_rwlock_t io_lock;
    struct QbAio *aio;     /* asynchronous engine (aio.c); NULL until first used */
    int aio_max_depth;     /* 0: QB_AIO_DEFAULT_QUEUE_DEPTH */
    BdrvPolicy policy;     /* what qb_open follows (libqblock/policy.c) */
    uint64_t policy_max_metadata;   /* as set, for qb_state_get_policy */
    uint64_t policy_max_descriptor;
    uint32_t policy_max_depth;
};

/*
 * Every public call that reports through a broker starts with this: with no
 * broker there is nowhere to put an error, so the call fails at once.
 */
#define QB_REQUIRE_BROKER(broker) \
    do { \
        if (!(broker)) { \
            return QB_ERR_INVALID_PARAM; \
        } \
    } while (0)

/* Record an error on @broker (may be NULL) and return @code. */
HIDDEN int qb_fail(QBroker *broker, int code, int err_no, const char *fmt, ...) PRINTF_FMT(4, 5);
/* The QB_ERR_* code for a negative errno from the block layer. */
HIDDEN int qb_code_from_errno(int neg_errno);
/*
 * The block layer's name (a URI) of the NBD location @o, malloc'ed into
 * *owned with *name pointing at it; a broker error naming @func when @o is
 * not valid (libqblock/nbd-loc.c).
 */
HIDDEN int qb_nbd_location(QBroker *broker, const char *func, const struct QBlockProtOptionNBD *o,
                           char **owned, const char **name);
/* The same for a QB_PROT_RBD location: the rbd: name block/rbd.c parses. */
HIDDEN int qb_rbd_location(QBroker *broker, const char *func, const struct QBlockProtOptionRBD *o,
                           char **owned, const char **name);
/* Record a block-layer failure (-errno, with the BdrvError message if any). */
HIDDEN int qb_fail_errno(QBroker *broker, int neg_errno, const BdrvError *err, const char *func,
                         const char *filename);

/*
 * A call that uses the open image takes @qbs's io_lock shared for its
 * duration (state.c); NULL @qbs is allowed, the call then fails its checks.
 */
HIDDEN void state_shared_begin(QBlockState *qbs);
HIDDEN void state_shared_end(QBlockState *qbs);

/*
 * Run a call that must not overlap any other call on @qbs (state.c): waits
 * for those in flight and holds back new ones until the end call.
 */
HIDDEN void state_exclusive_begin(QBlockState *qbs);
HIDDEN void state_exclusive_end(QBlockState *qbs);

/*
 * The byte-offset requests behind qb_read/qb_write and their vectored and
 * asynchronous forms (state.c). The range and arguments are already
 * checked; the result is the length or a QB_ERR_* code recorded on @broker.
 */
HIDDEN int64_t state_preadv(QBroker *broker, const char *func, QBlockState *qbs,
                            QBIOVector *qiov, uint64_t offset);
HIDDEN int64_t state_pwritev(QBroker *broker, const char *func, QBlockState *qbs,
                             QBIOVector *qiov, uint64_t offset);
/* Check @iov (entries, total length, range) and describe it in @qiov (destroy it after). */
HIDDEN int state_qiov_from_iovec(QBroker *broker, const char *func, QBlockState *qbs,
                                 const struct iovec *iov, int iovcnt, uint64_t offset,
                                 QBIOVector *qiov);
/* Check that [offset, offset+len) of the open state lies inside the image. */
HIDDEN int state_check_range(QBroker *broker, const char *func, QBlockState *qbs,
                             uint64_t offset, uint64_t len);

/* Finish every asynchronous request, run its callback and stop the engine (aio.c). */
HIDDEN void aio_state_shutdown(QBlockState *qbs);
/*
 * Inside a request's callback: the message and errno its worker's broker
 * recorded when it failed, or NULL (a native read, a cancel, no memory).
 */
HIDDEN const char *aio_req_error(const QBlockAIOReq *req, int *err_no);
/*
 * For a caller that would otherwise wait for its requests: runs one queued
 * request of @qbs that may start now in the calling thread, as a worker
 * would (its completion then waits on the done list). Whether it ran one.
 */
HIDDEN int aio_help(QBlockState *qbs);

/* Give @qbs the default open policy; free what its policy holds (policy.c). */
HIDDEN void qb_policy_init(QBlockState *qbs);
HIDDEN void qb_policy_free(QBlockState *qbs);

/* Fill @opts from @fmt's create options (the inverse of qb_fmt_info_set_options). */
HIDDEN int qb_fmt_info_to_opts(QBroker *broker, const QBlockFmtInfo *fmt, BdrvOpts *opts);

/* Whether qb_fmt_info_set_options maps create option @key of @fmt to a struct member. */
HIDDEN bool qb_fmt_option_settable(enum QBlockFmtType fmt, const char *key);

#endif /* LIBQBLOCK_INTERNAL_H */
