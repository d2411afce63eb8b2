/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * raw.c: the raw format, a byte-for-byte disk with no metadata; every
 * request passes straight to the protocol layer.
 */

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "block/block_int.h"

typedef struct BDRVRawState {
    /*
     * Virtual size in bytes: the file's length rounded up to 512, as QEMU
     * reports it; the part past the end of the file reads as zeros and a
     * write there extends the file.
     */
    uint64_t size;
    /* Serialises the probing check of writes into the first sector. */
    pthread_mutex_t sector0_lock;
} BDRVRawState;

static const char *const raw_prealloc_choices[] = { "off", "falloc", "full", NULL };

static const BdrvOptDesc raw_create_opts[] = {
    { .name = "size", .type = BDRV_OPT_SIZE, .def = "0", .help = "Size of the virtual disk" },
    { .name = "preallocation", .type = BDRV_OPT_STRING, .def = "off",
      .help = "What to allocate at creation: off, falloc or full",
      .choices = raw_prealloc_choices,
      .flags = BDRV_OPT_F_PROTOCOL },
    { 0 }
};

/* Anything can be raw; every format with a magic number outscores this. */
static int raw_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    (void)buf;
    (void)buf_size;
    (void)filename;
    return 1;
}

static int raw_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVRawState *s = bs->opaque;
    int64_t len = bdrv_getlength(bs->file);

    (void)flags;
    if (len < 0) {
        return bdrv_error_set(err, (int)len, "could not get the size of '%s': %s",
                              bs->filename, strerror((int)-len));
    }
    if (pthread_mutex_init(&s->sector0_lock, NULL) != 0) {
        return bdrv_error_set(err, -ENOMEM, "cannot create a lock for '%s'", bs->filename);
    }
    s->size = ROUND_UP((uint64_t)len, BDRV_SECTOR_SIZE);
    bs->total_sectors = (int64_t)(s->size / BDRV_SECTOR_SIZE);
    /* Byte ranges pass straight through: no read-modify-write above raw. */
    bs->request_alignment = 1;
    return 0;
}

static void raw_close(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    pthread_mutex_destroy(&s->sector0_lock);
}

static int64_t raw_getlength(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    return (int64_t)s->size;
}

static int raw_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    return bdrv_preadv(bs->file, offset, qiov);
}

/* Reads pass straight through to the file, asynchronous ones too. */
static int raw_aio_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov, int notify_fd,
                          BdrvAioCompletionFunc *cb, void *opaque)
{
    return bdrv_aio_preadv(bs->file, offset, qiov, notify_fd, cb, opaque);
}

static void raw_aio_poll(BlockDriverState *bs)
{
    bdrv_aio_poll(bs->file);
}

/*
 * Writing the first sector of an image whose format was guessed is refused
 * when the sector would afterwards make the image probe as another format:
 * a guest could otherwise turn its raw disk into, say, a qcow2 header
 * naming any host file as its backing file. The sector as it would be is
 * the current one with the write laid over it (a write of a few bytes can
 * complete a magic number).
 */
static int raw_check_sector0(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    uint8_t first[BDRV_SECTOR_SIZE];
    const BlockDriver *drv;
    const char *name;
    size_t n;
    int ret;

    ret = bdrv_pread(bs->file, 0, first, sizeof(first));
    if (ret < 0) {
        return ret;
    }
    n = (size_t)MIN((uint64_t)qiov->size, sizeof(first) - offset);
    qiov_to_buf(qiov, 0, first + offset, n);
    name = bdrv_probe_name(first, sizeof(first), bs->filename, &drv);
    return drv == &bdrv_raw && name ? 0 : -EPERM;
}

static int raw_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVRawState *s = bs->opaque;
    int ret;

    if (!bs->probed || offset >= BDRV_SECTOR_SIZE) {
        return bdrv_pwritev(bs->file, offset, qiov);
    }
    /* Check and write under one lock, so that two writes cannot combine into a magic. */
    pthread_mutex_lock(&s->sector0_lock);
    ret = raw_check_sector0(bs, offset, qiov);
    if (ret == 0) {
        ret = bdrv_pwritev(bs->file, offset, qiov);
    }
    pthread_mutex_unlock(&s->sector0_lock);
    return ret;
}

static int raw_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    /* Zeros never make a probed image look like another format: no check here. */
    return bdrv_pwrite_zeroes(bs->file, offset, bytes);
}

/* The caller allows unmapping: the protocol may release the range (an NBD zero without NO_HOLE). */
static int raw_pwrite_zeroes_unmap(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return bdrv_pwrite_zeroes_flags(bs->file, offset, bytes, BDRV_REQ_MAY_UNMAP);
}

static int raw_pdiscard(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return bdrv_pdiscard(bs->file, offset, bytes);
}

static int raw_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    int ret = bdrv_block_status(bs->file, offset, bytes, pnum, map, file);

    if (ret >= 0 && *pnum == 0) {
        /* Past the end of the file (inside the last, partial sector): a hole. */
        *pnum = bytes;
        *map = offset;
        *file = bs->file;
        ret = BDRV_BLOCK_ZERO | BDRV_BLOCK_HOLE | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
    }
    return ret;
}

static int raw_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                        BdrvError *err)
{
    BDRVRawState *s = bs->opaque;
    int ret;

    if (prealloc == BDRV_PREALLOC_METADATA) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': raw images have no metadata to preallocate",
                              bs->filename);
    }
    ret = bdrv_truncate(bs->file, offset, prealloc, err);
    if (ret < 0) {
        return ret;
    }
    s->size = ROUND_UP(offset, BDRV_SECTOR_SIZE);
    bs->total_sectors = (int64_t)(s->size / BDRV_SECTOR_SIZE);
    return 0;
}

static int raw_has_zero_init(BlockDriverState *bs)
{
    return bdrv_has_zero_init(bs->file);
}

static int raw_create(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    uint64_t size = ROUND_UP(bdrv_opts_get_size(opts, "size"), BDRV_SECTOR_SIZE);
    BdrvPrealloc prealloc;

    if (bdrv_parse_prealloc(bdrv_opts_get(opts, "preallocation"), &prealloc) < 0 ||
        prealloc == BDRV_PREALLOC_METADATA) {
        return bdrv_error_set(err, -EINVAL, "raw: invalid preallocation mode '%s'",
                              bdrv_opts_get(opts, "preallocation"));
    }
    if (size > (uint64_t)INT64_MAX) {
        return bdrv_error_set(err, -EINVAL, "raw: image size is too large");
    }
    return bdrv_create_file(filename, size, prealloc, flags, err);
}

/* A raw image is as large as its virtual disk, whatever the data in it. */
static int raw_measure(BdrvOpts *opts, BlockDriverState *in_bs, uint64_t size,
                       BlockMeasureInfo *info, BdrvError *err)
{
    (void)opts;
    (void)in_bs;
    (void)err;
    info->required = info->fully_allocated = size;
    return 0;
}

const BlockDriver bdrv_raw = {
    .format_name = "raw",
    .instance_size = sizeof(BDRVRawState),
    .thread_safe = true,
    .shares_write = true,
    .caps = BDRV_CAP_SHRINK,
    .bdrv_probe = raw_probe,
    .bdrv_open = raw_open,
    .bdrv_close = raw_close,
    .bdrv_create = raw_create,
    .create_opts = raw_create_opts,
    .bdrv_preadv = raw_preadv,
    .bdrv_pwritev = raw_pwritev,
    .bdrv_aio_preadv = raw_aio_preadv,
    .bdrv_aio_poll = raw_aio_poll,
    .bdrv_pwrite_zeroes = raw_pwrite_zeroes,
    .bdrv_pwrite_zeroes_unmap = raw_pwrite_zeroes_unmap,
    .bdrv_pdiscard = raw_pdiscard,
    .bdrv_block_status = raw_block_status,
    .bdrv_getlength = raw_getlength,
    .bdrv_truncate = raw_truncate,
    .bdrv_has_zero_init = raw_has_zero_init,
    .bdrv_measure = raw_measure,
};
