/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qbwriter: seeded random writes through the public API, checked against a model kept apart. */

/*
 * The interop scripts 201, 211 and 230 use it (`make check` builds it
 * into $BUILDDIR/tests/helpers/qbwriter).
 *   qbwriter write  IMG START_RAW SEED COUNT MAXLEN [FLUSH_EVERY [OUT_RAW]]
 *     writes COUNT times into IMG (opened read-write, probed), printing
 *     "done N" after each; OUT_RAW receives the model: START_RAW's bytes with
 *     the writes applied. QBW_WRITEBACK=1 opens with LIBQBLOCK_O_CACHE_WB.
 *   qbwriter verify IMG START_RAW SEED COUNT MAXLEN
 *     opens IMG read-only and compares it with the model after COUNT writes;
 *     write number COUNT+1 (the one in flight when a writer was killed) may
 *     be present in part. Exit 1 on a difference.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libqblock/libqblock.h>

static uint64_t st;

static uint64_t rnd(void)
{
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    return st;
}

/* The next write: offset, length and contents all come from the seed. */
static void next_write(uint64_t size, uint64_t maxlen, uint64_t *off, uint64_t *len, uint8_t *buf)
{
    uint64_t l = rnd() % maxlen + 1;
    uint8_t b;
    int mode;

    if (l > size) {
        l = size;
    }
    *len = l;
    *off = rnd() % (size - l + 1);
    if (rnd() % 4 == 0) {
        /* Sector-aligned writes too, so that whole clusters get written. */
        *off &= ~UINT64_C(511);
        *len = (l + 511) & ~UINT64_C(511);
        if (*off + *len > size) {
            *len = size - *off;
        }
    }
    b = (uint8_t)rnd();
    mode = (int)(rnd() % 3);
    for (uint64_t k = 0; k < *len; k++) {
        buf[k] = mode == 0 ? 0 : mode == 1 ? (uint8_t)(b + k / 512) : (uint8_t)rnd();
    }
}

static void die(QBroker *br, const char *what)
{
    char msg[1024];
    qb_error_get_human_str(br, msg, sizeof(msg));
    fprintf(stderr, "qbwriter: %s: %s\n", what, msg);
    exit(2);
}

int main(int argc, char **argv)
{
    QBroker *br;
    QBlockState *qbs;
    QBlockProtInfo *loc;
    QBlockStaticInfo *info;
    uint8_t *model, *buf;
    uint64_t size, count, maxlen, flush_every, off = 0, len = 0;
    int verify, fd, flags;
    const char *out;

    if (argc < 7) {
        fprintf(stderr, "usage: qbwriter write|verify IMG START_RAW SEED COUNT MAXLEN "
                "[FLUSH_EVERY [OUT_RAW]]\n");
        return 2;
    }
    verify = strcmp(argv[1], "verify") == 0;
    st = strtoull(argv[4], NULL, 0) * UINT64_C(0x9E3779B97F4A7C15) + 1;
    count = strtoull(argv[5], NULL, 0);
    maxlen = strtoull(argv[6], NULL, 0);
    flush_every = argc > 7 ? strtoull(argv[7], NULL, 0) : 0;
    out = argc > 8 ? argv[8] : NULL;
    if (qb_broker_new(&br) < 0 || qb_state_new(br, &qbs) < 0 || qb_prot_info_new(br, &loc) < 0) {
        return 2;
    }
    /* The image is probed and may be raw: allow that guess (the library's default refuses it). */
    {
        QBlockOpenPolicy guess = { .flags = QB_POLICY_ALLOW_RAW_PROBE };
        if (qb_state_set_policy(br, qbs, &guess) < 0) {
            die(br, "policy");
        }
    }
    loc->prot_type = QB_PROT_FILE;
    loc->prot_op.o_file.filename = argv[2];
    flags = verify ? 0 : LIBQBLOCK_O_RDWR | (getenv("QBW_WRITEBACK") ? LIBQBLOCK_O_CACHE_WB : 0);
    if (qb_open(br, qbs, loc, NULL, flags) < 0) {
        die(br, "open");
    }
    if (qb_info_image_static_get(br, qbs, &info) < 0) {
        die(br, "info");
    }
    size = info->virt_size;
    qb_info_image_static_delete(br, &info);
    model = calloc(1, size + 1);
    buf = malloc(maxlen + 512);
    fd = open(argv[3], O_RDONLY);
    if (!model || !buf || fd < 0 || pread(fd, model, size, 0) < 0) {
        perror(argv[3]);
        return 2;
    }
    close(fd);

    for (uint64_t i = 0; i < count; i++) {
        next_write(size, maxlen, &off, &len, buf);
        if (!verify) {
            char line[64];
            int n;
            if (qb_write(br, qbs, buf, len, off) != (int64_t)len) {
                die(br, "write");
            }
            if (flush_every && (i + 1) % flush_every == 0 && qb_flush(br, qbs) < 0) {
                die(br, "flush");
            }
            n = snprintf(line, sizeof(line), "done %" PRIu64 "\n", i + 1);
            if (write(1, line, (size_t)n) != n) {
                return 2;
            }
        }
        memcpy(model + off, buf, len);
    }
    if (verify) {
        uint64_t ioff = 0, ilen = 0;
        uint8_t *next = malloc(maxlen + 512), *img = malloc(size + 1);
        if (!next || !img) {
            return 2;
        }
        next_write(size, maxlen, &ioff, &ilen, next);
        if (size && qb_read(br, qbs, img, size, 0) != (int64_t)size) {
            die(br, "read");
        }
        for (uint64_t s = 0; s < size; s += 512) {
            uint64_t n = size - s < 512 ? size - s : 512;
            int ok = 1;
            if (memcmp(img + s, model + s, n) == 0) {
                continue;
            }
            for (uint64_t k = s; k < s + n; k++) {
                if (img[k] != model[k] &&
                    !(k >= ioff && k < ioff + ilen && img[k] == next[k - ioff])) {
                    ok = 0;
                }
            }
            if (!ok) {
                fprintf(stderr, "qbwriter: %s differs from the model at sector %" PRIu64
                        " (after %" PRIu64 " writes)\n", argv[2], s / 512, count);
                return 1;
            }
        }
        free(next);
        free(img);
    } else if (qb_close(br, qbs) < 0) {
        die(br, "close");
    }
    if (out) {
        fd = open(out, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0 || pwrite(fd, model, size, 0) != (ssize_t)size || close(fd) < 0) {
            perror(out);
            return 2;
        }
    }
    free(model);
    free(buf);
    qb_state_delete(br, &qbs);
    qb_prot_info_delete(br, &loc);
    qb_broker_delete(&br);
    return 0;
}
