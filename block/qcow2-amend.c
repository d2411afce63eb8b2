/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qcow2-amend.c: qcow2's share of rebase (new backing reference), commit (emptying) and amend. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* Remove every header extension of @type from the state (not yet from the file). */
static void drop_ext(BDRVQcow2State *s, uint32_t type)
{
    int j = 0;

    for (int i = 0; i < s->nb_exts; i++) {
        if (s->exts[i].type == type) {
            free(s->exts[i].data);
        } else {
            s->exts[j++] = s->exts[i];
        }
    }
    s->nb_exts = j;
}

/*
 * Insert extension @type at position @pos (clamped to the end), copying
 * @data. QEMU writes the backing format first and the feature table after
 * it, so inserting at those places keeps headers byte-identical to QEMU's.
 */
static int insert_ext(BDRVQcow2State *s, int pos, uint32_t type, const void *data, uint32_t len)
{
    Qcow2HeaderExt *ne = realloc(s->exts, sizeof(*ne) * (size_t)(s->nb_exts + 1));
    uint8_t *copy = malloc(len ? len : 1);

    if (ne) {
        s->exts = ne;
    }
    if (!ne || !copy) {
        free(copy);
        return -ENOMEM;
    }
    memcpy(copy, data, len);
    if (pos > s->nb_exts) {
        pos = s->nb_exts;
    }
    memmove(&s->exts[pos + 1], &s->exts[pos], sizeof(*ne) * (size_t)(s->nb_exts - pos));
    s->exts[pos].type = type;
    s->exts[pos].len = len;
    s->exts[pos].data = copy;
    s->nb_exts++;
    return 0;
}

int qcow2_change_backing_file(BlockDriverState *bs, const char *name, const char *format,
                              BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    char old_name[sizeof(bs->backing_file)], old_fmt[sizeof(bs->backing_format)];
    int ret;

    if (s->corrupt) {
        return bdrv_error_set(err, -EIO, "'%s' was found corrupt", bs->filename);
    }
    if (name && strlen(name) > QCOW2_MAX_BACKING_NAME) {
        return bdrv_error_set(err, -EINVAL, "'%s': a backing file name of more than %u bytes "
                              "cannot be recorded", bs->filename, QCOW2_MAX_BACKING_NAME);
    }
    /* Without a backing file a backing format means nothing; QEMU drops it too. */
    if (!name || !name[0]) {
        name = NULL;
        format = NULL;
    }
    if (format && strlen(format) >= 16) {
        return bdrv_error_set(err, -EINVAL, "'%s': backing format name '%s' is too long",
                              bs->filename, format);
    }
    memcpy(old_name, bs->backing_file, sizeof(old_name));
    memcpy(old_fmt, bs->backing_format, sizeof(old_fmt));

    drop_ext(s, QCOW2_EXT_BACKING_FORMAT);
    if (format) {
        ret = insert_ext(s, 0, QCOW2_EXT_BACKING_FORMAT, format, (uint32_t)strlen(format));
        if (ret < 0) {
            goto fail;
        }
    }
    snprintf(bs->backing_file, sizeof(bs->backing_file), "%s", name ? name : "");
    snprintf(bs->backing_format, sizeof(bs->backing_format), "%s", format ? format : "");
    ret = qcow2_update_header(bs);
    if (ret == 0) {
        return 0;
    }
fail:
    /* Put the state back as the file still has it (the header write is one sector write). */
    memcpy(bs->backing_file, old_name, sizeof(old_name));
    memcpy(bs->backing_format, old_fmt, sizeof(old_fmt));
    drop_ext(s, QCOW2_EXT_BACKING_FORMAT);
    if (old_fmt[0]) {
        insert_ext(s, 0, QCOW2_EXT_BACKING_FORMAT, old_fmt, (uint32_t)strlen(old_fmt));
    }
    if (ret == -ENOSPC) {
        return bdrv_error_set(err, ret, "'%s': the backing file name does not fit in the "
                              "header cluster", bs->filename);
    }
    return bdrv_error_set(err, ret, "'%s': could not rewrite the header: %s", bs->filename,
                          strerror(-ret));
}

int qcow2_make_empty(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    /* A full discard leaves every cluster unallocated, so reads go to the backing file. */
    ret = qcow2_discard_guest(bs, 0, s->size, true);
    if (ret == 0) {
        ret = qcow2_flush_all(bs);
    }
    return ret;
}

/*
 * Version 2 has no zero clusters: before a downgrade, every range the
 * active tables mark as zero is made to read as zeros another way. Without
 * a backing file an unallocated cluster reads as zeros, so the cluster is
 * simply dropped; with one, zeros are written as data, as QEMU does.
 */
static int expand_zero_clusters(BlockDriverState *bs, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = 0;
    uint8_t *zeros = NULL;
    int ret = 0;

    while (off < s->size) {
        uint64_t pnum = 0, map = 0;
        BlockDriverState *file = NULL;
        int st = bs->drv->bdrv_block_status(bs, off, s->size - off, &pnum, &map, &file);

        if (st < 0 || pnum == 0) {
            ret = st < 0 ? st : -EIO;
            break;
        }
        if ((st & BDRV_BLOCK_ZERO) && (st & BDRV_BLOCK_ALLOCATED)) {
            if (!bs->backing_file[0]) {
                ret = qcow2_discard_guest(bs, off, pnum, true);
            } else {
                for (uint64_t done = 0; ret == 0 && done < pnum; ) {
                    uint64_t n = MIN(pnum - done, (uint64_t)s->cluster_size);
                    QBIOVector qiov;

                    if (!zeros) {
                        zeros = calloc(1, s->cluster_size);
                        if (!zeros) {
                            ret = -ENOMEM;
                            break;
                        }
                    }
                    qiov_init_buf(&qiov, zeros, n);
                    ret = qcow2_write_guest(bs, off + done, &qiov);
                    done += n;
                }
            }
            if (ret < 0) {
                break;
            }
        }
        off += pnum;
    }
    free(zeros);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not expand the zero clusters: %s",
                              bs->filename, strerror(-ret));
    }
    return 0;
}

/*
 * Write every cached table and clear the dirty bit, so that the refcounts
 * on disk are exact: needed before lazy refcounts are switched off, and
 * before a downgrade to a version that has no dirty bit.
 */
static int settle_refcounts(BlockDriverState *bs, BdrvError *err)
{
    int ret = qcow2_flush_all(bs);

    if (ret == 0) {
        ret = qcow2_mark_clean(bs);
    }
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not flush: %s", bs->filename,
                              strerror(-ret));
    }
    return 0;
}

static int downgrade(BlockDriverState *bs, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t incompat = s->incompatible_features & ~QCOW2_INCOMPAT_DIRTY;
    int ret;

    if (s->refcount_order != 4) {
        return bdrv_error_set(err, -EINVAL, "compat=0.10 requires refcount_bits=16");
    }
    if (incompat) {
        return bdrv_error_set(err, -ENOTSUP, "Cannot downgrade an image with incompatible "
                              "features 0x%llx set", (unsigned long long)incompat);
    }
    if (s->nb_bitmaps || (s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        return bdrv_error_set(err, -ENOTSUP, "Cannot downgrade an image with bitmaps");
    }
    /*
     * XXX: snapshots' L2 tables may hold zero clusters too, which would
     * have to be expanded in every snapshot; that is not done here, so such
     * images are refused rather than left with entries version 2 forbids.
     */
    if (s->nb_snapshots) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': downgrading an image with internal "
                              "snapshots is not supported", bs->filename);
    }
    ret = expand_zero_clusters(bs, err);
    if (ret < 0) {
        return ret;
    }
    ret = settle_refcounts(bs, err);
    if (ret < 0) {
        return ret;
    }
    s->qcow_version = 2;
    s->header_length = QCOW2_V2_HEADER_SIZE;
    free(s->header_tail);
    s->header_tail = NULL;
    s->incompatible_features = 0;
    s->compatible_features = 0;
    s->autoclear_features = 0;
    s->lazy_refcounts = false;
    drop_ext(s, QCOW2_EXT_FEATURE_TABLE);
    return 0;
}

static int upgrade(BlockDriverState *bs, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t *tail = calloc(1, QCOW2_V3_HEADER_SIZE - QCOW2_V3_HEADER_MIN);
    int ret;

    if (!tail) {
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    /* The same header qemu-img create writes for compat=1.1: 112 bytes, zlib, feature names. */
    if (s->cluster_size > 4096) {
        uint8_t table[QCOW2_FEATURE_TABLE_SIZE];
        int pos = 0;

        qcow2_feature_table(table);
        while (pos < s->nb_exts && s->exts[pos].type == QCOW2_EXT_BACKING_FORMAT) {
            pos++;
        }
        drop_ext(s, QCOW2_EXT_FEATURE_TABLE);
        ret = insert_ext(s, pos, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table));
        if (ret < 0) {
            free(tail);
            return bdrv_error_set(err, ret, "out of memory");
        }
    }
    free(s->header_tail);
    s->header_tail = tail;
    s->header_length = QCOW2_V3_HEADER_SIZE;
    s->compression_type = QCOW2_COMPRESSION_ZLIB;
    s->qcow_version = 3;
    s->incompatible_features = 0;
    s->compatible_features = 0;
    s->autoclear_features = 0;
    s->refcount_order = 4;
    return 0;
}

/* Options qemu-img create knows for qcow2 but amend cannot change. */
static bool create_only_option(const char *name)
{
    static const char *const names[] = {
        "cluster_size", "preallocation", "extended_l2", "compression_type", "encryption",
        "encrypt.format", "encrypt.cipher-alg", "encrypt.cipher-mode", "encrypt.ivgen-alg",
        "encrypt.ivgen-hash-alg", "encrypt.hash-alg", "encrypt.key-secret", NULL,
    };
    for (int i = 0; names[i]; i++) {
        if (strcmp(name, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

int qcow2_amend(BlockDriverState *bs, BdrvOpts *opts, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    int version = s->qcow_version;
    bool lazy = (s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0, lazy_given = false;
    bool have_size = false;
    uint64_t size = 0;
    int ret;

    if (s->corrupt) {
        return bdrv_error_set(err, -EIO, "'%s' was found corrupt", bs->filename);
    }
    /* Every option is checked before anything changes, so a refusal leaves the image alone. */
    for (int i = 0; i < opts->n; i++) {
        const char *name = opts->v[i].name, *val = opts->v[i].value ? opts->v[i].value : "";

        if (strcmp(name, "compat") == 0) {
            if (strcmp(val, "0.10") == 0 || strcmp(val, "v2") == 0) {
                version = 2;
            } else if (strcmp(val, "1.1") == 0 || strcmp(val, "v3") == 0) {
                version = 3;
            } else {
                return bdrv_error_set(err, -EINVAL, "Unknown compatibility level %s", val);
            }
        } else if (strcmp(name, "lazy_refcounts") == 0) {
            if (bdrv_parse_bool(val, &lazy) < 0) {
                return bdrv_error_set(err, -EINVAL, "Parameter 'lazy_refcounts' expects "
                                      "'on' or 'off'");
            }
            lazy_given = true;
        } else if (strcmp(name, "size") == 0) {
            if (bdrv_parse_size(val, &size) < 0) {
                return bdrv_error_set(err, -EINVAL, "Parameter 'size' expects a non-negative "
                                      "number below 2^64");
            }
            have_size = true;
        } else if (strcmp(name, "refcount_bits") == 0) {
            uint64_t bits;
            if (bdrv_parse_size(val, &bits) < 0 || bits == 0 || bits > 64 ||
                (bits & (bits - 1))) {
                return bdrv_error_set(err, -EINVAL, "Refcount width must be a power of two "
                                      "and may not exceed 64 bits");
            }
            /* XXX: rewriting every refcount block at a new width is not implemented. */
            if (bits != (uint64_t)s->refcount_bits) {
                return bdrv_error_set(err, -ENOTSUP, "'%s': changing refcount_bits is not "
                                      "supported", bs->filename);
            }
        } else if (strcmp(name, "backing_file") == 0 || strcmp(name, "backing_fmt") == 0) {
            return bdrv_error_set(err, -EINVAL, "Cannot amend the backing file");
        } else if (strcmp(name, "data_file") == 0 || strcmp(name, "data_file_raw") == 0 ||
                   strncmp(name, "encrypt.", 8) == 0) {
            return bdrv_error_set(err, -ENOTSUP, "'%s': option '%s' is not supported",
                                  bs->filename, name);
        } else if (create_only_option(name)) {
            return bdrv_error_set(err, -EINVAL, "Invalid parameter '%s'\n"
                                  "This option is only supported for image creation", name);
        } else {
            return bdrv_error_set(err, -EINVAL, "Invalid parameter '%s'", name);
        }
    }
    /* Downgrading drops lazy refcounts unless they were asked for explicitly. */
    if (version < 3 && lazy) {
        if (lazy_given || s->qcow_version < 3) {
            return bdrv_error_set(err, -EINVAL, "Lazy refcounts only supported with "
                                  "compatibility level 1.1 and above (use compat=1.1 or "
                                  "greater)");
        }
        lazy = false;
    }

    if (version < s->qcow_version) {
        ret = downgrade(bs, err);
    } else if (version > s->qcow_version) {
        ret = upgrade(bs, err);
    } else {
        ret = 0;
    }
    if (ret < 0) {
        return ret;
    }
    if (version >= 3) {
        bool was_lazy = (s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
        if (was_lazy && !lazy) {
            /* Refcounts must be exact before nothing may mark them stale any more. */
            ret = settle_refcounts(bs, err);
            if (ret < 0) {
                return ret;
            }
            s->compatible_features &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
        } else if (lazy) {
            s->compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
        }
        s->lazy_refcounts = lazy && !s->read_only;
    }
    ret = qcow2_update_header(bs);
    if (ret == 0 && s->nb_snapshots) {
        /* The snapshot table's extra data has a minimum size in version 3. */
        ret = qcow2_rewrite_snapshot_table(bs);
    }
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': could not rewrite the header: %s", bs->filename,
                              strerror(-ret));
    }
    if (have_size && size != s->size) {
        return qcow2_truncate(bs, size, BDRV_PREALLOC_OFF, err);
    }
    return 0;
}
