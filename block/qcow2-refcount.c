/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qcow2-refcount.c: host cluster reference counts: lookups through the
 * refcount-block cache, updates, cluster allocation (refcount blocks and
 * refcount-table growth in a self-describing refcount area included),
 * deferred frees, the ordering barriers between refcounts and L2/L1 tables,
 * and the overlap guard that keeps writes off metadata.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* ------------------------------------------------------------------ */
/* Entry access for every width from 1 to 64 bits                     */

uint64_t qcow2_refblock_get(const BDRVQcow2State *s, const void *block, uint32_t idx)
{
    const uint8_t *p = block;

    switch (s->refcount_order) {
    case 0:
        return (p[idx / 8] >> (idx % 8)) & 0x1;
    case 1:
        return (p[idx / 4] >> (2 * (idx % 4))) & 0x3;
    case 2:
        return (p[idx / 2] >> (4 * (idx % 2))) & 0xf;
    case 3:
        return p[idx];
    case 4:
        return be16_load(p + 2 * (size_t)idx);
    case 5:
        return be32_load(p + 4 * (size_t)idx);
    default:
        return be64_load(p + 8 * (size_t)idx);
    }
}

void qcow2_refblock_set(const BDRVQcow2State *s, void *block, uint32_t idx, uint64_t value)
{
    uint8_t *p = block;

    switch (s->refcount_order) {
    case 0:
        p[idx / 8] = (uint8_t)((p[idx / 8] & ~(1u << (idx % 8))) | ((value & 1) << (idx % 8)));
        break;
    case 1: {
        unsigned sh = 2 * (idx % 4);
        p[idx / 4] = (uint8_t)((p[idx / 4] & ~(0x3u << sh)) | ((value & 0x3) << sh));
        break;
    }
    case 2: {
        unsigned sh = 4 * (idx % 2);
        p[idx / 2] = (uint8_t)((p[idx / 2] & ~(0xfu << sh)) | ((value & 0xf) << sh));
        break;
    }
    case 3:
        p[idx] = (uint8_t)value;
        break;
    case 4:
        be16_store(p + 2 * (size_t)idx, (uint16_t)value);
        break;
    case 5:
        be32_store(p + 4 * (size_t)idx, (uint32_t)value);
        break;
    default:
        be64_store(p + 8 * (size_t)idx, value);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */

int qcow2_refcount_init(BlockDriverState *bs, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    size_t bytes = (size_t)s->refcount_table_clusters * s->cluster_size;
    uint8_t *raw;
    int ret;

    ret = bdrv_policy_charge_metadata(bs, bytes, "refcount table", err);
    if (ret < 0) {
        return ret;
    }
    s->refcount_table_size = (uint32_t)(bytes / 8);
    s->refcount_table = calloc(s->refcount_table_size ? s->refcount_table_size : 1, 8);
    raw = malloc(bytes ? bytes : 1);
    if (!s->refcount_table || !raw) {
        free(raw);
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory for the refcount table",
                              bs->filename);
    }
    ret = bdrv_pread(bs->file, s->refcount_table_offset, raw, bytes);
    if (ret < 0) {
        free(raw);
        return bdrv_error_set(err, ret, "image '%s': could not read the refcount table: %s",
                              bs->filename, strerror(-ret));
    }
    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        s->refcount_table[i] = be64_load(raw + 8 * (size_t)i);
    }
    free(raw);
    return 0;
}

void qcow2_refcount_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    free(s->refcount_table);
    s->refcount_table = NULL;
    free(s->pending);
    s->pending = NULL;
    s->nb_pending = s->pending_alloc = 0;
}

/* ------------------------------------------------------------------ */
/* Lookups                                                             */

/* The refcount block offset for table index @rt, validated; 0 when none. */
static int refblock_offset(BlockDriverState *bs, uint64_t rt, uint64_t *offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t e;

    *offset = 0;
    if (rt >= s->refcount_table_size) {
        return 0;
    }
    e = s->refcount_table[rt];
    if (e & REFT_RESERVED_MASK || qcow2_offset_into_cluster(s, e & REFT_OFFSET_MASK)) {
        return qcow2_signal_corruption(bs, "refcount block offset 0x%llx (table entry %llu) "
                                       "is not cluster-aligned",
                                       (unsigned long long)e, (unsigned long long)rt);
    }
    *offset = e & REFT_OFFSET_MASK;
    return 0;
}

int qcow2_get_refcount(BlockDriverState *bs, uint64_t cluster_index, uint64_t *refcount)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t rt = cluster_index >> s->refcount_block_bits;
    uint64_t off;
    void *block;
    int ret;

    *refcount = 0;
    ret = refblock_offset(bs, rt, &off);
    if (ret < 0 || off == 0) {
        return ret;
    }
    ret = qcow2_cache_get(bs, s->refblock_cache, off, &block);
    if (ret < 0) {
        return ret;
    }
    *refcount = qcow2_refblock_get(s, block,
                                   (uint32_t)(cluster_index & (s->refcount_block_size - 1)));
    qcow2_cache_put(s->refblock_cache, &block);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Ordering barriers                                                   */

int qcow2_refcounts_sync(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (qcow2_cache_is_dirty(s->refblock_cache)) {
        ret = qcow2_cache_write(bs, s->refblock_cache);
        if (ret < 0) {
            return ret;
        }
    }
    if (s->refblocks_unsynced) {
        /*
         * With lazy refcounts and the dirty bit set, a crash leads to a
         * rebuild anyway, so the barrier can be skipped.
         */
        if (!(s->dirty_set && s->lazy_refcounts)) {
            ret = bdrv_flush(bs->file);
            if (ret < 0) {
                return ret;
            }
            s->l2_unsynced = false;
        }
        s->refblocks_unsynced = false;
    }
    return 0;
}

int qcow2_l2_sync(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (qcow2_cache_is_dirty(s->l2_cache)) {
        ret = qcow2_cache_write(bs, s->l2_cache);
        if (ret < 0) {
            return ret;
        }
    }
    if (s->l2_unsynced || s->refblocks_unsynced) {
        ret = bdrv_flush(bs->file);
        if (ret < 0) {
            return ret;
        }
        s->l2_unsynced = false;
        s->refblocks_unsynced = false;
    }
    return 0;
}

int qcow2_write_header_field(BlockDriverState *bs, uint64_t offset, const void *buf, size_t len)
{
    int ret = bdrv_pwrite(bs->file, offset, buf, len);
    if (ret < 0) {
        return ret;
    }
    return bdrv_flush(bs->file);
}

/* ------------------------------------------------------------------ */
/* Overlap protection                                                  */

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

int qcow2_check_overlap(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return qcow2_check_overlap_except(bs, offset, bytes, 0);
}

/*
 * As qcow2_check_overlap, for a write of metadata of the kinds in @ignore
 * (which may overlap itself): a hostile image can name one cluster as two
 * kinds of table (an L2 table that is a refcount block, an L1 table over the
 * header), and writing one must not overwrite the other.
 */
/* What metadata [offset, offset+bytes) would overwrite, or NULL; changes nothing. */
static const char *overlap_what(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                unsigned ignore)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    const char *what = NULL;

    if (ranges_overlap(offset, bytes, 0, cs)) {
        what = "the image header";
    } else if (s->l1_size && !(ignore & QCOW2_OL_ACTIVE_L1) &&
               ranges_overlap(offset, bytes, s->l1_table_offset,
                              ROUND_UP((uint64_t)s->l1_size * 8, cs))) {
        what = "the active L1 table";
    } else if (ranges_overlap(offset, bytes, s->refcount_table_offset,
                              (uint64_t)s->refcount_table_clusters * cs)) {
        what = "the refcount table";
    } else if (s->nb_snapshots &&
               ranges_overlap(offset, bytes, s->snapshots_offset,
                              ROUND_UP(s->snapshots_size, cs))) {
        what = "the snapshot table";
    }
    for (uint32_t i = 0; !what && !(ignore & QCOW2_OL_REFBLOCK) && i < s->refcount_table_size;
         i++) {
        uint64_t rb = s->refcount_table[i] & REFT_OFFSET_MASK;
        if (rb && ranges_overlap(offset, bytes, rb, cs)) {
            what = "a refcount block";
        }
    }
    for (uint32_t i = 0; !what && i < s->nb_snapshots; i++) {
        if (ranges_overlap(offset, bytes, s->snapshots[i].l1_table_offset,
                           ROUND_UP((uint64_t)s->snapshots[i].l1_size * 8, cs))) {
            what = "a snapshot L1 table";
        }
    }
    for (uint64_t c = qcow2_start_of_cluster(s, offset);
         !what && !(ignore & QCOW2_OL_L2) && c < offset + bytes; c += cs) {
        if (qcow2_cache_holds(s->l2_cache, c)) {
            what = "an active L2 table";
        }
        if (c - qcow2_start_of_cluster(s, offset) > 64 * cs) {
            break;   /* large data writes: checking the head is enough to catch a bad allocator */
        }
    }
    return what;
}

int qcow2_check_overlap_except(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                               unsigned ignore)
{
    const char *what = overlap_what(bs, offset, bytes, ignore);

    if (what) {
        return qcow2_signal_corruption(bs, "a write at 0x%llx (%llu bytes) would overwrite %s",
                                       (unsigned long long)offset,
                                       (unsigned long long)bytes, what);
    }
    return 0;
}

bool qcow2_overlaps_metadata(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return overlap_what(bs, offset, bytes, 0) != NULL;
}

/* ------------------------------------------------------------------ */
/* Allocation without refcounts                                        */

/*
 * Find @n free clusters in a row at or after free_cluster_index and move
 * free_cluster_index past them. Clusters that no refcount block describes
 * are free. The caller increments their refcounts.
 */
static int64_t alloc_clusters_noref(BlockDriverState *bs, uint64_t n)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t run = 0;
    int ret;

    while (run < n) {
        uint64_t idx = s->free_cluster_index++;
        uint64_t rc;

        if (((idx + 1) << s->cluster_bits) > QCOW2_MAX_CLUSTER_OFFSET) {
            return -EFBIG;
        }
        ret = qcow2_get_refcount(bs, idx, &rc);
        if (ret < 0) {
            return ret;
        }
        /*
         * No read can still be transferring from a free cluster: reads
         * that run in parallel hold the node's rw_lock shared, and the
         * allocator runs with it held exclusively (qcow2.c, shared reads).
         */
        run = rc ? 0 : run + 1;
    }
    return (int64_t)(s->free_cluster_index - n);
}

/* ------------------------------------------------------------------ */
/* Refcount table growth                                               */

/*
 * Clusters of refcount blocks needed to count @clusters clusters plus the
 * refcount structure itself (a fixed point), with optional headroom.
 */
static uint64_t refcount_blocks_needed(const BDRVQcow2State *s, uint64_t clusters, bool headroom)
{
    uint64_t per_table_cluster = s->cluster_size / 8;
    uint64_t per_block = s->refcount_block_size;
    uint64_t table = 0, blocks = 0, n = 0, last;

    do {
        last = n;
        blocks = DIV_ROUND_UP(clusters + table + blocks, per_block);
        table = DIV_ROUND_UP(blocks, per_table_cluster);
        n = clusters + blocks + table;
        if (n == last && headroom) {
            clusters += DIV_ROUND_UP(table, 2);
            n = 0;
            headroom = false;
        }
    } while (n != last);
    return blocks;
}

/*
 * Build a new refcount table in a "refcount area" that starts at cluster
 * @area_start_cluster (only free space lies at and past it): the new
 * refcount blocks needed there, then the table, all counting themselves,
 * so the switch to the new table is a single header write. The blocks
 * also cover @additional clusters past the area. Without @exact the table
 * gets half again as many entries as needed, so that it rarely grows.
 * @new_rt/@new_block: a refcount block already prepared for table index
 * @new_rt (0 offset: none). *end receives the offset past the area.
 */
int qcow2_refcount_area(BlockDriverState *bs, uint64_t area_start_cluster,
                        uint64_t additional, bool exact, uint64_t new_rt,
                        uint64_t new_block, uint64_t *end_out)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t total_blocks, table_entries, table_clusters, area_rt, extra = 0;
    uint64_t start, table_offset, end, block_offset;
    uint64_t old_offset = s->refcount_table_offset;
    uint64_t old_clusters = s->refcount_table_clusters;
    uint64_t *table = NULL;
    uint8_t *raw = NULL;
    uint8_t hdr[12];
    int ret;

    area_rt = area_start_cluster >> s->refcount_block_bits;
    start = area_start_cluster << s->cluster_bits;
    total_blocks = refcount_blocks_needed(s, area_start_cluster + additional, !exact);
    table_entries = exact ? total_blocks : total_blocks + DIV_ROUND_UP(total_blocks, 2);
    table_entries = ROUND_UP(MAX(table_entries, 1), cs / 8);
    table_clusters = table_entries * 8 / cs;
    if (table_clusters * cs > QCOW2_MAX_REFTABLE_SIZE) {
        return -EFBIG;
    }
    table_entries = table_clusters * cs / 8;
    table = calloc(table_entries, 8);
    if (!table) {
        return -ENOMEM;
    }
    memcpy(table, s->refcount_table, MIN(s->refcount_table_size, table_entries) * 8);
    if (new_block) {
        table[new_rt] = new_block;
    }
    for (uint64_t i = area_rt; i < total_blocks; i++) {
        extra += !table[i];
    }
    table_offset = start + extra * cs;
    end = table_offset + table_clusters * cs;
    if (end > QCOW2_MAX_CLUSTER_OFFSET) {
        free(table);
        return -EFBIG;
    }

    /* New blocks first (they count the whole area), then the table. */
    block_offset = start;
    for (uint64_t i = area_rt; i < total_blocks; i++) {
        void *block;
        uint64_t first = i * s->refcount_block_size * cs;

        if (table[i]) {
            ret = qcow2_cache_get(bs, s->refblock_cache, table[i], &block);
        } else {
            ret = qcow2_cache_get_empty(bs, s->refblock_cache, block_offset, &block);
            if (ret == 0) {
                memset(block, 0, cs);
                table[i] = block_offset;
                block_offset += cs;
            }
        }
        if (ret < 0) {
            goto out;
        }
        if (first < end) {
            uint64_t j = first < start ? (start - first) / cs : 0;
            uint64_t j_end = MIN((end - first) / cs, (uint64_t)s->refcount_block_size);
            for (; j < j_end; j++) {
                qcow2_refblock_set(s, block, (uint32_t)j, 1);
            }
        }
        qcow2_cache_mark_dirty(s->refblock_cache, block);
        qcow2_cache_put(s->refblock_cache, &block);
    }

    /* Invariant 1: blocks durable before the table that names them. */
    s->refblocks_unsynced = true;
    ret = qcow2_cache_write(bs, s->refblock_cache);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        goto out;
    }
    raw = calloc(table_clusters, cs);
    if (!raw) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < table_entries; i++) {
        be64_store(raw + 8 * i, table[i]);
    }
    ret = bdrv_pwrite(bs->file, table_offset, raw, table_clusters * cs);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        goto out;
    }
    /* The switch: refcount_table_offset (u64 @48) and _clusters (u32 @56) in one write. */
    be64_store(hdr, table_offset);
    be32_store(hdr + 8, (uint32_t)table_clusters);
    ret = qcow2_write_header_field(bs, 48, hdr, sizeof(hdr));
    if (ret < 0) {
        goto out;
    }
    free(s->refcount_table);
    s->refcount_table = table;
    table = NULL;
    s->refcount_table_offset = table_offset;
    s->refcount_table_clusters = (uint32_t)table_clusters;
    s->refcount_table_size = (uint32_t)table_entries;
    s->refblocks_unsynced = false;

    /*
     * Nothing names the old table any more. Its clusters are released
     * through the queue rather than at once: freeing now would move the
     * free-cluster search back below a range the caller is still counting.
     */
    ret = qcow2_free_clusters_later(bs, old_offset, old_clusters * cs, false);
    if (end_out) {
        *end_out = end;
    }
out:
    free(raw);
    free(table);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Refcount blocks                                                     */

/*
 * Make sure a refcount block describes @cluster_index. Returns 0 when one
 * already did, 1 when a new one was added in the existing table (the
 * cluster search need not restart), -EAGAIN when the table grew (the
 * caller must search again: the refcount area may sit where it looked),
 * or -errno.
 */
static int alloc_refcount_block(BlockDriverState *bs, uint64_t cluster_index, int depth)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t rt = cluster_index >> s->refcount_block_bits;
    uint64_t off;
    int64_t new_idx;
    uint64_t new_block;
    void *block;
    int ret;

    ret = refblock_offset(bs, rt, &off);
    if (ret < 0) {
        return ret;
    }
    if (off) {
        return 0;
    }
    if (depth > 4) {
        /* Each level places a block that describes itself; deeper means a broken table. */
        return qcow2_signal_corruption(bs, "refcount block allocation does not converge");
    }

    new_idx = alloc_clusters_noref(bs, 1);
    if (new_idx < 0) {
        return (int)new_idx;
    }
    new_block = (uint64_t)new_idx << s->cluster_bits;

    if (((uint64_t)new_idx >> s->refcount_block_bits) == rt) {
        /* The self-reference gotcha: the block counts itself from the start. */
        ret = qcow2_cache_get_empty(bs, s->refblock_cache, new_block, &block);
        if (ret < 0) {
            return ret;
        }
        memset(block, 0, s->cluster_size);
        qcow2_refblock_set(s, block, (uint32_t)(new_idx & (s->refcount_block_size - 1)), 1);
    } else {
        /* Counted by another block, which may itself need creating (once). */
        for (;;) {
            ret = alloc_refcount_block(bs, (uint64_t)new_idx, depth + 1);
            if (ret != -EAGAIN) {
                break;
            }
        }
        if (ret < 0) {
            return ret;
        }
        ret = qcow2_update_refcount(bs, new_block, s->cluster_size, 1);
        if (ret < 0) {
            return ret;
        }
        ret = qcow2_cache_get_empty(bs, s->refblock_cache, new_block, &block);
        if (ret < 0) {
            return ret;
        }
        memset(block, 0, s->cluster_size);
    }
    qcow2_cache_mark_dirty(s->refblock_cache, block);
    qcow2_cache_put(s->refblock_cache, &block);

    /* Invariant 1: the block (and its own count) is on disk before the table names it. */
    s->refblocks_unsynced = true;
    ret = qcow2_cache_write(bs, s->refblock_cache);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    s->refblocks_unsynced = false;

    if (rt < s->refcount_table_size) {
        uint8_t e[8];
        be64_store(e, new_block);
        ret = qcow2_write_header_field(bs, s->refcount_table_offset + rt * 8, e, 8);
        if (ret < 0) {
            return ret;
        }
        s->refcount_table[rt] = new_block;
        return 1;
    }

    /* The table is full: grow it in a refcount area past both clusters. */
    {
        uint64_t top = MAX(cluster_index, (uint64_t)new_idx) + 1;
        uint64_t blocks_used = DIV_ROUND_UP(top, s->refcount_block_size);
        ret = qcow2_refcount_area(bs, blocks_used * s->refcount_block_size, 0, false, rt,
                                  new_block, NULL);
    }
    return ret < 0 ? ret : -EAGAIN;
}

/* ------------------------------------------------------------------ */
/* Updates                                                             */

/* Discard cached tables that lived in a cluster that just became free. */
static void cluster_freed(BlockDriverState *bs, uint64_t cluster_index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = cluster_index << s->cluster_bits;

    /* A native read may still be reading it (qcow2_aio_preadv). */
    qcow2_drain_aio_reads(bs);
    qcow2_cache_discard(s->l2_cache, off);
    qcow2_cache_discard(s->refblock_cache, off);
    if (cluster_index < s->free_cluster_index) {
        s->free_cluster_index = cluster_index;
    }
    /* A freed cluster may be handed out whole again: stop packing into it. */
    if (s->free_byte_offset >> s->cluster_bits == cluster_index) {
        s->free_byte_offset = 0;
    }
}

/*
 * The worker: add @addend (or, with @set, store @value) to the clusters of
 * [first, last]. With @fresh (an allocation), a table growth returns
 * -EAGAIN after undoing what was done so the caller can search again.
 */
static int update_refcount_range(BlockDriverState *bs, uint64_t first, uint64_t last,
                                 int64_t addend, bool set, uint64_t value, bool fresh)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t idx = first;
    int ret = 0;

    while (idx <= last) {
        uint64_t rt = idx >> s->refcount_block_bits;
        uint64_t block_end = ((rt + 1) << s->refcount_block_bits) - 1;
        uint64_t stop = MIN(last, block_end);
        uint64_t off;
        void *block;

        ret = refblock_offset(bs, rt, &off);
        if (ret < 0) {
            break;
        }
        if (!off) {
            if (!set && addend < 0) {
                ret = qcow2_signal_corruption(bs, "freeing cluster %llu, which no refcount "
                                              "block counts", (unsigned long long)idx);
                break;
            }
            if (set && value == 0) {
                idx = stop + 1;
                continue;
            }
            ret = alloc_refcount_block(bs, idx, 0);
            if (ret == -EAGAIN && !fresh) {
                continue;
            }
            if (ret < 0) {
                break;
            }
            continue;   /* look the block up again */
        }
        ret = qcow2_cache_get(bs, s->refblock_cache, off, &block);
        if (ret < 0) {
            break;
        }
        for (; idx <= stop; idx++) {
            uint32_t bi = (uint32_t)(idx & (s->refcount_block_size - 1));
            uint64_t old = qcow2_refblock_get(s, block, bi);
            uint64_t nv;

            if (set) {
                nv = value;
            } else if (addend < 0) {
                if (old < (uint64_t)-addend) {
                    qcow2_cache_put(s->refblock_cache, &block);
                    return qcow2_signal_corruption(bs, "refcount of cluster %llu would drop "
                                                   "below zero", (unsigned long long)idx);
                }
                nv = old - (uint64_t)-addend;
            } else {
                if (old + (uint64_t)addend > s->refcount_max || old + (uint64_t)addend < old) {
                    qcow2_cache_put(s->refblock_cache, &block);
                    return -ERANGE;
                }
                nv = old + (uint64_t)addend;
            }
            if (nv > s->refcount_max) {
                qcow2_cache_put(s->refblock_cache, &block);
                return -ERANGE;
            }
            qcow2_refblock_set(s, block, bi, nv);
            if (nv == 0 && old != 0) {
                cluster_freed(bs, idx);
            }
        }
        qcow2_cache_mark_dirty(s->refblock_cache, block);
        qcow2_cache_put(s->refblock_cache, &block);
    }
    if (ret == -EAGAIN && idx > first && !set) {
        /* Undo the increments made before the table grew. */
        int r2 = update_refcount_range(bs, first, idx - 1, -addend, false, 0, false);
        if (r2 < 0) {
            return r2;
        }
    }
    return ret < 0 ? ret : 0;
}

int qcow2_update_refcount(BlockDriverState *bs, uint64_t offset, uint64_t bytes, int64_t addend)
{
    BDRVQcow2State *s = bs->opaque;

    if (bytes == 0 || addend == 0) {
        return 0;
    }
    return update_refcount_range(bs, offset >> s->cluster_bits,
                                 (offset + bytes - 1) >> s->cluster_bits, addend, false, 0,
                                 false);
}

int qcow2_set_refcount(BlockDriverState *bs, uint64_t cluster_index, uint64_t value)
{
    return update_refcount_range(bs, cluster_index, cluster_index, 0, true, value, false);
}

int64_t qcow2_alloc_clusters(BlockDriverState *bs, uint64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t n = qcow2_size_to_clusters(s, bytes);
    int64_t idx;
    int ret;

    if (n == 0) {
        return -EINVAL;
    }
    for (int tries = 0; tries < 64; tries++) {
        idx = alloc_clusters_noref(bs, n);
        if (idx < 0) {
            return idx;
        }
        ret = update_refcount_range(bs, (uint64_t)idx, (uint64_t)idx + n - 1, 1, false, 0, true);
        if (ret == -EAGAIN) {
            continue;
        }
        if (ret < 0) {
            return ret;
        }
        return idx << s->cluster_bits;
    }
    return -EIO;
}

int64_t qcow2_alloc_compressed_bytes(BlockDriverState *bs, uint64_t len)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = s->free_byte_offset;
    int64_t host = 0;
    int ret;

    if (len == 0 || len >= s->cluster_size) {
        return -EINVAL;
    }
    if (off && qcow2_offset_into_cluster(s, off)) {
        uint64_t rc;

        ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        /* The cluster must still be ours and able to count one more user. */
        if (rc == 0 || rc >= s->refcount_max) {
            off = 0;
        }
    } else {
        off = 0;
    }
    if (off && s->cluster_size - qcow2_offset_into_cluster(s, off) < len) {
        /*
         * The data may run on into the next cluster when that is the one
         * allocated now; otherwise it starts afresh there and the rest of
         * the current cluster stays unused.
         */
        uint64_t next = (off >> s->cluster_bits) + 1;
        uint64_t rt = next >> s->refcount_block_bits;
        bool counted = rt < s->refcount_table_size && s->refcount_table[rt];

        host = qcow2_alloc_clusters(bs, len - (s->cluster_size -
                                               qcow2_offset_into_cluster(s, off)));
        if (host < 0) {
            return host;
        }
        /*
         * Where the next cluster needed a new refcount block, QEMU starts
         * afresh in it rather than running on; doing the same keeps the
         * layout of our compressed images the same as qemu-img's.
         */
        if ((uint64_t)host != next << s->cluster_bits || !counted) {
            off = 0;
        }
    }
    if (!off) {
        if (!host) {
            host = qcow2_alloc_clusters(bs, len);
            if (host < 0) {
                return host;
            }
        }
        s->free_byte_offset = (uint64_t)host + len;
        return host;
    }
    /* The partly used cluster counts one more compressed cluster. */
    ret = qcow2_update_refcount(bs, off, 1, 1);
    if (ret < 0) {
        return ret;
    }
    s->free_byte_offset = off + len;
    return (int64_t)off;
}

/* ------------------------------------------------------------------ */
/* Deferred frees                                                      */

int qcow2_free_clusters_later(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                              bool discard_file)
{
    BDRVQcow2State *s = bs->opaque;

    if (bytes == 0) {
        return 0;
    }
    if (s->nb_pending > 0) {
        Qcow2PendingFree *p = &s->pending[s->nb_pending - 1];
        /* Merge runs of neighbouring clusters freed together. */
        if (p->offset + p->bytes == offset && p->discard_file == discard_file &&
            !qcow2_offset_into_cluster(s, offset) &&
            !qcow2_offset_into_cluster(s, p->bytes)) {
            p->bytes += bytes;
            return 0;
        }
    }
    if (s->nb_pending == s->pending_alloc) {
        int n = s->pending_alloc ? s->pending_alloc * 2 : 64;
        Qcow2PendingFree *np = realloc(s->pending, sizeof(*np) * (size_t)n);
        if (!np) {
            return -ENOMEM;
        }
        s->pending = np;
        s->pending_alloc = n;
    }
    s->pending[s->nb_pending++] = (Qcow2PendingFree) {
        .offset = offset, .bytes = bytes, .discard_file = discard_file,
    };
    if (s->nb_pending >= 4096) {
        return qcow2_process_frees(bs);
    }
    return 0;
}

int qcow2_free_l2_entry_later(BlockDriverState *bs, uint64_t entry, bool discard_file)
{
    BDRVQcow2State *s = bs->opaque;

    if (entry & QCOW_OFLAG_COMPRESSED) {
        uint64_t coff, csize;
        qcow2_parse_compressed(s, entry, &coff, &csize);
        return qcow2_free_clusters_later(bs, coff, csize, false);
    }
    if (entry & L2E_OFFSET_MASK) {
        return qcow2_free_clusters_later(bs, entry & L2E_OFFSET_MASK, s->cluster_size,
                                         discard_file);
    }
    return 0;
}

int qcow2_process_frees(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (s->nb_pending == 0) {
        return 0;
    }
    /* Invariant 4: the tables no longer name these clusters, durably, first. */
    ret = qcow2_l2_sync(bs);
    if (ret < 0) {
        return ret;
    }
    while (s->nb_pending > 0) {
        Qcow2PendingFree p = s->pending[s->nb_pending - 1];
        uint64_t first = p.offset >> s->cluster_bits;
        uint64_t last = (p.offset + p.bytes - 1) >> s->cluster_bits;

        ret = update_refcount_range(bs, first, last, -1, false, 0, false);
        if (ret < 0) {
            return ret;
        }
        s->nb_pending--;
        if (p.discard_file) {
            for (uint64_t c = first; c <= last; c++) {
                uint64_t rc;
                if (qcow2_get_refcount(bs, c, &rc) == 0 && rc == 0) {
                    /* Advisory: a failure only leaves the old bytes in place. */
                    bdrv_pdiscard(bs->file, c << s->cluster_bits, s->cluster_size);
                }
            }
        }
    }
    return 0;
}
