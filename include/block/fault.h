/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fault.h: the fault-injection protocol (block/faulty.c), which tests stack
 * over every file node the library opens to fail a chosen read, write or
 * flush with EIO or ENOSPC, or to tear a write.
 *
 * Arming is process-wide: while a rule is armed (by bdrv_fault_arm, or by
 * the LIBQBLOCK_FAULT_INJECT environment variable read once at the first
 * open), every file node bdrv_file_open makes is wrapped in a faulty node,
 * and the requests of all those nodes are counted together, per kind, in
 * the order they reach the file protocol. Without a rule nothing is
 * wrapped and the file protocol is used directly.
 *
 * LIBQBLOCK_FAULT_INJECT syntax: "count" (wrap and count, never fail) or
 * "KIND:N:WHAT[:sticky]" with KIND read, write or flush, N the 1-based
 * number of the request of that kind to fail, WHAT eio, enospc or torn (a
 * write of whole sectors of the request's first half, then EIO); sticky
 * fails every later request of that kind too, as a dead disk or a full
 * file system would. LIBQBLOCK_FAULT_NOSYNC=1 sets BdrvFaultRule.nosync.
 * LIBQBLOCK_FAULT_LOG names a file each injection and, at every close of a
 * faulty node, the counts so far ("counts: reads R writes W flushes F") are
 * appended to; stderr when unset. Set-user-ID and set-group-ID programs
 * ignore all three variables (block/faulty.c).
 */
#ifndef BLOCK_FAULT_H
#define BLOCK_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block_int.h"

typedef enum BdrvFaultKind {
    BDRV_FAULT_READ,
    BDRV_FAULT_WRITE,      /* pwritev and pwrite_zeroes (not truncate, not discard) */
    BDRV_FAULT_FLUSH,
    BDRV_FAULT_KINDS,
} BdrvFaultKind;

typedef struct BdrvFaultRule {
    bool inject;           /* false: count only */
    BdrvFaultKind kind;
    uint64_t nth;          /* 1-based number of the request of @kind that fails */
    int error;             /* positive errno returned: EIO, ENOSPC */
    bool torn;             /* writes: store whole sectors of the first half first */
    bool sticky;           /* fail every request of @kind from @nth on */
    /*
     * Flushes are counted (and failed) but not passed down: for tests that
     * only look at the file after the process ends, where the page cache
     * already keeps every completed write, and fdatasync only costs time.
     */
    bool nosync;
} BdrvFaultRule;

extern const BlockDriver bdrv_faulty HIDDEN;

/*
 * Arm @rule (copied) and reset the counters, or with NULL disarm: nodes
 * opened afterwards are no longer wrapped (those open keep counting, never
 * failing). Overrides the environment.
 */
HIDDEN void bdrv_fault_arm(const BdrvFaultRule *rule);
/* Parse the LIBQBLOCK_FAULT_INJECT syntax into @rule; -EINVAL when malformed. */
HIDDEN int bdrv_fault_parse(const char *spec, BdrvFaultRule *rule);
/* Requests counted per kind since arming, and how many were failed. */
HIDDEN void bdrv_fault_counts(uint64_t counts[BDRV_FAULT_KINDS], uint64_t *injected);
/*
 * Called by bdrv_file_open with the file node it just opened: when a rule
 * is armed, *@pbs is replaced with a faulty node over it. 0 or -ENOMEM
 * (the file node is then closed and *@pbs NULL).
 */
HIDDEN int bdrv_fault_wrap(BlockDriverState **pbs, BdrvError *err);

#endif /* BLOCK_FAULT_H */
