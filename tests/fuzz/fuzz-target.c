/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-target.c: the libFuzzer entry point shared by every format's target:
 * it treats the input as an image in memory (block/mem.c) and probes, opens,
 * reads, walks block status, inspects, checks, repairs a copy and writes.
 *
 * Built once per format with -DFUZZ_FMT='"qcow2"' (the empty string lets
 * probing choose; "vmdk-desc" treats the input as a descriptor followed,
 * after its first NUL byte, by the data of its extent files). Without
 * FUZZ_FMT, fuzz_format (set by the replay driver, fuzz-replay.c) chooses.
 * The memory protocol runs exclusive, so nothing an image names can reach
 * the real file system.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/block_int.h"

#include "fuzz-target.h"

#ifdef FUZZ_FMT
const char *fuzz_format = FUZZ_FMT;
#else
const char *fuzz_format = "";
#endif

#define IMG   "mem:fuzz/img"
#define COPY  "mem:fuzz/copy"
#define BASE  "mem:fuzz/img-base"
#define BASE_SIZE (256u << 10)
/* Caps that keep one input fast whatever sizes the image claims. */
#define MAX_STATUS_STEPS  2048
#define MAX_READ_BYTES    (4u << 20)
#define CHUNK             (64u << 10)
/*
 * The largest a file may grow (writes, repairs): far above any seed, and
 * small enough that zeroing a grown file does not dominate every run (at
 * 64 MiB, qcow2 repairs spent 70% of the time in memset and page faults).
 */
#define FUZZ_MAX_FILE     (8u << 20)

/*
 * Opens run under a policy like the library's default, with a smaller
 * table budget: a mutated header that claims tables of tens of MiB is then
 * refused before they are read (the mem protocol returns zeros past the end,
 * so reading them cost most of a run), while tables up to 4 MiB are still
 * read and walked. Paths need no confinement: the mem protocol runs
 * exclusive. Probing may settle on raw, so the probe target reaches it.
 */
static const BdrvPolicy fuzz_policy = {
    .allow_raw_probe = true,
    .allow_any_path = true,
    .max_chain_depth = 4,
    .max_metadata = 4u << 20,
    .max_descriptor = 64u << 10,
};

static uint8_t *chunk;
static uint8_t *base;
int fuzz_last_open_error;

/* Walk block status over the whole image and read what is allocated, within caps. */
static void read_all(BlockDriverState *bs)
{
    int64_t len = bdrv_getlength(bs);
    uint64_t off = 0, read_total = 0;
    int steps = 0;

    if (len <= 0) {
        return;
    }
    while (off < (uint64_t)len && steps++ < MAX_STATUS_STEPS) {
        uint64_t pnum = 0, map = 0;
        BlockDriverState *file = NULL;
        int depth = 0;
        int ret = bdrv_block_status_above(bs, off, (uint64_t)len - off, &pnum, &map, &file,
                                          &depth);
        if (ret < 0 || pnum == 0) {
            break;
        }
        if ((ret & BDRV_BLOCK_DATA) && read_total < MAX_READ_BYTES) {
            uint64_t n = MIN(MIN(pnum, (uint64_t)CHUNK), MAX_READ_BYTES - read_total);
            n = n & ~(uint64_t)511;
            if (n && bdrv_pread(bs, off, chunk, (size_t)n) == 0) {
                read_total += n;
            }
        }
        off += pnum;
    }
    /* The first and last chunk, whatever status said. */
    bdrv_pread(bs, 0, chunk, (size_t)MIN((uint64_t)len, (uint64_t)CHUNK) & ~(size_t)511);
    if ((uint64_t)len >= CHUNK) {
        bdrv_pread(bs, ROUND_DOWN((uint64_t)len - CHUNK, 512), chunk, CHUNK);
    }
}

static void inspect(BlockDriverState *bs)
{
    BlockDriverInfo bdi;
    QBlockSpecificInfo info;
    BdrvSnapshotInfo *snaps = NULL;
    int nsnaps = 0;
    BdrvError err = { 0 };

    bdrv_get_info(bs, &bdi);
    memset(&info, 0, sizeof(info));
    if (bdrv_get_specific_info(bs, &info, &err) == 0) {
        bdrv_specific_info_clear(&info);
    }
    if (bdrv_snapshot_list(bs, &snaps, &nsnaps, &err) == 0) {
        bdrv_snapshot_list_free(snaps, nsnaps);
    }
    bdrv_is_dirty(bs);
    bdrv_has_zero_init(bs);
    bdrv_get_allocated_file_size(bs);
}

static void write_some(BlockDriverState *bs)
{
    int64_t len = bdrv_getlength(bs);
    BdrvCheckResult res;
    BdrvError err = { 0 };

    if (len < 512) {
        return;
    }
    memset(chunk, 0xa5, 4096);
    bdrv_pwrite(bs, 0, chunk, (size_t)MIN((uint64_t)len, 4096u) & ~(size_t)511);
    bdrv_pwrite(bs, ROUND_DOWN((uint64_t)len / 2, 512), chunk, 512);
    bdrv_pwrite(bs, ROUND_DOWN((uint64_t)len - 512, 512), chunk, 512);
    bdrv_pwrite_zeroes(bs, ROUND_DOWN((uint64_t)len / 4, 512), 512);
    bdrv_pdiscard(bs, ROUND_DOWN((uint64_t)len / 2, 512), 512);
    bdrv_flush(bs);
    bdrv_pread(bs, 0, chunk, 512);
    memset(&res, 0, sizeof(res));
    bdrv_check(bs, &res, 0, &err);
}

/* @data and @len: what @name holds, the image as given. */
static void run(const char *name, const char *fmt, const uint8_t *data, size_t len)
{
    const BlockDriver *drv = NULL;
    BlockDriverState *bs = NULL;
    BdrvCheckResult res;
    BdrvError err = { 0 };

    /* Probing alone, as a caller would before choosing a format. */
    bdrv_probe_name(data, (int)MIN(len, 2048u), name, &drv);

    fuzz_last_open_error = bdrv_open_policy(&bs, name, fmt, 0, &fuzz_policy, &err);
    if (getenv("FUZZ_DEBUG")) {
        fprintf(stderr, "open: %d %s\n", fuzz_last_open_error, err.msg);
    }
    if (fuzz_last_open_error == 0) {
        read_all(bs);
        inspect(bs);
        memset(&res, 0, sizeof(res));
        bdrv_check(bs, &res, 0, &err);
        bdrv_close(bs);
    }

    /* Repair on a copy, so that the write pass below sees the image as given. */
    if (bdrv_mem_register(COPY, data, len) == 0 &&
        bdrv_open_policy(&bs, COPY, fmt, BDRV_O_RDWR | BDRV_O_NO_BACKING, &fuzz_policy, &err) == 0) {
        memset(&res, 0, sizeof(res));
        bdrv_check(bs, &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &err);
        read_all(bs);
        bdrv_close(bs);
    }

    if (bdrv_open_policy(&bs, name, fmt, BDRV_O_RDWR, &fuzz_policy, &err) == 0) {
        write_some(bs);
        bdrv_close(bs);
    }
}

int fuzz_one(const uint8_t *data, size_t size)
{
    const char *fmt = fuzz_format[0] ? fuzz_format : NULL;

    if (!chunk) {
        chunk = malloc(CHUNK);
        if (!chunk) {
            return 0;
        }
    }
    bdrv_mem_set_exclusive(true);
    /* A write or repair may grow a file; keep every file small (FUZZ_MAX_FILE). */
    bdrv_mem_set_max_len(FUZZ_MAX_FILE);

    if (fmt && strcmp(fmt, "vmdk-desc") == 0) {
        /* Descriptor up to the first NUL; the rest is every extent file qemu-img names. */
        const uint8_t *nul = memchr(data, 0, size);
        size_t dlen = nul ? (size_t)(nul - data) : size;
        const uint8_t *rest = nul ? nul + 1 : data + size;
        size_t rlen = nul ? size - dlen - 1 : 0;
        static const char *const extents[] = {
            "mem:fuzz/img-flat.vmdk", "mem:fuzz/img-s001.vmdk", "mem:fuzz/img-f001.vmdk",
        };

        bdrv_mem_register(IMG, data, dlen);
        size = dlen;
        for (size_t i = 0; i < ARRAY_SIZE(extents); i++) {
            bdrv_mem_register(extents[i], rest, rlen);
        }
        fmt = "vmdk";
    } else {
        bdrv_mem_register(IMG, data, size);
    }
    /* The backing file the seeds name, so that chains are exercised too. */
    if (!base) {
        base = malloc(BASE_SIZE);
        if (!base) {
            return 0;
        }
        for (size_t i = 0; i < BASE_SIZE; i++) {
            base[i] = (uint8_t)(i * 7 + 1);
        }
    }
    bdrv_mem_register(BASE, base, BASE_SIZE);
    run(IMG, fmt, data, size);
    bdrv_mem_clear();
    return 0;
}

#ifdef FUZZ_FMT
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one(data, size);
}
#endif
