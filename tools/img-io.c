/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* img-io.c: the read, write, discard and bench commands of qblock-img. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "qblock-img.h"

/* Reads up to this size are held whole, so that the outputs come in qemu-io's order. */
#define WHOLE_READ_MAX (64 * 1024 * 1024)
/* Larger transfers move in pieces of this size. */
#define IO_PIECE (4 * 1024 * 1024)

/* qemu-io's default write pattern. */
#define DEFAULT_WRITE_PATTERN 0xcd

/* ------------------------------------------------------------------ */
/* Shared parts of read, write and discard                             */

/* Parses "offset length" the way qemu-io parses its numbers. */
static int parse_range(char **args, uint64_t *offset, uint64_t *length)
{
    for (int i = 0; i < 2; i++) {
        uint64_t *out = i == 0 ? offset : length;
        int err = parse_size(args[i], out);

        if (err == 0 && *out > IMG_SIZE_MAX) {
            err = -ERANGE;
        }
        if (err == -ERANGE) {
            error_report("Parsing error: %s is too large (the limit is %" PRIu64 ")",
                         args[i], IMG_SIZE_MAX);
            return -1;
        } else if (err < 0) {
            error_report("Parsing error: non-numeric argument, or extraneous/unrecognized "
                         "suffix -- %s", args[i]);
            return -1;
        }
    }
    return 0;
}

static void format_time(double t, char *buf, size_t len)
{
    unsigned long long cs = (unsigned long long)(t * 100.0 + 0.5);   /* centiseconds */
    unsigned long long sec = cs / 100, frac = cs % 100;

    if (sec >= 3600) {
        snprintf(buf, len, "%llu:%02llu:%02llu.%02llu", sec / 3600, (sec / 60) % 60, sec % 60, frac);
    } else if (sec >= 60) {
        snprintf(buf, len, "%02llu:%02llu.%02llu", sec / 60, sec % 60, frac);
    } else {
        snprintf(buf, len, "%02llu.%02llu sec", sec, frac);
    }
}

/* The two summary lines qemu-io prints after a request. */
static void print_report(const char *op, uint64_t done, uint64_t count, uint64_t offset, double t)
{
    char total[64], rate[64], ts[64];

    size_to_io_str((double)done, total, sizeof(total));
    size_to_io_str(t > 0 ? (double)done / t : 0.0, rate, sizeof(rate));
    format_time(t, ts, sizeof(ts));
    printf("%s %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", op, done, count, offset);
    printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", total, 1, ts, rate, t > 0 ? 1.0 / t : 0.0);
}

/* A qemu-io style hex dump: the address, 16 bytes in hex, then the same bytes as text. */
static void dump_buffer(const uint8_t *buf, uint64_t offset, uint64_t len)
{
    for (uint64_t i = 0; i < len; i += 16) {
        uint64_t n = len - i < 16 ? len - i : 16;

        printf("%08" PRIx64 ":  ", offset + i);
        for (uint64_t j = 0; j < n; j++) {
            printf("%02x ", buf[i + j]);
        }
        printf(" ");
        for (uint64_t j = 0; j < n; j++) {
            uint8_t c = buf[i + j];
            /* qemu-io shows letters and digits only; everything else is a dot. */
            bool shown = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
            putchar(shown ? c : '.');
        }
        printf("\n");
    }
}

static bool all_bytes_are(const uint8_t *buf, uint64_t len, uint8_t value)
{
    for (uint64_t i = 0; i < len; i++) {
        if (buf[i] != value) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* read                                                                */

int img_read(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool verbose = false, quiet = false, mismatch = false;
    int pattern = -1, c, ret = 1;
    uint64_t offset, length, piece;
    uint8_t *buf = NULL;
    double t0;
    ImgHandle h;

    memset(&h, 0, sizeof(h));
    while ((c = getopt_long(argc, argv, ":hf:P:vqU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'P':
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                error_report("%s is not a valid pattern byte", optarg);
                return 1;
            }
            break;
        case 'v': verbose = true; break;
        case 'q': quiet = true; break;
        case 'U': img_force_share = true; break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (argc - optind != 3) {
        usage_error("Expecting an image file name, an offset and a length");
        return 1;
    }
    if (parse_range(argv + optind + 1, &offset, &length) < 0) {
        return 1;
    }
    if (img_open(&h, argv[optind], fmt, LIBQBLOCK_O_CACHE_WB) < 0) {
        return 1;
    }

    piece = length <= WHOLE_READ_MAX ? length : IO_PIECE;
    buf = alloc_io_buffer(piece);
    if (!buf) {
        error_report("out of memory");
        goto out;
    }
    t0 = now_seconds();
    if (length <= WHOLE_READ_MAX) {
        if (qb_read(h.broker, h.qbs, buf, length, offset) < 0) {
            error_report("read failed: %s", broker_msg(h.broker));
            goto out;
        }
        mismatch = pattern >= 0 && !all_bytes_are(buf, length, (uint8_t)pattern);
        if (mismatch) {
            printf("Pattern verification failed at offset %" PRIu64 ", %" PRIu64 " bytes\n",
                   offset, length);
        }
        if (verbose) {
            dump_buffer(buf, offset, length);
        }
    } else {
        /* Too large to hold: each piece is checked and dumped as it arrives. */
        for (uint64_t done = 0; done < length; done += piece) {
            uint64_t n = length - done < piece ? length - done : piece;

            if (qb_read(h.broker, h.qbs, buf, n, offset + done) < 0) {
                error_report("read failed: %s", broker_msg(h.broker));
                goto out;
            }
            if (pattern >= 0 && !all_bytes_are(buf, n, (uint8_t)pattern)) {
                mismatch = true;
            }
            if (verbose) {
                dump_buffer(buf, offset + done, n);
            }
        }
        if (mismatch) {
            printf("Pattern verification failed at offset %" PRIu64 ", %" PRIu64 " bytes\n",
                   offset, length);
        }
    }
    if (!quiet) {
        print_report("read", length, length, offset, now_seconds() - t0);
    }
    ret = mismatch ? 1 : 0;

out:
    free(buf);
    if (img_close(&h) < 0) {
        ret = 1;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* write and discard                                                   */

int img_write(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool quiet = false, zero = false, unmap = false, compress = false;
    int pattern = -1, c, ret = 1;
    uint64_t offset, length, piece;
    uint8_t *buf = NULL;
    double t0, elapsed;
    ImgHandle h;

    memset(&h, 0, sizeof(h));
    while ((c = getopt_long(argc, argv, ":hcf:P:zuqU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'P':
            pattern = parse_pattern(optarg);
            if (pattern < 0) {
                error_report("%s is not a valid pattern byte", optarg);
                return 1;
            }
            break;
        case 'c': compress = true; break;
        case 'z': zero = true; break;
        case 'u': unmap = true; break;
        case 'q': quiet = true; break;
        case 'U': img_force_share = true; break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (zero && pattern >= 0) {
        error_report("-z and -P cannot be specified at the same time");
        return 1;
    }
    if (unmap && !zero) {
        error_report("-u requires -z to be specified");
        return 1;
    }
    if (zero && compress) {
        error_report("-z and -c cannot be specified at the same time");
        return 1;
    }
    if (argc - optind != 3) {
        usage_error("Expecting an image file name, an offset and a length");
        return 1;
    }
    if (parse_range(argv + optind + 1, &offset, &length) < 0) {
        return 1;
    }
    if (img_open(&h, argv[optind], fmt, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB) < 0) {
        return 1;
    }
    warn_probed_raw(&h);

    t0 = now_seconds();
    if (zero) {
        /* One request: the format records zeros (and with -u may release space). */
        if (qb_write_zeroes(h.broker, h.qbs, offset, length,
                            unmap ? QB_WRITE_ZEROES_MAY_UNMAP : 0) < 0) {
            error_report("write failed: %s", broker_msg(h.broker));
            goto out;
        }
    } else {
        piece = IO_PIECE;
        if (compress && h.info->cluster_size > piece) {
            /* Compressed requests cover whole clusters. */
            piece = h.info->cluster_size;
        }
        piece = length < piece ? length : piece;
        buf = alloc_io_buffer(piece);
        if (!buf) {
            error_report("out of memory");
            goto out;
        }
        memset(buf, pattern >= 0 ? pattern : DEFAULT_WRITE_PATTERN, piece);
        if (length == 0) {
            /* Still checked by the library, so that an offset past the end is an error. */
            if (qb_write(h.broker, h.qbs, buf, 0, offset) < 0) {
                error_report("write failed: %s", broker_msg(h.broker));
                goto out;
            }
        }
        for (uint64_t done = 0; done < length; done += piece) {
            uint64_t n = length - done < piece ? length - done : piece;

            if ((compress ? qb_write_compressed(h.broker, h.qbs, buf, n, offset + done)
                          : qb_write(h.broker, h.qbs, buf, n, offset + done)) < 0) {
                error_report("write failed: %s", broker_msg(h.broker));
                goto out;
            }
        }
    }
    elapsed = now_seconds() - t0;
    /*
     * Flushed before the summary, so that a write the disk refuses late is
     * reported as a failure rather than after "wrote"; the time shown is
     * the writes' alone, as qemu-io shows it.
     */
    if (qb_flush(h.broker, h.qbs) < 0) {
        error_report("write failed: %s", broker_msg(h.broker));
        goto out;
    }
    if (!quiet) {
        print_report("wrote", length, length, offset, elapsed);
    }
    ret = 0;

out:
    free(buf);
    if (img_close(&h) < 0) {
        ret = 1;
    }
    return ret;
}

int img_discard(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool quiet = false;
    int c, ret = 1;
    uint64_t offset, length;
    double t0;
    ImgHandle h;

    memset(&h, 0, sizeof(h));
    while ((c = getopt_long(argc, argv, ":hf:q", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'q': quiet = true; break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (argc - optind != 3) {
        usage_error("Expecting an image file name, an offset and a length");
        return 1;
    }
    if (parse_range(argv + optind + 1, &offset, &length) < 0) {
        return 1;
    }
    if (img_open(&h, argv[optind], fmt, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB) < 0) {
        return 1;
    }
    warn_probed_raw(&h);
    t0 = now_seconds();
    if (qb_discard(h.broker, h.qbs, offset, length) < 0) {
        error_report("discard failed: %s", broker_msg(h.broker));
        goto out;
    }
    if (!quiet) {
        print_report("discard", length, length, offset, now_seconds() - t0);
    }
    ret = 0;

out:
    if (img_close(&h) < 0) {
        ret = 1;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* bench                                                               */

/*
 * bench keeps "depth" requests in flight through the library's asynchronous
 * calls, from this one thread: each slot owns a buffer, a completion frees
 * the slot and the loop refills it, handing out offsets in order from one
 * cursor, as qemu-img bench issues them. A flush every flush_interval
 * completed requests waits, by default, for the requests in flight and holds
 * back new ones until it completes (--no-drain: it runs alongside them).
 */
/* Flushes in flight at once (--no-drain); more wait for one to complete. */
#define BENCH_MAX_FLUSHES 8

typedef struct BenchSlot {
    struct BenchState *b;
    uint8_t *buf;
} BenchSlot;

typedef struct BenchState {
    ImgHandle *img;
    bool write;
    uint64_t bufsize;
    uint64_t step;
    uint64_t image_size;
    int flush_interval;         /* 0: never */
    bool drain;                 /* flushes wait for the requests in flight */

    uint64_t next_offset;
    long issued;
    long count;
    long completed;
    long in_flight;             /* data requests */
    int flushes_in_flight;
    bool flush_wanted;          /* flush_interval requests completed since the last one */
    bool failed;
    BenchSlot **free_slots;     /* a stack of idle slots */
    long nfree;
} BenchState;

static void bench_report(BenchState *b, const char *what, int64_t ret)
{
    if (!b->failed) {
        error_report("%s: %s", what, qb_strerror((int)ret));
    }
    b->failed = true;
}

static void bench_flush_done(QBlockAIOReq *req, int64_t ret, void *opaque)
{
    BenchState *b = opaque;

    (void)req;
    b->flushes_in_flight--;
    if (ret < 0) {
        bench_report(b, "Failed flush request", ret);
    }
}

static void bench_request_done(QBlockAIOReq *req, int64_t ret, void *opaque)
{
    BenchSlot *slot = opaque;
    BenchState *b = slot->b;

    (void)req;
    b->in_flight--;
    b->free_slots[b->nfree++] = slot;
    if (ret < 0) {
        bench_report(b, "Failed request", ret);
        return;
    }
    b->completed++;
    if (b->flush_interval > 0 && b->completed % b->flush_interval == 0) {
        b->flush_wanted = true;
    }
}

/* Submit what may be submitted now; false after a failure to submit. */
static bool bench_submit(BenchState *b)
{
    QBlockState *qbs = b->img->qbs;
    QBroker *broker = b->img->broker;
    int ret;

    if (b->flush_wanted && b->flushes_in_flight < BENCH_MAX_FLUSHES &&
        (!b->drain || b->in_flight == 0)) {
        ret = qb_aio_flush(broker, qbs, bench_flush_done, b, NULL);
        if (ret < 0) {
            error_report("Failed flush request: %s", broker_msg(broker));
            return false;
        }
        b->flushes_in_flight++;
        b->flush_wanted = false;
    }
    /* A draining flush holds back new requests until it completes. */
    if (b->drain && (b->flush_wanted || b->flushes_in_flight > 0)) {
        return true;
    }
    while (b->issued < b->count && b->nfree > 0) {
        BenchSlot *slot = b->free_slots[b->nfree - 1];
        uint64_t offset = b->next_offset;

        if (b->write) {
            ret = qb_aio_write(broker, qbs, slot->buf, b->bufsize, offset, bench_request_done,
                               slot, NULL);
        } else {
            ret = qb_aio_read(broker, qbs, slot->buf, b->bufsize, offset, bench_request_done,
                              slot, NULL);
        }
        if (ret < 0) {
            error_report("Failed request: %s", broker_msg(broker));
            return false;
        }
        b->nfree--;
        b->in_flight++;
        b->issued++;
        /* The cursor wraps around the image as qemu-img bench's does. */
        b->next_offset = b->image_size ? (b->next_offset + b->step) % b->image_size : 0;
    }
    return true;
}

/*
 * One request at a time gains nothing from the asynchronous calls and would
 * pay two thread switches per request (to a worker and back), so -d 1 runs
 * the synchronous calls in this thread.
 */
static bool bench_run_sync(BenchState *b)
{
    QBroker *broker = b->img->broker;
    QBlockState *qbs = b->img->qbs;
    uint8_t *buf = b->free_slots[0]->buf;

    while (b->issued < b->count) {
        uint64_t offset = b->next_offset;
        int64_t r;

        b->issued++;
        b->next_offset = b->image_size ? (b->next_offset + b->step) % b->image_size : 0;
        r = b->write ? qb_write(broker, qbs, buf, b->bufsize, offset)
                     : qb_read(broker, qbs, buf, b->bufsize, offset);
        if (r < 0) {
            error_report("Failed request: %s", broker_msg(broker));
            return false;
        }
        b->completed++;
        if (b->flush_interval > 0 && b->completed % b->flush_interval == 0 &&
            qb_flush(broker, qbs) < 0) {
            error_report("Failed flush request: %s", broker_msg(broker));
            return false;
        }
    }
    return true;
}

/* Run the benchmark loop; false when a request failed. */
static bool bench_run(BenchState *b)
{
    QBroker *broker = b->img->broker;
    QBlockState *qbs = b->img->qbs;
    struct pollfd pfd;

    if (b->nfree == 1) {
        return bench_run_sync(b);
    }
    pfd.fd = qb_aio_get_fd(broker, qbs);
    pfd.events = POLLIN;
    if (pfd.fd < 0) {
        error_report("%s", broker_msg(broker));
        return false;
    }
    for (;;) {
        if (!b->failed && !bench_submit(b)) {
            b->failed = true;
        }
        if (b->in_flight == 0 && b->flushes_in_flight == 0 &&
            (b->failed || (b->issued == b->count && !b->flush_wanted))) {
            break;
        }
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            error_report("poll: %s", strerror(errno));
            qb_aio_drain(broker, qbs);
            return false;
        }
        qb_aio_run_completions(broker, qbs);
    }
    return !b->failed;
}

/* Parses a number that must fit in an int, as qemu-img bench's counters do. */
static int parse_int_arg(const char *str, long min, long max, long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(str, &end, 0);
    if (errno || end == str || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = (long)v;
    return 0;
}

int img_bench(int argc, char **argv)
{
    enum { OPT_PATTERN = 256, OPT_FLUSH_INTERVAL, OPT_NO_DRAIN };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
        { "no-drain", no_argument, NULL, OPT_NO_DRAIN },
        { "pattern", required_argument, NULL, OPT_PATTERN },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    long count = 75000, depth = 64, flush_interval = 0, v;
    uint64_t offset = 0, bufsize = 4096, step = 0;
    int pattern = 0, flags = LIBQBLOCK_O_CACHE_WB, c, err, ret = 1;
    bool write = false, drain = true, native = false;
    BenchState b;
    BenchSlot *slots = NULL;
    long nslots = 0;
    ImgHandle h;
    double t0;

    memset(&h, 0, sizeof(h));
    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'c':
            if (parse_int_arg(optarg, 0, INT_MAX, &count) < 0) {
                error_report("Invalid request count specified");
                return 1;
            }
            break;
        case 'd':
            /* A depth of 0 could never issue a request; qemu-img would wait forever. */
            if (parse_int_arg(optarg, 1, INT_MAX, &depth) < 0) {
                error_report("Invalid queue depth specified");
                return 1;
            }
            break;
        case 'f': fmt = optarg; break;
        case 'n': native = true; break;
        case 'i':
            if (strcmp(optarg, "native") == 0) {
                native = true;
            } else if (strcmp(optarg, "threads") == 0) {
                native = false;
            } else if (strcmp(optarg, "io_uring") == 0) {
                error_report("aio=io_uring is not supported by libqblock");
                return 1;
            } else {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            break;
        case 'o':
            err = parse_size(optarg, &offset);
            if (err == 0 && offset > IMG_SIZE_MAX) {
                err = -ERANGE;
            }
            if (err < 0) {
                report_size_error("offset", err, IMG_SIZE_MAX);
                return 1;
            }
            break;
        case 'q': break;        /* qemu-img bench prints its lines even when quiet */
        case 's':
            err = parse_size(optarg, &bufsize);
            if (err == 0 && bufsize > INT_MAX) {
                err = -ERANGE;
            }
            if (err < 0) {
                report_size_error("buffer size", err, INT_MAX);
                return 1;
            }
            break;
        case 'S':
            err = parse_size(optarg, &step);
            if (err == 0 && step > INT_MAX) {
                err = -ERANGE;
            }
            if (err < 0) {
                report_size_error("step_size", err, INT_MAX);
                return 1;
            }
            break;
        case 't': {
            int f = cache_mode_flags(optarg);
            if (f < 0) {
                error_report("Invalid cache mode");
                return 1;
            }
            flags = f;
            break;
        }
        case 'w': write = true; break;
        case 'U': img_force_share = true; break;
        case OPT_PATTERN:
            if (parse_int_arg(optarg, 0, 255, &v) < 0) {
                error_report("Invalid pattern byte specified");
                return 1;
            }
            pattern = (int)v;
            break;
        case OPT_FLUSH_INTERVAL:
            if (parse_int_arg(optarg, 0, INT_MAX, &flush_interval) < 0) {
                error_report("Invalid flush interval specified");
                return 1;
            }
            break;
        case OPT_NO_DRAIN: drain = false; break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (optind != argc - 1) {
        usage_error("Expecting one image file name");
        return 1;
    }
    if (flush_interval && !write) {
        error_report("--flush-interval is only available in write tests");
        return 1;
    }
    if (flush_interval && flush_interval < depth) {
        error_report("Flush interval can't be smaller than depth");
        return 1;
    }
    if (!drain && !flush_interval) {
        error_report("--no-drain requires --flush-interval");
        return 1;
    }
    if (native) {
        flags |= LIBQBLOCK_O_NATIVE_AIO;
    }
    if (write) {
        flags |= LIBQBLOCK_O_RDWR;
    }
    if (step == 0) {
        step = bufsize;
    }

    if (img_open(&h, argv[optind], fmt, flags) < 0) {
        return 1;
    }
    if (write) {
        warn_probed_raw(&h);
    }

    memset(&b, 0, sizeof(b));
    b.img = &h;
    b.write = write;
    b.bufsize = bufsize;
    b.step = step;
    b.image_size = h.info->virt_size;
    b.flush_interval = (int)flush_interval;
    b.drain = drain;
    b.next_offset = offset;
    b.count = count;

    nslots = depth < count ? depth : count;
    /* The library bounds a state's queue; deeper queues would only fail. */
    if (nslots > QB_AIO_MAX_QUEUE_DEPTH - BENCH_MAX_FLUSHES) {
        nslots = QB_AIO_MAX_QUEUE_DEPTH - BENCH_MAX_FLUSHES;
    }
    /* Room for the flushes that run alongside the data requests (--no-drain). */
    if (qb_aio_set_max_queue_depth(h.broker, h.qbs, (int)nslots + BENCH_MAX_FLUSHES) < 0) {
        error_report("%s", broker_msg(h.broker));
        goto out;
    }
    slots = calloc(nslots ? (size_t)nslots : 1, sizeof(*slots));
    b.free_slots = calloc(nslots ? (size_t)nslots : 1, sizeof(*b.free_slots));
    if (!slots || !b.free_slots) {
        error_report("out of memory");
        goto out;
    }
    for (long i = 0; i < nslots; i++) {
        slots[i].b = &b;
        slots[i].buf = alloc_io_buffer(bufsize);
        if (!slots[i].buf) {
            error_report("out of memory");
            goto out;
        }
        memset(slots[i].buf, pattern, bufsize);
        b.free_slots[b.nfree++] = &slots[i];
    }

    printf("Sending %ld %s requests, %" PRIu64 " bytes each, %ld in parallel "
           "(starting at offset %" PRIu64 ", step size %" PRIu64 ")\n",
           count, write ? "write" : "read", bufsize, depth, offset, step);
    if (flush_interval) {
        printf("Sending flush every %ld requests\n", flush_interval);
    }
    fflush(stdout);

    t0 = now_seconds();
    if (bench_run(&b)) {
        if (write && flush_interval && qb_flush(h.broker, h.qbs) < 0) {
            error_report("Failed flush request: %s", broker_msg(h.broker));
        } else {
            printf("Run completed in %3.3f seconds.\n", now_seconds() - t0);
            ret = 0;
        }
    }

out:
    if (slots) {
        for (long i = 0; i < nslots; i++) {
            free(slots[i].buf);
        }
        free(slots);
    }
    free(b.free_slots);
    if (img_close(&h) < 0) {
        ret = 1;
    }
    return ret;
}
