/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * block.h: the generic block layer's interface, as the facade (libqblock/)
 * and the format drivers call it.
 *
 * Errors are negative errno values. Open, create, truncate and check also
 * fill a BdrvError with a message naming the image and what was wrong.
 * The errno values below carry a library meaning the facade relies on.
 */
#ifndef BLOCK_BLOCK_H
#define BLOCK_BLOCK_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/util.h"
/*
 * The format-specific facts are filled by the drivers straight into the
 * public QBlockSpecificInfo (as QEMU's drivers fill the QAPI type it
 * reports): a private copy of that tree of per-format structs would only
 * be translated member by member in the facade. Only types come from the
 * public header, never a qb_* function.
 */
#include "libqblock/libqblock-types.h"

/* Library meanings of some errno values (negated when returned). */
#define EBADIMAGE   EUCLEAN   /* the image is malformed or corrupt */
#define ELOCKED     EAGAIN    /* another process holds a conflicting lock */
#define EPOLICY     EKEYREJECTED  /* a limit of the open policy (BdrvPolicy) was hit */
/* ENOTSUP: unsupported format/feature; EROFS: write to a read-only image;
 * ERANGE: request outside the image; EINVAL: bad argument; ENOMEM. */

typedef struct BlockDriver BlockDriver;
typedef struct BlockDriverState BlockDriverState;

/* ---- errors ---- */

typedef struct BdrvError {
    int code;            /* negative errno; 0 while no error was set */
    char msg[1024];
} BdrvError;

/* Set @err (may be NULL) to @code and a formatted message; returns @code. */
HIDDEN int bdrv_error_set(BdrvError *err, int code, const char *fmt, ...) PRINTF_FMT(3, 4);
/* Prepend "prefix: " to the message already in @err (no-op when none). */
HIDDEN void bdrv_error_prefix(BdrvError *err, const char *fmt, ...) PRINTF_FMT(2, 3);
/*
 * A driver's description of why a request just failed with @code, kept for
 * the calling thread (requests return only an errno); the facade takes it
 * with bdrv_io_error_take, which copies it into @buf and returns true when
 * the last note of this thread is for @code, and forgets the note either way.
 */
HIDDEN void bdrv_io_error_note(int code, const char *fmt, ...) PRINTF_FMT(2, 3);
HIDDEN bool bdrv_io_error_take(int code, char *buf, size_t len);

/* ---- I/O vectors ---- */

typedef struct QBIOVector {
    struct iovec *iov;
    int niov;
    int nalloc;          /* 0: iov points at local (or foreign) storage */
    size_t size;         /* total bytes */
    struct iovec local;
} QBIOVector;

/* One buffer; never allocates, needs no destroy (destroy is harmless). */
HIDDEN void qiov_init_buf(QBIOVector *qiov, void *buf, size_t len);
/* An empty vector with room for @hint entries; -ENOMEM. */
HIDDEN int qiov_init(QBIOVector *qiov, int hint);
HIDDEN int qiov_add(QBIOVector *qiov, void *base, size_t len);
/* @dst describes @len bytes of @src from @offset (the same memory). */
HIDDEN int qiov_init_slice(QBIOVector *dst, const QBIOVector *src, size_t offset, size_t len);
HIDDEN void qiov_destroy(QBIOVector *qiov);
HIDDEN size_t qiov_to_buf(const QBIOVector *qiov, size_t offset, void *buf, size_t len);
HIDDEN size_t qiov_from_buf(QBIOVector *qiov, size_t offset, const void *buf, size_t len);
HIDDEN size_t qiov_memset(QBIOVector *qiov, size_t offset, int c, size_t len);
HIDDEN bool qiov_is_zero(const QBIOVector *qiov);

/* ---- create options ---- */

typedef enum BdrvOptType {
    BDRV_OPT_STRING,
    BDRV_OPT_BOOL,
    BDRV_OPT_SIZE,       /* bytes; k/M/G/T/P/E suffixes */
    BDRV_OPT_NUMBER,     /* plain unsigned integer */
} BdrvOptType;

/* A driver's table of create options; ends with a zeroed entry. */
typedef struct BdrvOptDesc {
    const char *name;
    BdrvOptType type;
    const char *def;     /* default as text, NULL: none */
    const char *help;
    const char *const *choices;  /* STRING only: NULL-terminated allowed values, or NULL */
    unsigned flags;      /* BDRV_OPT_F_* */
} BdrvOptDesc;

/*
 * BdrvOptDesc.flags. PROTOCOL: qemu-img lists this option among the file
 * protocol's options, not the format's (our file protocol has no create
 * options of its own, so the format takes it); a listing shaped like
 * qemu-img's shows it only where qemu-img shows protocol options.
 */
#define BDRV_OPT_F_PROTOCOL  0x1

/* A set of name=value pairs, validated against a BdrvOptDesc table. */
typedef struct BdrvOpts {
    struct BdrvOpt { char *name; char *value; } *v;
    int n, cap;
} BdrvOpts;

HIDDEN void bdrv_opts_init(BdrvOpts *o);
HIDDEN void bdrv_opts_free(BdrvOpts *o);
/* Set (or replace) name=value; -ENOMEM. */
HIDDEN int bdrv_opts_set(BdrvOpts *o, const char *name, const char *value);
HIDDEN int bdrv_opts_set_u64(BdrvOpts *o, const char *name, uint64_t value);
/* The value as given, or NULL. */
HIDDEN const char *bdrv_opts_get(const BdrvOpts *o, const char *name);
/* Parse "k=v,k=v" (",," is a literal comma) into @o; -EINVAL with a message. */
HIDDEN int bdrv_opts_parse(BdrvOpts *o, const char *str, BdrvError *err);
/*
 * Check every option of @o against @desc (unknown names, bad values, values
 * outside choices are -EINVAL) and add the defaults of those missing.
 */
HIDDEN int bdrv_opts_validate(BdrvOpts *o, const BdrvOptDesc *desc, const char *fmt_name,
                              BdrvError *err);
/* Typed getters for validated options; absent (and no default) gives 0/false/NULL. */
HIDDEN uint64_t bdrv_opts_get_size(const BdrvOpts *o, const char *name);
HIDDEN bool bdrv_opts_get_bool(const BdrvOpts *o, const char *name);
HIDDEN const char *bdrv_opts_get_str(const BdrvOpts *o, const char *name); /* NULL for "" too */

HIDDEN int bdrv_parse_size(const char *str, uint64_t *out);
HIDDEN int bdrv_parse_bool(const char *str, bool *out);
/*
 * UUIDs in their text form, 8-4-4-4-12 hex digits, to and from 16 bytes in
 * the order the text reads (RFC 4122 network order).
 */
HIDDEN int bdrv_uuid_parse(const char *str, uint8_t out[16]);
HIDDEN void bdrv_uuid_format(const uint8_t u[16], char out[37]);

/* ---- open flags (the public LIBQBLOCK_O_* values, plus internal ones) ---- */

#define BDRV_O_RDWR        0x0002
#define BDRV_O_SNAPSHOT    0x0008
#define BDRV_O_NOCACHE     0x0020
#define BDRV_O_CACHE_WB    0x0040
#define BDRV_O_NATIVE_AIO  0x0080
#define BDRV_O_NO_BACKING  0x0100
#define BDRV_O_NO_FLUSH    0x0200
#define BDRV_O_FORCE_SHARE 0x0400    /* share everything, check no conflicts (qemu-img -U) */
#define BDRV_O_PUBLIC_MASK 0x07ea    /* the flags a public caller may pass (LIBQBLOCK_O_ALL_FLAGS) */
#define BDRV_O_CREATE      0x20000   /* protocol: create/truncate the file (O_CREAT) */
#define BDRV_O_NO_LOCK     0x40000   /* protocol: take no locks at all */

/* ---- preallocation ---- */

typedef enum BdrvPrealloc {
    BDRV_PREALLOC_OFF = 0,
    BDRV_PREALLOC_METADATA,
    BDRV_PREALLOC_FALLOC,
    BDRV_PREALLOC_FULL,
} BdrvPrealloc;

HIDDEN int bdrv_parse_prealloc(const char *str, BdrvPrealloc *out);

/* ---- block status ---- */

#define BDRV_BLOCK_DATA          0x01  /* reads come from stored data */
#define BDRV_BLOCK_ZERO          0x02  /* reads return zeros */
#define BDRV_BLOCK_OFFSET_VALID  0x04  /* *map is the offset in *file */
#define BDRV_BLOCK_ALLOCATED     0x10  /* this layer decides the content (no backing read) */
#define BDRV_BLOCK_EOF           0x20  /* the range reaches the end of the image */
#define BDRV_BLOCK_HOLE          0x40  /* with ZERO: a hole in the host storage, nothing stored */

/* ---- check ---- */

typedef struct BdrvCheckResult {
    int corruptions;
    int leaks;
    int check_errors;
    int corruptions_fixed;
    int leaks_fixed;
    int64_t image_end_offset;
    uint64_t allocated_clusters;
    uint64_t total_clusters;
    uint64_t fragmented_clusters;
    uint64_t compressed_clusters;
} BdrvCheckResult;

#define BDRV_FIX_LEAKS   1
#define BDRV_FIX_ERRORS  2

/* ---- generic information ---- */

/* What a new image needs on disk (qemu-img measure); bytes. */
typedef struct BlockMeasureInfo {
    uint64_t required;          /* for the data measured, metadata included */
    uint64_t fully_allocated;   /* with every cluster of the virtual disk allocated */
    bool has_bitmaps;           /* the target could carry the source's persistent bitmaps */
    uint64_t bitmaps;           /* their size, when has_bitmaps */
} BlockMeasureInfo;

typedef struct BlockDriverInfo {
    int cluster_size;      /* 0 when the format has no clusters */
    bool is_dirty;
} BlockDriverInfo;

/* ---- internal snapshots ---- */

/* The longest snapshot name create accepts: the longest QEMU's tools make. */
#define BDRV_SNAPSHOT_NAME_MAX   255
/* icount of a snapshot that records none (taken outside record/replay). */
#define BDRV_SNAPSHOT_NO_ICOUNT  UINT64_MAX

/* One internal snapshot, as bdrv_snapshot_list reports it (format-independent). */
typedef struct BdrvSnapshotInfo {
    char *id;                  /* the id string the image records ("1", "2" ...) */
    char *name;                /* the name ("tag"); may be "" */
    uint64_t vm_state_size;    /* bytes of saved VM state; 0 for a disk-only snapshot */
    uint64_t disk_size;        /* virtual size when it was taken, bytes */
    uint32_t date_sec;         /* wall clock when it was taken, Unix time */
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;    /* guest clock when it was taken */
    uint64_t icount;           /* BDRV_SNAPSHOT_NO_ICOUNT when not recorded */
} BdrvSnapshotInfo;

/* ---- the generic layer ---- */

HIDDEN const BlockDriver *bdrv_find_format(const char *format_name);
HIDDEN const BlockDriver *bdrv_find_protocol(const char *protocol_name);
/* Every format driver, in probe order; *n receives the count. */
HIDDEN const BlockDriver *const *bdrv_format_list(int *n);

/*
 * Open @filename as @format (NULL: probe) with BDRV_O_* @flags. The
 * protocol layer (file) is opened below it and the backing chain, unless
 * BDRV_O_NO_BACKING, behind it.
 */
HIDDEN int bdrv_open(BlockDriverState **pbs, const char *filename, const char *format,
                     int flags, BdrvError *err);
/*
 * Open only the protocol layer of @filename, taking no locks (the generic
 * layer locks once it knows the format).
 */
HIDDEN int bdrv_file_open(BlockDriverState **pbs, const char *filename, int flags,
                          BdrvError *err);
/*
 * Open the protocol layer of a file that format @fmt uses (a new image
 * being created, an extent) with the locks @fmt takes on its files, so
 * that QEMU's tools and libqblock see each other's use of it.
 */
HIDDEN int bdrv_file_open_for(BlockDriverState **pbs, const char *filename,
                              const BlockDriver *fmt, int flags, BdrvError *err);
/*
 * What an open may do with an untrusted image (block/policy.c; the public
 * QBlockOpenPolicy, libqblock/policy.c). Every limit hit fails the open with
 * -EPOLICY and a message naming the limit. A NULL policy (internal opens:
 * create, measure...) has no limits beyond the drivers' own.
 */
typedef struct BdrvPolicy {
    bool allow_raw_probe;     /* probing may settle on raw when no format matches */
    bool allow_any_path;      /* backing files and extents may be anywhere */
    uint32_t max_chain_depth; /* backing files below the image; 0: only the hard cap */
    uint64_t max_metadata;    /* bytes of tables one image keeps in memory; 0: no limit */
    uint64_t max_descriptor;  /* bytes of a text descriptor (vmdk); 0: no limit */
    char **allowed_dirs;      /* canonical folders also allowed, NULL-terminated, or NULL */
} BdrvPolicy;

/* bdrv_open under @policy (may be NULL); children and backing files inherit it. */
HIDDEN int bdrv_open_policy(BlockDriverState **pbs, const char *filename, const char *format,
                            int flags, const BdrvPolicy *policy, BdrvError *err);
/*
 * Checks drivers and the generic layer make under bs->policy (no-ops
 * without one). path: @path, a @what ("backing file", "extent") that @bs
 * names, must be in the folder of @bs or an allowed one. metadata: charge
 * @bytes of tables @bs keeps in memory against the image's budget.
 * descriptor: a descriptor of @bytes. Each returns 0 or -EPOLICY with @err
 * naming the limit.
 */
HIDDEN int bdrv_policy_check_path(BlockDriverState *bs, const char *path, const char *what,
                                  BdrvError *err);
HIDDEN int bdrv_policy_charge_metadata(BlockDriverState *bs, uint64_t bytes, const char *what,
                                       BdrvError *err);
HIDDEN int bdrv_policy_check_descriptor(BlockDriverState *bs, uint64_t bytes, BdrvError *err);

/* Close @bs, its protocol layer and its backing chain; frees it. NULL is a no-op. */
HIDDEN void bdrv_close(BlockDriverState *bs);

/* Create @filename as @format with @opts (validated here against the driver's table). */
HIDDEN int bdrv_create(const char *format, const char *filename, BdrvOpts *opts, int flags,
                       BdrvError *err);
/*
 * Check @opts against @format's create options without changing them; 0
 * when they are valid or when this build has no driver for @format.
 */
/*
 * qemu-img measure: the space a new image of @format with create options
 * @opts (validated here) needs for the content of @in_bs, or, @in_bs NULL,
 * for an empty image of the options' size. -ENOTSUP for formats that
 * cannot tell.
 */
HIDDEN int bdrv_measure(const char *format, BdrvOpts *opts, BlockDriverState *in_bs,
                        BlockMeasureInfo *info, BdrvError *err);
HIDDEN int bdrv_check_create_opts(const char *format, const BdrvOpts *opts, BdrvError *err);
/* Create the protocol-level file itself (empty, or @size with @prealloc). */
HIDDEN int bdrv_create_file(const char *filename, uint64_t size, BdrvPrealloc prealloc,
                            int flags, BdrvError *err);

/*
 * Data transfer. Byte offsets; on a format (request_alignment 512) offset
 * and length must be multiples of 512. Return 0 or a negative errno. A
 * format driver reaches its container through these on bs->file.
 */
HIDDEN int bdrv_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
HIDDEN int bdrv_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
HIDDEN int bdrv_pread(BlockDriverState *bs, uint64_t offset, void *buf, size_t bytes);
HIDDEN int bdrv_pwrite(BlockDriverState *bs, uint64_t offset, const void *buf, size_t bytes);
/* pwrite followed by a flush of @bs (metadata updates that must be ordered). */
HIDDEN int bdrv_pwrite_sync(BlockDriverState *bs, uint64_t offset, const void *buf, size_t bytes);
/* Write zeros (drivers may do it without transferring a buffer). */
/*
 * Write @qiov at @offset compressed, cluster by cluster: @offset must be a
 * multiple of the format's cluster size and the length too, except where
 * the request ends at the end of the image. -ENOTSUP for formats without
 * compressed clusters, -EINVAL for a misaligned request.
 */
HIDDEN int bdrv_pwritev_compressed(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov);
HIDDEN int bdrv_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes);
/*
 * The same with BDRV_REQ_* @flags: with BDRV_REQ_MAY_UNMAP the format may
 * release the space behind the range instead of keeping it allocated.
 */
#define BDRV_REQ_MAY_UNMAP  0x1
HIDDEN int bdrv_pwrite_zeroes_flags(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                    int flags);
/* Sector forms, the facade's interface. */
HIDDEN int bdrv_readv(BlockDriverState *bs, int64_t sector_num, QBIOVector *qiov);
HIDDEN int bdrv_writev(BlockDriverState *bs, int64_t sector_num, QBIOVector *qiov);

HIDDEN int bdrv_flush(BlockDriverState *bs);

/*
 * Initialise a reader/writer lock that prefers writers (on glibc): a writer
 * waits only for the readers already in, not for those arriving after it.
 * Such a lock must never be taken shared twice by one thread. 0 or -1.
 */
HIDDEN int bdrv_rwlock_init_writer_first(pthread_rwlock_t *lock);

/*
 * Asynchronous reads straight to the protocol (Linux native AIO), for the
 * facade's asynchronous engine. bdrv_aio_preadv starts a read of @qiov at
 * @offset and returns 0; then @cb(@opaque, ret) runs exactly once, with 0,
 * -errno, or -EAGAIN meaning "not done: redo it with bdrv_preadv", on
 * whichever thread reaps the completion (bdrv_aio_poll, or a synchronous
 * request of the same node), and @notify_fd (an eventfd) is signalled when
 * the kernel completes it. Returns -ENOTSUP when the node never takes such
 * requests (no native AIO on its file), -EAGAIN when it cannot take this
 * one (unaligned for O_DIRECT, context full), or another -errno. @qiov must
 * stay valid until the callback. @cb may run with the node's locks held:
 * it must not issue requests to the node.
 */
typedef void BdrvAioCompletionFunc(void *opaque, int ret);
HIDDEN int bdrv_aio_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov,
                           int notify_fd, BdrvAioCompletionFunc *cb, void *opaque);
/* Run the callbacks of the asynchronous requests the kernel has completed, without waiting. */
HIDDEN void bdrv_aio_poll(BlockDriverState *bs);
HIDDEN int bdrv_pdiscard(BlockDriverState *bs, uint64_t offset, uint64_t bytes);

/*
 * Status of [offset, offset+bytes) in @bs alone: BDRV_BLOCK_* flags, with
 * *pnum (1..bytes, a multiple of 512 on formats) sharing them, and where
 * OFFSET_VALID, *map and *file tell where the data lives.
 */
HIDDEN int bdrv_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, BlockDriverState **file);
/*
 * Fill @qiov with guest range [@offset, +size) of @bs's backing file, as
 * an overlay reads where it has no data: never past the backing file's
 * end or @limit (bytes), zeros beyond them and when there is no backing
 * file. Returns 0 or -errno.
 */
HIDDEN int bdrv_read_backing(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov,
                             uint64_t limit);
/*
 * For a driver whose data at @host sits straight in @file: add ZERO to
 * the status @ret where @file reads zeros there (a hole, or past its end),
 * and shorten *@pnum to where @file's answer changes, as QEMU's map looks
 * through such data into the file. @ret is returned as it is when @file
 * cannot tell.
 */
HIDDEN int bdrv_status_look_through(BlockDriverState *file, uint64_t host, uint64_t *pnum,
                                    int ret);
/*
 * Walk the backing chain from @bs: the status of the first layer that
 * allocates the range (its depth in *depth, 0 = @bs), or, when none does,
 * ZERO without ALLOCATED and *depth = the depth of the last layer asked
 * (qemu-img map's convention).
 */
HIDDEN int bdrv_block_status_above(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                   uint64_t *pnum, uint64_t *map, BlockDriverState **file,
                                   int *depth);
/* 1 when [offset, +bytes) is allocated in @bs itself (not a hole), 0 not; *pnum as above. */
HIDDEN int bdrv_is_allocated(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum);

HIDDEN int64_t bdrv_getlength(BlockDriverState *bs);
HIDDEN const char *bdrv_get_format_name(const BlockDriverState *bs);
/* The alignment requests to @bs must have (1: any byte range; formats: 512). */
HIDDEN uint32_t bdrv_get_request_alignment(const BlockDriverState *bs);
/* The backing file name and format as the image records them ("" when none). */
HIDDEN const char *bdrv_get_backing_file(const BlockDriverState *bs);
HIDDEN const char *bdrv_get_backing_format(const BlockDriverState *bs);
HIDDEN bool bdrv_is_encrypted(const BlockDriverState *bs);
HIDDEN int bdrv_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                         BdrvError *err);
HIDDEN int bdrv_has_zero_init(BlockDriverState *bs);
HIDDEN int64_t bdrv_get_allocated_file_size(BlockDriverState *bs);
HIDDEN int bdrv_is_dirty(BlockDriverState *bs);
HIDDEN int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi);
HIDDEN int bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err);

/*
 * The format-specific facts of @bs itself into @info (zeroed first; strings
 * and arrays malloc'd, released with bdrv_specific_info_clear). Returns 0,
 * -ENOTSUP when the format has none, or -errno with @err set; on failure
 * @info holds nothing to free.
 */
HIDDEN int bdrv_get_specific_info(BlockDriverState *bs, QBlockSpecificInfo *info,
                                  BdrvError *err);
/* Free the strings and arrays in @info (per its fmt_type) and zero it. */
HIDDEN void bdrv_specific_info_clear(QBlockSpecificInfo *info);

/*
 * Internal snapshots of @bs. list: *list is malloc'ed (free it with
 * bdrv_snapshot_list_free), *count entries, NULL and 0 when there are
 * none. create takes a snapshot of the current content named @name
 * (duplicate names are allowed, as in QEMU; the id is new); goto makes the
 * snapshot whose id, or failing that whose name, is @id_or_name the
 * current content (and the image takes its virtual size); delete removes
 * it. -ENOTSUP for formats without snapshots and in snapshot mode (the
 * temporary overlay is the top node: list shows the image's snapshots,
 * the others are refused), -EROFS on a read-only node, -ENOENT for an
 * unknown snapshot, -EINVAL for a name longer than BDRV_SNAPSHOT_NAME_MAX.
 * Each sets @err.
 */
HIDDEN int bdrv_snapshot_list(BlockDriverState *bs, BdrvSnapshotInfo **list, int *count,
                              BdrvError *err);
HIDDEN void bdrv_snapshot_list_free(BdrvSnapshotInfo *list, int count);
HIDDEN int bdrv_snapshot_create(BlockDriverState *bs, const char *name, BdrvError *err);
HIDDEN int bdrv_snapshot_goto(BlockDriverState *bs, const char *id_or_name, BdrvError *err);
HIDDEN int bdrv_snapshot_delete(BlockDriverState *bs, const char *id_or_name, BdrvError *err);

/*
 * Chain maintenance (qemu-img rebase, commit, amend): the driver's
 * callbacks behind a check that @bs is writable and the driver's lock.
 * bdrv_change_backing_file records @name (NULL: none) and @format (NULL:
 * none); bdrv_make_empty returns -ENOTSUP for formats that cannot empty
 * themselves (the caller decides whether that matters).
 */
HIDDEN int bdrv_change_backing_file(BlockDriverState *bs, const char *name, const char *format,
                                    BdrvError *err);
HIDDEN int bdrv_amend(BlockDriverState *bs, BdrvOpts *opts, BdrvError *err);
HIDDEN int bdrv_make_empty(BlockDriverState *bs);

/* Probing: the best format driver for the first bytes of a file. */
HIDDEN const BlockDriver *bdrv_probe_format(const uint8_t *buf, int buf_size,
                                            const char *filename);
/*
 * The name of the format the first bytes of a file look like, including
 * formats whose magic is known but whose driver this build lacks (then
 * *pdrv is NULL); NULL when nothing matches.
 */
HIDDEN const char *bdrv_probe_name(const uint8_t *buf, int buf_size, const char *filename,
                                   const BlockDriver **pdrv);

/* Resolve @backing relative to the folder of @base into @dest (size @sz). */
HIDDEN int bdrv_resolve_backing_name(char *dest, size_t sz, const char *base,
                                     const char *backing);

#endif /* BLOCK_BLOCK_H */
