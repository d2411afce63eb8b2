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
 *    byte written by a completed call is lost, and reads run in parallel.
 *    qb_check, qb_truncate and qb_snapshot_create/apply/delete wait for the
 *    calls in flight on the state and hold back new ones until they end.
 *    Opening, closing and deleting a state must not race with other calls
 *    on that state.
 *  - Nothing aborts: allocation failures return QB_ERR_MEM_ERR.
 */
#ifndef LIBQBLOCK_H
#define LIBQBLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

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
 * holds returns QB_ERR_LOCKED. A QB_PROT_NBD location (or an NBD file name)
 * is QB_ERR_NOT_SUPPORTED: an export exists already, so open it and write
 * into it instead. A QB_PROT_RBD location makes a new RBD image (an
 * existing one is an error, never overwritten); QB_FMT_RBD takes its
 * object size from cluster_size and is QB_ERR_NOT_SUPPORTED at any other
 * kind of location. QB_FMT_SHEEPDOG is QB_ERR_NOT_SUPPORTED: no Sheepdog
 * server exists to test a client against. Returns 0 or a QB_ERR_* code.
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
 * A QB_PROT_NBD location connects to an NBD server (any format may sit on
 * the export): a server that cannot be reached, or a connection that drops
 * later, is QB_ERR_IO; one that does not answer within the location's
 * timeout is QB_ERR_TIMEOUT. After either, every call on the state fails
 * the same way: close it and open it again. A read-only export opened with
 * LIBQBLOCK_O_RDWR is QB_ERR_READ_ONLY. An export cannot grow: a write past
 * its end fails (errno ENOSPC), so a format that allocates at the end of
 * its file needs room on the export. A QB_PROT_RBD location connects to
 * the Ceph cluster through librbd (QB_ERR_NOT_SUPPORTED in a build
 * without it); an RBD image grows when a format writes past its end, and
 * one opened at a snapshot is read-only.
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
 * (raw, for one). The check runs alone on the state: it waits for the
 * calls in flight from other threads and holds back new ones until it ends.
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
 * (or cannot shrink) return QB_ERR_NOT_SUPPORTED. Runs alone on the state:
 * it waits for the calls in flight from other threads and holds back new
 * ones until it ends.
 */
LIBQBLOCK_EXPORT int qb_truncate(QBroker *broker, QBlockState *qbs, uint64_t size);

/* ------------------------------------------------------------------ */
/* Copying and comparing images                                        */

/**
 * qb_convert: copy the content of one or more open images (@params->sources,
 * read in order and laid one after the other) into a target image, as
 * qemu-img convert does. In create mode (@params->target_fmt non-NULL) the
 * target is created at @params->target_loc with that format and options
 * (a virt_size of 0 takes the sources' total size) and opened read-write
 * into @params->target, which must be a closed state; it is left open when
 * the call succeeds and closed again when it fails. Otherwise the target is
 * @params->target, already open read-write, and at least as large as the
 * sources together (qemu-img convert -n); what it holds beyond them is left.
 *
 * Zeros: ranges the sources report as zeros are not read; runs of at least
 * @params->sparse_size zero bytes (whole sectors) are left unwritten where
 * the target already reads zeros there: a new image of a format that starts
 * zeroed, or any target with QB_CONVERT_TARGET_IS_ZERO; elsewhere they
 * become zero-write requests (as qb_write_zeroes) where the target does not
 * read as zeros already. A sparse_size of 0 writes every byte. QB_CONVERT_COMPRESSED stores the data compressed
 * (qcow2 through compressed clusters, whole clusters that are all zeros
 * being left out; vmdk streamOptimized compresses every grain anyway);
 * other formats are QB_ERR_NOT_SUPPORTED. QB_CONVERT_BACKING_SHARED copies
 * only what each source allocates in its own top layer, for a target whose
 * backing file has the content of the sources' backing chains (-B).
 *
 * Requests: up to @params->num_requests (1..16, 0 meaning 8) reads and
 * writes are in flight at once on the asynchronous engine of the sources
 * and the target (see qb_aio_read), issued and completed by the calling
 * thread. Without QB_CONVERT_OUT_OF_ORDER each write starts only when the
 * one before it has completed, so they land in the order of the target's
 * offsets while reads run ahead; with it they land as they come. Compressed output is always written in order (compressed
 * clusters are appended to the file), whatever the flag says.
 *
 * Progress: @params->progress, when set, is called from the calling thread
 * with the bytes of the sources handled so far (never decreasing) and
 * their total, lastly with done == total once everything is written and
 * flushed. A non-zero return cancels the copy: the requests in flight are
 * finished, no new ones start, and the call returns QB_ERR_CANCELED (errno
 * ECANCELED); the target then holds part of the data.
 *
 * Threads: the sources are read, and the target written, by the engines'
 * worker threads; nothing else may write the target or the sources
 * meanwhile. The engines of the sources and the target stay started after
 * the call, until each state is closed. Returns 0, or
 * QB_ERR_INVALID_PARAM (NULL pointers, no sources, a source not open,
 * unknown flags, num_requests or sparse_size out of range, a target in the
 * wrong state, smaller than the sources or one of the sources, several
 * sources of which one but the last is not whole clusters with
 * compression), QB_ERR_READ_ONLY (a target opened read-only),
 * QB_ERR_NOT_SUPPORTED, QB_ERR_MEM_ERR, the code of a failed create, open,
 * read, write or flush, whose message is kept; or QB_ERR_CANCELED.
 */
LIBQBLOCK_EXPORT int qb_convert(QBroker *broker, const QBlockConvertParams *params);

/**
 * qb_compare: compare the content of two open images, as qemu-img compare
 * does, and fill *@res. Without QB_COMPARE_STRICT, images of different sizes
 * are equal when the part only the larger one has reads as zeros; with it,
 * different sizes (QB_COMPARE_SIZE) and different allocation status of a
 * range (QB_COMPARE_STATUS: data, zero, allocated, host offset known, run
 * reaching the end) count as differences even where the bytes are equal.
 * @flags is 0 or QB_COMPARE_STRICT. @progress (may be NULL) is called with
 * bytes compared so far out of the larger size; a non-zero return stops
 * the comparison with QB_ERR_CANCELED (errno ECANCELED).
 *
 * Returns 0 when the images are equal, 1 when they differ (res->mismatch
 * and res->offset say how and where; res->size_differs whether the sizes
 * do), or a negative QB_ERR_*: QB_ERR_INVALID_PARAM (NULL pointers, a
 * state not open, unknown flags), or the code of a failed read or status
 * query. Only reads the images; must not run concurrently with writes to
 * them.
 */
LIBQBLOCK_EXPORT int qb_compare(QBroker *broker, QBlockState *a, QBlockState *b, int flags,
                                QBlockProgressFunc progress, void *opaque,
                                QBlockCompareResult *res);

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
 * Threads: create, apply and delete run alone on the state: they wait for
 * every call in flight through the same state (reads too) and make later
 * ones wait until they end; qb_snapshot_list runs alongside reads and
 * writes. In LIBQBLOCK_O_SNAPSHOT mode the state's writes go to a
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

/* ------------------------------------------------------------------ */
/* Vectored and asynchronous I/O                                       */

/**
 * qb_readv: read into the @iovcnt buffers of @iov (0..QB_IOV_MAX entries,
 * filled in order) from byte @offset, as qb_read does for one buffer: any
 * offset and total length, the whole range inside the virtual size. The
 * buffers are passed down as they are; only the bytes of unaligned edge
 * sectors go through a bounce block. Returns the total length, 0 for an
 * empty vector, or QB_ERR_INVALID_PARAM (NULL pointers, a NULL buffer with
 * a non-zero length, too many entries, state not open),
 * QB_ERR_BLOCK_OUT_OF_RANGE, QB_ERR_MEM_ERR, or the errors of qb_read.
 */
LIBQBLOCK_EXPORT int64_t qb_readv(QBroker *broker, QBlockState *qbs, const struct iovec *iov,
                                  int iovcnt, uint64_t offset);

/**
 * qb_writev: write the @iovcnt buffers of @iov, in order, at byte @offset, as
 * qb_write does for one buffer (unaligned edges read-modify-written; durable
 * on return unless the state was opened with LIBQBLOCK_O_CACHE_WB). Returns
 * the total length or the errors of qb_readv and qb_write
 * (QB_ERR_READ_ONLY on a read-only state).
 */
LIBQBLOCK_EXPORT int64_t qb_writev(QBroker *broker, QBlockState *qbs, const struct iovec *iov,
                                   int iovcnt, uint64_t offset);

/*
 * Asynchronous requests. A qb_aio_* submission checks its arguments at once
 * (a bad argument, a range outside the image, a write to a read-only state
 * or a full queue is returned by the submitting call and no request is
 * made), then returns while the request runs; *@req, when @req is not NULL,
 * receives the request's handle. The request's result reaches its
 * callback, which runs only inside qb_aio_run_completions or qb_aio_drain,
 * in the thread that called them: a program with an event loop watches
 * qb_aio_get_fd and calls qb_aio_run_completions when it is readable. The
 * buffers must stay valid, and untouched, until the callback ran; the
 * handle is valid until its callback returns and is freed then.
 *
 * Engine. Requests run on a small pool of threads per state (as many as the
 * machine has cores, at most 16; 16 for a state opened with
 * LIBQBLOCK_O_NOCACHE, whose requests mostly wait for the device), which
 * call the same code as the synchronous calls. On a raw image opened with
 * LIBQBLOCK_O_NOCACHE | LIBQBLOCK_O_NATIVE_AIO, reads whose offset, length
 * and buffers suit O_DIRECT skip the workers: the submitting call hands
 * them to Linux native AIO and the kernel signals the fd when they
 * complete; the workers' own file I/O on such a state goes through native
 * AIO too. Formats serialise their metadata updates themselves, so reads
 * and writes of data run in parallel.
 *
 * Ordering. Two requests whose byte ranges overlap, and of which at least
 * one is a write or a discard, run one after the other in submission order
 * (so overlapping writes land, and complete, in the order they were
 * submitted, and a read sees the writes submitted before it). Requests that
 * do not overlap may run and complete in any order. A flush covers every
 * write whose callback had run (or which had completed, see the fd) before
 * the flush was submitted; it does not wait for writes still in flight and
 * is not a barrier for later ones. Writes follow the state's cache mode as
 * qb_write does: without LIBQBLOCK_O_CACHE_WB each write is durable when it
 * completes.
 *
 * Threads. Submissions and cancellations may come from any thread (each
 * with its own broker); completions should be run by one thread at a time.
 * A callback may submit and cancel requests, but must not call
 * qb_aio_drain, qb_close or qb_state_delete on its own state. Closing or
 * deleting a state with requests in flight first waits for all of them and
 * runs their callbacks (in the closing thread).
 */

/**
 * qb_aio_read: start reading @len bytes at byte @offset into @buf; the
 * callback @cb (not NULL) gets @len or a negative QB_ERR_* code and
 * @opaque. Returns 0, or without starting anything: QB_ERR_INVALID_PARAM
 * (NULL pointers, state not open), QB_ERR_BLOCK_OUT_OF_RANGE, QB_ERR_BUSY
 * (the queue is full: see qb_aio_set_max_queue_depth), QB_ERR_MEM_ERR.
 */
LIBQBLOCK_EXPORT int qb_aio_read(QBroker *broker, QBlockState *qbs, uint8_t *buf, uint64_t len,
                                 uint64_t offset, QBlockAIOFunc cb, void *opaque,
                                 QBlockAIOReq **req);

/**
 * qb_aio_write: start writing @len bytes of @buf at byte @offset, as
 * qb_write. Errors as for qb_aio_read, plus QB_ERR_READ_ONLY for a state
 * opened read-only.
 */
LIBQBLOCK_EXPORT int qb_aio_write(QBroker *broker, QBlockState *qbs, const uint8_t *buf,
                                  uint64_t len, uint64_t offset, QBlockAIOFunc cb, void *opaque,
                                  QBlockAIOReq **req);

/**
 * qb_aio_readv: start reading into the buffers of @iov as qb_readv. The
 * array @iov itself is copied and may be reused at once; the buffers it
 * points to may not. Errors as for qb_aio_read and qb_readv.
 */
LIBQBLOCK_EXPORT int qb_aio_readv(QBroker *broker, QBlockState *qbs, const struct iovec *iov,
                                  int iovcnt, uint64_t offset, QBlockAIOFunc cb, void *opaque,
                                  QBlockAIOReq **req);

/** qb_aio_writev: start writing the buffers of @iov as qb_writev; as qb_aio_readv. */
LIBQBLOCK_EXPORT int qb_aio_writev(QBroker *broker, QBlockState *qbs, const struct iovec *iov,
                                   int iovcnt, uint64_t offset, QBlockAIOFunc cb, void *opaque,
                                   QBlockAIOReq **req);

/**
 * qb_aio_flush: start a flush (see "Ordering" above for what it covers);
 * the callback gets 0 or a negative code. Errors as for qb_aio_read.
 */
LIBQBLOCK_EXPORT int qb_aio_flush(QBroker *broker, QBlockState *qbs, QBlockAIOFunc cb,
                                  void *opaque, QBlockAIOReq **req);

/**
 * qb_aio_discard: start a discard of [@offset, @offset+@len) as qb_discard;
 * ordered against overlapping writes like a write. The callback gets 0 or a
 * negative code. Errors as for qb_aio_write.
 */
LIBQBLOCK_EXPORT int qb_aio_discard(QBroker *broker, QBlockState *qbs, uint64_t offset,
                                    uint64_t len, QBlockAIOFunc cb, void *opaque,
                                    QBlockAIOReq **req);

/**
 * qb_aio_get_fd: a file descriptor (an eventfd) that polls readable when
 * completions are due on @qbs; it may also be readable with none due (a
 * spurious wake-up: qb_aio_run_completions then returns 0). The library
 * owns it: do not read, write or close it; it is valid until the state is
 * closed. Returns the fd, or QB_ERR_INVALID_PARAM (state not open),
 * QB_ERR_MEM_ERR, QB_ERR_INTERNAL_ERR (no eventfd or thread could be made).
 */
LIBQBLOCK_EXPORT int qb_aio_get_fd(QBroker *broker, QBlockState *qbs);

/**
 * qb_aio_run_completions: run the callbacks of every request of @qbs that
 * finished, in the order they finished, without waiting for others.
 * Returns how many ran (0 or more), or QB_ERR_INVALID_PARAM.
 */
LIBQBLOCK_EXPORT int qb_aio_run_completions(QBroker *broker, QBlockState *qbs);

/**
 * qb_aio_cancel: cancel @req, a request whose callback has not run yet. A
 * request that had not started is taken off the queue and completes (its
 * callback runs, from qb_aio_run_completions as usual) with
 * QB_ERR_CANCELED: nothing of it was done. A request that has started or
 * finished is not interrupted: it completes normally with its own result.
 * Returns 1 when it was cancelled, 0 when it had already started, or
 * QB_ERR_INVALID_PARAM (NULL).
 */
LIBQBLOCK_EXPORT int qb_aio_cancel(QBroker *broker, QBlockAIOReq *req);

/**
 * qb_aio_drain: wait until every request of @qbs has finished and run all
 * callbacks, including those of requests that callbacks submit meanwhile.
 * Returns how many callbacks ran, or QB_ERR_INVALID_PARAM (NULL pointers,
 * called from a callback of the same state).
 */
LIBQBLOCK_EXPORT int qb_aio_drain(QBroker *broker, QBlockState *qbs);

/**
 * qb_aio_set_max_queue_depth: how many requests of @qbs may be in flight
 * (submitted, callback not yet run) at once: 1..QB_AIO_MAX_QUEUE_DEPTH;
 * QB_AIO_DEFAULT_QUEUE_DEPTH (128) until set. A submission beyond it fails
 * with QB_ERR_BUSY. Allowed on an open or closed state; lowering it below
 * the number in flight only holds back new submissions. Returns 0 or
 * QB_ERR_INVALID_PARAM.
 */
LIBQBLOCK_EXPORT int qb_aio_set_max_queue_depth(QBroker *broker, QBlockState *qbs, int depth);

/* ------------------------------------------------------------------ */
/* Backing chains and options of existing images                      */

/*
 * These calls change an open image's metadata or its chain, as qemu-img
 * rebase, commit and amend do. Each needs the state opened with
 * LIBQBLOCK_O_RDWR (QB_ERR_READ_ONLY otherwise), not in
 * LIBQBLOCK_O_SNAPSHOT mode (QB_ERR_NOT_SUPPORTED), and must not run
 * concurrently with any other call on the same state.
 */

/**
 * qb_change_backing: record a new backing file in the image's metadata
 * without copying any data (qemu-img rebase -u): @backing_loc names it as
 * it is to be written (a relative name is relative to the image's folder),
 * or, NULL or an empty file name, the image gets no backing file; @backing_fmt is the
 * backing format to record, QB_FMT_NONE for none (formats that cannot
 * record a format ignore it). The state then reads through the new
 * backing file, opened read-only; when it cannot be opened the change is
 * still made and the state reads unallocated areas as zeros until it is
 * reopened. Supported by qcow2, qed, qcow, cow and vmdk; other formats
 * return QB_ERR_NOT_SUPPORTED. A name the format has no room for is
 * QB_ERR_INVALID_PARAM. Returns 0 or a QB_ERR_* code.
 */
LIBQBLOCK_EXPORT int qb_change_backing(QBroker *broker, QBlockState *qbs,
                                       const QBlockProtInfo *backing_loc,
                                       enum QBlockFmtType backing_fmt);

/**
 * qb_rebase: make @backing_loc (NULL or an empty name: none) the backing file of
 * the open image, keeping its content, as qemu-img rebase does. Unless
 * @flags has QB_REBASE_UNSAFE, the new backing file is opened first
 * (@backing_fmt, or probed when QB_FMT_NONE; an error when it cannot be
 * opened) and every range the image does not allocate itself, where the
 * old chain and the new backing file read differently, is copied from the
 * old chain into the image; then the reference is changed as by
 * qb_change_backing. With no new backing file the image becomes
 * standalone. @progress (may be NULL) is called with bytes of the virtual
 * disk examined; its non-zero return stops the call with
 * QB_ERR_CANCELED (errno ECANCELED), the reference unchanged (data
 * copied so far stays, and reads the same). Returns 0 or a QB_ERR_* code.
 */
LIBQBLOCK_EXPORT int qb_rebase(QBroker *broker, QBlockState *qbs,
                               const QBlockProtInfo *backing_loc,
                               enum QBlockFmtType backing_fmt, int flags,
                               QBlockProgressFunc progress, void *opaque);

/**
 * qb_commit: copy what the layers of the open image's chain above a base
 * hold into that base, as qemu-img commit does: the base is @base_loc, a
 * file of the chain below the image (matched as the same file, not by
 * name; QB_ERR_INVALID_PARAM with errno ENOENT when it is not in the
 * chain), or, NULL, the image's own backing file (QB_ERR_INVALID_PARAM
 * with errno ENOENT when it has none). The base is reopened read-write for
 * the copy (grown first when smaller than the image) and read-only
 * afterwards. Then, unless @flags has QB_COMMIT_KEEP_TOP, the image
 * itself is emptied where its format can (qcow2, qcow), so that it reads
 * everything from the base again; other formats are left as they are, as
 * with qemu-img. Layers between the image and the base are not changed.
 * @flags other than QB_COMMIT_KEEP_TOP are QB_ERR_INVALID_PARAM. Without
 * QB_COMMIT_KEEP_TOP the state must be opened LIBQBLOCK_O_RDWR; with it a
 * read-only state is enough. @progress as for qb_rebase (bytes examined).
 * Returns 0 or a QB_ERR_* code.
 */
LIBQBLOCK_EXPORT int qb_commit(QBroker *broker, QBlockState *qbs,
                               const QBlockProtInfo *base_loc, int flags,
                               QBlockProgressFunc progress, void *opaque);

/**
 * qb_amend: change options of the open image, given as a qemu-img -o
 * string ("compat=1.1,lazy_refcounts=on"), as qemu-img amend does.
 * qcow2 only (others: QB_ERR_NOT_SUPPORTED): compat (0.10 or 1.1, both
 * ways; a downgrade expands zero clusters and is refused for images with
 * refcount_bits other than 16, with incompatible features such as
 * extended L2 entries, with bitmaps, and, unlike QEMU, with internal
 * snapshots), lazy_refcounts (needs compat 1.1) and size (grow or shrink).
 * refcount_bits is accepted only at its current value. Options qemu-img
 * only takes at creation, backing_file (use qb_rebase) and unknown options
 * are QB_ERR_INVALID_PARAM; every option is checked before anything is
 * changed. Returns 0 or a QB_ERR_* code.
 */
LIBQBLOCK_EXPORT int qb_amend(QBroker *broker, QBlockState *qbs, const char *options);

#ifdef __cplusplus
}
#endif

#endif /* LIBQBLOCK_H */
