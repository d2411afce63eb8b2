/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qcow2-measure.c: how much space a new qcow2 image needs (qemu-img
 * measure): the metadata of a fully allocated image of the given layout,
 * plus the clusters the source's data would occupy, plus the persistent
 * bitmaps a qcow2 source could hand over. The figures follow QEMU 7.2's
 * accounting so that scripts sizing volumes get the same numbers.
 */

#include <errno.h>
#include <string.h>

#include "qcow2.h"

/*
 * Clusters of refcount blocks and refcount table needed to count
 * @clusters clusters plus themselves: the smallest fixed point.
 */
static uint64_t refcount_metadata_clusters(uint64_t clusters, uint64_t cluster_size,
                                           int refcount_order)
{
    uint64_t per_block = cluster_size * 8 >> refcount_order;
    uint64_t per_table_cluster = cluster_size / 8;
    uint64_t blocks = 0, table = 0, n = clusters, last;

    do {
        last = n;
        blocks = DIV_ROUND_UP(clusters + table + blocks, per_block);
        table = DIV_ROUND_UP(blocks, per_table_cluster);
        n = clusters + blocks + table;
    } while (n != last);
    return blocks + table;
}

/*
 * Bytes of a fully allocated image of @virtual_size (a cluster multiple):
 * header cluster, L2 tables, L1 table (both rounded up to whole tables),
 * refcount structures, and the data.
 */
static uint64_t full_size(const Qcow2CreateParams *p, uint64_t virtual_size)
{
    uint64_t cs = p->cluster_size;
    uint64_t l2e_size = p->extl2 ? 16 : 8;
    uint64_t meta = cs;
    uint64_t nl2e, nl1e;

    nl2e = ROUND_UP(virtual_size / cs, cs / l2e_size);
    meta += nl2e * l2e_size;
    nl1e = ROUND_UP(nl2e * l2e_size / cs, cs / 8);
    meta += nl1e * 8;
    meta += refcount_metadata_clusters((meta + virtual_size) / cs, cs, p->refcount_order) * cs;
    return meta + virtual_size;
}

/* Bytes the clusters holding @in_bs's data take in an image of @cs-byte clusters. */
static int data_size(BlockDriverState *in_bs, uint64_t size, uint64_t cs, uint64_t *out,
                     BdrvError *err)
{
    uint64_t required = 0, pnum;

    for (uint64_t off = 0; off < size; off += pnum) {
        uint64_t map;
        BlockDriverState *file;
        int depth;
        int ret = bdrv_block_status_above(in_bs, off, size - off, &pnum, &map, &file, &depth);

        if (ret < 0) {
            return bdrv_error_set(err, ret, "could not read the allocation of '%s'",
                                  in_bs->filename);
        }
        if (pnum == 0) {
            return bdrv_error_set(err, -EIO, "no progress reading the allocation of '%s'",
                                  in_bs->filename);
        }
        if (ret & BDRV_BLOCK_ZERO) {
            /* Reads as zeros: a new image needs nothing for it. */
            continue;
        }
        if ((ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED)) ==
            (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED)) {
            /* Count whole clusters, and skip the rest of the last one. */
            uint64_t end = MIN(ROUND_UP(off + pnum, cs), size);
            required += off % cs + (ROUND_UP(off + pnum, cs) - off);
            pnum = end - off;
        }
    }
    *out = required;
    return 0;
}

/*
 * The persistent bitmaps of a qcow2 source, each as a fully allocated
 * bitmap with its table in the target's clusters, plus their directory.
 */
static int bitmaps_size(BlockDriverState *in_bs, uint64_t cs, uint64_t *out, BdrvError *err)
{
    QBlockSpecificInfo si;
    uint64_t size = (uint64_t)in_bs->total_sectors * BDRV_SECTOR_SIZE;
    uint64_t total = 0, dir = 0;
    int ret = bdrv_get_specific_info(in_bs, &si, err);

    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < si.u.qcow2.nb_bitmaps; i++) {
        const struct QBlockSpecificQcow2Bitmap *bm = &si.u.qcow2.bitmaps[i];
        uint64_t bits = bm->granularity ? DIV_ROUND_UP(size, bm->granularity) : 0;
        uint64_t clusters = DIV_ROUND_UP(DIV_ROUND_UP(bits, 8), cs);

        total += clusters * cs + ROUND_UP(clusters * 8, cs);
        /* A directory entry: 24 bytes, the name, padded to 8. */
        dir += ROUND_UP(24 + strlen(bm->name ? bm->name : ""), 8);
    }
    bdrv_specific_info_clear(&si);
    *out = total + ROUND_UP(dir, cs);
    return 0;
}

int qcow2_measure(BdrvOpts *opts, BlockDriverState *in_bs, uint64_t size,
                  BlockMeasureInfo *info, BdrvError *err)
{
    Qcow2CreateParams p;
    uint64_t virtual_size, required = 0;
    int ret;

    ret = qcow2_parse_create_opts(opts, &p, err);
    if (ret == 0 && in_bs) {
        ret = qcow2_check_size_fits(&p, size, err);
    }
    if (ret < 0) {
        return ret;
    }
    virtual_size = ROUND_UP(size, p.cluster_size);
    if (p.prealloc == BDRV_PREALLOC_FALLOC || p.prealloc == BDRV_PREALLOC_FULL) {
        required = virtual_size;
    } else if (in_bs) {
        ret = data_size(in_bs, size, p.cluster_size, &required, err);
        if (ret < 0) {
            return ret;
        }
    }
    info->fully_allocated = full_size(&p, virtual_size);
    /* The metadata of the full image is kept: an over-estimate, as QEMU's. */
    info->required = info->fully_allocated - virtual_size + required;
    if (p.version >= 3 && in_bs && strcmp(in_bs->drv->format_name, "qcow2") == 0 &&
        ((BDRVQcow2State *)in_bs->opaque)->qcow_version >= 3) {
        info->has_bitmaps = true;
        ret = bitmaps_size(in_bs, p.cluster_size, &info->bitmaps, err);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}
