/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qbtest.h: small helpers shared by the public-API Check tests (scratch
 * folder, quick mode, deterministic PRNG, plain-POSIX file oracles).
 *
 * Everything here is static so that each test binary stays one translation
 * unit; the helpers use only the public header and POSIX, never the block
 * layer, so that they can serve as an independent oracle.
 */
#ifndef QBTEST_H
#define QBTEST_H

/* nftw and O_DIRECT need the GNU feature set; include this header first. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libqblock/libqblock.h"

/* Each binary uses a different subset of these helpers. */
#define QBT_UNUSED __attribute__((unused))

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define QBT_HAVE_VALGRIND_H 1
#endif
#endif

/* The scratch folder of this test binary; created in main, removed at exit. */
static char qbt_dir[PATH_MAX];

static QBT_UNUSED int qbt_rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/*
 * The folder is removed from the parent process (atexit), so it goes away
 * even when a forked test case crashes in the middle.
 */
static pid_t qbt_dir_owner;

static QBT_UNUSED void qbt_dir_remove(void)
{
    if (qbt_dir[0] && getpid() == qbt_dir_owner) {
        nftw(qbt_dir, qbt_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        qbt_dir[0] = '\0';
    }
}

static QBT_UNUSED void qbt_dir_create(const char *prog)
{
    const char *base = getenv("TEST_DIR");   /* the runner's scratch folder for this binary */
    const char *slash = strrchr(prog, '/');

    if (!base || !*base) {
        base = getenv("TMPDIR");
    }
    if (!base || !*base) {
        base = "/tmp";
    }
    snprintf(qbt_dir, sizeof(qbt_dir), "%s/qbtest-%s-XXXXXX", base, slash ? slash + 1 : prog);
    if (!mkdtemp(qbt_dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", qbt_dir, strerror(errno));
        exit(2);
    }
    qbt_dir_owner = getpid();
    atexit(qbt_dir_remove);
}

/* A path inside the scratch folder; each test passes its own unique name. */
static QBT_UNUSED void qbt_path(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", qbt_dir, name);

    ck_assert_msg(n > 0 && (size_t)n < size, "path too long");
}

/*
 * Quick mode scales loops down: asked for with QB_TEST_QUICK=1, and taken
 * automatically under valgrind, which runs the library 20-50 times slower.
 */
static QBT_UNUSED int qbt_quick(void)
{
    const char *q = getenv("QB_TEST_QUICK");
    const char *pre = getenv("LD_PRELOAD");

    if (q && *q && strcmp(q, "0") != 0) {
        return 1;
    }
#ifdef QBT_HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND) {
        return 1;
    }
#endif
    /* Valgrind preloads its own helpers; this catches it without the header. */
    return pre && strstr(pre, "vgpreload") != NULL;
}

/* xorshift64*: small, deterministic and identical on every platform. */
typedef struct QbtRng {
    uint64_t s;
} QbtRng;

static QBT_UNUSED void qbt_rng_seed(QbtRng *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

static QBT_UNUSED uint64_t qbt_rng_next(QbtRng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dULL;
}

/* A value in [0, n); n > 0. The slight modulo bias does not matter here. */
static QBT_UNUSED uint64_t qbt_rng_below(QbtRng *r, uint64_t n)
{
    return qbt_rng_next(r) % n;
}

static QBT_UNUSED void qbt_rng_fill(QbtRng *r, uint8_t *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint64_t v = qbt_rng_next(r);
        for (int k = 0; k < 8 && i < len; k++, i++) {
            buf[i] = (uint8_t)(v >> (8 * k));
        }
    }
}

/*
 * The seed of the randomised tests: QB_TEST_SEED when set, else a fixed
 * default, so runs are repeatable. It is printed so a failure can be replayed.
 */
static QBT_UNUSED uint64_t qbt_seed(const char *what)
{
    const char *s = getenv("QB_TEST_SEED");
    uint64_t seed = 0x5eed0001cafef00dULL;

    if (s && *s) {
        seed = strtoull(s, NULL, 0);
    }
    fprintf(stderr, "%s: seed 0x%016" PRIx64 " (set QB_TEST_SEED to replay)\n", what, seed);
    return seed;
}

/* Makes a plain sparse file of @size bytes (a raw image made without libqblock). */
static QBT_UNUSED void qbt_make_sparse_file(const char *path, off_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_msg(ftruncate(fd, size) == 0, "ftruncate %s: %s", path, strerror(errno));
    ck_assert_int_eq(close(fd), 0);
}

/* Reads @len bytes at @off of a host file with plain pread, the raw-image oracle. */
static QBT_UNUSED void qbt_pread_file(const char *path, void *buf, size_t len, off_t off)
{
    int fd = open(path, O_RDONLY);
    size_t done = 0;

    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
        ck_assert_msg(n > 0, "pread %s at %jd: %s", path, (intmax_t)(off + (off_t)done),
                      n < 0 ? strerror(errno) : "end of file");
        done += (size_t)n;
    }
    ck_assert_int_eq(close(fd), 0);
}

static QBT_UNUSED void qbt_pwrite_file(const char *path, const void *buf, size_t len, off_t off)
{
    int fd = open(path, O_WRONLY);
    size_t done = 0;

    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    while (done < len) {
        ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
        ck_assert_msg(n > 0, "pwrite %s: %s", path, strerror(errno));
        done += (size_t)n;
    }
    ck_assert_int_eq(close(fd), 0);
}

static QBT_UNUSED off_t qbt_file_size(const char *path)
{
    struct stat st;

    ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    return st.st_size;
}

/*
 * Byte checks of whole buffers. Check records the location of every
 * ck_assert it passes (a write to its message channel), so a per-byte
 * assertion over megabytes costs millions of system calls: these loop in
 * plain C and fail once, naming the first differing byte.
 */
static QBT_UNUSED void qbt_assert_bytes(const uint8_t *buf, uint8_t value, size_t len,
                                        const char *what)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != value) {
            ck_abort_msg("%s: byte %zu is 0x%02x, not 0x%02x", what, i, buf[i], value);
        }
    }
}

static QBT_UNUSED void qbt_assert_same(const uint8_t *got, const uint8_t *want, size_t len,
                                       const char *what)
{
    if (memcmp(got, want, len) != 0) {
        size_t i = 0;

        while (got[i] == want[i]) {
            i++;
        }
        ck_abort_msg("%s: byte %zu is 0x%02x, not 0x%02x", what, i, got[i], want[i]);
    }
}

/* The broker's last message, for failure reports. */
static QBT_UNUSED const char *qbt_msg(QBroker *b)
{
    static __thread char buf[1024];

    buf[0] = '\0';
    qb_error_get_human_str(b, buf, sizeof(buf));
    return buf;
}

/*
 * The call must return @code, and with a broker its message must contain
 * @needle ("" skips that check).
 */
#define EXPECT_FAIL(b, call, code, needle) \
    do { \
        int r_ = (call); \
        ck_assert_msg(r_ == (code), "%s: %d, expected %d (%s)", #call, r_, (code), qbt_msg(b)); \
        if ((b) && (needle)[0]) { \
            ck_assert_msg(strstr(qbt_msg(b), (needle)) != NULL, "%s: message '%s' lacks '%s'", \
                          #call, qbt_msg(b), (needle)); \
        } \
    } while (0)

/* The qemu-img binary to compare against: $QEMU_IMG, else qemu-img on $PATH, else NULL. */
static QBT_UNUSED const char *qbt_qemu_img(void)
{
    static char found[PATH_MAX];
    const char *env = getenv("QEMU_IMG");
    const char *path = getenv("PATH");

    if (env) {
        return *env ? env : NULL;
    }
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);

        snprintf(found, sizeof(found), "%.*s/qemu-img", (int)n, path);
        if (n > 0 && access(found, X_OK) == 0) {
            return found;
        }
        path = colon ? colon + 1 : NULL;
    }
    return NULL;
}

/* A stack QBlockProtInfo naming a file. */
static QBT_UNUSED QBlockProtInfo qbt_loc(const char *path)
{
    QBlockProtInfo loc;

    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_FILE;
    loc.prot_op.o_file.filename = path;
    return loc;
}

/*
 * Creates an image of format @type and @size bytes (every other option at
 * its default) through the library; the test fails if that fails.
 */
static QBT_UNUSED void qbt_create_fmt(QBroker *b, const char *path, enum QBlockFmtType type,
                                      uint64_t size)
{
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    QBlockFmtInfo fmt;
    int ret;

    memset(&fmt, 0, sizeof(fmt));
    fmt.fmt_type = type;
    /* virt_size comes first in every format's options, so one member serves them all. */
    fmt.fmt_op.o_raw.virt_size = size;
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ret = qb_create(b, qbs, &loc, &fmt, 0);
    ck_assert_msg(ret == 0, "qb_create %s (format %d): %d %s", path, (int)type, ret, qbt_msg(b));
    qb_state_delete(b, &qbs);
}

/* Creates a raw image through the library; the test fails if that fails. */
static QBT_UNUSED void qbt_create_raw(QBroker *b, const char *path, uint64_t size)
{
    qbt_create_fmt(b, path, QB_FMT_RAW, size);
}

/*
 * Lets probed opens of @qbs settle on raw, as qemu-img does: the library's
 * safe default refuses that guess (QB_ERR_LIMIT), which check_api_policy
 * tests; the other tests probe raw images on purpose.
 */
static QBT_UNUSED void qbt_allow_raw_guess(QBroker *b, QBlockState *qbs)
{
    QBlockOpenPolicy p;

    memset(&p, 0, sizeof(p));
    p.flags = QB_POLICY_ALLOW_RAW_PROBE;
    ck_assert_int_eq(qb_state_set_policy(b, qbs, &p), 0);
}

/* Opens @path as format @fmt (QB_FMT_NONE: probed, raw allowed) into a new state. */
static QBT_UNUSED QBlockState *qbt_open_fmt(QBroker *b, enum QBlockFmtType fmt, const char *path,
                                            int flag)
{
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    QBlockFmtInfo fi;
    int ret;

    memset(&fi, 0, sizeof(fi));
    fi.fmt_type = fmt;
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    if (fmt == QB_FMT_NONE) {
        qbt_allow_raw_guess(b, qbs);
    }
    ret = qb_open(b, qbs, &loc, fmt == QB_FMT_NONE ? NULL : &fi, flag);
    ck_assert_msg(ret == 0, "qb_open %s flag 0x%x: %d %s", path, flag, ret, qbt_msg(b));
    return qbs;
}

/* Opens @path as raw (explicitly, or probed when @probe) into a new state. */
static QBT_UNUSED QBlockState *qbt_open(QBroker *b, const char *path, int probe, int flag)
{
    return qbt_open_fmt(b, probe ? QB_FMT_NONE : QB_FMT_RAW, path, flag);
}

/* Closes and frees a state opened by qbt_open, checking the close. */
static QBT_UNUSED void qbt_close(QBroker *b, QBlockState **qbs)
{
    int ret = qb_close(b, *qbs);

    ck_assert_msg(ret == 0, "qb_close: %d %s", ret, qbt_msg(b));
    qb_state_delete(b, qbs);
    ck_assert_ptr_null(*qbs);
}

/* Runs @s (optionally only the case named by CK_RUN_CASE, as Check does) and reports. */
static QBT_UNUSED int qbt_run(Suite *s, const char *argv0)
{
    SRunner *sr;
    int failed;

    qbt_dir_create(argv0);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* QBTEST_H */
