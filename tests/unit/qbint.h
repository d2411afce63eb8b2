/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qbint.h: scaffolding shared by the white-box driver tests
 * tests/unit/check_int_{qcow,qed,cow,vdi,vpc,vmdk}.c: a scratch folder per
 * test, plain POSIX file access (the oracle the drivers are checked against)
 * and seeded data patterns. It uses the internal block layer, so unlike
 * qbtest.h it is for check_int_* files only.
 *
 * Before including it, a test defines QBINT_NAME (the prefix of its scratch
 * folder) and QBINT_BIG_ENDIAN or QBINT_LITTLE_ENDIAN (the byte order of
 * its format's fields, for rd32() and friends). It may define QBINT_P_BUFS
 * (how many paths P() keeps alive at a time, 4 by default),
 * QBINT_OWN_FILE_WRITE (it writes files its own way), and either QBINT_FMT
 * (its format's name: create_ret(), create_img(), open_img() and, unless
 * QBINT_OWN_TRY_OPEN, try_open() for that format) or QBINT_FMT_CREATE (the
 * format try_open() opens; with it come create_img(fmt, ...),
 * open_img(file, fmt, flags) and check_pattern()). The helpers are static
 * inline so that a test which does not call some of them stays warning-free.
 */

#ifndef QBINT_H
#define QBINT_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "block/block_int.h"

#ifndef QBINT_NAME
#error "define QBINT_NAME before including qbint.h"
#endif

/* The byte order of the format's on-disk fields, for rd32() and friends. */
#if defined(QBINT_BIG_ENDIAN)
#define QBINT_LD32 be32_load
#define QBINT_LD64 be64_load
#define QBINT_ST32 be32_store
#define QBINT_ST64 be64_store
#elif defined(QBINT_LITTLE_ENDIAN)
#define QBINT_LD32 le32_load
#define QBINT_LD64 le64_load
#define QBINT_ST32 le32_store
#define QBINT_ST64 le64_store
#else
#error "define QBINT_BIG_ENDIAN or QBINT_LITTLE_ENDIAN before including qbint.h"
#endif

#ifndef QBINT_P_BUFS
#define QBINT_P_BUFS 4
#endif

/* The scratch folder of the running test (empty between tests). */
static char dir[256];

static int rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    const char *base = getenv("TMPDIR");

    if (!base || !*base) {
        base = "/tmp";
    }
    snprintf(dir, sizeof(dir), "%s/" QBINT_NAME "-XXXXXX", base);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

static void teardown(void)
{
    if (dir[0]) {
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
    }
}

/* A path in the scratch folder (QBINT_P_BUFS rotating buffers). */
static const char *P(const char *name)
{
    static char bufs[QBINT_P_BUFS][512];
    static int i;
    char *b = bufs[i++ % QBINT_P_BUFS];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

#ifndef QBINT_OWN_FILE_WRITE
static inline void file_write(const char *file, uint64_t off, const void *buf, size_t len)
{
    int fd = open(file, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}
#else
/* The test defines it; wr32() and wr64() below use it. */
static void file_write(const char *file, uint64_t off, const void *buf, size_t len);
#endif

static inline void file_read(const char *file, uint64_t off, void *buf, size_t len)
{
    int fd = open(file, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static inline uint64_t file_size(const char *file)
{
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    return (uint64_t)st.st_size;
}

static inline void copy_file(const char *from, const char *to)
{
    uint64_t n = file_size(from);
    uint8_t *b = malloc(n ? n : 1);
    int fd;

    ck_assert_ptr_nonnull(b);
    file_read(from, 0, b, n);
    fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
    close(fd);
    free(b);
}

/* A scratch file @name of @len bytes of @byte, opened read-write through the file protocol. */
static inline BlockDriverState *open_file_node(const char *name, size_t len, uint8_t byte)
{
    uint8_t *buf = malloc(len ? len : 1);
    BdrvError err = { 0 };
    BlockDriverState *bs = NULL;
    int ret;

    ck_assert_ptr_nonnull(buf);
    memset(buf, byte, len);
    ret = open(P(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(ret, 0);
    close(ret);
    file_write(P(name), 0, buf, len);
    free(buf);
    ret = bdrv_file_open(&bs, P(name), BDRV_O_RDWR, &err);
    ck_assert_msg(ret == 0, "open %s: %d %s", name, ret, err.msg);
    return bs;
}

static inline void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t)(seed >> 16);
    }
}

static inline void write_pattern(BlockDriverState *bs, uint64_t off, size_t len, uint32_t seed)
{
    uint8_t *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    fill(b, len, seed);
    ck_assert_int_eq(bdrv_pwrite(bs, off, b, len), 0);
    free(b);
}

static inline void check_zero(BlockDriverState *bs, uint64_t off, size_t len)
{
    uint8_t *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    memset(b, 0xEE, len);
    ck_assert_int_eq(bdrv_pread(bs, off, b, len), 0);
    ck_assert_msg(buffer_is_zero(b, len), "not zero at %" PRIu64, off);
    free(b);
}

/*
 * @count seeded writes of 1 to @max_sectors sectors at sector offsets into
 * @bs (of @size bytes), also applied to @mirror; write number i is zeroes
 * when i % @zero_mod == @zero_rem, the pattern fill() makes otherwise. @buf
 * holds @max_sectors sectors.
 */
static inline void random_writes(BlockDriverState *bs, uint8_t *mirror, uint8_t *buf,
                                 uint64_t size, uint32_t seed, int count,
                                 uint64_t max_sectors, int zero_mod, int zero_rem)
{
    for (int i = 0; i < count; i++) {
        uint64_t off, len;
        seed = seed * 1103515245u + 12345u;
        off = (seed >> 4) % (size / 512) * 512;
        seed = seed * 1103515245u + 12345u;
        len = (1 + (seed >> 8) % max_sectors) * 512;
        if (off + len > size) {
            len = size - off;
        }
        if (i % zero_mod == zero_rem) {
            ck_assert_int_eq(bdrv_pwrite_zeroes(bs, off, len), 0);
            memset(mirror + off, 0, len);
        } else {
            fill(buf, len, seed);
            ck_assert_int_eq(bdrv_pwrite(bs, off, buf, len), 0);
            memcpy(mirror + off, buf, len);
        }
    }
}

static inline uint32_t rd32(const char *file, uint64_t off)
{
    uint8_t b[4];
    file_read(file, off, b, 4);
    return QBINT_LD32(b);
}

static inline uint64_t rd64(const char *file, uint64_t off)
{
    uint8_t b[8];
    file_read(file, off, b, 8);
    return QBINT_LD64(b);
}

static inline void wr32(const char *file, uint64_t off, uint32_t v)
{
    uint8_t b[4];
    QBINT_ST32(b, v);
    file_write(file, off, b, 4);
}

static inline void wr64(const char *file, uint64_t off, uint64_t v)
{
    uint8_t b[8];
    QBINT_ST64(b, v);
    file_write(file, off, b, 8);
}

#ifdef QBINT_FMT
static inline int create_ret(const char *file, const char *opts, char *msg, size_t msglen)
{
    BdrvError err = { 0 };
    BdrvOpts o;
    int ret;

    bdrv_opts_init(&o);
    ck_assert_int_eq(bdrv_opts_parse(&o, opts, &err), 0);
    ret = bdrv_create(QBINT_FMT, file, &o, 0, &err);
    bdrv_opts_free(&o);
    if (msg) {
        snprintf(msg, msglen, "%s", err.msg);
    }
    return ret;
}

static inline void create_img(const char *file, const char *opts)
{
    char msg[1024];
    int ret = create_ret(file, opts, msg, sizeof(msg));
    ck_assert_msg(ret == 0, "create %s (%s): %d %s", file, opts, ret, msg);
}

static inline BlockDriverState *open_img(const char *file, int flags)
{
    BdrvError err = { 0 };
    BlockDriverState *bs = NULL;
    int ret = bdrv_open(&bs, file, QBINT_FMT, flags, &err);

    ck_assert_msg(ret == 0, "open %s: %d %s", file, ret, err.msg);
    return bs;
}
#ifndef QBINT_OWN_TRY_OPEN
static inline int try_open(const char *file, char *msg, size_t msglen)
{
    BdrvError err = { 0 };
    BlockDriverState *bs = NULL;
    int ret = bdrv_open(&bs, file, QBINT_FMT, BDRV_O_RDWR, &err);

    snprintf(msg, msglen, "%s", err.msg);
    if (ret == 0) {
        bdrv_close(bs);
    }
    return ret;
}
#endif
#endif

#if defined(QBINT_FMT_CREATE) && defined(QBINT_FMT)
#error "QBINT_FMT_CREATE and QBINT_FMT both define create_img()"
#endif
#ifdef QBINT_FMT_CREATE
static inline void create_img(const char *fmt, const char *file, const char *opts)
{
    BdrvError err = { 0 };
    BdrvOpts o;
    int ret;

    bdrv_opts_init(&o);
    ck_assert_int_eq(bdrv_opts_parse(&o, opts, &err), 0);
    ret = bdrv_create(fmt, file, &o, 0, &err);
    bdrv_opts_free(&o);
    ck_assert_msg(ret == 0, "create %s %s (%s): %d %s", fmt, file, opts, ret, err.msg);
}

static inline BlockDriverState *open_img(const char *file, const char *fmt, int flags)
{
    BdrvError err = { 0 };
    BlockDriverState *bs = NULL;
    int ret = bdrv_open(&bs, file, fmt, flags, &err);

    ck_assert_msg(ret == 0, "open %s: %d %s", file, ret, err.msg);
    return bs;
}

static inline void check_pattern(BlockDriverState *bs, uint64_t off, size_t len, uint32_t seed)
{
    uint8_t *a = malloc(len), *b = malloc(len);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    fill(a, len, seed);
    ck_assert_int_eq(bdrv_pread(bs, off, b, len), 0);
    ck_assert_msg(memcmp(a, b, len) == 0, "pattern mismatch at %" PRIu64, off);
    free(a);
    free(b);
}

/* Open and close again; returns the open's result, its message in @msg. */
static inline int try_open(const char *file, int flags, char *msg, size_t msglen)
{
    BdrvError err = { 0 };
    BlockDriverState *bs = NULL;
    int ret = bdrv_open(&bs, file, QBINT_FMT_CREATE, flags, &err);

    if (msg) {
        snprintf(msg, msglen, "%s", err.msg);
    }
    if (ret == 0) {
        bdrv_close(bs);
    }
    return ret;
}
#endif

/* Run every test of @s (freed here); the exit status for main(). */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* QBINT_H */
