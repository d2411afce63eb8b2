/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rbd-loc.c: turns a public QB_PROT_RBD location into the rbd: name the RBD driver opens. */

#include <errno.h>

#include "block/rbd.h"
#include "internal.h"

int qb_rbd_location(QBroker *broker, const char *func, const struct QBlockProtOptionRBD *o,
                    char **owned, const char **name)
{
    *owned = NULL;
#ifndef CONFIG_RBD
    (void)o;
    (void)name;
    return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                   "%s: RBD is not supported by this build of libqblock (it was built "
                   "without librbd)", func);
#else
    for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++) {
        if (o->reserved[i]) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "%s: the RBD location's reserved fields must be zero", func);
        }
    }
    if (!o->pool || !o->pool[0] || !o->image || !o->image[0]) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: an RBD location needs a pool and an image", func);
    }
    *owned = rbd_format_location(o->pool, o->image, o->snapshot, o->user, o->conf);
    if (!*owned) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", func);
    }
    *name = *owned;
    return 0;
#endif
}
