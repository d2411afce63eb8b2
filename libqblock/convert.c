/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* convert.c: copying images into a new or existing target (qb_convert) and comparing two (qb_compare). */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* Data moves in requests of this size: large enough to stream, small enough to hold twice. */
#define IO_CHUNK (2 * 1024 * 1024)
#define SECTOR_BYTES 512

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return MIN(a, b);
}

/*
 * A failed inner call's message without its "qb_xxx: " prefix, so that the
 * outer message names only the call the caller made.
 */
static const char *inner_msg(QBroker *b)
{
    const char *m = b->msg;
    size_t n = strspn(m, "abcdefghijklmnopqrstuvwxyz_");

    if (n > 3 && strncmp(m, "qb_", 3) == 0 && m[n] == ':' && m[n + 1] == ' ') {
        return m + n + 2;
    }
    return m[0] ? m : "unknown error";
}

/*
 * Records the broker's last failure again, code and errno kept, under a
 * message of the outer call's own: "<fmt...>: <the inner message>".
 */
static int refail(QBroker *b, const char *fmt, ...) PRINTF_FMT(2, 3);
static int refail(QBroker *b, const char *fmt, ...)
{
    char inner[sizeof(b->msg)], head[sizeof(b->msg)];
    va_list ap;

    snprintf(inner, sizeof(inner), "%s", inner_msg(b));
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    return qb_fail(b, b->err_code ? b->err_code : QB_ERR_INTERNAL_ERR, b->err_no, "%s: %s",
                   head, inner);
}

static uint64_t image_size(QBlockState *qbs)
{
    int64_t len = bdrv_getlength(qbs->bs);
    return len > 0 ? (uint64_t)len : 0;
}

/* ------------------------------------------------------------------ */
/* convert                                                             */

/* What a piece of a chunk is, as the source's block status says. */
enum { SEG_DATA, SEG_ZERO, SEG_SKIP };

typedef struct ConvSeg {
    uint64_t off, len;          /* relative to the chunk */
    int kind;
} ConvSeg;

typedef struct ConvCtx {
    QBlockState *const *src;
    uint32_t nsrc;
    uint64_t *first_chunk;      /* nsrc + 1 entries: chunk index where each source starts */
    uint64_t *base;             /* nsrc entries: target offset of each source */
    uint64_t *size;             /* nsrc entries: each source's size, read once */
    QBlockState *dst;
    uint64_t dst_size;
    uint64_t total;
    uint64_t nchunks;
    uint64_t sparse;
    uint64_t compress_cluster;  /* qcow2 -c: its cluster size; 0 otherwise */
    bool zero_init;             /* the target reads zeros wherever it is not written */
    bool top_only;              /* QB_CONVERT_BACKING_SHARED */
    bool need_status;           /* sparse detection or -B: ask the source's block status */
    bool in_order;
    bool inline_run;            /* one request: the caller's thread does the work */
    QBlockProgressFunc progress;
    void *opaque;

    pthread_mutex_t lock;
    pthread_cond_t cond;        /* every change below is broadcast */
    uint64_t next_chunk;        /* the next chunk a worker takes */
    uint64_t next_write;        /* in order: the chunk whose turn it is to write */
    uint64_t done;              /* source bytes handled */
    int running;                /* workers that have not finished */
    bool stop;                  /* an error or a cancellation: take no new chunk */
    int err_code, err_no;       /* the first failure */
    char err_msg[1024];
} ConvCtx;

/* Per worker: its own broker (brokers belong to one thread) and buffers. */
typedef struct ConvWorker {
    ConvCtx *ctx;
    QBroker *broker;
    uint8_t *buf;
    ConvSeg *segs;
    pthread_t thread;
    bool started;
} ConvWorker;

/* Records the first failure (later ones are consequences) and stops the run. Lock held. */
static void conv_fail_locked(ConvCtx *c, int code, int err_no, const char *fmt, ...)
    PRINTF_FMT(4, 5);
static void conv_fail_locked(ConvCtx *c, int code, int err_no, const char *fmt, ...)
{
    va_list ap;

    if (!c->err_code) {
        c->err_code = code;
        c->err_no = err_no;
        va_start(ap, fmt);
        vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
        va_end(ap);
    }
    c->stop = true;
    pthread_cond_broadcast(&c->cond);
}

/* A failed call on the worker's broker: "<what> at byte N: <its message>". */
static int conv_fail_call(ConvWorker *w, const char *what, uint64_t off)
{
    ConvCtx *c = w->ctx;

    pthread_mutex_lock(&c->lock);
    conv_fail_locked(c, w->broker->err_code ? w->broker->err_code : QB_ERR_INTERNAL_ERR,
                     w->broker->err_no, "qb_convert: %s at byte %" PRIu64 ": %s", what, off,
                     inner_msg(w->broker));
    pthread_mutex_unlock(&c->lock);
    return -1;
}

static int conv_write(ConvWorker *w, const uint8_t *buf, uint64_t len, uint64_t off)
{
    if (len && qb_write(w->broker, w->ctx->dst, buf, len, off) < 0) {
        return conv_fail_call(w, "error while writing", off);
    }
    return 0;
}

/*
 * Makes [off, off+len) of the target read as zeros: nothing to do on a
 * target that starts out zeroed; on an existing one, zeros are written
 * wherever the target does not already read as zeros.
 */
static int conv_zero(ConvWorker *w, uint64_t off, uint64_t len)
{
    ConvCtx *c = w->ctx;

    if (c->zero_init) {
        return 0;
    }
    while (len > 0) {
        QBlockStatusInfo st;
        uint64_t n;

        memset(&st, 0, sizeof(st));
        if (qb_block_status(w->broker, c->dst, off, len, &st) < 0 ||
            st.length == 0 || st.length > len) {
            /* Without a status, writing zeros is always correct. */
            st.length = min_u64(len, IO_CHUNK);
            st.flags = 0;
        }
        n = st.length;
        /*
         * A zero-write request, not a buffer of zeros: formats that can
         * record zeros (qcow2 v3, qed) then do so without allocating,
         * over a backing file too, as qemu-img convert leaves them.
         */
        if (!(st.flags & QB_BLOCK_ZERO) && qb_write_zeroes(w->broker, c->dst, off, n, 0) < 0) {
            return conv_fail_call(w, "error while writing zeros", off);
        }
        off += n;
        len -= n;
    }
    return 0;
}

/*
 * Writes a buffer read from the source, leaving out every run of whole
 * zero sectors at least c->sparse bytes long.
 */
static int conv_buffer(ConvWorker *w, const uint8_t *buf, uint64_t len, uint64_t off)
{
    uint64_t sparse = w->ctx->sparse, pos = 0;

    if (sparse == 0) {
        return conv_write(w, buf, len, off);
    }
    while (pos < len) {
        uint64_t data_start = pos, j = pos, run_end = pos;
        bool found = false;

        while (j < len) {
            uint64_t unit = min_u64(len - j, SECTOR_BYTES);

            if (!buffer_is_zero(buf + j, unit)) {
                j += unit;
                continue;
            }
            run_end = j;
            while (run_end < len) {
                uint64_t u = min_u64(len - run_end, SECTOR_BYTES);
                if (!buffer_is_zero(buf + run_end, u)) {
                    break;
                }
                run_end += u;
            }
            if (run_end - j >= sparse) {
                found = true;
                break;
            }
            j = run_end;
        }
        if (conv_write(w, buf + data_start, j - data_start, off + data_start) < 0) {
            return -1;
        }
        if (!found) {
            break;
        }
        if (conv_zero(w, off + j, run_end - j) < 0) {
            return -1;
        }
        pos = run_end;
    }
    return 0;
}

/*
 * Compressed output: writes the buffer (cluster-aligned at @off, whole
 * clusters except at the end of the target) as compressed clusters, one
 * request per run of clusters that are not all zeros. A partial last
 * cluster is padded with zeros up to the cluster or the target's end,
 * since compressed clusters are stored whole; the worker's buffer has room.
 */
static int conv_compressed(ConvWorker *w, uint8_t *buf, uint64_t len, uint64_t off)
{
    ConvCtx *c = w->ctx;
    uint64_t cs = c->compress_cluster, pos = 0;

    while (pos < len) {
        uint64_t run = pos;

        while (run < len && !buffer_is_zero(buf + run, min_u64(cs, len - run))) {
            run += min_u64(cs, len - run);
        }
        if (run > pos) {
            uint64_t wlen = run - pos;
            if (wlen % cs) {
                uint64_t padded = min_u64(ROUND_UP(wlen, cs), c->dst_size - (off + pos));
                memset(buf + pos + wlen, 0, padded - wlen);
                wlen = padded;
            }
            if (qb_write_compressed(w->broker, c->dst, buf + pos, wlen, off + pos) < 0) {
                return conv_fail_call(w, "error while compressing", off + pos);
            }
            pos = run;
            continue;
        }
        run = min_u64(cs, len - pos);
        if (conv_zero(w, off + pos, run) < 0) {
            return -1;
        }
        pos += run;
    }
    return 0;
}

/*
 * Splits [off, off+len) of source @s into data, zero and skipped pieces by
 * its block status, reading the data pieces into the worker's buffer.
 * Returns the number of pieces, or -1 after recording a failure.
 */
static int conv_read_chunk(ConvWorker *w, QBlockState *s, uint64_t off, uint64_t len)
{
    ConvCtx *c = w->ctx;
    uint64_t cs = c->compress_cluster, pos = 0;
    int nseg = 0;

    while (pos < len) {
        QBlockStatusInfo st;
        uint64_t n = len - pos;
        int kind = SEG_DATA;

        if (c->need_status) {
            memset(&st, 0, sizeof(st));
            if (qb_block_status(w->broker, s, off + pos, n, &st) < 0) {
                return conv_fail_call(w, "error while reading block status", off + pos);
            }
            if (st.length == 0 || st.length > n) {
                pthread_mutex_lock(&c->lock);
                conv_fail_locked(c, QB_ERR_INTERNAL_ERR, EIO, "qb_convert: error while reading "
                                 "block status at offset %" PRIu64 ": bad length %" PRIu64,
                                 off + pos, st.length);
                pthread_mutex_unlock(&c->lock);
                return -1;
            }
            if (c->top_only && (!(st.flags & QB_BLOCK_ALLOCATED) || st.depth > 0)) {
                kind = SEG_SKIP;
            } else if ((st.flags & QB_BLOCK_ZERO) && c->sparse) {
                kind = SEG_ZERO;
            }
            if (cs && st.length < n) {
                /*
                 * Compressed output moves whole clusters: a zero run shrinks
                 * to the clusters it covers whole, a data run grows to them.
                 */
                uint64_t end = off + pos + st.length;
                end = kind == SEG_DATA ? ROUND_UP(end, cs) : ROUND_DOWN(end, cs);
                if (end <= off + pos) {
                    kind = SEG_DATA;
                    end = ROUND_UP(off + pos + 1, cs);
                }
                st.length = min_u64(end - (off + pos), n);
            }
            n = st.length;
        }
        if (nseg > 0 && w->segs[nseg - 1].kind == kind) {
            w->segs[nseg - 1].len += n;
        } else {
            w->segs[nseg].off = pos;
            w->segs[nseg].len = n;
            w->segs[nseg].kind = kind;
            nseg++;
        }
        if (kind == SEG_DATA && qb_read(w->broker, s, w->buf + pos, n, off + pos) < 0) {
            return conv_fail_call(w, "error while reading", off + pos);
        }
        pos += n;
    }
    return nseg;
}

/* Writes the pieces conv_read_chunk found, at target offset @toff. */
static int conv_write_chunk(ConvWorker *w, int nseg, uint64_t toff)
{
    ConvCtx *c = w->ctx;

    for (int k = 0; k < nseg; k++) {
        const ConvSeg *sg = &w->segs[k];
        int ret = 0;

        if (sg->kind == SEG_ZERO) {
            ret = conv_zero(w, toff + sg->off, sg->len);
        } else if (sg->kind == SEG_DATA) {
            ret = c->compress_cluster
                ? conv_compressed(w, w->buf + sg->off, sg->len, toff + sg->off)
                : conv_buffer(w, w->buf + sg->off, sg->len, toff + sg->off);
        }
        if (ret < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * Calls the progress callback with the bytes done so far; only the
 * caller's thread does, so the values it sees never decrease. A non-zero
 * answer cancels the run.
 */
static void conv_report(ConvCtx *c, uint64_t *reported)
{
    uint64_t d;

    if (!c->progress) {
        return;
    }
    pthread_mutex_lock(&c->lock);
    d = c->done;
    pthread_mutex_unlock(&c->lock);
    if (d == *reported && d != 0) {
        return;
    }
    *reported = d;
    if (c->progress(d, c->total, c->opaque) != 0) {
        pthread_mutex_lock(&c->lock);
        conv_fail_locked(c, QB_ERR_CANCELED, ECANCELED,
                         "qb_convert: canceled by the progress callback");
        pthread_mutex_unlock(&c->lock);
    }
}

/*
 * One request's loop: take the next chunk, read it (in parallel with the
 * other workers), wait for its turn when writes go in order, write it.
 * The workers take chunks in increasing order, so the one holding the
 * lowest unwritten chunk never waits and the turn always moves on.
 */
static void conv_run(ConvWorker *w, bool caller, uint64_t *reported)
{
    ConvCtx *c = w->ctx;
    uint32_t si = 0;

    for (;;) {
        uint64_t i, off, len, size;
        int nseg;
        bool stop;

        pthread_mutex_lock(&c->lock);
        if (c->stop || c->next_chunk >= c->nchunks) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        i = c->next_chunk++;
        pthread_mutex_unlock(&c->lock);

        while (c->first_chunk[si + 1] <= i) {
            si++;
        }
        size = c->size[si];
        off = (i - c->first_chunk[si]) * (uint64_t)IO_CHUNK;
        len = min_u64(IO_CHUNK, size - off);
        nseg = conv_read_chunk(w, c->src[si], off, len);
        if (nseg < 0) {
            break;
        }
        if (c->in_order) {
            pthread_mutex_lock(&c->lock);
            while (!c->stop && c->next_write != i) {
                pthread_cond_wait(&c->cond, &c->lock);
            }
            stop = c->stop;
            pthread_mutex_unlock(&c->lock);
            if (stop) {
                break;
            }
        }
        if (conv_write_chunk(w, nseg, c->base[si] + off) < 0) {
            break;
        }
        pthread_mutex_lock(&c->lock);
        c->next_write++;
        c->done += len;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        if (caller) {
            conv_report(c, reported);
        }
    }
}

static void *conv_thread(void *opaque)
{
    ConvWorker *w = opaque;

    conv_run(w, false, NULL);
    return NULL;
}

static void conv_worker_free(ConvWorker *w)
{
    qb_broker_delete(&w->broker);
    free(w->buf);
    free(w->segs);
}

static int conv_worker_init(ConvWorker *w, ConvCtx *c)
{
    void *p = NULL;

    memset(w, 0, sizeof(*w));
    w->ctx = c;
    /* Room for a compressed last cluster padded to its whole size. */
    if (posix_memalign(&p, 4096, IO_CHUNK + (size_t)c->compress_cluster) != 0) {
        return -1;
    }
    w->buf = p;
    w->segs = calloc(IO_CHUNK / SECTOR_BYTES + 2, sizeof(*w->segs));
    if (!w->segs || qb_broker_new(&w->broker) < 0) {
        conv_worker_free(w);
        return -1;
    }
    return 0;
}

/* Whether the format stores data compressed on request (the capability table's answer). */
static bool fmt_can_compress(enum QBlockFmtType t)
{
    QBroker b;
    QBlockFmtCaps caps;

    memset(&b, 0, sizeof(b));
    return qb_fmt_get_caps(&b, t, &caps) == 0 && (caps.flags & QB_CAP_COMPRESSED_WRITE);
}

/* Checks the parameters that do not depend on the target; fills the sources' total. */
static int convert_check_params(QBroker *broker, const QBlockConvertParams *p, uint64_t *total)
{
    static const char func[] = "qb_convert";

    if (!p) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: NULL parameters", func);
    }
    if (!p->sources || p->nb_sources == 0) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: no source images", func);
    }
    if (!p->target) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: NULL target state", func);
    }
    if (p->flags & ~(uint32_t)QB_CONVERT_ALL_FLAGS) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: unknown flags 0x%x", func,
                       p->flags & ~(uint32_t)QB_CONVERT_ALL_FLAGS);
    }
    if (p->num_requests > QB_CONVERT_MAX_REQUESTS) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: %u requests in flight; the range is 1 to %d", func,
                       p->num_requests, QB_CONVERT_MAX_REQUESTS);
    }
    if (p->sparse_size % SECTOR_BYTES || p->sparse_size > QB_CONVERT_MAX_SPARSE_SIZE) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: sparse size %" PRIu64 " is not a multiple of %d up to %d", func,
                       p->sparse_size, SECTOR_BYTES, QB_CONVERT_MAX_SPARSE_SIZE);
    }
    *total = 0;
    for (uint32_t i = 0; i < p->nb_sources; i++) {
        QBlockState *s = p->sources[i];
        uint64_t size;

        if (!s || !s->bs) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: source %u is %s", func, i,
                           s ? "not open" : "NULL");
        }
        if (s == p->target) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "%s: the target is also the source '%s'", func, s->filename);
        }
        size = image_size(s);
        if (size > (uint64_t)INT64_MAX - *total) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "%s: The sources are too large together", func);
        }
        *total += size;
    }
    return 0;
}

/*
 * Create mode: creates the target and opens it read-write. Creating
 * truncates the file, so a target that is one of the sources (by device
 * and inode, whatever the names) is refused first: its data would be gone
 * before it was read.
 */
static int convert_create_target(QBroker *broker, const QBlockConvertParams *p, uint64_t total)
{
    static const char func[] = "qb_convert";
    QBlockProtInfo loc;
    QBlockFmtInfo fmt, open_fmt;
    struct stat dst_st, src_st;
    int ret;

    if (!p->target_loc || p->target_loc->prot_type != QB_PROT_FILE ||
        !p->target_loc->prot_op.o_file.filename) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: create mode needs a file location for the target", func);
    }
    if (p->target->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: create mode needs a closed target state", func);
    }
    if ((p->flags & QB_CONVERT_COMPRESSED) && !fmt_can_compress(p->target_fmt->fmt_type)) {
        return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                       "%s: Compression not supported for this file format", func);
    }
    loc = *p->target_loc;
    if (stat(loc.prot_op.o_file.filename, &dst_st) == 0) {
        for (uint32_t i = 0; i < p->nb_sources; i++) {
            const char *name = p->sources[i]->filename;
            if (name && stat(name, &src_st) == 0 && src_st.st_dev == dst_st.st_dev &&
                src_st.st_ino == dst_st.st_ino) {
                return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                               "%s: the target is also the source '%s'", func, name);
            }
        }
    }
    /* Every format's options begin with virt_size, so any member of the union reaches it. */
    fmt = *p->target_fmt;
    if (fmt.fmt_op.o_raw.virt_size == 0) {
        fmt.fmt_op.o_raw.virt_size = total;
    }
    ret = qb_create(broker, p->target, &loc, &fmt, p->target_flags);
    if (ret < 0) {
        return refail(broker, "%s: %s: error while converting %s", func,
                      loc.prot_op.o_file.filename,
                      qb_fmttype2str(fmt.fmt_type) ? qb_fmttype2str(fmt.fmt_type) : "?");
    }
    memset(&open_fmt, 0, sizeof(open_fmt));
    open_fmt.fmt_type = fmt.fmt_type;
    return qb_open(broker, p->target, &loc, &open_fmt, LIBQBLOCK_O_RDWR | p->target_flags);
}

/* Fills the parts of @c that depend on the open target. */
static int convert_check_target(QBroker *broker, const QBlockConvertParams *p, ConvCtx *c,
                                bool created)
{
    static const char func[] = "qb_convert";
    QBlockState *dst = p->target;
    BlockDriverInfo bdi;

    if (!dst->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: the target is not open", func);
    }
    if (!(dst->flags & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS,
                       "%s: the target '%s' is open read-only", func, dst->filename);
    }
    c->dst = dst;
    c->dst_size = image_size(dst);
    if (c->dst_size < c->total) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: output file is smaller than input file", func);
    }
    c->zero_init = (p->flags & QB_CONVERT_TARGET_IS_ZERO) ||
                   (created && bdrv_has_zero_init(dst->bs) == 1);
    if (!(p->flags & QB_CONVERT_COMPRESSED)) {
        return 0;
    }
    if (!fmt_can_compress(qb_str2fmttype(bdrv_get_format_name(dst->bs)))) {
        return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                       "%s: Compression not supported for this file format", func);
    }
    /* Formats that compress every grain anyway (vmdk streamOptimized) take plain writes. */
    if (qb_str2fmttype(bdrv_get_format_name(dst->bs)) != QB_FMT_QCOW2) {
        return 0;
    }
    memset(&bdi, 0, sizeof(bdi));
    if (bdrv_get_info(dst->bs, &bdi) < 0 || bdi.cluster_size <= 0 ||
        bdi.cluster_size > IO_CHUNK || (bdi.cluster_size & (bdi.cluster_size - 1))) {
        return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                       "%s: the target's cluster size does not allow compression", func);
    }
    c->compress_cluster = (uint64_t)bdi.cluster_size;
    /* Each source starts a cluster of its own only when the ones before fill whole clusters. */
    for (uint32_t i = 0; i + 1 < c->nsrc; i++) {
        if (image_size(c->src[i]) % c->compress_cluster) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "%s: compressed output from several images needs every image but "
                           "the last to be a multiple of the cluster size (%" PRIu64 ")",
                           func, c->compress_cluster);
        }
    }
    return 0;
}

/* Copies the sources into the open target with @n requests in flight. */
static int convert_copy(QBroker *broker, ConvCtx *c, uint32_t n)
{
    ConvWorker *w;
    uint64_t reported = 0;
    int ret = 0;

    w = calloc(n, sizeof(*w));
    if (!w) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_convert: out of memory");
    }
    for (uint32_t k = 0; k < n; k++) {
        if (conv_worker_init(&w[k], c) < 0) {
            if (k == 0) {
                free(w);
                return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_convert: out of memory");
            }
            /* Fewer requests in flight are still a correct copy. */
            n = k;
            break;
        }
    }
    /* Worker 0 is the caller's thread; the others run beside it. */
    for (uint32_t k = 1; k < n; k++) {
        if (pthread_create(&w[k].thread, NULL, conv_thread, &w[k]) == 0) {
            w[k].started = true;
        }
    }
    conv_run(&w[0], true, &reported);
    for (uint32_t k = 1; k < n; k++) {
        if (w[k].started) {
            pthread_join(w[k].thread, NULL);
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        conv_worker_free(&w[k]);
    }
    free(w);
    if (c->err_code) {
        ret = qb_fail(broker, c->err_code, c->err_no, "%s", c->err_msg);
    }
    return ret;
}

int qb_convert(QBroker *broker, const QBlockConvertParams *p)
{
    ConvCtx c;
    uint64_t total = 0, chunks = 0, base = 0;
    bool created = false;
    int ret;

    QB_REQUIRE_BROKER(broker);

    ret = convert_check_params(broker, p, &total);
    if (ret < 0) {
        return ret;
    }
    if (p->target_fmt) {
        ret = convert_create_target(broker, p, total);
        if (ret < 0) {
            return ret;
        }
        created = true;
    }

    memset(&c, 0, sizeof(c));
    c.src = p->sources;
    c.nsrc = p->nb_sources;
    c.total = total;
    c.sparse = p->sparse_size;
    c.top_only = p->flags & QB_CONVERT_BACKING_SHARED;
    c.need_status = c.sparse || c.top_only;
    c.progress = p->progress;
    c.opaque = p->progress_opaque;
    c.first_chunk = calloc(c.nsrc + 1, sizeof(*c.first_chunk));
    c.base = calloc(c.nsrc, sizeof(*c.base));
    c.size = calloc(c.nsrc, sizeof(*c.size));
    if (!c.first_chunk || !c.base || !c.size) {
        ret = qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_convert: out of memory");
        goto out;
    }
    ret = convert_check_target(broker, p, &c, created);
    if (ret < 0) {
        goto out;
    }
    /*
     * Compressed clusters are appended to the image file, so they go in
     * the order of their offsets whatever -W says; qcow2's compressed
     * writes are not meant to race each other either.
     */
    c.in_order = !(p->flags & QB_CONVERT_OUT_OF_ORDER) || c.compress_cluster;
    for (uint32_t i = 0; i < c.nsrc; i++) {
        uint64_t size = image_size(c.src[i]);
        c.size[i] = size;
        c.first_chunk[i] = chunks;
        c.base[i] = base;
        chunks += (size + IO_CHUNK - 1) / IO_CHUNK;
        base += size;
    }
    c.first_chunk[c.nsrc] = chunks;
    c.nchunks = chunks;
    if (pthread_mutex_init(&c.lock, NULL) != 0) {
        ret = qb_fail(broker, QB_ERR_INTERNAL_ERR, EAGAIN, "qb_convert: no mutex");
        goto out;
    }
    if (pthread_cond_init(&c.cond, NULL) != 0) {
        pthread_mutex_destroy(&c.lock);
        ret = qb_fail(broker, QB_ERR_INTERNAL_ERR, EAGAIN, "qb_convert: no condition variable");
        goto out;
    }
    ret = convert_copy(broker, &c, p->num_requests ? p->num_requests : QB_CONVERT_DEFAULT_REQUESTS);
    if (ret == 0 && qb_flush(broker, c.dst) < 0) {
        ret = refail(broker, "qb_convert: error while flushing '%s'", c.dst->filename);
    }
    if (ret == 0 && c.progress) {
        /* Everything is written and flushed: a cancel now has nothing left to stop. */
        (void)c.progress(c.total, c.total, c.opaque);
    }
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.lock);

out:
    if (ret < 0 && created) {
        /* A failed create-mode run leaves the state closed; the close must not hide the error. */
        QBroker saved = *broker;
        qb_close(broker, p->target);
        *broker = saved;
    }
    free(c.first_chunk);
    free(c.base);
    free(c.size);
    return ret;
}

/* ------------------------------------------------------------------ */
/* compare                                                             */

/*
 * The status strict mode compares: qemu-img compares the whole status word
 * of each run, which also says whether the run reaches the end of the
 * image, so a hole that ends an image differs from one that does not.
 */
#define STATUS_MASK (QB_BLOCK_DATA | QB_BLOCK_ZERO | QB_BLOCK_ALLOCATED | QB_BLOCK_OFFSET_VALID)
#define STATUS_EOF  0x10000

static int strict_status(const QBlockStatusInfo *st, uint64_t off, uint64_t size)
{
    return (st->flags & STATUS_MASK) | (off + st->length == size ? STATUS_EOF : 0);
}

typedef struct CmpCtx {
    QBroker *broker;
    QBlockProgressFunc progress;
    void *opaque;
    uint64_t total;             /* the larger size */
    uint8_t *buf1, *buf2;
} CmpCtx;

/* The status of the run at @off, at most @len bytes, checked for sanity. */
static int cmp_status(CmpCtx *c, QBlockState *s, uint64_t off, uint64_t len, QBlockStatusInfo *st)
{
    memset(st, 0, sizeof(*st));
    if (qb_block_status(c->broker, s, off, len, st) < 0) {
        return refail(c->broker, "qb_compare: Sector allocation test failed for %s", s->filename);
    }
    if (st->length == 0 || st->length > len) {
        return qb_fail(c->broker, QB_ERR_INTERNAL_ERR, EIO,
                       "qb_compare: Sector allocation test failed for %s", s->filename);
    }
    return 0;
}

/* Reads [off, off+len) of @s into @buf, or fills zeros when the status says so. */
static int cmp_read(CmpCtx *c, QBlockState *s, uint8_t *buf, uint64_t len, uint64_t off, bool zero)
{
    if (zero) {
        memset(buf, 0, len);
        return 0;
    }
    if (qb_read(c->broker, s, buf, len, off) < 0) {
        return refail(c->broker, "qb_compare: Error while reading offset %" PRIu64 " of %s",
                      off, s->filename);
    }
    return 0;
}

/* The offset of the first differing byte, rounded down to its sector, or -1. */
static int64_t first_difference(const uint8_t *a, const uint8_t *b, uint64_t len, uint64_t off)
{
    if (memcmp(a, b, len) == 0) {
        return -1;
    }
    for (uint64_t i = 0; i < len; i++) {
        if (a[i] != b[i]) {
            return (int64_t)ROUND_DOWN(off + i, SECTOR_BYTES);
        }
    }
    return -1;
}

static int cmp_report(CmpCtx *c, uint64_t done)
{
    if (c->progress && c->progress(done, c->total, c->opaque) != 0) {
        return qb_fail(c->broker, QB_ERR_CANCELED, ECANCELED,
                       "qb_compare: canceled by the progress callback");
    }
    return 0;
}

/*
 * Compares @len bytes at @off of @a and @b, either of which may be known to
 * read as zeros (then it is not read): 0 equal, 1 different (@res says
 * where), < 0 error.
 */
static int cmp_range(CmpCtx *c, QBlockState *a, bool zero_a, QBlockState *b, bool zero_b,
                     uint64_t off, uint64_t len, QBlockCompareResult *res)
{
    int64_t diff;
    int ret;

    if ((ret = cmp_read(c, a, c->buf1, len, off, zero_a)) < 0 ||
        (ret = cmp_read(c, b, c->buf2, len, off, zero_b)) < 0) {
        return ret;
    }
    diff = first_difference(c->buf1, c->buf2, len, off);
    if (diff < 0) {
        return 0;
    }
    res->mismatch = QB_COMPARE_CONTENT;
    res->offset = (uint64_t)diff;
    return 1;
}

/* The part both images have: 0 equal, 1 different (res filled), < 0 error. */
static int cmp_common(CmpCtx *c, QBlockState *a, QBlockState *b, bool strict,
                      uint64_t size1, uint64_t size2, QBlockCompareResult *res)
{
    uint64_t min_size = MIN(size1, size2);

    for (uint64_t off = 0; off < min_size; ) {
        QBlockStatusInfo st1, st2;
        uint64_t chunk;
        bool zero1, zero2;
        int ret;

        if ((ret = cmp_status(c, a, off, min_size - off, &st1)) < 0 ||
            (ret = cmp_status(c, b, off, min_size - off, &st2)) < 0) {
            return ret;
        }
        if (strict && strict_status(&st1, off, size1) != strict_status(&st2, off, size2)) {
            res->mismatch = QB_COMPARE_STATUS;
            res->offset = off;
            return 1;
        }
        chunk = MIN(st1.length, st2.length);
        zero1 = st1.flags & QB_BLOCK_ZERO;
        zero2 = st2.flags & QB_BLOCK_ZERO;
        if (!(zero1 && zero2)) {
            chunk = MIN(chunk, IO_CHUNK);
            if ((ret = cmp_range(c, a, zero1, b, zero2, off, chunk, res)) != 0) {
                return ret;
            }
        }
        off += chunk;
        if ((ret = cmp_report(c, off)) < 0) {
            return ret;
        }
    }
    return 0;
}

/* The part only the larger image @big has must read as zeros. */
static int cmp_tail(CmpCtx *c, QBlockState *big, uint64_t from, uint64_t big_size,
                    QBlockCompareResult *res)
{
    for (uint64_t off = from; off < big_size; ) {
        QBlockStatusInfo st;
        uint64_t chunk;
        int ret;

        if ((ret = cmp_status(c, big, off, big_size - off, &st)) < 0) {
            return ret;
        }
        chunk = st.length;
        if (!(st.flags & QB_BLOCK_ZERO)) {
            chunk = MIN(chunk, IO_CHUNK);
            if ((ret = cmp_range(c, big, false, big, true, off, chunk, res)) != 0) {
                return ret;
            }
        }
        off += chunk;
        if ((ret = cmp_report(c, off)) < 0) {
            return ret;
        }
    }
    return 0;
}

int qb_compare(QBroker *broker, QBlockState *a, QBlockState *b, int flags,
               QBlockProgressFunc progress, void *opaque, QBlockCompareResult *res)
{
    CmpCtx c;
    uint64_t size1, size2;
    bool strict = flags & QB_COMPARE_STRICT;
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!a || !b || !a->bs || !b->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_compare: %s",
                       !a || !b ? "NULL state" : "the state is not open");
    }
    if (!res) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_compare: NULL result");
    }
    if (flags & ~QB_COMPARE_STRICT) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_compare: unknown flags 0x%x",
                       (unsigned)(flags & ~QB_COMPARE_STRICT));
    }
    memset(res, 0, sizeof(*res));
    size1 = image_size(a);
    size2 = image_size(b);
    res->size_differs = size1 != size2;
    if (strict && size1 != size2) {
        res->mismatch = QB_COMPARE_SIZE;
        return 1;
    }

    memset(&c, 0, sizeof(c));
    c.broker = broker;
    c.progress = progress;
    c.opaque = opaque;
    c.total = MAX(size1, size2);
    c.buf1 = malloc(IO_CHUNK);
    c.buf2 = malloc(IO_CHUNK);
    if (!c.buf1 || !c.buf2) {
        ret = qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_compare: out of memory");
        goto out;
    }
    ret = cmp_common(&c, a, b, strict, size1, size2, res);
    if (ret == 0 && size1 != size2) {
        ret = cmp_tail(&c, size1 > size2 ? a : b, MIN(size1, size2), c.total, res);
    }
    if (ret == 0 && c.total == 0) {
        /* Two empty images: the one call that says the work is complete. */
        ret = cmp_report(&c, 0);
    }

out:
    free(c.buf1);
    free(c.buf2);
    return ret;
}
