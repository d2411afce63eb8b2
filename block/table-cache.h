/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * table-cache.h: a small write-through cache of file pages holding 64-bit
 * table entries, for the drivers whose metadata is two levels of such
 * tables and nothing else that changes (qcow, qed).
 *
 * Pages are read whole from the protocol node and evicted least recently
 * used first. A change is written to the disk before the call returns, so
 * a cached page is never newer than the file and any slot can be reused at
 * once; a failed write drops the page, since the disk may then hold either
 * version. A slot's memory is allocated the first time it is used.
 */
#ifndef BLOCK_TABLE_CACHE_H
#define BLOCK_TABLE_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block_int.h"

#define TABLE_CACHE_MAX_SLOTS 128

typedef struct TableCachePage {
    uint64_t offset;          /* page-aligned file offset; UINT64_MAX when empty */
    uint64_t last_use;
    uint8_t *data;
} TableCachePage;

typedef struct TableCache {
    uint32_t page_size;       /* a power of two, at least 512 */
    uint32_t write_align;     /* writes cover whole units of this (8: the entries alone) */
    unsigned nslots;
    bool big_endian;
    int last_slot;
    uint64_t use_clock;
    TableCachePage slot[TABLE_CACHE_MAX_SLOTS];
} TableCache;

/*
 * An empty cache of @nslots (at most TABLE_CACHE_MAX_SLOTS) pages of
 * @page_size bytes holding entries of the given byte order; changes are
 * written in whole, aligned units of @write_align bytes (8 or a multiple of
 * the sector size: the page size must be a multiple of it).
 */
void table_cache_init(TableCache *tc, unsigned nslots, uint32_t page_size, uint32_t write_align,
                      bool big_endian);

/* Free the pages; the cache is empty (and usable) afterwards. */
void table_cache_free(TableCache *tc);

/* Forget the cached pages overlapping file range [@off, +@len), after other data went there. */
void table_cache_invalidate(TableCache *tc, uint64_t off, uint64_t len);

/* The entry at file offset @off (8-aligned) of @file. */
int table_cache_get(TableCache *tc, BlockDriverState *file, uint64_t off, uint64_t *val);

/*
 * Set the @n entries from file offset @off (8-aligned) to @first,
 * @first+@step, ... and write them through to @file.
 */
int table_cache_set(TableCache *tc, BlockDriverState *file, uint64_t off, uint64_t n,
                    uint64_t first, uint64_t step);

#endif
