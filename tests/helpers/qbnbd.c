/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qbnbd: drives an NBD export through a QB_PROT_NBD location (the public API) for tests 600-619. */

/*
 * Usage: qbnbd [-t TIMEOUT_MS] [-e EXPORT] [-f FMT] (-U SOCKET | -H HOST -p PORT) MODE ARGS
 *
 *   threads N OPS MIRROR  N threads on one state, each writing OPS random
 *                         unaligned ranges inside its own interleaved 64 KiB
 *                         stripes and reading each back at once; then every
 *                         thread re-reads its stripes. The expected content
 *                         of the whole image (what it held at open, plus the
 *                         writes) is written to the raw file MIRROR.
 *                         Exit 0 when every read matched.
 *   loop                  write and read 64 KiB blocks in a loop until a
 *                         call fails; print "failed: CODE after N ms" where
 *                         CODE is the QB_ERR_* name and N the time that one
 *                         failing call took. Prints "ready" (flushed) once
 *                         the first block went through.
 *   open [rw]             open (read-write with "rw"), print "size N" or
 *                         "failed: CODE: message".
 *   read OFFSET LEN       one read; "ok" or "failed: CODE: message".
 *   write OFFSET LEN      one write of 0x5a bytes; "ok" or "failed: CODE: message".
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libqblock/libqblock.h>

#define STRIPE (64 * 1024)

static QBlockProtInfo loc;
static QBlockFmtInfo *fmt_info;
static QBlockState *qbs;
static uint8_t *model;          /* the expected content of the whole image */
static uint64_t image_size;
static int nthreads;
static long nops;
static int failures;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *code_name(int code)
{
    switch (code) {
    case QB_ERR_MEM_ERR: return "QB_ERR_MEM_ERR";
    case QB_ERR_INTERNAL_ERR: return "QB_ERR_INTERNAL_ERR";
    case QB_ERR_INVALID_PARAM: return "QB_ERR_INVALID_PARAM";
    case QB_ERR_BLOCK_OUT_OF_RANGE: return "QB_ERR_BLOCK_OUT_OF_RANGE";
    case QB_ERR_NOT_SUPPORTED: return "QB_ERR_NOT_SUPPORTED";
    case QB_ERR_INVALID_IMAGE: return "QB_ERR_INVALID_IMAGE";
    case QB_ERR_READ_ONLY: return "QB_ERR_READ_ONLY";
    case QB_ERR_LOCKED: return "QB_ERR_LOCKED";
    case QB_ERR_IO: return "QB_ERR_IO";
    case QB_ERR_TIMEOUT: return "QB_ERR_TIMEOUT";
    default: return "unknown";
    }
}

static void report(QBroker *b, int code)
{
    char msg[1024];
    qb_error_get_human_str(b, msg, sizeof(msg));
    printf("failed: %s: %s\n", code_name(code), msg);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail_once(const char *what, uint64_t off, uint64_t len)
{
    pthread_mutex_lock(&fail_lock);
    if (failures++ < 5) {
        fprintf(stderr, "qbnbd: %s at %" PRIu64 " (+%" PRIu64 ")\n", what, off, len);
    }
    pthread_mutex_unlock(&fail_lock);
}

/* A random range inside one of thread @t's stripes. */
static void pick_range(int t, unsigned *seed, uint64_t *off, uint64_t *len)
{
    uint64_t nstripes = image_size / STRIPE;
    uint64_t mine = (nstripes - 1 - (uint64_t)t) / (uint64_t)nthreads + 1;
    uint64_t stripe = (uint64_t)t + (uint64_t)(rand_r(seed) % mine) * (uint64_t)nthreads;
    uint64_t a = (uint64_t)rand_r(seed) % STRIPE, b = (uint64_t)rand_r(seed) % STRIPE;

    if (a > b) {
        uint64_t x = a;
        a = b;
        b = x;
    }
    *off = stripe * STRIPE + a;
    *len = b - a + 1;
}

static void *worker(void *opaque)
{
    int t = (int)(intptr_t)opaque;
    unsigned seed = 1234u + (unsigned)t;
    QBroker *b = NULL;
    uint8_t *buf = malloc(STRIPE), *back = malloc(STRIPE);

    if (!buf || !back || qb_broker_new(&b) < 0) {
        fail_once("setup", 0, 0);
        return NULL;
    }
    for (long i = 0; i < nops; i++) {
        uint64_t off, len;
        pick_range(t, &seed, &off, &len);
        for (uint64_t k = 0; k < len; k++) {
            buf[k] = (uint8_t)rand_r(&seed);
        }
        if (qb_write(b, qbs, buf, len, off) != (int64_t)len) {
            fail_once("write failed", off, len);
            break;
        }
        memcpy(model + off, buf, len);
        pick_range(t, &seed, &off, &len);
        if (qb_read(b, qbs, back, len, off) != (int64_t)len || memcmp(back, model + off, len)) {
            fail_once("read-back differs", off, len);
        }
    }
    /* Every stripe of this thread once more, whole. */
    for (uint64_t s = (uint64_t)t; s < image_size / STRIPE; s += (uint64_t)nthreads) {
        if (qb_read(b, qbs, back, STRIPE, s * STRIPE) != STRIPE ||
            memcmp(back, model + s * STRIPE, STRIPE)) {
            fail_once("final read differs", s * STRIPE, STRIPE);
        }
    }
    qb_broker_delete(&b);
    free(buf);
    free(back);
    return NULL;
}

static int open_image(QBroker *b, int flags)
{
    int ret = qb_open(b, qbs, &loc, fmt_info, flags);
    QBlockStaticInfo *info = NULL;

    if (ret < 0) {
        report(b, ret);
        return ret;
    }
    ret = qb_info_image_static_get(b, qbs, &info);
    if (ret < 0) {
        report(b, ret);
        return ret;
    }
    image_size = info->virt_size;
    qb_info_image_static_delete(b, &info);
    return 0;
}

static int mode_threads(QBroker *b, char **argv)
{
    pthread_t th[64];
    int fd;

    nthreads = atoi(argv[0]);
    nops = atol(argv[1]);
    if (nthreads < 1 || nthreads > 64) {
        fprintf(stderr, "qbnbd: 1..64 threads\n");
        return 2;
    }
    if (open_image(b, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB) < 0) {
        return 1;
    }
    if (image_size / STRIPE < (uint64_t)nthreads) {
        fprintf(stderr, "qbnbd: the image is too small\n");
        return 2;
    }
    model = malloc(image_size);
    if (!model || qb_read(b, qbs, model, image_size, 0) != (int64_t)image_size) {
        fprintf(stderr, "qbnbd: cannot read the image\n");
        return 1;
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
    }
    if (qb_close(b, qbs) < 0) {
        report(b, QB_ERR_INTERNAL_ERR);
        return 1;
    }
    fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, model, image_size) != (ssize_t)image_size || close(fd) < 0) {
        fprintf(stderr, "qbnbd: cannot write %s\n", argv[2]);
        return 1;
    }
    free(model);
    printf("%d threads x %ld writes: %s\n", nthreads, nops, failures ? "MISMATCH" : "all reads matched");
    return failures ? 1 : 0;
}

static int mode_loop(QBroker *b)
{
    static uint8_t buf[65536];
    uint64_t off = 0;
    bool ready = false;

    if (open_image(b, LIBQBLOCK_O_RDWR) < 0) {
        return 1;
    }
    for (;;) {
        int64_t t0 = now_ms(), ret;
        memset(buf, (int)(off / sizeof(buf)) & 0xff, sizeof(buf));
        ret = qb_write(b, qbs, buf, sizeof(buf), off);
        if (ret >= 0) {
            ret = qb_read(b, qbs, buf, sizeof(buf), off);
        }
        if (ret < 0) {
            printf("failed: %s after %" PRId64 " ms\n", code_name((int)ret), now_ms() - t0);
            qb_close(b, qbs);
            return 0;
        }
        if (!ready) {
            printf("ready\n");
            fflush(stdout);
            ready = true;
        }
        off = (off + sizeof(buf)) % (image_size - sizeof(buf));
    }
}

int main(int argc, char **argv)
{
    struct QBlockProtOptionNBD *o = &loc.prot_op.o_nbd;
    const char *fmt = NULL;
    QBroker *b = NULL;
    int c, ret = 2;

    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_NBD;
    while ((c = getopt(argc, argv, "t:e:f:U:H:p:")) != -1) {
        switch (c) {
        case 't': o->timeout_ms = (uint32_t)atol(optarg); break;
        case 'e': o->export_name = optarg; break;
        case 'f': fmt = optarg; break;
        case 'U': o->socket_path = optarg; break;
        case 'H': o->host = optarg; break;
        case 'p': o->port_number = (uint32_t)atol(optarg); break;
        default: return 2;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1 || qb_broker_new(&b) < 0 || qb_state_new(b, &qbs) < 0) {
        fprintf(stderr, "usage: qbnbd [-t MS] [-e EXPORT] [-f FMT] (-U SOCKET | -H HOST -p PORT) "
                        "threads N OPS MIRROR | loop | open [rw] | read OFF LEN | write OFF LEN\n");
        return 2;
    }
    if (fmt) {
        if (qb_fmt_info_new(b, &fmt_info) < 0) {
            return 1;
        }
        fmt_info->fmt_type = qb_str2fmttype(fmt);
    }
    if (strcmp(argv[0], "threads") == 0 && argc == 4) {
        ret = mode_threads(b, argv + 1);
    } else if (strcmp(argv[0], "loop") == 0) {
        ret = mode_loop(b);
    } else if (strcmp(argv[0], "open") == 0) {
        bool rw = argc > 1 && strcmp(argv[1], "rw") == 0;
        ret = open_image(b, rw ? LIBQBLOCK_O_RDWR : 0) < 0 ? 1 : 0;
        if (ret == 0) {
            printf("size %" PRIu64 "\n", image_size);
            qb_close(b, qbs);
        }
    } else if ((strcmp(argv[0], "read") == 0 || strcmp(argv[0], "write") == 0) && argc == 3) {
        bool wr = argv[0][0] == 'w';
        uint64_t off = strtoull(argv[1], NULL, 0), len = strtoull(argv[2], NULL, 0);
        uint8_t *buf = malloc(len ? len : 1);
        int64_t r;
        if (!buf || open_image(b, wr ? LIBQBLOCK_O_RDWR : 0) < 0) {
            return 1;
        }
        memset(buf, 0x5a, len);
        r = wr ? qb_write(b, qbs, buf, len, off) : qb_read(b, qbs, buf, len, off);
        if (r < 0) {
            report(b, (int)r);
        } else {
            printf("ok\n");
        }
        qb_close(b, qbs);
        free(buf);
        ret = r < 0 ? 1 : 0;
    } else {
        fprintf(stderr, "qbnbd: unknown mode '%s'\n", argv[0]);
    }
    qb_fmt_info_delete(b, &fmt_info);
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
    return ret;
}
