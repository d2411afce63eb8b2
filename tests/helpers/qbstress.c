/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qbstress: seeded random writes, discards, flushes and reopens mirrored into a raw file, with a crash log and its checker. */

/*
 * `make build-tests` builds it into $BUILDDIR/tests/helpers/qbstress; the
 * interop scripts 102, 103, 105, 107, 400 and 401 use it.
 *
 * Writer:
 *   qbstress [-s SEED] [-n OPS] [-m MAXLEN] [-F FLUSH_EVERY] [-d DISCARD_PCT]
 *            [-r REOPEN_EVERY] [-f FMT] [-w] [-b BACKING_RAW] [-L LOG]
 *            [-K USEC [-k OPS]] [-M] [-E] IMAGE MIRROR
 *   Seeded random writes (any size and alignment), discards, read-backs,
 *   flushes and reopens through libqblock's public API, each write also
 *   applied to the raw file MIRROR with plain pwrite(2). MIRROR must hold
 *   what IMAGE reads when the run starts (the same size). Every read-back is
 *   compared with MIRROR: exit 0 when all matched, 1 on the first mismatch
 *   or error. With -M, MIRROR is only read, and the run's mirror is kept in
 *   memory. The image is opened with LIBQBLOCK_O_CACHE_WB unless -w
 *   (write-through) is given. A discarded byte must read back as before, as
 *   zero, or (with -b) as the backing file's byte at that offset.
 *
 * Crash mode (-L LOG, usually with -K USEC):
 *   Every operation is appended to LOG (one write(2), so that a SIGKILL
 *   never loses a record that was written) before it is issued; after each
 *   successful qb_flush, qb_close (which flushes) or, in write-through mode
 *   (-w), qb_write (which then flushes before it returns), a flush record
 *   naming the number of operations now durable is appended and LOG is
 *   fsync'ed.
 *   The bytes a discard left are logged after it, as read back. -K arms a
 *   timer that delivers SIGKILL USEC microseconds after start (before the
 *   image is opened, so that a kill can also land in open's own repair);
 *   with -k the timer is armed only when operation OPS starts, so that the
 *   kill comes after a known amount of work however slow the machine is.
 *
 * Error mode (-E, for fault injection): when an operation fails, the image
 *   is closed before the writer exits 1, as a caller that sees an I/O error
 *   would do; when that close succeeds, every operation before the failed
 *   one is logged as durable (the failed one stays unflushed: any part of
 *   it may have reached the image). The log is not fsync'ed in this mode.
 *
 * Checker:
 *   qbstress -C LOG [-b BACKING_RAW] START_RAW RESULT_RAW
 *   START_RAW is what the image held before the killed writer started,
 *   RESULT_RAW what it holds after the kill (e.g. `qemu-img convert -O raw`).
 *   Exit 0 when RESULT_RAW is a state the log allows, 1 otherwise (with the
 *   first offending byte named). What is allowed, byte by byte:
 *    - The durable model is START_RAW with every operation before the last
 *      flush record applied (discards as their logged read-back).
 *    - A byte that no later (unflushed) operation touched must equal the
 *      durable model: it was made durable by a flush that succeeded.
 *    - A byte that unflushed operations touched may equal the durable model
 *      or the value any one of those writes put there; for an unflushed
 *      discard also zero, the backing file's byte (-b) or its logged
 *      read-back.
 *   This is sound for SIGKILL: a byte of the image is only ever a value the
 *   guest wrote there (or, after a discard, zero or the backing data), and
 *   which of the unflushed values survives depends on which of the
 *   driver's in-memory caches had been written out, in any order; the check
 *   is per byte, not per sector, because formats read-modify-write the
 *   edges of unaligned writes and so a sector can legitimately mix the
 *   bytes of two unflushed writes. It still catches every lost durable
 *   write and every byte that reads as something nobody wrote (stale
 *   metadata pointing at a reused or unwritten cluster: zeros or another
 *   offset's data), unless that value happens to be a candidate.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libqblock/libqblock.h"

/* One crash-log record; a read-back record is followed by @len bytes. */
typedef struct LogRec {
    uint32_t kind;      /* LOG_WRITE, LOG_DISCARD, LOG_READBACK or LOG_FLUSHED */
    uint32_t zeros;     /* LOG_WRITE: the write was all zeros */
    uint64_t op;        /* operation number; LOG_FLUSHED: operations now durable */
    uint64_t off;
    uint64_t len;
    uint64_t pattern;   /* LOG_WRITE: the seed of its contents */
} LogRec;

enum { LOG_WRITE = 'W', LOG_DISCARD = 'D', LOG_READBACK = 'R', LOG_FLUSHED = 'F' };

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: small, seedable, good enough to spread requests. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* Byte @k of a write made from @pattern: it changes every byte and differs between writes. */
static uint8_t pattern_byte(uint64_t pattern, bool zeros, uint64_t k)
{
    return zeros ? 0 : (uint8_t)((pattern >> ((k % 8) * 8)) + k / 8);
}

static QBroker *broker;
static QBlockState *qbs;
static QBlockProtInfo *loc;
static QBlockFmtInfo *fmt;
static int open_flags = LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB;
static int log_fd = -1;
static bool close_on_error;     /* -E */
static bool image_is_open;
static uint64_t cur_op;         /* the operation under way */

static void log_durable(uint64_t done);

static void die(const char *what)
{
    char msg[1024];
    qb_error_get_human_str(broker, msg, sizeof(msg));
    fprintf(stderr, "qbstress: %s: %s\n", what, msg);
    if (close_on_error && image_is_open) {
        image_is_open = false;
        if (qb_close(broker, qbs) == 0) {
            log_durable(cur_op);
            fprintf(stderr, "qbstress: the close after the error succeeded\n");
        } else {
            qb_error_get_human_str(broker, msg, sizeof(msg));
            fprintf(stderr, "qbstress: the close after the error failed: %s\n", msg);
        }
    }
    exit(1);
}

/* Append a record (and @data) with one write(2): a kill never leaves half of a completed append. */
static void log_append(uint32_t kind, uint64_t op, uint64_t off, uint64_t len, uint64_t pattern,
                       bool zeros, const uint8_t *data)
{
    LogRec r = { .kind = kind, .zeros = zeros, .op = op, .off = off, .len = len,
                 .pattern = pattern };
    size_t total = sizeof(r) + (data ? len : 0);
    uint8_t *rec;

    if (log_fd < 0) {
        return;
    }
    rec = malloc(total);
    if (!rec) {
        fprintf(stderr, "qbstress: out of memory\n");
        exit(1);
    }
    memcpy(rec, &r, sizeof(r));
    if (data) {
        memcpy(rec + sizeof(r), data, len);
    }
    if (write(log_fd, rec, total) != (ssize_t)total) {
        perror("qbstress: log");
        exit(1);
    }
    free(rec);
}

/* Record that operations [0, @done) are durable, and make the record itself durable. */
static void log_durable(uint64_t done)
{
    if (log_fd < 0) {
        return;
    }
    log_append(LOG_FLUSHED, done, 0, 0, 0, false, NULL);
    /*
     * A writer that ends by itself (-E) is never killed mid-write, and what
     * write(2) appended survives its exit: the fsync, there only for
     * kills, would cost a fault-injection sweep most of its time.
     */
    if (!close_on_error && fsync(log_fd) < 0) {
        perror("qbstress: fsync of the log");
        exit(1);
    }
}

/*
 * The mirror: a raw file changed with pwrite(2), or (-M) a copy of it in
 * memory, which a crash run uses so that its starting file stays as it is.
 */
static int mirror_fd = -1;
static uint8_t *mirror_mem;

static bool mirror_read(uint8_t *buf, uint64_t len, uint64_t off)
{
    if (mirror_mem) {
        memcpy(buf, mirror_mem + off, len);
        return true;
    }
    return pread(mirror_fd, buf, len, (off_t)off) == (ssize_t)len;
}

static void mirror_write(const uint8_t *buf, uint64_t len, uint64_t off)
{
    if (mirror_mem) {
        memcpy(mirror_mem + off, buf, len);
    } else if (pwrite(mirror_fd, buf, len, (off_t)off) != (ssize_t)len) {
        perror("qbstress: mirror write");
        exit(1);
    }
}

static void image_open(void)
{
    if (qb_open(broker, qbs, loc, fmt, open_flags) < 0) {
        die("open");
    }
    image_is_open = true;
}

/* A random length: mostly small, sometimes up to @max, biased to edges of 512 and 64k. */
static uint64_t rnd_len(uint64_t max)
{
    uint64_t r = rnd() % 100;
    uint64_t len;

    if (r < 40) {
        len = 1 + rnd() % 4096;
    } else if (r < 70) {
        len = 512 * (1 + rnd() % 256);
    } else if (r < 85) {
        len = 65536 * (1 + rnd() % 4) + (rnd() % 3) * 512 - 512;
    } else {
        len = 1 + rnd() % max;
    }
    return len > max ? max : (len ? len : 1);
}

/* Read all of @path into a new buffer; *@size gets its length. Exits on failure. */
static uint8_t *slurp(const char *path, uint64_t *size)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY);
    uint64_t done = 0;

    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "qbstress: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    *size = (uint64_t)st.st_size;
    buf = malloc(*size ? *size : 1);
    if (!buf) {
        fprintf(stderr, "qbstress: out of memory\n");
        exit(1);
    }
    while (done < *size) {
        ssize_t n = pread(fd, buf + done, *size - done, (off_t)done);
        if (n <= 0) {
            fprintf(stderr, "qbstress: %s: short read\n", path);
            exit(1);
        }
        done += (uint64_t)n;
    }
    close(fd);
    return buf;
}

/* The log's records after the last complete one are a record cut by the kill: not issued. */
static bool log_next(const uint8_t *log, uint64_t log_len, uint64_t *pos, LogRec *r,
                     const uint8_t **data)
{
    if (log_len - *pos < sizeof(*r)) {
        return false;
    }
    memcpy(r, log + *pos, sizeof(*r));
    *data = NULL;
    if (r->kind == LOG_READBACK) {
        if (log_len - *pos - sizeof(*r) < r->len) {
            return false;
        }
        *data = log + *pos + sizeof(*r);
    }
    *pos += sizeof(*r) + (*data ? r->len : 0);
    return true;
}

/* May byte @b of the image be @v after unflushed record @r (with its read-back @rb, if any)? */
static bool unflushed_allows(const LogRec *r, const uint8_t *rb, const uint8_t *backing,
                             uint64_t backing_size, uint64_t b, uint8_t v)
{
    if (b < r->off || b - r->off >= r->len) {
        return false;
    }
    if (r->kind == LOG_WRITE) {
        return pattern_byte(r->pattern, r->zeros, b - r->off) == v;
    }
    /* LOG_DISCARD */
    return v == 0 || (backing && b < backing_size && backing[b] == v) ||
           (rb && rb[b - r->off] == v);
}

static int check_main(const char *log_path, const char *backing_path, const char *start_path,
                      const char *result_path)
{
    uint64_t log_len, size, result_size, backing_size = 0, pos = 0, durable = 0, n_ops = 0;
    uint8_t *log = slurp(log_path, &log_len);
    uint8_t *model = slurp(start_path, &size);
    uint8_t *result = slurp(result_path, &result_size);
    uint8_t *backing = backing_path ? slurp(backing_path, &backing_size) : NULL;
    const uint8_t *data;
    LogRec r;
    LogRec *late = NULL;
    const uint8_t **late_rb = NULL;
    size_t n_late = 0;
    uint64_t accepted = 0;
    int ret = 1;

    if (result_size < size) {
        fprintf(stderr, "qbstress: %s is shorter (%" PRIu64 ") than %s (%" PRIu64 ")\n",
                result_path, result_size, start_path, size);
        goto out;
    }
    /* First pass: the last flush record says how many operations are durable. */
    while (log_next(log, log_len, &pos, &r, &data)) {
        if (r.kind == LOG_FLUSHED) {
            durable = r.op;
        } else if (r.kind == LOG_WRITE || r.kind == LOG_DISCARD) {
            n_ops++;   /* reads are not logged: operation numbers have gaps */
        }
    }
    /* Second pass: durable operations build the model, later ones become candidates. */
    late = calloc(n_ops + 1, sizeof(*late));
    late_rb = calloc(n_ops + 1, sizeof(*late_rb));
    if (!late || !late_rb) {
        fprintf(stderr, "qbstress: out of memory\n");
        goto out;
    }
    pos = 0;
    while (log_next(log, log_len, &pos, &r, &data)) {
        if (r.kind == LOG_FLUSHED) {
            continue;
        }
        if (r.off > size || r.len > size - r.off) {
            fprintf(stderr, "qbstress: log record for op %" PRIu64 " lies outside the image\n", r.op);
            goto out;
        }
        if (r.op >= durable) {
            if (r.kind == LOG_READBACK) {
                if (n_late && late[n_late - 1].op == r.op) {
                    late_rb[n_late - 1] = data;
                }
            } else {
                late[n_late++] = r;
            }
        } else if (r.kind == LOG_WRITE) {
            for (uint64_t k = 0; k < r.len; k++) {
                model[r.off + k] = pattern_byte(r.pattern, r.zeros, k);
            }
        } else if (r.kind == LOG_READBACK) {
            memcpy(model + r.off, data, r.len);
        }
        /* A durable discard changes the model through its read-back record only. */
    }
    for (uint64_t b = 0; b < size; b++) {
        bool ok = false;

        if (result[b] == model[b]) {
            continue;
        }
        for (size_t i = 0; i < n_late && !ok; i++) {
            ok = unflushed_allows(&late[i], late_rb[i], backing, backing_size, b, result[b]);
        }
        if (!ok) {
            fprintf(stderr, "qbstress: byte %" PRIu64 " is 0x%02x: the %" PRIu64 " durable operations "
                    "leave 0x%02x there and none of the %zu unflushed ones allows it\n",
                    b, result[b], durable, model[b], n_late);
            for (size_t i = 0; i < n_late; i++) {
                if (b >= late[i].off && b - late[i].off < late[i].len) {
                    fprintf(stderr, "qbstress:   unflushed op %" PRIu64 " (%c) covers it: %"
                            PRIu64 "+%" PRIu64 "\n", late[i].op, late[i].kind, late[i].off,
                            late[i].len);
                }
            }
            goto out;
        }
        accepted++;
    }
    printf("%" PRIu64 " operations durable, %zu unflushed, %" PRIu64
           " bytes hold unflushed data\n", durable, n_late, accepted);
    ret = 0;
out:
    /* Freed on every path, so that sanitizer runs see no leak from the checker. */
    free(log);
    free(model);
    free(result);
    free(backing);
    free(late);
    free(late_rb);
    return ret;
}

/* Deliver SIGKILL to ourselves @usec microseconds from now: a kill at a random point of the work. */
static void arm_kill(uint64_t usec)
{
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGKILL };
    struct itimerspec its = { .it_value = { .tv_sec = (time_t)(usec / 1000000),
                                            .tv_nsec = (long)(usec % 1000000) * 1000 } };
    timer_t t;

    if (usec == 0) {
        raise(SIGKILL);
    }
    if (timer_create(CLOCK_MONOTONIC, &sev, &t) < 0 || timer_settime(t, 0, &its, NULL) < 0) {
        perror("qbstress: kill timer");
        exit(1);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: qbstress [-s SEED] [-n OPS] [-m MAXLEN] [-F N] [-d PCT] [-r N] [-f FMT] "
            "[-w] [-b BACKING_RAW] [-L LOG] [-K USEC [-k OPS]] [-M] [-E] IMAGE MIRROR\n"
            "       qbstress -C LOG [-b BACKING_RAW] START_RAW RESULT_RAW\n");
    exit(1);
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, ops = 1000, maxlen = 1 << 20, kill_usec = 0, kill_op = 0, backing_size = 0;
    unsigned flush_every = 50, discard_pct = 0, reopen_every = 0;
    const char *fmt_name = NULL, *log_path = NULL, *backing_path = NULL;
    bool check_mode = false, kill_armed = false;
    uint8_t *buf, *cmpbuf, *backing = NULL;
    uint64_t size;
    struct stat st;
    bool mirror_in_memory = false;
    int opt;

    while ((opt = getopt(argc, argv, "s:n:m:F:d:r:f:wb:L:K:k:MC:E")) != -1) {
        switch (opt) {
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'n': ops = strtoull(optarg, NULL, 0); break;
        case 'm': maxlen = strtoull(optarg, NULL, 0); break;
        case 'F': flush_every = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'd': discard_pct = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'r': reopen_every = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'f': fmt_name = optarg; break;
        case 'w': open_flags &= ~LIBQBLOCK_O_CACHE_WB; break;
        case 'b': backing_path = optarg; break;
        case 'L': log_path = optarg; break;
        case 'K': kill_usec = strtoull(optarg, NULL, 0); kill_armed = true; break;
        case 'k': kill_op = strtoull(optarg, NULL, 0); break;
        case 'M': mirror_in_memory = true; break;
        case 'C': log_path = optarg; check_mode = true; break;
        case 'E': close_on_error = true; break;
        default: usage();
        }
    }
    if (optind != argc - 2) {
        usage();
    }
    if (check_mode) {
        return check_main(log_path, backing_path, argv[optind], argv[optind + 1]);
    }
    if (maxlen == 0) {
        usage();
    }
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;

    if (mirror_in_memory) {
        mirror_mem = slurp(argv[optind + 1], &size);
    } else {
        mirror_fd = open(argv[optind + 1], O_RDWR);
        if (mirror_fd < 0 || fstat(mirror_fd, &st) < 0) {
            perror("qbstress: mirror");
            return 1;
        }
        size = (uint64_t)st.st_size;
    }
    if (size == 0) {
        fprintf(stderr, "qbstress: empty mirror\n");
        return 1;
    }
    if (maxlen > size) {
        maxlen = size;
    }
    if (backing_path) {
        backing = slurp(backing_path, &backing_size);
    }
    if (log_path) {
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        if (log_fd < 0) {
            perror("qbstress: log");
            return 1;
        }
    }
    if (qb_broker_new(&broker) < 0 || qb_state_new(broker, &qbs) < 0 ||
        qb_prot_info_new(broker, &loc) < 0) {
        fprintf(stderr, "qbstress: out of memory\n");
        return 1;
    }
    /* Without -f the image is probed and may be raw: allow that guess (the default refuses it). */
    {
        QBlockOpenPolicy guess = { .flags = QB_POLICY_ALLOW_RAW_PROBE };
        if (qb_state_set_policy(broker, qbs, &guess) < 0) {
            die("policy");
        }
    }
    loc->prot_type = QB_PROT_FILE;
    loc->prot_op.o_file.filename = argv[optind];
    if (fmt_name) {
        if (qb_fmt_info_new(broker, &fmt) < 0) {
            return 1;
        }
        fmt->fmt_type = qb_str2fmttype(fmt_name);
    }
    buf = malloc(maxlen);
    cmpbuf = malloc(maxlen);
    if (!buf || !cmpbuf) {
        fprintf(stderr, "qbstress: out of memory\n");
        return 1;
    }
    if (kill_armed && kill_op == 0) {
        arm_kill(kill_usec);
    }
    image_open();

    for (uint64_t i = 0; i < ops; i++) {
        uint64_t len = rnd_len(maxlen);
        uint64_t off;
        unsigned kind = (unsigned)(rnd() % 100);

        cur_op = i;
        if (kill_armed && kill_op != 0 && i == kill_op) {
            arm_kill(kill_usec);
        }
        if (len > size) {
            len = size;
        }
        off = rnd() % (size - len + 1);
        if (kind < discard_pct) {
            /* Discard: the image decides what the range reads; each byte must be old, zero or backing. */
            log_append(LOG_DISCARD, i, off, len, 0, false, NULL);
            if (qb_discard(broker, qbs, off, len) < 0) {
                die("discard");
            }
            if (qb_read(broker, qbs, buf, len, off) != (int64_t)len ||
                !mirror_read(cmpbuf, len, off)) {
                die("read after discard");
            }
            for (uint64_t k = 0; k < len; k++) {
                uint64_t b = off + k;
                if (buf[k] != cmpbuf[k] && buf[k] != 0 &&
                    !(b < backing_size && buf[k] == backing[b])) {
                    fprintf(stderr, "qbstress: op %" PRIu64 ": discard at %" PRIu64
                            " left byte %" PRIu64 " neither old nor zero nor backing\n", i, off, b);
                    return 1;
                }
            }
            log_append(LOG_READBACK, i, off, len, 0, false, buf);
            mirror_write(buf, len, off);
        } else if (kind < 85) {
            uint64_t pattern = rnd();
            bool zeros = rnd() % 8 == 0;   /* zeros are data too */

            for (uint64_t k = 0; k < len; k++) {
                buf[k] = pattern_byte(pattern, zeros, k);
            }
            log_append(LOG_WRITE, i, off, len, pattern, zeros, NULL);
            if (qb_write(broker, qbs, buf, len, off) != (int64_t)len) {
                die("write");
            }
            mirror_write(buf, len, off);
            if (!(open_flags & LIBQBLOCK_O_CACHE_WB)) {
                /* Write-through: qb_write flushed everything before it returned. */
                log_durable(i + 1);
            }
        } else {
            if (qb_read(broker, qbs, buf, len, off) != (int64_t)len ||
                !mirror_read(cmpbuf, len, off)) {
                die("read");
            }
            if (memcmp(buf, cmpbuf, len) != 0) {
                for (uint64_t k = 0; k < len; k++) {
                    if (buf[k] != cmpbuf[k]) {
                        fprintf(stderr, "qbstress: op %" PRIu64 ": read at %" PRIu64
                                "+%" PRIu64 " differs from the mirror at byte %" PRIu64
                                " (0x%02x, want 0x%02x)\n", i, off, len, off + k, buf[k],
                                cmpbuf[k]);
                        break;
                    }
                }
                return 1;
            }
        }
        if (flush_every && i % flush_every == flush_every - 1) {
            if (qb_flush(broker, qbs) < 0) {
                die("flush");
            }
            log_durable(i + 1);
        }
        if (reopen_every && i % reopen_every == reopen_every - 1) {
            image_is_open = false;
            if (qb_close(broker, qbs) < 0) {
                die("close");
            }
            log_durable(i + 1);
            image_open();
        }
    }
    image_is_open = false;
    if (qb_close(broker, qbs) < 0) {
        die("close");
    }
    log_durable(ops);
    qb_state_delete(broker, &qbs);
    qb_prot_info_delete(broker, &loc);
    qb_fmt_info_delete(broker, &fmt);
    qb_broker_delete(&broker);
    free(buf);
    free(cmpbuf);
    free(backing);
    free(mirror_mem);
    if (mirror_fd >= 0) {
        close(mirror_fd);
    }
    if (log_fd >= 0) {
        close(log_fd);
    }
    return 0;
}
