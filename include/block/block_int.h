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

#define BDRV_MAX_BACKING_DEPTH    256    /* deeper chains are refused (loops end there too) */

struct BlockDriver {
    const char *format_name;        /* "raw", "qcow2", "file" ... */
    int instance_size;              /* bytes of bs->opaque, zeroed before open */
    bool is_protocol;               /* a protocol driver: opens a location, not a child */
    /*
     * Callbacks may run concurrently on one node from several threads. When
     * false, the generic layer serialises every callback of a node under
     * bs->lock (correct, not parallel); such a driver may still drop the
     * lock around a transfer that uses none of its state, as qcow2's guest
     * reads do (block/qcow2.c, read_data).
     */
    bool thread_safe;
    /*
     * Formats with metadata (qcow2, qed...) do not let another writer share
     * their file while they hold it read-write; raw does.
     */
    bool shares_write;
    bool supports_backing;          /* the format can record a backing file */

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
    int (*bdrv_pwritev)(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
    /* Write zeros over a range, ideally without data. NULL: a zeroed buffer is written. */
    int (*bdrv_pwrite_zeroes)(BlockDriverState *bs, uint64_t offset, uint64_t bytes);
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
    /* Consistency check, repairing per @fix (BDRV_FIX_*). NULL: -ENOTSUP. */
    int (*bdrv_check)(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err);

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
};

/* The drivers the generic layer knows (block/<fmt>.c). */
extern const BlockDriver bdrv_file HIDDEN;
extern const BlockDriver bdrv_raw HIDDEN;
extern const BlockDriver bdrv_qcow2 HIDDEN;
extern const BlockDriver bdrv_qed HIDDEN;
extern const BlockDriver bdrv_qcow HIDDEN;
extern const BlockDriver bdrv_cow HIDDEN;
extern const BlockDriver bdrv_vdi HIDDEN;
extern const BlockDriver bdrv_vpc HIDDEN;
extern const BlockDriver bdrv_vmdk HIDDEN;

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
