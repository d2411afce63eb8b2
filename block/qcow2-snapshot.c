/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qcow2-snapshot.c: internal snapshots: reading and validating the
 * snapshot table, writing it back (unknown extra data kept), the refcount
 * walk over a whole L1 tree, and list/create/goto/delete.
 *
 * Order of a table update: the new table is written into newly allocated
 * clusters and flushed, then nb_snapshots and snapshots_offset (12
 * adjacent header bytes) switch to it in one write, then the old table's
 * clusters are freed. Refcounts taken for a new snapshot are on disk before
 * the table that names its L1 copy; refcounts of a deleted snapshot drop
 * only after the table without it is on disk.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qcow2.h"

#define SNAPSHOT_HEADER_SIZE  40
#define SNAPSHOT_EXTRA_KNOWN  24   /* vm_state_size_large, disk_size, icount */

void qcow2_free_snapshots(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;

    for (uint32_t i = 0; s->snapshots && i < s->nb_snapshots; i++) {
        free(s->snapshots[i].id_str);
        free(s->snapshots[i].name);
        free(s->snapshots[i].unknown_extra);
    }
    free(s->snapshots);
    s->snapshots = NULL;
}

int qcow2_read_snapshots(BlockDriverState *bs, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = s->snapshots_offset;
    uint64_t total = 0;
    uint8_t h[SNAPSHOT_HEADER_SIZE];
    int ret;

    s->snapshots_size = 0;
    if (s->nb_snapshots == 0) {
        return 0;
    }
    /* Up to 65536 entries, however few bytes the table itself claims. */
    ret = bdrv_policy_charge_metadata(bs, (uint64_t)s->nb_snapshots * sizeof(*s->snapshots),
                                      "snapshot table", err);
    if (ret < 0) {
        return ret;
    }
    s->snapshots = calloc(s->nb_snapshots, sizeof(*s->snapshots));
    if (!s->snapshots) {
        return bdrv_error_set(err, -ENOMEM, "out of memory for the snapshot table of '%s'",
                              bs->filename);
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        Qcow2Snapshot *sn = &s->snapshots[i];
        uint32_t extra, id_len, name_len;
        uint64_t entry;
        uint8_t ex[SNAPSHOT_EXTRA_KNOWN];

        ret = bdrv_pread(bs->file, off, h, sizeof(h));
        if (ret < 0) {
            return bdrv_error_set(err, ret, "could not read the snapshot table of '%s': %s",
                                  bs->filename, strerror(-ret));
        }
        sn->l1_table_offset = be64_load(h);
        sn->l1_size = be32_load(h + 8);
        id_len = be16_load(h + 12);
        name_len = be16_load(h + 14);
        sn->date_sec = be32_load(h + 16);
        sn->date_nsec = be32_load(h + 20);
        sn->vm_clock_nsec = be64_load(h + 24);
        sn->vm_state_size = be32_load(h + 32);
        extra = be32_load(h + 36);
        if (extra > QCOW2_MAX_SNAPSHOT_EXTRA) {
            return bdrv_error_set(err, -EBADIMAGE, "image '%s': too much extra metadata in "
                                  "snapshot table entry %u (%u bytes, at most %u)",
                                  bs->filename, i, extra, QCOW2_MAX_SNAPSHOT_EXTRA);
        }
        entry = ROUND_UP((uint64_t)SNAPSHOT_HEADER_SIZE + extra + id_len + name_len, 8);
        total += entry;
        if (total > QCOW2_MAX_SNAPSHOTS_SIZE) {
            return bdrv_error_set(err, -EBADIMAGE, "image '%s': snapshot table is too big "
                                  "(more than %llu bytes)", bs->filename,
                                  (unsigned long long)QCOW2_MAX_SNAPSHOTS_SIZE);
        }
        sn->extra_data_size = extra;
        memset(ex, 0, sizeof(ex));
        if (extra) {
            ret = bdrv_pread(bs->file, off + SNAPSHOT_HEADER_SIZE, ex,
                             MIN(extra, (uint32_t)sizeof(ex)));
            if (ret < 0) {
                return bdrv_error_set(err, ret, "could not read the snapshot table of '%s'",
                                      bs->filename);
            }
        }
        if (extra >= 8) {
            sn->vm_state_size = be64_load(ex);
        }
        sn->disk_size = extra >= 16 ? be64_load(ex + 8) : s->size;
        sn->icount = extra >= 24 ? be64_load(ex + 16) : UINT64_MAX;
        if (extra > SNAPSHOT_EXTRA_KNOWN) {
            sn->unknown_extra_size = extra - SNAPSHOT_EXTRA_KNOWN;
            sn->unknown_extra = malloc(sn->unknown_extra_size);
            if (!sn->unknown_extra) {
                return bdrv_error_set(err, -ENOMEM, "out of memory");
            }
            ret = bdrv_pread(bs->file, off + SNAPSHOT_HEADER_SIZE + SNAPSHOT_EXTRA_KNOWN,
                             sn->unknown_extra, sn->unknown_extra_size);
            if (ret < 0) {
                return bdrv_error_set(err, ret, "could not read the snapshot table of '%s'",
                                      bs->filename);
            }
        }
        sn->id_str = calloc(1, id_len + 1);
        sn->name = calloc(1, name_len + 1);
        if (!sn->id_str || !sn->name) {
            return bdrv_error_set(err, -ENOMEM, "out of memory");
        }
        ret = bdrv_pread(bs->file, off + SNAPSHOT_HEADER_SIZE + extra, sn->id_str, id_len);
        if (ret == 0) {
            ret = bdrv_pread(bs->file, off + SNAPSHOT_HEADER_SIZE + extra + id_len, sn->name,
                             name_len);
        }
        if (ret < 0) {
            return bdrv_error_set(err, ret, "could not read the snapshot table of '%s'",
                                  bs->filename);
        }
        off += entry;
    }
    s->snapshots_size = total;
    return 0;
}

/* Serialise the snapshot array (v3 gets at least the 24 known extra bytes). */
static uint8_t *snapshot_table_bytes(BlockDriverState *bs, const Qcow2Snapshot *sns,
                                     uint32_t n, uint64_t *size)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t total = 0, off = 0;
    uint8_t *buf;

    (void)s;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t extra = SNAPSHOT_EXTRA_KNOWN + sns[i].unknown_extra_size;
        total += ROUND_UP((uint64_t)SNAPSHOT_HEADER_SIZE + extra + strlen(sns[i].id_str) +
                          strlen(sns[i].name), 8);
    }
    *size = total;
    buf = calloc(1, total ? total : 1);
    if (!buf) {
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        const Qcow2Snapshot *sn = &sns[i];
        uint32_t extra = SNAPSHOT_EXTRA_KNOWN + sn->unknown_extra_size;
        size_t id_len = strlen(sn->id_str), name_len = strlen(sn->name);
        uint8_t *p = buf + off;

        be64_store(p, sn->l1_table_offset);
        be32_store(p + 8, sn->l1_size);
        be16_store(p + 12, (uint16_t)id_len);
        be16_store(p + 14, (uint16_t)name_len);
        be32_store(p + 16, sn->date_sec);
        be32_store(p + 20, sn->date_nsec);
        be64_store(p + 24, sn->vm_clock_nsec);
        be32_store(p + 32, (uint32_t)MIN(sn->vm_state_size, (uint64_t)UINT32_MAX));
        be32_store(p + 36, extra);
        be64_store(p + 40, sn->vm_state_size);
        be64_store(p + 48, sn->disk_size);
        be64_store(p + 56, sn->icount);
        if (sn->unknown_extra_size) {
            memcpy(p + 64, sn->unknown_extra, sn->unknown_extra_size);
        }
        memcpy(p + SNAPSHOT_HEADER_SIZE + extra, sn->id_str, id_len);
        memcpy(p + SNAPSHOT_HEADER_SIZE + extra + id_len, sn->name, name_len);
        off += ROUND_UP((uint64_t)SNAPSHOT_HEADER_SIZE + extra + id_len + name_len, 8);
    }
    return buf;
}

/* Write @sns (n entries) as the new snapshot table; on success the state owns it. */
static int write_snapshot_table(BlockDriverState *bs, Qcow2Snapshot *sns, uint32_t n)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old_off = s->snapshots_offset, old_size = s->snapshots_size;
    uint32_t old_n = s->nb_snapshots;
    uint64_t size = 0;
    int64_t new_off = 0;
    uint8_t *buf, hdr[12];
    int ret;

    buf = snapshot_table_bytes(bs, sns, n, &size);
    if (!buf) {
        return -ENOMEM;
    }
    if (n) {
        new_off = qcow2_alloc_clusters(bs, size);
        if (new_off < 0) {
            free(buf);
            return (int)new_off;
        }
        ret = qcow2_refcounts_sync(bs);
        if (ret == 0) {
            ret = qcow2_check_overlap(bs, (uint64_t)new_off, size);
        }
        if (ret == 0) {
            ret = bdrv_pwrite(bs->file, (uint64_t)new_off, buf, size);
        }
        if (ret == 0) {
            ret = bdrv_flush(bs->file);
        }
        if (ret < 0) {
            free(buf);
            return ret;
        }
    }
    free(buf);
    be32_store(hdr, n);
    be64_store(hdr + 4, (uint64_t)new_off);
    ret = qcow2_write_header_field(bs, 60, hdr, sizeof(hdr));
    if (ret < 0) {
        return ret;
    }
    s->snapshots_offset = (uint64_t)new_off;
    s->snapshots_size = size;
    s->nb_snapshots = n;
    s->snapshots = sns;
    if (old_n && old_size) {
        /* The switch is done: failing to queue the old table's release only leaks it. */
        qcow2_free_clusters_later(bs, old_off, old_size, false);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Refcount walk                                                       */

/*
 * Add @delta to the refcounts of every L2 table and cluster reachable from
 * @l1 (@n entries, host order); with @active, also make the COPIED flags
 * of s->l1_table and of its L2 tables match the refcounts afterwards.
 */
static int walk_l1(BlockDriverState *bs, uint64_t *l1, uint32_t n, int delta, bool active)
{
    BDRVQcow2State *s = bs->opaque;
    bool l1_changed = false;
    int ret;

    for (uint32_t i = 0; i < n; i++) {
        uint64_t l2_off = l1[i] & L1E_OFFSET_MASK;
        uint64_t rc;
        void *table;

        if (!l2_off) {
            continue;
        }
        if (qcow2_offset_into_cluster(s, l2_off)) {
            return qcow2_signal_corruption(bs, "L2 table offset 0x%llx is not "
                                           "cluster-aligned", (unsigned long long)l2_off);
        }
        ret = qcow2_cache_get(bs, s->l2_cache, l2_off, &table);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t j = 0; j < s->l2_size; j++) {
            uint64_t e = qcow2_l2_get(s, table, j);
            uint64_t ne = e;

            if (e & QCOW_OFLAG_COMPRESSED) {
                if (delta) {
                    uint64_t coff, csize;
                    qcow2_parse_compressed(s, e, &coff, &csize);
                    ret = qcow2_update_refcount(bs, coff, csize, delta);
                    if (ret < 0) {
                        qcow2_cache_put(s->l2_cache, &table);
                        return ret;
                    }
                }
                ne = e & ~QCOW_OFLAG_COPIED;
            } else if (e & L2E_OFFSET_MASK) {
                uint64_t off = e & L2E_OFFSET_MASK;
                if (delta) {
                    ret = qcow2_update_refcount(bs, off, s->cluster_size, delta);
                    if (ret < 0) {
                        qcow2_cache_put(s->l2_cache, &table);
                        return ret;
                    }
                }
                if (active) {
                    ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc);
                    if (ret < 0) {
                        qcow2_cache_put(s->l2_cache, &table);
                        return ret;
                    }
                    ne = rc == 1 ? (e | QCOW_OFLAG_COPIED) : (e & ~QCOW_OFLAG_COPIED);
                }
            }
            if (active && ne != e) {
                qcow2_l2_set(s, table, j, ne);
                qcow2_cache_mark_dirty(s->l2_cache, table);
            }
        }
        qcow2_cache_put(s->l2_cache, &table);
        if (delta) {
            ret = qcow2_update_refcount(bs, l2_off, s->cluster_size, delta);
            if (ret < 0) {
                return ret;
            }
        }
        if (active) {
            uint64_t ne;
            ret = qcow2_get_refcount(bs, l2_off >> s->cluster_bits, &rc);
            if (ret < 0) {
                return ret;
            }
            ne = rc == 1 ? (l1[i] | QCOW_OFLAG_COPIED) : (l1[i] & ~QCOW_OFLAG_COPIED);
            if (ne != l1[i]) {
                l1[i] = ne;
                l1_changed = true;
            }
        }
    }
    if (active && l1_changed) {
        /* Rule 1: the refcounts the flags describe are on disk before the flags. */
        ret = qcow2_refcounts_sync(bs);
        if (ret == 0) {
            ret = qcow2_write_l1_entries(bs, 0, s->l1_size);
        }
        return ret;
    }
    return 0;
}

/* Read the L1 table of a snapshot (validated against QEMU's limits). */
static int read_snapshot_l1(BlockDriverState *bs, const Qcow2Snapshot *sn, uint64_t **out)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t *raw;
    uint64_t *l1;
    int ret;

    *out = NULL;
    if (sn->l1_size > QCOW2_MAX_L1_SIZE / 8 ||
        (sn->l1_size && qcow2_offset_into_cluster(s, sn->l1_table_offset)) ||
        sn->l1_table_offset > (uint64_t)INT64_MAX - (uint64_t)sn->l1_size * 8) {
        return qcow2_signal_corruption(bs, "snapshot '%s' has an invalid L1 table",
                                       sn->id_str);
    }
    l1 = calloc(sn->l1_size ? sn->l1_size : 1, 8);
    raw = malloc(sn->l1_size ? (size_t)sn->l1_size * 8 : 1);
    if (!l1 || !raw) {
        free(l1);
        free(raw);
        return -ENOMEM;
    }
    ret = sn->l1_size ? bdrv_pread(bs->file, sn->l1_table_offset, raw, (size_t)sn->l1_size * 8)
                      : 0;
    if (ret < 0) {
        free(l1);
        free(raw);
        return ret;
    }
    for (uint32_t i = 0; i < sn->l1_size; i++) {
        l1[i] = be64_load(raw + 8 * (size_t)i);
    }
    free(raw);
    *out = l1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Public operations                                                   */

static int find_snapshot(BlockDriverState *bs, const char *id_or_name)
{
    BDRVQcow2State *s = bs->opaque;

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (strcmp(s->snapshots[i].id_str, id_or_name) == 0) {
            return (int)i;
        }
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (strcmp(s->snapshots[i].name, id_or_name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int qcow2_snapshot_list(BlockDriverState *bs, BdrvSnapshotInfo **out, int *count)
{
    BDRVQcow2State *s = bs->opaque;
    BdrvSnapshotInfo *v;

    *out = NULL;
    *count = 0;
    if (s->nb_snapshots == 0) {
        return 0;
    }
    v = calloc(s->nb_snapshots, sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        const Qcow2Snapshot *sn = &s->snapshots[i];
        v[i].id = strdup(sn->id_str);
        v[i].name = strdup(sn->name);
        if (!v[i].id || !v[i].name) {
            bdrv_snapshot_list_free(v, (int)i + 1);
            return -ENOMEM;
        }
        v[i].vm_state_size = sn->vm_state_size;
        v[i].disk_size = sn->disk_size;
        v[i].date_sec = sn->date_sec;
        v[i].date_nsec = sn->date_nsec;
        v[i].vm_clock_nsec = sn->vm_clock_nsec;
        v[i].icount = sn->icount;
    }
    *out = v;
    *count = (int)s->nb_snapshots;
    return 0;
}

/* A copy of the snapshot array with room for one more entry (strings shared). */
static Qcow2Snapshot *copy_snapshots(BDRVQcow2State *s, uint32_t extra)
{
    Qcow2Snapshot *v = calloc((size_t)s->nb_snapshots + extra + 1, sizeof(*v));
    if (v && s->nb_snapshots) {
        memcpy(v, s->snapshots, sizeof(*v) * s->nb_snapshots);
    }
    return v;
}

int qcow2_snapshot_create(BlockDriverState *bs, const char *name, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Snapshot *v, *sn;
    uint64_t max_id = 0;
    int64_t l1_off = 0;
    uint8_t *raw = NULL;
    struct timespec ts;
    char idbuf[32];
    int ret;

    if (s->read_only) {
        return bdrv_error_set(err, -EROFS, "'%s' is opened read-only", bs->filename);
    }
    if (s->corrupt) {
        return bdrv_error_set(err, -EIO, "'%s' was found corrupt", bs->filename);
    }
    /*
     * As in QEMU, a name may be empty or repeat another snapshot's: only
     * ids are unique, and this one is new. The length field is 16 bits.
     */
    if (!name || strlen(name) > 65535) {
        return bdrv_error_set(err, -EINVAL, "'%s': invalid snapshot name", bs->filename);
    }
    if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
        return bdrv_error_set(err, -EFBIG, "'%s': too many snapshots", bs->filename);
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        uint64_t id = strtoull(s->snapshots[i].id_str, NULL, 10);
        max_id = MAX(max_id, id);
    }
    snprintf(idbuf, sizeof(idbuf), "%" PRIu64, max_id + 1);

    ret = qcow2_mark_dirty(bs);
    if (ret == 0) {
        ret = qcow2_flush_all(bs);
    }
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': flush failed: %s", bs->filename, strerror(-ret));
    }

    /* 1. A copy of the active L1 table. */
    if (s->l1_size) {
        raw = calloc(1, (size_t)s->l1_size * 8);
        if (!raw) {
            return bdrv_error_set(err, -ENOMEM, "out of memory");
        }
        for (uint32_t i = 0; i < s->l1_size; i++) {
            be64_store(raw + 8 * (size_t)i, s->l1_table[i]);
        }
        l1_off = qcow2_alloc_clusters(bs, (uint64_t)s->l1_size * 8);
        if (l1_off < 0) {
            free(raw);
            return bdrv_error_set(err, (int)l1_off, "'%s': could not allocate the snapshot L1 "
                                  "table", bs->filename);
        }
        ret = qcow2_refcounts_sync(bs);
        if (ret == 0) {
            ret = qcow2_check_overlap(bs, (uint64_t)l1_off, (uint64_t)s->l1_size * 8);
        }
        if (ret == 0) {
            ret = bdrv_pwrite(bs->file, (uint64_t)l1_off, raw, (size_t)s->l1_size * 8);
        }
        free(raw);
        if (ret < 0) {
            return bdrv_error_set(err, ret, "'%s': could not write the snapshot L1 table",
                                  bs->filename);
        }
    }
    /* 2. Everything it reaches is now shared: +1, COPIED flags cleared. */
    ret = walk_l1(bs, s->l1_table, s->l1_size, 1, true);
    if (ret == 0) {
        ret = qcow2_flush_all(bs);
    }
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not update refcounts for the snapshot",
                              bs->filename);
    }
    /* 3. The table entry that makes it real. */
    v = copy_snapshots(s, 1);
    if (!v) {
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    sn = &v[s->nb_snapshots];
    memset(sn, 0, sizeof(*sn));
    sn->l1_table_offset = (uint64_t)l1_off;
    sn->l1_size = s->l1_size;
    sn->id_str = strdup(idbuf);
    sn->name = strdup(name);
    clock_gettime(CLOCK_REALTIME, &ts);
    sn->date_sec = (uint32_t)ts.tv_sec;
    sn->date_nsec = (uint32_t)ts.tv_nsec;
    sn->disk_size = s->size;
    sn->icount = UINT64_MAX;
    sn->extra_data_size = SNAPSHOT_EXTRA_KNOWN;
    if (!sn->id_str || !sn->name) {
        free(sn->id_str);
        free(sn->name);
        free(v);
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    {
        Qcow2Snapshot *old = s->snapshots;
        ret = write_snapshot_table(bs, v, s->nb_snapshots + 1);
        if (ret < 0) {
            free(sn->id_str);
            free(sn->name);
            free(v);
            return bdrv_error_set(err, ret, "'%s': could not write the snapshot table",
                                  bs->filename);
        }
        free(old);
    }
    ret = qcow2_flush_all(bs);
    return ret < 0 ? bdrv_error_set(err, ret, "'%s': flush failed", bs->filename) : 0;
}

int qcow2_snapshot_goto(BlockDriverState *bs, const char *id_or_name, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *sn_l1 = NULL, *old_l1 = NULL;
    uint32_t old_size = s->l1_size;
    Qcow2Snapshot *sn;
    int idx, ret;

    if (s->read_only) {
        return bdrv_error_set(err, -EROFS, "'%s' is opened read-only", bs->filename);
    }
    if (s->corrupt) {
        return bdrv_error_set(err, -EIO, "'%s' was found corrupt", bs->filename);
    }
    idx = find_snapshot(bs, id_or_name);
    if (idx < 0) {
        return bdrv_error_set(err, -ENOENT, "'%s': no snapshot '%s'", bs->filename,
                              id_or_name);
    }
    sn = &s->snapshots[idx];
    ret = qcow2_mark_dirty(bs);
    if (ret == 0) {
        ret = qcow2_flush_all(bs);
    }
    if (ret == 0) {
        ret = read_snapshot_l1(bs, sn, &sn_l1);
    }
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not read snapshot '%s'", bs->filename,
                              id_or_name);
    }
    if (sn->l1_size > s->l1_size) {
        ret = qcow2_grow_l1_table(bs, sn->l1_size);
        if (ret < 0) {
            free(sn_l1);
            return bdrv_error_set(err, ret, "'%s': could not grow the L1 table", bs->filename);
        }
    }
    old_size = s->l1_size;
    old_l1 = malloc((size_t)old_size * 8 + 8);
    if (!old_l1) {
        free(sn_l1);
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    memcpy(old_l1, s->l1_table, (size_t)old_size * 8);

    /* 1. The snapshot's tree gains the active reference. */
    ret = walk_l1(bs, sn_l1, sn->l1_size, 1, false);
    if (ret == 0) {
        ret = qcow2_flush_all(bs);
    }
    if (ret < 0) {
        goto out;
    }
    /* 2. The active L1 table becomes the snapshot's (in place). */
    memset(s->l1_table, 0, (size_t)s->l1_size * 8);
    memcpy(s->l1_table, sn_l1, (size_t)sn->l1_size * 8);
    ret = qcow2_write_l1_entries(bs, 0, s->l1_size);
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        goto out;
    }
    /* Cached tables of the old tree may be freed next; nothing dirty is lost. */
    if (sn->disk_size != s->size) {
        uint8_t v[8];
        be64_store(v, sn->disk_size);
        ret = qcow2_write_header_field(bs, 24, v, 8);
        if (ret < 0) {
            goto out;
        }
        s->size = sn->disk_size;
        bs->total_sectors = (int64_t)DIV_ROUND_UP(s->size, BDRV_SECTOR_SIZE);
    }
    /* 3. The old tree loses it (rule 4: the L1 no longer names it, durably). */
    ret = walk_l1(bs, old_l1, old_size, -1, false);
    /* 4. COPIED flags of the new active tree. */
    if (ret == 0) {
        ret = walk_l1(bs, s->l1_table, s->l1_size, 0, true);
    }
    if (ret == 0) {
        ret = qcow2_flush_all(bs);
    }
out:
    free(sn_l1);
    free(old_l1);
    return ret < 0 ? bdrv_error_set(err, ret, "'%s': could not apply snapshot '%s': %s",
                                    bs->filename, id_or_name, strerror(-ret)) : 0;
}

int qcow2_snapshot_delete(BlockDriverState *bs, const char *id_or_name, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Snapshot del, *v, *old;
    uint64_t *l1 = NULL;
    int idx, ret;

    if (s->read_only) {
        return bdrv_error_set(err, -EROFS, "'%s' is opened read-only", bs->filename);
    }
    if (s->corrupt) {
        return bdrv_error_set(err, -EIO, "'%s' was found corrupt", bs->filename);
    }
    idx = find_snapshot(bs, id_or_name);
    if (idx < 0) {
        return bdrv_error_set(err, -ENOENT, "'%s': no snapshot '%s'", bs->filename,
                              id_or_name);
    }
    ret = qcow2_mark_dirty(bs);
    if (ret == 0) {
        ret = qcow2_flush_all(bs);
    }
    if (ret == 0) {
        ret = read_snapshot_l1(bs, &s->snapshots[idx], &l1);
    }
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not read snapshot '%s'", bs->filename,
                              id_or_name);
    }
    del = s->snapshots[idx];
    v = copy_snapshots(s, 0);
    if (!v) {
        free(l1);
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    memmove(&v[idx], &v[idx + 1], sizeof(*v) * (s->nb_snapshots - (uint32_t)idx - 1));
    old = s->snapshots;
    ret = write_snapshot_table(bs, v, s->nb_snapshots - 1);
    if (ret < 0) {
        free(v);
        free(l1);
        return bdrv_error_set(err, ret, "'%s': could not write the snapshot table",
                              bs->filename);
    }
    free(old);
    /* The table no longer names it: drop its references, then its L1 table. */
    ret = walk_l1(bs, l1, del.l1_size, -1, false);
    if (ret == 0 && del.l1_size) {
        ret = qcow2_update_refcount(bs, del.l1_table_offset, (uint64_t)del.l1_size * 8, -1);
    }
    if (ret == 0) {
        ret = walk_l1(bs, s->l1_table, s->l1_size, 0, true);
    }
    if (ret == 0) {
        ret = qcow2_flush_all(bs);
    }
    free(l1);
    free(del.id_str);
    free(del.name);
    free(del.unknown_extra);
    return ret < 0 ? bdrv_error_set(err, ret, "'%s': could not delete snapshot '%s': %s",
                                    bs->filename, id_or_name, strerror(-ret)) : 0;
}

int qcow2_rewrite_snapshot_table(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Snapshot *v, *old = s->snapshots;
    int ret;

    if (s->nb_snapshots == 0) {
        return 0;
    }
    v = copy_snapshots(s, 0);
    if (!v) {
        return -ENOMEM;
    }
    ret = write_snapshot_table(bs, v, s->nb_snapshots);
    if (ret < 0) {
        free(v);
        return ret;
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        v[i].extra_data_size = SNAPSHOT_EXTRA_KNOWN + v[i].unknown_extra_size;
    }
    free(old);
    return 0;
}
