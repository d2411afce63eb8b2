/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qiov.c: scatter/gather vectors passed down the block layer without copying. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"

void qiov_init_buf(QBIOVector *qiov, void *buf, size_t len)
{
    qiov->local.iov_base = buf;
    qiov->local.iov_len = len;
    qiov->iov = &qiov->local;
    qiov->niov = 1;
    qiov->nalloc = 0;
    qiov->size = len;
}

int qiov_init(QBIOVector *qiov, int hint)
{
    if (hint < 1) {
        hint = 1;
    }
    qiov->iov = calloc((size_t)hint, sizeof(struct iovec));
    if (!qiov->iov) {
        qiov->nalloc = 0;
        qiov->niov = 0;
        qiov->size = 0;
        return -ENOMEM;
    }
    qiov->nalloc = hint;
    qiov->niov = 0;
    qiov->size = 0;
    return 0;
}

int qiov_add(QBIOVector *qiov, void *base, size_t len)
{
    if (qiov->nalloc == 0) {
        return -EINVAL;   /* a fixed (buffer or slice) vector cannot grow */
    }
    if (len == 0) {
        return 0;
    }
    if (qiov->niov == qiov->nalloc) {
        int n = qiov->nalloc * 2;
        struct iovec *v = realloc(qiov->iov, (size_t)n * sizeof(*v));
        if (!v) {
            return -ENOMEM;
        }
        qiov->iov = v;
        qiov->nalloc = n;
    }
    qiov->iov[qiov->niov].iov_base = base;
    qiov->iov[qiov->niov].iov_len = len;
    qiov->niov++;
    qiov->size += len;
    return 0;
}

int qiov_init_slice(QBIOVector *dst, const QBIOVector *src, size_t offset, size_t len)
{
    int i = 0;
    int ret;

    if (offset > src->size || len > src->size - offset) {
        return -EINVAL;
    }
    /* The common case, a slice of a one-buffer vector, needs no allocation. */
    if (src->niov == 1) {
        qiov_init_buf(dst, (char *)src->iov[0].iov_base + offset, len);
        return 0;
    }
    ret = qiov_init(dst, src->niov);
    if (ret < 0) {
        return ret;
    }
    while (i < src->niov && offset >= src->iov[i].iov_len) {
        offset -= src->iov[i].iov_len;
        i++;
    }
    for (; len && i < src->niov; i++) {
        size_t n = MIN(len, src->iov[i].iov_len - offset);
        ret = qiov_add(dst, (char *)src->iov[i].iov_base + offset, n);
        if (ret < 0) {
            qiov_destroy(dst);
            return ret;
        }
        len -= n;
        offset = 0;
    }
    return 0;
}

void qiov_destroy(QBIOVector *qiov)
{
    if (qiov->nalloc) {
        free(qiov->iov);
    }
    qiov->iov = NULL;
    qiov->niov = 0;
    qiov->nalloc = 0;
    qiov->size = 0;
}

/* Apply @fn to each piece of [offset, offset+len) of @qiov; returns bytes covered. */
static size_t qiov_walk(const QBIOVector *qiov, size_t offset, size_t len,
                        void (*fn)(void *piece, size_t n, size_t done, void *opaque),
                        void *opaque)
{
    size_t done = 0;
    for (int i = 0; i < qiov->niov && done < len; i++) {
        size_t il = qiov->iov[i].iov_len;
        if (offset >= il) {
            offset -= il;
            continue;
        }
        size_t n = MIN(len - done, il - offset);
        fn((char *)qiov->iov[i].iov_base + offset, n, done, opaque);
        done += n;
        offset = 0;
    }
    return done;
}

static void copy_out(void *piece, size_t n, size_t done, void *buf)
{
    memcpy((char *)buf + done, piece, n);
}

static void copy_in(void *piece, size_t n, size_t done, void *buf)
{
    memcpy(piece, (const char *)buf + done, n);
}

static void fill(void *piece, size_t n, size_t done, void *c)
{
    (void)done;
    memset(piece, *(int *)c, n);
}

size_t qiov_to_buf(const QBIOVector *qiov, size_t offset, void *buf, size_t len)
{
    return qiov_walk(qiov, offset, len, copy_out, buf);
}

size_t qiov_from_buf(QBIOVector *qiov, size_t offset, const void *buf, size_t len)
{
    return qiov_walk(qiov, offset, len, copy_in, (void *)buf);
}

size_t qiov_memset(QBIOVector *qiov, size_t offset, int c, size_t len)
{
    return qiov_walk(qiov, offset, len, fill, &c);
}

bool qiov_is_zero(const QBIOVector *qiov)
{
    for (int i = 0; i < qiov->niov; i++) {
        if (!buffer_is_zero(qiov->iov[i].iov_base, qiov->iov[i].iov_len)) {
            return false;
        }
    }
    return true;
}
