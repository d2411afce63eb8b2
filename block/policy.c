/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.c: the checks of an open policy (BdrvPolicy) that the generic layer
 * and the drivers make while opening an untrusted image: where the files it
 * names may be, and how much it may make the library keep in memory.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "block/block_int.h"
#include "block/nbd.h"

/* True when canonical @path is @dir or below it. */
static bool path_within(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    if (strcmp(dir, "/") == 0) {
        return true;
    }
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int bdrv_policy_check_path(BlockDriverState *bs, const char *path, const char *what,
                           BdrvError *err)
{
    const BdrvPolicy *p = bs->policy;
    char real[PATH_MAX], dir[PATH_MAX], real_dir[PATH_MAX];
    const char *slash;
    struct stat st;

    if (!p || p->allow_any_path) {
        return 0;
    }
    /*
     * A name the library would take as a network location (nbd://...) is
     * not a path at all: an image must not make the library connect to a
     * server its caller never named.
     */
    if (nbd_is_location(path)) {
        return bdrv_error_set(err, -EPOLICY,
                              "image '%s': %s '%s' is a network location (open policy: "
                              "confined paths)", bs->filename, what, path);
    }
    /*
     * A name that does not resolve is left to the open that follows, which
     * reports it as missing; symbolic links are followed first, so a link in
     * the folder cannot lead out of it.
     */
    if (!realpath(path, real)) {
        return 0;
    }
    slash = strrchr(bs->filename, '/');
    if (!slash) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == bs->filename) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - bs->filename), bs->filename);
    }
    if (realpath(dir, real_dir) && path_within(real, real_dir)) {
        goto in_place;
    }
    for (char **d = p->allowed_dirs; d && *d; d++) {
        if (path_within(real, *d)) {
            goto in_place;
        }
    }
    return bdrv_error_set(err, -EPOLICY,
                          "image '%s': %s '%s' is outside the image's folder and the allowed "
                          "folders (open policy: confined paths)", bs->filename, what, path);
in_place:
    /* Devices, pipes and sockets are not image files, wherever they are. */
    if (stat(real, &st) == 0 && !S_ISREG(st.st_mode)) {
        return bdrv_error_set(err, -EPOLICY,
                              "image '%s': %s '%s' is not a regular file (open policy: "
                              "confined paths)", bs->filename, what, path);
    }
    return 0;
}

int bdrv_policy_charge_metadata(BlockDriverState *bs, uint64_t bytes, const char *what,
                                BdrvError *err)
{
    const BdrvPolicy *p = bs->policy;
    uint64_t total;

    if (!p || !p->max_metadata) {
        return 0;
    }
    if (ADD_OVERFLOW(bs->metadata_bytes, bytes, &total) || total > p->max_metadata) {
        return bdrv_error_set(err, -EPOLICY,
                              "image '%s': the %s (%" PRIu64 " bytes) takes the metadata kept "
                              "in memory past the open policy's max_metadata_size (%" PRIu64
                              " bytes)", bs->filename, what, bytes, p->max_metadata);
    }
    bs->metadata_bytes = total;
    return 0;
}

int bdrv_policy_check_descriptor(BlockDriverState *bs, uint64_t bytes, BdrvError *err)
{
    const BdrvPolicy *p = bs->policy;

    if (!p || !p->max_descriptor || bytes <= p->max_descriptor) {
        return 0;
    }
    return bdrv_error_set(err, -EPOLICY,
                          "image '%s': its descriptor (%" PRIu64 " bytes) is larger than the "
                          "open policy's max_descriptor_size (%" PRIu64 " bytes)", bs->filename,
                          bytes, p->max_descriptor);
}
