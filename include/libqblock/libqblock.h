/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libqblock.h: create, open, read, write and inspect virtual disk images
 * (qcow2, qcow, qed, vmdk, vdi, vpc, raw, cow) through a file-like API with
 * byte offsets.
 *
 * Conventions that hold for every function below:
 *  - Every call takes the caller's QBroker. On failure it records the code
 *    it returns, the errno behind it and a message naming the function and
 *    the image, and returns a negative QB_ERR_* code (libqblock-error.h).
 *    On success the broker's previous error is left as it was.
 *  - A NULL broker, state or info pointer returns QB_ERR_INVALID_PARAM (with
 *    a NULL broker nothing can be recorded).
 *  - Threads: a broker belongs to one thread at a time. Different states are
 *    independent. One open state may be used from several threads at once,
 *    each with its own broker; overlapping writes are serialised so that no
 *    byte written by a completed call is lost. Opening, closing and deleting
 *    a state must not race with other calls on that state.
 *  - Nothing aborts: allocation failures return QB_ERR_MEM_ERR.
 */
#ifndef LIBQBLOCK_H
#define LIBQBLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libqblock-error.h"
#include "libqblock-types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Brokers and errors                                                  */

/**
 * qb_broker_new: allocate a broker, the carrier of the last error.
 * Returns 0, QB_ERR_INVALID_PARAM when @broker is NULL, or QB_ERR_MEM_ERR.
 */
LIBQBLOCK_EXPORT int qb_broker_new(QBroker **broker);

/** qb_broker_delete: free *@broker and set it to NULL; NULL is a no-op. */
LIBQBLOCK_EXPORT void qb_broker_delete(QBroker **broker);

/**
 * qb_strerror: static English text for a QB_ERR_* code (or 0). Unknown codes
 * give "unknown error". Never NULL, never to be freed.
 */
LIBQBLOCK_EXPORT const char *qb_strerror(int err);

/**
 * qb_error_get_human_str: copy the last error's message, NUL-terminated and
 * truncated to fit @buf_size, into @buf ("" when there was none). Does
 * nothing when @broker or @buf is NULL or @buf_size is 0.
 */
LIBQBLOCK_EXPORT void qb_error_get_human_str(QBroker *broker, char *buf, size_t buf_size);

/** qb_error_get_errno: the positive errno of the last failure, 0 if none. */
LIBQBLOCK_EXPORT int qb_error_get_errno(QBroker *broker);

/* ------------------------------------------------------------------ */
/* States and info structs                                             */

/** qb_state_new: allocate an image state (closed). */
LIBQBLOCK_EXPORT int qb_state_new(QBroker *broker, QBlockState **qbs);

/**
 * qb_state_delete: close the image if it is open (flushing it; an error of
 * that flush is recorded on @broker), free *@qbs and set it to NULL.
 */
LIBQBLOCK_EXPORT void qb_state_delete(QBroker *broker, QBlockState **qbs);

/** qb_prot_info_new: allocate a zeroed QBlockProtInfo. */
LIBQBLOCK_EXPORT int qb_prot_info_new(QBroker *broker, QBlockProtInfo **op);
/** qb_prot_info_delete: free *@op (not the strings it points to) and set it to NULL. */
LIBQBLOCK_EXPORT void qb_prot_info_delete(QBroker *broker, QBlockProtInfo **op);

/** qb_fmt_info_new: allocate a zeroed QBlockFmtInfo. */
LIBQBLOCK_EXPORT int qb_fmt_info_new(QBroker *broker, QBlockFmtInfo **op);
/**
 * qb_fmt_info_delete: free *@op, and the strings qb_fmt_info_set_options
 * stored in it, and set *@op to NULL.
 */
LIBQBLOCK_EXPORT void qb_fmt_info_delete(QBroker *broker, QBlockFmtInfo **op);

/**
 * qb_fmt_info_set_options: set create options of @fmt from a qemu-img -o
 * style string, "key=value,key=value" (a literal comma in a value is
 * written ",,"). @fmt->fmt_type must be set first. Keys are qemu-img's:
 * size, backing_file, backing_fmt, cluster_size, compat, preallocation,
 * subformat, encryption, table_size, static, ...; sizes accept the suffixes
 * k, M, G, T, P, E (powers of 1024) and b/B. Boolean values are on/off,
 * true/false, yes/no.
 *
 * Strings (backing_file) are copied and owned by @fmt: such options need an
 * @fmt made by qb_fmt_info_new (QB_ERR_INVALID_PARAM otherwise), and the
 * copies are freed by qb_fmt_info_delete or by a later call that replaces
 * them. Unknown keys, keys the format has no use for and malformed values
 * return QB_ERR_INVALID_PARAM and leave @fmt unchanged.
 */
LIBQBLOCK_EXPORT int qb_fmt_info_set_options(QBroker *broker, QBlockFmtInfo *fmt, const char *opts);

/**
 * qb_state_set_policy: set the open policy later qb_open calls on @qbs
 * follow; @policy NULL restores the default, which a new state has. The
 * default is safe for untrusted images: probing never falls back to raw,
 * backing files and vmdk extents must be regular files inside the image's
 * folder (or below it), chains are at most 16 backing files deep, one
 * image file may keep at most 64 MiB of tables and caches in memory, and a
 * vmdk descriptor may be at most 64 KiB. A limit hit fails qb_open with
 * QB_ERR_LIMIT and a message naming the limit. Every folder of
 * allowed_dirs must exist; the strings are copied. Unknown flags, a
 * non-zero reserved member, a missing folder or an open state are
 * QB_ERR_INVALID_PARAM. Returns 0 or a QB_ERR_* code.
 */
LIBQBLOCK_EXPORT int qb_state_set_policy(QBroker *broker, QBlockState *qbs,
                                         const QBlockOpenPolicy *policy);

/**
 * qb_state_get_policy: the open policy of @qbs into *@policy, with the
 * limits in effect (defaults filled in, not zeros). allowed_dirs points into
 * @qbs (the canonical folders) and stays valid until the next
 * qb_state_set_policy or qb_state_delete. Returns 0 or QB_ERR_INVALID_PARAM.
 */
LIBQBLOCK_EXPORT int qb_state_get_policy(QBroker *broker, QBlockState *qbs,
                                         QBlockOpenPolicy *policy);

/* ------------------------------------------------------------------ */
/* Images                                                              */

/**
 * qb_create: make the image described by @fmt at @loc; it is not opened.
 * A virt_size of 0 with a backing file takes the backing file's size.
 * @flag: LIBQBLOCK_O_* flags (checked as for qb_open); only the cache flags
 * matter here. An existing
 * file is overwritten, as qemu-img create does; an image another process
 * holds returns QB_ERR_LOCKED. Returns 0 or a QB_ERR_* code.
 */
LIBQBLOCK_EXPORT int qb_create(QBroker *broker, QBlockState *qbs, QBlockProtInfo *loc,
                               QBlockFmtInfo *fmt, int flag);

/**
 * qb_open: open the image at @loc into @qbs. With @fmt NULL, or its
 * fmt_type QB_FMT_NONE, the format is probed (an image probed as raw may
 * not have its first sector written so that it would probe as another
 * format). @flag is a combination of LIBQBLOCK_O_*; bits outside
 * LIBQBLOCK_O_ALL_FLAGS are QB_ERR_INVALID_PARAM, and so are
 * LIBQBLOCK_O_NATIVE_AIO without LIBQBLOCK_O_NOCACHE and
 * LIBQBLOCK_O_FORCE_SHARE with LIBQBLOCK_O_RDWR. Opening a state that is
 * already open is QB_ERR_INVALID_PARAM; an image held in a conflicting way
 * by another process (QEMU's locks are honoured) is QB_ERR_LOCKED. The
 * open follows the state's open policy (qb_state_set_policy): by default a
 * file no format recognises is not guessed to be raw, and backing files
 * outside the image's folder are refused, both with QB_ERR_LIMIT.
 */
LIBQBLOCK_EXPORT int qb_open(QBroker *broker, QBlockState *qbs, QBlockProtInfo *loc,
                             QBlockFmtInfo *fmt, int flag);

/**
 * qb_close: flush and close the image. Returns the flush's error, if any;
 * the image is closed either way. Closing a state that is not open is
 * QB_ERR_INVALID_PARAM. A closed state may be opened again.
 */
LIBQBLOCK_EXPORT int qb_close(QBroker *broker, QBlockState *qbs);

/**
 * qb_read / qb_write: transfer @len bytes at byte @offset, like pread(2)
 * and pwrite(2) but never short: any offset and length is allowed, and
 * unaligned edges are read-modify-written. The whole range must lie inside
 * the virtual size (QB_ERR_BLOCK_OUT_OF_RANGE otherwise). Return @len, or a
 * negative QB_ERR_*; @len 0 returns 0. A write to an image opened
 * read-only is QB_ERR_READ_ONLY.
 */
LIBQBLOCK_EXPORT int64_t qb_read(QBroker *broker, QBlockState *qbs, uint8_t *buf,
                                 uint64_t len, uint64_t offset);
LIBQBLOCK_EXPORT int64_t qb_write(QBroker *broker, QBlockState *qbs, const uint8_t *buf,
                                  uint64_t len, uint64_t offset);

/**
 * qb_write_compressed: write @len bytes at @offset as compressed clusters,
 * as `qemu-img convert -c` stores them: @offset must be a multiple of the
 * image's cluster size (QBlockStaticInfo.cluster_size) and @len too, except
 * that the last piece may end at the end of the image. A cluster whose data
 * does not shrink is stored uncompressed. Whatever the clusters held before
 * is replaced (and released). Supported by qcow2 (zlib, and zstd when the
 * library is built with libzstd); other formats return
 * QB_ERR_NOT_SUPPORTED. A misaligned range is QB_ERR_INVALID_PARAM; the
 * other rules are qb_write's. Returns @len or a negative QB_ERR_*.
 */
LIBQBLOCK_EXPORT int64_t qb_write_compressed(QBroker *broker, QBlockState *qbs,
                                             const uint8_t *buf, uint64_t len,
                                             uint64_t offset);

/** qb_flush: make every completed write durable (a no-op under LIBQBLOCK_O_NO_FLUSH). */
LIBQBLOCK_EXPORT int qb_flush(QBroker *broker, QBlockState *qbs);

/**
 * qb_discard: tell the image that [@offset, @offset+@len) is no longer
 * needed. Whole sectors inside the range are released where the format can
 * (unaligned edges are left alone); what they read afterwards depends on
 * the format, as in QEMU: zeros on raw (on a file system with hole
 * punching) and on qcow2 version 3, possibly the backing file's data on
 * formats that cannot record zeros (qcow2 version 2), or the old data where
 * a format ignores discard. The range must lie inside the image; a format
 * without discard support ignores it and returns 0.
 */
LIBQBLOCK_EXPORT int qb_discard(QBroker *broker, QBlockState *qbs, uint64_t offset, uint64_t len);

/**
 * qb_write_zeroes: make [@offset, @offset+@len) read as zeros, where the
 * format can without transferring a buffer of zeros: qcow2 version 3 and
 * qed record zero clusters, other formats leave unallocated areas alone
 * and write zeros over the rest. @flags is 0 or QB_WRITE_ZEROES_MAY_UNMAP:
 * with it the format may also release the space behind the range (qcow2
 * frees its host clusters, as qemu-io's write -z -u does); without it,
 * space already allocated stays allocated. Either way the range reads as
 * zeros afterwards, backing file or not. Any byte offset and length is
 * allowed (unaligned edges are read-modify-written); the range must lie
 * inside the image. Returns 0 (also for @len 0), QB_ERR_READ_ONLY on an
 * image opened read-only, QB_ERR_BLOCK_OUT_OF_RANGE, QB_ERR_INVALID_PARAM
 * for unknown @flags, or another QB_ERR_*. Durable on return unless the
 * image was opened with LIBQBLOCK_O_CACHE_WB, as for qb_write.
 */
LIBQBLOCK_EXPORT int qb_write_zeroes(QBroker *broker, QBlockState *qbs, uint64_t offset,
                                     uint64_t len, int flags);

/**
 * qb_check_allocation: is [@start, @start+@length) allocated in this image
 * (its top layer, not a backing file)? Sets *@pstatus to 1 (allocated) or
 * 0 (not) and *@plength to the number of bytes from @start that share that
 * status (1..@length). @length must be > 0 and the range inside the image.
 * For raw images "allocated" means backed by data in the host file (not a
 * hole). Unaligned starts are treated as their containing sector.
 */
LIBQBLOCK_EXPORT int qb_check_allocation(QBroker *broker, QBlockState *qbs, uint64_t start,
                                         int64_t length, int *pstatus, int64_t *plength);

/**
 * qb_block_status: the status of the range starting at @offset, at most
 * @length bytes, through the whole backing chain, as qemu-img map reports
 * it: fills @st with the run length (1..@length, sector multiples except at
 * the end of the image), QB_BLOCK_* flags, the depth of the layer that
 * allocates it, and the host offset where one exists. @length must be > 0
 * and the range inside the image.
 */
LIBQBLOCK_EXPORT int qb_block_status(QBroker *broker, QBlockState *qbs, uint64_t offset,
                                     uint64_t length, QBlockStatusInfo *st);

/**
 * qb_info_image_static_get: facts about the open image. *@info is
 * allocated by the library (its strings too) and freed with
 * qb_info_image_static_delete.
 */
LIBQBLOCK_EXPORT int qb_info_image_static_get(QBroker *broker, QBlockState *qbs,
                                              QBlockStaticInfo **info);
LIBQBLOCK_EXPORT void qb_info_image_static_delete(QBroker *broker, QBlockStaticInfo **info);

/**
 * qb_info_image_specific_get: the format-specific facts of the open image
 * (its header's version and feature bits, a VMDK's extents, a VHD's
 * creator...), as qemu-img info shows under "Format specific information"
 * and beyond. On success *@info points to a QBlockSpecificInfo allocated by
 * the library whose fmt_type is the image's format and selects the union
 * member; the struct, its strings and its arrays belong to the library and
 * are freed together by qb_info_image_specific_delete. The facts are those
 * of the top image of the chain (not its backing files), as of the call;
 * under LIBQBLOCK_O_SNAPSHOT that is, as for qb_info_image_static_get, the
 * temporary qcow2 overlay. It may be called while other threads read and
 * write the same state (each with its own broker).
 *
 * Returns 0; QB_ERR_INVALID_PARAM when @qbs is not open or @info is NULL;
 * QB_ERR_NOT_SUPPORTED for a format without specific facts (raw);
 * QB_ERR_MEM_ERR; or QB_ERR_INVALID_IMAGE / QB_ERR_INTERNAL_ERR when
 * metadata the facts come from (qcow2's bitmap directory) cannot be read or
 * is malformed. On failure *@info is left NULL.
 */
LIBQBLOCK_EXPORT int qb_info_image_specific_get(QBroker *broker, QBlockState *qbs,
                                                QBlockSpecificInfo **info);
/**
 * qb_info_image_specific_delete: free *@info with every string and array it
 * holds and set *@info to NULL. NULL (or *@info NULL) is a no-op. @broker
 * is not used and may be NULL (nothing here can fail).
 */
LIBQBLOCK_EXPORT void qb_info_image_specific_delete(QBroker *broker, QBlockSpecificInfo **info);

/** qb_get_allocated_file_size: host bytes used by the image's files, or < 0. */
LIBQBLOCK_EXPORT int64_t qb_get_allocated_file_size(QBroker *broker, QBlockState *qbs);

/** qb_is_dirty: 1 when the image is marked dirty / needs a check, 0 when clean, < 0 on error. */
LIBQBLOCK_EXPORT int qb_is_dirty(QBroker *broker, QBlockState *qbs);

/** qb_has_zero_init: 1 when areas never written read as zeros, 0 when not, < 0 on error. */
LIBQBLOCK_EXPORT int qb_has_zero_init(QBroker *broker, QBlockState *qbs);

/* ------------------------------------------------------------------ */
/* Format names                                                        */

/** qb_str2fmttype: "qcow2" -> QB_FMT_QCOW2 ("vhd" is accepted for vpc); QB_FMT_NONE if unknown. */
LIBQBLOCK_EXPORT enum QBlockFmtType qb_str2fmttype(const char *fmt_str);

/** qb_fmttype2str: QB_FMT_QCOW2 -> "qcow2"; NULL when unknown; not to be freed. */
LIBQBLOCK_EXPORT const char *qb_fmttype2str(enum QBlockFmtType fmt_type);

/* ------------------------------------------------------------------ */
/* What formats can do                                                 */

/**
 * qb_fmt_get_caps: fill *@caps with what format @fmt_type can do in this
 * build (QB_CAP_* in caps->flags, the accepted preallocation modes in
 * caps->prealloc_modes). The answers come from the format's driver; a
 * format this build has no driver for (rbd, sheepdog) gets all zeros and
 * returns 0. Returns QB_ERR_INVALID_PARAM for a NULL @caps or a @fmt_type
 * that is not a format. Thread-safe.
 */
LIBQBLOCK_EXPORT int qb_fmt_get_caps(QBroker *broker, enum QBlockFmtType fmt_type,
                                     QBlockFmtCaps *caps);

/**
 * qb_fmt_get_create_options: the create options of format @fmt_type, the
 * ones qb_create and qb_fmt_info_set_options check values against, in the
 * driver's order: *@list points at *@count descriptions owned by the
 * library (valid until the process ends; never to be freed). Options
 * flagged QB_OPT_F_SETTABLE can be given to qb_fmt_info_set_options.
 * Returns 0, QB_ERR_INVALID_PARAM for NULL pointers or a @fmt_type that is
 * not a format, QB_ERR_NOT_SUPPORTED for a format without a driver in this
 * build. Thread-safe.
 */
LIBQBLOCK_EXPORT int qb_fmt_get_create_options(QBroker *broker, enum QBlockFmtType fmt_type,
                                               const QBlockOptionDesc **list, int *count);

/* ------------------------------------------------------------------ */
/* Maintenance                                                         */

/**
 * qb_check: check the open image's metadata for consistency, as qemu-img
 * check does, and fill *@res with the findings. @fix is 0 (only look) or a
 * mix of QB_CHECK_FIX_LEAKS and QB_CHECK_FIX_ERRORS (repair what is found),
 * which needs the state opened with LIBQBLOCK_O_RDWR (QB_ERR_READ_ONLY
 * otherwise). Returns 0 when the check ran, whatever it found (look at the
 * counters in *@res); QB_ERR_NOT_SUPPORTED for a format without a check
 * (raw, for one). A check with @fix must not run concurrently with any other
 * call on the same state.
 */
LIBQBLOCK_EXPORT int qb_check(QBroker *broker, QBlockState *qbs, int fix, QBlockCheckResult *res);

/**
 * qb_measure: how much space a new image of @fmt (its fmt_type and create
 * options) needs, as qemu-img measure reports it: for the content of the
 * open image @src, through its whole backing chain, or, @src NULL, for an
 * empty image of the options' virt_size. With @src the options' virt_size
 * is not used. Fills *@info. QB_ERR_NOT_SUPPORTED for formats that cannot
 * tell (all but qcow2 and raw, as in QEMU 7.2); invalid options are
 * QB_ERR_INVALID_PARAM. Reads @src, so must not run concurrently with
 * writes to it.
 */
LIBQBLOCK_EXPORT int qb_measure(QBroker *broker, const QBlockFmtInfo *fmt, QBlockState *src,
                                QBlockMeasureInfo *info);

/**
 * qb_truncate: change the virtual size of the open image to @size bytes
 * (grow or shrink), without preallocation. Needs the state opened with
 * LIBQBLOCK_O_RDWR. The size is passed to the format as given, not rounded:
 * formats that need a multiple of 512 (qcow2, qed) refuse other sizes with
 * QB_ERR_INVALID_PARAM, as qemu-img resize does; formats that cannot resize
 * (or cannot shrink) return QB_ERR_NOT_SUPPORTED. Must not run concurrently
 * with any other call on the same state.
 */
LIBQBLOCK_EXPORT int qb_truncate(QBroker *broker, QBlockState *qbs, uint64_t size);

/* ------------------------------------------------------------------ */
/* Internal snapshots                                                  */

/*
 * Snapshots stored inside the image file, as qemu-img snapshot and QEMU's
 * savevm make them (qcow2 is the only format that has them; the others
 * return QB_ERR_NOT_SUPPORTED). A snapshot has an id, which the library
 * chooses and which is unique, and a name given by the caller, which may
 * be empty and may repeat another snapshot's (QEMU allows both). Where a
 * function takes @id_or_name, a snapshot whose id matches is taken first,
 * then the first whose name matches, as in qemu-img.
 *
 * Threads: these calls must not run concurrently with any other call on the
 * same state (create, apply and delete wait for writes and discards in
 * flight through the same state, and make later ones wait, but reads are
 * not held back). In LIBQBLOCK_O_SNAPSHOT mode the state's writes go to a
 * temporary overlay: qb_snapshot_list lists the snapshots of the image
 * under it, and create, apply and delete return QB_ERR_NOT_SUPPORTED.
 */

/**
 * qb_snapshot_list: the internal snapshots of the open image, in the order
 * the image stores them. *@list receives an array of *@count entries
 * allocated by the library (strings included) and freed with
 * qb_snapshot_list_free; with no snapshots *@list is NULL and *@count 0.
 * Works on read-only states. Returns 0, QB_ERR_INVALID_PARAM (NULL
 * pointers, state not open), QB_ERR_NOT_SUPPORTED (format without
 * snapshots), QB_ERR_MEM_ERR.
 */
LIBQBLOCK_EXPORT int qb_snapshot_list(QBroker *broker, QBlockState *qbs,
                                      QBlockSnapshotInfo **list, int *count);

/** qb_snapshot_list_free: free a list from qb_snapshot_list and set *@list to NULL; NULL is a no-op. */
LIBQBLOCK_EXPORT void qb_snapshot_list_free(QBroker *broker, QBlockSnapshotInfo **list);

/**
 * qb_snapshot_create: take a snapshot of the image's current content,
 * named @name (0 to 255 bytes; a NUL-terminated string, copied), with a
 * new id and the current time; it records no VM state. Needs the state
 * opened with LIBQBLOCK_O_RDWR (QB_ERR_READ_ONLY otherwise). Returns 0,
 * QB_ERR_INVALID_PARAM (NULL pointers, state not open, name too long),
 * QB_ERR_NOT_SUPPORTED (format without snapshots, snapshot mode),
 * QB_ERR_READ_ONLY, QB_ERR_INVALID_IMAGE (corrupt metadata found on the
 * way), QB_ERR_INTERNAL_ERR (I/O failure, an image already found corrupt
 * in this session, too many snapshots: see the errno), QB_ERR_MEM_ERR.
 */
LIBQBLOCK_EXPORT int qb_snapshot_create(QBroker *broker, QBlockState *qbs, const char *name);

/**
 * qb_snapshot_apply: make the content of the snapshot @id_or_name the
 * image's current content (what was written since is dropped; the snapshot
 * stays). The image takes the virtual size the snapshot was taken at, as
 * qemu-img snapshot -a does. Needs LIBQBLOCK_O_RDWR. Returns 0,
 * QB_ERR_INVALID_PARAM (NULL pointers, state not open, no such snapshot:
 * errno ENOENT), QB_ERR_NOT_SUPPORTED, QB_ERR_READ_ONLY,
 * QB_ERR_INVALID_IMAGE, QB_ERR_INTERNAL_ERR.
 */
LIBQBLOCK_EXPORT int qb_snapshot_apply(QBroker *broker, QBlockState *qbs, const char *id_or_name);

/**
 * qb_snapshot_delete: remove the snapshot @id_or_name and release the space
 * only it used. The current content is unchanged. Needs LIBQBLOCK_O_RDWR.
 * Errors as for qb_snapshot_apply.
 */
LIBQBLOCK_EXPORT int qb_snapshot_delete(QBroker *broker, QBlockState *qbs, const char *id_or_name);

#ifdef __cplusplus
}
#endif

#endif /* LIBQBLOCK_H */
