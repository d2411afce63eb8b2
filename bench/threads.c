/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench/threads.c: throughput of synchronous qb_read (or qb_write) calls
 * made by 1 thread and by N threads on one open image, in the same process
 * and on the same page-cache-hot file, to show whether the library lets
 * the threads run at once.
 *
 *   bench/threads [-f FMT] [-s SIZE] [-c COUNT] [-T 1,4] [-r RUNS] [-w] [--seq] FILE
 *
 * Every run issues COUNT requests of SIZE bytes in total, split evenly
 * among the threads; each thread has its own broker, as the API requires.
 * Offsets are pseudo-random and SIZE-aligned (--seq: thread t reads blocks
 * t, t+N, t+2N, ...). The thread counts of -T alternate run by run, RUNS
 * times each, and the program prints each count's median throughput and
 * its ratio to the first count's. The file is read once before timing so
 * that every run finds it in the page cache.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "libqblock.h"

#define MAX_COUNTS 8
#define MAX_THREADS 256

typedef struct Job {
    pthread_t tid;
    QBlockState *qbs;
    uint64_t image_size;
    uint64_t size;          /* bytes per request */
    uint64_t first;         /* first request number of this thread */
    uint64_t n;             /* requests of this thread */
    uint64_t stride;        /* thread count, for --seq */
    uint64_t seed;
    int write;
    int seq;
    int failed;
    char msg[256];
} Job;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "bench/threads: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* User plus system CPU seconds of the whole process so far. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: cheap, and each thread has its own state. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void *job_run(void *opaque)
{
    Job *j = opaque;
    QBroker *b = NULL;
    uint64_t blocks = j->image_size / j->size;
    uint8_t *buf;

    if (qb_broker_new(&b) != 0 || posix_memalign((void **)&buf, 4096, j->size) != 0) {
        j->failed = 1;
        snprintf(j->msg, sizeof(j->msg), "out of memory");
        qb_broker_delete(&b);
        return NULL;
    }
    memset(buf, 0x5a, j->size);
    for (uint64_t i = 0; i < j->n; i++) {
        uint64_t blk = j->seq ? (j->first + i * j->stride) % blocks
                              : next_rand(&j->seed) % blocks;
        int64_t ret = j->write ? qb_write(b, j->qbs, buf, j->size, blk * j->size)
                               : qb_read(b, j->qbs, buf, j->size, blk * j->size);
        if (ret < 0) {
            j->failed = 1;
            qb_error_get_human_str(b, j->msg, sizeof(j->msg));
            break;
        }
    }
    free(buf);
    qb_broker_delete(&b);
    return NULL;
}

/*
 * One timed run with @nthreads threads: returns MiB/s, and in *cpu_us the
 * CPU time (user + system) per request in microseconds, which tells a
 * library that serialises (the same CPU per request, less throughput)
 * from a machine that has no idle core left (both grow together).
 */
static double run_once(QBlockState *qbs, uint64_t image_size, uint64_t size, uint64_t count,
                       int nthreads, int write, int seq, uint64_t seed, double *cpu_us)
{
    Job jobs[MAX_THREADS];
    double t0, t1, c0, c1;

    memset(jobs, 0, sizeof(jobs));
    for (int t = 0; t < nthreads; t++) {
        jobs[t].qbs = qbs;
        jobs[t].image_size = image_size;
        jobs[t].size = size;
        jobs[t].n = count / (uint64_t)nthreads + ((uint64_t)t < count % (uint64_t)nthreads);
        jobs[t].first = (uint64_t)t;
        jobs[t].stride = (uint64_t)nthreads;
        jobs[t].seed = seed * 7919 + (uint64_t)t * 104729 + 1;
        jobs[t].write = write;
        jobs[t].seq = seq;
    }
    c0 = cpu_now();
    t0 = now();
    for (int t = 0; t < nthreads; t++) {
        if (pthread_create(&jobs[t].tid, NULL, job_run, &jobs[t]) != 0) {
            die("cannot create a thread");
        }
    }
    for (int t = 0; t < nthreads; t++) {
        pthread_join(jobs[t].tid, NULL);
    }
    t1 = now();
    c1 = cpu_now();
    *cpu_us = (c1 - c0) * 1e6 / (double)count;
    for (int t = 0; t < nthreads; t++) {
        if (jobs[t].failed) {
            die("a request failed: %s", jobs[t].msg);
        }
    }
    return (double)(count * size) / (1024.0 * 1024.0) / (t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    uint64_t v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s) {
        die("bad number '%s'", s);
    }
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end) {
        die("bad number '%s'", s);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench/threads [-f FMT] [-s SIZE] [-c COUNT] [-T N1,N2,...] [-r RUNS] "
            "[-w] [--seq] FILE\n"
            "  -f FMT   image format (default: probed)\n"
            "  -s SIZE  bytes per request (default 4k)\n"
            "  -c COUNT requests per run, split among the threads (default 200000)\n"
            "  -T LIST  thread counts to compare, alternating (default 1,4)\n"
            "  -r RUNS  runs per thread count (default 5)\n"
            "  -w       write instead of read (writeback cache; the image is changed)\n"
            "  --seq    thread t takes blocks t, t+N, ... instead of random ones\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *fmt = NULL, *file = NULL;
    uint64_t size = 4096, count = 200000;
    int counts[MAX_COUNTS], ncounts = 0, runs = 5, write = 0, seq = 0;
    double results[MAX_COUNTS][64], cpu[MAX_COUNTS][64], medians[MAX_COUNTS];
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockProtInfo loc;
    QBlockFmtInfo fi;
    QBlockStaticInfo *info = NULL;
    uint64_t image_size;
    uint8_t *buf;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-f") && i + 1 < argc) {
            fmt = argv[++i];
        } else if (!strcmp(a, "-s") && i + 1 < argc) {
            size = parse_size(argv[++i]);
        } else if (!strcmp(a, "-c") && i + 1 < argc) {
            count = parse_size(argv[++i]);
        } else if (!strcmp(a, "-r") && i + 1 < argc) {
            runs = (int)parse_size(argv[++i]);
        } else if (!strcmp(a, "-T") && i + 1 < argc) {
            char *list = argv[++i], *tok, *save = NULL;
            ncounts = 0;
            for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                uint64_t n = parse_size(tok);
                if (ncounts == MAX_COUNTS || n < 1 || n > MAX_THREADS) {
                    die("bad thread count list");
                }
                counts[ncounts++] = (int)n;
            }
        } else if (!strcmp(a, "-w")) {
            write = 1;
        } else if (!strcmp(a, "--seq")) {
            seq = 1;
        } else if (a[0] == '-' || file) {
            usage();
        } else {
            file = a;
        }
    }
    if (!file || size == 0 || size % 512 || count == 0 || runs < 1 || runs > 64) {
        usage();
    }
    if (ncounts == 0) {
        counts[0] = 1;
        counts[1] = 4;
        ncounts = 2;
    }

    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_FILE;
    loc.prot_op.o_file.filename = file;
    memset(&fi, 0, sizeof(fi));
    if (fmt) {
        fi.fmt_type = qb_str2fmttype(fmt);
        if (fi.fmt_type == QB_FMT_NONE) {
            die("unknown format '%s'", fmt);
        }
    }
    if (qb_broker_new(&b) != 0 || qb_state_new(b, &qbs) != 0) {
        die("out of memory");
    }
    if (qb_open(b, qbs, &loc, fmt ? &fi : NULL,
                write ? LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB : 0) != 0) {
        char msg[256];
        qb_error_get_human_str(b, msg, sizeof(msg));
        die("%s", msg);
    }
    if (qb_info_image_static_get(b, qbs, &info) != 0) {
        die("cannot get the image size");
    }
    image_size = info->virt_size;
    qb_info_image_static_delete(b, &info);
    if (image_size < size) {
        die("the image is smaller than one request");
    }

    /* Warm the page cache (and the format's metadata cache) once. */
    if (posix_memalign((void **)&buf, 4096, 1 << 20) != 0) {
        die("out of memory");
    }
    for (uint64_t off = 0; off + (1 << 20) <= image_size; off += 1 << 20) {
        if (qb_read(b, qbs, buf, 1 << 20, off) < 0) {
            die("warm-up read failed");
        }
    }
    free(buf);

    for (int r = 0; r < runs; r++) {
        for (int c = 0; c < ncounts; c++) {
            results[c][r] = run_once(qbs, image_size, size, count, counts[c], write, seq,
                                     (uint64_t)r + 1, &cpu[c][r]);
        }
    }
    if (qb_close(b, qbs) != 0) {
        die("close failed");
    }
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);

    printf("%s %s, %" PRIu64 " bytes per request, %" PRIu64 " requests per run, "
           "median of %d runs:\n", write ? "write" : "read", seq ? "strided" : "random",
           size, count, runs);
    for (int c = 0; c < ncounts; c++) {
        medians[c] = median(results[c], runs);
        printf("threads %3d: %10.1f MiB/s  ratio %.2f  CPU %.2f us/request\n", counts[c],
               medians[c], medians[c] / medians[0], median(cpu[c], runs));
    }
    return 0;
}
