/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mem.c: an internal protocol driver that keeps files in memory, so that
 * fuzz targets and tests run every format driver without the file system.
 *
 * Files live in a process-wide table of named buffers. A name starts with
 * "mem:" (say "mem:fuzz/image.vmdk"); while the table holds at least one
 * file, bdrv_file_open sends such names here instead of to the file
 * protocol, so that names a format derives from its own (vmdk extents,
 * backing files: "mem:fuzz/" + the recorded name) are served from memory
 * too. With an empty table nothing changes for real files whose names
 * happen to start with "mem:". Nodes opened on one name share its buffer,
 * so what one writes, a later open reads. The table is not meant for
 * concurrent registration; requests themselves are serialised by a lock.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block_int.h"

typedef struct MemFile {
    char *name;
    uint8_t *data;
    size_t len;
    size_t cap;
    int refs;          /* open nodes; the table holds one more while registered */
} MemFile;

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static MemFile **mem_files;
static int mem_nfiles;
static int mem_cap;
/* Files never grow beyond this: a hostile image must not exhaust memory by a far write. */
static size_t mem_max_len = 256 * 1024 * 1024;
/* When set, names outside the table are refused instead of going to the file protocol. */
static bool mem_exclusive;

typedef struct BDRVMemState {
    MemFile *f;
} BDRVMemState;

/*
 * Buffers of files that are gone are kept for the next files instead of
 * freed: a fuzz target registers, grows and clears files of up to megabytes
 * on every input, and fresh large allocations cost a page fault per page
 * (under ASan each is its own mmap), which was most of a run. The pool
 * holds at most MEM_POOL buffers; callers hold mem_lock.
 */
#define MEM_POOL 8
static uint8_t *pool_buf[MEM_POOL];
static size_t pool_cap[MEM_POOL];

/* A buffer of at least @need bytes and its capacity in *@cap; contents undefined. */
static uint8_t *mem_buf_get(size_t need, size_t *cap)
{
    int best = -1;
    uint8_t *buf;

    for (int i = 0; i < MEM_POOL; i++) {
        if (pool_buf[i] && pool_cap[i] >= need && (best < 0 || pool_cap[i] < pool_cap[best])) {
            best = i;
        }
    }
    if (best >= 0) {
        buf = pool_buf[best];
        *cap = pool_cap[best];
        pool_buf[best] = NULL;
        return buf;
    }
    buf = malloc(need);
    *cap = buf ? need : 0;
    return buf;
}

/* Return @buf to the pool, pushing out a smaller buffer if the pool is full. */
static void mem_buf_put(uint8_t *buf, size_t cap)
{
    int slot = -1;

    for (int i = 0; i < MEM_POOL; i++) {
        if (!pool_buf[i]) {
            slot = i;
            break;
        }
        if (pool_cap[i] < cap && (slot < 0 || pool_cap[i] < pool_cap[slot])) {
            slot = i;
        }
    }
    if (slot < 0) {
        free(buf);
        return;
    }
    free(pool_buf[slot]);
    pool_buf[slot] = buf;
    pool_cap[slot] = cap;
}

static void mem_file_unref(MemFile *f)
{
    if (--f->refs == 0) {
        free(f->name);
        mem_buf_put(f->data, f->cap);
        free(f);
    }
}

static int mem_find(const char *name)
{
    for (int i = 0; i < mem_nfiles; i++) {
        if (strcmp(mem_files[i]->name, name) == 0) {
            return i;
        }
    }
    return -1;
}

bool bdrv_mem_handles(const char *filename)
{
    bool active;

    pthread_mutex_lock(&mem_lock);
    active = mem_exclusive ||
             (mem_nfiles > 0 && strncmp(filename, BDRV_MEM_PREFIX, strlen(BDRV_MEM_PREFIX)) == 0);
    pthread_mutex_unlock(&mem_lock);
    return active;
}

void bdrv_mem_set_exclusive(bool exclusive)
{
    pthread_mutex_lock(&mem_lock);
    mem_exclusive = exclusive;
    pthread_mutex_unlock(&mem_lock);
}

/* Add @f to the table under its name, replacing any file of that name. Called under mem_lock. */
static int mem_insert(MemFile *f)
{
    int i = mem_find(f->name);

    if (i >= 0) {
        mem_file_unref(mem_files[i]);
        mem_files[i] = f;
        return 0;
    }
    if (mem_nfiles == mem_cap) {
        int ncap = mem_cap ? mem_cap * 2 : 8;
        MemFile **n = realloc(mem_files, sizeof(*n) * (size_t)ncap);
        if (!n) {
            mem_file_unref(f);
            return -ENOMEM;
        }
        mem_files = n;
        mem_cap = ncap;
    }
    mem_files[mem_nfiles++] = f;
    return 0;
}

/* Register @name with @len bytes: a copy of @data, or zeros when @data is NULL. */
static int mem_add(const char *name, const void *data, size_t len)
{
    MemFile *f;
    int ret;

    if (strncmp(name, BDRV_MEM_PREFIX, strlen(BDRV_MEM_PREFIX)) != 0 || len > mem_max_len) {
        return -EINVAL;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    f->name = strdup(name);
    pthread_mutex_lock(&mem_lock);
    /* One spare byte, so that an empty file still has a buffer to point at. */
    f->data = f->name ? mem_buf_get(len + 1, &f->cap) : NULL;
    if (!f->data) {
        pthread_mutex_unlock(&mem_lock);
        free(f->name);
        free(f);
        return -ENOMEM;
    }
    if (data) {
        memcpy(f->data, data, len);
    } else {
        memset(f->data, 0, len);
    }
    f->len = len;
    f->refs = 1;
    ret = mem_insert(f);
    pthread_mutex_unlock(&mem_lock);
    return ret;
}

int bdrv_mem_register(const char *name, const void *data, size_t len)
{
    return data || !len ? mem_add(name, data, len) : -EINVAL;
}

void bdrv_mem_clear(void)
{
    pthread_mutex_lock(&mem_lock);
    for (int i = 0; i < mem_nfiles; i++) {
        mem_file_unref(mem_files[i]);
    }
    free(mem_files);
    mem_files = NULL;
    mem_nfiles = mem_cap = 0;
    pthread_mutex_unlock(&mem_lock);
}

void bdrv_mem_set_max_len(size_t max_len)
{
    pthread_mutex_lock(&mem_lock);
    mem_max_len = max_len;
    pthread_mutex_unlock(&mem_lock);
}

static int mem_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVMemState *s = bs->opaque;
    int i;

    (void)flags;
    pthread_mutex_lock(&mem_lock);
    i = mem_find(bs->filename);
    if (i >= 0) {
        s->f = mem_files[i];
        s->f->refs++;
    }
    pthread_mutex_unlock(&mem_lock);
    if (!s->f) {
        return bdrv_error_set(err, -ENOENT, "could not open '%s': %s", bs->filename,
                              strerror(ENOENT));
    }
    return 0;
}

static void mem_close(BlockDriverState *bs)
{
    BDRVMemState *s = bs->opaque;

    pthread_mutex_lock(&mem_lock);
    mem_file_unref(s->f);
    pthread_mutex_unlock(&mem_lock);
    s->f = NULL;
}

/* Grow @f to hold @end bytes, the new bytes zeroed. Called under mem_lock. */
static int mem_grow(MemFile *f, uint64_t end)
{
    if (end <= f->len) {
        return 0;
    }
    if (end > mem_max_len) {
        return -ENOSPC;
    }
    if (end >= f->cap) {
        size_t ncap = MIN(MAX((size_t)end + 1, f->cap * 2), mem_max_len + 1);
        uint8_t *n = mem_buf_get(ncap, &ncap);

        if (!n) {
            return -ENOMEM;
        }
        memcpy(n, f->data, f->len);
        mem_buf_put(f->data, f->cap);
        f->data = n;
        f->cap = ncap;
    }
    memset(f->data + f->len, 0, (size_t)end - f->len);
    f->len = (size_t)end;
    return 0;
}

static int mem_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVMemState *s = bs->opaque;
    size_t n = 0;

    pthread_mutex_lock(&mem_lock);
    /* Reads past the end return zeros, as the file protocol's do. */
    if (offset < s->f->len) {
        n = MIN(qiov->size, s->f->len - (size_t)offset);
        qiov_from_buf(qiov, 0, s->f->data + offset, n);
    }
    pthread_mutex_unlock(&mem_lock);
    qiov_memset(qiov, n, 0, qiov->size - n);
    return 0;
}

static int mem_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVMemState *s = bs->opaque;
    uint64_t end;
    int ret;

    if (ADD_OVERFLOW(offset, (uint64_t)qiov->size, &end)) {
        return -ERANGE;
    }
    pthread_mutex_lock(&mem_lock);
    ret = mem_grow(s->f, end);
    if (ret == 0) {
        qiov_to_buf(qiov, 0, s->f->data + offset, qiov->size);
    }
    pthread_mutex_unlock(&mem_lock);
    return ret;
}

static int mem_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVMemState *s = bs->opaque;
    uint64_t end;
    int ret;

    if (ADD_OVERFLOW(offset, bytes, &end)) {
        return -ERANGE;
    }
    pthread_mutex_lock(&mem_lock);
    ret = mem_grow(s->f, end);
    if (ret == 0) {
        memset(s->f->data + offset, 0, (size_t)bytes);
    }
    pthread_mutex_unlock(&mem_lock);
    return ret;
}

static int64_t mem_getlength(BlockDriverState *bs)
{
    BDRVMemState *s = bs->opaque;
    int64_t len;

    pthread_mutex_lock(&mem_lock);
    len = (int64_t)s->f->len;
    pthread_mutex_unlock(&mem_lock);
    return len;
}

static int mem_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                        BdrvError *err)
{
    BDRVMemState *s = bs->opaque;
    int ret = 0;

    (void)prealloc;
    pthread_mutex_lock(&mem_lock);
    if (offset <= s->f->len) {
        s->f->len = (size_t)offset;
    } else {
        ret = mem_grow(s->f, offset);
    }
    pthread_mutex_unlock(&mem_lock);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "cannot resize '%s': %s", bs->filename, strerror(-ret));
    }
    return 0;
}

static int mem_has_zero_init(BlockDriverState *bs)
{
    (void)bs;
    return 1;
}

static int64_t mem_get_allocated_file_size(BlockDriverState *bs)
{
    return mem_getlength(bs);
}

static int mem_create_file(const char *filename, uint64_t size, BdrvPrealloc prealloc, int flags,
                           BdrvError *err)
{
    int ret;

    (void)prealloc;
    (void)flags;
    if (size > mem_max_len) {
        return bdrv_error_set(err, -ENOSPC, "cannot create '%s': %s", filename,
                              strerror(ENOSPC));
    }
    /* A zeroed file of @size, replacing any file of that name. */
    ret = mem_add(filename, NULL, (size_t)size);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "cannot create '%s': %s", filename, strerror(-ret));
    }
    return 0;
}

const BlockDriver bdrv_mem = {
    .format_name = "mem",
    .instance_size = sizeof(BDRVMemState),
    .is_protocol = true,
    .thread_safe = true,
    .shares_write = true,
    .caps = BDRV_CAP_SHRINK,

    .bdrv_open = mem_open,
    .bdrv_close = mem_close,
    .bdrv_preadv = mem_preadv,
    .bdrv_pwritev = mem_pwritev,
    .bdrv_pwrite_zeroes = mem_pwrite_zeroes,
    .bdrv_getlength = mem_getlength,
    .bdrv_truncate = mem_truncate,
    .bdrv_has_zero_init = mem_has_zero_init,
    .bdrv_get_allocated_file_size = mem_get_allocated_file_size,
    .bdrv_create_file = mem_create_file,
};
