/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* convert.c: copying images into a new or existing target (qb_convert) and comparing two (qb_compare). */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <poll.h>
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

/*
 * What a piece of a chunk is: while reading, as the source's block status
 * says (data, zeros, or skipped); while writing, also a piece of data to
 * write compressed.
 */
enum { SEG_DATA, SEG_ZERO, SEG_SKIP, SEG_COMPRESS };

/* Where a chunk is in its life: no chunk, its reads, then its writes. */
enum { SLOT_FREE, SLOT_READ, SLOT_WRITE };

struct ConvSlot;

typedef struct ConvSeg {
    uint64_t off, len;          /* relative to the chunk */
    int kind;
    struct ConvSlot *slot;      /* the request's callback finds its chunk through it */
} ConvSeg;

/*
 * One chunk in flight: its buffer, the pieces its block status gave
 * (@segs, read phase) and the requests that write it (@ops, write phase);
 * @next is the first piece of the current phase not yet started.
 */
typedef struct ConvSlot {
    struct ConvCtx *ctx;
    int phase;
    uint64_t chunk;
    uint32_t si;                /* which source */
    uint64_t off, len;          /* in the source */
    uint64_t toff;              /* in the target */
    uint8_t *buf;
    ConvSeg *segs, *ops;
    int nseg, nops, ops_cap, next;
    int inflight;               /* its requests whose callbacks have not run */
} ConvSlot;

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
    QBlockProgressFunc progress;
    void *opaque;
    uint64_t reported;          /* the last value the progress callback saw */

    /* The run: everything below is only touched by the caller's thread. */
    QBroker broker;             /* for the synchronous calls; its messages are re-worded */
    ConvSlot *slots;
    uint32_t nslots;            /* = the requests that may be in flight */
    uint32_t inflight;          /* asynchronous requests submitted, callbacks not yet run */
    uint32_t writes_inflight;
    uint64_t next_chunk;        /* the next chunk a slot takes */
    uint64_t next_write;        /* in order: the chunk whose turn it is to write */
    uint64_t done;              /* source bytes handled */
    bool busy;                  /* a queue was full: wait for a completion */
    bool stop;                  /* an error or a cancellation: issue nothing new */
    int err_code, err_no;       /* the first failure */
    char err_msg[1024];
} ConvCtx;

/* Records the first failure (later ones are consequences) and stops the run. */
static void conv_fail(ConvCtx *c, int code, int err_no, const char *fmt, ...) PRINTF_FMT(4, 5);
static void conv_fail(ConvCtx *c, int code, int err_no, const char *fmt, ...)
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
}

/* A failed synchronous call: "<what> at byte N: <its message>". */
static int conv_fail_call(ConvCtx *c, const char *what, uint64_t off)
{
    conv_fail(c, c->broker.err_code ? c->broker.err_code : QB_ERR_INTERNAL_ERR,
              c->broker.err_no, "qb_convert: %s at byte %" PRIu64 ": %s", what, off,
              inner_msg(&c->broker));
    return -1;
}

/*
 * A failed asynchronous request, worded as the synchronous call's failure:
 * the worker's message names the qb_aio_* call, which inner_msg drops.
 */
static void conv_fail_req(ConvCtx *c, QBlockAIOReq *req, int64_t ret, const char *what,
                          uint64_t off)
{
    QBroker b;
    int err_no = 0;
    const char *msg = aio_req_error(req, &err_no);

    memset(&b, 0, sizeof(b));
    snprintf(b.msg, sizeof(b.msg), "%s", msg ? msg : qb_strerror((int)ret));
    conv_fail(c, (int)ret, err_no ? err_no : EIO, "qb_convert: %s at byte %" PRIu64 ": %s",
              what, off, inner_msg(&b));
}

/*
 * Makes [off, off+len) of the target read as zeros: nothing to do on a
 * target that starts out zeroed; on an existing one, zeros are written
 * wherever the target does not already read as zeros.
 */
static int conv_zero(ConvCtx *c, uint64_t off, uint64_t len)
{
    if (c->zero_init) {
        return 0;
    }
    while (len > 0) {
        QBlockStatusInfo st;
        uint64_t n;

        memset(&st, 0, sizeof(st));
        if (qb_block_status(&c->broker, c->dst, off, len, &st) < 0 ||
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
        if (!(st.flags & QB_BLOCK_ZERO) && qb_write_zeroes(&c->broker, c->dst, off, n, 0) < 0) {
            return conv_fail_call(c, "error while writing zeros", off);
        }
        off += n;
        len -= n;
    }
    return 0;
}

/*
 * Compressed output: writes the buffer (cluster-aligned at @off, whole
 * clusters except at the end of the target) as compressed clusters, one
 * request per run of clusters that are not all zeros. A partial last
 * cluster is padded with zeros up to the cluster or the target's end,
 * since compressed clusters are stored whole; the slot's buffer has room.
 * Compressed clusters are appended to the image file in the order they
 * are written, so these writes are synchronous, one after the other.
 */
static int conv_compressed(ConvCtx *c, uint8_t *buf, uint64_t len, uint64_t off)
{
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
            if (qb_write_compressed(&c->broker, c->dst, buf + pos, wlen, off + pos) < 0) {
                return conv_fail_call(c, "error while compressing", off + pos);
            }
            pos = run;
            continue;
        }
        run = min_u64(cs, len - pos);
        if (conv_zero(c, off + pos, run) < 0) {
            return -1;
        }
        pos += run;
    }
    return 0;
}

/* Appends a piece to @sl's write requests, merging it into the last one of its kind. */
static int conv_add_op(ConvSlot *sl, int kind, uint64_t off, uint64_t len)
{
    ConvSeg *op;

    if (len == 0) {
        return 0;
    }
    if (sl->nops > 0 && sl->ops[sl->nops - 1].kind == kind && kind != SEG_DATA &&
        sl->ops[sl->nops - 1].off + sl->ops[sl->nops - 1].len == off) {
        sl->ops[sl->nops - 1].len += len;
        return 0;
    }
    if (sl->nops == sl->ops_cap) {
        int cap = sl->ops_cap ? sl->ops_cap * 2 : 16;
        ConvSeg *p = realloc(sl->ops, (size_t)cap * sizeof(*p));
        if (!p) {
            conv_fail(sl->ctx, QB_ERR_MEM_ERR, ENOMEM, "qb_convert: out of memory");
            return -1;
        }
        sl->ops = p;
        sl->ops_cap = cap;
    }
    op = &sl->ops[sl->nops++];
    op->off = off;
    op->len = len;
    op->kind = kind;
    op->slot = sl;
    return 0;
}

/*
 * The writes of a data piece read from the source: with sparse detection,
 * every run of whole zero sectors at least c->sparse bytes long becomes a
 * zero piece instead of written data.
 */
static int conv_plan_data(ConvSlot *sl, uint64_t start, uint64_t len)
{
    const uint8_t *buf = sl->buf + start;
    uint64_t sparse = sl->ctx->sparse, pos = 0;

    if (sparse == 0) {
        return conv_add_op(sl, SEG_DATA, start, len);
    }
    while (pos < len) {
        uint64_t j = pos, run_end = pos;
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
        if (conv_add_op(sl, SEG_DATA, start + pos, j - pos) < 0) {
            return -1;
        }
        if (!found) {
            break;
        }
        if (conv_add_op(sl, SEG_ZERO, start + j, run_end - j) < 0) {
            return -1;
        }
        pos = run_end;
    }
    return 0;
}

/* The read is complete: turns the chunk's pieces into its write requests. */
static int conv_plan_writes(ConvSlot *sl)
{
    sl->nops = 0;
    for (int k = 0; k < sl->nseg; k++) {
        const ConvSeg *sg = &sl->segs[k];
        int ret = 0;

        if (sg->kind == SEG_ZERO) {
            ret = conv_add_op(sl, SEG_ZERO, sg->off, sg->len);
        } else if (sg->kind == SEG_DATA) {
            ret = sl->ctx->compress_cluster ? conv_add_op(sl, SEG_COMPRESS, sg->off, sg->len)
                                            : conv_plan_data(sl, sg->off, sg->len);
        }
        if (ret < 0) {
            return -1;
        }
    }
    sl->phase = SLOT_WRITE;
    sl->next = 0;
    return 0;
}

/*
 * Takes the next chunk into @sl and splits it into data, zero and skipped
 * pieces by the source's block status (a metadata lookup, done here; the
 * data is read by the engine). Returns -1 after recording a failure.
 */
static int conv_start_chunk(ConvCtx *c, ConvSlot *sl)
{
    uint64_t cs = c->compress_cluster, pos = 0, off, len;
    uint64_t i = c->next_chunk++;
    uint32_t si = 0;

    while (c->first_chunk[si + 1] <= i) {
        si++;
    }
    off = (i - c->first_chunk[si]) * (uint64_t)IO_CHUNK;
    len = min_u64(IO_CHUNK, c->size[si] - off);
    sl->chunk = i;
    sl->si = si;
    sl->off = off;
    sl->len = len;
    sl->toff = c->base[si] + off;
    sl->nseg = 0;
    sl->next = 0;
    sl->phase = SLOT_READ;
    while (pos < len) {
        QBlockStatusInfo st;
        uint64_t n = len - pos;
        int kind = SEG_DATA;

        if (c->need_status) {
            memset(&st, 0, sizeof(st));
            if (qb_block_status(&c->broker, c->src[si], off + pos, n, &st) < 0) {
                return conv_fail_call(c, "error while reading block status", off + pos);
            }
            if (st.length == 0 || st.length > n) {
                conv_fail(c, QB_ERR_INTERNAL_ERR, EIO, "qb_convert: error while reading "
                          "block status at offset %" PRIu64 ": bad length %" PRIu64,
                          off + pos, st.length);
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
        if (sl->nseg > 0 && sl->segs[sl->nseg - 1].kind == kind) {
            sl->segs[sl->nseg - 1].len += n;
        } else {
            ConvSeg *sg = &sl->segs[sl->nseg++];
            sg->off = pos;
            sg->len = n;
            sg->kind = kind;
            sg->slot = sl;
        }
        pos += n;
    }
    return 0;
}

/*
 * A request of @sl completed: a read while the slot reads, a write once it
 * writes (a slot changes phase only with nothing in flight).
 */
static void conv_req_done(QBlockAIOReq *req, int64_t ret, void *opaque)
{
    ConvSeg *sg = opaque;
    ConvSlot *sl = sg->slot;
    ConvCtx *c = sl->ctx;
    bool write = sl->phase == SLOT_WRITE;

    sl->inflight--;
    c->inflight--;
    if (write) {
        c->writes_inflight--;
    }
    if (ret < 0) {
        conv_fail_req(c, req, ret, write ? "error while writing" : "error while reading",
                      (write ? sl->toff : sl->off) + sg->off);
    }
}

/*
 * A submission the engine refused: a full queue (the caller's own requests
 * on the same state may fill it) waits for a completion while ours are in
 * flight; anything else is the run's failure.
 */
static void conv_refused(ConvCtx *c, const char *what, uint64_t off)
{
    if (c->broker.err_code == QB_ERR_BUSY && c->inflight > 0) {
        c->busy = true;
        return;
    }
    conv_fail_call(c, what, off);
}

/* Submits the reads of @sl's data pieces while requests may be added. */
static void conv_issue_reads(ConvCtx *c, ConvSlot *sl)
{
    while (!c->stop && !c->busy && sl->next < sl->nseg && c->inflight < c->nslots) {
        ConvSeg *sg = &sl->segs[sl->next];

        if (sg->kind == SEG_DATA &&
            qb_aio_read(&c->broker, c->src[sl->si], sl->buf + sg->off, sg->len,
                        sl->off + sg->off, conv_req_done, sg, NULL) < 0) {
            conv_refused(c, "error while reading", sl->off + sg->off);
            return;
        }
        if (sg->kind == SEG_DATA) {
            sl->inflight++;
            c->inflight++;
        }
        sl->next++;
    }
}

/*
 * Starts @sl's writes: data through the engine; zeros and compressed
 * clusters synchronously. In order, a write starts only when the one
 * before it (this chunk's or the previous chunk's) has completed, so the
 * target sees ascending offsets; out of order (-W), all at once.
 */
static void conv_issue_writes(ConvCtx *c, ConvSlot *sl)
{
    while (!c->stop && !c->busy && sl->next < sl->nops && c->inflight < c->nslots) {
        ConvSeg *op = &sl->ops[sl->next];
        uint64_t toff = sl->toff + op->off;
        int ret = 0;

        if (c->in_order && c->writes_inflight > 0) {
            return;
        }
        if (op->kind == SEG_ZERO) {
            ret = conv_zero(c, toff, op->len);
        } else if (op->kind == SEG_COMPRESS) {
            ret = conv_compressed(c, sl->buf + op->off, op->len, toff);
        } else if (qb_aio_write(&c->broker, c->dst, sl->buf + op->off, op->len, toff,
                                conv_req_done, op, NULL) < 0) {
            conv_refused(c, "error while writing", toff);
            return;
        } else {
            sl->inflight++;
            c->inflight++;
            c->writes_inflight++;
        }
        if (ret < 0) {
            return;
        }
        sl->next++;
    }
}

/*
 * Calls the progress callback with the bytes done so far, from the
 * caller's thread, so the values it sees never decrease. A non-zero
 * answer cancels the run.
 */
static void conv_report(ConvCtx *c)
{
    if (!c->progress || (c->done == c->reported && c->done != 0)) {
        return;
    }
    c->reported = c->done;
    if (c->progress(c->done, c->total, c->opaque) != 0) {
        conv_fail(c, QB_ERR_CANCELED, ECANCELED, "qb_convert: canceled by the progress callback");
    }
}

/* Moves @sl on as far as it can go now; whether it changed phase. */
static bool conv_step(ConvCtx *c, ConvSlot *sl)
{
    if (sl->phase == SLOT_FREE) {
        if (c->stop || c->next_chunk >= c->nchunks || c->inflight >= c->nslots) {
            return false;
        }
        if (conv_start_chunk(c, sl) < 0) {
            return false;
        }
    }
    if (sl->phase == SLOT_READ) {
        conv_issue_reads(c, sl);
        if (sl->next < sl->nseg || sl->inflight > 0 || c->stop) {
            return false;
        }
        if (conv_plan_writes(sl) < 0) {
            return false;
        }
    }
    if (c->in_order && sl->chunk != c->next_write) {
        return false;
    }
    conv_issue_writes(c, sl);
    if (sl->next < sl->nops || sl->inflight > 0 || c->stop) {
        return false;
    }
    sl->phase = SLOT_FREE;
    c->done += sl->len;
    if (c->in_order) {
        c->next_write++;
    }
    conv_report(c);
    return true;
}

/*
 * Issues every request that may start now. The slots are taken lowest
 * chunk first, so the chunk whose turn it is to write goes before the
 * reads that run ahead of it, and chunks are started in increasing order.
 * In order, the lowest unwritten chunk always holds a slot, so the turn
 * always moves on.
 */
static void conv_pump(ConvCtx *c)
{
    bool again = true;

    c->busy = false;
    while (again && !c->stop && !c->busy) {
        ConvSlot *order[QB_CONVERT_MAX_REQUESTS];
        uint32_t n = 0;

        again = false;
        /* Busy slots by chunk (insertion sort: at most 16), then the free ones. */
        for (uint32_t k = 0; k < c->nslots; k++) {
            ConvSlot *sl = &c->slots[k];
            uint32_t j = n++;

            if (sl->phase == SLOT_FREE) {
                order[j] = sl;
                continue;
            }
            while (j > 0 && (order[j - 1]->phase == SLOT_FREE ||
                             order[j - 1]->chunk > sl->chunk)) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = sl;
        }
        for (uint32_t k = 0; k < n && !c->stop && !c->busy; k++) {
            again |= conv_step(c, order[k]);
        }
    }
}

static void conv_slot_free(ConvSlot *sl)
{
    free(sl->buf);
    free(sl->segs);
    free(sl->ops);
}

static int conv_slot_init(ConvSlot *sl, ConvCtx *c)
{
    void *p = NULL;

    memset(sl, 0, sizeof(*sl));
    sl->ctx = c;
    /* Room for a compressed last cluster padded to its whole size. */
    if (posix_memalign(&p, 4096, IO_CHUNK + (size_t)c->compress_cluster) != 0) {
        return -1;
    }
    sl->buf = p;
    sl->segs = calloc(IO_CHUNK / SECTOR_BYTES + 2, sizeof(*sl->segs));
    if (!sl->segs) {
        conv_slot_free(sl);
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

/* The states whose engines the run waits on: every source and the target, each once. */
static int conv_engines(QBroker *broker, ConvCtx *c, QBlockState **states, struct pollfd *fds)
{
    int n = 0;

    for (uint32_t i = 0; i <= c->nsrc; i++) {
        QBlockState *s = i < c->nsrc ? c->src[i] : c->dst;
        bool seen = false;
        int fd;

        for (int k = 0; k < n && !seen; k++) {
            seen = states[k] == s;
        }
        if (seen) {
            continue;
        }
        fd = qb_aio_get_fd(&c->broker, s);
        if (fd < 0) {
            return refail(broker, "qb_convert: '%s'", s->filename);
        }
        states[n] = s;
        fds[n].fd = fd;
        fds[n].events = POLLIN;
        n++;
    }
    return n;
}

/* Whether every chunk has been written. */
static bool conv_finished(const ConvCtx *c)
{
    for (uint32_t k = 0; k < c->nslots; k++) {
        if (c->slots[k].phase != SLOT_FREE) {
            return false;
        }
    }
    return c->next_chunk >= c->nchunks;
}

/*
 * Copies the sources into the open target with up to @n requests in
 * flight on the asynchronous engine: the caller's thread issues them and
 * runs their completions, waiting on the engines' file descriptors.
 */
static int convert_copy(QBroker *broker, ConvCtx *c, uint32_t n)
{
    QBlockState **states = calloc(c->nsrc + 1, sizeof(*states));
    struct pollfd *fds = calloc(c->nsrc + 1, sizeof(*fds));
    int nfds = 0, ret = 0;
    bool helped;

    c->slots = calloc(n, sizeof(*c->slots));
    if (!states || !fds || !c->slots) {
        ret = qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_convert: out of memory");
        goto out;
    }
    for (c->nslots = 0; c->nslots < n; c->nslots++) {
        if (conv_slot_init(&c->slots[c->nslots], c) < 0) {
            break;
        }
    }
    /* Fewer requests in flight are still a correct copy; none is not. */
    if (c->nslots == 0) {
        ret = qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_convert: out of memory");
        goto out;
    }
    nfds = conv_engines(broker, c, states, fds);
    if (nfds < 0) {
        ret = nfds;
        goto out;
    }
    for (;;) {
        conv_pump(c);
        if (c->inflight == 0) {
            if (!c->stop && !conv_finished(c)) {
                /* Nothing in flight and nothing could start: cannot happen, but must not hang. */
                conv_fail(c, QB_ERR_INTERNAL_ERR, EIO, "qb_convert: the copy stalled");
            }
            break;
        }
        /*
         * With nothing else to issue, this thread runs a queued request
         * itself rather than sleep until a worker has woken up for it:
         * with few requests in flight, the two wake-ups per request
         * otherwise cost more than the request.
         */
        helped = false;
        for (int k = 0; k < nfds; k++) {
            helped |= aio_help(states[k]) > 0;
        }
        while (!helped && poll(fds, (nfds_t)nfds, -1) < 0 && errno == EINTR) {
        }
        /* It fails only for a state that is not open, which these are. */
        for (int k = 0; k < nfds; k++) {
            (void)qb_aio_run_completions(&c->broker, states[k]);
        }
    }
    if (c->err_code) {
        ret = qb_fail(broker, c->err_code, c->err_no, "%s", c->err_msg);
    }
out:
    for (uint32_t k = 0; k < c->nslots; k++) {
        conv_slot_free(&c->slots[k]);
    }
    free(c->slots);
    free(states);
    free(fds);
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
    ret = convert_copy(broker, &c, p->num_requests ? p->num_requests : QB_CONVERT_DEFAULT_REQUESTS);
    if (ret == 0 && qb_flush(broker, c.dst) < 0) {
        ret = refail(broker, "qb_convert: error while flushing '%s'", c.dst->filename);
    }
    if (ret == 0 && c.progress) {
        /* Everything is written and flushed: a cancel now has nothing left to stop. */
        (void)c.progress(c.total, c.total, c.opaque);
    }

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
