/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qcow2-check.c: the consistency check and repair (qemu-img check): every
 * reference from the header, the L1/L2 trees of the active state and of
 * each snapshot, the snapshot table, the refcount structure and the
 * bitmaps is counted in memory and compared with the stored refcounts;
 * leaks and errors are repaired on request, the refcount structure is
 * rebuilt when it is itself damaged, and COPIED flags are checked last.
 *
 * The steps, their order and what each counts follow what qemu-img 7.2
 * check reports (corruptions, leaks, check errors, image end offset,
 * allocated/fragmented/compressed clusters), so that both tools give the
 * same figures for the same image, damaged or not.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

typedef struct CheckCtx {
    BlockDriverState *bs;
    BdrvCheckResult *res;
    int fix;
    uint32_t *refs;        /* references found, per host cluster */
    uint64_t nb;           /* clusters the comparison covers (file size or more) */
    uint64_t alloc;        /* entries allocated in refs */
    uint64_t cap;          /* clusters past this are hostile offsets */
    uint64_t flen;         /* the image file's length */
    bool rebuild;          /* the refcount structure must be rebuilt */
    uint8_t *buf;          /* one cluster of scratch */
} CheckCtx;

/*
 * Clusters past twice the file's size that a repair may still grow the file
 * to cover (a refcount block a little past the end is a real crash's trace).
 */
#define CHECK_GROW_CLUSTERS 65536

/* Make refs cover @n clusters (never more than c->cap). */
static int refs_grow(CheckCtx *c, uint64_t n)
{
    if (n > c->cap) {
        c->res->check_errors++;
        return -EFBIG;
    }
    if (n > c->alloc) {
        uint64_t a = MIN(MAX(n, c->alloc * 2), c->cap);
        uint32_t *nr = realloc(c->refs, a * sizeof(*nr));
        if (!nr) {
            c->res->check_errors++;
            return -ENOMEM;
        }
        memset(nr + c->alloc, 0, (a - c->alloc) * sizeof(*nr));
        c->refs = nr;
        c->alloc = a;
    }
    c->nb = MAX(c->nb, n);
    return 0;
}

/* Count a reference to every cluster of [offset, offset+bytes). */
static int inc_refs(CheckCtx *c, uint64_t offset, uint64_t bytes)
{
    BDRVQcow2State *s = c->bs->opaque;
    uint64_t first, last;
    int ret;

    if (bytes == 0) {
        return 0;
    }
    first = offset >> s->cluster_bits;
    last = (offset + bytes - 1) >> s->cluster_bits;
    if (last >= c->cap || offset + bytes < offset) {
        /* A hostile offset: counting it would need an absurd table. */
        c->res->corruptions++;
        return 0;
    }
    if (offset + bytes >= c->flen + s->cluster_size) {
        /*
         * Only the last cluster may run past the end of the file (by less
         * than a cluster); a reference further out is an error of its own
         * and, as in qemu-img check, is not counted, so it neither moves
         * the image end offset nor asks for a refcount there. A repair may
         * have grown the file since it was last measured: measure again.
         */
        int64_t flen = bdrv_getlength(c->bs->file);
        if (flen >= 0) {
            c->flen = (uint64_t)flen;
        }
        if (offset + bytes >= c->flen + s->cluster_size) {
            c->res->corruptions++;
            return 0;
        }
    }
    ret = refs_grow(c, last + 1);
    if (ret < 0) {
        return ret;
    }
    for (uint64_t k = first; k <= last; k++) {
        if (c->refs[k] < UINT32_MAX) {
            c->refs[k]++;
        }
    }
    return 0;
}

/*
 * Tables are mostly empty, and a hostile header can make them large: the
 * walks skip entries ZERO_BLOCK at a time where every byte is zero. True
 * when entry @i (of @n, each @esize bytes) starts such a block.
 */
#define ZERO_BLOCK 64u
static bool zero_block(const uint8_t *tab, uint32_t i, uint32_t n, size_t esize)
{
    return i % ZERO_BLOCK == 0 && n - i >= ZERO_BLOCK &&
           buffer_is_zero(tab + (size_t)i * esize, ZERO_BLOCK * esize);
}

/* Walk one L2 table; @active also gathers the allocation statistics. */
static int check_l2(CheckCtx *c, uint64_t l2_off, bool active)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = bs->opaque;
    uint64_t next_contig = 0;
    int ret;

    ret = bdrv_pread(bs->file, l2_off, c->buf, s->cluster_size);
    if (ret < 0) {
        c->res->check_errors++;
        return 0;
    }
    for (uint32_t i = 0; i < s->l2_size; i++) {
        uint64_t e, b;

        if (zero_block(c->buf, i, s->l2_size, (size_t)s->l2_entry_bytes)) {
            i += ZERO_BLOCK - 1;   /* unallocated entries: nothing to count */
            continue;
        }
        e = qcow2_l2_get(s, c->buf, i);
        b = qcow2_l2_get_bitmap(s, c->buf, i);

        if (!(e & QCOW_OFLAG_COMPRESSED) && (e & L2E_STD_RESERVED_MASK)) {
            c->res->corruptions++;
        }
        if (e & QCOW_OFLAG_COMPRESSED) {
            uint64_t coff, csize;
            if (e & QCOW_OFLAG_COPIED) {
                /* The COPIED flag never belongs on a compressed cluster. */
                c->res->corruptions++;
            }
            if (s->extended_l2 && b) {
                c->res->corruptions++;
                continue;
            }
            qcow2_parse_compressed(s, e, &coff, &csize);
            ret = inc_refs(c, coff, csize);
            if (ret < 0) {
                return ret;
            }
            if (active) {
                /* Compressed clusters count as fragmented by nature. */
                c->res->allocated_clusters++;
                c->res->compressed_clusters++;
                c->res->fragmented_clusters++;
            }
        } else if (e & L2E_OFFSET_MASK) {
            uint64_t off = e & L2E_OFFSET_MASK;
            if (s->extended_l2 && ((b >> 32) & b)) {
                c->res->corruptions++;
            }
            if (qcow2_offset_into_cluster(s, off)) {
                bool has_data = s->extended_l2 ? (b & QCOW_L2_BITMAP_ALL_ALLOC) != 0
                                               : !(e & QCOW_OFLAG_ZERO);
                c->res->corruptions++;
                if (!has_data && (c->fix & BDRV_FIX_ERRORS)) {
                    /* A preallocated zero cluster at a bad offset: drop the offset. */
                    if (s->extended_l2) {
                        qcow2_l2_set(s, c->buf, i, 0);
                        qcow2_l2_set_bitmap(s, c->buf, i, QCOW_L2_BITMAP_ALL_ZEROES);
                    } else {
                        qcow2_l2_set(s, c->buf, i, QCOW_OFLAG_ZERO);
                    }
                    ret = bdrv_pwrite(bs->file, l2_off, c->buf, s->cluster_size);
                    if (ret == 0) {
                        ret = bdrv_flush(bs->file);
                    }
                    qcow2_cache_discard(s->l2_cache, l2_off);
                    if (ret < 0) {
                        c->res->check_errors++;
                        return ret;
                    }
                    c->res->corruptions--;
                    c->res->corruptions_fixed++;
                    continue;
                }
            }
            if (active) {
                c->res->allocated_clusters++;
                if (next_contig && off != next_contig) {
                    c->res->fragmented_clusters++;
                }
                next_contig = off + s->cluster_size;
            }
            ret = inc_refs(c, off, s->cluster_size);
            if (ret < 0) {
                return ret;
            }
        } else if (s->extended_l2 && !(e & QCOW_OFLAG_ZERO) &&
                   (b & QCOW_L2_BITMAP_ALL_ALLOC)) {
            /* Allocated subclusters without a host cluster. */
            c->res->corruptions++;
        }
    }
    return 0;
}

/* Walk the L1 table at @l1_off (@n entries), counting the table itself first. */
static int check_l1(CheckCtx *c, uint64_t l1_off, uint32_t n, bool active)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = bs->opaque;
    uint64_t bytes = (uint64_t)n * 8;
    uint8_t *raw;
    int ret;

    ret = inc_refs(c, l1_off, bytes);
    if (ret < 0 || n == 0) {
        return ret;
    }
    raw = malloc(bytes);
    if (!raw) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    ret = bdrv_pread(bs->file, l1_off, raw, bytes);
    if (ret < 0) {
        free(raw);
        c->res->check_errors++;
        return ret;
    }
    for (uint32_t i = 0; i < n && ret == 0; i++) {
        uint64_t e, l2;

        if (zero_block(raw, i, n, 8)) {
            i += ZERO_BLOCK - 1;
            continue;
        }
        e = be64_load(raw + 8 * (size_t)i);
        l2 = e & L1E_OFFSET_MASK;
        if (!e) {
            continue;
        }
        if (e & L1E_RESERVED_MASK) {
            c->res->corruptions++;
        }
        if (!l2) {
            continue;
        }
        ret = inc_refs(c, l2, s->cluster_size);
        if (ret == 0) {
            if (qcow2_offset_into_cluster(s, l2)) {
                /* Counted, and the table is read where it says, as QEMU does. */
                c->res->corruptions++;
            }
            ret = check_l2(c, l2, active);
        }
    }
    free(raw);
    return ret;
}

/* Bitmaps are counted when their extension is marked consistent. */
static int check_bitmaps(CheckCtx *c)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = bs->opaque;
    uint8_t *dir;
    uint64_t off = 0;
    int ret;

    if (!s->bitmap_dir_offset || !(s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        return 0;
    }
    ret = inc_refs(c, s->bitmap_dir_offset, s->bitmap_dir_size);
    if (ret < 0) {
        return ret;
    }
    dir = malloc(s->bitmap_dir_size ? s->bitmap_dir_size : 1);
    if (!dir) {
        c->res->check_errors++;
        return -ENOMEM;
    }
    if (bdrv_pread(bs->file, s->bitmap_dir_offset, dir, s->bitmap_dir_size) < 0) {
        free(dir);
        c->res->check_errors++;
        return 0;
    }
    ret = 0;
    for (uint32_t i = 0; i < s->nb_bitmaps && ret == 0; i++) {
        uint64_t toff, tbytes;
        uint32_t tsize, name_size, extra;
        uint8_t *tab;

        if (off + 24 > s->bitmap_dir_size) {
            c->res->corruptions++;
            break;
        }
        toff = be64_load(dir + off);
        tsize = be32_load(dir + off + 8);
        name_size = be16_load(dir + off + 18);
        extra = be32_load(dir + off + 20);
        off += ROUND_UP(24ull + extra + name_size, 8);
        tbytes = (uint64_t)tsize * 8;
        if (qcow2_offset_into_cluster(s, toff) || tbytes > (64ull << 20)) {
            c->res->corruptions++;
            continue;
        }
        ret = inc_refs(c, toff, tbytes);
        if (ret < 0 || !tbytes) {
            continue;
        }
        tab = malloc(tbytes);
        if (!tab) {
            c->res->check_errors++;
            ret = -ENOMEM;
            break;
        }
        if (bdrv_pread(bs->file, toff, tab, tbytes) < 0) {
            c->res->check_errors++;
        } else {
            for (uint32_t k = 0; k < tsize && ret == 0; k++) {
                uint64_t e = be64_load(tab + 8 * (size_t)k) & L2E_OFFSET_MASK;
                if (e) {
                    ret = inc_refs(c, e, s->cluster_size);
                }
            }
        }
        free(tab);
    }
    free(dir);
    return ret;
}

/* The refcount blocks: damage here means the structure must be rebuilt. */
static int check_refblocks(CheckCtx *c)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = bs->opaque;
    int ret;

    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t e, off, idx;

        if (c->nb && zero_block((const uint8_t *)s->refcount_table, i, s->refcount_table_size, 8)) {
            i += ZERO_BLOCK - 1;   /* no refcount blocks here */
            continue;
        }
        e = s->refcount_table[i];
        off = e & REFT_OFFSET_MASK;
        idx = off >> s->cluster_bits;
        if (e & REFT_RESERVED_MASK) {
            c->res->corruptions++;
            c->rebuild = true;
            continue;
        }
        if (qcow2_offset_into_cluster(s, off)) {
            c->res->corruptions++;
            c->rebuild = true;
            continue;
        }
        if (idx >= c->nb) {
            /* A refcount block outside the file: grow the file to hold it. */
            c->res->corruptions++;
            if (c->fix & BDRV_FIX_ERRORS) {
                int64_t flen;
                if (off > (uint64_t)INT64_MAX - s->cluster_size || idx >= c->cap ||
                    bdrv_truncate(bs->file, off + s->cluster_size, BDRV_PREALLOC_OFF, NULL) < 0 ||
                    (flen = bdrv_getlength(bs->file)) < 0) {
                    c->rebuild = true;
                    continue;
                }
                c->flen = (uint64_t)flen;
                ret = refs_grow(c, qcow2_size_to_clusters(s, (uint64_t)flen));
                if (ret == 0) {
                    ret = inc_refs(c, off, s->cluster_size);
                }
                if (ret < 0) {
                    return ret;
                }
                c->res->corruptions--;
                c->res->corruptions_fixed++;
            }
            continue;
        }
        if (off) {
            ret = inc_refs(c, off, s->cluster_size);
            if (ret < 0) {
                return ret;
            }
            if (c->refs[idx] != 1) {
                /* The block shares its cluster with other metadata. */
                c->res->corruptions++;
                c->rebuild = true;
            }
        }
    }
    return 0;
}

static int calculate_refcounts(CheckCtx *c)
{
    BDRVQcow2State *s = c->bs->opaque;
    int ret;

    ret = inc_refs(c, 0, s->cluster_size);
    if (ret == 0) {
        ret = check_l1(c, s->l1_table_offset, s->l1_size, true);
    }
    for (uint32_t i = 0; ret == 0 && i < s->nb_snapshots; i++) {
        const Qcow2Snapshot *sn = &s->snapshots[i];
        if (qcow2_offset_into_cluster(s, sn->l1_table_offset) ||
            sn->l1_size > QCOW2_MAX_L1_SIZE / 8) {
            c->res->corruptions++;
            continue;
        }
        ret = check_l1(c, sn->l1_table_offset, sn->l1_size, false);
    }
    if (ret == 0 && s->nb_snapshots) {
        ret = inc_refs(c, s->snapshots_offset, s->snapshots_size);
    }
    if (ret == 0) {
        ret = inc_refs(c, s->refcount_table_offset,
                       (uint64_t)s->refcount_table_clusters * s->cluster_size);
    }
    if (ret == 0) {
        ret = check_bitmaps(c);
    }
    if (ret == 0) {
        ret = check_refblocks(c);
    }
    return ret;
}

/* Compare with the stored refcounts; @fix repairs what it may. */
static void compare_refcounts(CheckCtx *c, int fix, uint64_t *highest)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = bs->opaque;

    for (uint64_t i = 0; i < c->nb; i++) {
        uint64_t stored, want = c->refs[i];
        int *fixed = NULL;

        if (qcow2_get_refcount(bs, i, &stored) < 0) {
            c->res->check_errors++;
            continue;
        }
        if (stored || want) {
            *highest = i;
        }
        if (stored == want) {
            continue;
        }
        if (stored == 0) {
            /* A referenced cluster nobody counts: only a rebuild is safe. */
            c->rebuild = true;
        } else if (stored > want && (fix & BDRV_FIX_LEAKS)) {
            fixed = &c->res->leaks_fixed;
        } else if (stored < want && (fix & BDRV_FIX_ERRORS)) {
            fixed = &c->res->corruptions_fixed;
        }
        if (fixed && want <= s->refcount_max && qcow2_set_refcount(bs, i, want) == 0) {
            (*fixed)++;
            continue;
        }
        if (stored < want) {
            c->res->corruptions++;
        } else {
            c->res->leaks++;
        }
    }
}

/* COPIED must be set exactly where the refcount is 1 (active tables only). */
static int check_oflag_copied(CheckCtx *c, int fix)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = bs->opaque;
    bool repair;
    int ret;

    if (fix & BDRV_FIX_ERRORS) {
        repair = true;
    } else if (fix & BDRV_FIX_LEAKS) {
        /* Changing flags is only safe when the refcounts are known to be right. */
        repair = !c->res->check_errors && !c->res->corruptions && !c->res->leaks;
    } else {
        repair = false;
    }

    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l1e = s->l1_table[i];
        uint64_t l2 = l1e & L1E_OFFSET_MASK;
        uint64_t rc;
        int dirty = 0;

        if (!l2) {
            continue;
        }
        if (qcow2_get_refcount(bs, l2 >> s->cluster_bits, &rc) < 0) {
            continue;   /* reported by the refcount comparison already */
        }
        if ((rc == 1) != !!(l1e & QCOW_OFLAG_COPIED)) {
            c->res->corruptions++;
            if (repair) {
                s->l1_table[i] = rc == 1 ? (l1e | QCOW_OFLAG_COPIED)
                                         : (l1e & ~QCOW_OFLAG_COPIED);
                ret = qcow2_refcounts_sync(bs);
                if (ret == 0) {
                    ret = qcow2_write_l1_entries(bs, i, 1);
                }
                if (ret < 0) {
                    c->res->check_errors++;
                    return ret;
                }
                c->res->corruptions--;
                c->res->corruptions_fixed++;
            }
        }
        ret = bdrv_pread(bs->file, l2, c->buf, s->cluster_size);
        if (ret < 0) {
            c->res->check_errors++;
            return ret;
        }
        for (uint32_t j = 0; j < s->l2_size; j++) {
            uint64_t e = qcow2_l2_get(s, c->buf, j);
            uint64_t off = e & L2E_OFFSET_MASK;

            if ((e & QCOW_OFLAG_COMPRESSED) || !off) {
                continue;
            }
            if (qcow2_get_refcount(bs, off >> s->cluster_bits, &rc) < 0) {
                continue;
            }
            if ((rc == 1) != !!(e & QCOW_OFLAG_COPIED)) {
                c->res->corruptions++;
                if (repair) {
                    qcow2_l2_set(s, c->buf, j, rc == 1 ? (e | QCOW_OFLAG_COPIED)
                                                       : (e & ~QCOW_OFLAG_COPIED));
                    dirty++;
                }
            }
        }
        if (dirty) {
            /* Rule 1: the refcounts the flags describe go first. */
            ret = qcow2_refcounts_sync(bs);
            qcow2_cache_discard(s->l2_cache, l2);
            if (ret == 0) {
                ret = bdrv_pwrite(bs->file, l2, c->buf, s->cluster_size);
            }
            if (ret < 0) {
                c->res->check_errors++;
                return ret;
            }
            c->res->corruptions -= dirty;
            c->res->corruptions_fixed += dirty;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Rebuilding the refcount structure                                   */

/*
 * Take @count free clusters in a row in the counted references, first fit
 * from *first_free, growing the array past the end when no hole fits.
 */
static int64_t alloc_in_refs(CheckCtx *c, uint64_t count, uint64_t *first_free)
{
    uint64_t cl = *first_free, run = 0;
    bool first_gap = true;
    int ret;

    for (; cl < c->nb && run < count; cl++) {
        if (!c->refs[cl]) {
            run++;
            if (first_gap) {
                *first_free = cl;
                first_gap = false;
            }
        } else {
            run = 0;
        }
    }
    if (run < count) {
        ret = refs_grow(c, cl + count - run);
        if (ret < 0) {
            return ret;
        }
    }
    cl -= run;
    for (uint64_t i = 0; i < count; i++) {
        c->refs[cl + i] = 1;
    }
    return (int64_t)cl;
}

/*
 * Write a refcount block for every block-sized range of [first, end) that
 * holds a reference, placing new blocks in free clusters. Returns 1 when
 * the table had to grow, 0, or -errno.
 */
static int rebuild_write_refblocks(CheckCtx *c, uint64_t first, uint64_t end,
                                   uint64_t **table, uint64_t *entries, uint8_t *blockbuf)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = bs->opaque;
    uint64_t rbs = s->refcount_block_size;
    uint64_t first_free = 0;
    bool grown = false;
    int ret;

    for (uint64_t cl = first; cl < end; cl++) {
        uint64_t idx, start, boff;

        if (cl >= c->nb || !c->refs[cl]) {
            continue;
        }
        idx = cl >> s->refcount_block_bits;
        start = idx << s->refcount_block_bits;
        if (idx < *entries && (*table)[idx]) {
            boff = (*table)[idx];
        } else {
            int64_t got;
            /* Never place a block inside a range whose block is written already. */
            if (first_free < start) {
                first_free = start;
            }
            got = alloc_in_refs(c, 1, &first_free);
            if (got < 0) {
                return (int)got;
            }
            if ((uint64_t)got >= end) {
                end = (uint64_t)got + 1;   /* its own count must be written too */
            }
            if (idx >= *entries) {
                uint64_t n = ROUND_UP((idx + 1) * 8, s->cluster_size) / 8;
                uint64_t *nt = realloc(*table, n * 8);
                if (!nt) {
                    return -ENOMEM;
                }
                memset(nt + *entries, 0, (n - *entries) * 8);
                *table = nt;
                *entries = n;
                grown = true;
            }
            boff = (uint64_t)got << s->cluster_bits;
            (*table)[idx] = boff;
        }
        memset(blockbuf, 0, s->cluster_size);
        for (uint64_t j = 0; j < rbs; j++) {
            uint64_t v = start + j < c->nb ? c->refs[start + j] : 0;
            if (v > s->refcount_max) {
                return -ERANGE;
            }
            if (v) {
                qcow2_refblock_set(s, blockbuf, (uint32_t)j, v);
            }
        }
        ret = bdrv_pwrite(bs->file, boff, blockbuf, s->cluster_size);
        if (ret < 0) {
            return ret;
        }
        cl = start + rbs - 1;
    }
    return grown ? 1 : 0;
}

/*
 * Replace the refcount structure with one built from the counted
 * references. The old table and blocks stay counted (so nothing new lands
 * on them) until the header names the new table; they are leaks after.
 */
static int rebuild_refcount_structure(CheckCtx *c, BdrvError *err)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = bs->opaque;
    uint64_t *table = NULL, entries = 0, table_off = 0, table_clusters = 0;
    uint8_t *blockbuf, *raw = NULL, hdr[12];
    int ret, grown;

    blockbuf = malloc(s->cluster_size);
    if (!blockbuf) {
        return bdrv_error_set(err, -ENOMEM, "out of memory rebuilding refcounts");
    }
    qcow2_cache_clear(s->refblock_cache);
    grown = rebuild_write_refblocks(c, 0, c->nb, &table, &entries, blockbuf);
    do {
        uint64_t first_free = 0;
        int64_t got;

        if (grown < 0) {
            ret = grown;
            goto fail;
        }
        table_clusters = DIV_ROUND_UP(entries * 8, s->cluster_size);
        if (table_clusters * s->cluster_size > QCOW2_MAX_REFTABLE_SIZE) {
            ret = -EFBIG;
            goto fail;
        }
        got = alloc_in_refs(c, table_clusters, &first_free);
        if (got < 0) {
            ret = (int)got;
            goto fail;
        }
        table_off = (uint64_t)got << s->cluster_bits;
        /* The table's own clusters need counting in the blocks that cover them. */
        grown = rebuild_write_refblocks(c, (uint64_t)got, (uint64_t)got + table_clusters,
                                        &table, &entries, blockbuf);
    } while (grown);

    raw = calloc(table_clusters, s->cluster_size);
    if (!raw) {
        ret = -ENOMEM;
        goto fail;
    }
    for (uint64_t i = 0; i < entries; i++) {
        be64_store(raw + 8 * i, table[i]);
    }
    ret = bdrv_pwrite(bs->file, table_off, raw, table_clusters * s->cluster_size);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        goto fail;
    }
    be64_store(hdr, table_off);
    be32_store(hdr + 8, (uint32_t)table_clusters);
    ret = qcow2_write_header_field(bs, 48, hdr, sizeof(hdr));
    if (ret < 0) {
        goto fail;
    }
    qcow2_cache_clear(s->refblock_cache);
    free(s->refcount_table);
    s->refcount_table = calloc(table_clusters * s->cluster_size / 8, 8);
    if (!s->refcount_table) {
        ret = -ENOMEM;
        goto fail;
    }
    memcpy(s->refcount_table, table, entries * 8);
    s->refcount_table_offset = table_off;
    s->refcount_table_clusters = (uint32_t)table_clusters;
    s->refcount_table_size = (uint32_t)(table_clusters * s->cluster_size / 8);
    s->free_cluster_index = 0;
    s->free_byte_offset = 0;
    s->refblocks_unsynced = false;
    free(table);
    free(raw);
    free(blockbuf);
    return 0;

fail:
    free(table);
    free(raw);
    free(blockbuf);
    return bdrv_error_set(err, ret, "image '%s': rebuilding the refcount structure failed: %s",
                          bs->filename, strerror(-ret));
}

static int ctx_init(CheckCtx *c, BlockDriverState *bs, BdrvCheckResult *res, int fix,
                    BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t flen = bdrv_getlength(bs->file);
    uint64_t file_clusters;

    memset(c, 0, sizeof(*c));
    c->bs = bs;
    c->res = res;
    c->fix = fix;
    if (flen < 0) {
        return bdrv_error_set(err, (int)flen, "could not get the size of '%s'", bs->filename);
    }
    c->flen = (uint64_t)flen;
    file_clusters = qcow2_size_to_clusters(s, (uint64_t)flen);
    /*
     * The counting array, and so the comparison's work, stays within a small
     * multiple of the file's real size: a repair may grow the file to hold
     * a refcount block past its end (as qemu-img does) only up to this many
     * clusters; a table entry further out is a corruption counted once,
     * which a rebuild repairs, not a reason to grow the file to a terabyte.
     */
    c->cap = MIN(2 * file_clusters + CHECK_GROW_CLUSTERS,
                 (QCOW2_MAX_CLUSTER_OFFSET >> s->cluster_bits) + 1);
    c->buf = malloc(s->cluster_size);
    if (!c->buf || refs_grow(c, MAX(file_clusters, 1)) < 0) {
        free(c->buf);
        free(c->refs);
        return bdrv_error_set(err, -ENOMEM, "out of memory checking '%s'", bs->filename);
    }
    c->nb = file_clusters;
    return 0;
}

static void ctx_reset_refs(CheckCtx *c)
{
    memset(c->refs, 0, c->alloc * sizeof(*c->refs));
    c->rebuild = false;
}

static int check_refcounts(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    BdrvCheckResult pre;
    CheckCtx c;
    uint64_t highest = 0;
    int ret;

    ret = ctx_init(&c, bs, res, fix, err);
    if (ret < 0) {
        return ret;
    }
    res->total_clusters = qcow2_size_to_clusters(s, s->size);
    ret = calculate_refcounts(&c);
    if (ret < 0) {
        bdrv_error_set(err, ret, "could not check '%s': %s", bs->filename, strerror(-ret));
        goto out;
    }

    pre = *res;
    compare_refcounts(&c, 0, &highest);

    if (c.rebuild && (fix & BDRV_FIX_ERRORS)) {
        BdrvCheckResult old = *res, saved;
        int fresh_leaks = 0;

        ret = rebuild_refcount_structure(&c, err);
        if (ret < 0) {
            res->check_errors++;
            goto out;
        }
        res->corruptions = 0;
        res->leaks = 0;
        /* The tables changed: count again (without repairs) ... */
        ctx_reset_refs(&c);
        c.fix = 0;
        ret = calculate_refcounts(&c);
        if (ret < 0) {
            goto out;
        }
        if (fix & BDRV_FIX_LEAKS) {
            /* ... and release the old structure, now leaked. */
            saved = *res;
            memset(res, 0, sizeof(*res));
            compare_refcounts(&c, BDRV_FIX_LEAKS, &highest);
            fresh_leaks = res->leaks;
            *res = saved;
        }
        if (res->corruptions < old.corruptions) {
            res->corruptions_fixed += old.corruptions - res->corruptions;
        }
        if (res->leaks < old.leaks) {
            res->leaks_fixed += old.leaks - res->leaks;
        }
        res->leaks += fresh_leaks;
    } else if (fix) {
        if (c.rebuild) {
            /* Only an error repair (which rebuilds) could help. */
            res->check_errors++;
            ret = bdrv_error_set(err, -EIO, "image '%s': the refcount structure needs a "
                                 "rebuild, which only an error repair does", bs->filename);
            goto out;
        }
        if (res->leaks || res->corruptions) {
            *res = pre;
            compare_refcounts(&c, fix, &highest);
        }
    }

    ret = check_oflag_copied(&c, fix);
    if (ret < 0) {
        ret = 0;   /* counted in check_errors */
    }
    res->image_end_offset = (int64_t)((highest + 1) << s->cluster_bits);
out:
    free(c.refs);
    free(c.buf);
    return ret;
}

int qcow2_check(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    int incomplete = 0;
    int ret;

    if (s->read_only) {
        fix = 0;
    }
    /*
     * The check reads the tables from the file: on an image open for
     * writing, first write what the caches and deferred frees hold, so that
     * the check sees the image as this state does (a read-only state holds
     * nothing back; qcow2_flush_all does nothing there).
     */
    ret = qcow2_flush_all(bs);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "could not flush '%s' before the check", bs->filename);
    }
    memset(res, 0, sizeof(*res));
    s->in_check = true;

    /* v3 snapshot entries must carry at least the disk size (16 extra bytes). */
    for (uint32_t i = 0; s->qcow_version >= 3 && i < s->nb_snapshots; i++) {
        incomplete += s->snapshots[i].extra_data_size < 16;
    }
    ret = check_refcounts(bs, res, fix, err);
    if (ret == 0 && incomplete) {
        if (fix & BDRV_FIX_ERRORS) {
            ret = qcow2_rewrite_snapshot_table(bs);
            if (ret < 0) {
                res->check_errors++;
                res->corruptions += incomplete;
                bdrv_error_set(err, ret, "could not rewrite the snapshot table of '%s'",
                               bs->filename);
            } else {
                res->corruptions_fixed += incomplete;
            }
        } else {
            res->corruptions += incomplete;
        }
    }
    s->in_check = false;
    if (ret == 0 && fix) {
        ret = qcow2_flush_all(bs);
        if (ret == 0) {
            ret = bdrv_flush(bs->file);
        }
        if (ret < 0) {
            bdrv_error_set(err, ret, "could not flush '%s' after repairs", bs->filename);
        }
    }
    return ret;
}
