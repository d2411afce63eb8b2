/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * block_int.h: what a driver implements (BlockDriver) and the state the
 * generic layer keeps for every open node (BlockDriverState).
 *
 * Drivers are const structs listed in one table in block/block.c; that
 * table is also the probe order. A format driver reads and writes its
 * container only through bs->file (bdrv_pread/bdrv_pwritev...), never with
 * a file descriptor, so that every format runs over every protocol.
 */
#ifndef BLOCK_BLOCK_INT_H
#define BLOCK_BLOCK_INT_H

#include <limits.h>
#include <pthread.h>

#include "block/block.h"

/*
 * Permissions a node takes on its protocol file, and those it lets others
 * take. The bit numbers are QEMU's: on the file protocol, permission bit n
 * held is shown by a shared lock on byte 100+n, and a permission not shared
 * by a shared lock on byte 200+n, so QEMU's tools and libqblock see each
 * other's use of an image.
 */
#define BLK_PERM_CONSISTENT_READ  0x01
#define BLK_PERM_WRITE            0x02
#define BLK_PERM_WRITE_UNCHANGED  0x04
#define BLK_PERM_RESIZE           0x08
#define BLK_PERM_GRAPH_MOD        0x10   /* never locked; kept for the bit numbering */
#define BLK_PERM_ALL              0x1f

/* BlockDriver.caps: what a format can do that no callback's presence tells. */
#define BDRV_CAP_SHRINK              0x01  /* bdrv_truncate may make the image smaller */
#define BDRV_CAP_REPAIR              0x02  /* bdrv_check can repair (BDRV_FIX_*) */
#define BDRV_CAP_COMPRESSED_READ     0x04  /* reads compressed clusters or grains */
#define BDRV_CAP_COMPRESSED_WRITE    0x08  /* writes compressed data (some subformat) */
#define BDRV_CAP_INTERNAL_SNAPSHOTS  0x10  /* images may hold internal snapshots, kept intact */

#define BDRV_MAX_BACKING_DEPTH    256    /* deeper chains are refused (loops end there too) */

struct BlockDriver {
    const char *format_name;        /* "raw", "qcow2", "file" ... */
    int instance_size;              /* bytes of bs->opaque, zeroed before open */
    bool is_protocol;               /* a protocol driver: opens a location, not a child */
    /*
     * Callbacks may run concurrently on one node from several threads. When
     * false, the generic layer serialises every callback of a node under
     * bs->lock (correct, not parallel); such a driver may still let reads
     * run in parallel through bdrv_preadv_shared.
     */
    bool thread_safe;
    /*
     * Formats with metadata (qcow2, qed...) do not let another writer share
     * their file while they hold it read-write; raw does.
     */
    bool shares_write;
    bool supports_backing;          /* the format can record a backing file */
    /*
     * What the format can do beyond what the presence of a callback below
     * already says (BDRV_CAP_*). qb_fmt_get_caps reports these together
     * with the callbacks, and the generic layer refuses with -ENOTSUP what
     * a driver does not claim (a shrink without BDRV_CAP_SHRINK, a repair
     * without BDRV_CAP_REPAIR), so that a claim and the behaviour agree.
     */
    unsigned caps;

    /* Score 0..100 of how surely @buf (the first bytes of the file) is this
     * format; may be NULL (never probed). */
    int (*bdrv_probe)(const uint8_t *buf, int buf_size, const char *filename);

    /*
     * Open. A format driver finds bs->file open; it sets bs->total_sectors,
     * and where the image names one, bs->backing_file / bs->backing_format.
     * A protocol driver opens bs->filename itself. Returns 0 or -errno with
     * @err set. On failure bdrv_close is not called: clean up before
     * returning. Required.
     */
    int (*bdrv_open)(BlockDriverState *bs, int flags, BdrvError *err);
    /* Release everything open acquired. Required. */
    void (*bdrv_close)(BlockDriverState *bs);

    /*
     * Create an image at @filename from validated @opts (every option of
     * create_opts is present or defaulted). Returns 0 or -errno with @err
     * set. NULL: the format cannot be created.
     */
    int (*bdrv_create)(const char *filename, BdrvOpts *opts, int flags, BdrvError *err);
    const BdrvOptDesc *create_opts;

    /*
     * Data transfer, byte-based. For formats the generic layer guarantees
     * offset and qiov->size are multiples of 512 and inside the image.
     * Return 0 (the whole request done) or -errno. Required (write may be
     * NULL for read-only formats: -ENOTSUP).
     */
    int (*bdrv_preadv)(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
    /*
     * May be NULL; only for drivers that are not thread_safe. A read that
     * runs with bs->rw_lock held shared: concurrently with other such
     * reads, never with any other callback of the node (those hold
     * bs->rw_lock exclusively as well as bs->lock), so it may read the
     * driver's state but must change none of it (atomic hints such as a
     * cache's recency aside). Returns 0, a negative errno, or -EAGAIN when
     * it cannot serve the read without changing state (a metadata table not
     * cached, say): the generic layer then runs bdrv_preadv under the
     * exclusive locks. Bytes it has already put into @qiov do not matter.
     */
    int (*bdrv_preadv_shared)(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
    int (*bdrv_pwritev)(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
    /*
     * May be NULL; only for drivers with bdrv_preadv_shared. The same for a
     * write: it runs with bs->rw_lock held shared, concurrently with other
     * shared reads and writes, and may write data whose place it finds in
     * the driver's state but change none of that state; -EAGAIN sends the
     * whole request to bdrv_pwritev under the exclusive locks (which may
     * rewrite bytes this one already wrote: callers that overlap their
     * writes order them themselves, as for any concurrent writes).
     */
    int (*bdrv_pwritev_shared)(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
    /*
     * Space a new image of this format needs (qemu-img measure), with the
     * create options @opts (validated, defaults filled), for a virtual
     * disk of @size bytes holding the data of @in_bs (its whole chain;
     * NULL: an empty image; @size is then the options' size rounded up to
     * 512). NULL: the format cannot tell (-ENOTSUP).
     */
    int (*bdrv_measure)(BdrvOpts *opts, BlockDriverState *in_bs, uint64_t size,
                        BlockMeasureInfo *info, BdrvError *err);
    /*
     * Store one cluster compressed: @offset is a multiple of the cluster
     * size (bdrv_get_info) and @qiov holds the whole cluster, or the rest
     * of the image for its last, partial cluster. Data that does not
     * shrink may be stored uncompressed. NULL: the format cannot store
     * compressed data (-ENOTSUP).
     */
    int (*bdrv_pwritev_compressed)(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
    /* Write zeros over a range, ideally without data. NULL: a zeroed buffer is written. */
    int (*bdrv_pwrite_zeroes)(BlockDriverState *bs, uint64_t offset, uint64_t bytes);
    /*
     * The same, but the driver may also release the host space behind the
     * range (BDRV_REQ_MAY_UNMAP), as long as it reads as zeros afterwards.
     * NULL: bdrv_pwrite_zeroes is used, which keeps what is allocated.
     */
    int (*bdrv_pwrite_zeroes_unmap)(BlockDriverState *bs, uint64_t offset, uint64_t bytes);
    /*
     * Start an asynchronous read and reap completed ones: see
     * bdrv_aio_preadv and bdrv_aio_poll in block.h. Nothing serialises
     * the callbacks; a driver that is not thread_safe has bdrv_aio_preadv
     * called under the node's rw_lock held shared, with the rules of
     * bdrv_preadv_shared. NULL: the node has no asynchronous path
     * (-ENOTSUP; polling does nothing).
     */
    int (*bdrv_aio_preadv)(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov,
                           int notify_fd, BdrvAioCompletionFunc *cb, void *opaque);
    void (*bdrv_aio_poll)(BlockDriverState *bs);
    /* Make completed writes durable. NULL: nothing to do at this level. */
    int (*bdrv_flush)(BlockDriverState *bs);
    /* Release a range. NULL: discard is ignored (returns 0). */
    int (*bdrv_pdiscard)(BlockDriverState *bs, uint64_t offset, uint64_t bytes);

    /*
     * Allocation status of [offset, offset+bytes) in this node only: returns
     * BDRV_BLOCK_* flags or -errno, and *pnum, 1..bytes bytes sharing them
     * (multiples of 512 on formats). With OFFSET_VALID, *map is the offset
     * in *file. NULL: the whole range is DATA|ALLOCATED.
     */
    int (*bdrv_block_status)(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, BlockDriverState **file);

    /* Size in bytes. NULL: bs->total_sectors * 512. */
    int64_t (*bdrv_getlength)(BlockDriverState *bs);
    /* Grow or shrink to @offset bytes. NULL: -ENOTSUP. */
    int (*bdrv_truncate)(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                         BdrvError *err);
    /* 1 when never-written areas read as zeros. NULL: 0 (formats with a
     * backing file answer 0 whatever this says). */
    int (*bdrv_has_zero_init)(BlockDriverState *bs);
    /* Host bytes used. NULL: the sum over bs->file (and extents it knows). */
    int64_t (*bdrv_get_allocated_file_size)(BlockDriverState *bs);
    /* 1 when marked dirty / needing a check. NULL: 0. */
    int (*bdrv_is_dirty)(BlockDriverState *bs);
    /* Generic facts. NULL: zeros. */
    int (*bdrv_get_info)(BlockDriverState *bs, BlockDriverInfo *bdi);
    /*
     * Format-specific facts of this node into @info, which the generic
     * layer zeroed: the driver sets info->fmt_type and its union member,
     * allocating strings and arrays with malloc. Returns 0 or -errno with
     * @err set; on failure the generic layer frees what was filled (so the
     * pointers set so far must be valid or NULL). NULL: the format has no
     * specific facts (-ENOTSUP).
     */
    int (*bdrv_get_specific_info)(BlockDriverState *bs, QBlockSpecificInfo *info,
                                  BdrvError *err);
    /*
     * Rewrite the backing file reference in the image's metadata: @name as
     * it is to be recorded (NULL: the image gets no backing file) and
     * @format the backing format to record with it (NULL: none, or the
     * format cannot record one). On success the driver updates
     * bs->backing_file and bs->backing_format; the generic layer has
     * refused read-only nodes. Returns 0 or -errno with @err set (-ENOSPC
     * when the name does not fit where the format keeps it). NULL: the
     * format cannot record a backing file (-ENOTSUP).
     */
    int (*bdrv_change_backing_file)(BlockDriverState *bs, const char *name, const char *format,
                                    BdrvError *err);
    /*
     * Change options of an existing image, as qemu-img amend does: @opts
     * holds the options as given (not validated: the driver knows which of
     * its create options it can change and refuses the others with
     * -EINVAL). The node is writable. Returns 0 or -errno with @err set.
     * NULL: the format has no amendable options (-ENOTSUP).
     */
    int (*bdrv_amend)(BlockDriverState *bs, BdrvOpts *opts, BdrvError *err);
    /*
     * Drop every cluster this layer allocates, so that the whole image
     * reads from its backing file again (what qemu-img commit does to the
     * top image afterwards). The node is writable. Returns 0 or -errno.
     * NULL: the format cannot, and the image is left as it is.
     */
    int (*bdrv_make_empty)(BlockDriverState *bs);
    /* Consistency check, repairing per @fix (BDRV_FIX_*). NULL: -ENOTSUP. */
    int (*bdrv_check)(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err);

    /*
     * Internal snapshots; all NULL for formats without them (the generic
     * layer then answers -ENOTSUP). The generic layer has already refused
     * read-only nodes (create, goto, delete), names longer than
     * BDRV_SNAPSHOT_NAME_MAX, and NULL strings. list: a malloc'ed array
     * (strings malloc'ed too, see bdrv_snapshot_list_free) or NULL when
     * empty, 0 or -errno. create/goto/delete: 0 or -errno with @err set;
     * -ENOENT when no snapshot has @id_or_name as its id or name.
     */
    int (*bdrv_snapshot_list)(BlockDriverState *bs, BdrvSnapshotInfo **list, int *count);
    int (*bdrv_snapshot_create)(BlockDriverState *bs, const char *name, BdrvError *err);
    int (*bdrv_snapshot_goto)(BlockDriverState *bs, const char *id_or_name, BdrvError *err);
    int (*bdrv_snapshot_delete)(BlockDriverState *bs, const char *id_or_name, BdrvError *err);

    /*
     * Protocols only: take @perm and forbid others what is outside @shared
     * (BLK_PERM_*), failing with -ELOCKED and @err naming the image when
     * another process conflicts. NULL: no locking on this protocol.
     */
    int (*bdrv_set_perm)(BlockDriverState *bs, uint64_t perm, uint64_t shared, BdrvError *err);
    /* Protocols only: create the file (empty, or @size bytes with @prealloc). */
    int (*bdrv_create_file)(const char *filename, uint64_t size, BdrvPrealloc prealloc,
                            int flags, BdrvError *err);
};

struct BlockDriverState {
    const BlockDriver *drv;
    void *opaque;                       /* drv->instance_size bytes */
    BlockDriverState *file;             /* protocol child of a format; NULL on protocols */
    BlockDriverState *backing;          /* opened by the generic layer; may be NULL */

    char filename[PATH_MAX];            /* as given to open */
    char backing_file[PATH_MAX];        /* as recorded in the image ("" when none) */
    char backing_format[32];            /* as recorded ("" when none) */
    char full_backing_filename[PATH_MAX];/* resolved against filename's folder */

    int open_flags;                     /* BDRV_O_* */
    bool read_only;
    bool probed;                        /* the format was guessed, not given */
    bool encrypted;
    int64_t total_sectors;              /* set by format drivers' open */
    /*
     * Requests to this node are multiples of this, at offsets that are: 512
     * on formats (set before open; a format that passes byte ranges through,
     * as raw does, lowers it to 1 in its open), 1 on protocols.
     */
    uint32_t request_alignment;

    pthread_mutex_t lock;               /* serialises callbacks of a non-thread_safe driver */
    /*
     * Drivers with bdrv_preadv_shared: their shared reads hold rw_lock
     * shared; whoever holds bs->lock also holds rw_lock exclusively, taken
     * when lock_depth (guarded by bs->lock, which is recursive) goes 0 -> 1,
     * and is named in lock_owner (atomic; 0 when nobody) so that a read
     * from inside a callback does not wait for its own thread.
     */
    pthread_rwlock_t rw_lock;
    int lock_depth;
    uintptr_t lock_owner;

    const BdrvPolicy *policy;           /* the open's limits (owned by the caller), or NULL */
    uint64_t metadata_bytes;            /* charged by bdrv_policy_charge_metadata */
};

/* The drivers the generic layer knows (block/<fmt>.c). */
extern const BlockDriver bdrv_file HIDDEN;
extern const BlockDriver bdrv_nbd HIDDEN;
extern const BlockDriver bdrv_rbd HIDDEN;
extern const BlockDriver bdrv_raw HIDDEN;
extern const BlockDriver bdrv_qcow2 HIDDEN;
extern const BlockDriver bdrv_qed HIDDEN;
extern const BlockDriver bdrv_qcow HIDDEN;
extern const BlockDriver bdrv_cow HIDDEN;
extern const BlockDriver bdrv_vdi HIDDEN;
extern const BlockDriver bdrv_vpc HIDDEN;
extern const BlockDriver bdrv_vmdk HIDDEN;
extern const BlockDriver bdrv_mem HIDDEN;

/*
 * The in-memory protocol (block/mem.c), for fuzz targets and tests: files
 * named BDRV_MEM_PREFIX... live in a process-wide table. register copies
 * @data under @name (replacing a file of that name; -EINVAL for a name
 * without the prefix or a file over the size limit, -ENOMEM); clear drops every
 * file (nodes still open keep theirs until closed). While the table is not
 * empty, bdrv_file_open and bdrv_create_file send prefixed names to it
 * (bdrv_mem_handles says so). Files never grow past set_max_len bytes
 * (-ENOSPC), 256 MiB by default. In exclusive mode (a sandbox for fuzzing)
 * every name goes to the table, so a hostile image naming "/dev/zero" or
 * "/etc/passwd" as its backing file or extent gets -ENOENT, never a real file.
 */
#define BDRV_MEM_PREFIX "mem:"
HIDDEN int bdrv_mem_register(const char *name, const void *data, size_t len);
HIDDEN void bdrv_mem_clear(void);
HIDDEN void bdrv_mem_set_max_len(size_t max_len);
HIDDEN bool bdrv_mem_handles(const char *filename);
HIDDEN void bdrv_mem_set_exclusive(bool exclusive);

/*
 * A new node of @drv for @filename with @flags, its opaque zeroed, not yet
 * opened (NULL with @err set on failure), and its release when open
 * failed; an opened node is released with bdrv_close.
 */
HIDDEN BlockDriverState *bdrv_new(const BlockDriver *drv, const char *filename, int flags,
                                  BdrvError *err);
HIDDEN void bdrv_free(BlockDriverState *bs);

/*
 * File protocol helpers for snapshot mode: make a new, empty, uniquely
 * named file in the temporary folder (its name in @path), and remove a file.
 */
HIDDEN int bdrv_file_make_temp(char *path, size_t size);
HIDDEN int bdrv_file_unlink(const char *path);

/*
 * Permissions node @bs (a format, opened with @flags) takes on its file and
 * what it shares; block/perm.c, used by open and create.
 */
HIDDEN void bdrv_file_perms(const BlockDriver *drv, int flags, uint64_t *perm,
                            uint64_t *shared);

#endif /* BLOCK_BLOCK_INT_H */
