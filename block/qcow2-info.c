/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qcow2-info.c: the qcow2 facts qemu-img info reports, the persistent bitmaps' list included. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* Bitmap directory entry layout (qcow2 specification, "Bitmaps extension"). */
#define BME_FIXED_BYTES       24
#define BME_MAX_NAME_SIZE     1023
#define BME_MIN_GRAN_BITS     9
#define BME_MAX_GRAN_BITS     31

/*
 * Read the bitmap directory that open located (its size is capped there) and
 * list each bitmap's name, granularity and flags. An entry that runs past the
 * directory or states an impossible name size or granularity makes the
 * image invalid: the list would otherwise be made of unrelated bytes.
 */
static int qcow2_list_bitmaps(BlockDriverState *bs, struct QBlockSpecificQcow2 *q,
                              BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t *dir;
    uint64_t off = 0;
    int ret;

    if (!s->bitmap_dir_offset || !s->nb_bitmaps ||
        !(s->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        return 0;
    }
    dir = malloc(s->bitmap_dir_size ? s->bitmap_dir_size : 1);
    q->bitmaps = calloc(s->nb_bitmaps, sizeof(*q->bitmaps));
    if (!dir || !q->bitmaps) {
        free(dir);
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
    }
    q->nb_bitmaps = s->nb_bitmaps;
    ret = bdrv_pread(bs->file, s->bitmap_dir_offset, dir, s->bitmap_dir_size);
    if (ret < 0) {
        free(dir);
        return bdrv_error_set(err, ret, "image '%s': cannot read the bitmap directory",
                              bs->filename);
    }
    for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
        const uint8_t *e = dir + off;
        uint32_t name_size, extra, gran_bits;

        if (off + BME_FIXED_BYTES > s->bitmap_dir_size) {
            ret = -EBADIMAGE;
            break;
        }
        gran_bits = e[17];
        name_size = be16_load(e + 18);
        extra = be32_load(e + 20);
        if (name_size == 0 || name_size > BME_MAX_NAME_SIZE || gran_bits < BME_MIN_GRAN_BITS ||
            gran_bits > BME_MAX_GRAN_BITS ||
            off + BME_FIXED_BYTES + (uint64_t)extra + name_size > s->bitmap_dir_size) {
            ret = -EBADIMAGE;
            break;
        }
        q->bitmaps[i].name = malloc(name_size + 1);
        if (!q->bitmaps[i].name) {
            free(dir);
            return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
        }
        memcpy(q->bitmaps[i].name, e + BME_FIXED_BYTES + extra, name_size);
        q->bitmaps[i].name[name_size] = '\0';
        q->bitmaps[i].granularity = 1ull << gran_bits;
        q->bitmaps[i].flags = be32_load(e + 12);
        off += ROUND_UP(BME_FIXED_BYTES + (uint64_t)extra + name_size, 8);
    }
    free(dir);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "image '%s': malformed bitmap directory entry",
                              bs->filename);
    }
    return 0;
}

int qcow2_get_specific_info(BlockDriverState *bs, QBlockSpecificInfo *info, BdrvError *err)
{
    BDRVQcow2State *s = bs->opaque;
    struct QBlockSpecificQcow2 *q = &info->u.qcow2;

    info->fmt_type = QB_FMT_QCOW2;
    q->version = s->qcow_version;
    q->lazy_refcounts = (s->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
    q->corrupt = (s->incompatible_features & QCOW2_INCOMPAT_CORRUPT) != 0;
    q->extended_l2 = s->extended_l2;
    q->refcount_bits = (uint32_t)s->refcount_bits;
    q->compression_type = s->compression_type == QCOW2_COMPRESSION_ZSTD
                          ? QBO_FMT_QCOW2_COMPRESSION_ZSTD : QBO_FMT_QCOW2_COMPRESSION_ZLIB;
    q->data_file_raw = (s->autoclear_features & QCOW2_AUTOCLEAR_DATA_RAW) != 0;
    return qcow2_list_bitmaps(bs, q, err);
}
