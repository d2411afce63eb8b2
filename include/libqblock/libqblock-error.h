/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libqblock-error.h: the error codes every libqblock call returns.
 *
 * Every function that takes a QBroker records, on failure, the code it
 * returns, the errno behind it (when there is one) and a human-readable
 * message naming the function and the image; see libqblock.h for the
 * accessors.
 */
#ifndef LIBQBLOCK_ERROR_H
#define LIBQBLOCK_ERROR_H

/** Out of memory: always returned, never aborted on. */
#define QB_ERR_MEM_ERR            (-1)
/** The system or the block layer failed; qb_error_get_errno() tells why. */
#define QB_ERR_INTERNAL_ERR       (-2)
/** A bad argument: NULL, unknown flag, bad option, or a call in the wrong state. */
#define QB_ERR_INVALID_PARAM      (-100)
/** The offset or length lies (partly) outside the image. */
#define QB_ERR_BLOCK_OUT_OF_RANGE (-101)
/** A format, feature or option this build does not handle. */
#define QB_ERR_NOT_SUPPORTED      (-102)
/** The image is malformed or corrupt. */
#define QB_ERR_INVALID_IMAGE      (-103)
/** A write to an image opened read-only. */
#define QB_ERR_READ_ONLY          (-104)
/** Another process (a QEMU tool, or another libqblock user) holds the image. */
#define QB_ERR_LOCKED             (-105)
/** An asynchronous request was cancelled (qb_aio_cancel) before it started. */
#define QB_ERR_CANCELED           (-106)
/** The state's asynchronous queue is full (qb_aio_set_max_queue_depth); retry after completions. */
#define QB_ERR_BUSY               (-107)
/**
 * A limit of the state's open policy (QBlockOpenPolicy) was hit: probing
 * found no format, a backing file or extent lies outside the allowed
 * folders, the chain is too deep, or the image needs too much metadata
 * memory or too large a descriptor. The message names the limit.
 */
#define QB_ERR_LIMIT              (-108)
/** The storage or the network failed: an I/O error, a dropped connection. */
#define QB_ERR_IO                 (-109)
/** A server did not answer within the timeout (NBD). */
#define QB_ERR_TIMEOUT            (-110)

#endif /* LIBQBLOCK_ERROR_H */
