/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 190-qcow2-stress.c: seeded random writes (any size and alignment),
 * discards, flushes, reopens and read-backs through libqblock's public API,
 * mirrored into a raw file with plain pwrite(2), so that the interop
 * scripts can then ask qemu-img check and qemu-img compare about the image.
 * The qcow2 scripts (1NN-qcow2-*.sh) compile it at run time.
 *
 * Usage: qcow2-stress [-s SEED] [-n OPS] [-m MAXLEN] [-F FLUSH_EVERY]
 *                     [-d DISCARD_PERCENT] [-r REOPEN_EVERY] [-f FMT] IMAGE MIRROR
 * MIRROR must already hold what IMAGE reads (the same size). Exits 0 when
 * every read-back matched the mirror, 1 on the first mismatch or error.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libqblock/libqblock.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: small, seedable, good enough to spread requests. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static QBroker *broker;
static QBlockState *qbs;
static QBlockProtInfo *loc;
static QBlockFmtInfo *fmt;

static void die(const char *what)
{
    char msg[1024];
    qb_error_get_human_str(broker, msg, sizeof(msg));
    fprintf(stderr, "qcow2-stress: %s: %s\n", what, msg);
    exit(1);
}

static void image_open(void)
{
    if (qb_open(broker, qbs, loc, fmt, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB) < 0) {
        die("open");
    }
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

int main(int argc, char **argv)
{
    uint64_t seed = 1, ops = 1000, maxlen = 1 << 20;
    unsigned flush_every = 50, discard_pct = 0, reopen_every = 0;
    const char *fmt_name = NULL;
    uint8_t *buf, *cmpbuf;
    uint64_t size;
    struct stat st;
    int opt, mfd;

    while ((opt = getopt(argc, argv, "s:n:m:F:d:r:f:")) != -1) {
        switch (opt) {
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'n': ops = strtoull(optarg, NULL, 0); break;
        case 'm': maxlen = strtoull(optarg, NULL, 0); break;
        case 'F': flush_every = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'd': discard_pct = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'r': reopen_every = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'f': fmt_name = optarg; break;
        default:
            fprintf(stderr, "usage: qcow2-stress [-s SEED] [-n OPS] [-m MAXLEN] [-F N] [-d PCT] "
                    "[-r N] [-f FMT] IMAGE MIRROR\n");
            return 1;
        }
    }
    if (optind != argc - 2 || maxlen == 0) {
        fprintf(stderr, "qcow2-stress: need IMAGE and MIRROR\n");
        return 1;
    }
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;

    mfd = open(argv[optind + 1], O_RDWR);
    if (mfd < 0 || fstat(mfd, &st) < 0) {
        perror("qcow2-stress: mirror");
        return 1;
    }
    size = (uint64_t)st.st_size;
    if (size == 0) {
        fprintf(stderr, "qcow2-stress: empty mirror\n");
        return 1;
    }
    if (maxlen > size) {
        maxlen = size;
    }
    if (qb_broker_new(&broker) < 0 || qb_state_new(broker, &qbs) < 0 ||
        qb_prot_info_new(broker, &loc) < 0) {
        fprintf(stderr, "qcow2-stress: out of memory\n");
        return 1;
    }
    loc->prot_type = QB_PROT_FILE;
    loc->prot_op.o_file.filename = argv[optind];
    if (fmt_name) {
        if (qb_fmt_info_new(broker, &fmt) < 0) {
            return 1;
        }
        fmt->fmt_type = qb_str2fmttype(fmt_name);
    }
    image_open();

    buf = malloc(maxlen);
    cmpbuf = malloc(maxlen);
    if (!buf || !cmpbuf) {
        fprintf(stderr, "qcow2-stress: out of memory\n");
        return 1;
    }

    for (uint64_t i = 0; i < ops; i++) {
        uint64_t len = rnd_len(maxlen);
        uint64_t off;
        unsigned kind = (unsigned)(rnd() % 100);

        if (len > size) {
            len = size;
        }
        off = rnd() % (size - len + 1);
        if (kind < discard_pct) {
            /* Discard: the image decides what the range reads; each byte must be old or zero. */
            if (qb_discard(broker, qbs, off, len) < 0) {
                die("discard");
            }
            if (qb_read(broker, qbs, buf, len, off) != (int64_t)len ||
                pread(mfd, cmpbuf, len, (off_t)off) != (ssize_t)len) {
                die("read after discard");
            }
            for (uint64_t k = 0; k < len; k++) {
                if (buf[k] != cmpbuf[k] && buf[k] != 0) {
                    fprintf(stderr, "qcow2-stress: op %" PRIu64 ": discard at %" PRIu64
                            " left byte %" PRIu64 " neither old nor zero\n", i, off, off + k);
                    return 1;
                }
            }
            if (pwrite(mfd, buf, len, (off_t)off) != (ssize_t)len) {
                perror("qcow2-stress: mirror write");
                return 1;
            }
        } else if (kind < 85) {
            uint64_t pattern = rnd();
            for (uint64_t k = 0; k < len; k++) {
                /* A pattern that changes every byte and differs between writes. */
                buf[k] = (uint8_t)((pattern >> ((k % 8) * 8)) + k / 8);
            }
            if (rnd() % 8 == 0) {
                memset(buf, 0, len);   /* zeros are data too */
            }
            if (qb_write(broker, qbs, buf, len, off) != (int64_t)len) {
                die("write");
            }
            if (pwrite(mfd, buf, len, (off_t)off) != (ssize_t)len) {
                perror("qcow2-stress: mirror write");
                return 1;
            }
        } else {
            if (qb_read(broker, qbs, buf, len, off) != (int64_t)len ||
                pread(mfd, cmpbuf, len, (off_t)off) != (ssize_t)len) {
                die("read");
            }
            if (memcmp(buf, cmpbuf, len) != 0) {
                for (uint64_t k = 0; k < len; k++) {
                    if (buf[k] != cmpbuf[k]) {
                        fprintf(stderr, "qcow2-stress: op %" PRIu64 ": read at %" PRIu64
                                "+%" PRIu64 " differs from the mirror at byte %" PRIu64
                                " (0x%02x, want 0x%02x)\n", i, off, len, off + k, buf[k],
                                cmpbuf[k]);
                        break;
                    }
                }
                return 1;
            }
        }
        if (flush_every && i % flush_every == flush_every - 1 && qb_flush(broker, qbs) < 0) {
            die("flush");
        }
        if (reopen_every && i % reopen_every == reopen_every - 1) {
            if (qb_close(broker, qbs) < 0) {
                die("close");
            }
            image_open();
        }
    }
    if (qb_close(broker, qbs) < 0) {
        die("close");
    }
    qb_state_delete(broker, &qbs);
    qb_prot_info_delete(broker, &loc);
    qb_fmt_info_delete(broker, &fmt);
    qb_broker_delete(&broker);
    free(buf);
    free(cmpbuf);
    close(mfd);
    return 0;
}
