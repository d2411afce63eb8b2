/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_qcow2.c: white-box tests of the qcow2 driver (block/qcow2*.c):
 * the fresh layouts qemu-img 7.2 creates, create-option rules, hostile
 * headers (each bad field refused with the right errno, under a memory
 * limit), header extensions kept byte for byte, the L2 entries that writes,
 * zero writes and discards leave (read back with plain POSIX calls),
 * extended L2 subclusters, compressed clusters made here with zlib,
 * refcount widths, check counts and repairs on damaged images, the
 * dirty-bit rebuild, resizing, and internal snapshots. Where qemu-img is
 * installed ($QEMU_IMG or on $PATH) it is asked to check the results too.
 */

#define _GNU_SOURCE

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "block/block.h"
#include "block/block_int.h"
#include "../../block/qcow2.h"

/* ------------------------------------------------------------------ */
/* Scratch files and POSIX oracles                                     */

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
    const char *base = getenv("TEST_DIR");

    if (!base || !*base) {
        base = getenv("TMPDIR");
    }
    if (!base || !*base) {
        base = "/tmp";
    }
    snprintf(dir, sizeof(dir), "%s/check_int_qcow2-XXXXXX", base);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

static void teardown(void)
{
    if (dir[0]) {
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
    }
}

/* A path in the scratch folder (four rotating buffers). */
static const char *P(const char *name)
{
    static char bufs[4][512];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static int create_img_ret(const char *file, const char *opts, char *msg, size_t msglen)
{
    BdrvError err = { 0 };
    BdrvOpts o;
    int ret;

    bdrv_opts_init(&o);
    ck_assert_int_eq(bdrv_opts_parse(&o, opts, &err), 0);
    ret = bdrv_create("qcow2", file, &o, 0, &err);
    bdrv_opts_free(&o);
    if (msg) {
        snprintf(msg, msglen, "%s", err.msg);
    }
    return ret;
}

static void create_img(const char *file, const char *opts)
{
    char msg[1024];
    int ret = create_img_ret(file, opts, msg, sizeof(msg));
    ck_assert_msg(ret == 0, "create %s (%s): %d %s", file, opts, ret, msg);
}

static void create_raw(const char *file, uint64_t size, uint8_t byte)
{
    int fd = open(file, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    uint8_t buf[65536];

    ck_assert_int_ge(fd, 0);
    memset(buf, byte, sizeof(buf));
    for (uint64_t off = 0; off < size; off += sizeof(buf)) {
        size_t n = (size_t)MIN((uint64_t)sizeof(buf), size - off);
        ck_assert_int_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
    }
    close(fd);
}

static BlockDriverState *open_img(const char *file, int flags)
{
    BdrvError err = { 0 };
    BlockDriverState *bs = NULL;
    int ret = bdrv_open(&bs, file, "qcow2", flags, &err);

    ck_assert_msg(ret == 0, "open %s: %d %s", file, ret, err.msg);
    return bs;
}

/* Open and close again; returns the open's result, its message in @msg. */
static int try_open(const char *file, int flags, char *msg, size_t msglen)
{
    BdrvError err = { 0 };
    BlockDriverState *bs = NULL;
    int ret = bdrv_open(&bs, file, "qcow2", flags | BDRV_O_NO_BACKING, &err);

    if (msg) {
        snprintf(msg, msglen, "%s", err.msg);
    }
    if (ret == 0) {
        bdrv_close(bs);
    }
    return ret;
}

static void file_write(const char *file, uint64_t off, const void *buf, size_t len)
{
    int fd = open(file, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void file_read(const char *file, uint64_t off, void *buf, size_t len)
{
    int fd = open(file, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static uint64_t file_size(const char *file)
{
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    return (uint64_t)st.st_size;
}

static uint32_t rd32(const char *file, uint64_t off)
{
    uint8_t b[4];
    file_read(file, off, b, 4);
    return be32_load(b);
}

static uint64_t rd64(const char *file, uint64_t off)
{
    uint8_t b[8];
    file_read(file, off, b, 8);
    return be64_load(b);
}

static void wr8(const char *file, uint64_t off, uint8_t v)
{
    file_write(file, off, &v, 1);
}

static void wr16(const char *file, uint64_t off, uint16_t v)
{
    uint8_t b[2];
    be16_store(b, v);
    file_write(file, off, b, 2);
}

static void wr32(const char *file, uint64_t off, uint32_t v)
{
    uint8_t b[4];
    be32_store(b, v);
    file_write(file, off, b, 4);
}

static void wr64(const char *file, uint64_t off, uint64_t v)
{
    uint8_t b[8];
    be64_store(b, v);
    file_write(file, off, b, 8);
}

static void copy_file(const char *from, const char *to)
{
    uint64_t n = file_size(from);
    uint8_t *b = malloc(n ? n : 1);
    int fd;

    ck_assert_ptr_nonnull(b);
    file_read(from, 0, b, n);
    fd = open(to, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
    close(fd);
    free(b);
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t)(seed >> 16);
    }
}

static void write_pattern(BlockDriverState *bs, uint64_t off, size_t len, uint32_t seed)
{
    uint8_t *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    fill(b, len, seed);
    ck_assert_int_eq(bdrv_pwrite(bs, off, b, len), 0);
    free(b);
}

static void check_pattern(BlockDriverState *bs, uint64_t off, size_t len, uint32_t seed)
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

static void check_byte(BlockDriverState *bs, uint64_t off, size_t len, uint8_t byte)
{
    uint8_t *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    memset(b, byte ^ 0xFF, len);
    ck_assert_int_eq(bdrv_pread(bs, off, b, len), 0);
    /* One assertion per call: Check records every assertion, which is slow in loops. */
    for (size_t i = 0; i < len; i++) {
        if (b[i] != byte) {
            ck_abort_msg("byte %" PRIu64 " is 0x%02x, not 0x%02x", off + i, b[i], byte);
        }
    }
    free(b);
}

/* The L2 entry for guest @guest, read from the file (first L1 entry's table). */
static uint64_t l2_entry(const char *file, uint64_t guest)
{
    uint32_t cb = rd32(file, 20);
    uint64_t l1 = rd64(file, 40);
    bool ext = rd32(file, 4) >= 3 && (rd64(file, 72) & QCOW2_INCOMPAT_EXTL2);
    uint32_t esize = ext ? 16 : 8;
    uint64_t per = (1ull << cb) / esize;
    uint64_t idx = guest >> cb;
    uint64_t l2 = rd64(file, l1 + 8 * (idx / per)) & L1E_OFFSET_MASK;

    return l2 ? rd64(file, l2 + esize * (idx % per)) : 0;
}

static uint64_t l2_bitmap(const char *file, uint64_t guest)
{
    uint32_t cb = rd32(file, 20);
    uint64_t l1 = rd64(file, 40);
    uint64_t per = (1ull << cb) / 16;
    uint64_t idx = guest >> cb;
    uint64_t l2 = rd64(file, l1 + 8 * (idx / per)) & L1E_OFFSET_MASK;

    return l2 ? rd64(file, l2 + 16 * (idx % per) + 8) : 0;
}

/* The refcount of host cluster @idx, through the driver. */
static uint64_t refcount_of(BlockDriverState *bs, uint64_t idx)
{
    uint64_t rc = 0;
    ck_assert_int_eq(qcow2_get_refcount(bs, idx, &rc), 0);
    return rc;
}

static BdrvCheckResult check_img(BlockDriverState *bs, int fix)
{
    BdrvCheckResult r;
    BdrvError err = { 0 };
    int ret = bdrv_check(bs, &r, fix, &err);
    ck_assert_msg(ret == 0, "check: %d %s", ret, err.msg);
    return r;
}

static void assert_clean(const char *file)
{
    BlockDriverState *bs = open_img(file, BDRV_O_NO_BACKING);
    BdrvCheckResult r = check_img(bs, 0);
    ck_assert_msg(r.corruptions == 0 && r.leaks == 0 && r.check_errors == 0,
                  "%s: %d corruptions, %d leaks, %d check errors", file, r.corruptions, r.leaks,
                  r.check_errors);
    bdrv_close(bs);
}

/* ------------------------------------------------------------------ */
/* qemu-img as an optional second opinion                              */

static const char *qemu_img(void)
{
    static char path[512];
    const char *env = getenv("QEMU_IMG");

    if (env) {
        return *env ? env : NULL;
    }
    if (!path[0]) {
        const char *cands[] = { "/usr/bin/qemu-img", "/usr/local/bin/qemu-img" };
        for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
            if (access(cands[i], X_OK) == 0) {
                snprintf(path, sizeof(path), "%s", cands[i]);
                break;
            }
        }
    }
    return path[0] ? path : NULL;
}

/* Run qemu-img with @args (a NULL-terminated list); returns its exit status or -1. */
static int run_qemu_img(const char *const *args)
{
    const char *qi = qemu_img();
    const char *argv[16];
    pid_t pid;
    int st, n = 0;

    if (!qi) {
        return -1;
    }
    argv[n++] = qi;
    for (; *args && n < 15; args++) {
        argv[n++] = *args;
    }
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(qi, (char *const *)argv);
        _exit(127);
    }
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Run a tool at @path with @args (NULL-terminated); its stdout into @out; returns the status. */
static int run_capture(const char *path, const char *const *args, char *out, size_t outlen)
{
    const char *argv[24];
    int pfd[2], st, n = 0;
    size_t got = 0;
    pid_t pid;

    argv[n++] = path;
    for (; *args && n < 23; args++) {
        argv[n++] = *args;
    }
    argv[n] = NULL;
    ck_assert_int_eq(pipe(pfd), 0);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(pfd[1], 1);
        dup2(null, 2);
        close(pfd[0]);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    ck_assert_int_gt(pid, 0);
    close(pfd[1]);
    for (;;) {
        ssize_t r = read(pfd[0], out + got, outlen - 1 - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
        if (got >= outlen - 1) {
            break;
        }
    }
    out[got] = '\0';
    close(pfd[0]);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The value of "key": N in qemu-img's JSON output (0 when absent). */
static long long json_num(const char *json, const char *key)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(json, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : 0;
}

static const char *qemu_io(void)
{
    const char *env = getenv("QEMU_IO");
    if (env) {
        return *env ? env : NULL;
    }
    return access("/usr/bin/qemu-io", X_OK) == 0 ? "/usr/bin/qemu-io" : NULL;
}

static void qemu_check_clean(const char *file)
{
    const char *args[] = { "check", "-f", "qcow2", file, NULL };
    int rc = run_qemu_img(args);
    ck_assert_msg(rc == -1 || rc == 0, "qemu-img check %s exited %d", file, rc);
}

/* ------------------------------------------------------------------ */
/* Probe and create                                                    */

START_TEST(qcow2_probe_scores)
{
    uint8_t buf[512] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };

    ck_assert_int_eq(bdrv_qcow2.bdrv_probe(buf, sizeof(buf), "x"), 100);
    ck_assert_ptr_eq(bdrv_probe_format(buf, sizeof(buf), "x"), &bdrv_qcow2);
    buf[7] = 2;
    ck_assert_int_eq(bdrv_qcow2.bdrv_probe(buf, sizeof(buf), "x"), 100);
    buf[7] = 1;   /* qcow version 1 belongs to the qcow driver */
    ck_assert_int_eq(bdrv_qcow2.bdrv_probe(buf, sizeof(buf), "x"), 0);
    buf[0] = 'X';
    ck_assert_int_eq(bdrv_qcow2.bdrv_probe(buf, sizeof(buf), "x"), 0);
    ck_assert_int_eq(bdrv_qcow2.bdrv_probe(buf, 4, "x"), 0);
}
END_TEST

START_TEST(qcow2_create_layout_matches_qemu)
{
    const char *f = P("a.qcow2");
    uint8_t rb[8];

    /* formats.md §2.7: header, refcount table, refcount block, L1; ends after the L1. */
    create_img(f, "size=64M");
    ck_assert_uint_eq(file_size(f), 0x30008);
    ck_assert_uint_eq(rd32(f, 0), QCOW2_MAGIC);
    ck_assert_uint_eq(rd32(f, 4), 3);
    ck_assert_uint_eq(rd32(f, 20), 16);
    ck_assert_uint_eq(rd64(f, 24), 64u << 20);
    ck_assert_uint_eq(rd32(f, 36), 1);
    ck_assert_uint_eq(rd64(f, 40), 0x30000);
    ck_assert_uint_eq(rd64(f, 48), 0x10000);
    ck_assert_uint_eq(rd32(f, 56), 1);
    ck_assert_uint_eq(rd64(f, 72), 0);
    ck_assert_uint_eq(rd32(f, 96), 4);
    ck_assert_uint_eq(rd32(f, 100), 112);
    ck_assert_uint_eq(rd32(f, 0x70), QCOW2_EXT_FEATURE_TABLE);
    ck_assert_uint_eq(rd32(f, 0x74), 8 * 48);
    ck_assert_uint_eq(rd64(f, 0x10000), 0x20000);
    file_read(f, 0x20000, rb, 8);
    ck_assert_uint_eq(be16_load(rb), 1);
    ck_assert_uint_eq(be16_load(rb + 6), 1);
    ck_assert_uint_eq(rd64(f, 0x30000), 0);

    /* v2: a 72-byte header and no extensions at all. */
    create_img(f, "size=64M,compat=0.10");
    ck_assert_uint_eq(rd32(f, 4), 2);
    ck_assert_uint_eq(rd64(f, 72), 0);
    ck_assert_uint_eq(file_size(f), 0x30008);

    /* Small clusters leave the feature table out, as QEMU 7.2 does. */
    create_img(f, "size=1M,cluster_size=4096");
    ck_assert_uint_eq(rd32(f, 0x70), 0);
    create_img(f, "size=1M,cluster_size=8192");
    ck_assert_uint_eq(rd32(f, 0x70), QCOW2_EXT_FEATURE_TABLE);

    /* Options that live in the header. */
    create_img(f, "size=1M,refcount_bits=1,lazy_refcounts=on,extended_l2=on");
    ck_assert_uint_eq(rd32(f, 96), 0);
    ck_assert_uint_eq(rd64(f, 80), QCOW2_COMPAT_LAZY_REFCOUNTS);
    ck_assert_uint_eq(rd64(f, 72), QCOW2_INCOMPAT_EXTL2);
#ifdef CONFIG_ZSTD
    create_img(f, "size=1M,compression_type=zstd");
    ck_assert_uint_eq(rd64(f, 72), QCOW2_INCOMPAT_COMPRESSION);
    {
        uint8_t ct;
        file_read(f, 104, &ct, 1);
        ck_assert_uint_eq(ct, 1);
    }
#endif
}
END_TEST

START_TEST(qcow2_create_with_backing_records_name_and_format)
{
    const char *f = P("ov.qcow2");
    char name[16];

    create_raw(P("base.raw"), 1 << 20, 0x5a);
    create_img(f, "backing_file=base.raw,backing_fmt=raw");
    /* The size comes from the backing file; the name sits after the extensions. */
    ck_assert_uint_eq(rd64(f, 24), 1 << 20);
    ck_assert_uint_eq(rd32(f, 0x70), QCOW2_EXT_BACKING_FORMAT);
    ck_assert_uint_eq(rd32(f, 0x74), 3);
    ck_assert_uint_eq(rd64(f, 8), 0x210);
    ck_assert_uint_eq(rd32(f, 16), 8);
    file_read(f, 0x210, name, 8);
    ck_assert(memcmp(name, "base.raw", 8) == 0);

    {
        BlockDriverState *bs = open_img(f, 0);
        ck_assert_str_eq(bdrv_get_backing_file(bs), "base.raw");
        ck_assert_str_eq(bdrv_get_backing_format(bs), "raw");
        check_byte(bs, 0, 65536, 0x5a);
        bdrv_close(bs);
    }
}
END_TEST

START_TEST(qcow2_create_options_rejected)
{
    static const struct {
        const char *opts;
        int err;
    } bad[] = {
        { "size=1M,compat=0.10,lazy_refcounts=on", -EINVAL },
        { "size=1M,compat=0.10,refcount_bits=8", -EINVAL },
        { "size=1M,compat=0.10,extended_l2=on", -EINVAL },
        { "size=1M,compat=0.10,compression_type=zstd", -EINVAL },
        { "size=1M,cluster_size=1000", -EINVAL },
        { "size=1M,cluster_size=256", -EINVAL },
        { "size=1M,cluster_size=4M", -EINVAL },
        { "size=1M,refcount_bits=3", -EINVAL },
        { "size=1M,refcount_bits=128", -EINVAL },
        { "size=1M,extended_l2=on,cluster_size=4096", -EINVAL },
        { "size=1M,encryption=on", -ENOTSUP },
        { "size=1M,encrypt.format=luks", -ENOTSUP },
        { "size=1M,data_file=x.raw", -ENOTSUP },
        { "size=1M,backing_fmt=raw", -EINVAL },
        { "size=1M,compat=2.0", -EINVAL },
        { "size=1M,preallocation=sparse", -EINVAL },
        /* An L1 table larger than 32 MiB. */
        { "size=256G,cluster_size=512", -EFBIG },
    };
    char msg[1024];

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int ret = create_img_ret(P("x.qcow2"), bad[i].opts, msg, sizeof(msg));
        ck_assert_msg(ret == bad[i].err, "'%s': %d (%s), expected %d", bad[i].opts, ret, msg,
                      bad[i].err);
        ck_assert_msg(msg[0] != '\0', "'%s': no message", bad[i].opts);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile headers                                                     */

typedef struct HostileCase {
    const char *what;
    uint32_t off;
    int width;          /* bytes: 1, 2, 4, 8 */
    uint64_t value;
    int err;            /* expected open result (read-only) */
    const char *msg;    /* a part of the message, or NULL */
} HostileCase;

START_TEST(qcow2_hostile_headers_refused)
{
    static const HostileCase cases[] = {
        { "magic", 0, 4, 0x514649FC, -EBADIMAGE, "qcow2 format" },
        { "version 1", 4, 4, 1, -ENOTSUP, "version" },
        { "version 4", 4, 4, 4, -ENOTSUP, "version 4" },
        { "cluster_bits 8", 20, 4, 8, -EBADIMAGE, "2^8" },
        { "cluster_bits 22", 20, 4, 22, -EBADIMAGE, "2^22" },
        { "cluster_bits huge", 20, 4, 0xffffffff, -EBADIMAGE, "cluster" },
        { "header_length 100", 100, 4, 100, -EBADIMAGE, "too short" },
        { "header_length > cluster", 100, 4, 0x20000, -EBADIMAGE, "header_length" },
        { "backing offset > cluster", 8, 8, 0x10001, -EBADIMAGE, "backing file offset" },
        { "unknown incompat bit", 72, 8, 1ull << 20, -ENOTSUP,
          "Unknown incompatible feature: 20" },
        { "external data file", 72, 8, QCOW2_INCOMPAT_DATA_FILE, -ENOTSUP, "external data" },
        { "refcount_order 7", 96, 4, 7, -EBADIMAGE, "64 bits" },
        { "crypt_method 3", 32, 4, 3, -EBADIMAGE, "encryption method 3" },
        { "crypt_method 1", 32, 4, 1, -ENOTSUP, "encrypted qcow2 images are not supported" },
        { "crypt_method 2", 32, 4, 2, -ENOTSUP, "encrypted" },
        { "no refcount table", 56, 4, 0, -EBADIMAGE, "reference count table" },
        { "refcount table too large", 56, 4, 129, -EBADIMAGE, "too large" },
        { "refcount table unaligned", 48, 8, 0x10200, -EBADIMAGE, "offset" },
        { "refcount table offset huge", 48, 8, 0x7fffffffffff0000ull, -EBADIMAGE, "offset" },
        { "too many snapshots", 60, 4, 65537, -EBADIMAGE, "snapshot table too large" },
        { "L1 too large", 36, 4, 4194305, -EBADIMAGE, "L1 table too large" },
        { "L1 too small", 36, 4, 0, -EBADIMAGE, "too small" },
        { "L1 unaligned", 40, 8, 0x30100, -EBADIMAGE, "L1 table offset" },
        { "size too big", 24, 8, 1ull << 62, -EBADIMAGE, "too big" },
        { "compression type 2", 104, 1, 2, -ENOTSUP, "compression type 2" },
        { "zstd without the bit", 104, 1, 1, -EBADIMAGE, "compression" },
        { "compression bit without type", 72, 8, QCOW2_INCOMPAT_COMPRESSION, -EBADIMAGE,
          "compression" },
        { "extension too large", 0x74, 4, 0x10000, -EBADIMAGE, "extension" },
    };
    struct rlimit rl, saved;
    char msg[1024];

    /*
     * Nothing read from a header may make the driver allocate a lot (soft
     * limit: 1 GiB of address space). Sanitizer runtimes reserve terabytes
     * of shadow memory, so there the limit is left out: the plain and
     * valgrind runs enforce it.
     */
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &saved), 0);
    rl = saved;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    rl.rlim_cur = 1ull << 30;
    if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < rl.rlim_cur) {
        rl.rlim_cur = saved.rlim_max;
    }
#endif
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
    create_img(P("good.qcow2"), "size=64M");
    ck_assert_int_eq(try_open(P("good.qcow2"), 0, msg, sizeof(msg)), 0);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const HostileCase *c = &cases[i];
        const char *f = P("bad.qcow2");
        int ret;

        copy_file(P("good.qcow2"), f);
        switch (c->width) {
        case 1: wr8(f, c->off, (uint8_t)c->value); break;
        case 2: wr16(f, c->off, (uint16_t)c->value); break;
        case 4: wr32(f, c->off, (uint32_t)c->value); break;
        default: wr64(f, c->off, c->value); break;
        }
        ret = try_open(f, 0, msg, sizeof(msg));
        ck_assert_msg(ret == c->err, "%s: open returned %d (%s), expected %d", c->what, ret,
                      msg, c->err);
        ck_assert_msg(!c->msg || strstr(msg, c->msg), "%s: message '%s' lacks '%s'", c->what,
                      msg, c->msg);
        ck_assert_msg(strstr(msg, "bad.qcow2") || ret == 0, "%s: message '%s' lacks the file",
                      c->what, msg);
    }
    /* Without forking (CK_FORK=no) the limit would outlive the test. */
    rl.rlim_cur = saved.rlim_cur;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
}
END_TEST

START_TEST(qcow2_hostile_snapshot_and_extension_fields)
{
    const char *f = P("s.qcow2");
    char msg[1024];

    /* A snapshot table entry with more extra data than QEMU allows. */
    create_img(f, "size=1M");
    wr32(f, 60, 1);
    wr64(f, 64, 0x30000 + 0x10000);
    {
        uint8_t e[64];
        memset(e, 0, sizeof(e));
        be32_store(e + 36, 2000);
        file_write(f, 0x40000, e, sizeof(e));
    }
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_msg(strstr(msg, "extra metadata"), "%s", msg);

    /* A backing file name longer than 1023 bytes. */
    create_img(f, "size=1M");
    wr64(f, 8, 0x1000);
    wr32(f, 16, 1024);
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_msg(strstr(msg, "too long"), "%s", msg);
    /* ... or reaching past the first cluster. */
    wr64(f, 8, 0xff00);
    wr32(f, 16, 512);
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);

    /* A backing-format extension of 20 bytes. */
    create_img(f, "size=1M");
    wr32(f, 0x70, QCOW2_EXT_BACKING_FORMAT);
    wr32(f, 0x74, 20);
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);

    /* Extended L2 needs 16 KiB clusters. */
    create_img(f, "size=1M,cluster_size=4096");
    wr64(f, 72, QCOW2_INCOMPAT_EXTL2);
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);

    /* A feature table that names an unknown bit gives its name. */
    create_img(f, "size=1M");
    {
        /* Entry 7 ("raw external data") becomes incompatible bit 33, "fancy widgets". */
        uint8_t e[48];
        memset(e, 0, sizeof(e));
        e[0] = 0;
        e[1] = 33;
        memcpy(e + 2, "fancy widgets", 13);
        file_write(f, 0x78 + 7 * 48, e, sizeof(e));
    }
    wr64(f, 72, 1ull << 33);
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -ENOTSUP);
    ck_assert_msg(strstr(msg, "fancy widgets"), "%s", msg);
}
END_TEST

START_TEST(qcow2_corrupt_bit_allows_read_only)
{
    const char *f = P("c.qcow2");
    char msg[1024];

    create_img(f, "size=1M");
    {
        BlockDriverState *bs = open_img(f, BDRV_O_RDWR);
        write_pattern(bs, 0, 4096, 7);
        bdrv_close(bs);
    }
    wr64(f, 72, QCOW2_INCOMPAT_CORRUPT);
    ck_assert_int_eq(try_open(f, BDRV_O_RDWR, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_msg(strstr(msg, "corrupt"), "%s", msg);
    {
        BlockDriverState *bs = open_img(f, 0);
        check_pattern(bs, 0, 4096, 7);
        bdrv_close(bs);
    }
}
END_TEST

START_TEST(qcow2_unknown_extension_and_autoclear)
{
    const char *f = P("e.qcow2");
    uint8_t before[0x300], after[0x300];
    char name[16];

    create_raw(P("b.raw"), 1 << 20, 0x11);
    create_img(f, "backing_file=b.raw,backing_fmt=raw");
    /*
     * Insert an unknown extension (13 bytes, padded) after the feature
     * table, move the end marker and the backing name behind it, and set
     * an unknown autoclear bit.
     */
    {
        uint8_t ext[24];
        memset(ext, 0, sizeof(ext));
        be32_store(ext, 0x12345678);
        be32_store(ext + 4, 13);
        memcpy(ext + 8, "hello, qcow2!", 13);
        file_write(f, 0x208, ext, sizeof(ext));
        memset(ext, 0, 8);
        file_write(f, 0x208 + 24, ext, 8);
        file_write(f, 0x228, "b.raw", 5);
        wr64(f, 8, 0x228);
        wr32(f, 16, 5);
    }
    wr64(f, 88, (1ull << 5) | QCOW2_AUTOCLEAR_BITMAPS);
    file_read(f, 0, before, sizeof(before));

    {
        BlockDriverState *bs = open_img(f, BDRV_O_RDWR);
        check_byte(bs, 0, 4096, 0x11);
        write_pattern(bs, 8192, 512, 3);
        bdrv_close(bs);
    }
    /* Autoclear bits cleared; everything else in cluster 0 kept byte for byte. */
    ck_assert_uint_eq(rd64(f, 88), 0);
    file_read(f, 0, after, sizeof(after));
    ck_assert(memcmp(before, after, 88) == 0);
    ck_assert(memcmp(before + 96, after + 96, sizeof(before) - 96) == 0);
    file_read(f, rd64(f, 8), name, 5);
    ck_assert(memcmp(name, "b.raw", 5) == 0);
    assert_clean(f);
    qemu_check_clean(f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Writes, zero writes, discard                                        */

START_TEST(qcow2_write_maps_like_qemu)
{
    const char *f = P("w.qcow2");
    BlockDriverState *bs;

    create_img(f, "size=64M");
    bs = open_img(f, BDRV_O_RDWR);
    /* First write: L2 at cluster 4, data at cluster 5 (formats.md §2.7). */
    write_pattern(bs, 512 * 1024, 4096, 1);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(rd64(f, 0x30000), 0x8000000000040000ull);
    ck_assert_uint_eq(l2_entry(f, 512 * 1024), 0x8000000000050000ull);
    /* The rest of the cluster was filled with zeros (no backing file). */
    check_byte(bs, 512 * 1024 + 4096, 65536 - 4096, 0);
    check_byte(bs, 0, 65536, 0);
    check_pattern(bs, 512 * 1024, 4096, 1);

    /* Zero write of an unallocated cluster: a plain zero flag. */
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 2 << 20, 65536), 0);
    /* Zero write of an allocated cluster: zero flag, allocation kept. */
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 512 * 1024, 65536), 0);
    /* A partial zero write writes zeros. */
    write_pattern(bs, 3 << 20, 65536, 2);
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, (3 << 20) + 512, 1024), 0);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(l2_entry(f, 2 << 20), 1);
    ck_assert_uint_eq(l2_entry(f, 512 * 1024), 0x8000000000050001ull);
    check_byte(bs, 512 * 1024, 65536, 0);
    check_byte(bs, 2 << 20, 65536, 0);
    check_byte(bs, (3 << 20) + 512, 1024, 0);
    {
        uint8_t a[512], b[512];
        fill(a, 512, 2);
        ck_assert_int_eq(bdrv_pread(bs, 3 << 20, b, 512), 0);
        ck_assert(memcmp(a, b, 512) == 0);
    }

    /* Writing into the preallocated zero cluster clears the flag and zeros the rest. */
    write_pattern(bs, 512 * 1024 + 8192, 512, 9);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(l2_entry(f, 512 * 1024), 0x8000000000050000ull);
    check_byte(bs, 512 * 1024, 8192, 0);
    check_pattern(bs, 512 * 1024 + 8192, 512, 9);
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);
}
END_TEST

START_TEST(qcow2_discard_semantics_match_qemu)
{
    const char *v3 = P("d3.qcow2"), *v2 = P("d2.qcow2"), *ov = P("ov.qcow2");
    BlockDriverState *bs;

    /* v3 without backing: discarded allocated clusters read zero (zero flag). */
    create_img(v3, "size=16M");
    bs = open_img(v3, BDRV_O_RDWR);
    write_pattern(bs, 0, 256 * 1024, 1);
    ck_assert_int_eq(bdrv_pdiscard(bs, 0, 65536), 0);
    ck_assert_int_eq(bdrv_pdiscard(bs, 65536, 32768), 0);       /* partial: ignored */
    ck_assert_int_eq(bdrv_pdiscard(bs, 1 << 20, 65536), 0);     /* unallocated: unchanged */
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(l2_entry(v3, 0), 1);
    ck_assert_uint_eq(l2_entry(v3, 1 << 20), 0);
    ck_assert_uint_eq(l2_entry(v3, 65536) & QCOW_OFLAG_COPIED, QCOW_OFLAG_COPIED);
    check_byte(bs, 0, 65536, 0);
    /* The freed data cluster (cluster 5) has refcount 0 once the L2 update is durable. */
    ck_assert_uint_eq(refcount_of(bs, 5), 0);
    bdrv_close(bs);
    assert_clean(v3);

    /* v2 without backing: discard deallocates. */
    create_img(v2, "size=16M,compat=0.10");
    bs = open_img(v2, BDRV_O_RDWR);
    write_pattern(bs, 0, 131072, 1);
    ck_assert_int_eq(bdrv_pdiscard(bs, 0, 65536), 0);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(l2_entry(v2, 0), 0);
    check_byte(bs, 0, 65536, 0);
    bdrv_close(bs);
    assert_clean(v2);

    /* v3 with backing: discarded clusters read zero, never the backing file. */
    create_raw(P("base.raw"), 16 << 20, 0xaa);
    create_img(ov, "backing_file=base.raw,backing_fmt=raw");
    bs = open_img(ov, BDRV_O_RDWR);
    write_pattern(bs, 0, 131072, 1);
    ck_assert_int_eq(bdrv_pdiscard(bs, 0, 65536), 0);
    ck_assert_int_eq(bdrv_pdiscard(bs, 8 << 20, 65536), 0);   /* no L2 table there yet */
    check_byte(bs, 0, 65536, 0);
    check_byte(bs, 8 << 20, 65536, 0);
    check_byte(bs, 9 << 20, 65536, 0xaa);
    bdrv_close(bs);
    assert_clean(ov);

    /* v2 with backing: QEMU leaves the data alone. */
    create_img(ov, "backing_file=base.raw,backing_fmt=raw,compat=0.10");
    bs = open_img(ov, BDRV_O_RDWR);
    write_pattern(bs, 0, 65536, 4);
    ck_assert_int_eq(bdrv_pdiscard(bs, 0, 65536), 0);
    check_pattern(bs, 0, 65536, 4);
    bdrv_close(bs);
}
END_TEST

/*
 * A check of an image open for writing sees it as the open image does: a
 * discard's L2 updates and the refcount drops it deferred to the next flush
 * are written first, even by a check that repairs nothing. (Without that,
 * the check read the tables as they were before the discard and counted 4
 * allocated clusters: tried; had only the L2 tables reached the file, the
 * freed clusters would have been leaks.) qemu-img check on the file after
 * the close agrees.
 */
START_TEST(qcow2_check_after_discard_sees_pending_frees)
{
    const char *f = P("dchk.qcow2");
    BlockDriverState *bs;
    BdrvCheckResult r;

    create_img(f, "size=16M");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 4 * 65536, 7);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_int_eq(bdrv_pdiscard(bs, 65536, 2 * 65536), 0);
    r = check_img(bs, 0);
    ck_assert_msg(r.corruptions == 0 && r.leaks == 0 && r.check_errors == 0,
                  "%d corruptions, %d leaks, %d check errors", r.corruptions, r.leaks,
                  r.check_errors);
    ck_assert_uint_eq(r.allocated_clusters, 2);
    check_byte(bs, 65536, 2 * 65536, 0);
    check_pattern(bs, 0, 65536, 7);
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);
}
END_TEST

/* One shared read (qcow2_preadv_shared) of @len bytes at @off into @buf, as bdrv_preadv runs it. */
static int shared_read(BlockDriverState *bs, uint64_t off, void *buf, size_t len)
{
    QBIOVector qiov;
    int ret;

    qiov_init_buf(&qiov, buf, len);
    ck_assert_int_eq(pthread_rwlock_rdlock(&bs->rw_lock), 0);
    ret = bs->drv->bdrv_preadv_shared(bs, off, &qiov);
    pthread_rwlock_unlock(&bs->rw_lock);
    return ret;
}

/*
 * Reads from several threads run under the node's rw_lock held shared and
 * may change nothing: they serve only what cached L2 tables map (data,
 * zeros, holes without a backing file) and hand everything else to the
 * exclusive path with -EAGAIN; once that path has loaded a table, the same
 * read is served shared, with the right bytes, and leaves the table
 * unpinned (so it can still be evicted).
 */
static void record_aio(void *opaque, int ret)
{
    *(int *)opaque = ret;
}

/*
 * Asynchronous reads on O_DIRECT with native AIO: zeros and holes complete
 * at once; a data cluster goes to the kernel and stays in flight, counted,
 * until reaped. A cluster whose refcount drops to zero must first wait for
 * such reads, or a read could return the data of whatever reuses it. Here
 * the refcount block is cached, so dropping the count does no file I/O
 * that would reap the read as a side effect: only the wait can complete
 * it (without it, the read is still pending afterwards: tried). Then a
 * discard and flush, as a user frees clusters, with the read's data intact.
 */
START_TEST(qcow2_native_read_holds_its_cluster)
{
    const char *f = P("native.qcow2");
    BlockDriverState *bs;
    BDRVQcow2State *s;
    uint8_t *buf, want[4096];
    QBIOVector qiov;
    int efd = eventfd(0, EFD_CLOEXEC), done;

    ck_assert_int_ge(efd, 0);
    ck_assert_int_eq(posix_memalign((void **)&buf, 4096, 4096), 0);
    create_img(f, "size=4M");
    bs = open_img(f, BDRV_O_RDWR);
    fill(want, sizeof(want), 7);
    for (uint64_t off = 0; off < 256 * 1024; off += sizeof(want)) {
        ck_assert_int_eq(bdrv_pwrite(bs, off, want, sizeof(want)), 0);
    }
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 512 * 1024, 64 * 1024), 0);
    bdrv_close(bs);

    bs = open_img(f, BDRV_O_RDWR | BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO | BDRV_O_CACHE_WB);
    s = bs->opaque;
    qiov_init_buf(&qiov, buf, 4096);
    /* The L2 table is not cached yet: the caller's slower path. */
    ck_assert_int_eq(bdrv_aio_preadv(bs, 64 * 1024, &qiov, efd, record_aio, &done), -EAGAIN);
    ck_assert_int_eq(bdrv_pread(bs, 0, buf, 4096), 0);

    /* A hole and a zero cluster complete before the call returns. */
    for (uint64_t off = 3 * 1024 * 1024; off; off = off == 512 * 1024 ? 0 : 512 * 1024) {
        memset(buf, 0xff, 4096);
        done = 1;
        ck_assert_int_eq(bdrv_aio_preadv(bs, off, &qiov, efd, record_aio, &done), 0);
        ck_assert_int_eq(done, 0);
        ck_assert(buffer_is_zero(buf, 4096));
    }

    {
        uint64_t n = 4096, host, rc;
        Qcow2SubclusterType type;

        ck_assert_int_eq(qcow2_peek_host_offset(bs, 64 * 1024, &n, &host, &type), 0);
        ck_assert_int_eq(type, QCOW2_SC_NORMAL);
        ck_assert_int_eq(qcow2_get_refcount(bs, host >> s->cluster_bits, &rc), 0);
        ck_assert_uint_eq(rc, 1);
        memset(buf, 0, 4096);
        done = 1;
        ck_assert_int_eq(bdrv_aio_preadv(bs, 64 * 1024, &qiov, efd, record_aio, &done), 0);
        ck_assert_uint_eq(__atomic_load_n(&s->aio_reads, __ATOMIC_ACQUIRE), 1);
        ck_assert_int_eq(done, 1);                  /* nobody has reaped it */
        ck_assert_int_eq(qcow2_update_refcount(bs, host, 4096, -1), 0);
        ck_assert_int_eq(done, 0);
        ck_assert_uint_eq(__atomic_load_n(&s->aio_reads, __ATOMIC_ACQUIRE), 0);
        ck_assert(memcmp(buf, want, 4096) == 0);
        ck_assert_int_eq(qcow2_update_refcount(bs, host, 4096, 1), 0);
    }

    memset(buf, 0, 4096);
    done = 1;
    ck_assert_int_eq(bdrv_aio_preadv(bs, 64 * 1024, &qiov, efd, record_aio, &done), 0);
    ck_assert_int_eq(bdrv_pdiscard(bs, 64 * 1024, 64 * 1024), 0);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_int_eq(done, 0);
    ck_assert_uint_eq(__atomic_load_n(&s->aio_reads, __ATOMIC_ACQUIRE), 0);
    ck_assert(memcmp(buf, want, 4096) == 0);
    bdrv_close(bs);
    close(efd);
    free(buf);
}
END_TEST

START_TEST(qcow2_shared_read_serves_only_cached_tables)
{
    const char *f = P("shared.qcow2");
    const char *top = P("shared-top.qcow2");
    const uint64_t span = (uint64_t)8192 * 65536;   /* what one L2 table maps */
    BlockDriverState *bs;
    uint8_t *buf = malloc(2 * 65536), *want = malloc(65536);
    uint8_t zero[4096];

    ck_assert_ptr_nonnull(buf);
    ck_assert_ptr_nonnull(want);
    memset(zero, 0, sizeof(zero));
    create_img(f, "size=2G");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 65536, 65536, 5);
    write_pattern(bs, span, 65536, 6);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    bdrv_close(bs);

    bs = open_img(f, 0);
    /* Nothing cached after open: every mapped area needs the exclusive path. */
    ck_assert_int_eq(shared_read(bs, 65536, buf, 4096), -EAGAIN);
    /* No L2 table at all for this area, no backing file: zeros, served shared. */
    memset(buf, 0xee, 4096);
    ck_assert_int_eq(shared_read(bs, 3 * span, buf, 4096), 0);
    ck_assert_int_eq(memcmp(buf, zero, 4096), 0);

    check_pattern(bs, 65536, 4096, 5);                 /* loads the first table */
    fill(want, 65536, 5);
    memset(buf, 0, 2 * 65536);
    /* A cluster and a half: data, then the unallocated cluster after it. */
    ck_assert_int_eq(shared_read(bs, 65536, buf, 65536 + 32768), 0);
    ck_assert_int_eq(memcmp(buf, want, 65536), 0);
    ck_assert_int_eq(memcmp(buf + 65536, zero, 4096), 0);
    /* The second table is still not cached. */
    ck_assert_int_eq(shared_read(bs, span, buf, 4096), -EAGAIN);
    /* A read across both tables reaches the uncached one and gives up. */
    ck_assert_int_eq(shared_read(bs, span - 4096, buf, 8192), -EAGAIN);
    /* Through the generic layer the same read is whole either way. */
    check_pattern(bs, span, 65536, 6);
    ck_assert_int_eq(shared_read(bs, span, buf, 65536), 0);
    fill(want, 65536, 6);
    ck_assert_int_eq(memcmp(buf, want, 65536), 0);
    bdrv_close(bs);

    /* With a backing file, holes are the backing file's: exclusive path. */
    {
        char opts[PATH_MAX + 64];
        snprintf(opts, sizeof(opts), "backing_file=%s,backing_fmt=qcow2", f);
        create_img(top, opts);
    }
    bs = open_img(top, 0);
    check_pattern(bs, 65536, 65536, 5);
    ck_assert_int_eq(shared_read(bs, 65536, buf, 4096), -EAGAIN);
    bdrv_close(bs);
    free(buf);
    free(want);
}
END_TEST

static uint64_t allocated_bytes(const char *file)
{
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/*
 * A small write into a new cluster past the end of the file writes only
 * its data: the file is extended over the cluster, and the hole reads as
 * zero. A new cluster inside the file (one freed earlier) still gets its
 * zero fills written over the old bytes.
 */
START_TEST(qcow2_new_cluster_past_eof_writes_data_only)
{
    enum { N = 32, CS = 65536 };
    const char *f = P("eof.qcow2");
    BlockDriverState *bs;
    uint64_t before, after, host;

    create_img(f, "size=16M");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 4096, 1);              /* the L2 table exists from here on */
    ck_assert_int_eq(bdrv_flush(bs), 0);
    before = allocated_bytes(f);
    for (int i = 1; i <= N; i++) {
        write_pattern(bs, (uint64_t)i * CS + 8192, 4096, (uint32_t)i + 1);
    }
    ck_assert_int_eq(bdrv_flush(bs), 0);
    after = allocated_bytes(f);
    /* Data only: 32 x 4 KiB (file systems may round up); fills: 32 x 64 KiB. */
    ck_assert_msg(after - before < (uint64_t)N * CS / 2,
                  "%" PRIu64 " bytes allocated for %d 4 KiB writes", after - before, N);
    for (int i = 1; i <= N; i++) {
        check_byte(bs, (uint64_t)i * CS, 8192, 0);
        check_pattern(bs, (uint64_t)i * CS + 8192, 4096, (uint32_t)i + 1);
        check_byte(bs, (uint64_t)i * CS + 12288, CS - 12288, 0);
    }
    ck_assert_uint_eq(file_size(f) % CS, 0);

    /* A freed cluster inside the file is reused with its fills written. */
    write_pattern(bs, (uint64_t)(N + 1) * CS, CS, 99);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    host = l2_entry(f, (uint64_t)(N + 1) * CS) & L2E_OFFSET_MASK;
    ck_assert_int_eq(bdrv_pdiscard(bs, (uint64_t)(N + 1) * CS, CS), 0);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    bdrv_close(bs);
    bs = open_img(f, BDRV_O_RDWR);              /* the allocator starts from the bottom */
    write_pattern(bs, (uint64_t)(N + 2) * CS + 8192, 4096, 7);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(l2_entry(f, (uint64_t)(N + 2) * CS) & L2E_OFFSET_MASK, host);
    check_byte(bs, (uint64_t)(N + 2) * CS, 8192, 0);
    check_pattern(bs, (uint64_t)(N + 2) * CS + 8192, 4096, 7);
    check_byte(bs, (uint64_t)(N + 2) * CS + 12288, CS - 12288, 0);
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);
}
END_TEST

START_TEST(qcow2_cow_from_backing_and_short_backing)
{
    const char *ov = P("ov.qcow2");
    BlockDriverState *bs;

    /* A backing file of 100000 bytes under a 1 MiB overlay. */
    create_raw(P("short.raw"), 100000, 0x77);
    create_img(ov, "size=1M,backing_file=short.raw,backing_fmt=raw");
    bs = open_img(ov, BDRV_O_RDWR);
    check_byte(bs, 0, 99840, 0x77);
    {
        uint8_t b[512];
        ck_assert_int_eq(bdrv_pread(bs, 99840, b, 512), 0);
        for (int i = 0; i < 512; i++) {
            if (b[i] != (99840 + i < 100000 ? 0x77 : 0)) {
                ck_abort_msg("byte %d past the backing end is wrong", 99840 + i);
            }
        }
    }
    check_byte(bs, 102400, 65536, 0);
    /* A small write copies the rest of its cluster from the backing file. */
    write_pattern(bs, 70000 - 70000 % 512, 512, 5);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    bdrv_close(bs);
    bs = open_img(ov, BDRV_O_NO_BACKING);
    /* Without the backing file open, the copied bytes are still there. */
    check_byte(bs, 65536, 69632 - 65536, 0x77);
    check_pattern(bs, 69632, 512, 5);
    check_byte(bs, 70144, 99840 - 70144, 0x77);
    {
        uint8_t b[512];
        ck_assert_int_eq(bdrv_pread(bs, 99840, b, 512), 0);
        for (int i = 0; i < 512; i++) {
            if (b[i] != (99840 + i < 100000 ? 0x77 : 0)) {
                ck_abort_msg("byte %d past the backing end is wrong", 99840 + i);
            }
        }
    }
    check_byte(bs, 100352, 131072 - 100352, 0);
    check_byte(bs, 0, 65536, 0);   /* unallocated, no backing: zeros */
    bdrv_close(bs);
    assert_clean(ov);
    qemu_check_clean(ov);
}
END_TEST

START_TEST(qcow2_extended_l2_subclusters)
{
    const char *ov = P("x.qcow2");
    BlockDriverState *bs;
    uint64_t bm;

    create_raw(P("base.raw"), 4 << 20, 0x33);
    create_img(ov, "backing_file=base.raw,backing_fmt=raw,extended_l2=on");
    bs = open_img(ov, BDRV_O_RDWR);
    /* 64 KiB clusters, 2 KiB subclusters: a 1 KiB write touches subcluster 2 only. */
    write_pattern(bs, 4096 + 512, 1024, 8);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    bm = l2_bitmap(ov, 0);
    ck_assert_uint_eq(bm, 1u << 2);
    ck_assert_uint_eq(l2_entry(ov, 0) & QCOW_OFLAG_COPIED, QCOW_OFLAG_COPIED);
    check_byte(bs, 0, 4096 + 512, 0x33);
    check_pattern(bs, 4096 + 512, 1024, 8);
    check_byte(bs, 4096 + 1536, 65536 - 5632, 0x33);
    /* A second write into the same cluster, other subclusters. */
    write_pattern(bs, 30000 - 30000 % 512, 4096, 9);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(l2_bitmap(ov, 0), (1u << 2) | (0x3u << 14) | (1u << 16));
    /* Whole-cluster zero writes set every zero bit. */
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 65536, 65536), 0);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(l2_bitmap(ov, 65536), QCOW_L2_BITMAP_ALL_ZEROES);
    check_byte(bs, 65536, 65536, 0);
    bdrv_close(bs);
    assert_clean(ov);
    qemu_check_clean(ov);
}
END_TEST

/* Raw deflate (no zlib header), as qcow2 stores compressed clusters. */
static size_t deflate_raw(const uint8_t *in, size_t len, uint8_t *out, size_t outlen)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)outlen;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    deflateEnd(&z);
    return outlen - z.avail_out;
}

START_TEST(qcow2_compressed_cluster_read_and_overwrite)
{
    const char *f = P("z.qcow2");
    BlockDriverState *bs;
    uint8_t *data = malloc(65536), *comp = calloc(1, 70000);
    size_t clen;
    uint64_t coff = 0x50000 + 100;   /* deliberately not sector-aligned */
    uint64_t nsect;

    ck_assert_ptr_nonnull(data);
    ck_assert_ptr_nonnull(comp);
    create_img(f, "size=4M");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 65536, 512, 1);   /* L2 at cluster 4, data at cluster 5 */
    bdrv_close(bs);

    /* Put a compressed cluster for guest cluster 0 into host cluster 6, by hand. */
    for (int i = 0; i < 65536; i++) {
        data[i] = (uint8_t)(i / 1000 + (i % 7));
    }
    clen = deflate_raw(data, 65536, comp, 70000);
    coff = 0x60000 + 100;
    file_write(f, coff, comp, clen);
    nsect = (coff + clen - 1) / 512 - coff / 512;   /* additional sectors */
    wr64(f, rd64(f, 0x30000) & L1E_OFFSET_MASK,
         QCOW_OFLAG_COMPRESSED | (nsect << (62 - 8)) | coff);
    /* Count host cluster 6 for it (refcount block at 0x20000, 16-bit entries). */
    wr16(f, 0x20000 + 2 * 6, 1);

    bs = open_img(f, BDRV_O_RDWR);
    {
        uint8_t *b = malloc(65536);
        ck_assert_int_eq(bdrv_pread(bs, 0, b, 65536), 0);
        ck_assert(memcmp(b, data, 65536) == 0);
        ck_assert_int_eq(bdrv_pread(bs, 4096, b, 512), 0);
        ck_assert(memcmp(b, data + 4096, 512) == 0);
        free(b);
    }
    {
        BdrvCheckResult r = check_img(bs, 0);
        ck_assert_int_eq(r.corruptions, 0);
        ck_assert_int_eq(r.leaks, 0);
        ck_assert_uint_eq(r.compressed_clusters, 1);
        ck_assert_uint_eq(r.allocated_clusters, 2);
    }
    /* Overwriting part of it copies the rest into a new cluster and frees the old one. */
    write_pattern(bs, 8192, 512, 4);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_eq(l2_entry(f, 0) & (QCOW_OFLAG_COMPRESSED | QCOW_OFLAG_COPIED),
                      QCOW_OFLAG_COPIED);
    ck_assert_uint_eq(refcount_of(bs, 6), 0);
    {
        uint8_t *b = malloc(65536);
        ck_assert_int_eq(bdrv_pread(bs, 0, b, 8192), 0);
        ck_assert(memcmp(b, data, 8192) == 0);
        ck_assert_int_eq(bdrv_pread(bs, 8704, b, 65536 - 8704), 0);
        ck_assert(memcmp(b, data + 8704, 65536 - 8704) == 0);
        free(b);
    }
    check_pattern(bs, 8192, 512, 4);
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);
    free(data);
    free(comp);
}
END_TEST

START_TEST(qcow2_refcount_entry_widths)
{
    BDRVQcow2State s;
    uint8_t block[512];

    for (int order = 0; order <= 6; order++) {
        uint64_t max = order == 6 ? UINT64_MAX : (1ull << (1 << order)) - 1;
        uint32_t n = 512 * 8 >> order;

        memset(&s, 0, sizeof(s));
        s.refcount_order = order;
        memset(block, 0, sizeof(block));
        for (uint32_t i = 0; i < n; i++) {
            qcow2_refblock_set(&s, block, i, (i * 2654435761u) & max);
        }
        for (uint32_t i = 0; i < n; i++) {
            if (qcow2_refblock_get(&s, block, i) != ((i * 2654435761u) & max)) {
                ck_abort_msg("order %d entry %u reads back wrong", order, i);
            }
        }
        /* Sub-byte widths are LSB first; wider ones big-endian. */
        memset(block, 0, sizeof(block));
        qcow2_refblock_set(&s, block, 0, 1);
        ck_assert_uint_eq(block[order <= 3 ? 0 : (1u << (order - 3)) - 1], 1);
    }
}
END_TEST

/* A seeded mix of writes of any size and alignment, zero writes and discards against a mirror. */
static void random_io(const char *f, const char *opts, const char *backing, uint32_t seed,
                      int ops)
{
    uint64_t size = 4 << 20;
    uint8_t *mirror = calloc(1, size), *buf = malloc(300000), *rb = malloc(300000);
    BlockDriverState *bs;
    char o[256];

    ck_assert_ptr_nonnull(mirror);
    if (backing) {
        create_raw(P(backing), size, 0x42);
        memset(mirror, 0x42, size);
        snprintf(o, sizeof(o), "%s,backing_file=%s,backing_fmt=raw", opts, backing);
    } else {
        snprintf(o, sizeof(o), "%s,size=4M", opts);
    }
    create_img(f, o);
    /* No fsync: the ordering code runs all the same, without the disk's latency. */
    bs = open_img(f, BDRV_O_RDWR | BDRV_O_NO_FLUSH);
    for (int i = 0; i < ops; i++) {
        uint32_t r;
        uint64_t off, len;

        seed = seed * 1103515245u + 12345u;
        r = seed >> 8;
        off = (uint64_t)(r % (uint32_t)(size / 512)) * 512;
        len = 512 * (1 + (seed >> 3) % 500);
        if (off + len > size) {
            len = size - off;
        }
        switch (r % 10) {
        case 0:
            ck_assert_int_eq(bdrv_pwrite_zeroes(bs, off, len), 0);
            memset(mirror + off, 0, len);
            break;
        case 1: {
            ck_assert_int_eq(bdrv_pdiscard(bs, off, len), 0);
            ck_assert_int_eq(bdrv_pread(bs, off, rb, len), 0);
            for (uint64_t k = 0; k < len; k++) {
                if (rb[k] != mirror[off + k] && rb[k] != 0) {
                    ck_abort_msg("discard left neither old data nor zero at %" PRIu64, off + k);
                }
            }
            memcpy(mirror + off, rb, len);
            break;
        }
        case 2:
            ck_assert_int_eq(bdrv_flush(bs), 0);
            /* fall through */
        default:
            fill(buf, len, seed);
            ck_assert_int_eq(bdrv_pwrite(bs, off, buf, len), 0);
            memcpy(mirror + off, buf, len);
            break;
        }
        if (i % 97 == 0) {
            ck_assert_int_eq(bdrv_pread(bs, off, rb, len), 0);
            ck_assert(memcmp(rb, mirror + off, len) == 0);
        }
    }
    bdrv_close(bs);
    bs = open_img(f, 0);
    for (uint64_t off = 0; off < size; off += 262144) {
        ck_assert_int_eq(bdrv_pread(bs, off, rb, 262144), 0);
        ck_assert_msg(memcmp(rb, mirror + off, 262144) == 0, "%s: mismatch near %" PRIu64, o,
                      off);
    }
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);
    free(mirror);
    free(buf);
    free(rb);
}

START_TEST(qcow2_random_io_matches_mirror)
{
    random_io(P("r1.qcow2"), "compat=1.1", NULL, 1, 600);
    random_io(P("r2.qcow2"), "compat=0.10", NULL, 2, 600);
    random_io(P("r3.qcow2"), "cluster_size=512", NULL, 3, 400);
    random_io(P("r4.qcow2"), "cluster_size=4096,refcount_bits=1", "b4.raw", 4, 400);
    random_io(P("r5.qcow2"), "extended_l2=on,cluster_size=32768", "b5.raw", 5, 400);
    random_io(P("r6.qcow2"), "lazy_refcounts=on", "b6.raw", 6, 400);
    random_io(P("r7.qcow2"), "compat=0.10", "b7.raw", 7, 400);
    random_io(P("r8.qcow2"), "refcount_bits=64,cluster_size=1024", NULL, 8, 400);
}
END_TEST

START_TEST(qcow2_refcount_table_grows)
{
    /* 512-byte clusters: one table cluster covers 64 blocks of 256 clusters (8 MiB). */
    const char *f = P("g.qcow2");
    BlockDriverState *bs;

    create_img(f, "size=32M,cluster_size=512");
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_uint_eq(rd32(f, 56), 1);
    for (uint64_t off = 0; off < (24u << 20); off += 1 << 20) {
        write_pattern(bs, off, 1 << 20, (uint32_t)(off >> 20));
    }
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_uint_gt(rd32(f, 56), 1);
    for (uint64_t off = 0; off < (24u << 20); off += 1 << 20) {
        check_pattern(bs, off, 1 << 20, (uint32_t)(off >> 20));
    }
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Check and repair                                                    */

START_TEST(qcow2_check_counts_and_repairs)
{
    const char *f = P("c.qcow2");
    BlockDriverState *bs;
    BdrvCheckResult r;

    create_img(f, "size=16M");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 200 * 1024, 1);     /* clusters 5..8 */
    write_pattern(bs, 2 << 20, 65536, 2);    /* cluster 9 */
    bdrv_close(bs);

    bs = open_img(f, 0);
    r = check_img(bs, 0);
    ck_assert_int_eq(r.corruptions, 0);
    ck_assert_int_eq(r.leaks, 0);
    ck_assert_int_eq(r.image_end_offset, 10 * 65536);
    ck_assert_uint_eq(r.allocated_clusters, 5);
    ck_assert_uint_eq(r.total_clusters, 256);
    ck_assert_uint_eq(r.fragmented_clusters, 0);
    bdrv_close(bs);

    /* A leak: cluster 12 (inside the file) counted by nobody; a double count of cluster 5. */
    ck_assert_int_eq(truncate(f, 16 * 65536), 0);
    wr16(f, 0x20000 + 2 * 12, 1);
    wr16(f, 0x20000 + 2 * 5, 2);
    bs = open_img(f, 0);
    r = check_img(bs, 0);
    ck_assert_int_eq(r.leaks, 2);
    ck_assert_int_eq(r.corruptions, 1);   /* COPIED set on a refcount-2 cluster */
    ck_assert_int_eq(r.image_end_offset, 13 * 65536);
    bdrv_close(bs);
    bs = open_img(f, BDRV_O_RDWR);
    r = check_img(bs, BDRV_FIX_LEAKS);
    ck_assert_int_eq(r.leaks_fixed, 2);
    ck_assert_int_eq(r.leaks, 0);
    bdrv_close(bs);
    assert_clean(f);

    /* An error: a used cluster with refcount 0 needs the rebuild of an error repair. */
    wr16(f, 0x20000 + 2 * 7, 0);
    bs = open_img(f, BDRV_O_RDWR);
    r = check_img(bs, 0);
    ck_assert_int_eq(r.corruptions, 2);   /* the refcount and the COPIED flag */
    {
        BdrvError err = { 0 };
        ck_assert_int_eq(bdrv_check(bs, &r, BDRV_FIX_LEAKS, &err), -EIO);
    }
    r = check_img(bs, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
    ck_assert_int_eq(r.corruptions, 0);
    ck_assert_int_ge(r.corruptions_fixed, 1);
    check_pattern(bs, 0, 200 * 1024, 1);
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);

    /* A COPIED flag missing from an L2 entry: an error, fixed in place. */
    {
        uint64_t l2 = rd64(f, rd64(f, 40)) & L1E_OFFSET_MASK;
        wr64(f, l2, rd64(f, l2) & ~QCOW_OFLAG_COPIED);
    }
    bs = open_img(f, BDRV_O_RDWR);
    r = check_img(bs, 0);
    ck_assert_int_eq(r.corruptions, 1);
    r = check_img(bs, BDRV_FIX_ERRORS);
    ck_assert_int_eq(r.corruptions_fixed, 1);
    ck_assert_int_eq(r.corruptions, 0);
    bdrv_close(bs);
    assert_clean(f);
}
END_TEST


/*
 * The same damaged images through qemu-img check and ours: every count
 * qemu-img reports must come out the same.
 */
START_TEST(qcow2_check_counts_match_qemu_img)
{
    static const struct {
        const char *what;
        int kind;
    } cases[] = {
        { "clean", 0 },
        { "data cluster counted twice", 1 },
        { "data cluster not counted", 2 },
        { "L1 entry not cluster-aligned", 3 },
        { "COPIED missing in L2", 4 },
        { "COPIED missing in L1", 5 },
        { "refcount table entry unaligned", 6 },
        { "refcount block past the end", 7 },
        { "data offset unaligned", 8 },
        { "L2 entry naming the refcount table", 9 },
        { "leaked cluster inside the file", 10 },
        { "compressed entry with COPIED", 11 },
    };
    const char *qi = qemu_img(), *qio = qemu_io();
    const char *base = P("base.qcow2"), *f = P("d.qcow2");
    char json[4096];

    if (!qi || !qio) {
        /* Nothing to compare with; the other tests cover the counts themselves. */
        return;
    }
    {
        const char *cargs[] = { "create", "-q", "-f", "qcow2", base, "16M", NULL };
        const char *wargs[] = { "-f", "qcow2", "-c", "write -P 1 0 200k", "-c", "write -P 2 2M 64k",
                                "-c", "write -c -P 3 4M 128k", "-c", "write -z 6M 64k", base, NULL };
        /* A snapshot, so that shared and inactive clusters take part too. */
        const char *sargs[] = { "snapshot", "-c", "s1", base, NULL };
        const char *w2args[] = { "-f", "qcow2", "-c", "write -P 4 0 64k", "-c",
                                 "write -c -P 5 8M 64k", base, NULL };
        ck_assert_int_eq(run_capture(qi, cargs, json, sizeof(json)), 0);
        ck_assert_int_eq(run_capture(qio, wargs, json, sizeof(json)), 0);
        ck_assert_int_eq(run_capture(qi, sargs, json, sizeof(json)), 0);
        ck_assert_int_eq(run_capture(qio, w2args, json, sizeof(json)), 0);
    }
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        uint64_t l1 = rd64(base, 40), rt = rd64(base, 48);
        uint64_t rb = rd64(base, rt);
        uint64_t l2 = rd64(base, l1) & L1E_OFFSET_MASK;
        uint64_t e0 = rd64(base, l2);
        uint64_t d0 = e0 & L2E_OFFSET_MASK;
        BlockDriverState *bs;
        BdrvCheckResult r;
        const char *args[] = { "check", "--output=json", "-f", "qcow2", f, NULL };

        copy_file(base, f);
        switch (cases[i].kind) {
        case 1: wr16(f, rb + 2 * (d0 >> 16), 2); break;
        case 2: wr16(f, rb + 2 * (d0 >> 16), 0); break;
        case 3: wr64(f, l1, (l2 + 512) | QCOW_OFLAG_COPIED); break;
        case 4: wr64(f, l2, e0 & ~QCOW_OFLAG_COPIED); break;
        case 5: wr64(f, l1, l2); break;
        case 6: wr64(f, rt, rb + 512); break;
        case 7: wr64(f, rt + 8, 0x40000000); break;
        case 8: wr64(f, l2, e0 + 512); break;
        case 9: wr64(f, l2 + 8 * 6, rt | QCOW_OFLAG_COPIED); break;
        case 10:
            ck_assert_int_eq(truncate(f, (off_t)file_size(f) + 4 * 65536), 0);
            wr16(f, rb + 2 * (file_size(f) / 65536 - 2), 1);
            break;
        case 11: {
            uint64_t ce = rd64(f, l2 + 8 * 64);
            ck_assert_uint_eq(ce & QCOW_OFLAG_COMPRESSED, QCOW_OFLAG_COMPRESSED);
            wr64(f, l2 + 8 * 64, ce | QCOW_OFLAG_COPIED);
            break;
        }
        default: break;
        }
        run_capture(qi, args, json, sizeof(json));
        ck_assert_msg(strstr(json, "image-end-offset") != NULL, "%s: no JSON from qemu-img: %s",
                      cases[i].what, json);
        bs = open_img(f, BDRV_O_NO_BACKING);
        r = check_img(bs, 0);
        bdrv_close(bs);
        ck_assert_msg(r.corruptions == json_num(json, "corruptions") &&
                      r.leaks == json_num(json, "leaks") &&
                      r.check_errors == json_num(json, "check-errors") &&
                      r.image_end_offset == json_num(json, "image-end-offset") &&
                      (long long)r.allocated_clusters == json_num(json, "allocated-clusters") &&
                      (long long)r.fragmented_clusters == json_num(json, "fragmented-clusters") &&
                      (long long)r.compressed_clusters == json_num(json, "compressed-clusters") &&
                      (long long)r.total_clusters == json_num(json, "total-clusters"),
                      "%s: ours %d/%d/%d end %lld alloc %llu frag %llu comp %llu; qemu-img: %s",
                      cases[i].what, r.corruptions, r.leaks, r.check_errors,
                      (long long)r.image_end_offset, (unsigned long long)r.allocated_clusters,
                      (unsigned long long)r.fragmented_clusters,
                      (unsigned long long)r.compressed_clusters, json);
    }
}
END_TEST

START_TEST(qcow2_check_overlap_and_structure)
{
    const char *f = P("o.qcow2");
    BlockDriverState *bs;
    BdrvCheckResult r;
    uint64_t l2;

    create_img(f, "size=16M");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 65536, 1);
    bdrv_close(bs);
    l2 = rd64(f, rd64(f, 40)) & L1E_OFFSET_MASK;

    /* An L2 entry naming the refcount table: two references to one cluster. */
    wr64(f, l2 + 8 * 6, 0x10000 | QCOW_OFLAG_COPIED);
    bs = open_img(f, 0);
    r = check_img(bs, 0);
    ck_assert_int_eq(r.corruptions, 1);
    bdrv_close(bs);
    wr64(f, l2 + 8 * 6, 0);

    /* A refcount table entry with its low bits set: the structure must be rebuilt. */
    wr64(f, 0x10000, 0x20200);
    bs = open_img(f, BDRV_O_RDWR);
    r = check_img(bs, 0);
    ck_assert_int_ge(r.corruptions, 1);
    ck_assert_int_gt(r.check_errors, 0);
    r = check_img(bs, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
    ck_assert_int_eq(r.corruptions, 0);
    check_pattern(bs, 0, 65536, 1);
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);

    /* Writes never land on metadata, even when refcounts claim it is free. */
    create_img(f, "size=16M");
    wr16(f, 0x20000 + 2 * 1, 0);   /* the refcount table's own count */
    bs = open_img(f, BDRV_O_RDWR);
    {
        uint8_t b[512] = { 1 };
        int ret = bdrv_pwrite(bs, 0, b, 512);
        ck_assert_int_eq(ret, -EIO);
    }
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, 0x10000), 0x20000);
    ck_assert_uint_eq(rd64(f, 72) & QCOW2_INCOMPAT_CORRUPT, QCOW2_INCOMPAT_CORRUPT);
}
END_TEST

START_TEST(qcow2_dirty_image_rebuilt_on_open)
{
    const char *f = P("l.qcow2");
    BlockDriverState *bs;

    create_img(f, "size=16M,lazy_refcounts=on");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 307200, 1);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    /* The dirty bit is on while the image is open for writing. */
    ck_assert_uint_eq(rd64(f, 72) & QCOW2_INCOMPAT_DIRTY, QCOW2_INCOMPAT_DIRTY);
    ck_assert_int_eq(bdrv_is_dirty(bs), 1);
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, 72) & QCOW2_INCOMPAT_DIRTY, 0);

    /* Simulate a crash with lazy refcounts: data referenced, refcounts lost. */
    for (int c = 4; c < 12; c++) {
        wr16(f, 0x20000 + 2 * c, 0);
    }
    wr64(f, 72, QCOW2_INCOMPAT_DIRTY);
    bs = open_img(f, 0);   /* read-only: allowed, nothing repaired */
    check_pattern(bs, 0, 307200, 1);
    ck_assert_int_eq(bdrv_is_dirty(bs), 1);
    bdrv_close(bs);
    bs = open_img(f, BDRV_O_RDWR);   /* read-write: rebuilt, then clean */
    ck_assert_int_eq(bdrv_is_dirty(bs), 0);
    check_pattern(bs, 0, 307200, 1);
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, 72) & QCOW2_INCOMPAT_DIRTY, 0);
    assert_clean(f);
    qemu_check_clean(f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Resize                                                              */

START_TEST(qcow2_truncate_grow_and_shrink)
{
    const char *f = P("t.qcow2");
    BlockDriverState *bs;
    BdrvError err = { 0 };
    uint64_t before;

    /* 4 KiB clusters: one L2 table covers 2 MiB, so growing to 64 MiB grows the L1. */
    create_img(f, "size=4M,cluster_size=4096");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 1 << 20, 1);
    write_pattern(bs, 3 << 20, 1 << 20, 2);
    ck_assert_int_eq(bdrv_truncate(bs, 64 << 20, BDRV_PREALLOC_OFF, &err), 0);
    ck_assert_uint_eq(rd64(f, 24), 64u << 20);
    ck_assert_uint_eq(rd32(f, 36), 32);
    ck_assert_int_eq(bdrv_getlength(bs), 64 << 20);
    check_pattern(bs, 3 << 20, 1 << 20, 2);
    check_byte(bs, 4 << 20, 1 << 20, 0);
    write_pattern(bs, 60 << 20, 65536, 3);
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);

    /* Shrink: the tail's clusters are freed and the file gives its end back. */
    before = file_size(f);
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_truncate(bs, 2 << 20, BDRV_PREALLOC_OFF, &err), 0);
    ck_assert_int_eq(bdrv_getlength(bs), 2 << 20);
    check_pattern(bs, 0, 1 << 20, 1);
    bdrv_close(bs);
    ck_assert_uint_lt(file_size(f), before);
    ck_assert_uint_eq(rd64(f, 24), 2u << 20);
    assert_clean(f);
    qemu_check_clean(f);

    /* Grow with metadata preallocation. */
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_truncate(bs, 3 << 20, BDRV_PREALLOC_METADATA, &err), 0);
    check_byte(bs, 2 << 20, 1 << 20, 0);
    bdrv_close(bs);
    ck_assert_uint_ne(l2_entry(f, (2 << 20) + 4096) & L2E_OFFSET_MASK, 0);
    assert_clean(f);
    /* Growing and shrinking leave the very bytes qemu-img resize leaves. */
    if (qemu_img()) {
        static const char *const sizes[] = { "200M", "1M", "2G", "3M" };
        const char *q = P("q.qcow2");
        for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
            const char *args[] = { "resize", "-q", "--shrink", "-f", "qcow2", q, sizes[i], NULL };
            uint64_t sz;
            uint8_t *a, *b;
            uint64_t n;

            copy_file(f, q);
            ck_assert_int_eq(run_qemu_img(args), 0);
            ck_assert_int_eq(bdrv_parse_size(sizes[i], &sz), 0);
            bs = open_img(f, BDRV_O_RDWR);
            ck_assert_int_eq(bdrv_truncate(bs, sz, BDRV_PREALLOC_OFF, &err), 0);
            bdrv_close(bs);
            n = file_size(f);
            ck_assert_uint_eq(n, file_size(q));
            a = malloc(n);
            b = malloc(n);
            file_read(f, 0, a, n);
            file_read(q, 0, b, n);
            ck_assert_msg(memcmp(a, b, n) == 0, "resize to %s: files differ", sizes[i]);
            free(a);
            free(b);
        }
    }
    /* Unaligned sizes are refused. */
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_truncate(bs, (3 << 20) + 100, BDRV_PREALLOC_OFF, &err), -EINVAL);
    bdrv_close(bs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Snapshots                                                           */

START_TEST(qcow2_snapshot_create_goto_delete)
{
    const char *f = P("s.qcow2");
    BlockDriverState *bs;
    BdrvError err = { 0 };
    BdrvSnapshotInfo *list;
    int n;

    create_img(f, "size=8M");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 1 << 20, 1);
    ck_assert_int_eq(qcow2_snapshot_create(bs, "before", &err), 0);
    /* A second snapshot of the same name is allowed, as in QEMU: only ids are unique. */
    ck_assert_int_eq(qcow2_snapshot_create(bs, "before", &err), 0);
    ck_assert_int_eq(qcow2_snapshot_delete(bs, "2", &err), 0);
    /* The data clusters are shared now: COPIED is cleared, writes copy. */
    ck_assert_uint_eq(l2_entry(f, 0) & QCOW_OFLAG_COPIED, 0);
    write_pattern(bs, 65536, 65536, 2);
    write_pattern(bs, 4 << 20, 65536, 3);
    check_pattern(bs, 65536, 65536, 2);
    ck_assert_int_eq(qcow2_snapshot_list(bs, &list, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(list[0].id, "1");
    ck_assert_str_eq(list[0].name, "before");
    ck_assert_uint_eq(list[0].disk_size, 8 << 20);
    bdrv_snapshot_list_free(list, n);
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);
    {
        const char *args[] = { "snapshot", "-l", f, NULL };
        int rc = run_qemu_img(args);
        ck_assert(rc == -1 || rc == 0);
    }

    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_int_eq(qcow2_snapshot_goto(bs, "before", &err), 0);
    check_pattern(bs, 0, 1 << 20, 1);
    check_byte(bs, 4 << 20, 65536, 0);
    ck_assert_int_eq(qcow2_snapshot_goto(bs, "nope", &err), -ENOENT);
    bdrv_close(bs);
    assert_clean(f);
    qemu_check_clean(f);

    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 4096, 5);
    ck_assert_int_eq(qcow2_snapshot_delete(bs, "1", &err), 0);
    ck_assert_int_eq(qcow2_snapshot_list(bs, &list, &n), 0);
    ck_assert_int_eq(n, 0);
    check_pattern(bs, 0, 4096, 5);
    bdrv_close(bs);
    ck_assert_uint_eq(rd32(f, 60), 0);
    assert_clean(f);
    qemu_check_clean(f);
    /* With the snapshot gone, the remaining clusters are ours alone again. */
    ck_assert_uint_eq(l2_entry(f, 512 * 1024) & QCOW_OFLAG_COPIED, QCOW_OFLAG_COPIED);
}
END_TEST

static Suite *qcow2_suite(void)
{
    Suite *s = suite_create("qcow2");
    TCase *tc;

    tc = tcase_create("create");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, qcow2_probe_scores);
    tcase_add_test(tc, qcow2_create_layout_matches_qemu);
    tcase_add_test(tc, qcow2_create_with_backing_records_name_and_format);
    tcase_add_test(tc, qcow2_create_options_rejected);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, qcow2_hostile_headers_refused);
    tcase_add_test(tc, qcow2_hostile_snapshot_and_extension_fields);
    tcase_add_test(tc, qcow2_corrupt_bit_allows_read_only);
    tcase_add_test(tc, qcow2_unknown_extension_and_autoclear);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, qcow2_write_maps_like_qemu);
    tcase_add_test(tc, qcow2_discard_semantics_match_qemu);
    tcase_add_test(tc, qcow2_check_after_discard_sees_pending_frees);
    tcase_add_test(tc, qcow2_shared_read_serves_only_cached_tables);
    tcase_add_test(tc, qcow2_native_read_holds_its_cluster);
    tcase_add_test(tc, qcow2_new_cluster_past_eof_writes_data_only);
    tcase_add_test(tc, qcow2_cow_from_backing_and_short_backing);
    tcase_add_test(tc, qcow2_extended_l2_subclusters);
    tcase_add_test(tc, qcow2_compressed_cluster_read_and_overwrite);
    tcase_add_test(tc, qcow2_refcount_entry_widths);
    tcase_add_test(tc, qcow2_random_io_matches_mirror);
    tcase_add_test(tc, qcow2_refcount_table_grows);
    suite_add_tcase(s, tc);

    tc = tcase_create("check");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, qcow2_check_counts_and_repairs);
    tcase_add_test(tc, qcow2_check_overlap_and_structure);
    tcase_add_test(tc, qcow2_check_counts_match_qemu_img);
    tcase_add_test(tc, qcow2_dirty_image_rebuilt_on_open);
    suite_add_tcase(s, tc);

    tc = tcase_create("resize_snapshot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, qcow2_truncate_grow_and_shrink);
    tcase_add_test(tc, qcow2_snapshot_create_goto_delete);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qcow2_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
