/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* error.c: the block layer's error object (a negative errno plus a message). */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "block/block.h"

int bdrv_error_set(BdrvError *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

void bdrv_error_prefix(BdrvError *err, const char *fmt, ...)
{
    char prefix[512];
    size_t plen, keep;
    va_list ap;

    if (!err || !err->code) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    /* Shift the message right to make room for "prefix: "; its tail may be cut. */
    plen = strlen(prefix);               /* < 512, so it always fits in msg */
    keep = MIN(strlen(err->msg), sizeof(err->msg) - 1 - (plen + 2));
    memmove(err->msg + plen + 2, err->msg, keep);
    err->msg[plen + 2 + keep] = '\0';
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
}

/*
 * The note of the last request that failed in this thread. Requests (read,
 * write, flush, discard) return a bare errno; a driver that knows more (a
 * network driver knows which server did not answer, and after how long)
 * leaves it here for the facade's message. It is per thread because the
 * request that failed ran in the thread that reports it.
 */
static __thread BdrvError io_note;

void bdrv_io_error_note(int code, const char *fmt, ...)
{
    va_list ap;

    io_note.code = code;
    va_start(ap, fmt);
    vsnprintf(io_note.msg, sizeof(io_note.msg), fmt, ap);
    va_end(ap);
}

bool bdrv_io_error_take(int code, char *buf, size_t len)
{
    /* A note left by another error (one that was handled, say) is not this one's. */
    bool match = io_note.code != 0 && io_note.code == code;

    if (match && len) {
        snprintf(buf, len, "%s", io_note.msg);
    }
    io_note.code = 0;
    return match;
}
