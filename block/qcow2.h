/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qcow2.h: the private interface shared by the files of the qcow2 driver
 * (qcow2.c, qcow2-cache.c, qcow2-refcount.c, qcow2-cluster.c,
 * qcow2-check.c, qcow2-snapshot.c): on-disk constants, the driver state and
 * the functions one subsystem offers the others.
 */
#ifndef BLOCK_QCOW2_H
#define BLOCK_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block_int.h"

/* ---- on-disk constants (docs/interop/qcow2.txt, formats.md §2) ---- */

#define QCOW2_MAGIC                 0x514649FBu
#define QCOW2_V2_HEADER_SIZE        72
#define QCOW2_V3_HEADER_MIN         104
#define QCOW2_V3_HEADER_SIZE        112      /* what this driver writes: with compression_type */

#define QCOW2_MIN_CLUSTER_BITS      9
#define QCOW2_MAX_CLUSTER_BITS      21
#define QCOW2_DEFAULT_CLUSTER_SIZE  65536

/* Limits QEMU 7.2 enforces at open (formats.md §2.8). */
#define QCOW2_MAX_REFTABLE_SIZE     (8u << 20)        /* bytes */
#define QCOW2_MAX_L1_SIZE           (32u << 20)       /* bytes: 4194304 entries */
#define QCOW2_MAX_SNAPSHOTS         65536u
#define QCOW2_MAX_SNAPSHOTS_SIZE    (1024ull * QCOW2_MAX_SNAPSHOTS)
#define QCOW2_MAX_SNAPSHOT_EXTRA    1024u
#define QCOW2_MAX_BACKING_NAME      1023u
#define QCOW2_MAX_BITMAPS           65535u
#define QCOW2_MAX_BITMAP_DIR_SIZE   (1024ull * QCOW2_MAX_BITMAPS)
#define QCOW2_MAX_CLUSTER_OFFSET    ((1ull << 56) - 1)

/* Header extension types. */
#define QCOW2_EXT_END               0x00000000u
#define QCOW2_EXT_BACKING_FORMAT    0xE2792ACAu
#define QCOW2_EXT_FEATURE_TABLE     0x6803F857u
#define QCOW2_EXT_BITMAPS           0x23852875u
#define QCOW2_EXT_CRYPTO_HEADER     0x0537BE77u
#define QCOW2_EXT_DATA_FILE         0x44415441u

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY        (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT      (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE    (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION  (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2        (1ull << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS     (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW    (1ull << 1)

/* The incompatible bits this driver knows how to honour. */
#define QCOW2_INCOMPAT_SUPPORTED \
    (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_COMPRESSION | \
     QCOW2_INCOMPAT_EXTL2)

#define QCOW2_COMPRESSION_ZLIB      0
#define QCOW2_COMPRESSION_ZSTD      1

/* Table entries. */
#define QCOW_OFLAG_COPIED           (1ull << 63)
#define QCOW_OFLAG_COMPRESSED       (1ull << 62)
#define QCOW_OFLAG_ZERO             (1ull << 0)
#define L1E_OFFSET_MASK             0x00fffffffffffe00ull
#define L1E_RESERVED_MASK           0x7f000000000001ffull
#define L2E_OFFSET_MASK             0x00fffffffffffe00ull
#define L2E_STD_RESERVED_MASK       0x3f000000000001feull
#define REFT_OFFSET_MASK            0xfffffffffffffe00ull
#define REFT_RESERVED_MASK          0x00000000000001ffull

/* Extended L2 bitmaps: low half "allocated", high half "reads as zero". */
#define QCOW2_SUBCLUSTERS           32
#define QCOW_L2_BITMAP_ALL_ALLOC    0x00000000ffffffffull
#define QCOW_L2_BITMAP_ALL_ZEROES   0xffffffff00000000ull

/* ---- in-memory structures ---- */

/* What a (sub)cluster reads as, from its L2 entry (and bitmap). */
typedef enum Qcow2SubclusterType {
    QCOW2_SC_UNALLOCATED_PLAIN,   /* no host cluster: backing file or zeros */
    QCOW2_SC_UNALLOCATED_ALLOC,   /* extended L2: host cluster exists, subcluster unused */
    QCOW2_SC_ZERO_PLAIN,          /* reads zeros, no host cluster */
    QCOW2_SC_ZERO_ALLOC,          /* reads zeros, host cluster kept (preallocated) */
    QCOW2_SC_NORMAL,              /* data at the host offset */
    QCOW2_SC_COMPRESSED,          /* the whole cluster is compressed */
    QCOW2_SC_INVALID,             /* a contradictory entry: the image is corrupt */
} Qcow2SubclusterType;

typedef struct Qcow2Cache Qcow2Cache;

/* One internal snapshot as the snapshot table describes it. */
typedef struct Qcow2Snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id_str;
    char *name;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t vm_state_size;
    uint64_t disk_size;
    uint64_t icount;              /* UINT64_MAX: not recorded */
    uint32_t extra_data_size;     /* as read; rewritten as at least 24 on v3 */
    uint8_t *unknown_extra;       /* extra bytes past the ones this driver knows */
    uint32_t unknown_extra_size;
} Qcow2Snapshot;

/* A header extension kept as it was read, to be written back unchanged. */
typedef struct Qcow2HeaderExt {
    uint32_t type;
    uint32_t len;
    uint8_t *data;
} Qcow2HeaderExt;

/* Host clusters whose refcount drops once the L2/L1 tables no longer name them. */
typedef struct Qcow2PendingFree {
    uint64_t offset;
    uint64_t bytes;
    bool discard_file;            /* also release the space in bs->file when it hits 0 */
} Qcow2PendingFree;

typedef struct BDRVQcow2State {
    int qcow_version;
    int cluster_bits;
    uint32_t cluster_size;
    int l2_bits;                  /* log2 of entries per L2 table */
    uint32_t l2_size;             /* entries per L2 table */
    int l2_entry_bytes;           /* 8, or 16 with extended L2 */
    bool extended_l2;
    int subcluster_bits;
    uint32_t subcluster_size;
    int subclusters_per_cluster;  /* 1, or 32 with extended L2 */

    uint64_t size;                /* virtual size in bytes */

    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t *l1_table;           /* host byte order; l1_alloc entries allocated */
    uint32_t l1_alloc;

    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t refcount_table_size; /* entries */
    uint64_t *refcount_table;     /* host byte order */
    int refcount_order;
    int refcount_bits;
    uint64_t refcount_max;
    int refcount_block_bits;      /* log2 of entries per refcount block */
    uint32_t refcount_block_size; /* entries per refcount block */
    uint64_t free_cluster_index;  /* no free cluster below this one */
    /*
     * Compressed writes pack their data byte by byte into a host cluster;
     * this is where the next one may go (0: start a new cluster). The
     * cluster stays in use while any compressed cluster in it is
     * referenced (its refcount counts them), and the offset is forgotten
     * when the cluster is freed.
     */
    uint64_t free_byte_offset;
    bool compressed_tail;         /* compressed data written since the last flush */

    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t header_length;       /* as read (v2: 72) */
    uint8_t *header_tail;         /* bytes 104..header_length as read (v3), kept verbatim */
    uint8_t compression_type;

    /* Compressed-cluster geometry. */
    int csize_shift;
    uint64_t csize_mask;
    uint64_t cluster_offset_mask;

    Qcow2Cache *l2_cache;
    Qcow2Cache *refblock_cache;

    /* Snapshots. */
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t snapshots_size;      /* bytes the table occupies */
    Qcow2Snapshot *snapshots;

    /* Header extensions, in file order (every one, known or not). */
    Qcow2HeaderExt *exts;
    int nb_exts;
    uint64_t bitmap_dir_offset;   /* from the bitmaps extension; 0 when none */
    uint64_t bitmap_dir_size;
    uint32_t nb_bitmaps;

    /* Deferred refcount decrements (see the invariants in qcow2.c). */
    Qcow2PendingFree *pending;
    int nb_pending, pending_alloc;

    /* Ordering state: metadata written but not yet made durable by a flush. */
    bool refblocks_unsynced;
    bool l2_unsynced;

    /* Compressed read: the last decompressed cluster. */
    uint8_t *cbuf;                /* compressed input, 2 clusters */
    uint8_t *dbuf;                /* decompressed output, 1 cluster */
    uint64_t dbuf_entry;          /* the L2 entry dbuf holds, 0: none */
    void *zstd_dctx;
    void *deflate_stream;         /* z_stream kept between compressed writes */
    void *zstd_cctx;

    bool read_only;
    bool corrupt;                 /* found corrupt in this session: refuse writes */
    bool lazy_refcounts;          /* compat bit 0 and writable */
    bool dirty_set;               /* this session set the dirty bit */
    bool in_check;                /* check is recomputing refcounts: no lazy marking */
    /* What the open's repair of a dirty image fixed, for the first repairing check to report. */
    int open_leaks_fixed;
    int open_corruptions_fixed;
    bool metadata_prealloc;       /* data clusters far exceed the file's real allocation */
    bool metadata_prealloc_checked;
    /* Native reads in flight (qcow2_aio_preadv); atomic. Freeing a cluster waits for none. */
    unsigned aio_reads;
    bool file_aio_off;            /* the file takes no native reads; atomic */
} BDRVQcow2State;

/* ---- small helpers ---- */

static inline uint64_t qcow2_offset_into_cluster(const BDRVQcow2State *s, uint64_t off)
{
    return off & (s->cluster_size - 1);
}

static inline uint64_t qcow2_start_of_cluster(const BDRVQcow2State *s, uint64_t off)
{
    return off & ~(uint64_t)(s->cluster_size - 1);
}

static inline uint64_t qcow2_size_to_clusters(const BDRVQcow2State *s, uint64_t size)
{
    return (size >> s->cluster_bits) + ((size & (s->cluster_size - 1)) != 0);
}

/* Number of L1 entries needed for @size bytes of virtual disk. */
static inline uint64_t qcow2_size_to_l1(const BDRVQcow2State *s, uint64_t size)
{
    int shift = s->cluster_bits + s->l2_bits;
    return (size >> shift) + ((size & ((1ull << shift) - 1)) != 0);
}

static inline uint32_t qcow2_l2_index(const BDRVQcow2State *s, uint64_t guest)
{
    return (uint32_t)((guest >> s->cluster_bits) & (s->l2_size - 1));
}

static inline uint64_t qcow2_l1_index(const BDRVQcow2State *s, uint64_t guest)
{
    return guest >> (s->cluster_bits + s->l2_bits);
}

/* L2 entry @i of @table (raw, big-endian cluster). */
static inline uint64_t qcow2_l2_get(const BDRVQcow2State *s, const void *table, uint32_t i)
{
    return be64_load((const uint8_t *)table + (size_t)i * s->l2_entry_bytes);
}

static inline uint64_t qcow2_l2_get_bitmap(const BDRVQcow2State *s, const void *table,
                                           uint32_t i)
{
    if (!s->extended_l2) {
        return 0;
    }
    return be64_load((const uint8_t *)table + (size_t)i * 16 + 8);
}

static inline void qcow2_l2_set(const BDRVQcow2State *s, void *table, uint32_t i,
                                uint64_t entry)
{
    be64_store((uint8_t *)table + (size_t)i * s->l2_entry_bytes, entry);
}

static inline void qcow2_l2_set_bitmap(const BDRVQcow2State *s, void *table, uint32_t i,
                                       uint64_t bitmap)
{
    if (s->extended_l2) {
        be64_store((uint8_t *)table + (size_t)i * 16 + 8, bitmap);
    }
}

/* Host offset of a compressed entry, and the bytes its data may span. */
static inline void qcow2_parse_compressed(const BDRVQcow2State *s, uint64_t entry,
                                          uint64_t *coffset, uint64_t *csize)
{
    uint64_t nb_csectors = ((entry >> s->csize_shift) & s->csize_mask) + 1;
    *coffset = entry & s->cluster_offset_mask;
    *csize = nb_csectors * 512 - (*coffset & 511);
}

/* ---- qcow2.c ---- */

/* Create options, parsed and checked (shared by create and measure). */
typedef struct Qcow2CreateParams {
    uint64_t size;                /* rounded up to 512 */
    uint64_t cluster_size;
    int cluster_bits;
    int refcount_order;
    int version;
    bool lazy, extl2, zstd;
    BdrvPrealloc prealloc;
    const char *backing, *backing_fmt;   /* borrowed from the options */
} Qcow2CreateParams;

HIDDEN int qcow2_parse_create_opts(BdrvOpts *opts, Qcow2CreateParams *p, BdrvError *err);
/* ---- qcow2-measure.c ---- */
HIDDEN int qcow2_measure(BdrvOpts *opts, BlockDriverState *in_bs, uint64_t size,
                         BlockMeasureInfo *info, BdrvError *err);
/* -EFBIG (with a message) when @size needs a larger L1 table than QEMU allows. */
HIDDEN int qcow2_check_size_fits(const Qcow2CreateParams *p, uint64_t size, BdrvError *err);

HIDDEN Qcow2SubclusterType qcow2_get_subcluster_type(const BDRVQcow2State *s, uint64_t entry,
                                                     uint64_t bitmap, int sc);
/*
 * Record that the image is corrupt: on a writable image the corrupt bit is
 * set in the header so that no later writer trusts it, and this session
 * refuses further writes. Returns -EIO for the caller to pass on.
 */
HIDDEN int qcow2_signal_corruption(BlockDriverState *bs, const char *fmt, ...) PRINTF_FMT(2, 3);
/* Set the dirty bit (lazy refcounts) before the first metadata update. */
HIDDEN int qcow2_mark_dirty(BlockDriverState *bs);
/* Clear the dirty bit this session set (after a flush of everything). */
HIDDEN int qcow2_mark_clean(BlockDriverState *bs);
/* The feature-name table extension QEMU 7.2 writes into v3 headers, 8 entries of 48 bytes. */
#define QCOW2_FEATURE_TABLE_SIZE (8 * 48)
HIDDEN void qcow2_feature_table(uint8_t *table);
/* Resize (the driver's bdrv_truncate, for callers that hold the driver's lock). */
HIDDEN int qcow2_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                          BdrvError *err);
/* qcow2-amend.c: rebase, amend and commit support. */
HIDDEN int qcow2_change_backing_file(BlockDriverState *bs, const char *name, const char *format,
                                     BdrvError *err);
HIDDEN int qcow2_amend(BlockDriverState *bs, BdrvOpts *opts, BdrvError *err);
HIDDEN int qcow2_make_empty(BlockDriverState *bs);
/* Rewrite the whole header cluster from the state, keeping every extension. */
HIDDEN int qcow2_update_header(BlockDriverState *bs);
/* Reads of guest data (bdrv_preadv, and copy-on-write in the write path). */
HIDDEN int qcow2_read_guest(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
/* Flush every cache in dependency order and apply deferred frees. */
HIDDEN int qcow2_flush_all(BlockDriverState *bs);

/* ---- qcow2-cache.c ---- */

/* Wait until no native read of a data cluster is in flight (qcow2.c). */
HIDDEN void qcow2_drain_aio_reads(BlockDriverState *bs);
HIDDEN Qcow2Cache *qcow2_cache_create(int nb_tables, uint32_t table_size);
HIDDEN void qcow2_cache_destroy(Qcow2Cache *c);
/* Pin the table at @offset, reading it when not cached; -errno. */
HIDDEN int qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c, uint64_t offset, void **table);
/* Pin a table for @offset whose content the caller writes (no read). */
HIDDEN int qcow2_cache_get_empty(BlockDriverState *bs, Qcow2Cache *c, uint64_t offset,
                                 void **table);
HIDDEN void qcow2_cache_put(Qcow2Cache *c, void **table);
/* The cached table at @offset, or NULL; for shared reads only (neither pinned nor loaded). */
HIDDEN void *qcow2_cache_peek(Qcow2Cache *c, uint64_t offset);
HIDDEN void qcow2_cache_mark_dirty(Qcow2Cache *c, void *table);
/* Write every dirty table (dependencies first); no flush of bs->file. */
HIDDEN int qcow2_cache_write(BlockDriverState *bs, Qcow2Cache *c);
/* Forget the table at @offset without writing it (its cluster was freed). */
HIDDEN void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset);
/* Forget everything (after a failed write or a rebuild); dirty data is lost. */
HIDDEN void qcow2_cache_clear(Qcow2Cache *c);
HIDDEN bool qcow2_cache_is_dirty(const Qcow2Cache *c);
/* True when @offset is a table the cache holds (for overlap checks). */
HIDDEN bool qcow2_cache_holds(const Qcow2Cache *c, uint64_t offset);

/* ---- qcow2-refcount.c ---- */

HIDDEN int qcow2_refcount_init(BlockDriverState *bs, BdrvError *err);
HIDDEN void qcow2_refcount_close(BlockDriverState *bs);
/* Refcount of host cluster @cluster_index (0 past the table). */
HIDDEN int qcow2_get_refcount(BlockDriverState *bs, uint64_t cluster_index, uint64_t *refcount);
/* Add @addend to every cluster touched by [offset, offset+bytes); -errno. */
HIDDEN int qcow2_update_refcount(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                 int64_t addend);
/* Set cluster @cluster_index's refcount to @value. */
HIDDEN int qcow2_set_refcount(BlockDriverState *bs, uint64_t cluster_index, uint64_t value);
/*
 * A new refcount table and the refcount blocks for it, placed from cluster
 * @area_start_cluster on (free space only), covering @additional clusters
 * past the area; *end receives the offset past the area (may be NULL).
 */
HIDDEN int qcow2_refcount_area(BlockDriverState *bs, uint64_t area_start_cluster,
                               uint64_t additional, bool exact, uint64_t new_rt,
                               uint64_t new_block, uint64_t *end);
/* Allocate @bytes (rounded up to clusters) contiguously; returns the host offset or -errno. */
/*
 * Room for @len bytes of compressed data (@len < one cluster), packed
 * right after the previous compressed write, running on into the next host
 * cluster when that one is free to allocate. Every host cluster the data
 * touches counts it once in its refcount. Returns the host byte offset or
 * a negative errno.
 */
HIDDEN int64_t qcow2_alloc_compressed_bytes(BlockDriverState *bs, uint64_t len);
HIDDEN int64_t qcow2_alloc_clusters(BlockDriverState *bs, uint64_t bytes);
/* Queue a decrement of the clusters of [offset, offset+bytes) (applied by qcow2_process_frees). */
HIDDEN int qcow2_free_clusters_later(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                     bool discard_file);
/* Free an L2 entry's host cluster(s), deferred. */
HIDDEN int qcow2_free_l2_entry_later(BlockDriverState *bs, uint64_t entry, bool discard_file);
/*
 * Make the L2/L1 changes durable, then apply the queued decrements. Called
 * on flush and whenever the queue grows long.
 */
HIDDEN int qcow2_process_frees(BlockDriverState *bs);
/* Write back the refcount blocks and flush bs->file (the barrier before L2/L1 writes). */
HIDDEN int qcow2_refcounts_sync(BlockDriverState *bs);
/* Make L2 tables and L1 durable (refcounts first). */
HIDDEN int qcow2_l2_sync(BlockDriverState *bs);
/* Write header bytes at @offset in one request (one atomic sector), then flush. */
HIDDEN int qcow2_write_header_field(BlockDriverState *bs, uint64_t offset, const void *buf,
                                    size_t len);
/*
 * Refuse a data or metadata write at [offset, offset+bytes) of bs->file that
 * would land on metadata this driver knows; -EIO after signalling corruption.
 */
HIDDEN int qcow2_check_overlap(BlockDriverState *bs, uint64_t offset, uint64_t bytes);
/* Kinds of metadata a write of metadata may leave out of its overlap check (itself). */
enum {
    QCOW2_OL_ACTIVE_L1 = 1 << 0,
    QCOW2_OL_L2 = 1 << 1,
    QCOW2_OL_REFBLOCK = 1 << 2,
};
HIDDEN int qcow2_check_overlap_except(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                      unsigned ignore);
/* Whether that check would refuse the write; signals nothing (for shared writes). */
HIDDEN bool qcow2_overlaps_metadata(BlockDriverState *bs, uint64_t offset, uint64_t bytes);
/* Refcount entry @idx of refcount block @block (raw big-endian cluster). */
HIDDEN uint64_t qcow2_refblock_get(const BDRVQcow2State *s, const void *block, uint32_t idx);
HIDDEN void qcow2_refblock_set(const BDRVQcow2State *s, void *block, uint32_t idx,
                               uint64_t value);

/* ---- qcow2-cluster.c ---- */

/*
 * Map guest [offset, offset+*bytes): on return *bytes is the length sharing
 * one subcluster type and, for NORMAL/ZERO_ALLOC/UNALLOCATED_ALLOC,
 * contiguous host offsets starting at *host (for COMPRESSED, *host is the
 * raw L2 entry). Never crosses an L2 table.
 */
HIDDEN int qcow2_get_host_offset(BlockDriverState *bs, uint64_t offset, uint64_t *bytes,
                                 uint64_t *host, Qcow2SubclusterType *type);
/*
 * The same for a shared read (node's rw_lock held shared): only L2 tables
 * already cached are used and nothing is changed; -EAGAIN when the table
 * is not cached or the entry is malformed (the exclusive path then loads
 * the table, or reports the corruption).
 */
HIDDEN int qcow2_peek_host_offset(BlockDriverState *bs, uint64_t offset, uint64_t *bytes,
                                  uint64_t *host, Qcow2SubclusterType *type);
/*
 * For a shared write: *bytes (at most the given *bytes, never crossing an
 * L2 table) of guest data from @offset that a write may overwrite in place,
 * at contiguous host offsets from *host, with no change to any metadata:
 * clusters that are allocated, not shared with a snapshot (COPIED), not
 * flagged zero, in an L2 table already cached. -EAGAIN when the cluster at
 * @offset is not such a cluster (the exclusive path then writes).
 */
HIDDEN int qcow2_peek_in_place(BlockDriverState *bs, uint64_t offset, uint64_t *bytes,
                               uint64_t *host);
/* Read one compressed cluster (L2 entry @entry) into s->dbuf. */
HIDDEN int qcow2_decompress_cluster(BlockDriverState *bs, uint64_t entry);
/* Guest write of @qiov at @offset (512-aligned), allocating as needed. */
HIDDEN int qcow2_write_guest(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
/*
 * Write one cluster compressed: @offset is cluster-aligned and @qiov holds
 * the whole cluster (less only for the image's last, partial cluster).
 * Data that does not shrink is written uncompressed instead.
 */
HIDDEN int qcow2_write_compressed(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
/* Release the compression streams compressed writes keep. */
HIDDEN void qcow2_compress_close(BDRVQcow2State *s);
/* Zero [offset, offset+bytes) with zero flags where whole clusters allow it. */
HIDDEN int qcow2_zero_guest(BlockDriverState *bs, uint64_t offset, uint64_t bytes, bool unmap);
/* Discard whole clusters of [offset, offset+bytes), QEMU's way (see qcow2.c). */
HIDDEN int qcow2_discard_guest(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                               bool full_discard);
/* Make the L1 table at least @min_size entries (a new table; the old one freed). */
HIDDEN int qcow2_grow_l1_table(BlockDriverState *bs, uint64_t min_size);
/* Write L1 entries [first, first+count) of the active table to disk. */
HIDDEN int qcow2_write_l1_entries(BlockDriverState *bs, uint32_t first, uint32_t count);
/* Allocate L2 tables and data clusters for [offset, offset+bytes) (metadata preallocation). */
HIDDEN int qcow2_preallocate(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                             BdrvPrealloc mode);
/*
 * Grow with falloc/full preallocation as QEMU lays it out: a new refcount
 * structure past the last used cluster, then the data of the new area in
 * one contiguous run, then the L2 tables where they fit.
 */
HIDDEN int qcow2_preallocate_data(BlockDriverState *bs, uint64_t old_size, uint64_t new_size,
                                  BdrvPrealloc mode);
/* Drop every cluster mapping at or past guest offset @new_size (shrink). */
HIDDEN int qcow2_shrink_mappings(BlockDriverState *bs, uint64_t new_size);

/* ---- qcow2-check.c ---- */

HIDDEN int qcow2_check(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err);

/* ---- qcow2-snapshot.c ---- */

HIDDEN int qcow2_read_snapshots(BlockDriverState *bs, BdrvError *err);
/* Write the snapshot table again (complete entries) into new clusters. */
HIDDEN int qcow2_rewrite_snapshot_table(BlockDriverState *bs);
/* qcow2-info.c: the facts qb_info_image_specific_get returns (bitmaps listed). */
HIDDEN int qcow2_get_specific_info(BlockDriverState *bs, QBlockSpecificInfo *info,
                                   BdrvError *err);
HIDDEN void qcow2_free_snapshots(BlockDriverState *bs);

/*
 * Internal snapshots: the driver's snapshot callbacks (the generic layer's
 * checks come first); the white-box tests call them directly too.
 */
/* The snapshot list; *out is malloc'ed (bdrv_snapshot_list_free), *count entries. */
HIDDEN int qcow2_snapshot_list(BlockDriverState *bs, BdrvSnapshotInfo **out, int *count);
/* Take a snapshot of the active state named @name (id chosen as QEMU does). */
HIDDEN int qcow2_snapshot_create(BlockDriverState *bs, const char *name, BdrvError *err);
/* Make the snapshot whose id or name is @id_or_name the active state. */
HIDDEN int qcow2_snapshot_goto(BlockDriverState *bs, const char *id_or_name, BdrvError *err);
/* Delete the snapshot whose id or name is @id_or_name. */
HIDDEN int qcow2_snapshot_delete(BlockDriverState *bs, const char *id_or_name, BdrvError *err);

#endif /* BLOCK_QCOW2_H */
