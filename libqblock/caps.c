/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * caps.c: what each format can do and which create options it takes, read
 * from the format's driver (its callbacks, its caps bits and its create
 * option table), so that the answers cannot drift from the behaviour.
 */

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "block/block_int.h"
#include "internal.h"

/* The driver behind a public format type; NULL when this build has none. */
static int fmt_driver(QBroker *broker, const char *func, enum QBlockFmtType fmt_type,
                      const BlockDriver **pdrv)
{
    const char *name = qb_fmttype2str(fmt_type);

    if (!name) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: %d is not a format type",
                       func, (int)fmt_type);
    }
    *pdrv = bdrv_find_format(name);
    if (fmt_type == QB_FMT_RBD) {
        /*
         * Format rbd is raw data on an RBD image, which the RBD protocol
         * driver creates, reads, writes, resizes and discards: its table
         * answers. Without librbd that driver only refuses (no bdrv_create):
         * nothing to claim.
         */
        const BlockDriver *rbd = bdrv_find_protocol("rbd");
        *pdrv = rbd && rbd->bdrv_create ? rbd : NULL;
    }
    return 0;
}

/*
 * The QB_PREALLOC_MODE_* bits of the choices of @drv's "preallocation"
 * option, when a public caller can set that option at all (its format
 * struct has a member for it).
 */
static uint32_t prealloc_modes(const BlockDriver *drv, enum QBlockFmtType fmt_type)
{
    uint32_t modes = 0;

    if (!qb_fmt_option_settable(fmt_type, "preallocation")) {
        return 0;
    }
    for (const BdrvOptDesc *d = drv->create_opts; d && d->name; d++) {
        if (strcmp(d->name, "preallocation") != 0 || !d->choices) {
            continue;
        }
        for (const char *const *c = d->choices; *c; c++) {
            BdrvPrealloc p;
            if (bdrv_parse_prealloc(*c, &p) == 0) {
                /* BdrvPrealloc counts off, metadata, falloc, full: the bits' order. */
                modes |= 1U << (unsigned)p;
            }
        }
    }
    return modes;
}

int qb_fmt_get_caps(QBroker *broker, enum QBlockFmtType fmt_type, QBlockFmtCaps *caps)
{
    const BlockDriver *drv = NULL;
    uint64_t f = 0;
    int ret;

    QB_REQUIRE_BROKER(broker);
    if (!caps) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_fmt_get_caps: NULL caps");
    }
    ret = fmt_driver(broker, "qb_fmt_get_caps", fmt_type, &drv);
    if (ret < 0) {
        return ret;
    }
    memset(caps, 0, sizeof(*caps));
    if (!drv) {
        return 0;
    }
    /* Each answer is a callback's presence or a bit the driver sets for itself. */
    if (drv->bdrv_open) {
        f |= QB_CAP_OPEN;
    }
    if (drv->bdrv_create) {
        f |= QB_CAP_CREATE;
    }
    if (drv->bdrv_pwritev) {
        f |= QB_CAP_WRITE;
    }
    if (drv->supports_backing) {
        f |= QB_CAP_BACKING;
    }
    if (drv->bdrv_truncate) {
        f |= QB_CAP_RESIZE_GROW;
        if (drv->caps & BDRV_CAP_SHRINK) {
            f |= QB_CAP_RESIZE_SHRINK;
        }
    }
    if (drv->bdrv_pdiscard) {
        f |= QB_CAP_DISCARD;
    }
    if (drv->caps & BDRV_CAP_COMPRESSED_READ) {
        f |= QB_CAP_COMPRESSED_READ;
    }
    if ((drv->caps & BDRV_CAP_COMPRESSED_WRITE) || drv->bdrv_pwritev_compressed) {
        f |= QB_CAP_COMPRESSED_WRITE;
    }
    if ((drv->caps & BDRV_CAP_INTERNAL_SNAPSHOTS) || drv->bdrv_snapshot_create) {
        f |= QB_CAP_INTERNAL_SNAPSHOTS;
    }
    if (drv->bdrv_check) {
        f |= QB_CAP_CHECK;
        if (drv->caps & BDRV_CAP_REPAIR) {
            f |= QB_CAP_REPAIR;
        }
    }
    if (drv->bdrv_has_zero_init) {
        f |= QB_CAP_ZERO_INIT;
    }
    caps->flags = f;
    caps->prealloc_modes = prealloc_modes(drv, fmt_type);
    return 0;
}

/*
 * The public descriptions are built from the driver's table once per
 * format and kept for the life of the process (the strings they point to
 * are the driver's own constants), so callers never free them.
 */
enum { MAX_CREATE_OPTS = 32 };

static pthread_mutex_t opt_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static QBlockOptionDesc opt_cache[QB_FMT_MAX][MAX_CREATE_OPTS];
static int opt_cache_count[QB_FMT_MAX];   /* 0: not built yet (every driver has "size") */

static enum QBlockOptionType public_opt_type(const BdrvOptDesc *d)
{
    switch (d->type) {
    case BDRV_OPT_BOOL:
        return QB_OPT_TYPE_BOOL;
    case BDRV_OPT_SIZE:
        return QB_OPT_TYPE_SIZE;
    case BDRV_OPT_NUMBER:
        return QB_OPT_TYPE_NUMBER;
    case BDRV_OPT_STRING:
        break;
    }
    return d->choices ? QB_OPT_TYPE_ENUM : QB_OPT_TYPE_STRING;
}

int qb_fmt_get_create_options(QBroker *broker, enum QBlockFmtType fmt_type,
                              const QBlockOptionDesc **list, int *count)
{
    const BlockDriver *drv = NULL;
    int ret, n = 0;

    QB_REQUIRE_BROKER(broker);
    if (!list || !count) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_fmt_get_create_options: NULL %s", list ? "count" : "list");
    }
    ret = fmt_driver(broker, "qb_fmt_get_create_options", fmt_type, &drv);
    if (ret < 0) {
        return ret;
    }
    if (!drv || !drv->bdrv_create) {
        return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                       "qb_fmt_get_create_options: this build cannot create %s images",
                       qb_fmttype2str(fmt_type));
    }
    pthread_mutex_lock(&opt_cache_lock);
    if (opt_cache_count[fmt_type] == 0) {
        for (const BdrvOptDesc *d = drv->create_opts; d && d->name; d++) {
            QBlockOptionDesc *o;
            if (n == MAX_CREATE_OPTS) {
                pthread_mutex_unlock(&opt_cache_lock);
                return qb_fail(broker, QB_ERR_INTERNAL_ERR, 0,
                               "qb_fmt_get_create_options: %s has more than %d options",
                               drv->format_name, MAX_CREATE_OPTS);
            }
            o = &opt_cache[fmt_type][n];
            memset(o, 0, sizeof(*o));
            o->name = d->name;
            o->type = public_opt_type(d);
            o->def = d->def;
            o->help = d->help;
            o->choices = d->choices;
            if (qb_fmt_option_settable(fmt_type, d->name)) {
                o->flags |= QB_OPT_F_SETTABLE;
            }
            if (d->flags & BDRV_OPT_F_PROTOCOL) {
                o->flags |= QB_OPT_F_PROTOCOL;
            }
            n++;
        }
        opt_cache_count[fmt_type] = n;
    }
    *list = opt_cache[fmt_type];
    *count = opt_cache_count[fmt_type];
    pthread_mutex_unlock(&opt_cache_lock);
    return 0;
}
