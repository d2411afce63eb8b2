/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* maint.c: image maintenance through the facade: consistency checks, resizing, measuring. */

#include <errno.h>
#include <string.h>

#include "internal.h"

/*
 * The state must be open; state.c has the same test for its own calls, but
 * keeps it private, and it is too small to be worth sharing.
 */
static int maint_check_open(QBroker *broker, const char *func, QBlockState *qbs)
{
    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: %s", func,
                       qbs ? "the state is not open" : "NULL state");
    }
    return 0;
}

int qb_check(QBroker *broker, QBlockState *qbs, int fix, QBlockCheckResult *res)
{
    BdrvCheckResult r;
    BdrvError err = { 0 };
    int ret, bfix = 0;

    QB_REQUIRE_BROKER(broker);

    ret = maint_check_open(broker, "qb_check", qbs);
    if (ret < 0) {
        return ret;
    }
    if (!res) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_check: '%s': NULL result",
                       qbs->filename);
    }
    memset(res, 0, sizeof(*res));
    if (fix & ~(QB_CHECK_FIX_LEAKS | QB_CHECK_FIX_ERRORS)) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_check: '%s': unknown fix bits 0x%x",
                       qbs->filename, (unsigned)(fix & ~(QB_CHECK_FIX_LEAKS | QB_CHECK_FIX_ERRORS)));
    }
    if (fix && !(qbs->flags & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS,
                       "qb_check: '%s': repairing needs the image opened read-write",
                       qbs->filename);
    }
    /* The public bits are spelled out so that they need not equal the internal ones. */
    if (fix & QB_CHECK_FIX_LEAKS) {
        bfix |= BDRV_FIX_LEAKS;
    }
    if (fix & QB_CHECK_FIX_ERRORS) {
        bfix |= BDRV_FIX_ERRORS;
    }
    memset(&r, 0, sizeof(r));
    /*
     * The check runs alone on the state: with requests in flight it could
     * count a cluster a write has allocated but not yet linked as a leak,
     * and a repair could free it.
     */
    state_exclusive_begin(qbs);
    ret = bdrv_check(qbs->bs, &r, bfix, &err);
    state_exclusive_end(qbs);
    if (ret < 0) {
        return qb_fail_errno(broker, ret, &err, "qb_check", qbs->filename);
    }
    res->corruptions = r.corruptions;
    res->leaks = r.leaks;
    res->check_errors = r.check_errors;
    res->corruptions_fixed = r.corruptions_fixed;
    res->leaks_fixed = r.leaks_fixed;
    res->image_end_offset = r.image_end_offset;
    res->allocated_clusters = r.allocated_clusters;
    res->total_clusters = r.total_clusters;
    res->fragmented_clusters = r.fragmented_clusters;
    res->compressed_clusters = r.compressed_clusters;
    return 0;
}

int qb_truncate(QBroker *broker, QBlockState *qbs, uint64_t size)
{
    BdrvError err = { 0 };
    int ret;

    QB_REQUIRE_BROKER(broker);

    ret = maint_check_open(broker, "qb_truncate", qbs);
    if (ret < 0) {
        return ret;
    }
    if (!(qbs->flags & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS,
                       "qb_truncate: '%s': the image is opened read-only", qbs->filename);
    }
    /*
     * The size goes to the format unrounded: qemu-img resize does not round
     * either, and each format decides which sizes it accepts.
     */
    /* Requests in flight were checked against the old size: they finish first. */
    state_exclusive_begin(qbs);
    ret = bdrv_truncate(qbs->bs, size, BDRV_PREALLOC_OFF, &err);
    state_exclusive_end(qbs);
    if (ret < 0) {
        return qb_fail_errno(broker, ret, &err, "qb_truncate", qbs->filename);
    }
    return 0;
}

int qb_measure(QBroker *broker, const QBlockFmtInfo *fmt, QBlockState *src,
               QBlockMeasureInfo *info)
{
    BdrvError err = { 0 };
    BlockMeasureInfo m;
    BdrvOpts opts;
    const char *fname;
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!fmt || !info) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_measure: NULL %s",
                       fmt ? "info" : "format");
    }
    memset(info, 0, sizeof(*info));
    fname = qb_fmttype2str(fmt->fmt_type);
    if (!fname) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_measure: unknown format %d",
                       (int)fmt->fmt_type);
    }
    if (src) {
        ret = maint_check_open(broker, "qb_measure", src);
        if (ret < 0) {
            return ret;
        }
    }
    bdrv_opts_init(&opts);
    ret = qb_fmt_info_to_opts(broker, fmt, &opts);
    if (ret == 0) {
        state_shared_begin(src);
        ret = bdrv_measure(fname, &opts, src ? src->bs : NULL, &m, &err);
        state_shared_end(src);
        if (ret < 0) {
            ret = qb_fail_errno(broker, ret, &err, "qb_measure", src ? src->filename : NULL);
        }
    }
    bdrv_opts_free(&opts);
    if (ret < 0) {
        return ret;
    }
    info->required = m.required;
    info->fully_allocated = m.fully_allocated;
    info->bitmaps = m.bitmaps;
    info->has_bitmaps = m.has_bitmaps;
    return 0;
}
