/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qcow2-cache.c: a bounded write-back cache of cluster-sized metadata
 * tables (L2 tables, refcount blocks) with least-recently-used eviction.
 *
 * The cache of L2 tables must never write a table before the refcount
 * blocks it depends on are durable (invariant 2 in qcow2.c): a cache is
 * created with a hook that runs before any of its tables is written, and
 * the L2 cache's hook writes back and flushes the refcount blocks.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

typedef struct Qcow2CacheEntry {
    uint64_t offset;   /* 0: the slot is empty (no table lives at offset 0) */
    uint64_t lru;      /* larger: used more recently */
    int ref;           /* pins: a pinned table is never evicted */
    bool dirty;
    uint8_t *table;    /* allocated when the slot is first used */
} Qcow2CacheEntry;

/*
 * Tables are allocated slot by slot as they are first needed, not all at
 * creation: opening an image to read its header or a few clusters then
 * costs no more than the tables it touches.
 */
struct Qcow2Cache {
    int size;
    uint32_t table_size;
    Qcow2CacheEntry *entries;
    uint64_t lru_counter;
    int last_hit;
};

Qcow2Cache *qcow2_cache_create(int nb_tables, uint32_t table_size)
{
    Qcow2Cache *c = calloc(1, sizeof(*c));

    if (!c) {
        return NULL;
    }
    c->size = nb_tables;
    c->table_size = table_size;
    c->entries = calloc((size_t)nb_tables, sizeof(*c->entries));
    if (!c->entries) {
        free(c);
        return NULL;
    }
    return c;
}

void qcow2_cache_destroy(Qcow2Cache *c)
{
    if (!c) {
        return;
    }
    for (int i = 0; i < c->size; i++) {
        free(c->entries[i].table);
    }
    free(c->entries);
    free(c);
}

static inline void *cache_table(Qcow2Cache *c, int i)
{
    return c->entries[i].table;
}

/* The slot of @table: mostly the one just looked up (last_hit), else a search. */
static int cache_index_of(Qcow2Cache *c, const void *table)
{
    if (c->last_hit < c->size && c->entries[c->last_hit].table == table) {
        return c->last_hit;
    }
    for (int i = 0; i < c->size; i++) {
        if (c->entries[i].table == table) {
            return i;
        }
    }
    return -1;
}

/* Which cache of @bs is @c, so that the right ordering rule applies. */
static bool cache_is_l2(BlockDriverState *bs, Qcow2Cache *c)
{
    BDRVQcow2State *s = bs->opaque;
    return c == s->l2_cache;
}

static int cache_write_entry(BlockDriverState *bs, Qcow2Cache *c, int i)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2CacheEntry *e = &c->entries[i];
    int ret;

    if (!e->dirty) {
        return 0;
    }
    if (cache_is_l2(bs, c)) {
        /* Invariant 2: the refcounts of what this table names are on disk first. */
        ret = qcow2_refcounts_sync(bs);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_check_overlap_except(bs, e->offset, c->table_size,
                                     cache_is_l2(bs, c) ? QCOW2_OL_L2 : QCOW2_OL_REFBLOCK);
    if (ret == 0) {
        ret = bdrv_pwrite(bs->file, e->offset, cache_table(c, i), c->table_size);
    }
    if (ret < 0) {
        return ret;
    }
    e->dirty = false;
    if (cache_is_l2(bs, c)) {
        s->l2_unsynced = true;
    } else {
        s->refblocks_unsynced = true;
    }
    return 0;
}

int qcow2_cache_write(BlockDriverState *bs, Qcow2Cache *c)
{
    int result = 0;

    for (int i = 0; i < c->size; i++) {
        int ret = cache_write_entry(bs, c, i);
        if (ret < 0 && result == 0) {
            result = ret;
        }
    }
    return result;
}

static int cache_lookup(Qcow2Cache *c, uint64_t offset)
{
    if (c->last_hit < c->size && c->entries[c->last_hit].offset == offset) {
        return c->last_hit;
    }
    for (int i = 0; i < c->size; i++) {
        if (c->entries[i].offset == offset) {
            c->last_hit = i;
            return i;
        }
    }
    return -1;
}

static int cache_do_get(BlockDriverState *bs, Qcow2Cache *c, uint64_t offset, void **table,
                        bool read_from_disk)
{
    int i = cache_lookup(c, offset);
    int victim = -1;
    int ret;

    if (offset == 0 || (offset & (c->table_size - 1))) {
        /* Callers validate offsets; this only guards against a slip. */
        return -EIO;
    }
    if (i >= 0) {
        c->entries[i].ref++;
        c->entries[i].lru = ++c->lru_counter;
        *table = cache_table(c, i);
        return 0;
    }
    for (i = 0; i < c->size; i++) {
        if (c->entries[i].ref) {
            continue;
        }
        if (c->entries[i].offset == 0) {
            victim = i;
            break;
        }
        if (victim < 0 || c->entries[i].lru < c->entries[victim].lru) {
            victim = i;
        }
    }
    if (victim < 0) {
        /* Every table is pinned: a driver bug, reported rather than worked around. */
        return -ENOMEM;
    }
    if (!c->entries[victim].table) {
        void *mem = NULL;

        if (posix_memalign(&mem, 4096, c->table_size) != 0) {
            return -ENOMEM;
        }
        c->entries[victim].table = mem;
    }
    ret = cache_write_entry(bs, c, victim);
    if (ret < 0) {
        return ret;
    }
    c->entries[victim].offset = 0;
    if (read_from_disk) {
        ret = bdrv_pread(bs->file, offset, cache_table(c, victim), c->table_size);
        if (ret < 0) {
            return ret;
        }
    }
    c->entries[victim].offset = offset;
    c->entries[victim].ref = 1;
    c->entries[victim].dirty = false;
    c->entries[victim].lru = ++c->lru_counter;
    c->last_hit = victim;
    *table = cache_table(c, victim);
    return 0;
}

/*
 * Shared reads (qcow2.c, qcow2_preadv_shared) run concurrently under the
 * node's rw_lock held shared, while everything that changes a cache holds
 * it exclusively: a peek may read the entries and tables but change only
 * the recency hint, atomically. It neither pins the table (nothing can
 * evict it while the shared lock is held) nor moves last_hit.
 */
void *qcow2_cache_peek(Qcow2Cache *c, uint64_t offset)
{
    for (int i = 0; i < c->size; i++) {
        Qcow2CacheEntry *e = &c->entries[i];

        if (e->offset == offset && offset != 0) {
            uint64_t now = __atomic_load_n(&c->lru_counter, __ATOMIC_RELAXED);

            /* Stored only when it changes, so hot tables' lines are not bounced between readers. */
            if (__atomic_load_n(&e->lru, __ATOMIC_RELAXED) != now) {
                __atomic_store_n(&e->lru, now, __ATOMIC_RELAXED);
            }
            return cache_table(c, i);
        }
    }
    return NULL;
}

int qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c, uint64_t offset, void **table)
{
    return cache_do_get(bs, c, offset, table, true);
}

int qcow2_cache_get_empty(BlockDriverState *bs, Qcow2Cache *c, uint64_t offset, void **table)
{
    return cache_do_get(bs, c, offset, table, false);
}

void qcow2_cache_put(Qcow2Cache *c, void **table)
{
    int i;

    if (!*table) {
        return;
    }
    i = cache_index_of(c, *table);
    if (i >= 0 && i < c->size && c->entries[i].ref > 0) {
        c->entries[i].ref--;
    }
    *table = NULL;
}

void qcow2_cache_mark_dirty(Qcow2Cache *c, void *table)
{
    int i = cache_index_of(c, table);
    if (i >= 0 && i < c->size) {
        c->entries[i].dirty = true;
    }
}

void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset)
{
    int i = cache_lookup(c, offset);
    if (i >= 0 && c->entries[i].ref == 0) {
        c->entries[i].offset = 0;
        c->entries[i].dirty = false;
    }
}

void qcow2_cache_clear(Qcow2Cache *c)
{
    for (int i = 0; i < c->size; i++) {
        if (c->entries[i].ref == 0) {
            c->entries[i].offset = 0;
            c->entries[i].dirty = false;
        }
    }
}

bool qcow2_cache_is_dirty(const Qcow2Cache *c)
{
    for (int i = 0; i < c->size; i++) {
        if (c->entries[i].dirty) {
            return true;
        }
    }
    return false;
}

bool qcow2_cache_holds(const Qcow2Cache *c, uint64_t offset)
{
    for (int i = 0; i < c->size; i++) {
        if (c->entries[i].offset == offset) {
            return true;
        }
    }
    return false;
}
