/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* snapshot.c: the public calls that list, create, apply and delete internal snapshots. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The state is open; shared by the four calls. */
static int snapshot_check_state(QBroker *broker, const char *func, QBlockState *qbs)
{
    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: %s", func,
                       qbs ? "the state is not open" : "NULL state");
    }
    return 0;
}

/*
 * A block-layer failure of a snapshot call. An unknown snapshot is the
 * caller's mistake, not the system's: QB_ERR_INVALID_PARAM, with ENOENT
 * kept as the errno so that callers can tell it from other bad arguments.
 */
static int snapshot_fail(QBroker *broker, int ret, const BdrvError *err, const char *func,
                         const char *filename)
{
    if (ret == -ENOENT) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, ENOENT, "%s: %s", func,
                       err && err->msg[0] ? err->msg : "no such snapshot");
    }
    return qb_fail_errno(broker, ret, err, func, filename);
}

int qb_snapshot_list(QBroker *broker, QBlockState *qbs, QBlockSnapshotInfo **list, int *count)
{
    BdrvSnapshotInfo *v = NULL;
    BdrvError err = { 0 };
    QBlockSnapshotInfo *out;
    size_t bytes;
    char *str;
    int n = 0, ret;

    QB_REQUIRE_BROKER(broker);

    if (!list || !count) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_snapshot_list: NULL result "
                       "pointer");
    }
    *list = NULL;
    *count = 0;
    ret = snapshot_check_state(broker, "qb_snapshot_list", qbs);
    if (ret < 0) {
        return ret;
    }
    state_shared_begin(qbs);
    ret = bdrv_snapshot_list(qbs->bs, &v, &n, &err);
    state_shared_end(qbs);
    if (ret < 0) {
        return snapshot_fail(broker, ret, &err, "qb_snapshot_list", qbs->filename);
    }
    if (n == 0) {
        return 0;
    }
    /* One block, strings behind the array, so that a plain free releases it all. */
    bytes = (size_t)n * sizeof(*out);
    for (int i = 0; i < n; i++) {
        bytes += strlen(v[i].id) + 1 + strlen(v[i].name) + 1;
    }
    out = calloc(1, bytes);
    if (!out) {
        bdrv_snapshot_list_free(v, n);
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_snapshot_list: out of memory");
    }
    str = (char *)(out + n);
    for (int i = 0; i < n; i++) {
        size_t id_len = strlen(v[i].id) + 1, name_len = strlen(v[i].name) + 1;

        memcpy(str, v[i].id, id_len);
        out[i].id = str;
        str += id_len;
        memcpy(str, v[i].name, name_len);
        out[i].name = str;
        str += name_len;
        out[i].vm_state_size = v[i].vm_state_size;
        out[i].virt_size = v[i].disk_size;
        out[i].date_sec = v[i].date_sec;
        out[i].date_nsec = v[i].date_nsec;
        out[i].vm_clock_nsec = v[i].vm_clock_nsec;
        out[i].icount = v[i].icount == BDRV_SNAPSHOT_NO_ICOUNT ? QB_SNAPSHOT_NO_ICOUNT
                                                               : v[i].icount;
    }
    bdrv_snapshot_list_free(v, n);
    *list = out;
    *count = n;
    return 0;
}

void qb_snapshot_list_free(QBroker *broker, QBlockSnapshotInfo **list)
{
    (void)broker;
    if (list) {
        free(*list);
        *list = NULL;
    }
}

/* What create, apply and delete share: the checks, exclusion from other calls, the error. */
typedef int (*SnapshotOp)(BlockDriverState *bs, const char *arg, BdrvError *err);

static int snapshot_change(QBroker *broker, QBlockState *qbs, const char *arg, const char *func,
                           const char *what, SnapshotOp op)
{
    BdrvError err = { 0 };
    int ret;

    ret = snapshot_check_state(broker, func, qbs);
    if (ret < 0) {
        return ret;
    }
    if (!arg) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: '%s': NULL snapshot %s", func,
                       qbs->filename, what);
    }
    /*
     * Snapshot mode is checked before the read-only flag: the state may well
     * be LIBQBLOCK_O_RDWR, and the block layer says why it refuses.
     */
    if (!(qbs->flags & LIBQBLOCK_O_RDWR) && !(qbs->flags & LIBQBLOCK_O_SNAPSHOT)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS, "%s: '%s' is opened read-only", func,
                       qbs->filename);
    }
    state_exclusive_begin(qbs);
    ret = op(qbs->bs, arg, &err);
    state_exclusive_end(qbs);
    if (ret < 0) {
        return snapshot_fail(broker, ret, &err, func, qbs->filename);
    }
    return 0;
}

int qb_snapshot_create(QBroker *broker, QBlockState *qbs, const char *name)
{
    QB_REQUIRE_BROKER(broker);
    return snapshot_change(broker, qbs, name, "qb_snapshot_create", "name",
                           bdrv_snapshot_create);
}

int qb_snapshot_apply(QBroker *broker, QBlockState *qbs, const char *id_or_name)
{
    QB_REQUIRE_BROKER(broker);
    return snapshot_change(broker, qbs, id_or_name, "qb_snapshot_apply", "id or name",
                           bdrv_snapshot_goto);
}

int qb_snapshot_delete(QBroker *broker, QBlockState *qbs, const char *id_or_name)
{
    QB_REQUIRE_BROKER(broker);
    return snapshot_change(broker, qbs, id_or_name, "qb_snapshot_delete", "id or name",
                           bdrv_snapshot_delete);
}
