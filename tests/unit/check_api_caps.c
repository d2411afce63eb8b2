/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_api_caps.c: qb_fmt_get_caps, qb_fmt_get_create_options and
 * qb_write_zeroes through the public API; every capability a format claims
 * is exercised, and every one it denies is shown to be refused.
 */
#include "qbtest.h"

#include <sys/wait.h>
#include <unistd.h>

/* CONFIG_RBD: whether this build reaches Ceph (rbd's capabilities depend on it). */
#if defined(__has_include)
#if __has_include("config-host.h")
#include "config-host.h"
#endif
#endif

#define KiB 1024ULL
#define MiB (1024ULL * 1024ULL)

/* Runs a shell command (qemu-img as an independent writer); true when it exits 0. */
static bool run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool run_cmd(const char *fmt, ...)
{
    char cmd[4 * PATH_MAX];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The create option @name of @fmt, or NULL. */
static const QBlockOptionDesc *find_opt(QBroker *b, enum QBlockFmtType fmt, const char *name)
{
    const QBlockOptionDesc *list;
    int count;

    ck_assert_int_eq(qb_fmt_get_create_options(b, fmt, &list, &count), 0);
    for (int i = 0; i < count; i++) {
        if (strcmp(list[i].name, name) == 0) {
            return &list[i];
        }
    }
    return NULL;
}

/* Creates an image of @fmt from an options string; returns qb_create's result. */
static int create_with(QBroker *b, enum QBlockFmtType fmt, const char *path, const char *opts)
{
    QBlockState *qbs = NULL;
    QBlockFmtInfo *fi = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    int ret;

    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ck_assert_int_eq(qb_fmt_info_new(b, &fi), 0);
    fi->fmt_type = fmt;
    ret = qb_fmt_info_set_options(b, fi, opts);
    if (ret == 0) {
        ret = qb_create(b, qbs, &loc, fi, 0);
    }
    qb_fmt_info_delete(b, &fi);
    qb_state_delete(b, &qbs);
    return ret;
}

static void expect_range(QBroker *b, QBlockState *qbs, uint64_t off, uint64_t len, uint8_t v,
                         const char *what)
{
    uint8_t *buf = malloc(len);

    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(qb_read(b, qbs, buf, len, off) == (int64_t)len, "%s: read: %s", what,
                  qbt_msg(b));
    qbt_assert_bytes(buf, v, len, what);
    free(buf);
}

static void fill_range(QBroker *b, QBlockState *qbs, uint64_t off, uint64_t len, uint8_t v)
{
    uint8_t *buf = malloc(len);

    ck_assert_ptr_nonnull(buf);
    memset(buf, v, len);
    ck_assert_msg(qb_write(b, qbs, buf, len, off) == (int64_t)len, "write: %s", qbt_msg(b));
    free(buf);
}

/*
 * A fresh 1 MiB image of @fmt at @path; cow cannot exist without a base,
 * so it gets a raw one of the same size (the base is all zeros).
 */
static void make_image(QBroker *b, enum QBlockFmtType fmt, const char *path)
{
    char opts[PATH_MAX + 64];
    int ret;

    if (fmt == QB_FMT_COW) {
        char base[PATH_MAX];
        snprintf(base, sizeof(base), "%s.base", path);
        qbt_create_raw(b, base, 1 * MiB);
        snprintf(opts, sizeof(opts), "size=1M,backing_file=%s", base);
    } else {
        snprintf(opts, sizeof(opts), "size=1M");
    }
    ret = create_with(b, fmt, path, opts);
    ck_assert_msg(ret == 0, "create %s: %d %s", qb_fmttype2str(fmt), ret, qbt_msg(b));
}

/*
 * A 1 MiB base image at @base (raw under cow, else of @fmt itself, since
 * vmdk only takes vmdk bases) holding @pattern, and an image of @fmt at
 * @top that names it as its backing file.
 */
static void make_overlay(QBroker *b, enum QBlockFmtType fmt, const char *base, const char *top,
                         uint8_t pattern)
{
    enum QBlockFmtType base_fmt = fmt == QB_FMT_COW ? QB_FMT_RAW : fmt;
    char opts[2 * PATH_MAX];
    QBlockState *qbs;

    ck_assert_int_eq(create_with(b, base_fmt, base, "size=1M"), 0);
    qbs = qbt_open_fmt(b, base_fmt, base, LIBQBLOCK_O_RDWR);
    fill_range(b, qbs, 0, 1 * MiB, pattern);
    qbt_close(b, &qbs);
    snprintf(opts, sizeof(opts), "size=1M,backing_file=%s", base);
    if (find_opt(b, fmt, "backing_fmt")) {
        snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), ",backing_fmt=%s",
                 qb_fmttype2str(base_fmt));
    }
    ck_assert_msg(create_with(b, fmt, top, opts) == 0, "%s overlay: %s", qb_fmttype2str(fmt),
                  qbt_msg(b));
}

/* ------------------------------------------------------------------ */
/* Argument errors                                                     */

START_TEST(caps_argument_errors)
{
    QBroker *b = NULL;
    QBlockFmtCaps caps;
    const QBlockOptionDesc *list;
    int count;

    ck_assert_int_eq(qb_fmt_get_caps(NULL, QB_FMT_RAW, &caps), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_fmt_get_caps(b, QB_FMT_RAW, NULL), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_fmt_get_caps(b, QB_FMT_NONE, &caps), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_fmt_get_caps(b, QB_FMT_MAX, &caps), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_fmt_get_caps(b, (enum QBlockFmtType)-1, &caps), QB_ERR_INVALID_PARAM);
    ck_assert_ptr_nonnull(strstr(qbt_msg(b), "qb_fmt_get_caps"));

    ck_assert_int_eq(qb_fmt_get_create_options(NULL, QB_FMT_RAW, &list, &count),
                     QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_fmt_get_create_options(b, QB_FMT_RAW, NULL, &count),
                     QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_fmt_get_create_options(b, QB_FMT_RAW, &list, NULL),
                     QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_fmt_get_create_options(b, QB_FMT_NONE, &list, &count),
                     QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_fmt_get_create_options(b, QB_FMT_MAX, &list, &count),
                     QB_ERR_INVALID_PARAM);
    qb_broker_delete(&b);
}
END_TEST

/* Formats without a driver claim nothing, and creating or opening them is refused. */
START_TEST(caps_driverless_formats_claim_nothing)
{
    static const enum QBlockFmtType none[] = { QB_FMT_SHEEPDOG };
    QBroker *b = NULL;
    char path[PATH_MAX], raw[PATH_MAX];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(raw, sizeof(raw), "driverless.raw");
    qbt_create_raw(b, raw, 1 * MiB);
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        QBlockFmtCaps caps;
        const QBlockOptionDesc *list;
        QBlockState *qbs = NULL;
        QBlockProtInfo loc = qbt_loc(raw);
        QBlockFmtInfo fi;
        int count;

        memset(&caps, 0xff, sizeof(caps));
        ck_assert_int_eq(qb_fmt_get_caps(b, none[i], &caps), 0);
        ck_assert_uint_eq(caps.flags, 0);
        ck_assert_uint_eq(caps.prealloc_modes, 0);
        ck_assert_int_eq(qb_fmt_get_create_options(b, none[i], &list, &count),
                         QB_ERR_NOT_SUPPORTED);
        qbt_path(path, sizeof(path), "driverless.img");
        ck_assert_int_eq(create_with(b, none[i], path, "size=1M"), QB_ERR_NOT_SUPPORTED);
        memset(&fi, 0, sizeof(fi));
        fi.fmt_type = none[i];
        ck_assert_int_eq(qb_state_new(b, &qbs), 0);
        ck_assert_int_eq(qb_open(b, qbs, &loc, &fi, 0), QB_ERR_NOT_SUPPORTED);
        qb_state_delete(b, &qbs);
    }
    qb_broker_delete(&b);
}
END_TEST

/*
 * Format rbd is raw data on an RBD image: with librbd it claims what the
 * RBD driver does (create with size and object size, write, resize both
 * ways, discard, zeros when new) and nothing it does not (backing files,
 * snapshots, check, preallocation); without librbd it claims nothing. Its
 * data lives only in Ceph, so a local file is refused either way.
 */
START_TEST(caps_rbd_claims_the_rbd_driver)
{
    const uint64_t want = QB_CAP_OPEN | QB_CAP_CREATE | QB_CAP_WRITE | QB_CAP_RESIZE_GROW |
                          QB_CAP_RESIZE_SHRINK | QB_CAP_DISCARD | QB_CAP_ZERO_INIT;
    const QBlockOptionDesc *list;
    QBlockFmtCaps caps;
    QBroker *b = NULL;
    char path[PATH_MAX];
    int count;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    memset(&caps, 0xff, sizeof(caps));
    ck_assert_int_eq(qb_fmt_get_caps(b, QB_FMT_RBD, &caps), 0);
    ck_assert_uint_eq(caps.prealloc_modes, 0);
#ifdef CONFIG_RBD
    ck_assert_uint_eq(caps.flags, want);
    ck_assert_int_eq(qb_fmt_get_create_options(b, QB_FMT_RBD, &list, &count), 0);
    ck_assert_int_eq(count, 2);
    ck_assert_str_eq(list[0].name, "size");
    ck_assert_str_eq(list[1].name, "cluster_size");
    for (int i = 0; i < count; i++) {
        ck_assert_int_eq(list[i].type, QB_OPT_TYPE_SIZE);
        ck_assert_uint_eq(list[i].flags, QB_OPT_F_SETTABLE);
    }
#else
    (void)want;
    ck_assert_uint_eq(caps.flags, 0);
    ck_assert_int_eq(qb_fmt_get_create_options(b, QB_FMT_RBD, &list, &count),
                     QB_ERR_NOT_SUPPORTED);
#endif
    qbt_path(path, sizeof(path), "not-in-ceph.rbd");
    ck_assert_int_eq(create_with(b, QB_FMT_RBD, path, "size=1M"), QB_ERR_NOT_SUPPORTED);
    ck_assert_int_eq(access(path, F_OK), -1);
    qb_broker_delete(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Every claim exercised, every denial refused                         */

static void check_backing(QBroker *b, enum QBlockFmtType fmt, const QBlockFmtCaps *caps)
{
    char base[PATH_MAX], top[PATH_MAX];
    QBlockState *qbs;

    qbt_path(top, sizeof(top), "backing-top.img");
    if (!(caps->flags & QB_CAP_BACKING)) {
        /* Nothing to name a backing file with: the option does not exist. */
        ck_assert_ptr_null(find_opt(b, fmt, "backing_file"));
        ck_assert_int_eq(create_with(b, fmt, top, "size=1M,backing_file=x"),
                         QB_ERR_INVALID_PARAM);
        return;
    }
    qbt_path(base, sizeof(base), "backing-base.img");
    make_overlay(b, fmt, base, top, 0x3c);
    qbs = qbt_open_fmt(b, fmt, top, 0);
    expect_range(b, qbs, 128 * KiB, 64 * KiB, 0x3c, "data from the backing file");
    qbt_close(b, &qbs);
}

static void check_prealloc(QBroker *b, enum QBlockFmtType fmt, const QBlockFmtCaps *caps)
{
    static const char *const modes[] = { "off", "metadata", "falloc", "full" };
    char path[PATH_MAX], opts[64];

    qbt_path(path, sizeof(path), "prealloc.img");
    for (unsigned m = 0; m < 4; m++) {
        int ret;

        snprintf(opts, sizeof(opts), "size=1M,preallocation=%s", modes[m]);
        ret = create_with(b, fmt, path, opts);
        if (!(caps->prealloc_modes & (1U << m))) {
            /* As in qemu-img, a mode a format lacks is an invalid option value. */
            ck_assert_msg(ret == QB_ERR_INVALID_PARAM, "%s %s: %d", qb_fmttype2str(fmt),
                          modes[m], ret);
            continue;
        }
        ck_assert_msg(ret == 0, "%s %s: %s", qb_fmttype2str(fmt), modes[m], qbt_msg(b));
        if (m >= 2) {
            /* falloc and full reserve the whole disk in the file. */
            QBlockState *qbs = qbt_open_fmt(b, fmt, path, 0);
            ck_assert_int_ge(qb_get_allocated_file_size(b, qbs), (int64_t)(1 * MiB));
            qbt_close(b, &qbs);
        }
    }
}

static void check_one_format(QBroker *b, enum QBlockFmtType fmt)
{
    const char *name = qb_fmttype2str(fmt);
    char path[PATH_MAX], fname[64];
    QBlockFmtCaps caps;
    QBlockCheckResult res;
    QBlockStaticInfo *info = NULL;
    QBlockState *qbs;
    int ret;

    ck_assert_int_eq(qb_fmt_get_caps(b, fmt, &caps), 0);
    /* Every format with a driver opens, creates and writes in this build. */
    ck_assert_msg((caps.flags & (QB_CAP_OPEN | QB_CAP_CREATE | QB_CAP_WRITE)) ==
                  (QB_CAP_OPEN | QB_CAP_CREATE | QB_CAP_WRITE), "%s: 0x%" PRIx64, name,
                  caps.flags);
    ck_assert_msg(!(caps.flags & QB_CAP_REPAIR) || (caps.flags & QB_CAP_CHECK), "%s", name);
    ck_assert_msg(!(caps.flags & QB_CAP_RESIZE_SHRINK) || (caps.flags & QB_CAP_RESIZE_GROW),
                  "%s", name);

    snprintf(fname, sizeof(fname), "caps.%s", name);
    qbt_path(path, sizeof(path), fname);
    make_image(b, fmt, path);
    qbs = qbt_open_fmt(b, fmt, path, LIBQBLOCK_O_RDWR);

    /* Zero-init: a new image reads as zeros and says so; otherwise it does not claim it. */
    ret = qb_has_zero_init(b, qbs);
    if (caps.flags & QB_CAP_ZERO_INIT) {
        ck_assert_msg(ret == 1, "%s has_zero_init %d", name, ret);
        expect_range(b, qbs, 0, 1 * MiB, 0, "a new image");
    } else {
        ck_assert_msg(ret == 0, "%s has_zero_init %d", name, ret);
    }

    /* Discard: released ranges read as zeros; without it, discard is ignored. */
    fill_range(b, qbs, 0, 256 * KiB, 0xa5);
    ck_assert_int_eq(qb_discard(b, qbs, 0, 256 * KiB), 0);
    expect_range(b, qbs, 0, 256 * KiB, (caps.flags & QB_CAP_DISCARD) ? 0 : 0xa5,
                 (caps.flags & QB_CAP_DISCARD) ? "discarded range" : "range discard ignored");

    /* Check and repair. */
    memset(&res, 0, sizeof(res));
    ret = qb_check(b, qbs, 0, &res);
    if (caps.flags & QB_CAP_CHECK) {
        ck_assert_msg(ret == 0, "%s check: %s", name, qbt_msg(b));
        ck_assert_int_eq(res.corruptions, 0);
    } else {
        ck_assert_msg(ret == QB_ERR_NOT_SUPPORTED, "%s check: %d", name, ret);
    }
    ret = qb_check(b, qbs, QB_CHECK_FIX_LEAKS | QB_CHECK_FIX_ERRORS, &res);
    if (caps.flags & QB_CAP_REPAIR) {
        ck_assert_msg(ret == 0, "%s repair: %s", name, qbt_msg(b));
    } else {
        ck_assert_msg(ret == QB_ERR_NOT_SUPPORTED, "%s repair: %d", name, ret);
    }

    /* Grow, then shrink. */
    ret = qb_truncate(b, qbs, 2 * MiB);
    if (caps.flags & QB_CAP_RESIZE_GROW) {
        ck_assert_msg(ret == 0, "%s grow: %s", name, qbt_msg(b));
        ck_assert_int_eq(qb_info_image_static_get(b, qbs, &info), 0);
        ck_assert_uint_eq(info->virt_size, 2 * MiB);
        qb_info_image_static_delete(b, &info);
        expect_range(b, qbs, 1 * MiB, 1 * MiB, 0, "grown part");
    } else {
        ck_assert_msg(ret == QB_ERR_NOT_SUPPORTED, "%s grow: %d", name, ret);
    }
    ret = qb_truncate(b, qbs, 512 * KiB);
    if (caps.flags & QB_CAP_RESIZE_SHRINK) {
        ck_assert_msg(ret == 0, "%s shrink: %s", name, qbt_msg(b));
        ck_assert_int_eq(qb_info_image_static_get(b, qbs, &info), 0);
        ck_assert_uint_eq(info->virt_size, 512 * KiB);
        qb_info_image_static_delete(b, &info);
    } else {
        ck_assert_msg(ret == QB_ERR_NOT_SUPPORTED, "%s shrink: %d", name, ret);
    }
    qbt_close(b, &qbs);

    check_backing(b, fmt, &caps);
    check_prealloc(b, fmt, &caps);
}

START_TEST(caps_claims_match_behaviour)
{
    QBroker *b = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    for (int f = QB_FMT_NONE + 1; f < QB_FMT_MAX; f++) {
        QBlockFmtCaps caps;
        ck_assert_int_eq(qb_fmt_get_caps(b, (enum QBlockFmtType)f, &caps), 0);
        /* RBD images live in a Ceph cluster: interop 620 checks rbd's claims against one. */
        if ((caps.flags & QB_CAP_OPEN) && f != QB_FMT_RBD) {
            check_one_format(b, (enum QBlockFmtType)f);
        }
    }
    qb_broker_delete(&b);
}
END_TEST

/*
 * Compressed data and internal snapshots have no public API to make them,
 * so qemu-img makes them and libqblock must read (and keep) them.
 */
START_TEST(caps_compressed_read_and_snapshots_with_qemu)
{
    const char *qimg = qbt_qemu_img();
    const char *qio = getenv("QEMU_IO");
    char qio_buf[PATH_MAX];
    QBroker *b = NULL;
    char src[PATH_MAX], dst[PATH_MAX];
    int checked = 0;

    ck_assert_msg(qimg != NULL, "qemu-img is needed to make compressed images");
    if (!qio || !*qio) {
        /* qemu-io sits next to qemu-img. */
        size_t n = strlen(qimg);
        ck_assert(n >= 8 && n + 1 < sizeof(qio_buf));
        snprintf(qio_buf, sizeof(qio_buf), "%.*sqemu-io", (int)(n - 8), qimg);
        qio = access(qio_buf, X_OK) == 0 ? qio_buf : NULL;
    }
    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(src, sizeof(src), "compress-src.raw");
    qbt_create_raw(b, src, 1 * MiB);
    {
        QBlockState *qbs = qbt_open_fmt(b, QB_FMT_RAW, src, LIBQBLOCK_O_RDWR);
        fill_range(b, qbs, 0, 1 * MiB, 0x61);
        qbt_close(b, &qbs);
    }
    for (int f = QB_FMT_NONE + 1; f < QB_FMT_MAX; f++) {
        const char *name = qb_fmttype2str((enum QBlockFmtType)f);
        char fname[64];
        QBlockFmtCaps caps;
        QBlockState *qbs;
        bool ok = true;

        ck_assert_int_eq(qb_fmt_get_caps(b, (enum QBlockFmtType)f, &caps), 0);
        if (!(caps.flags & QB_CAP_COMPRESSED_READ)) {
            continue;
        }
        snprintf(fname, sizeof(fname), "compressed.%s", name);
        qbt_path(dst, sizeof(dst), fname);
        if (f == QB_FMT_VMDK) {
            ok = run_cmd("'%s' convert -O vmdk -o subformat=streamOptimized '%s' '%s'", qimg,
                         src, dst);
        } else if (f == QB_FMT_QCOW) {
            /* qemu-img 7.2's convert -c cannot write qcow; qemu-io writes each cluster. */
            ok = qio && run_cmd("'%s' create -q -f qcow '%s' 1M", qimg, dst);
            for (unsigned k = 0; ok && k < 256; k += 16) {
                char cmds[16 * 64] = "";
                for (unsigned c = k; c < k + 16; c++) {
                    snprintf(cmds + strlen(cmds), sizeof(cmds) - strlen(cmds),
                             " -c 'write -c -P 0x61 %u 4k'", c * 4096);
                }
                ok = run_cmd("'%s' -f qcow %s '%s' >/dev/null", qio, cmds, dst);
            }
        } else {
            ok = run_cmd("'%s' convert -c -O %s '%s' '%s'", qimg, name, src, dst);
        }
        ck_assert_msg(ok, "qemu could not make a compressed %s image", name);
        /* The file must really be compressed: well under the 1 MiB of data. */
        ck_assert_msg(qbt_file_size(dst) < (off_t)(512 * KiB), "%s: %jd bytes", name,
                      (intmax_t)qbt_file_size(dst));
        qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, dst, 0);
        expect_range(b, qbs, 0, 1 * MiB, 0x61, "compressed data");
        qbt_close(b, &qbs);
        checked++;
    }
    ck_assert_int_ge(checked, 1);

    /* Internal snapshots survive a write through libqblock. */
    for (int f = QB_FMT_NONE + 1; f < QB_FMT_MAX; f++) {
        const char *name = qb_fmttype2str((enum QBlockFmtType)f);
        char fname[64];
        QBlockFmtCaps caps;
        QBlockState *qbs;

        ck_assert_int_eq(qb_fmt_get_caps(b, (enum QBlockFmtType)f, &caps), 0);
        if (!(caps.flags & QB_CAP_INTERNAL_SNAPSHOTS)) {
            continue;
        }
        snprintf(fname, sizeof(fname), "snap.%s", name);
        qbt_path(dst, sizeof(dst), fname);
        make_image(b, (enum QBlockFmtType)f, dst);
        qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, dst, LIBQBLOCK_O_RDWR);
        fill_range(b, qbs, 0, 64 * KiB, 0x11);
        qbt_close(b, &qbs);
        ck_assert(run_cmd("'%s' snapshot -c s1 '%s'", qimg, dst));
        qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, dst, LIBQBLOCK_O_RDWR);
        fill_range(b, qbs, 0, 64 * KiB, 0x22);
        qbt_close(b, &qbs);
        ck_assert(run_cmd("'%s' check -q '%s'", qimg, dst));
        ck_assert(run_cmd("'%s' snapshot -l '%s' | grep -q ' s1 '", qimg, dst));
        /* Applying the snapshot with qemu-img brings back what it recorded. */
        ck_assert(run_cmd("'%s' snapshot -a s1 '%s'", qimg, dst));
        qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, dst, 0);
        expect_range(b, qbs, 0, 64 * KiB, 0x11, "data of snapshot s1");
        qbt_close(b, &qbs);
    }
    qb_broker_delete(&b);
}
END_TEST

/* A format claiming compressed writes stores compressible data in far less space. */
START_TEST(caps_compressed_write_shrinks_data)
{
    QBroker *b = NULL;
    int checked = 0;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    for (int f = QB_FMT_NONE + 1; f < QB_FMT_MAX; f++) {
        const QBlockOptionDesc *sub;
        QBlockFmtCaps caps;
        QBlockState *qbs;
        char path[PATH_MAX], name[64];
        bool found = false;

        ck_assert_int_eq(qb_fmt_get_caps(b, (enum QBlockFmtType)f, &caps), 0);
        sub = (caps.flags & QB_CAP_COMPRESSED_WRITE) ?
              find_opt(b, (enum QBlockFmtType)f, "subformat") : NULL;
        if (!sub) {
            /* Formats without subformats compress through qb_write_compressed, or not at all. */
            uint8_t *data;
            int64_t r;

            if (!(caps.flags & QB_CAP_CREATE) || !(caps.flags & QB_CAP_WRITE)) {
                continue;
            }
            snprintf(name, sizeof(name), "cwc.%s", qb_fmttype2str(f));
            qbt_path(path, sizeof(path), name);
            if (create_with(b, (enum QBlockFmtType)f, path, "size=4M") < 0) {
                /* cow needs a backing file; it claims no compression either. */
                ck_assert(!(caps.flags & QB_CAP_COMPRESSED_WRITE));
                continue;
            }
            qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, path, LIBQBLOCK_O_RDWR);
            data = malloc(4 * MiB);
            ck_assert_ptr_nonnull(data);
            memset(data, 0x77, 4 * MiB);
            r = qb_write_compressed(b, qbs, data, 4 * MiB, 0);
            free(data);
            qbt_close(b, &qbs);
            if (!(caps.flags & QB_CAP_COMPRESSED_WRITE)) {
                ck_assert_msg(r == QB_ERR_NOT_SUPPORTED, "%s: qb_write_compressed gave %lld",
                              qb_fmttype2str(f), (long long)r);
                continue;
            }
            ck_assert_msg(r == (int64_t)(4 * MiB), "%s: qb_write_compressed: %lld %s",
                          qb_fmttype2str(f), (long long)r, qbt_msg(b));
            ck_assert_msg(qbt_file_size(path) < (off_t)(1 * MiB), "%s: %jd bytes after "
                          "compressed writes", qb_fmttype2str(f), (intmax_t)qbt_file_size(path));
            qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, path, 0);
            expect_range(b, qbs, 0, 4 * MiB, 0x77, "compressed write");
            qbt_close(b, &qbs);
            checked++;
            continue;
        }
        /* The compressing layout is a subformat choice; try each until one compresses. */
        ck_assert_int_eq(sub->type, QB_OPT_TYPE_ENUM);
        for (const char *const *c = sub->choices; *c && !found; c++) {
            char opts[128];
            snprintf(name, sizeof(name), "cw-%s.%s", *c, qb_fmttype2str(f));
            qbt_path(path, sizeof(path), name);
            snprintf(opts, sizeof(opts), "size=4M,subformat=%s", *c);
            ck_assert_int_eq(create_with(b, (enum QBlockFmtType)f, path, opts), 0);
            qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, path, LIBQBLOCK_O_RDWR);
            fill_range(b, qbs, 0, 4 * MiB, 0x77);
            qbt_close(b, &qbs);
            found = qbt_file_size(path) < (off_t)(1 * MiB);
            if (found) {
                qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, path, 0);
                expect_range(b, qbs, 0, 4 * MiB, 0x77, "compressed write");
                qbt_close(b, &qbs);
            }
        }
        ck_assert_msg(found, "%s claims compressed writes, no subformat compresses",
                      qb_fmttype2str(f));
        checked++;
    }
    ck_assert_int_ge(checked, 2);
    qb_broker_delete(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Create options                                                      */

START_TEST(caps_create_options_are_the_ones_set_options_checks)
{
    QBroker *b = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    for (int f = QB_FMT_NONE + 1; f < QB_FMT_MAX; f++) {
        const QBlockOptionDesc *list, *again;
        QBlockFmtCaps caps;
        int count, count2;
        bool has_size = false;

        ck_assert_int_eq(qb_fmt_get_caps(b, (enum QBlockFmtType)f, &caps), 0);
        if (!(caps.flags & QB_CAP_CREATE)) {
            continue;
        }
        ck_assert_int_eq(qb_fmt_get_create_options(b, (enum QBlockFmtType)f, &list, &count), 0);
        ck_assert_int_gt(count, 0);
        /* Library-owned and stable: a second call gives the same array. */
        ck_assert_int_eq(qb_fmt_get_create_options(b, (enum QBlockFmtType)f, &again, &count2),
                         0);
        ck_assert_ptr_eq(list, again);
        ck_assert_int_eq(count, count2);
        for (int i = 0; i < count; i++) {
            const QBlockOptionDesc *o = &list[i];
            QBlockFmtInfo *fi = NULL;
            char opts[256];
            int ret;

            ck_assert_ptr_nonnull(o->name);
            ck_assert_ptr_nonnull(o->help);
            ck_assert_int_lt(o->type, QB_OPT_TYPE_MAX);
            ck_assert_int_eq(o->type == QB_OPT_TYPE_ENUM, o->choices != NULL);
            has_size |= strcmp(o->name, "size") == 0 && o->type == QB_OPT_TYPE_SIZE;

            ck_assert_int_eq(qb_fmt_info_new(b, &fi), 0);
            fi->fmt_type = (enum QBlockFmtType)f;
            if (!(o->flags & QB_OPT_F_SETTABLE)) {
                snprintf(opts, sizeof(opts), "%s=%s", o->name, o->def ? o->def : "x");
                ck_assert_int_eq(qb_fmt_info_set_options(b, fi, opts), QB_ERR_INVALID_PARAM);
                qb_fmt_info_delete(b, &fi);
                continue;
            }
            /* The default, given explicitly, is accepted. */
            if (o->def) {
                snprintf(opts, sizeof(opts), "%s=%s", o->name, o->def);
                ret = qb_fmt_info_set_options(b, fi, opts);
                ck_assert_msg(ret == 0, "%s %s: %s", qb_fmttype2str(f), opts, qbt_msg(b));
            }
            /* Each listed choice is accepted, a value outside them is not. */
            for (const char *const *c = o->choices; c && *c; c++) {
                snprintf(opts, sizeof(opts), "%s=%s", o->name, *c);
                ret = qb_fmt_info_set_options(b, fi, opts);
                ck_assert_msg(ret == 0, "%s %s: %s", qb_fmttype2str(f), opts, qbt_msg(b));
            }
            if (o->type == QB_OPT_TYPE_ENUM || o->type == QB_OPT_TYPE_BOOL ||
                o->type == QB_OPT_TYPE_SIZE || o->type == QB_OPT_TYPE_NUMBER) {
                snprintf(opts, sizeof(opts), "%s=no-such-value", o->name);
                ck_assert_int_eq(qb_fmt_info_set_options(b, fi, opts), QB_ERR_INVALID_PARAM);
            }
            qb_fmt_info_delete(b, &fi);
        }
        ck_assert_msg(has_size, "%s lists no size option", qb_fmttype2str(f));
    }
    qb_broker_delete(&b);
}
END_TEST

START_TEST(caps_create_options_qcow2_facts)
{
    QBroker *b = NULL;
    const QBlockOptionDesc *o;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    o = find_opt(b, QB_FMT_QCOW2, "cluster_size");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->type, QB_OPT_TYPE_SIZE);
    ck_assert_str_eq(o->def, "65536");
    o = find_opt(b, QB_FMT_QCOW2, "compat");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->type, QB_OPT_TYPE_ENUM);
    ck_assert_str_eq(o->def, "1.1");
    o = find_opt(b, QB_FMT_QCOW2, "lazy_refcounts");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->type, QB_OPT_TYPE_BOOL);
    o = find_opt(b, QB_FMT_QCOW2, "refcount_bits");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->type, QB_OPT_TYPE_NUMBER);
    ck_assert_ptr_null(find_opt(b, QB_FMT_QCOW2, "static"));
    /* Preallocation of raw belongs to the file protocol in qemu-img's listing. */
    o = find_opt(b, QB_FMT_RAW, "preallocation");
    ck_assert_ptr_nonnull(o);
    ck_assert_uint_ne(o->flags & QB_OPT_F_PROTOCOL, 0);
    ck_assert_uint_eq(find_opt(b, QB_FMT_RAW, "size")->flags & QB_OPT_F_PROTOCOL, 0);
    qb_broker_delete(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_write_zeroes                                                     */

START_TEST(write_zeroes_argument_errors)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    char path[PATH_MAX];

    ck_assert_int_eq(qb_write_zeroes(NULL, NULL, 0, 512, 0), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_write_zeroes(b, NULL, 0, 512, 0), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 0, 512, 0), QB_ERR_INVALID_PARAM);  /* not open */
    qb_state_delete(b, &qbs);

    qbt_path(path, sizeof(path), "wz-args.raw");
    qbt_create_raw(b, path, 1 * MiB);
    qbs = qbt_open(b, path, 0, LIBQBLOCK_O_RDWR);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 0, 512, 0x80), QB_ERR_INVALID_PARAM);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 1 * MiB, 1, 0), QB_ERR_BLOCK_OUT_OF_RANGE);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 1 * MiB - 511, 512, 0), QB_ERR_BLOCK_OUT_OF_RANGE);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, UINT64_MAX, 2, 0), QB_ERR_BLOCK_OUT_OF_RANGE);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 1 * MiB, 0, 0), 0);
    ck_assert_ptr_nonnull(strstr(qbt_msg(b), "qb_write_zeroes"));
    qbt_close(b, &qbs);

    qbs = qbt_open(b, path, 0, 0);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 0, 512, 0), QB_ERR_READ_ONLY);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 0, 512, QB_WRITE_ZEROES_MAY_UNMAP),
                     QB_ERR_READ_ONLY);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/*
 * Every format: zeros over data (aligned and unaligned, with and without
 * unmap) read back as zeros, and the bytes around them are untouched.
 */
START_TEST(write_zeroes_read_back_every_format)
{
    static const struct { uint64_t off, len; } ranges[] = {
        { 0, 64 * KiB }, { 100, 1000 }, { 200 * KiB + 7, 130 * KiB }, { 700 * KiB, 1 },
    };
    QBroker *b = NULL;
    uint8_t *buf = malloc(1 * MiB), *want = malloc(1 * MiB);

    ck_assert_ptr_nonnull(buf);
    ck_assert_ptr_nonnull(want);
    ck_assert_int_eq(qb_broker_new(&b), 0);
    for (int f = QB_FMT_NONE + 1; f < QB_FMT_MAX; f++) {
        QBlockFmtCaps caps;

        ck_assert_int_eq(qb_fmt_get_caps(b, (enum QBlockFmtType)f, &caps), 0);
        /* RBD images live in a Ceph cluster, not in local files. */
        if (!(caps.flags & QB_CAP_WRITE) || f == QB_FMT_RBD) {
            continue;
        }
        for (int unmap = 0; unmap < 2; unmap++) {
            char path[PATH_MAX];
            QBlockState *qbs;

            char name[64];

            snprintf(name, sizeof(name), "wz%d.%s", unmap, qb_fmttype2str((enum QBlockFmtType)f));
            qbt_path(path, sizeof(path), name);
            make_image(b, (enum QBlockFmtType)f, path);
            qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, path, LIBQBLOCK_O_RDWR);
            fill_range(b, qbs, 0, 1 * MiB, 0xee);
            memset(want, 0xee, 1 * MiB);
            for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
                int ret = qb_write_zeroes(b, qbs, ranges[i].off, ranges[i].len,
                                          unmap ? QB_WRITE_ZEROES_MAY_UNMAP : 0);
                ck_assert_msg(ret == 0, "%s: %s", path, qbt_msg(b));
                memset(want + ranges[i].off, 0, ranges[i].len);
            }
            qbt_close(b, &qbs);
            /* Reopened, so that what is checked is what reached the file. */
            qbs = qbt_open_fmt(b, (enum QBlockFmtType)f, path, 0);
            ck_assert_int_eq(qb_read(b, qbs, buf, 1 * MiB, 0), (int64_t)(1 * MiB));
            qbt_assert_same(buf, want, 1 * MiB, path);
            qbt_close(b, &qbs);
        }
    }
    free(buf);
    free(want);
    qb_broker_delete(&b);
}
END_TEST

/* Zeros hide a backing file's data, whatever the format does underneath. */
START_TEST(write_zeroes_hide_backing_data)
{
    QBroker *b = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    for (int f = QB_FMT_NONE + 1; f < QB_FMT_MAX; f++) {
        enum QBlockFmtType fmt = (enum QBlockFmtType)f;
        char base[PATH_MAX], top[PATH_MAX], name[64];
        QBlockFmtCaps caps;
        QBlockState *qbs;

        ck_assert_int_eq(qb_fmt_get_caps(b, fmt, &caps), 0);
        if (!(caps.flags & QB_CAP_BACKING)) {
            continue;
        }
        snprintf(name, sizeof(name), "wzb-base.%s", qb_fmttype2str(fmt));
        qbt_path(base, sizeof(base), name);
        snprintf(name, sizeof(name), "wzb-top.%s", qb_fmttype2str(fmt));
        qbt_path(top, sizeof(top), name);
        make_overlay(b, fmt, base, top, 0x99);
        qbs = qbt_open_fmt(b, fmt, top, LIBQBLOCK_O_RDWR);
        ck_assert_int_eq(qb_write_zeroes(b, qbs, 0, 256 * KiB, 0), 0);
        ck_assert_int_eq(qb_write_zeroes(b, qbs, 512 * KiB, 256 * KiB,
                                         QB_WRITE_ZEROES_MAY_UNMAP), 0);
        qbt_close(b, &qbs);
        qbs = qbt_open_fmt(b, fmt, top, 0);
        expect_range(b, qbs, 0, 256 * KiB, 0, "zeros over backing data");
        expect_range(b, qbs, 256 * KiB, 256 * KiB, 0x99, "backing data");
        expect_range(b, qbs, 512 * KiB, 256 * KiB, 0, "unmapped zeros over backing data");
        qbt_close(b, &qbs);
    }
    qb_broker_delete(&b);
}
END_TEST

/* qcow2 v3: without unmap an allocated cluster keeps its host cluster; with it, not. */
START_TEST(write_zeroes_qcow2_unmap_releases_clusters)
{
    QBroker *b = NULL;
    char path[PATH_MAX];
    QBlockState *qbs;
    QBlockStatusInfo st;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "wz-unmap.qcow2");
    ck_assert_int_eq(create_with(b, QB_FMT_QCOW2, path, "size=1M"), 0);
    qbs = qbt_open_fmt(b, QB_FMT_QCOW2, path, LIBQBLOCK_O_RDWR);
    fill_range(b, qbs, 0, 256 * KiB, 0x42);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 0, 64 * KiB, 0), 0);
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 128 * KiB, 64 * KiB, QB_WRITE_ZEROES_MAY_UNMAP), 0);
    /* Never written, zeroed: a zero cluster too. */
    ck_assert_int_eq(qb_write_zeroes(b, qbs, 512 * KiB, 64 * KiB, 0), 0);

    memset(&st, 0, sizeof(st));
    ck_assert_int_eq(qb_block_status(b, qbs, 0, 64 * KiB, &st), 0);
    ck_assert_int_eq(st.flags & (QB_BLOCK_ZERO | QB_BLOCK_DATA | QB_BLOCK_OFFSET_VALID),
                     QB_BLOCK_ZERO | QB_BLOCK_OFFSET_VALID);
    ck_assert_int_eq(qb_block_status(b, qbs, 128 * KiB, 64 * KiB, &st), 0);
    ck_assert_int_eq(st.flags & (QB_BLOCK_ZERO | QB_BLOCK_DATA | QB_BLOCK_OFFSET_VALID),
                     QB_BLOCK_ZERO);
    ck_assert_int_ne(st.flags & QB_BLOCK_ALLOCATED, 0);
    ck_assert_int_eq(qb_block_status(b, qbs, 512 * KiB, 64 * KiB, &st), 0);
    ck_assert_int_eq(st.flags & (QB_BLOCK_ZERO | QB_BLOCK_ALLOCATED),
                     QB_BLOCK_ZERO | QB_BLOCK_ALLOCATED);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

static Suite *caps_suite(void)
{
    Suite *s = suite_create("api_caps");
    TCase *tc = tcase_create("caps");
    TCase *wz = tcase_create("write_zeroes");

    tcase_set_timeout(tc, 120);
    tcase_set_timeout(wz, 120);
    tcase_add_test(tc, caps_argument_errors);
    tcase_add_test(tc, caps_driverless_formats_claim_nothing);
    tcase_add_test(tc, caps_rbd_claims_the_rbd_driver);
    tcase_add_test(tc, caps_claims_match_behaviour);
    tcase_add_test(tc, caps_compressed_read_and_snapshots_with_qemu);
    tcase_add_test(tc, caps_compressed_write_shrinks_data);
    tcase_add_test(tc, caps_create_options_are_the_ones_set_options_checks);
    tcase_add_test(tc, caps_create_options_qcow2_facts);
    suite_add_tcase(s, tc);
    tcase_add_test(wz, write_zeroes_argument_errors);
    tcase_add_test(wz, write_zeroes_read_back_every_format);
    tcase_add_test(wz, write_zeroes_hide_backing_data);
    tcase_add_test(wz, write_zeroes_qcow2_unmap_releases_clusters);
    suite_add_tcase(s, wz);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(caps_suite(), argv[0]);
}
