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
/* Record a block-layer failure (-errno, with the BdrvError message if any). */
HIDDEN int qb_fail_errno(QBroker *broker, int neg_errno, const BdrvError *err, const char *func,
                         const char *filename);

/*
 * Run a call that must not overlap any write or discard on @qbs (state.c):
 * waits for those in flight and holds back new ones until the end call.
 */
HIDDEN void state_exclusive_begin(QBlockState *qbs, QbWriteReq *req);
HIDDEN void state_exclusive_end(QBlockState *qbs, QbWriteReq *req);

/* Give @qbs the default open policy; free what its policy holds (policy.c). */
HIDDEN void qb_policy_init(QBlockState *qbs);
HIDDEN void qb_policy_free(QBlockState *qbs);

/* Fill @opts from @fmt's create options (the inverse of qb_fmt_info_set_options). */
HIDDEN int qb_fmt_info_to_opts(QBroker *broker, const QBlockFmtInfo *fmt, BdrvOpts *opts);

/* Whether qb_fmt_info_set_options maps create option @key of @fmt to a struct member. */
HIDDEN bool qb_fmt_option_settable(enum QBlockFmtType fmt, const char *key);

#endif /* LIBQBLOCK_INTERNAL_H */
