/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_file.c: white-box tests of the file protocol (block/file-posix.c)
 * and of image locking (block/perm.c), through the block layer's entry
 * points, with plain POSIX calls on the same files as the oracle.
 */

#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include("config-host.h")
#include "config-host.h"
#endif
#endif

#include "block/block.h"
#include "block/block_int.h"

/* ------------------------------------------------------------------ */
/* Scratch files and oracles                                           */

/*
 * The binary's scratch folder (base) is made and removed by the parent
 * process, so that it goes away even when a forked test fails before its
 * teardown; each test works in a folder of its own inside it.
 */
static char base[256];
static char dir[300];
static pid_t base_owner;

static int rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void base_remove(void)
{
    if (base[0] && getpid() == base_owner) {
        nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        base[0] = '\0';
    }
}

static void base_create(void)
{
    const char *tmp = getenv("TMPDIR");

    if (!tmp || !*tmp) {
        tmp = "/tmp";
    }
    snprintf(base, sizeof(base), "%s/check_int_file-XXXXXX", tmp);
    if (!mkdtemp(base)) {
        fprintf(stderr, "mkdtemp %s: %s\n", base, strerror(errno));
        exit(2);
    }
    base_owner = getpid();
    atexit(base_remove);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s/t-XXXXXX", base);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

static void teardown(void)
{
    if (dir[0]) {
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
    }
}

static const char *path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];

    snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
    return p;
}

/* A file of @size bytes, each byte @fill, written with plain POSIX calls. */
static void make_file(const char *name, size_t size, int fill)
{
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint8_t *buf = malloc(size ? size : 1);

    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_nonnull(buf);
    memset(buf, fill, size);
    ck_assert_int_eq(pwrite(fd, buf, size, 0), (ssize_t)size);
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
    free(buf);
}

static off_t file_size(const char *name)
{
    struct stat st;
    ck_assert_int_eq(stat(name, &st), 0);
    return st.st_size;
}

static int64_t file_alloc(const char *name)
{
    struct stat st;
    ck_assert_int_eq(stat(name, &st), 0);
    return (int64_t)st.st_blocks * 512;
}

/* The whole file read with read(2): the oracle for everything written. */
static uint8_t *slurp(const char *name, size_t *len)
{
    off_t size = file_size(name);
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    int fd = open(name, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fd, buf, (size_t)size, 0), size);
    close(fd);
    *len = (size_t)size;
    return buf;
}

/*
 * Every byte of @buf[start, end) is @want. One assertion for the whole
 * range: Check reports to its parent process on every ck_assert, which
 * per byte would cost a system call each.
 */
#define expect_fill(buf, start, end, want) \
    expect_fill_at(__LINE__, (const uint8_t *)(buf), (start), (end), (want))
static void expect_fill_at(int line, const uint8_t *buf, size_t start, size_t end, uint8_t want)
{
    size_t i = start;
    while (i < end && buf[i] == want) {
        i++;
    }
    ck_assert_msg(i == end, "line %d: byte %zu is 0x%02x, want 0x%02x (range %zu..%zu)", line,
                  i, i < end ? buf[i] : 0, want, start, end);
}

/* Deterministic pseudo-random numbers (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static BlockDriverState *open_file(const char *name, int flags)
{
    BlockDriverState *bs = NULL;
    BdrvError err = { 0 };
    int ret = bdrv_file_open(&bs, name, flags, &err);

    ck_assert_msg(ret == 0, "open %s (flags 0x%x): %d %s", name, flags, ret, err.msg);
    return bs;
}

/*
 * Whether another descriptor holds a lock on @byte of @name, seen from a
 * fresh open file description (so every lock of this process counts).
 */
static bool byte_locked(const char *name, int byte)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    int fd = open(name, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fcntl(fd, F_OFD_GETLK, &fl), 0);
    close(fd);
    return fl.l_type != F_UNLCK;
}

/* The set of lock bytes held on @name as a bitmask: bit n = byte 100+n, bit 4+n = 200+n. */
static unsigned lock_mask(const char *name)
{
    unsigned m = 0;
    for (int n = 0; n < 4; n++) {
        m |= byte_locked(name, 100 + n) ? 1u << n : 0;
        m |= byte_locked(name, 200 + n) ? 1u << (4 + n) : 0;
    }
    return m;
}
#define B100 0x01u
#define B101 0x02u
#define B102 0x04u
#define B103 0x08u
#define B200 0x10u
#define B201 0x20u
#define B202 0x40u
#define B203 0x80u

/* A stand-in for a format with metadata (qcow2...): it does not share write. */
static const BlockDriver fake_meta = {
    .format_name = "fake-meta",
    .shares_write = false,
};
static const BlockDriver fake_plain = {
    .format_name = "fake-plain",
    .shares_write = true,
};

/* Open @name's protocol and take the permissions format @drv takes with @flags. */
static int hold(const char *name, const BlockDriver *drv, int flags, BlockDriverState **pbs,
                BdrvError *err)
{
    uint64_t perm, shared;
    int ret;

    *pbs = open_file(name, flags);
    bdrv_file_perms(drv, flags, &perm, &shared);
    ret = bdrv_file.bdrv_set_perm(*pbs, perm, shared, err);
    if (ret < 0) {
        bdrv_close(*pbs);
        *pbs = NULL;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Open and basic transfers                                            */

START_TEST(file_open_missing_fails)
{
    BlockDriverState *bs = NULL;
    BdrvError err = { 0 };
    const char *name = path("missing.img");

    ck_assert_int_eq(bdrv_file_open(&bs, name, BDRV_O_RDWR, &err), -ENOENT);
    ck_assert_ptr_null(bs);
    ck_assert_int_eq(err.code, -ENOENT);
    ck_assert_msg(strstr(err.msg, name) != NULL, "message names the file: %s", err.msg);
}
END_TEST

START_TEST(file_open_prefix_accepted)
{
    char name[600];
    BlockDriverState *bs;

    make_file(path("p.img"), 4096, 0x5a);
    snprintf(name, sizeof(name), "file:%s", path("p.img"));
    bs = open_file(name, 0);
    ck_assert_int_eq(bdrv_getlength(bs), 4096);
    bdrv_close(bs);
}
END_TEST

START_TEST(file_rw_odd_offsets_match_oracle)
{
    const char *name = path("rw.img");
    const size_t size = 256 * 1024;
    uint8_t *shadow = calloc(1, size), *got, *buf = malloc(70000);
    BlockDriverState *bs;
    size_t len;

    ck_assert_int_eq(bdrv_create_file(name, size, BDRV_PREALLOC_OFF, 0, NULL), 0);
    bs = open_file(name, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)size);
    for (int i = 0; i < 200; i++) {
        size_t n = 1 + rnd() % 65000;
        uint64_t off = rnd() % (size - n);
        for (size_t j = 0; j < n; j++) {
            buf[j] = (uint8_t)rnd();
        }
        ck_assert_int_eq(bdrv_pwrite(bs, off, buf, n), 0);
        memcpy(shadow + off, buf, n);
        n = 1 + rnd() % 65000;
        off = rnd() % (size - n);
        ck_assert_int_eq(bdrv_pread(bs, off, buf, n), 0);
        ck_assert_mem_eq(buf, shadow + off, n);
    }
    ck_assert_int_eq(bdrv_flush(bs), 0);
    bdrv_close(bs);
    got = slurp(name, &len);
    ck_assert_uint_eq(len, size);
    ck_assert_mem_eq(got, shadow, size);
    free(got);
    free(shadow);
    free(buf);
}
END_TEST

/* Reads past the end of the file return zeros, with O_DIRECT too. */
static void read_past_eof(int flags)
{
    const char *name = path("short.img");
    uint8_t *buf = malloc(8192);
    BlockDriverState *bs;

    make_file(name, 1000, 0xaa);
    bs = open_file(name, flags);
    memset(buf, 0x11, 8192);
    ck_assert_int_eq(bdrv_pread(bs, 0, buf, 4096), 0);
    expect_fill(buf, 0, 1000, 0xaa);
    expect_fill(buf, 1000, 4096, 0);
    memset(buf, 0x11, 8192);
    ck_assert_int_eq(bdrv_pread(bs, 999, buf, 3), 0);
    ck_assert_uint_eq(buf[0], 0xaa);
    ck_assert_uint_eq(buf[1], 0);
    ck_assert_uint_eq(buf[2], 0);
    memset(buf, 0x11, 8192);
    ck_assert_int_eq(bdrv_pread(bs, 5000, buf, 8192), 0);
    expect_fill(buf, 0, 8192, 0);
    bdrv_close(bs);
    ck_assert_int_eq(file_size(name), 1000);
    free(buf);
}

START_TEST(file_read_past_eof_zero_fills)
{
    read_past_eof(0);
}
END_TEST

START_TEST(file_read_past_eof_zero_fills_nocache)
{
    read_past_eof(BDRV_O_NOCACHE);
}
END_TEST

/* A write past the end extends the file to exactly its end, as write(2) does. */
static void write_extends(int flags)
{
    const char *name = path("grow.img");
    uint8_t data[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, *got;
    BlockDriverState *bs;
    size_t len;

    make_file(name, 1000, 0x33);
    bs = open_file(name, BDRV_O_RDWR | flags);
    /* Inside an unaligned last block: the size must not move. */
    ck_assert_int_eq(bdrv_pwrite(bs, 100, data, 10), 0);
    ck_assert_int_eq(bdrv_getlength(bs), 1000);
    ck_assert_int_eq(bdrv_pwrite(bs, 10000, data, 10), 0);
    ck_assert_int_eq(bdrv_getlength(bs), 10010);
    bdrv_close(bs);
    got = slurp(name, &len);
    ck_assert_uint_eq(len, 10010);
    ck_assert_mem_eq(got + 100, data, 10);
    ck_assert_mem_eq(got + 10000, data, 10);
    expect_fill(got, 1000, 10000, 0);
    ck_assert_uint_eq(got[99], 0x33);
    ck_assert_uint_eq(got[110], 0x33);
    ck_assert_uint_eq(got[999], 0x33);
    free(got);
}

START_TEST(file_write_past_eof_extends)
{
    write_extends(0);
}
END_TEST

START_TEST(file_write_past_eof_extends_nocache)
{
    write_extends(BDRV_O_NOCACHE);
}
END_TEST

/*
 * Random unaligned requests (offset, length and memory) against a shadow
 * copy; single buffers and scattered vectors; the file checked at the end
 * with read(2).
 */
static void random_vs_shadow(int flags, int rounds)
{
    const char *name = path("rand.img");
    const size_t size = 1024 * 1024;
    uint8_t *shadow = calloc(1, size + 200000), *mem = malloc(200000 + 64), *got;
    BlockDriverState *bs;
    size_t len, shadow_len = size;

    ck_assert_int_eq(bdrv_create_file(name, size, BDRV_PREALLOC_OFF, 0, NULL), 0);
    bs = open_file(name, BDRV_O_RDWR | flags);
    for (int i = 0; i < rounds; i++) {
        uint8_t *buf = mem + rnd() % 64;       /* deliberately misaligned memory */
        size_t n = 1 + rnd() % 150000;
        uint64_t off = rnd() % (size + 4096);  /* sometimes past the end */
        bool vector = rnd() % 3 == 0;
        QBIOVector qiov;

        if (vector) {
            size_t pos = 0;
            ck_assert_int_eq(qiov_init(&qiov, 4), 0);
            while (pos < n) {
                size_t piece = 1 + rnd() % 9000;   /* not inside MIN: evaluated twice */
                piece = MIN(n - pos, piece);
                ck_assert_int_eq(qiov_add(&qiov, buf + pos, piece), 0);
                pos += piece;
            }
        } else {
            qiov_init_buf(&qiov, buf, n);
        }
        if (rnd() % 2) {
            for (size_t j = 0; j < n; j++) {
                buf[j] = (uint8_t)rnd();
            }
            ck_assert_int_eq(bdrv_pwritev(bs, off, &qiov), 0);
            memcpy(shadow + off, buf, n);
            shadow_len = MAX(shadow_len, off + n);
            ck_assert_int_eq(bdrv_getlength(bs), (int64_t)shadow_len);
        } else {
            memset(buf, 0xee, n);
            ck_assert_int_eq(bdrv_preadv(bs, off, &qiov), 0);
            if (memcmp(buf, shadow + off, n) != 0) {
                size_t j = 0;
                while (buf[j] == shadow[off + j]) {
                    j++;
                }
                ck_abort_msg("round %d: byte %zu of a %s read of %zu at %llu is 0x%x, "
                             "want 0x%x", i, j, vector ? "vector" : "buffer", n,
                             (unsigned long long)off, buf[j], shadow[off + j]);
            }
        }
        qiov_destroy(&qiov);
    }
    bdrv_close(bs);
    got = slurp(name, &len);
    ck_assert_uint_eq(len, shadow_len);
    ck_assert_mem_eq(got, shadow, len);
    free(got);
    free(shadow);
    free(mem);
}

START_TEST(file_unaligned_random_buffered)
{
    random_vs_shadow(0, 300);
}
END_TEST

START_TEST(file_unaligned_random_nocache)
{
    random_vs_shadow(BDRV_O_NOCACHE, 300);
}
END_TEST

START_TEST(file_aligned_nocache_direct_path)
{
    const char *name = path("al.img");
    BlockDriverState *bs;
    uint8_t *a, *b, *got;
    size_t len;

    ck_assert_int_eq(posix_memalign((void **)&a, 4096, 65536), 0);
    ck_assert_int_eq(posix_memalign((void **)&b, 4096, 65536), 0);
    for (int i = 0; i < 65536; i++) {
        a[i] = (uint8_t)(i * 7 + 3);
    }
    ck_assert_int_eq(bdrv_create_file(name, 0, BDRV_PREALLOC_OFF, 0, NULL), 0);
    bs = open_file(name, BDRV_O_RDWR | BDRV_O_NOCACHE);
    ck_assert_int_eq(bdrv_pwrite(bs, 65536, a, 65536), 0);
    ck_assert_int_eq(bdrv_pread(bs, 65536, b, 65536), 0);
    ck_assert_mem_eq(a, b, 65536);
    ck_assert_int_eq(bdrv_getlength(bs), 131072);
    bdrv_close(bs);
    got = slurp(name, &len);
    ck_assert_uint_eq(len, 131072);
    ck_assert_mem_eq(got + 65536, a, 65536);
    free(got);
    free(a);
    free(b);
}
END_TEST

/* Threads writing interleaved single bytes of the same blocks lose nothing. */
struct rmw_arg {
    BlockDriverState *bs;
    int id;
    int nthreads;
    int count;
};

static void *rmw_thread(void *opaque)
{
    struct rmw_arg *a = opaque;
    for (int i = 0; i < a->count; i++) {
        uint8_t v = (uint8_t)(a->id + 1);
        uint64_t off = (uint64_t)i * (uint64_t)a->nthreads + (uint64_t)a->id;
        if (bdrv_pwrite(a->bs, off, &v, 1) < 0) {
            return (void *)1;
        }
    }
    return NULL;
}

static void concurrent_rmw(int flags)
{
    enum { NT = 4, COUNT = 1024 };
    const char *name = path("rmw.img");
    struct rmw_arg args[NT];
    pthread_t th[NT];
    BlockDriverState *bs;
    uint8_t *got;
    size_t len;

    make_file(name, NT * COUNT, 0);
    bs = open_file(name, BDRV_O_RDWR | flags);
    for (int t = 0; t < NT; t++) {
        args[t] = (struct rmw_arg){ bs, t, NT, COUNT };
        ck_assert_int_eq(pthread_create(&th[t], NULL, rmw_thread, &args[t]), 0);
    }
    for (int t = 0; t < NT; t++) {
        void *r;
        pthread_join(th[t], &r);
        ck_assert_ptr_null(r);
    }
    bdrv_close(bs);
    got = slurp(name, &len);
    ck_assert_uint_eq(len, NT * COUNT);
    for (size_t i = 0; i < len; i++) {
        if (got[i] != i % NT + 1) {
            ck_abort_msg("byte %zu is %u, want %zu: an update was lost", i, got[i], i % NT + 1);
        }
    }
    free(got);
}

START_TEST(file_concurrent_rmw_nocache_loses_nothing)
{
    concurrent_rmw(BDRV_O_NOCACHE);
}
END_TEST

#ifdef CONFIG_LIBAIO
START_TEST(file_concurrent_rmw_aio_loses_nothing)
{
    concurrent_rmw(BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO);
}
END_TEST
#endif

/* ------------------------------------------------------------------ */
/* Native AIO                                                          */

#ifdef CONFIG_LIBAIO
START_TEST(file_native_aio_round_trip)
{
    random_vs_shadow(BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO, 150);
}
END_TEST
#endif

#ifdef CONFIG_LIBAIO
/*
 * Native AIO requests of one node share a context and whichever waiter
 * reaps hands completions to the others: with more threads than the node
 * keeps requests in flight, every read must still return its own block,
 * whole (a completion given to the wrong waiter returns a block early or
 * with another's bytes).
 */
enum { AIO_NT = 150, AIO_PER = 16, AIO_BLK = 4096 };

struct aio_reader {
    BlockDriverState *bs;
    int id;
};

static void fill_block(uint8_t *buf, uint64_t blk)
{
    memset(buf, (int)(blk * 7 + 1) & 0xff, AIO_BLK);
    memcpy(buf, &blk, sizeof(blk));
}

static void *aio_reader_thread(void *opaque)
{
    struct aio_reader *a = opaque;
    uint8_t *got = NULL, want[AIO_BLK];

    if (posix_memalign((void **)&got, AIO_BLK, AIO_BLK) != 0) {
        return (void *)1;
    }
    for (int i = 0; i < AIO_PER; i++) {
        uint64_t blk = (uint64_t)i * AIO_NT + (uint64_t)a->id;
        memset(got, 0, AIO_BLK);
        fill_block(want, blk);
        if (bdrv_pread(a->bs, blk * AIO_BLK, got, AIO_BLK) < 0 ||
            memcmp(got, want, AIO_BLK) != 0) {
            free(got);
            return (void *)1;
        }
    }
    free(got);
    return NULL;
}

START_TEST(file_native_aio_many_readers_get_their_own_data)
{
    const char *name = path("many.img");
    struct aio_reader args[AIO_NT];
    pthread_t th[AIO_NT];
    uint8_t buf[AIO_BLK];
    BlockDriverState *bs;
    int fd, failed = 0;

    fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    for (uint64_t blk = 0; blk < (uint64_t)AIO_NT * AIO_PER; blk++) {
        fill_block(buf, blk);
        ck_assert_int_eq(pwrite(fd, buf, AIO_BLK, (off_t)(blk * AIO_BLK)), AIO_BLK);
    }
    close(fd);

    bs = open_file(name, BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO);
    for (int t = 0; t < AIO_NT; t++) {
        args[t] = (struct aio_reader){ bs, t };
        ck_assert_int_eq(pthread_create(&th[t], NULL, aio_reader_thread, &args[t]), 0);
    }
    for (int t = 0; t < AIO_NT; t++) {
        void *r;
        pthread_join(th[t], &r);
        failed += r != NULL;
    }
    bdrv_close(bs);
    ck_assert_int_eq(failed, 0);
}
END_TEST
#endif

#ifndef CONFIG_LIBAIO
START_TEST(file_native_aio_without_libaio_refused)
{
    BlockDriverState *bs = NULL;
    BdrvError err = { 0 };

    make_file(path("na.img"), 4096, 0);
    ck_assert_int_eq(bdrv_file_open(&bs, path("na.img"), BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO,
                                    &err), -ENOTSUP);
    ck_assert_msg(strstr(err.msg, "libaio") != NULL, "message: %s", err.msg);
}
END_TEST
#endif

/* NATIVE_AIO without NOCACHE is ignored (as QEMU requires cache=none for it). */
START_TEST(file_native_aio_needs_nocache)
{
    BlockDriverState *bs;
    uint8_t b[3] = { 9, 8, 7 }, c[3];

    make_file(path("nn.img"), 4096, 0);
    bs = open_file(path("nn.img"), BDRV_O_RDWR | BDRV_O_NATIVE_AIO);
    ck_assert_int_eq(bdrv_pwrite(bs, 5, b, 3), 0);
    ck_assert_int_eq(bdrv_pread(bs, 5, c, 3), 0);
    ck_assert_mem_eq(b, c, 3);
    bdrv_close(bs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Allocation status, discard, zeroes                                  */

#define MiB (1024 * 1024ULL)
#define HOLE_FLAGS (BDRV_BLOCK_ZERO | BDRV_BLOCK_HOLE | BDRV_BLOCK_ALLOCATED | \
                    BDRV_BLOCK_OFFSET_VALID)
#define DATA_FLAGS (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID)

static void status_is(BlockDriverState *bs, uint64_t off, uint64_t bytes, int want,
                      uint64_t want_pnum)
{
    uint64_t pnum = 0, map = 0;
    BlockDriverState *file = NULL;
    int ret = bdrv_block_status(bs, off, bytes, &pnum, &map, &file);

    ck_assert_msg(ret == want, "status at %llu: 0x%x, want 0x%x", (unsigned long long)off, ret,
                  want);
    ck_assert_msg(pnum == want_pnum, "pnum at %llu: %llu, want %llu",
                  (unsigned long long)off, (unsigned long long)pnum,
                  (unsigned long long)want_pnum);
    ck_assert_uint_eq(map, off);
    ck_assert_ptr_eq(file, bs);
}

/* The driver's own answer, also where the generic layer would not ask (past the end). */
static void driver_status_is(BlockDriverState *bs, uint64_t off, uint64_t bytes, int want,
                             uint64_t want_pnum)
{
    uint64_t pnum = 0, map = 0;
    BlockDriverState *file = NULL;
    int ret = bdrv_file.bdrv_block_status(bs, off, bytes, &pnum, &map, &file);

    ck_assert_msg(ret == want, "driver status at %llu: 0x%x, want 0x%x",
                  (unsigned long long)off, ret, want);
    ck_assert_uint_eq(pnum, want_pnum);
    ck_assert_uint_eq(map, off);
    ck_assert_ptr_eq(file, bs);
}

START_TEST(file_block_status_sparse)
{
    const char *name = path("sparse.img");
    uint8_t data[65536];
    BlockDriverState *bs;
    int fd;

    /* 4 MiB, data only in [1 MiB, 1 MiB + 64 KiB). */
    fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 4 * MiB), 0);
    memset(data, 0x77, sizeof(data));
    ck_assert_int_eq(pwrite(fd, data, sizeof(data), MiB), (ssize_t)sizeof(data));
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);

    bs = open_file(name, 0);
    status_is(bs, 0, 4 * MiB, HOLE_FLAGS, MiB);
    status_is(bs, 4096, 4096, HOLE_FLAGS, 4096);
    status_is(bs, MiB, 4 * MiB, DATA_FLAGS, 65536);
    status_is(bs, MiB + 512, 100, DATA_FLAGS, 100);
    /* The trailing hole (SEEK_DATA answers ENXIO there) reaches the end. */
    status_is(bs, MiB + 65536, 4 * MiB, HOLE_FLAGS | BDRV_BLOCK_EOF, 3 * MiB - 65536);
    status_is(bs, 3 * MiB, MiB, HOLE_FLAGS | BDRV_BLOCK_EOF, MiB);
    status_is(bs, 2 * MiB, 4096, HOLE_FLAGS, 4096);
    /* Past the end (the generic layer stops earlier; ask the driver): a hole. */
    driver_status_is(bs, 4 * MiB, 12345, HOLE_FLAGS | BDRV_BLOCK_EOF, 12345);
    driver_status_is(bs, 9 * MiB, 512, HOLE_FLAGS | BDRV_BLOCK_EOF, 512);
    driver_status_is(bs, 3 * MiB, 2 * MiB, HOLE_FLAGS | BDRV_BLOCK_EOF, MiB);
    bdrv_close(bs);
}
END_TEST

START_TEST(file_block_status_data_to_eof)
{
    const char *name = path("full.img");
    BlockDriverState *bs;

    make_file(name, 10000, 0x42);
    bs = open_file(name, 0);
    status_is(bs, 0, MiB, DATA_FLAGS | BDRV_BLOCK_EOF, 10000);
    status_is(bs, 0, 4096, DATA_FLAGS, 4096);
    driver_status_is(bs, 10000, 100, HOLE_FLAGS | BDRV_BLOCK_EOF, 100);
    driver_status_is(bs, 4096, MiB, DATA_FLAGS | BDRV_BLOCK_EOF, 10000 - 4096);
    bdrv_close(bs);
}
END_TEST

START_TEST(file_discard_punches_hole)
{
    const char *name = path("disc.img");
    BlockDriverState *bs;
    uint8_t *got;
    int64_t before, after;
    size_t len;

    make_file(name, 2 * MiB, 0x5c);
    before = file_alloc(name);
    ck_assert_int_ge(before, (int64_t)(2 * MiB));
    bs = open_file(name, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_get_allocated_file_size(bs), before);
    ck_assert_int_eq(bdrv_pdiscard(bs, MiB / 4, MiB), 0);
    status_is(bs, MiB / 4, MiB, HOLE_FLAGS, MiB);
    status_is(bs, 0, MiB, DATA_FLAGS, MiB / 4);
    after = bdrv_get_allocated_file_size(bs);
    ck_assert_int_eq(after, file_alloc(name));
    ck_assert_int_le(after, before - (int64_t)MiB);
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)(2 * MiB));
    bdrv_close(bs);
    got = slurp(name, &len);
    ck_assert_uint_eq(len, 2 * MiB);
    expect_fill(got, 0, MiB / 4, 0x5c);
    expect_fill(got, MiB / 4, MiB / 4 + MiB, 0);
    expect_fill(got, MiB / 4 + MiB, len, 0x5c);
    free(got);
}
END_TEST

static void write_zeroes(int flags)
{
    const char *name = path("zero.img");
    BlockDriverState *bs;
    uint8_t *got;
    size_t len;

    make_file(name, 100000, 0xc3);
    bs = open_file(name, BDRV_O_RDWR | flags);
    /* Unaligned, inside the file. */
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 1001, 20000), 0);
    /* Straddling the end: the file grows as with a write. */
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 99000, 3000), 0);
    ck_assert_int_eq(bdrv_getlength(bs), 102000);
    bdrv_close(bs);
    got = slurp(name, &len);
    ck_assert_uint_eq(len, 102000);
    expect_fill(got, 0, 1001, 0xc3);
    expect_fill(got, 1001, 21001, 0);
    expect_fill(got, 21001, 99000, 0xc3);
    expect_fill(got, 99000, len, 0);
    free(got);
}

START_TEST(file_write_zeroes)
{
    write_zeroes(0);
}
END_TEST

START_TEST(file_write_zeroes_nocache)
{
    write_zeroes(BDRV_O_NOCACHE);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Size                                                                */

START_TEST(file_truncate_modes)
{
    const char *name = path("trunc.img");
    BlockDriverState *bs;
    BdrvError err = { 0 };
    uint8_t *got;
    size_t len;

    ck_assert_int_eq(bdrv_create_file(name, 0, BDRV_PREALLOC_OFF, 0, NULL), 0);
    bs = open_file(name, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_has_zero_init(bs), 1);

    /* Off: sparse growth. */
    ck_assert_int_eq(bdrv_truncate(bs, 8 * MiB, BDRV_PREALLOC_OFF, &err), 0);
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)(8 * MiB));
    ck_assert_int_lt(bdrv_get_allocated_file_size(bs), (int64_t)MiB);

    /* Falloc: the new area is reserved. */
    ck_assert_int_eq(bdrv_truncate(bs, 12 * MiB, BDRV_PREALLOC_FALLOC, &err), 0);
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)(12 * MiB));
    ck_assert_int_ge(bdrv_get_allocated_file_size(bs), (int64_t)(4 * MiB));
    ck_assert_int_lt(bdrv_get_allocated_file_size(bs), (int64_t)(5 * MiB));

    /* Full: zeros really written. */
    ck_assert_int_eq(bdrv_truncate(bs, 16 * MiB + 100, BDRV_PREALLOC_FULL, &err), 0);
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)(16 * MiB + 100));
    ck_assert_int_ge(bdrv_get_allocated_file_size(bs), (int64_t)(8 * MiB));
    status_is(bs, 13 * MiB, MiB, DATA_FLAGS, MiB);

    /* Shrinking: allowed without preallocation only. */
    ck_assert_int_eq(bdrv_truncate(bs, MiB, BDRV_PREALLOC_FALLOC, &err), -ENOTSUP);
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)(16 * MiB + 100));
    ck_assert_int_eq(bdrv_truncate(bs, 3 * MiB + 7, BDRV_PREALLOC_OFF, &err), 0);
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)(3 * MiB + 7));

    /* Metadata preallocation means nothing to a file. */
    err.code = 0;
    ck_assert_int_eq(bdrv_truncate(bs, 4 * MiB, BDRV_PREALLOC_METADATA, &err), -ENOTSUP);
    ck_assert_int_eq(err.code, -ENOTSUP);
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)(3 * MiB + 7));
    bdrv_close(bs);

    got = slurp(name, &len);
    ck_assert_uint_eq(len, 3 * MiB + 7);
    expect_fill(got, 0, len, 0);
    free(got);
}
END_TEST

START_TEST(file_truncate_full_nocache_unaligned)
{
    const char *name = path("tfull.img");
    BlockDriverState *bs;
    BdrvError err = { 0 };
    uint8_t *got;
    size_t len;

    make_file(name, 1001, 0x99);
    bs = open_file(name, BDRV_O_RDWR | BDRV_O_NOCACHE);
    ck_assert_int_eq(bdrv_truncate(bs, 3 * MiB + 5, BDRV_PREALLOC_FULL, &err), 0);
    ck_assert_int_eq(bdrv_getlength(bs), (int64_t)(3 * MiB + 5));
    bdrv_close(bs);
    got = slurp(name, &len);
    ck_assert_uint_eq(len, 3 * MiB + 5);
    expect_fill(got, 0, 1001, 0x99);
    expect_fill(got, 1001, len, 0);
    ck_assert_int_ge(file_alloc(name), (int64_t)(3 * MiB));
    free(got);
}
END_TEST

START_TEST(file_create_modes)
{
    const char *name = path("c.img");
    BdrvError err = { 0 };

    /* An existing file is emptied and resized. */
    make_file(name, MiB, 0xff);
    ck_assert_int_eq(bdrv_create_file(name, 4096, BDRV_PREALLOC_OFF, 0, &err), 0);
    ck_assert_int_eq(file_size(name), 4096);
    {
        size_t len;
        uint8_t *got = slurp(name, &len);
        expect_fill(got, 0, len, 0);
        free(got);
    }
    ck_assert_int_eq(bdrv_create_file(name, 2 * MiB, BDRV_PREALLOC_OFF, 0, &err), 0);
    ck_assert_int_lt(file_alloc(name), (int64_t)MiB);
    ck_assert_int_eq(bdrv_create_file(name, 2 * MiB, BDRV_PREALLOC_FALLOC, 0, &err), 0);
    ck_assert_int_eq(file_size(name), (off_t)(2 * MiB));
    ck_assert_int_ge(file_alloc(name), (int64_t)(2 * MiB));
    ck_assert_int_eq(bdrv_create_file(name, 3 * MiB, BDRV_PREALLOC_FULL, 0, &err), 0);
    ck_assert_int_eq(file_size(name), (off_t)(3 * MiB));
    ck_assert_int_ge(file_alloc(name), (int64_t)(3 * MiB));
    ck_assert_int_eq(bdrv_create_file(name, MiB, BDRV_PREALLOC_METADATA, 0, &err), -ENOTSUP);
    ck_assert_int_eq(file_size(name), (off_t)(3 * MiB));
    /* Creation releases its locks. */
    ck_assert_uint_eq(lock_mask(name), 0);
}
END_TEST

START_TEST(file_flush)
{
    BlockDriverState *bs;
    uint8_t b = 1;

    make_file(path("f.img"), 4096, 0);
    bs = open_file(path("f.img"), BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_pwrite(bs, 0, &b, 1), 0);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    bdrv_close(bs);
    bs = open_file(path("f.img"), BDRV_O_RDWR | BDRV_O_NO_FLUSH);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    bdrv_close(bs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Locks                                                               */

/* The bytes each role holds are the ones QEMU 7.2 holds (see block/perm.c). */
START_TEST(lock_bytes_match_qemu)
{
    const char *name = path("l.img");
    BlockDriverState *bs;
    BdrvError err = { 0 };

    make_file(name, 4096, 0);
    ck_assert_int_eq(hold(name, &bdrv_raw, BDRV_O_RDWR, &bs, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100 | B101);
    bdrv_close(bs);
    ck_assert_uint_eq(lock_mask(name), 0);

    ck_assert_int_eq(hold(name, &bdrv_raw, 0, &bs, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100);
    bdrv_close(bs);

    ck_assert_int_eq(hold(name, &fake_meta, BDRV_O_RDWR, &bs, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100 | B101 | B103 | B201 | B203);
    bdrv_close(bs);

    ck_assert_int_eq(hold(name, &fake_meta, 0, &bs, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100 | B201 | B203);
    bdrv_close(bs);
    ck_assert_uint_eq(lock_mask(name), 0);

    /* No-lock takes nothing at all. */
    ck_assert_int_eq(hold(name, &fake_meta, BDRV_O_RDWR | BDRV_O_NO_LOCK, &bs, &err), 0);
    ck_assert_uint_eq(lock_mask(name), 0);
    bdrv_close(bs);
}
END_TEST

START_TEST(lock_perms_table)
{
    uint64_t perm, shared;

    bdrv_file_perms(&fake_plain, 0, &perm, &shared);
    ck_assert_uint_eq(perm, BLK_PERM_CONSISTENT_READ);
    ck_assert_uint_eq(shared, BLK_PERM_ALL);
    bdrv_file_perms(&fake_plain, BDRV_O_RDWR, &perm, &shared);
    ck_assert_uint_eq(perm, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE);
    ck_assert_uint_eq(shared, BLK_PERM_ALL);
    bdrv_file_perms(&fake_meta, 0, &perm, &shared);
    ck_assert_uint_eq(perm, BLK_PERM_CONSISTENT_READ);
    ck_assert_uint_eq(shared, BLK_PERM_ALL & ~(uint64_t)(BLK_PERM_WRITE | BLK_PERM_RESIZE));
    bdrv_file_perms(&fake_meta, BDRV_O_RDWR, &perm, &shared);
    ck_assert_uint_eq(perm, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE | BLK_PERM_RESIZE);
    ck_assert_uint_eq(shared, BLK_PERM_ALL & ~(uint64_t)(BLK_PERM_WRITE | BLK_PERM_RESIZE));
    bdrv_file_perms(&fake_meta, BDRV_O_FORCE_SHARE, &perm, &shared);
    ck_assert_uint_eq(perm, BLK_PERM_CONSISTENT_READ);
    ck_assert_uint_eq(shared, BLK_PERM_ALL);
    bdrv_file_perms(NULL, BDRV_O_RDWR, &perm, &shared);
    ck_assert_uint_eq(perm, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE);
    ck_assert_uint_eq(shared, BLK_PERM_ALL);
}
END_TEST

/*
 * Two opens in one process conflict exactly as two processes would: OFD
 * locks belong to the open file description, not the process.
 */
START_TEST(lock_conflicts_in_one_process)
{
    const char *name = path("c.img");
    BlockDriverState *a, *b;
    BdrvError err = { 0 };

    make_file(name, 4096, 0);

    /* Raw shares write: two raw writers coexist, as two qemu-io do. */
    ck_assert_int_eq(hold(name, &bdrv_raw, BDRV_O_RDWR, &a, &err), 0);
    ck_assert_int_eq(hold(name, &bdrv_raw, BDRV_O_RDWR, &b, &err), 0);
    bdrv_close(b);
    /* ...but a format with metadata will not share the file with a writer. */
    ck_assert_int_eq(hold(name, &fake_meta, 0, &b, &err), -ELOCKED);
    ck_assert_int_eq(err.code, -ELOCKED);
    ck_assert_msg(strstr(err.msg, "shared \"write\" lock") && strstr(err.msg, name),
                  "message: %s", err.msg);
    bdrv_close(a);

    /* A metadata writer refuses other writers, allows plain readers. */
    ck_assert_int_eq(hold(name, &fake_meta, BDRV_O_RDWR, &a, &err), 0);
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(hold(name, &bdrv_raw, BDRV_O_RDWR, &b, &err), -ELOCKED);
    ck_assert_msg(strstr(err.msg, "Failed to get \"write\" lock") && strstr(err.msg, name),
                  "message: %s", err.msg);
    ck_assert_int_eq(hold(name, &fake_meta, 0, &b, &err), -ELOCKED);
    ck_assert_int_eq(hold(name, &bdrv_raw, 0, &b, &err), 0);
    bdrv_close(b);
    /* Force-share opens anything read-only and forbids nothing. */
    ck_assert_int_eq(hold(name, &fake_meta, BDRV_O_FORCE_SHARE, &b, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100 | B101 | B103 | B201 | B203);
    bdrv_close(b);
    /* A failed attempt left nothing behind: the holder's bytes only. */
    ck_assert_uint_eq(lock_mask(name), B100 | B101 | B103 | B201 | B203);
    bdrv_close(a);
    ck_assert_uint_eq(lock_mask(name), 0);
}
END_TEST

/* Calling set_perm again moves the locks; a refused change keeps the old ones. */
START_TEST(lock_set_perm_updates)
{
    const char *name = path("u.img");
    BlockDriverState *a, *b;
    BdrvError err = { 0 };
    uint64_t perm, shared;

    make_file(name, 4096, 0);
    ck_assert_int_eq(hold(name, &fake_meta, BDRV_O_RDWR, &a, &err), 0);
    ck_assert_int_eq(hold(name, &bdrv_raw, BDRV_O_RDWR, &b, &err), -ELOCKED);

    /* Down to a raw reader: the writer may come in. */
    bdrv_file_perms(&bdrv_raw, 0, &perm, &shared);
    ck_assert_int_eq(bdrv_file.bdrv_set_perm(a, perm, shared, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100);
    ck_assert_int_eq(hold(name, &bdrv_raw, BDRV_O_RDWR, &b, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100 | B101);

    /* Back up to a metadata writer: refused, and a still holds B100 only. */
    bdrv_file_perms(&fake_meta, BDRV_O_RDWR, &perm, &shared);
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(bdrv_file.bdrv_set_perm(a, perm, shared, &err), -ELOCKED);
    ck_assert_int_eq(err.code, -ELOCKED);
    bdrv_close(b);
    ck_assert_uint_eq(lock_mask(name), B100);
    ck_assert_int_eq(bdrv_file.bdrv_set_perm(a, perm, shared, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100 | B101 | B103 | B201 | B203);
    bdrv_close(a);
}
END_TEST

/* Creating over an image in use is refused and leaves the image intact. */
START_TEST(lock_create_refused_on_held_image)
{
    const char *name = path("h.img");
    BlockDriverState *a;
    BdrvError err = { 0 };
    size_t len;
    uint8_t *got;

    make_file(name, 65536, 0x21);
    ck_assert_int_eq(hold(name, &fake_meta, BDRV_O_RDWR, &a, &err), 0);
    ck_assert_int_eq(bdrv_create_file(name, 4096, BDRV_PREALLOC_OFF, 0, &err), -ELOCKED);
    ck_assert_msg(strstr(err.msg, "Failed to get \"write\" lock") && strstr(err.msg, name),
                  "message: %s", err.msg);
    ck_assert_int_eq(file_size(name), 65536);
    got = slurp(name, &len);
    expect_fill(got, 0, len, 0x21);
    free(got);
    bdrv_close(a);

    /* A raw writer shares write and resize: qemu-img create succeeds there too. */
    ck_assert_int_eq(hold(name, &bdrv_raw, BDRV_O_RDWR, &a, &err), 0);
    ck_assert_int_eq(bdrv_create_file(name, 4096, BDRV_PREALLOC_OFF, 0, &err), 0);
    ck_assert_int_eq(file_size(name), 4096);
    bdrv_close(a);
}
END_TEST

/* The generic open takes the raw format's locks on the file. */
START_TEST(lock_through_bdrv_open)
{
    const char *name = path("o.img");
    BlockDriverState *a, *b;
    BdrvError err = { 0 };

    make_file(name, 65536, 0);
    ck_assert_int_eq(bdrv_open(&a, name, "raw", BDRV_O_RDWR, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100 | B101);
    ck_assert_int_eq(bdrv_open(&b, name, "raw", 0, &err), 0);
    ck_assert_uint_eq(lock_mask(name), B100 | B101);
    bdrv_close(b);
    bdrv_close(a);
    ck_assert_uint_eq(lock_mask(name), 0);
}
END_TEST

static Suite *file_suite(void)
{
    Suite *s = suite_create("file");
    TCase *tc;

    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, file_open_missing_fails);
    tcase_add_test(tc, file_open_prefix_accepted);
    tcase_add_test(tc, file_rw_odd_offsets_match_oracle);
    tcase_add_test(tc, file_read_past_eof_zero_fills);
    tcase_add_test(tc, file_read_past_eof_zero_fills_nocache);
    tcase_add_test(tc, file_write_past_eof_extends);
    tcase_add_test(tc, file_write_past_eof_extends_nocache);
    tcase_add_test(tc, file_unaligned_random_buffered);
    tcase_add_test(tc, file_unaligned_random_nocache);
    tcase_add_test(tc, file_aligned_nocache_direct_path);
    tcase_add_test(tc, file_concurrent_rmw_nocache_loses_nothing);
    tcase_add_test(tc, file_flush);
    suite_add_tcase(s, tc);

    tc = tcase_create("aio");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
#ifdef CONFIG_LIBAIO
    tcase_add_test(tc, file_native_aio_round_trip);
    tcase_add_test(tc, file_concurrent_rmw_aio_loses_nothing);
    tcase_add_test(tc, file_native_aio_many_readers_get_their_own_data);
#else
    tcase_add_test(tc, file_native_aio_without_libaio_refused);
#endif
    tcase_add_test(tc, file_native_aio_needs_nocache);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, file_block_status_sparse);
    tcase_add_test(tc, file_block_status_data_to_eof);
    tcase_add_test(tc, file_discard_punches_hole);
    tcase_add_test(tc, file_write_zeroes);
    tcase_add_test(tc, file_write_zeroes_nocache);
    tcase_add_test(tc, file_truncate_modes);
    tcase_add_test(tc, file_truncate_full_nocache_unaligned);
    tcase_add_test(tc, file_create_modes);
    suite_add_tcase(s, tc);

    tc = tcase_create("lock");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lock_bytes_match_qemu);
    tcase_add_test(tc, lock_perms_table);
    tcase_add_test(tc, lock_conflicts_in_one_process);
    tcase_add_test(tc, lock_set_perm_updates);
    tcase_add_test(tc, lock_create_refused_on_held_image);
    tcase_add_test(tc, lock_through_bdrv_open);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    base_create();
    sr = srunner_create(file_suite());

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
