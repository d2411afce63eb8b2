/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rbd.h: the Ceph RBD protocol driver's location syntax and image creation,
 * shared by the generic layer (which picks the driver by name and creates
 * images of format "rbd"), the facade (which writes QB_PROT_RBD locations)
 * and the unit tests.
 */
#ifndef BLOCK_RBD_H
#define BLOCK_RBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/block.h"

/* Object sizes librbd accepts: 2^12 (4 KiB) to 2^25 (32 MiB). */
#define RBD_MIN_ORDER 12
#define RBD_MAX_ORDER 25

/* Where an image is, as parsed from a location name (strings malloc'ed, NULL when absent). */
typedef struct RBDAddress {
    char *pool;
    char *nspace;        /* RADOS namespace (pool/namespace/image), NULL for the default */
    char *image;
    char *snap;
    char *user;          /* id=USER: the client name without "client." */
    char *conf;          /* conf=PATH: a ceph.conf to read instead of the default search */
    /* Any other key=value pairs, set on the cluster handle as Ceph options. */
    char **keys;
    char **values;
    int n_kv;
} RBDAddress;

/*
 * True when @name is an RBD location: rbd:pool/[namespace/]image[@snap]
 * [:key=value...] (the form qemu-img accepts; "\" escapes the next
 * character), with the keys conf= and id= and any Ceph option.
 */
HIDDEN bool rbd_is_location(const char *name);
/* Parse @name into @addr; -EINVAL with @msg (size @msglen) saying why, -ENOMEM. */
HIDDEN int rbd_parse_location(const char *name, RBDAddress *addr, char *msg, size_t msglen);
HIDDEN void rbd_address_free(RBDAddress *addr);
/*
 * Write a location in the form rbd_parse_location reads, escaping what
 * needs it, into a malloc'ed string (NULL on -ENOMEM). Any of @snap,
 * @user, @conf may be NULL or "".
 */
HIDDEN char *rbd_format_location(const char *pool, const char *image, const char *snap,
                                 const char *user, const char *conf);
/*
 * Create an image of format "rbd" at @filename (an RBD location) from
 * @opts: "size" and "cluster_size" (the object size, a power of two from
 * 4 KiB to 32 MiB; 0 or absent: librbd's default). Returns 0 or -errno
 * with @err set; -ENOTSUP naming librbd in a build without it.
 */
HIDDEN int rbd_create_format(const char *filename, BdrvOpts *opts, int flags, BdrvError *err);

#endif /* BLOCK_RBD_H */
