/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * block.c: the generic block layer: the driver table (also the probe
 * order), open by name or by probe, create, backing chains, request checks,
 * allocation queries, and the serialisation of drivers that are not
 * thread-safe.
 */

/* For pthread_rwlockattr_setkind_np, glibc's writer preference. */
#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block_int.h"
#include "block/fault.h"
#include "block/nbd.h"
#include "block/rbd.h"

/*
 * Every driver the library has. Formats come in probe order: the ones with
 * a magic number first, raw (which scores 1 for anything) last.
 */
static const BlockDriver *const bdrv_formats[] = {
    &bdrv_qcow2,
    &bdrv_vdi,
    &bdrv_vpc,
    &bdrv_vmdk,
    &bdrv_qed,
    &bdrv_qcow,
    &bdrv_cow,
    &bdrv_raw,
};

static const BlockDriver *const bdrv_protocols[] = {
    &bdrv_file,
    &bdrv_nbd,
    &bdrv_rbd,
};

/* The protocol driver a location name selects: NBD URIs, RBD locations, else a local file. */
static const BlockDriver *protocol_for(const char *filename)
{
    /* Names the in-memory protocol serves (block/mem.c) never reach the file system. */
    if (bdrv_mem_handles(filename)) {
        return &bdrv_mem;
    }
    if (rbd_is_location(filename)) {
        return &bdrv_rbd;
    }
    return nbd_is_location(filename) ? &bdrv_nbd : &bdrv_file;
}

/*
 * Formats whose magic numbers are known (formats.md, §1) but which have no
 * driver in this build. An image in one of them is refused with -ENOTSUP
 * naming the format, rather than being probed as raw and misread; a format
 * leaves this list when its driver joins bdrv_formats.
 */
static const struct {
    const char *name;
    uint32_t offset;
    uint32_t len;
    uint8_t magic[8];
} foreign_magics[] = {
    { "qcow2 or qcow", 0, 4, { 'Q', 'F', 'I', 0xfb } },
};

/* Names the public API knows that no driver of this build implements yet. */
static const char *const known_unimplemented[] = {
    "sheepdog",
};

#define PROBE_BUF_SIZE 2048

const BlockDriver *bdrv_find_format(const char *format_name)
{
    if (!format_name) {
        return NULL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(bdrv_formats); i++) {
        if (strcmp(bdrv_formats[i]->format_name, format_name) == 0) {
            return bdrv_formats[i];
        }
    }
    return NULL;
}

const BlockDriver *bdrv_find_protocol(const char *protocol_name)
{
    for (size_t i = 0; i < ARRAY_SIZE(bdrv_protocols); i++) {
        if (strcmp(bdrv_protocols[i]->format_name, protocol_name) == 0) {
            return bdrv_protocols[i];
        }
    }
    return NULL;
}

const BlockDriver *const *bdrv_format_list(int *n)
{
    *n = (int)ARRAY_SIZE(bdrv_formats);
    return bdrv_formats;
}

/* -ENOTSUP for a format name the API knows but this build lacks, else -EINVAL. */
static int unknown_format_error(const char *format, BdrvError *err)
{
    if (strcmp(format, "sheepdog") == 0) {
        /* Refused for good, not for lack of time: no client without a server to test it. */
        return bdrv_error_set(err, -ENOTSUP,
                              "format 'sheepdog' is not supported: no Sheepdog server exists "
                              "to test a client against (the project ended, and QEMU removed "
                              "its sheepdog driver in 6.0)");
    }
    for (size_t i = 0; i < ARRAY_SIZE(known_unimplemented); i++) {
        if (strcmp(known_unimplemented[i], format) == 0) {
            return bdrv_error_set(err, -ENOTSUP,
                                  "format '%s' is not supported by this build of libqblock",
                                  format);
        }
    }
    return bdrv_error_set(err, -EINVAL, "unknown format '%s'", format);
}

const BlockDriver *bdrv_probe_format(const uint8_t *buf, int buf_size, const char *filename)
{
    const BlockDriver *best = NULL;
    int best_score = 0;

    for (size_t i = 0; i < ARRAY_SIZE(bdrv_formats); i++) {
        const BlockDriver *drv = bdrv_formats[i];
        if (drv->bdrv_probe) {
            int score = drv->bdrv_probe(buf, buf_size, filename);
            if (score > best_score) {
                best_score = score;
                best = drv;
            }
        }
    }
    return best;
}

static const char *probe_foreign(const uint8_t *buf, int buf_size)
{
    for (size_t i = 0; i < ARRAY_SIZE(foreign_magics); i++) {
        uint32_t off = foreign_magics[i].offset;
        uint32_t len = foreign_magics[i].len;
        if ((uint64_t)buf_size >= (uint64_t)off + len &&
            memcmp(buf + off, foreign_magics[i].magic, len) == 0) {
            return foreign_magics[i].name;
        }
    }
    return NULL;
}

const char *bdrv_probe_name(const uint8_t *buf, int buf_size, const char *filename,
                            const BlockDriver **pdrv)
{
    const BlockDriver *drv = bdrv_probe_format(buf, buf_size, filename);
    const char *foreign = probe_foreign(buf, buf_size);

    *pdrv = NULL;
    /* A known magic beats raw's guess, even where this build lacks the driver. */
    if (foreign && (!drv || drv->bdrv_probe(buf, buf_size, filename) <= 1)) {
        return foreign;
    }
    *pdrv = drv;
    return drv ? drv->format_name : NULL;
}

/* ------------------------------------------------------------------ */
/* Node life cycle                                                     */

int bdrv_rwlock_init_writer_first(pthread_rwlock_t *lock)
{
    pthread_rwlockattr_t attr;
    int ret;

    if (pthread_rwlockattr_init(&attr) != 0) {
        return -1;
    }
#ifdef __GLIBC__
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    ret = pthread_rwlock_init(lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return ret;
}

BlockDriverState *bdrv_new(const BlockDriver *drv, const char *filename, int flags,
                           BdrvError *err)
{
    BlockDriverState *bs;
    pthread_mutexattr_t attr;

    if (strlen(filename) >= sizeof(bs->filename)) {
        bdrv_error_set(err, -ENAMETOOLONG, "file name '%.64s...' is too long", filename);
        return NULL;
    }
    bs = calloc(1, sizeof(*bs));
    if (!bs) {
        bdrv_error_set(err, -ENOMEM, "out of memory opening '%s'", filename);
        return NULL;
    }
    if (drv->instance_size > 0) {
        bs->opaque = calloc(1, (size_t)drv->instance_size);
        if (!bs->opaque) {
            free(bs);
            bdrv_error_set(err, -ENOMEM, "out of memory opening '%s'", filename);
            return NULL;
        }
    }
    /*
     * Recursive, because a driver callback may legitimately call back into
     * the generic layer on its own node (a flush from inside a write).
     */
    if (pthread_mutexattr_init(&attr) != 0 ||
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE) != 0 ||
        pthread_mutex_init(&bs->lock, &attr) != 0) {
        free(bs->opaque);
        free(bs);
        bdrv_error_set(err, -ENOMEM, "cannot create a lock for '%s'", filename);
        return NULL;
    }
    pthread_mutexattr_destroy(&attr);
    if (bdrv_rwlock_init_writer_first(&bs->rw_lock) != 0) {
        pthread_rwlock_destroy(&bs->rw_lock);
    pthread_mutex_destroy(&bs->lock);
        free(bs->opaque);
        free(bs);
        bdrv_error_set(err, -ENOMEM, "cannot create a lock for '%s'", filename);
        return NULL;
    }
    bs->drv = drv;
    bs->open_flags = flags;
    bs->read_only = !(flags & BDRV_O_RDWR);
    bs->request_alignment = drv->is_protocol ? 1 : BDRV_SECTOR_SIZE;
    snprintf(bs->filename, sizeof(bs->filename), "%s", filename);
    return bs;
}

void bdrv_free(BlockDriverState *bs)
{
    pthread_rwlock_destroy(&bs->rw_lock);
    pthread_mutex_destroy(&bs->lock);
    free(bs->opaque);
    free(bs);
}

void bdrv_close(BlockDriverState *bs)
{
    if (!bs) {
        return;
    }
    bdrv_close(bs->backing);
    bs->backing = NULL;
    bs->drv->bdrv_close(bs);
    bdrv_close(bs->file);
    bs->file = NULL;
    bdrv_free(bs);
}

/* Flags a protocol node inherits from the format above it. */
static int protocol_flags(int flags)
{
    return flags & (BDRV_O_RDWR | BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO | BDRV_O_NO_FLUSH |
                    BDRV_O_FORCE_SHARE | BDRV_O_NO_LOCK | BDRV_O_CREATE);
}

/* Take the permissions format @drv needs on @file, per block/perm.c. */
static int bdrv_take_perms(const BlockDriver *drv, BlockDriverState *file, int flags,
                           BdrvError *err)
{
    uint64_t perm, shared;

    /* Under FORCE_SHARE the protocol still shows its reads, as QEMU's -U does. */
    if (!file->drv->bdrv_set_perm || (flags & BDRV_O_NO_LOCK)) {
        return 0;
    }
    bdrv_file_perms(drv, flags, &perm, &shared);
    return file->drv->bdrv_set_perm(file, perm, shared, err);
}

int bdrv_file_open_for(BlockDriverState **pbs, const char *filename, const BlockDriver *fmt,
                       int flags, BdrvError *err)
{
    int ret = bdrv_file_open(pbs, filename, flags, err);

    if (ret < 0) {
        return ret;
    }
    ret = bdrv_take_perms(fmt, *pbs, flags, err);
    if (ret < 0) {
        bdrv_close(*pbs);
        *pbs = NULL;
    }
    return ret;
}

int bdrv_file_open(BlockDriverState **pbs, const char *filename, int flags, BdrvError *err)
{
    const BlockDriver *drv = protocol_for(filename);
    BlockDriverState *bs;
    int ret;

    *pbs = NULL;
    bs = bdrv_new(drv, filename, protocol_flags(flags), err);
    if (!bs) {
        return err ? err->code : -ENOMEM;
    }
    ret = drv->bdrv_open(bs, bs->open_flags, err);
    if (ret < 0) {
        bdrv_free(bs);
        return ret;
    }
    *pbs = bs;
    /* Fault-injection tests stack a faulty node over it (block/faulty.c). */
    return bdrv_fault_wrap(pbs, err);
}

int bdrv_resolve_backing_name(char *dest, size_t sz, const char *base, const char *backing)
{
    const char *slash;
    int n;

    /* Absolute names, protocol URIs and overlays in the working folder keep the name. */
    slash = strrchr(base, '/');
    if (backing[0] == '/' || strstr(backing, "://") || nbd_is_location(backing) ||
        rbd_is_location(backing) || !slash) {
        n = snprintf(dest, sz, "%s", backing);
    } else {
        n = snprintf(dest, sz, "%.*s/%s", (int)(slash - base), base, backing);
    }
    return n < 0 || (size_t)n >= sz ? -ENAMETOOLONG : 0;
}

/* True when @a and @b name the same file (by canonical path where both exist). */
static bool same_file(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    if (realpath(a, ra) && realpath(b, rb)) {
        return strcmp(ra, rb) == 0;
    }
    return strcmp(a, b) == 0;
}

static int bdrv_open_chain(BlockDriverState **pbs, const char *filename, const char *format,
                           int flags, int depth, const char **chain, const BdrvPolicy *policy,
                           BdrvError *err);

/*
 * Open the backing file of @bs, at @depth in the chain. @chain holds the
 * names of the layers above (chain[0..depth]), to refuse loops.
 */
static int bdrv_open_backing(BlockDriverState *bs, int depth, const char **chain,
                             BdrvError *err)
{
    int flags;
    int ret;

    ret = bdrv_resolve_backing_name(bs->full_backing_filename,
                                    sizeof(bs->full_backing_filename), bs->filename,
                                    bs->backing_file);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "backing file name of '%s' is too long", bs->filename);
    }
    if (depth + 1 >= BDRV_MAX_BACKING_DEPTH) {
        return bdrv_error_set(err, -EINVAL,
                              "backing chain of '%s' is deeper than %d images",
                              chain[0], BDRV_MAX_BACKING_DEPTH);
    }
    if (bs->policy && bs->policy->max_chain_depth &&
        (uint32_t)depth + 1 > bs->policy->max_chain_depth) {
        return bdrv_error_set(err, -EPOLICY,
                              "backing chain of '%s' is deeper than the open policy's "
                              "max_chain_depth (%" PRIu32 " backing files)", chain[0],
                              bs->policy->max_chain_depth);
    }
    ret = bdrv_policy_check_path(bs, bs->full_backing_filename, "backing file", err);
    if (ret < 0) {
        return ret;
    }
    for (int i = 0; i <= depth; i++) {
        if (same_file(chain[i], bs->full_backing_filename)) {
            return bdrv_error_set(err, -EBADIMAGE,
                                  "backing chain of '%s' loops: '%s' is its own backing file",
                                  chain[0], bs->full_backing_filename);
        }
    }
    /* Backing files are read-only and never locked for writing. */
    flags = bs->open_flags & ~(BDRV_O_RDWR | BDRV_O_SNAPSHOT | BDRV_O_CREATE);
    ret = bdrv_open_chain(&bs->backing, bs->full_backing_filename,
                          bs->backing_format[0] ? bs->backing_format : NULL, flags, depth + 1,
                          chain, bs->policy, err);
    if (ret < 0) {
        bdrv_error_prefix(err, "could not open backing file of '%s'", bs->filename);
    }
    return ret;
}

/*
 * Guess the format of the protocol node @file. Kept out of bdrv_open_chain
 * so that its buffer is not on the stack of every level of a deep chain.
 */
static __attribute__((noinline)) int probe_file(BlockDriverState *file, const char *filename,
                                                const BlockDriver **pdrv, BdrvError *err)
{
    uint8_t buf[PROBE_BUF_SIZE];
    int64_t len = bdrv_getlength(file);
    const char *name;
    int n, ret;

    if (len < 0) {
        return bdrv_error_set(err, (int)len, "could not get the size of '%s'", filename);
    }
    n = (int)MIN(len, (int64_t)sizeof(buf));
    memset(buf, 0, sizeof(buf));
    ret = n ? bdrv_pread(file, 0, buf, (size_t)n) : 0;
    if (ret < 0) {
        return bdrv_error_set(err, ret, "could not read '%s' to probe its format: %s",
                              filename, strerror(-ret));
    }
    name = bdrv_probe_name(buf, n, filename, pdrv);
    if (name && !*pdrv) {
        return bdrv_error_set(err, -ENOTSUP,
                              "'%s' looks like a %s image, a format this build of libqblock "
                              "cannot open", filename, name);
    }
    if (!*pdrv) {
        return bdrv_error_set(err, -ENOTSUP, "could not determine the format of '%s'",
                              filename);
    }
    return 0;
}

static int bdrv_open_chain(BlockDriverState **pbs, const char *filename, const char *format,
                           int flags, int depth, const char **chain, const BdrvPolicy *policy,
                           BdrvError *err)
{
    const BlockDriver *drv = NULL;
    BlockDriverState *file = NULL, *bs = NULL;
    bool probed = false;
    int ret;

    *pbs = NULL;
    chain[depth] = filename;
    if (format && strcmp(format, "rbd") == 0) {
        /* Format "rbd" is raw data on an RBD image, as in qemu-img. */
        if (!rbd_is_location(filename)) {
            return bdrv_error_set(err, -ENOTSUP, "'%s': format 'rbd' is not supported "
                                  "outside an RBD location (rbd:pool/image)", filename);
        }
        format = "raw";
    }
    if (format) {
        drv = bdrv_find_format(format);
        if (!drv) {
            return unknown_format_error(format, err);
        }
    }

    ret = bdrv_file_open(&file, filename, flags, err);
    if (ret < 0) {
        return ret;
    }
    if (!drv) {
        ret = probe_file(file, filename, &drv, err);
        if (ret < 0) {
            goto fail;
        }
        probed = true;
        /* Raw is what probing settles on when nothing matched: not a finding, a guess. */
        if (drv == &bdrv_raw && policy && !policy->allow_raw_probe) {
            ret = bdrv_error_set(err, -EPOLICY,
                                 "could not determine the format of '%s' (the open policy does "
                                 "not allow opening it as raw without naming the format)",
                                 filename);
            goto fail;
        }
    }

    ret = bdrv_take_perms(drv, file, flags, err);
    if (ret < 0) {
        goto fail;
    }

    bs = bdrv_new(drv, filename, flags, err);
    if (!bs) {
        ret = err ? err->code : -ENOMEM;
        goto fail;
    }
    bs->file = file;
    bs->probed = probed;
    bs->policy = policy;
    file->policy = policy;
    ret = drv->bdrv_open(bs, flags, err);
    if (ret < 0) {
        bdrv_free(bs);
        goto fail;
    }
    file = NULL;

    if (bs->backing_file[0] && !(flags & BDRV_O_NO_BACKING)) {
        ret = bdrv_open_backing(bs, depth, chain, err);
        if (ret < 0) {
            bdrv_close(bs);
            return ret;
        }
    }
    *pbs = bs;
    return 0;

fail:
    bdrv_close(file);
    return ret;
}

/*
 * Snapshot mode: the image is opened read-only and a temporary qcow2
 * overlay, backed by it, takes every write. The overlay's file is unlinked
 * as soon as it is open, so nothing is left behind however the process
 * ends, and the image itself is never modified.
 */
static int bdrv_open_snapshot(BlockDriverState **pbs, const char *filename, const char *format,
                              int flags, const BdrvPolicy *policy, BdrvError *err)
{
    const BlockDriver *qcow2 = bdrv_find_format("qcow2");
    BlockDriverState *base = NULL, *top = NULL;
    char tmp[PATH_MAX], backing[PATH_MAX];
    BdrvOpts opts;
    int64_t len;
    int ret;

    if (!qcow2) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': snapshot mode needs the qcow2 driver",
                              filename);
    }
    ret = bdrv_open_policy(&base, filename, format, flags & ~(BDRV_O_RDWR | BDRV_O_SNAPSHOT),
                           policy, err);
    if (ret < 0) {
        return ret;
    }
    len = bdrv_getlength(base);
    if (len < 0) {
        bdrv_close(base);
        return bdrv_error_set(err, (int)len, "could not get the size of '%s'", filename);
    }
    ret = bdrv_file_make_temp(tmp, sizeof(tmp));
    if (ret < 0) {
        bdrv_close(base);
        return bdrv_error_set(err, ret, "'%s': cannot create the snapshot overlay: %s",
                              filename, strerror(-ret));
    }
    /* The overlay records where its backing is, though it is attached directly below. */
    if (!realpath(filename, backing)) {
        snprintf(backing, sizeof(backing), "%s", filename);
    }
    bdrv_opts_init(&opts);
    ret = bdrv_opts_set_u64(&opts, "size", (uint64_t)len);
    if (ret == 0) {
        ret = bdrv_opts_set(&opts, "backing_file", backing);
    }
    if (ret == 0) {
        ret = bdrv_opts_set(&opts, "backing_fmt", base->drv->format_name);
    }
    if (ret < 0) {
        bdrv_error_set(err, ret, "out of memory");
    } else {
        ret = bdrv_create("qcow2", tmp, &opts, BDRV_O_NO_FLUSH, err);
    }
    bdrv_opts_free(&opts);
    if (ret == 0) {
        /* A scratch overlay needs no durability: never flushed to disk. */
        ret = bdrv_open(&top, tmp, "qcow2",
                        (flags & ~(BDRV_O_SNAPSHOT | BDRV_O_NATIVE_AIO | BDRV_O_NOCACHE)) |
                        BDRV_O_NO_BACKING | BDRV_O_CACHE_WB | BDRV_O_NO_FLUSH, err);
    }
    bdrv_file_unlink(tmp);
    if (ret < 0) {
        bdrv_error_prefix(err, "'%s': cannot set up the snapshot overlay", filename);
        bdrv_close(base);
        return ret;
    }
    top->backing = base;
    /*
     * The overlay is marked, so that snapshot operations know that the node
     * they were given is not the image (see bdrv_snapshot_list).
     */
    top->open_flags |= BDRV_O_SNAPSHOT;
    snprintf(top->full_backing_filename, sizeof(top->full_backing_filename), "%s", backing);
    *pbs = top;
    return 0;
}

int bdrv_open_policy(BlockDriverState **pbs, const char *filename, const char *format,
                     int flags, const BdrvPolicy *policy, BdrvError *err)
{
    const char **chain;
    int ret;

    *pbs = NULL;
    if (flags & BDRV_O_SNAPSHOT) {
        return bdrv_open_snapshot(pbs, filename, format, flags, policy, err);
    }
    chain = calloc(BDRV_MAX_BACKING_DEPTH + 1, sizeof(*chain));
    if (!chain) {
        return bdrv_error_set(err, -ENOMEM, "out of memory opening '%s'", filename);
    }
    ret = bdrv_open_chain(pbs, filename, format, flags, 0, chain, policy, err);
    free(chain);
    return ret;
}

int bdrv_open(BlockDriverState **pbs, const char *filename, const char *format, int flags,
              BdrvError *err)
{
    return bdrv_open_policy(pbs, filename, format, flags, NULL, err);
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

/* A virtual size of 0 with a backing file takes the backing file's size. */
static int size_from_backing(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    const char *backing = bdrv_opts_get_str(opts, "backing_file");
    const char *backing_fmt = bdrv_opts_get_str(opts, "backing_fmt");
    char full[PATH_MAX];
    BlockDriverState *bs;
    int64_t len;
    int ret;

    if (!backing || bdrv_opts_get_size(opts, "size") != 0) {
        return 0;
    }
    ret = bdrv_resolve_backing_name(full, sizeof(full), filename, backing);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "backing file name '%s' is too long", backing);
    }
    ret = bdrv_open(&bs, full, backing_fmt,
                    (flags & (BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO)) | BDRV_O_NO_BACKING, err);
    if (ret < 0) {
        bdrv_error_prefix(err, "could not open backing file '%s' to take its size", backing);
        return ret;
    }
    len = bdrv_getlength(bs);
    bdrv_close(bs);
    if (len < 0) {
        return bdrv_error_set(err, (int)len, "could not get the size of '%s'", backing);
    }
    ret = bdrv_opts_set_u64(opts, "size", (uint64_t)len);
    return ret < 0 ? bdrv_error_set(err, ret, "out of memory") : 0;
}

int bdrv_create(const char *format, const char *filename, BdrvOpts *opts, int flags,
                BdrvError *err)
{
    const BlockDriver *drv = bdrv_find_format(format);
    int ret;

    if (format && strcmp(format, "rbd") == 0) {
        /* Not a layout but an RBD image of its own object size (block/rbd.c). */
        return rbd_create_format(filename, opts, flags, err);
    }
    if (!drv) {
        return unknown_format_error(format, err);
    }
    if (!drv->bdrv_create) {
        return bdrv_error_set(err, -ENOTSUP, "format '%s' does not support image creation",
                              format);
    }
    if (nbd_is_location(filename)) {
        /* qemu-img refuses it too: the export and its size are the server's. */
        return bdrv_error_set(err, -ENOTSUP, "'%s': images cannot be created on NBD (the "
                              "export exists already); open it and convert into it instead",
                              filename);
    }
    ret = bdrv_opts_validate(opts, drv->create_opts, format, err);
    if (ret < 0) {
        return ret;
    }
    ret = size_from_backing(filename, opts, flags, err);
    if (ret < 0) {
        return ret;
    }
    return drv->bdrv_create(filename, opts, flags, err);
}

int bdrv_measure(const char *format, BdrvOpts *opts, BlockDriverState *in_bs,
                 BlockMeasureInfo *info, BdrvError *err)
{
    const BlockDriver *drv = bdrv_find_format(format);
    uint64_t size;
    int ret;

    memset(info, 0, sizeof(*info));
    if (!drv) {
        return unknown_format_error(format, err);
    }
    if (!drv->bdrv_measure) {
        return bdrv_error_set(err, -ENOTSUP, "Block driver '%s' does not support size "
                              "measurement", format);
    }
    ret = bdrv_opts_validate(opts, drv->create_opts, format, err);
    if (ret < 0) {
        return ret;
    }
    if (in_bs) {
        int64_t len = bdrv_getlength(in_bs);
        if (len < 0) {
            return bdrv_error_set(err, (int)len, "could not get the size of '%s'",
                                  in_bs->filename);
        }
        size = (uint64_t)len;
    } else {
        size = ROUND_UP(bdrv_opts_get_size(opts, "size"), BDRV_SECTOR_SIZE);
    }
    return drv->bdrv_measure(opts, in_bs, size, info, err);
}

int bdrv_check_create_opts(const char *format, const BdrvOpts *opts, BdrvError *err)
{
    const BlockDriver *drv = bdrv_find_format(format);
    BdrvOpts copy;
    int ret = 0;

    if (!drv) {
        return 0;
    }
    /* Validate a copy: validation adds the defaults, which the caller does not want. */
    bdrv_opts_init(&copy);
    for (int i = 0; i < opts->n && ret == 0; i++) {
        ret = bdrv_opts_set(&copy, opts->v[i].name, opts->v[i].value);
    }
    if (ret < 0) {
        ret = bdrv_error_set(err, ret, "out of memory");
    } else {
        ret = bdrv_opts_validate(&copy, drv->create_opts, format, err);
    }
    bdrv_opts_free(&copy);
    return ret;
}

int bdrv_create_file(const char *filename, uint64_t size, BdrvPrealloc prealloc, int flags,
                     BdrvError *err)
{
    const BlockDriver *drv = protocol_for(filename);

    if (!drv->bdrv_create_file) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': the %s protocol cannot create images "
                              "(an NBD export exists already; open it instead)",
                              filename, drv->format_name);
    }
    return drv->bdrv_create_file(filename, size, prealloc, flags, err);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

/*
 * Callbacks of a driver that is not thread_safe run under bs->lock, and,
 * when the driver has shared reads, under bs->rw_lock held exclusively
 * (taken by the outermost DRV_LOCK of the thread holding bs->lock).
 */
/* The address of this thread's copy names the thread (bs->lock_owner). */
static __thread char drv_thread_token;

static void drv_lock(BlockDriverState *bs)
{
    if (bs->drv->thread_safe) {
        return;
    }
    pthread_mutex_lock(&bs->lock);
    if (bs->drv->bdrv_preadv_shared && bs->lock_depth++ == 0) {
        pthread_rwlock_wrlock(&bs->rw_lock);
        __atomic_store_n(&bs->lock_owner, (uintptr_t)&drv_thread_token, __ATOMIC_RELAXED);
    }
}

static void drv_unlock(BlockDriverState *bs)
{
    if (bs->drv->thread_safe) {
        return;
    }
    if (bs->drv->bdrv_preadv_shared && --bs->lock_depth == 0) {
        __atomic_store_n(&bs->lock_owner, (uintptr_t)0, __ATOMIC_RELAXED);
        pthread_rwlock_unlock(&bs->rw_lock);
    }
    pthread_mutex_unlock(&bs->lock);
}

/* Whether the calling thread holds @bs's locks (it is inside one of its callbacks). */
static bool drv_locked_by_me(BlockDriverState *bs)
{
    return __atomic_load_n(&bs->lock_owner, __ATOMIC_RELAXED) == (uintptr_t)&drv_thread_token;
}

#define DRV_LOCK(bs)   drv_lock(bs)
#define DRV_UNLOCK(bs) drv_unlock(bs)

/* Alignment and, on formats, bounds of a request. */
static int check_request(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    uint64_t end;

    if (!IS_ALIGNED(offset, bs->request_alignment) || !IS_ALIGNED(bytes, bs->request_alignment)) {
        return -EINVAL;
    }
    if (ADD_OVERFLOW(offset, bytes, &end) || end > (uint64_t)INT64_MAX) {
        return -ERANGE;
    }
    if (!bs->drv->is_protocol && end > (uint64_t)bs->total_sectors * BDRV_SECTOR_SIZE) {
        return -ERANGE;
    }
    return 0;
}

/*
 * Run a driver's shared read or write @fn under bs->rw_lock held shared;
 * -EAGAIN when there is none, when this thread already holds the node's
 * exclusive locks (it is inside one of its callbacks), or when @fn cannot
 * serve the request: the caller then takes the exclusive path.
 */
static int run_shared(BlockDriverState *bs,
                      int (*fn)(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov),
                      uint64_t offset, QBIOVector *qiov)
{
    int ret;

    if (!fn || drv_locked_by_me(bs)) {
        return -EAGAIN;
    }
    pthread_rwlock_rdlock(&bs->rw_lock);
    ret = fn(bs, offset, qiov);
    pthread_rwlock_unlock(&bs->rw_lock);
    return ret;
}

int bdrv_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    int ret = check_request(bs, offset, qiov->size);
    if (ret < 0 || qiov->size == 0) {
        return ret;
    }
    /*
     * A read waits for a writer rather than joining the exclusive path
     * behind it: were it to give up on a busy lock instead, every read
     * arriving while a writer waits would queue on bs->lock and run
     * exclusively, and with enough threads none would ever get back (64
     * threads of O_DIRECT reads ran one at a time, 4x slower). A thread
     * reading from inside one of the node's own callbacks already holds
     * the exclusive locks and takes the recursive path.
     */
    ret = run_shared(bs, bs->drv->bdrv_preadv_shared, offset, qiov);
    if (ret != -EAGAIN) {
        return ret;
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_preadv(bs, offset, qiov);
    DRV_UNLOCK(bs);
    return ret;
}

int bdrv_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    int ret;

    if (bs->read_only) {
        return -EROFS;
    }
    if (!bs->drv->bdrv_pwritev) {
        return -ENOTSUP;
    }
    ret = check_request(bs, offset, qiov->size);
    if (ret < 0 || qiov->size == 0) {
        return ret;
    }
    /* Overwrites in place run in parallel, as reads do (see bdrv_preadv). */
    ret = run_shared(bs, bs->drv->bdrv_pwritev_shared, offset, qiov);
    if (ret != -EAGAIN) {
        return ret;
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_pwritev(bs, offset, qiov);
    DRV_UNLOCK(bs);
    return ret;
}

int bdrv_aio_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov, int notify_fd,
                    BdrvAioCompletionFunc *cb, void *opaque)
{
    int ret;

    if (!bs->drv->bdrv_aio_preadv) {
        return -ENOTSUP;
    }
    ret = check_request(bs, offset, qiov->size);
    if (ret < 0) {
        return ret;
    }
    if (qiov->size == 0) {
        return -EAGAIN;
    }
    if (bs->drv->thread_safe) {
        return bs->drv->bdrv_aio_preadv(bs, offset, qiov, notify_fd, cb, opaque);
    }
    /*
     * Other drivers start the read under the node's rw_lock held shared, as
     * shared reads run; a lock that is busy (or held by this thread) means
     * the caller's slower path rather than a wait.
     */
    if (drv_locked_by_me(bs) || pthread_rwlock_tryrdlock(&bs->rw_lock) != 0) {
        return -EAGAIN;
    }
    ret = bs->drv->bdrv_aio_preadv(bs, offset, qiov, notify_fd, cb, opaque);
    pthread_rwlock_unlock(&bs->rw_lock);
    return ret;
}

void bdrv_aio_poll(BlockDriverState *bs)
{
    if (bs->drv->bdrv_aio_poll) {
        bs->drv->bdrv_aio_poll(bs);
    }
}

int bdrv_pread(BlockDriverState *bs, uint64_t offset, void *buf, size_t bytes)
{
    QBIOVector qiov;
    qiov_init_buf(&qiov, buf, bytes);
    return bdrv_preadv(bs, offset, &qiov);
}

int bdrv_pwrite(BlockDriverState *bs, uint64_t offset, const void *buf, size_t bytes)
{
    QBIOVector qiov;
    qiov_init_buf(&qiov, (void *)buf, bytes);
    return bdrv_pwritev(bs, offset, &qiov);
}

int bdrv_pwrite_sync(BlockDriverState *bs, uint64_t offset, const void *buf, size_t bytes)
{
    int ret = bdrv_pwrite(bs, offset, buf, bytes);
    return ret < 0 ? ret : bdrv_flush(bs);
}

int bdrv_pwritev_compressed(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    uint64_t size = (uint64_t)bs->total_sectors * BDRV_SECTOR_SIZE;
    BlockDriverInfo bdi;
    uint64_t cs;
    size_t pos = 0;
    int ret;

    if (bs->read_only) {
        return -EROFS;
    }
    if (!bs->drv->bdrv_pwritev_compressed) {
        return -ENOTSUP;
    }
    ret = check_request(bs, offset, qiov->size);
    if (ret < 0 || qiov->size == 0) {
        return ret;
    }
    memset(&bdi, 0, sizeof(bdi));
    ret = bdrv_get_info(bs, &bdi);
    if (ret < 0) {
        return ret;
    }
    if (bdi.cluster_size <= 0) {
        return -ENOTSUP;
    }
    cs = (uint64_t)bdi.cluster_size;
    if (offset % cs || (qiov->size % cs && offset + qiov->size != size)) {
        return -EINVAL;
    }
    while (pos < qiov->size) {
        size_t n = (size_t)MIN(cs, qiov->size - pos);
        QBIOVector part;

        ret = qiov_init_slice(&part, qiov, pos, n);
        if (ret < 0) {
            return ret;
        }
        DRV_LOCK(bs);
        ret = bs->drv->bdrv_pwritev_compressed(bs, offset + pos, &part);
        DRV_UNLOCK(bs);
        qiov_destroy(&part);
        if (ret < 0) {
            return ret;
        }
        pos += n;
    }
    return 0;
}

int bdrv_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return bdrv_pwrite_zeroes_flags(bs, offset, bytes, 0);
}

int bdrv_pwrite_zeroes_flags(BlockDriverState *bs, uint64_t offset, uint64_t bytes, int flags)
{
    enum { CHUNK = 1 << 20 };
    int (*zero_fn)(BlockDriverState *, uint64_t, uint64_t) = bs->drv->bdrv_pwrite_zeroes;
    void *zero;
    int ret;

    if (bs->read_only) {
        return -EROFS;
    }
    ret = check_request(bs, offset, bytes);
    if (ret < 0 || bytes == 0) {
        return ret;
    }
    if ((flags & BDRV_REQ_MAY_UNMAP) && bs->drv->bdrv_pwrite_zeroes_unmap) {
        zero_fn = bs->drv->bdrv_pwrite_zeroes_unmap;
    }
    if (zero_fn) {
        DRV_LOCK(bs);
        ret = zero_fn(bs, offset, bytes);
        DRV_UNLOCK(bs);
        if (ret != -ENOTSUP) {
            return ret;
        }
    }
    zero = calloc(1, MIN(bytes, (uint64_t)CHUNK));
    if (!zero) {
        return -ENOMEM;
    }
    while (bytes) {
        size_t n = (size_t)MIN(bytes, (uint64_t)CHUNK);
        ret = bdrv_pwrite(bs, offset, zero, n);
        if (ret < 0) {
            break;
        }
        offset += n;
        bytes -= n;
    }
    free(zero);
    return ret;
}

int bdrv_readv(BlockDriverState *bs, int64_t sector_num, QBIOVector *qiov)
{
    if (sector_num < 0 || sector_num > INT64_MAX / (int64_t)BDRV_SECTOR_SIZE) {
        return -ERANGE;
    }
    return bdrv_preadv(bs, (uint64_t)sector_num << BDRV_SECTOR_BITS, qiov);
}

int bdrv_writev(BlockDriverState *bs, int64_t sector_num, QBIOVector *qiov)
{
    if (sector_num < 0 || sector_num > INT64_MAX / (int64_t)BDRV_SECTOR_SIZE) {
        return -ERANGE;
    }
    return bdrv_pwritev(bs, (uint64_t)sector_num << BDRV_SECTOR_BITS, qiov);
}

int bdrv_flush(BlockDriverState *bs)
{
    int ret = 0;

    if (!bs) {
        return 0;
    }
    /* The format writes back what it caches, then its file makes it durable. */
    if (bs->drv->bdrv_flush) {
        DRV_LOCK(bs);
        ret = bs->drv->bdrv_flush(bs);
        DRV_UNLOCK(bs);
    }
    if (ret == 0 && bs->file && !bs->read_only) {
        ret = bdrv_flush(bs->file);
    }
    return ret;
}

int bdrv_pdiscard(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    int ret;

    if (bs->read_only) {
        return -EROFS;
    }
    ret = check_request(bs, offset, bytes);
    if (ret < 0 || bytes == 0 || !bs->drv->bdrv_pdiscard) {
        return ret;
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_pdiscard(bs, offset, bytes);
    DRV_UNLOCK(bs);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Allocation                                                          */

int bdrv_read_backing(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov, uint64_t limit)
{
    uint64_t bytes = qiov->size;
    uint64_t avail = 0;
    int ret;

    if (bs->backing && offset < limit) {
        int64_t blen = bdrv_getlength(bs->backing);
        if (blen < 0) {
            return (int)blen;
        }
        if (offset < (uint64_t)blen) {
            uint64_t end = MIN(ROUND_UP((uint64_t)blen, BDRV_SECTOR_SIZE),
                               (uint64_t)bs->backing->total_sectors * BDRV_SECTOR_SIZE);
            end = MIN(end, limit);
            avail = end > offset ? MIN(bytes, end - offset) : 0;
        }
    }
    if (avail) {
        QBIOVector part;
        ret = qiov_init_slice(&part, qiov, 0, (size_t)avail);
        if (ret < 0) {
            return ret;
        }
        ret = bdrv_preadv(bs->backing, offset, &part);
        qiov_destroy(&part);
        if (ret < 0) {
            return ret;
        }
    }
    if (avail < bytes) {
        qiov_memset(qiov, (size_t)avail, 0, (size_t)(bytes - avail));
    }
    return 0;
}

int bdrv_status_look_through(BlockDriverState *file, uint64_t host, uint64_t *pnum, int ret)
{
    uint64_t fnum = 0, fmap;
    BlockDriverState *ffile;
    int fret = bdrv_block_status(file, host, *pnum, &fnum, &fmap, &ffile);

    if (fret < 0) {
        return ret;
    }
    if (fnum == 0) {
        /* Entirely past the end of the file: reads there return zeros. */
        return (fret & BDRV_BLOCK_EOF) ? ret | BDRV_BLOCK_ZERO : ret;
    }
    if (fnum < *pnum) {
        *pnum = fnum;
    }
    return (fret & BDRV_BLOCK_ZERO) ? ret | BDRV_BLOCK_ZERO : ret;
}

int bdrv_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes, uint64_t *pnum,
                      uint64_t *map, BlockDriverState **file)
{
    int64_t len = bdrv_getlength(bs);
    uint64_t dummy_map;
    BlockDriverState *dummy_file;
    int ret;

    *pnum = 0;
    if (!map) {
        map = &dummy_map;
    }
    if (!file) {
        file = &dummy_file;
    }
    *map = 0;
    *file = NULL;
    if (len < 0) {
        return (int)len;
    }
    if (offset >= (uint64_t)len || bytes == 0) {
        return offset >= (uint64_t)len ? BDRV_BLOCK_EOF : 0;
    }
    bytes = MIN(bytes, (uint64_t)len - offset);
    if (!bs->drv->bdrv_block_status) {
        *pnum = bytes;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_EOF * (offset + bytes == (uint64_t)len);
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_block_status(bs, offset, bytes, pnum, map, file);
    DRV_UNLOCK(bs);
    if (ret < 0) {
        return ret;
    }
    if (*pnum == 0 || *pnum > bytes) {
        /* A driver must make progress; treat a bad answer as plain data. */
        *pnum = bytes;
        ret = BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
        *file = NULL;
    }
    if (offset + *pnum == (uint64_t)len) {
        ret |= BDRV_BLOCK_EOF;
    }
    return ret;
}

int bdrv_block_status_above(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, BlockDriverState **file, int *depth)
{
    uint64_t n = bytes;
    int d = 0;
    int64_t top_len = bdrv_getlength(bs);

    if (top_len < 0) {
        return (int)top_len;
    }
    if (offset >= (uint64_t)top_len) {
        *pnum = 0;
        *depth = 0;
        return BDRV_BLOCK_EOF;
    }
    n = MIN(bytes, (uint64_t)top_len - offset);
    for (BlockDriverState *p = bs; p; p = p->backing, d++) {
        int64_t len = bdrv_getlength(p);
        uint64_t got;
        int ret;

        if (len < 0) {
            return (int)len;
        }
        if (offset >= (uint64_t)len) {
            /* Past the end of a short backing file: reads are zeros, and the
             * layer above it (whose backing is short) decides that. */
            *pnum = n;
            *depth = d - 1;
            if (map) {
                *map = 0;
            }
            if (file) {
                *file = NULL;
            }
            return BDRV_BLOCK_ZERO | (top_len == (int64_t)(offset + n) ? BDRV_BLOCK_EOF : 0);
        }
        ret = bdrv_block_status(p, offset, n, &got, map, file);
        if (ret < 0) {
            return ret;
        }
        if ((ret & BDRV_BLOCK_ALLOCATED) || !p->backing) {
            *pnum = got;
            if (ret & BDRV_BLOCK_ALLOCATED) {
                *depth = d;
            } else {
                /* Allocated nowhere in the chain: reads return zeros; the
                 * depth is the last layer's, as qemu-img map reports it. */
                *depth = d;
                ret |= BDRV_BLOCK_ZERO;
            }
            ret &= ~BDRV_BLOCK_EOF;
            if (offset + got == (uint64_t)top_len) {
                ret |= BDRV_BLOCK_EOF;
            }
            return ret;
        }
        n = got;   /* the next layer is only asked about what this one left open */
    }
    *pnum = n;
    *depth = d;
    return 0;
}

int bdrv_is_allocated(BlockDriverState *bs, uint64_t offset, uint64_t bytes, uint64_t *pnum)
{
    int ret = bdrv_block_status(bs, offset, bytes, pnum, NULL, NULL);
    if (ret < 0) {
        return ret;
    }
    return (ret & BDRV_BLOCK_ALLOCATED) && !(ret & BDRV_BLOCK_HOLE);
}

/* ------------------------------------------------------------------ */
/* Size, facts, check                                                  */

int64_t bdrv_getlength(BlockDriverState *bs)
{
    if (bs->drv->bdrv_getlength) {
        return bs->drv->bdrv_getlength(bs);
    }
    return bs->total_sectors * (int64_t)BDRV_SECTOR_SIZE;
}

const char *bdrv_get_format_name(const BlockDriverState *bs)
{
    return bs->drv->format_name;
}

uint32_t bdrv_get_request_alignment(const BlockDriverState *bs)
{
    return bs->request_alignment;
}

const char *bdrv_get_backing_file(const BlockDriverState *bs)
{
    return bs->backing_file;
}

const char *bdrv_get_backing_format(const BlockDriverState *bs)
{
    return bs->backing_format;
}

bool bdrv_is_encrypted(const BlockDriverState *bs)
{
    return bs->encrypted;
}

int bdrv_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc, BdrvError *err)
{
    int ret;

    if (bs->read_only) {
        return bdrv_error_set(err, -EROFS, "'%s' is opened read-only", bs->filename);
    }
    if (!bs->drv->bdrv_truncate) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': the %s format cannot be resized",
                              bs->filename, bs->drv->format_name);
    }
    if (offset > (uint64_t)INT64_MAX) {
        return bdrv_error_set(err, -ERANGE, "'%s': size %llu is too large", bs->filename,
                              (unsigned long long)offset);
    }
    if (!(bs->drv->caps & BDRV_CAP_SHRINK) && (int64_t)offset < bdrv_getlength(bs)) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': %s images cannot be shrunk",
                              bs->filename, bs->drv->format_name);
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_truncate(bs, offset, prealloc, err);
    DRV_UNLOCK(bs);
    return ret;
}

int bdrv_has_zero_init(BlockDriverState *bs)
{
    if (bs->backing_file[0]) {
        return 0;
    }
    return bs->drv->bdrv_has_zero_init ? bs->drv->bdrv_has_zero_init(bs) : 0;
}

int64_t bdrv_get_allocated_file_size(BlockDriverState *bs)
{
    if (bs->drv->bdrv_get_allocated_file_size) {
        return bs->drv->bdrv_get_allocated_file_size(bs);
    }
    if (bs->file) {
        return bdrv_get_allocated_file_size(bs->file);
    }
    return -ENOTSUP;
}

/*
 * The dirty flag and the facts below change under the node's lock (the
 * first write of a session marks a qcow2 image dirty), so they are read
 * under it too, even while other threads are writing.
 */
int bdrv_is_dirty(BlockDriverState *bs)
{
    int ret = 0;

    if (bs->drv->bdrv_is_dirty) {
        DRV_LOCK(bs);
        ret = bs->drv->bdrv_is_dirty(bs);
        DRV_UNLOCK(bs);
    }
    return ret;
}

int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    int ret = 0;

    memset(bdi, 0, sizeof(*bdi));
    if (bs->drv->bdrv_get_info) {
        DRV_LOCK(bs);
        ret = bs->drv->bdrv_get_info(bs, bdi);
        DRV_UNLOCK(bs);
    }
    return ret;
}

int bdrv_get_specific_info(BlockDriverState *bs, QBlockSpecificInfo *info, BdrvError *err)
{
    int ret;

    memset(info, 0, sizeof(*info));
    if (!bs->drv->bdrv_get_specific_info) {
        return bdrv_error_set(err, -ENOTSUP, "the %s format has no format-specific information",
                              bs->drv->format_name);
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_get_specific_info(bs, info, err);
    DRV_UNLOCK(bs);
    if (ret < 0) {
        bdrv_specific_info_clear(info);
    }
    return ret;
}

void bdrv_specific_info_clear(QBlockSpecificInfo *info)
{
    switch (info->fmt_type) {
    case QB_FMT_QCOW2:
        free(info->u.qcow2.data_file);
        for (uint32_t i = 0; info->u.qcow2.bitmaps && i < info->u.qcow2.nb_bitmaps; i++) {
            free(info->u.qcow2.bitmaps[i].name);
        }
        free(info->u.qcow2.bitmaps);
        break;
    case QB_FMT_VMDK:
        free(info->u.vmdk.create_type);
        for (uint32_t i = 0; info->u.vmdk.extents && i < info->u.vmdk.nb_extents; i++) {
            free(info->u.vmdk.extents[i].filename);
            free(info->u.vmdk.extents[i].format);
        }
        free(info->u.vmdk.extents);
        break;
    case QB_FMT_QED:
        free(info->u.qed.backing_file);
        free(info->u.qed.backing_fmt);
        break;
    case QB_FMT_COW:
        free(info->u.cow.backing_file);
        break;
    default:
        /* The other formats' facts hold no pointers. */
        break;
    }
    memset(info, 0, sizeof(*info));
}

int bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err)
{
    int ret;

    memset(res, 0, sizeof(*res));
    if (!bs->drv->bdrv_check) {
        return bdrv_error_set(err, -ENOTSUP, "this image format (%s) does not support checks",
                              bs->drv->format_name);
    }
    if (fix && !(bs->drv->caps & BDRV_CAP_REPAIR)) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': %s images cannot be repaired",
                              bs->filename, bs->drv->format_name);
    }
    if (fix && bs->read_only) {
        return bdrv_error_set(err, -EROFS, "'%s' must be opened read-write to be repaired",
                              bs->filename);
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_check(bs, res, fix, err);
    DRV_UNLOCK(bs);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Internal snapshots                                                  */

void bdrv_snapshot_list_free(BdrvSnapshotInfo *list, int count)
{
    for (int i = 0; list && i < count; i++) {
        free(list[i].id);
        free(list[i].name);
    }
    free(list);
}

typedef int (*SnapshotChangeFn)(BlockDriverState *bs, const char *arg, BdrvError *err);

/*
 * Create, goto and delete: the checks they share, then @fn under the node's
 * lock. Refused: the temporary overlay of snapshot mode (whatever it took
 * would vanish at close, and what it would apply is not its own), a driver
 * without snapshots, a read-only node, a NULL @arg.
 */
static int snapshot_change(BlockDriverState *bs, SnapshotChangeFn fn, const char *what,
                           const char *arg, BdrvError *err)
{
    int ret;

    if (bs->open_flags & BDRV_O_SNAPSHOT) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': cannot %s an internal snapshot while the "
                              "image is opened in snapshot mode (its writes go to a temporary "
                              "overlay)", bs->backing ? bs->backing->filename : bs->filename,
                              what);
    }
    if (!fn) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': the %s format does not support internal "
                              "snapshots", bs->filename, bs->drv->format_name);
    }
    if (bs->read_only) {
        return bdrv_error_set(err, -EROFS, "'%s' is opened read-only: cannot %s a snapshot",
                              bs->filename, what);
    }
    if (!arg) {
        return bdrv_error_set(err, -EINVAL, "'%s': no snapshot to %s", bs->filename, what);
    }
    DRV_LOCK(bs);
    ret = fn(bs, arg, err);
    DRV_UNLOCK(bs);
    return ret;
}

int bdrv_snapshot_list(BlockDriverState *bs, BdrvSnapshotInfo **list, int *count,
                       BdrvError *err)
{
    int ret;

    *list = NULL;
    *count = 0;
    /* In snapshot mode the image itself is the overlay's backing node. */
    if ((bs->open_flags & BDRV_O_SNAPSHOT) && bs->backing) {
        bs = bs->backing;
    }
    if (!bs->drv->bdrv_snapshot_list) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': the %s format does not support internal "
                              "snapshots", bs->filename, bs->drv->format_name);
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_snapshot_list(bs, list, count);
    DRV_UNLOCK(bs);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not list the snapshots: %s", bs->filename,
                              strerror(-ret));
    }
    return 0;
}

int bdrv_snapshot_create(BlockDriverState *bs, const char *name, BdrvError *err)
{
    if (name && strlen(name) > BDRV_SNAPSHOT_NAME_MAX) {
        return bdrv_error_set(err, -EINVAL, "'%s': snapshot name is %zu bytes long, at most %d "
                              "are allowed", bs->filename, strlen(name), BDRV_SNAPSHOT_NAME_MAX);
    }
    return snapshot_change(bs, bs->drv->bdrv_snapshot_create, "create", name, err);
}

int bdrv_snapshot_goto(BlockDriverState *bs, const char *id_or_name, BdrvError *err)
{
    return snapshot_change(bs, bs->drv->bdrv_snapshot_goto, "apply", id_or_name, err);
}

int bdrv_snapshot_delete(BlockDriverState *bs, const char *id_or_name, BdrvError *err)
{
    return snapshot_change(bs, bs->drv->bdrv_snapshot_delete, "delete", id_or_name, err);
}

/* ------------------------------------------------------------------ */
/* Chain maintenance                                                   */

int bdrv_change_backing_file(BlockDriverState *bs, const char *name, const char *format,
                             BdrvError *err)
{
    int ret;

    if (bs->read_only) {
        return bdrv_error_set(err, -EROFS, "'%s' is opened read-only", bs->filename);
    }
    if (!bs->drv->bdrv_change_backing_file) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': the %s format cannot record a backing "
                              "file", bs->filename, bs->drv->format_name);
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_change_backing_file(bs, name, format, err);
    DRV_UNLOCK(bs);
    return ret;
}

int bdrv_amend(BlockDriverState *bs, BdrvOpts *opts, BdrvError *err)
{
    int ret;

    if (bs->read_only) {
        return bdrv_error_set(err, -EROFS, "'%s' is opened read-only", bs->filename);
    }
    if (!bs->drv->bdrv_amend) {
        return bdrv_error_set(err, -ENOTSUP, "Format driver '%s' does not support option "
                              "amendment", bs->drv->format_name);
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_amend(bs, opts, err);
    DRV_UNLOCK(bs);
    return ret;
}

int bdrv_make_empty(BlockDriverState *bs)
{
    int ret;

    if (bs->read_only) {
        return -EROFS;
    }
    if (!bs->drv->bdrv_make_empty) {
        return -ENOTSUP;
    }
    DRV_LOCK(bs);
    ret = bs->drv->bdrv_make_empty(bs);
    DRV_UNLOCK(bs);
    return ret;
}
