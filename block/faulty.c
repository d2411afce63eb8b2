/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* faulty.c: a protocol node over a file node that fails chosen requests, for fault-injection tests. */

/*
 * The node forwards everything to its file node and counts reads, writes
 * and flushes across all faulty nodes of the process (include/block/fault.h
 * says how a rule is armed). Counting in one sequence, rather than per
 * node, lets a test name "the 17th write" of a workload that opens several
 * files (extents, backing files, a reopened image) and get the same
 * request on every run, as the library's I/O is deterministic for a given
 * sequence of calls on one thread.
 *
 * A torn write stores the whole sectors of the request's first half and
 * then fails: storage keeps a prefix of an interrupted write, but never
 * half a sector, which is the atomicity formats may rely on.
 *
 * The environment variables are read with secure_getenv: a set-user-ID or
 * set-group-ID program (or one with file capabilities) that links the
 * library ignores them, so that whoever starts it can neither make its
 * I/O fail, nor its flushes skip the disk, nor make it append to a file
 * of their choosing (LIBQBLOCK_FAULT_LOG).
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/fault.h"

typedef struct BDRVFaultyState {
    BlockDriverState *child;    /* the file node every request goes to */
} BDRVFaultyState;

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fault_env_once = PTHREAD_ONCE_INIT;
static bool fault_armed;        /* new file nodes are wrapped */
static bool fault_set_by_api;   /* the environment no longer applies */
static BdrvFaultRule fault_rule;
static uint64_t fault_counts[BDRV_FAULT_KINDS];
static uint64_t fault_injected;

static const char *const fault_kind_names[BDRV_FAULT_KINDS] = { "read", "write", "flush" };

/* Append one line to LIBQBLOCK_FAULT_LOG, or stderr, so that no injection goes unnoticed. */
static void fault_log(const char *fmt, ...) PRINTF_FMT(1, 2);

static void fault_log(const char *fmt, ...)
{
    const char *path = secure_getenv("LIBQBLOCK_FAULT_LOG");
    char line[256];
    va_list ap;
    int fd = 2, n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
    }
    if (path && *path) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            return;
        }
    }
    /* Best effort: a log that cannot be written must not change the request's outcome. */
    if (write(fd, line, (size_t)n) < 0) {
        n = 0;
    }
    if (fd != 2) {
        close(fd);
    }
}

int bdrv_fault_parse(const char *spec, BdrvFaultRule *rule)
{
    char kind[16], what[16], extra[16];
    unsigned long long nth;
    int n;

    memset(rule, 0, sizeof(*rule));
    if (strcmp(spec, "count") == 0) {
        return 0;
    }
    extra[0] = '\0';
    n = sscanf(spec, "%15[a-z]:%llu:%15[a-z]:%15[a-z]", kind, &nth, what, extra);
    if (n < 3 || nth == 0 || (n == 4 && strcmp(extra, "sticky") != 0)) {
        return -EINVAL;
    }
    rule->inject = true;
    rule->nth = nth;
    rule->sticky = n == 4;
    for (rule->kind = 0; rule->kind < BDRV_FAULT_KINDS; rule->kind++) {
        if (strcmp(kind, fault_kind_names[rule->kind]) == 0) {
            break;
        }
    }
    if (rule->kind == BDRV_FAULT_KINDS) {
        return -EINVAL;
    }
    if (strcmp(what, "eio") == 0) {
        rule->error = EIO;
    } else if (strcmp(what, "enospc") == 0) {
        rule->error = ENOSPC;
    } else if (strcmp(what, "torn") == 0 && rule->kind == BDRV_FAULT_WRITE) {
        rule->error = EIO;
        rule->torn = true;
    } else {
        return -EINVAL;
    }
    return 0;
}

static void fault_arm_locked(const BdrvFaultRule *rule)
{
    fault_armed = rule != NULL;
    if (rule) {
        fault_rule = *rule;
    }
    memset(fault_counts, 0, sizeof(fault_counts));
    fault_injected = 0;
}

static void fault_read_env(void)
{
    const char *spec = secure_getenv("LIBQBLOCK_FAULT_INJECT");
    BdrvFaultRule rule;

    const char *nosync = secure_getenv("LIBQBLOCK_FAULT_NOSYNC");

    if (!spec || !*spec) {
        return;
    }
    pthread_mutex_lock(&fault_lock);
    if (!fault_set_by_api) {
        if (bdrv_fault_parse(spec, &rule) < 0) {
            fault_log("libqblock: LIBQBLOCK_FAULT_INJECT='%s' is malformed; ignored\n", spec);
        } else {
            rule.nosync = nosync && strcmp(nosync, "1") == 0;
            fault_arm_locked(&rule);
        }
    }
    pthread_mutex_unlock(&fault_lock);
}

void bdrv_fault_arm(const BdrvFaultRule *rule)
{
    pthread_mutex_lock(&fault_lock);
    fault_set_by_api = true;
    fault_arm_locked(rule);
    pthread_mutex_unlock(&fault_lock);
}

void bdrv_fault_counts(uint64_t counts[BDRV_FAULT_KINDS], uint64_t *injected)
{
    pthread_mutex_lock(&fault_lock);
    memcpy(counts, fault_counts, sizeof(fault_counts));
    *injected = fault_injected;
    pthread_mutex_unlock(&fault_lock);
}

/*
 * Count one request of @kind; returns the negative errno it must fail
 * with, or 0 to carry it out. *@torn tells a write to store its prefix.
 */
static int fault_next(BdrvFaultKind kind, bool *torn)
{
    uint64_t n;
    int ret = 0;

    *torn = false;
    pthread_mutex_lock(&fault_lock);
    n = ++fault_counts[kind];
    if (fault_armed && fault_rule.inject && fault_rule.kind == kind &&
        (n == fault_rule.nth || (fault_rule.sticky && n > fault_rule.nth))) {
        ret = -fault_rule.error;
        *torn = fault_rule.torn;
        fault_injected++;
    }
    pthread_mutex_unlock(&fault_lock);
    if (ret) {
        fault_log("libqblock: fault injected: %s #%llu fails with %s%s\n", fault_kind_names[kind],
                  (unsigned long long)n, ret == -ENOSPC ? "ENOSPC" : "EIO",
                  *torn ? " after a torn write" : "");
    }
    return ret;
}

int bdrv_fault_wrap(BlockDriverState **pbs, BdrvError *err)
{
    BlockDriverState *child = *pbs, *bs;
    BDRVFaultyState *s;
    bool armed;

    pthread_once(&fault_env_once, fault_read_env);
    pthread_mutex_lock(&fault_lock);
    armed = fault_armed;
    pthread_mutex_unlock(&fault_lock);
    if (!armed) {
        return 0;
    }
    bs = bdrv_new(&bdrv_faulty, child->filename, child->open_flags, err);
    if (!bs) {
        bdrv_close(child);
        *pbs = NULL;
        return err ? err->code : -ENOMEM;
    }
    s = bs->opaque;
    s->child = child;
    bs->read_only = child->read_only;
    bs->request_alignment = child->request_alignment;
    *pbs = bs;
    return 0;
}

static int faulty_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    (void)flags;
    /* Faulty nodes are only made by bdrv_fault_wrap, over a file node already open. */
    return bdrv_error_set(err, -ENOTSUP, "'%s': the faulty protocol cannot be opened by name",
                          bs->filename);
}

static void faulty_close(BlockDriverState *bs)
{
    BDRVFaultyState *s = bs->opaque;
    uint64_t c[BDRV_FAULT_KINDS], injected;

    bdrv_close(s->child);
    s->child = NULL;
    bdrv_fault_counts(c, &injected);
    fault_log("libqblock: fault counts: reads %llu writes %llu flushes %llu injected %llu\n",
              (unsigned long long)c[BDRV_FAULT_READ], (unsigned long long)c[BDRV_FAULT_WRITE],
              (unsigned long long)c[BDRV_FAULT_FLUSH], (unsigned long long)injected);
}

/* Where a torn write of [offset, +bytes) stops: a sector boundary in its first half. */
static uint64_t torn_length(BlockDriverState *child, uint64_t offset, uint64_t bytes)
{
    uint64_t align = MAX((uint64_t)BDRV_SECTOR_SIZE, (uint64_t)child->request_alignment);
    uint64_t cut = ROUND_DOWN(offset + bytes / 2, align);

    return cut > offset ? cut - offset : 0;
}

static int faulty_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVFaultyState *s = bs->opaque;
    bool torn;
    int ret = fault_next(BDRV_FAULT_READ, &torn);

    return ret ? ret : bdrv_preadv(s->child, offset, qiov);
}

static int faulty_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVFaultyState *s = bs->opaque;
    bool torn;
    int ret = fault_next(BDRV_FAULT_WRITE, &torn);
    uint64_t prefix;

    if (!ret) {
        return bdrv_pwritev(s->child, offset, qiov);
    }
    prefix = torn ? torn_length(s->child, offset, qiov->size) : 0;
    if (prefix) {
        QBIOVector part;
        /* The prefix's own outcome does not matter: the request fails either way. */
        if (qiov_init_slice(&part, qiov, 0, (size_t)prefix) == 0) {
            (void)bdrv_pwritev(s->child, offset, &part);
            qiov_destroy(&part);
        }
    }
    return ret;
}

static int faulty_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVFaultyState *s = bs->opaque;
    bool torn;
    int ret = fault_next(BDRV_FAULT_WRITE, &torn);
    uint64_t prefix;

    if (!ret) {
        return bdrv_pwrite_zeroes(s->child, offset, bytes);
    }
    prefix = torn ? torn_length(s->child, offset, bytes) : 0;
    if (prefix) {
        (void)bdrv_pwrite_zeroes(s->child, offset, prefix);
    }
    return ret;
}

static int faulty_flush(BlockDriverState *bs)
{
    BDRVFaultyState *s = bs->opaque;
    bool torn, nosync;
    int ret = fault_next(BDRV_FAULT_FLUSH, &torn);

    pthread_mutex_lock(&fault_lock);
    nosync = fault_rule.nosync;
    pthread_mutex_unlock(&fault_lock);
    return ret ? ret : nosync ? 0 : bdrv_flush(s->child);
}

/* Discard is advisory (formats may ignore its failure), so it is forwarded, never failed. */
static int faulty_pdiscard(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVFaultyState *s = bs->opaque;
    return bdrv_pdiscard(s->child, offset, bytes);
}

static int faulty_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                               uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    BDRVFaultyState *s = bs->opaque;
    int ret = bdrv_block_status(s->child, offset, bytes, pnum, map, file);

    /* The data lives in this node as far as the format above is concerned. */
    if (ret >= 0 && file) {
        *file = bs;
    }
    return ret;
}

static int64_t faulty_getlength(BlockDriverState *bs)
{
    BDRVFaultyState *s = bs->opaque;
    return bdrv_getlength(s->child);
}

/*
 * Resizing is forwarded, never failed: formats may try it as an
 * optimisation and fall back to writing (qcow2 extends the file over new
 * zero-filled clusters), so its failure need not reach the caller.
 */
static int faulty_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                           BdrvError *err)
{
    BDRVFaultyState *s = bs->opaque;
    return bdrv_truncate(s->child, offset, prealloc, err);
}

static int faulty_has_zero_init(BlockDriverState *bs)
{
    BDRVFaultyState *s = bs->opaque;
    return bdrv_has_zero_init(s->child);
}

static int64_t faulty_get_allocated_file_size(BlockDriverState *bs)
{
    BDRVFaultyState *s = bs->opaque;
    return bdrv_get_allocated_file_size(s->child);
}

static int faulty_set_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared, BdrvError *err)
{
    BDRVFaultyState *s = bs->opaque;

    if (!s->child->drv->bdrv_set_perm) {
        return 0;
    }
    return s->child->drv->bdrv_set_perm(s->child, perm, shared, err);
}

const BlockDriver bdrv_faulty = {
    .format_name = "faulty",
    .instance_size = sizeof(BDRVFaultyState),
    .is_protocol = true,
    .thread_safe = true,
    .shares_write = true,
    .caps = BDRV_CAP_SHRINK,

    .bdrv_open = faulty_open,
    .bdrv_close = faulty_close,

    .bdrv_preadv = faulty_preadv,
    .bdrv_pwritev = faulty_pwritev,
    .bdrv_pwrite_zeroes = faulty_pwrite_zeroes,
    .bdrv_flush = faulty_flush,
    .bdrv_pdiscard = faulty_pdiscard,
    .bdrv_block_status = faulty_block_status,

    .bdrv_getlength = faulty_getlength,
    .bdrv_truncate = faulty_truncate,
    .bdrv_has_zero_init = faulty_has_zero_init,
    .bdrv_get_allocated_file_size = faulty_get_allocated_file_size,

    .bdrv_set_perm = faulty_set_perm,
};
