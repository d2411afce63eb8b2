/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* table-cache.c: the write-through page cache of table entries described in table-cache.h. */

#include <errno.h>
#include <stdlib.h>

#include "table-cache.h"
#include "block/util.h"

void table_cache_init(TableCache *tc, unsigned nslots, uint32_t page_size, uint32_t write_align,
                      bool big_endian)
{
    tc->page_size = page_size;
    tc->write_align = write_align;
    tc->nslots = MIN(MAX(nslots, 1u), (unsigned)TABLE_CACHE_MAX_SLOTS);
    tc->big_endian = big_endian;
    tc->last_slot = 0;
    tc->use_clock = 0;
    for (unsigned i = 0; i < TABLE_CACHE_MAX_SLOTS; i++) {
        tc->slot[i].offset = UINT64_MAX;
        tc->slot[i].last_use = 0;
        tc->slot[i].data = NULL;
    }
}

void table_cache_free(TableCache *tc)
{
    for (unsigned i = 0; i < tc->nslots; i++) {
        free(tc->slot[i].data);
        tc->slot[i].data = NULL;
        tc->slot[i].offset = UINT64_MAX;
    }
}

void table_cache_invalidate(TableCache *tc, uint64_t off, uint64_t len)
{
    for (unsigned i = 0; i < tc->nslots; i++) {
        uint64_t p = tc->slot[i].offset;
        if (p != UINT64_MAX && p < off + len && off < p + tc->page_size) {
            tc->slot[i].offset = UINT64_MAX;
        }
    }
}

/* The cached page at file offset @page_off (page aligned), loading it if needed. */
static int table_cache_page(TableCache *tc, BlockDriverState *file, uint64_t page_off,
                            uint8_t **data)
{
    TableCachePage *victim = &tc->slot[0];
    TableCachePage *p = &tc->slot[tc->last_slot];
    int ret;

    if (p->offset != page_off) {
        p = NULL;
        for (unsigned i = 0; i < tc->nslots; i++) {
            if (tc->slot[i].offset == page_off) {
                p = &tc->slot[i];
                break;
            }
            if (tc->slot[i].last_use < victim->last_use) {
                victim = &tc->slot[i];
            }
        }
    }
    if (!p) {
        victim->offset = UINT64_MAX;
        if (!victim->data) {
            victim->data = malloc(tc->page_size);
            if (!victim->data) {
                return -ENOMEM;
            }
        }
        ret = bdrv_pread(file, page_off, victim->data, tc->page_size);
        if (ret < 0) {
            return ret;
        }
        victim->offset = page_off;
        p = victim;
    }
    p->last_use = ++tc->use_clock;
    tc->last_slot = (int)(p - tc->slot);
    *data = p->data;
    return 0;
}

int table_cache_get(TableCache *tc, BlockDriverState *file, uint64_t off, uint64_t *val)
{
    uint64_t page_off = ROUND_DOWN(off, (uint64_t)tc->page_size);
    uint8_t *data;
    int ret = table_cache_page(tc, file, page_off, &data);

    if (ret < 0) {
        return ret;
    }
    *val = tc->big_endian ? be64_load(data + (off - page_off)) : le64_load(data + (off - page_off));
    return 0;
}

int table_cache_set(TableCache *tc, BlockDriverState *file, uint64_t off, uint64_t n,
                    uint64_t first, uint64_t step)
{
    uint64_t value = first;

    while (n > 0) {
        uint64_t page_off = ROUND_DOWN(off, (uint64_t)tc->page_size);
        uint64_t in_page = off - page_off;
        uint64_t count = MIN(n, (tc->page_size - in_page) / 8);
        uint64_t w_start = ROUND_DOWN(in_page, (uint64_t)tc->write_align);
        uint64_t w_end = ROUND_UP(in_page + count * 8, (uint64_t)tc->write_align);
        uint8_t *data;
        int ret = table_cache_page(tc, file, page_off, &data);

        if (ret < 0) {
            return ret;
        }
        for (uint64_t i = 0; i < count; i++) {
            if (tc->big_endian) {
                be64_store(data + in_page + i * 8, value);
            } else {
                le64_store(data + in_page + i * 8, value);
            }
            value += step;
        }
        ret = bdrv_pwrite(file, page_off + w_start, data + w_start, w_end - w_start);
        if (ret < 0) {
            table_cache_invalidate(tc, page_off, tc->page_size);
            return ret;
        }
        off += count * 8;
        n -= count;
    }
    return 0;
}
