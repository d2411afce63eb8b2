/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* broker.c: brokers, the per-thread carriers of the last error, and error texts. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int qb_broker_new(QBroker **broker)
{
    if (!broker) {
        return QB_ERR_INVALID_PARAM;
    }
    *broker = calloc(1, sizeof(**broker));
    return *broker ? 0 : QB_ERR_MEM_ERR;
}

void qb_broker_delete(QBroker **broker)
{
    if (broker) {
        free(*broker);
        *broker = NULL;
    }
}

const char *qb_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case QB_ERR_MEM_ERR: return "out of memory";
    case QB_ERR_INTERNAL_ERR: return "internal error (the system or the block layer failed)";
    case QB_ERR_INVALID_PARAM: return "invalid parameter";
    case QB_ERR_BLOCK_OUT_OF_RANGE: return "request outside the image";
    case QB_ERR_NOT_SUPPORTED: return "operation or format not supported";
    case QB_ERR_INVALID_IMAGE: return "invalid or corrupt image";
    case QB_ERR_READ_ONLY: return "image is opened read-only";
    case QB_ERR_LOCKED: return "image is locked by another process";
    case QB_ERR_CANCELED: return "request cancelled";
    case QB_ERR_BUSY: return "too many requests in flight";
    case QB_ERR_IO: return "input/output error (the storage or the network failed)";
    case QB_ERR_TIMEOUT: return "the server did not answer in time";
    case QB_ERR_LIMIT: return "a limit of the open policy was hit";
    default: return "unknown error";
    }
}

void qb_error_get_human_str(QBroker *broker, char *buf, size_t buf_size)
{
    if (!broker || !buf || buf_size == 0) {
        return;
    }
    snprintf(buf, buf_size, "%s", broker->msg);
}

int qb_error_get_errno(QBroker *broker)
{
    return broker ? broker->err_no : 0;
}

int qb_fail(QBroker *broker, int code, int err_no, const char *fmt, ...)
{
    if (broker) {
        va_list ap;
        broker->err_code = code;
        broker->err_no = err_no;
        va_start(ap, fmt);
        vsnprintf(broker->msg, sizeof(broker->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

int qb_code_from_errno(int neg_errno)
{
    switch (-neg_errno) {
    case ENOMEM: return QB_ERR_MEM_ERR;
    case EINVAL: return QB_ERR_INVALID_PARAM;
    case ERANGE: return QB_ERR_BLOCK_OUT_OF_RANGE;
    case ENOTSUP: return QB_ERR_NOT_SUPPORTED;
    case EBADIMAGE: return QB_ERR_INVALID_IMAGE;
    case EROFS: return QB_ERR_READ_ONLY;
    case ELOCKED: return QB_ERR_LOCKED;
    /* The storage or the connection to it failed (a dropped NBD connection is EIO). */
    case EIO: case ECONNREFUSED: case ECONNRESET: case EPIPE: case EHOSTUNREACH:
    case ENETUNREACH: case ESHUTDOWN: case EPROTO:
        return QB_ERR_IO;
    case ETIMEDOUT: return QB_ERR_TIMEOUT;
    case EPOLICY: return QB_ERR_LIMIT;
    default: return QB_ERR_INTERNAL_ERR;
    }
}

int qb_fail_errno(QBroker *broker, int neg_errno, const BdrvError *err, const char *func,
                  const char *filename)
{
    int code = qb_code_from_errno(neg_errno);

    char note[512];

    if (err && err->code && err->msg[0]) {
        return qb_fail(broker, code, -neg_errno, "%s: %s", func, err->msg);
    }
    /* A request's driver may have said more than the errno (see bdrv_io_error_note). */
    if (bdrv_io_error_take(neg_errno, note, sizeof(note))) {
        return qb_fail(broker, code, -neg_errno, "%s: %s", func, note);
    }
    return qb_fail(broker, code, -neg_errno, "%s: '%s': %s", func, filename ? filename : "",
                   strerror(-neg_errno));
}
