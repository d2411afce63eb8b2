/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* chain.c: backing-chain maintenance through the facade: change the backing file, rebase, commit, amend. */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "block/block_int.h"
#include "internal.h"

/* Bytes examined (and copied) per step of rebase and commit. */
#define CHAIN_CHUNK (1u << 20)

/* The state must be open, writable when @need_rw, and not in snapshot mode. */
static int chain_check_state(QBroker *broker, const char *func, QBlockState *qbs, bool need_rw)
{
    if (!qbs || !qbs->bs) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: %s", func,
                       qbs ? "the state is not open" : "NULL state");
    }
    if (qbs->flags & LIBQBLOCK_O_SNAPSHOT) {
        return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                       "%s: '%s': not possible in snapshot mode", func, qbs->filename);
    }
    if (need_rw && !(qbs->flags & LIBQBLOCK_O_RDWR)) {
        return qb_fail(broker, QB_ERR_READ_ONLY, EROFS, "%s: '%s': the image is opened "
                       "read-only", func, qbs->filename);
    }
    return 0;
}

/* The file name in @loc (NULL when @loc is NULL or names no file), or an error. */
static int chain_loc_name(QBroker *broker, const char *func, const QBlockProtInfo *loc,
                          const char **name)
{
    *name = NULL;
    if (!loc) {
        return 0;
    }
    if (loc->prot_type != QB_PROT_FILE) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: unsupported protocol %d",
                       func, (int)loc->prot_type);
    }
    if (loc->prot_op.o_file.filename && loc->prot_op.o_file.filename[0]) {
        *name = loc->prot_op.o_file.filename;
    }
    return 0;
}

/* The format name for @fmt (NULL for QB_FMT_NONE), or an error for a value that is no format. */
static int chain_fmt_name(QBroker *broker, const char *func, enum QBlockFmtType fmt,
                          const char **name)
{
    *name = NULL;
    if (fmt == QB_FMT_NONE) {
        return 0;
    }
    *name = qb_fmttype2str(fmt);
    if (!*name) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: unknown format %d", func,
                       (int)fmt);
    }
    return 0;
}

/* Flags for opening a backing file of @bs: read-only, the cache mode of @bs. */
static int backing_flags(const BlockDriverState *bs)
{
    return bs->open_flags & ~(BDRV_O_RDWR | BDRV_O_SNAPSHOT | BDRV_O_CREATE);
}

/*
 * Open the backing file @bs now records (its full name into
 * bs->full_backing_filename) into *@out; *@out stays NULL when @bs has none.
 */
static int open_recorded_backing(BlockDriverState *bs, BlockDriverState **out, BdrvError *err)
{
    int ret;

    *out = NULL;
    if (!bs->backing_file[0]) {
        bs->full_backing_filename[0] = '\0';
        return 0;
    }
    ret = bdrv_resolve_backing_name(bs->full_backing_filename, sizeof(bs->full_backing_filename),
                                    bs->filename, bs->backing_file);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "backing file name of '%s' is too long", bs->filename);
    }
    return bdrv_open(out, bs->full_backing_filename,
                     bs->backing_format[0] ? bs->backing_format : NULL, backing_flags(bs), err);
}

/* The rebase step: write the reference, then read through the new backing node @nb. */
static int switch_backing(QBroker *broker, const char *func, QBlockState *qbs, const char *name,
                          const char *fmt, BlockDriverState *nb, bool open_new)
{
    BlockDriverState *bs = qbs->bs;
    BdrvError err = { 0 };
    int ret;

    ret = bdrv_change_backing_file(bs, name, fmt, &err);
    if (ret < 0) {
        bdrv_close(nb);
        return qb_fail_errno(broker, ret, &err, func, qbs->filename);
    }
    bdrv_close(bs->backing);
    bs->backing = NULL;
    if (open_new) {
        /* The reference is what counts; an unopenable backing file reads as zeros meanwhile. */
        BdrvError ignored = { 0 };
        if (open_recorded_backing(bs, &nb, &ignored) < 0) {
            nb = NULL;
        }
    } else if (bs->backing_file[0]) {
        bdrv_resolve_backing_name(bs->full_backing_filename, sizeof(bs->full_backing_filename),
                                  bs->filename, bs->backing_file);
    } else {
        bs->full_backing_filename[0] = '\0';
    }
    bs->backing = nb;
    return 0;
}

/* Report cancellation by a progress callback. */
static int chain_canceled(QBroker *broker, const char *func, const QBlockState *qbs)
{
    return qb_fail(broker, QB_ERR_CANCELED, ECANCELED, "%s: '%s': canceled by the "
                   "progress callback", func, qbs->filename);
}

/*
 * Write into @bs at @off the runs of 512-byte sectors where @old (what it
 * reads now) and @new (what the new backing file holds) differ, as
 * qemu-img does: sectors that agree stay unallocated. A partial cluster
 * written here is completed from the old chain, which holds @old.
 */
static int write_differences(BlockDriverState *bs, uint64_t off, const uint8_t *old,
                             const uint8_t *new, uint64_t n)
{
    uint64_t pos = 0;

    while (pos < n) {
        uint64_t len = MIN((uint64_t)BDRV_SECTOR_SIZE, n - pos), start = pos;
        bool differs = memcmp(old + pos, new + pos, len) != 0;
        int ret;

        pos += len;
        while (pos < n) {
            len = MIN((uint64_t)BDRV_SECTOR_SIZE, n - pos);
            if ((memcmp(old + pos, new + pos, len) != 0) != differs) {
                break;
            }
            pos += len;
        }
        if (differs) {
            ret = bdrv_pwrite(bs, off + start, old + start, pos - start);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/*
 * Copy into @bs, for each range of [0, size) it does not allocate itself,
 * the data its current chain shows wherever the new backing node @nb
 * (NULL: none) reads differently.
 */
static int rebase_copy(QBroker *broker, const char *func, QBlockState *qbs, BlockDriverState *nb,
                       QBlockProgressFunc progress, void *opaque)
{
    BlockDriverState *bs = qbs->bs;
    int64_t size = bdrv_getlength(bs), nb_size = nb ? bdrv_getlength(nb) : 0;
    uint8_t *old_buf = NULL, *new_buf = NULL;
    uint64_t off = 0;
    int ret = 0;

    if (size < 0 || nb_size < 0) {
        return qb_fail_errno(broker, (int)(size < 0 ? size : nb_size), NULL, func,
                             qbs->filename);
    }
    old_buf = malloc(CHAIN_CHUNK);
    new_buf = malloc(CHAIN_CHUNK);
    if (!old_buf || !new_buf) {
        ret = qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", func);
        goto out;
    }
    while (off < (uint64_t)size) {
        uint64_t n = MIN((uint64_t)size - off, (uint64_t)CHAIN_CHUNK), pnum = 0;
        int alloc = bdrv_is_allocated(bs, off, n, &pnum);

        if (alloc < 0 || pnum == 0) {
            ret = qb_fail_errno(broker, alloc < 0 ? alloc : -EIO, NULL, func,
                                qbs->filename);
            goto out;
        }
        n = pnum;
        if (!alloc) {
            uint64_t in_nb = off < (uint64_t)nb_size ? MIN(n, (uint64_t)nb_size - off) : 0;

            /* Reading the image where it allocates nothing shows its old chain. */
            ret = bdrv_pread(bs, off, old_buf, n);
            memset(new_buf, 0, n);
            if (ret == 0 && in_nb) {
                ret = bdrv_pread(nb, off, new_buf, in_nb);
            }
            if (ret == 0) {
                ret = write_differences(bs, off, old_buf, new_buf, n);
            }
            if (ret < 0) {
                ret = qb_fail_errno(broker, ret, NULL, func, qbs->filename);
                goto out;
            }
        }
        off += n;
        if (progress && progress(off, (uint64_t)size, opaque)) {
            ret = chain_canceled(broker, func, qbs);
            goto out;
        }
    }
    ret = bdrv_flush(bs);
    if (ret < 0) {
        ret = qb_fail_errno(broker, ret, NULL, func, qbs->filename);
    }
out:
    free(old_buf);
    free(new_buf);
    return ret;
}

/* qb_rebase and qb_change_backing, which is an unsafe rebase; @func names the caller. */
static int do_rebase(QBroker *broker, const char *func, QBlockState *qbs,
                     const QBlockProtInfo *backing_loc, enum QBlockFmtType backing_fmt,
                     int flags, QBlockProgressFunc progress, void *opaque)
{
    const char *name = NULL, *fmt = NULL;
    BlockDriverState *nb = NULL;
    BdrvError err = { 0 };
    int ret;

    QB_REQUIRE_BROKER(broker);

    ret = chain_check_state(broker, func, qbs, true);
    if (ret == 0) {
        ret = chain_loc_name(broker, func, backing_loc, &name);
    }
    if (ret == 0) {
        ret = chain_fmt_name(broker, func, backing_fmt, &fmt);
    }
    if (ret < 0) {
        return ret;
    }
    if (flags & ~QB_REBASE_UNSAFE) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "%s: '%s': unknown flags 0x%x",
                       func, qbs->filename, (unsigned)(flags & ~QB_REBASE_UNSAFE));
    }
    if (!qbs->bs->drv->bdrv_change_backing_file) {
        return qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP, "%s: '%s': the %s format "
                       "cannot record a backing file", func, qbs->filename,
                       bdrv_get_format_name(qbs->bs));
    }
    if (flags & QB_REBASE_UNSAFE) {
        state_exclusive_begin(qbs);
        ret = switch_backing(broker, func, qbs, name, fmt, NULL, true);
        state_exclusive_end(qbs);
        return ret;
    }

    if (name) {
        char full[PATH_MAX];
        ret = bdrv_resolve_backing_name(full, sizeof(full), qbs->filename, name);
        if (ret == 0) {
            ret = bdrv_open(&nb, full, fmt, backing_flags(qbs->bs), &err);
        }
        if (ret < 0) {
            bdrv_error_prefix(&err, "Could not open new backing file '%s'", name);
            return qb_fail_errno(broker, ret, &err, func, qbs->filename);
        }
        /* The format found by probing is the one to record. */
        if (!fmt) {
            fmt = bdrv_get_format_name(nb);
        }
    }
    state_exclusive_begin(qbs);
    ret = rebase_copy(broker, func, qbs, nb, progress, opaque);
    if (ret == 0) {
        ret = switch_backing(broker, func, qbs, name, fmt, nb, false);
        nb = NULL;
    }
    state_exclusive_end(qbs);
    bdrv_close(nb);
    return ret;
}

int qb_rebase(QBroker *broker, QBlockState *qbs, const QBlockProtInfo *backing_loc,
              enum QBlockFmtType backing_fmt, int flags, QBlockProgressFunc progress,
              void *opaque)
{
    return do_rebase(broker, "qb_rebase", qbs, backing_loc, backing_fmt, flags, progress,
                     opaque);
}

int qb_change_backing(QBroker *broker, QBlockState *qbs, const QBlockProtInfo *backing_loc,
                      enum QBlockFmtType backing_fmt)
{
    return do_rebase(broker, "qb_change_backing", qbs, backing_loc, backing_fmt,
                     QB_REBASE_UNSAFE, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* commit                                                              */

/* Whether the files named @a and @b are the same file (the same inode). */
static bool same_inode(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/*
 * Is [off, off+n) allocated in a layer from @top down to, not including,
 * @base? *@pnum: the bytes from @off that share the answer. A layer
 * shorter than @off reads as zeros there, which hides what lies below, so
 * it counts as allocating the range.
 */
static int allocated_above(BlockDriverState *top, BlockDriverState *base, uint64_t off,
                           uint64_t n, uint64_t *pnum)
{
    for (BlockDriverState *p = top; p && p != base; p = p->backing) {
        int64_t len = bdrv_getlength(p);
        uint64_t pn = 0;
        int r;

        if (len < 0) {
            return (int)len;
        }
        if (off >= (uint64_t)len) {
            *pnum = n;
            return 1;
        }
        r = bdrv_is_allocated(p, off, MIN(n, (uint64_t)len - off), &pn);
        if (r < 0) {
            return r;
        }
        if (pn == 0) {
            return -EIO;
        }
        if (r) {
            *pnum = pn;
            return 1;
        }
        n = pn;
    }
    *pnum = n;
    return 0;
}

/* Copy what the layers above @base hold, from [0, size) of @top, into @base. */
static int commit_copy(BlockDriverState *top, BlockDriverState *base, uint64_t size,
                       QBlockProgressFunc progress, void *opaque, bool *canceled)
{
    uint8_t *buf = malloc(CHAIN_CHUNK);
    uint64_t off = 0;
    int ret = 0;

    if (!buf) {
        return -ENOMEM;
    }
    while (off < size) {
        uint64_t n = MIN(size - off, (uint64_t)CHAIN_CHUNK), pnum = 0;
        int alloc = allocated_above(top, base, off, n, &pnum);

        if (alloc < 0) {
            ret = alloc;
            break;
        }
        if (alloc) {
            ret = bdrv_pread(top, off, buf, pnum);
            if (ret == 0) {
                ret = bdrv_pwrite(base, off, buf, pnum);
            }
            if (ret < 0) {
                break;
            }
        }
        off += pnum;
        if (progress && progress(off, size, opaque)) {
            *canceled = true;
            break;
        }
    }
    free(buf);
    if (ret == 0) {
        ret = bdrv_flush(base);
    }
    return ret;
}

int qb_commit(QBroker *broker, QBlockState *qbs, const QBlockProtInfo *base_loc, int flags,
              QBlockProgressFunc progress, void *opaque)
{
    BlockDriverState *top, *parent, *base, *rw = NULL, *ro = NULL;
    char base_name[PATH_MAX], base_fmt[32];
    const char *name;
    BdrvError err = { 0 };
    bool canceled = false;
    int base_flags, ret;
    int64_t size, base_size;

    QB_REQUIRE_BROKER(broker);

    ret = chain_check_state(broker, "qb_commit", qbs, !(flags & QB_COMMIT_KEEP_TOP));
    if (ret == 0) {
        ret = chain_loc_name(broker, "qb_commit", base_loc, &name);
    }
    if (ret < 0) {
        return ret;
    }
    if (flags & ~QB_COMMIT_KEEP_TOP) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_commit: '%s': unknown flags "
                       "0x%x", qbs->filename, (unsigned)(flags & ~QB_COMMIT_KEEP_TOP));
    }
    top = qbs->bs;
    if (!top->backing) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, ENOENT, "qb_commit: Image does not have "
                       "a backing file");
    }
    parent = top;
    base = top->backing;
    if (name) {
        while (base && !same_inode(name, base->filename)) {
            parent = base;
            base = base->backing;
        }
        if (!base) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, ENOENT, "qb_commit: Did not find '%s' "
                           "in the backing chain of '%s'", name, qbs->filename);
        }
    }
    size = bdrv_getlength(top);
    if (size < 0) {
        return qb_fail_errno(broker, (int)size, NULL, "qb_commit", qbs->filename);
    }

    state_exclusive_begin(qbs);
    /*
     * The base is open read-only below the image, sharing no write
     * permission; it is closed and opened again read-write (then
     * read-only once more) in its place, so that reads through the chain
     * and the writes of the commit go through one node.
     */
    snprintf(base_name, sizeof(base_name), "%s", base->filename);
    snprintf(base_fmt, sizeof(base_fmt), "%s", bdrv_get_format_name(base));
    base_flags = base->open_flags & ~BDRV_O_SNAPSHOT;
    bdrv_close(base);
    parent->backing = NULL;
    ret = bdrv_open(&rw, base_name, base_fmt, base_flags | BDRV_O_RDWR, &err);
    if (ret < 0) {
        bdrv_error_prefix(&err, "could not open '%s' read-write", base_name);
        qb_fail_errno(broker, ret, &err, "qb_commit", qbs->filename);
        goto reopen;
    }
    parent->backing = rw;
    base_size = bdrv_getlength(rw);
    if (base_size >= 0 && base_size < size) {
        /* The base must hold the whole disk of the image, as qemu-img commit makes it. */
        ret = bdrv_truncate(rw, (uint64_t)size, BDRV_PREALLOC_OFF, &err);
        if (ret < 0) {
            qb_fail_errno(broker, ret, &err, "qb_commit", base_name);
            goto reopen;
        }
    }
    ret = commit_copy(top, rw, (uint64_t)size, progress, opaque, &canceled);
    if (ret < 0) {
        qb_fail_errno(broker, ret, NULL, "qb_commit", base_name);
    } else if (canceled) {
        ret = chain_canceled(broker, "qb_commit", qbs);
    }

reopen:
    parent->backing = NULL;
    bdrv_close(rw);
    memset(&err, 0, sizeof(err));
    if (bdrv_open(&ro, base_name, base_fmt, base_flags & ~BDRV_O_RDWR, &err) < 0) {
        /* The chain below stays cut: unallocated areas read as zeros until a reopen. */
        ro = NULL;
        if (ret == 0) {
            ret = qb_fail_errno(broker, err.code ? err.code : -EIO, &err, "qb_commit",
                                base_name);
        }
    }
    parent->backing = ro;
    if (ret == 0 && !(flags & QB_COMMIT_KEEP_TOP)) {
        int r = bdrv_make_empty(top);
        /* Formats that cannot empty themselves keep their data, as with qemu-img. */
        if (r < 0 && r != -ENOTSUP) {
            ret = qb_fail_errno(broker, r, NULL, "qb_commit", qbs->filename);
        }
    }
    state_exclusive_end(qbs);
    return ret;
}

/* ------------------------------------------------------------------ */
/* amend                                                               */

int qb_amend(QBroker *broker, QBlockState *qbs, const char *options)
{
    BdrvError err = { 0 };
    BdrvOpts opts;
    int ret;

    QB_REQUIRE_BROKER(broker);

    ret = chain_check_state(broker, "qb_amend", qbs, true);
    if (ret < 0) {
        return ret;
    }
    if (!options) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL, "qb_amend: '%s': NULL options",
                       qbs->filename);
    }
    bdrv_opts_init(&opts);
    ret = bdrv_opts_parse(&opts, options, &err);
    if (ret == 0) {
        state_exclusive_begin(qbs);
        ret = bdrv_amend(qbs->bs, &opts, &err);
        state_exclusive_end(qbs);
    }
    bdrv_opts_free(&opts);
    if (ret < 0) {
        return qb_fail_errno(broker, ret, &err, "qb_amend", qbs->filename);
    }
    return 0;
}
