/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nbd.h: the NBD protocol driver's location syntax, shared by the generic
 * layer (which picks the driver by name), the facade (which writes
 * QB_PROT_NBD locations in it) and the unit tests.
 */
#ifndef BLOCK_NBD_H
#define BLOCK_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/util.h"

#define NBD_DEFAULT_PORT        10809
#define NBD_DEFAULT_TIMEOUT_MS  30000
#define NBD_MAX_NAME            4096   /* the protocol's limit on export names */

/* Where an export is, as parsed from a location name (strings malloc'ed). */
typedef struct NBDAddress {
    char *host;          /* TCP host (brackets of an IPv6 literal removed); NULL on Unix */
    char *port;          /* TCP port as text; NULL on Unix */
    char *socket_path;   /* Unix socket; NULL on TCP */
    char *export_name;   /* never NULL; "" is the default export */
    uint32_t timeout_ms; /* never 0 */
} NBDAddress;

/*
 * True when @name is an NBD location: nbd://host[:port][/export],
 * nbd+unix:///export?socket=PATH, nbd:host:port[:exportname=X] or
 * nbd:unix:PATH[:exportname=X] (the forms qemu-img accepts). The URI forms
 * also take the query parameter timeout_ms=N (libqblock's own).
 */
HIDDEN bool nbd_is_location(const char *name);
/* Parse @name into @addr; -EINVAL with @msg (size @msglen) saying why, -ENOMEM. */
HIDDEN int nbd_parse_location(const char *name, NBDAddress *addr, char *msg, size_t msglen);
HIDDEN void nbd_address_free(NBDAddress *addr);
/*
 * Write the URI form of an address (strings percent-encoded where needed)
 * into a malloc'ed string: nbd://host:port/export or
 * nbd+unix:///export?socket=PATH, with &timeout_ms=N unless @timeout_ms is
 * 0 or the default. NULL on -ENOMEM.
 */
HIDDEN char *nbd_format_location(const char *host, const char *port, const char *socket_path,
                                 const char *export_name, uint32_t timeout_ms);

#endif /* BLOCK_NBD_H */
