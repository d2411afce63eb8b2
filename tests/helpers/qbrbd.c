/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qbrbd: creates, writes and reads an RBD image through a QB_PROT_RBD location (the public API) for tests 620-629. */

/*
 * Usage: qbrbd [-c CONF] [-u USER] [-s SNAP] [-f FMT] POOL IMAGE MODE ARGS
 *
 *   create SIZE OBJSIZE      qb_create of format FMT (default rbd) with
 *                            virt_size SIZE and, for rbd, cluster_size OBJSIZE
 *   size                     open read-only, print "size N"
 *   write OFFSET LEN BYTE    open read-write, write LEN bytes of BYTE
 *   read OFFSET LEN BYTE     open read-only, read LEN bytes, all must be BYTE
 *   stream OPS               open read-write, then OPS times write 64 KiB of a
 *                            new byte at the next 64 KiB of the image (wrapping)
 *                            and read it back; prints "streaming" (flushed) once
 *                            the first round trip worked, so that a test can
 *                            stop the cluster while requests are in flight
 *
 * Prints "ok" (or "size N"), or "failed: CODE: message" and exits 1.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libqblock/libqblock.h>

static QBroker *b;

static int report(int code)
{
    char msg[1024];

    qb_error_get_human_str(b, msg, sizeof(msg));
    printf("failed: %s: %s\n", code == QB_ERR_INVALID_PARAM ? "QB_ERR_INVALID_PARAM" :
           code == QB_ERR_NOT_SUPPORTED ? "QB_ERR_NOT_SUPPORTED" :
           code == QB_ERR_READ_ONLY ? "QB_ERR_READ_ONLY" :
           code == QB_ERR_TIMEOUT ? "QB_ERR_TIMEOUT" :
           code == QB_ERR_IO ? "QB_ERR_IO" : "other", msg);
    return 1;
}

enum { STREAM_CHUNK = 65536 };

/* stream OPS on an open state: see the usage; returns the exit status. */
static int stream(QBlockState *qbs, uint64_t ops)
{
    unsigned char *buf = malloc(2 * STREAM_CHUNK), *back = buf + STREAM_CHUNK;
    QBlockStaticInfo *info = NULL;
    uint64_t chunks;
    int64_t r;
    int status = 0;

    if (!buf) {
        return 2;
    }
    r = qb_info_image_static_get(b, qbs, &info);
    if (r < 0) {
        free(buf);
        return report((int)r);
    }
    chunks = info->virt_size / STREAM_CHUNK;
    qb_info_image_static_delete(b, &info);
    for (uint64_t i = 0; i < ops && chunks; i++) {
        uint64_t off = (i % chunks) * STREAM_CHUNK;

        memset(buf, (int)(i % 251) + 1, STREAM_CHUNK);
        r = qb_write(b, qbs, buf, STREAM_CHUNK, off);
        if (r >= 0) {
            r = qb_read(b, qbs, back, STREAM_CHUNK, off);
        }
        if (r < 0) {
            status = report((int)r);
            break;
        }
        if (memcmp(buf, back, STREAM_CHUNK) != 0) {
            printf("failed: mismatch in the 64 KiB at %llu\n", (unsigned long long)off);
            status = 1;
            break;
        }
        if (i == 0) {
            printf("streaming\n");
            fflush(stdout);
        }
    }
    free(buf);
    return status;
}

/*
 * Close @qbs after a mode's work ended with @status; a failed close fails a
 * run that had succeeded (after a failure the close may fail too, say its
 * flush timing out: the first error is the one reported). "ok" on success.
 */
static int finish(QBlockState *qbs, int status)
{
    int ret = qb_close(b, qbs);

    if (status == 0 && ret < 0) {
        status = report(ret);
    }
    if (status == 0) {
        printf("ok\n");
    }
    return status;
}

/* run MODE: the work of one mode on an open broker; returns the exit status. */
static int run(QBlockState *qbs, QBlockProtInfo *loc, QBlockFmtInfo *fmt, const char *mode,
               char **args, int nargs)
{
    int ret;

    if (strcmp(mode, "create") == 0 && nargs == 2) {
        if (fmt->fmt_type == QB_FMT_RBD) {
            fmt->fmt_op.o_rbd.virt_size = strtoull(args[0], NULL, 0);
            fmt->fmt_op.o_rbd.cluster_size = strtoull(args[1], NULL, 0);
        } else {
            fmt->fmt_op.o_raw.virt_size = strtoull(args[0], NULL, 0);
        }
        ret = qb_create(b, qbs, loc, fmt, 0);
        if (ret < 0) {
            return report(ret);
        }
        printf("ok\n");
        return 0;
    }
    if (strcmp(mode, "size") == 0 && nargs == 0) {
        QBlockStaticInfo *info = NULL;
        ret = qb_open(b, qbs, loc, fmt, 0);
        if (ret < 0) {
            return report(ret);
        }
        ret = qb_info_image_static_get(b, qbs, &info);
        if (ret < 0) {
            report(ret);
            qb_close(b, qbs);
            return 1;
        }
        printf("size %llu\n", (unsigned long long)info->virt_size);
        qb_info_image_static_delete(b, &info);
        return qb_close(b, qbs) < 0;
    }
    if ((strcmp(mode, "write") == 0 || strcmp(mode, "read") == 0) && nargs == 3) {
        uint64_t off = strtoull(args[0], NULL, 0);
        size_t len = strtoull(args[1], NULL, 0);
        int byte = (int)strtol(args[2], NULL, 0);
        bool wr = mode[0] == 'w';
        unsigned char *buf;
        int64_t r;
        int status = 0;

        ret = qb_open(b, qbs, loc, fmt, wr ? LIBQBLOCK_O_RDWR : 0);
        if (ret < 0) {
            return report(ret);
        }
        buf = malloc(len ? len : 1);
        if (!buf) {
            qb_close(b, qbs);
            return 2;
        }
        memset(buf, wr ? byte : ~byte, len);
        r = wr ? qb_write(b, qbs, buf, len, off) : qb_read(b, qbs, buf, len, off);
        if (r != (int64_t)len) {
            status = report(r < 0 ? (int)r : -1);
        } else if (!wr) {
            for (size_t i = 0; i < len; i++) {
                if (buf[i] != (unsigned char)byte) {
                    printf("failed: mismatch at %llu\n", (unsigned long long)(off + i));
                    status = 1;
                    break;
                }
            }
        }
        free(buf);
        return finish(qbs, status);
    }
    if (strcmp(mode, "stream") == 0 && nargs == 1) {
        ret = qb_open(b, qbs, loc, fmt, LIBQBLOCK_O_RDWR);
        if (ret < 0) {
            return report(ret);
        }
        return finish(qbs, stream(qbs, strtoull(args[0], NULL, 0)));
    }
    fprintf(stderr, "qbrbd: unknown mode or wrong arguments\n");
    return 2;
}

int main(int argc, char **argv)
{
    QBlockProtInfo loc;
    QBlockFmtInfo *fmt = NULL;
    QBlockState *qbs = NULL;
    const char *fmt_name = "rbd";
    int opt, status = 2;

    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_RBD;
    while ((opt = getopt(argc, argv, "c:u:s:f:")) != -1) {
        switch (opt) {
        case 'c': loc.prot_op.o_rbd.conf = optarg; break;
        case 'u': loc.prot_op.o_rbd.user = optarg; break;
        case 's': loc.prot_op.o_rbd.snapshot = optarg; break;
        case 'f': fmt_name = optarg; break;
        default: return 2;
        }
    }
    if (argc - optind < 3 || qb_broker_new(&b) < 0 || qb_state_new(b, &qbs) < 0 ||
        qb_fmt_info_new(b, &fmt) < 0) {
        fprintf(stderr, "usage: qbrbd [-c CONF] [-u USER] [-s SNAP] [-f FMT] POOL IMAGE MODE ARGS\n");
        goto out;
    }
    loc.prot_op.o_rbd.pool = argv[optind][0] ? argv[optind] : NULL;
    loc.prot_op.o_rbd.image = argv[optind + 1][0] ? argv[optind + 1] : NULL;
    fmt->fmt_type = qb_str2fmttype(fmt_name);
    status = run(qbs, &loc, fmt, argv[optind + 2], argv + optind + 3, argc - optind - 3);

out:
    if (fmt) {
        qb_fmt_info_delete(b, &fmt);
    }
    if (qbs) {
        qb_state_delete(b, &qbs);
    }
    if (b) {
        qb_broker_delete(&b);
    }
    return status;
}
