/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbd-loc.c: turns a public QB_PROT_NBD location into the URI the NBD driver opens. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "block/nbd.h"
#include "internal.h"

int qb_nbd_location(QBroker *broker, const char *func, const struct QBlockProtOptionNBD *o,
                    char **owned, const char **name)
{
    const char *exp = o->export_name ? o->export_name : "";
    char port[16];

    *owned = NULL;
    if (o->tls) {
        return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                       "%s: NBD over TLS is not supported (tls must be 0)", func);
    }
    if (o->reserved32) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: the NBD location's reserved fields must be zero", func);
    }
    for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++) {
        if (o->reserved[i]) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "%s: the NBD location's reserved fields must be zero", func);
        }
    }
    if ((o->host && o->host[0]) == (o->socket_path && o->socket_path[0])) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: an NBD location needs either a host or a socket path", func);
    }
    if (strlen(exp) > NBD_MAX_NAME) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: NBD export name longer than %d bytes", func, NBD_MAX_NAME);
    }
    if (o->socket_path && o->socket_path[0] &&
        strlen(o->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: NBD socket path '%s' is too long", func, o->socket_path);
    }
    if (o->port && o->port[0]) {
        if (strlen(o->port) >= sizeof(port) || strpbrk(o->port, "/?#[]@:")) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "%s: bad NBD port '%s'", func, o->port);
        }
        snprintf(port, sizeof(port), "%s", o->port);
    } else {
        if (o->port_number > 65535) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "%s: NBD port %u is out of range", func, o->port_number);
        }
        snprintf(port, sizeof(port), "%u", o->port_number ? o->port_number : NBD_DEFAULT_PORT);
    }
    if (o->timeout_ms > 86400000u) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "%s: NBD timeout of %u ms is longer than a day", func, o->timeout_ms);
    }
    *owned = nbd_format_location(o->socket_path && o->socket_path[0] ? NULL : o->host, port,
                                 o->socket_path && o->socket_path[0] ? o->socket_path : NULL,
                                 exp, o->timeout_ms);
    if (!*owned) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", func);
    }
    *name = *owned;
    return 0;
}
