#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 230-cow-uml.sh: User-Mode-Linux cow files and the UML tools (Debian's
# uml-utilities). A file uml_mkcow makes reads through libqblock as its
# backing file, and after seeded random writes through libqblock's public
# API as the writer's model; uml_moo merges it into exactly the model's
# bytes. A file libqblock makes is byte for byte what uml_mkcow makes, and
# after random writes uml_moo (also its in-place -d mode) merges it into
# exactly the model. One backing file has a size that is not a whole number
# of sectors.

source "$SRCDIR/tests/interop/common.sh"
for tool in uml_mkcow uml_moo; do
    command -v $tool >/dev/null 2>&1 || skip "$tool is not installed (uml-utilities)"
done

# build_writer: compile qbwriter, a small program on libqblock's public API
# that makes seeded random writes (any offset and length) and keeps a model
# of what the image must hold, into $TEST_DIR/qbwriter; skip without a C
# compiler.
#   qbwriter write  IMG START_RAW SEED COUNT MAXLEN [FLUSH_EVERY [OUT_RAW]]
#     writes COUNT times into IMG (opened read-write, probed), printing
#     "done N" after each; OUT_RAW receives the model: START_RAW's bytes with
#     the writes applied. QBW_WRITEBACK=1 opens with LIBQBLOCK_O_CACHE_WB.
#   qbwriter verify IMG START_RAW SEED COUNT MAXLEN
#     opens IMG read-only and compares it with the model after COUNT writes;
#     write number COUNT+1 (the one in flight when a writer was killed) may
#     be present in part. Exit 1 on a difference.
build_writer() {
    local cc=${CC:-cc} san=
    command -v "${cc%% *}" >/dev/null 2>&1 || skip "no C compiler ($cc) to build the writer program"
    if [ -f "$BUILDDIR/config-host.mak" ]; then
        san=$(sed -n 's/^CONFIG_SANITIZERS = *//p' "$BUILDDIR/config-host.mak")
    fi
    cat >"$TEST_DIR/qbwriter.c" <<'EOF'
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
EOF
    # shellcheck disable=SC2086
    $cc -std=gnu11 -O2 -Wall -Wextra ${san:+-fsanitize=$san} -I"$SRCDIR/include" \
        -o "$TEST_DIR/qbwriter" "$TEST_DIR/qbwriter.c" -L"$BUILDDIR" -lqblock ||
        fail "could not build the writer program"
}

# writer ARGS...: run qbwriter, which must succeed (its progress lines dropped).
writer() {
    "$TEST_DIR/qbwriter" "$@" >/dev/null || fail "qbwriter $* failed"
}

# same_disk REF GOT: GOT (a conversion, rounded up to whole sectors as
# qemu-img rounds sizes) holds REF's bytes followed by nothing but zeros.
same_disk() {
    local n
    n=$(stat -c %s "$1")
    cmp -n "$n" "$1" "$2" >&2 || fail "$1 and $2 differ"
    [ "$(stat -c %s "$2")" -lt $((n + 512)) ] || fail "$2 is too long"
    tail -c +$((n + 1)) "$2" | cmp -s - <(head -c $(( $(stat -c %s "$2") - n )) /dev/zero) ||
        fail "$2 has data past the end of $1"
}

# merged_as_model MERGED MODEL: uml_moo copies whole sectors only, so a
# backing file's partial last sector is not in its output.
merged_as_model() {
    local n
    n=$(( $(stat -c %s "$2") / 512 * 512 ))
    head -c $n "$2" >"$TEST_DIR/model-sectors.raw"
    same_content "$TEST_DIR/model-sectors.raw" "$1"
}

build_writer

for size in 8388608 3000000; do
    rm -f base.raw u.cow l.cow fresh.cow merged.raw model.raw
    head -c $size /dev/urandom >base.raw

    # Read a uml_mkcow file, then write it and let uml_moo merge it.
    run uml_mkcow u.cow base.raw
    run qbi info u.cow
    grep -q "^file format: cow$" "$TEST_DIR/run.out" || fail "u.cow is not probed as cow"
    run qbi convert -O raw u.cow got.raw
    same_disk base.raw got.raw
    QBW_WRITEBACK=1 writer write u.cow base.raw 21 1500 40000 0 model.raw
    run qbi convert -O raw u.cow got.raw
    same_disk model.raw got.raw
    run uml_moo u.cow merged.raw
    merged_as_model merged.raw model.raw
    echo "$size bytes: a uml_mkcow file reads as its backing file, and after 1500 writes uml_moo merges the model"

    # The file libqblock creates is the file uml_mkcow creates.
    run uml_mkcow fresh.cow base.raw
    run qbi create -f cow -u -b base.raw l.cow 0
    same_content fresh.cow l.cow
    writer write l.cow base.raw 22 300 40000 10 model.raw
    rm -f merged.raw
    run uml_moo l.cow merged.raw
    merged_as_model merged.raw model.raw
    # In-place merge into (a copy of) the backing file.
    cp -p base.raw base-copy.raw
    rm -f c.cow
    run qbi create -f cow -u -b base-copy.raw c.cow 0
    writer write c.cow base-copy.raw 23 300 40000 0 model-c.raw
    run uml_moo -d c.cow
    same_content model-c.raw base-copy.raw
    echo "$size bytes: libqblock's cow file equals uml_mkcow's, and uml_moo merges the model after 300 writes"
done
