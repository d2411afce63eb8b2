/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_qed.c: white-box tests of the QED driver (block/qed.c): the
 * layout it creates, the mapping of guest offsets to table entries (checked
 * by reading the file with plain POSIX calls), copy-on-write from a backing
 * file, zero clusters, the need-check flag, the check and its repairs, and
 * hostile headers and tables.
 */

#define _GNU_SOURCE

#define QBINT_NAME "check_int_qed"
#define QBINT_LITTLE_ENDIAN
#define QBINT_FMT_CREATE "qed"
#include "qbint.h"

/* ------------------------------------------------------------------ */
/* Test helpers (the common ones are in qbint.h)                       */

static BdrvCheckResult run_check(BlockDriverState *bs, int fix)
{
    BdrvCheckResult r;
    BdrvError err = { 0 };
    int ret = bdrv_check(bs, &r, fix, &err);
    ck_assert_msg(ret == 0, "check: %d %s", ret, err.msg);
    return r;
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

START_TEST(qed_create_default_layout_matches_qemu)
{
    const char *f = P("a.qed");

    create_img("qed", f, "size=8M");
    /* Facts of a qemu-img 7.2 image: header cluster, then a 4-cluster L1. */
    ck_assert_uint_eq(file_size(f), 0x50000);
    ck_assert_uint_eq(rd32(f, 0), 0x00444551);
    ck_assert_uint_eq(rd32(f, 4), 65536);
    ck_assert_uint_eq(rd32(f, 8), 4);
    ck_assert_uint_eq(rd32(f, 12), 1);
    ck_assert_uint_eq(rd64(f, 16), 0);
    ck_assert_uint_eq(rd64(f, 40), 0x10000);
    ck_assert_uint_eq(rd64(f, 48), 8 << 20);
    ck_assert_uint_eq(rd64(f, 56), 0);
}
END_TEST

START_TEST(qed_create_backing_raw_sets_no_probe)
{
    const char *f = P("b.qed"), *g = P("c.qed");
    char name[16] = { 0 };
    BlockDriverState *bs;

    create_img("raw", P("base.raw"), "size=1M");
    create_img("qed", f, "size=8M,backing_file=base.raw,backing_fmt=raw");
    ck_assert_uint_eq(rd64(f, 16), 0x05);
    ck_assert_uint_eq(rd32(f, 56), 0x40);
    ck_assert_uint_eq(rd32(f, 60), 8);
    file_read(f, 0x40, name, 8);
    ck_assert_str_eq(name, "base.raw");
    bs = open_img(f, NULL, 0);
    ck_assert_str_eq(bs->backing_file, "base.raw");
    ck_assert_str_eq(bs->backing_format, "raw");
    ck_assert_ptr_nonnull(bs->backing);
    bdrv_close(bs);

    /* Another backing format is not recorded (QED has no field for it). */
    create_img("qed", g, "size=8M,backing_file=b.qed,backing_fmt=qed");
    ck_assert_uint_eq(rd64(g, 16), 0x01);
}
END_TEST

START_TEST(qed_create_options_validated)
{
    BdrvError err = { 0 };
    BdrvOpts o;
    static const char *const bad[] = {
        "size=1M,cluster_size=2048", "size=1M,cluster_size=12288",
        "size=1M,cluster_size=128M", "size=1M,table_size=3", "size=1M,table_size=32",
        "size=1M,table_size=0",
        /* 4 KiB clusters, 1-cluster tables: 512^2 * 4 KiB = 1 GiB at most. */
        "size=1025M,cluster_size=4k,table_size=1",
        /* Sizes past 2^64 (qemu-img 7.2 refuses these too). */
        "size=1G,cluster_size=16M,table_size=1", "size=1G,cluster_size=2M,table_size=16",
    };

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        bdrv_opts_init(&o);
        ck_assert_int_eq(bdrv_opts_parse(&o, bad[i], &err), 0);
        ck_assert_msg(bdrv_create("qed", P("x.qed"), &o, 0, &err) == -EINVAL,
                      "'%s' was accepted", bad[i]);
        bdrv_opts_free(&o);
    }
    create_img("qed", P("big.qed"), "size=1G,cluster_size=8M,table_size=1");
    create_img("qed", P("ok.qed"), "size=1G,cluster_size=4k,table_size=1");
    ck_assert_uint_eq(file_size(P("ok.qed")), 8192);
    /* An odd size is rounded up to a sector, as qemu-img does. */
    create_img("qed", P("odd.qed"), "size=1000");
    ck_assert_uint_eq(rd64(P("odd.qed"), 48), 1024);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Mapping and data                                                    */

START_TEST(qed_write_maps_to_table_entries)
{
    const char *f = P("m.qed");
    BlockDriverState *bs;
    uint8_t want[4096], got[4096];
    /* 16 KiB clusters, 2-cluster tables: 4096 entries each, 64 MiB per L2. */
    const uint64_t cs = 16384, nelems = 4096;
    const uint64_t guest = 3 * nelems * cs + 17 * cs + 4096;   /* L1[3], L2[17], +4096 */
    uint64_t l2, data;

    create_img("qed", f, "size=1G,cluster_size=16k,table_size=2");
    bs = open_img(f, "qed", BDRV_O_RDWR);
    write_pattern(bs, guest, 4096, 7);
    /* Before any flush the image is marked as needing a check. */
    ck_assert_int_eq(bdrv_is_dirty(bs), 1);
    ck_assert_uint_eq(rd64(f, 16) & 2, 2);
    /*
     * A flush right after a table change keeps the flag (it is cleared after
     * 5 idle seconds, as QEMU's timer does, or at close).
     */
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_int_eq(bdrv_is_dirty(bs), 1);

    l2 = rd64(f, cs + 3 * 8);
    ck_assert_uint_ne(l2, 0);
    ck_assert_uint_eq(l2 % cs, 0);
    data = rd64(f, l2 + 17 * 8);
    ck_assert_uint_ne(data, 0);
    ck_assert_uint_eq(data % cs, 0);
    fill(want, sizeof(want), 7);
    file_read(f, data + 4096, got, sizeof(got));
    ck_assert_mem_eq(want, got, sizeof(got));
    /* The rest of the cluster was written as zeros (no backing file). */
    file_read(f, data, got, 4096);
    ck_assert(buffer_is_zero(got, 4096));
    /* Whole clusters only: the file ends on a cluster boundary. */
    ck_assert_uint_eq(file_size(f) % cs, 0);
    check_pattern(bs, guest, 4096, 7);
    check_zero(bs, guest - 4096, 4096);
    check_zero(bs, guest + 4096, 8192);
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, 16) & 2, 0);

    /* Writes inside allocated clusters change no table and leave the image clean. */
    bs = open_img(f, "qed", BDRV_O_RDWR);
    write_pattern(bs, guest, 512, 8);
    ck_assert_int_eq(bdrv_is_dirty(bs), 0);
    ck_assert_uint_eq(rd64(f, 16) & 2, 0);
    bdrv_close(bs);
}
END_TEST

START_TEST(qed_random_writes_match_mirror)
{
    const char *f = P("r.qed");
    const uint64_t size = 24 << 20;
    uint8_t *mirror = calloc(1, size), *buf = malloc(1 << 20);
    uint32_t seed = 12345;
    BlockDriverState *bs;
    BdrvCheckResult r;

    ck_assert_ptr_nonnull(mirror);
    ck_assert_ptr_nonnull(buf);
    create_img("qed", f, "size=24M,cluster_size=8k,table_size=1");
    bs = open_img(f, "qed", BDRV_O_RDWR);
    for (int i = 0; i < 400; i++) {
        uint64_t len, off;
        seed = seed * 1103515245u + 12345u;
        len = ((seed >> 8) % 256 + 1) * 512;
        seed = seed * 1103515245u + 12345u;
        off = ((seed >> 4) % ((size - len) / 512 + 1)) * 512;
        if (i % 7 == 3) {
            ck_assert_int_eq(bdrv_pwrite_zeroes(bs, off, len), 0);
            memset(mirror + off, 0, len);
        } else {
            fill(buf, len, seed);
            ck_assert_int_eq(bdrv_pwrite(bs, off, buf, len), 0);
            memcpy(mirror + off, buf, len);
        }
    }
    for (uint64_t off = 0; off < size; off += 1 << 20) {
        ck_assert_int_eq(bdrv_pread(bs, off, buf, 1 << 20), 0);
        ck_assert_msg(memcmp(buf, mirror + off, 1 << 20) == 0, "mismatch in MiB %" PRIu64,
                      off >> 20);
    }
    r = run_check(bs, 0);
    ck_assert_int_eq(r.corruptions, 0);
    ck_assert_int_eq(r.leaks, 0);
    ck_assert_uint_eq(r.total_clusters, size / 8192);
    bdrv_close(bs);
    free(mirror);
    free(buf);
}
END_TEST

START_TEST(qed_backing_copy_on_write)
{
    const char *base = P("base.raw"), *f = P("ov.qed");
    uint8_t *b = malloc(1 << 20), *r = malloc(1 << 20);
    BlockDriverState *bs;
    uint64_t pnum, map;
    BlockDriverState *file;
    int ret;

    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(r);
    /* A backing file shorter than the overlay, ending inside a cluster. */
    fill(b, 1 << 20, 99);
    create_img("raw", base, "size=0");
    file_write(base, 0, b, 700 * 1024);
    create_img("qed", f, "size=2M,backing_file=base.raw,backing_fmt=raw");
    bs = open_img(f, NULL, BDRV_O_RDWR);
    /* A partial write in the middle of a cluster keeps the backing data around it. */
    memset(r, 0xAB, 512);
    ck_assert_int_eq(bdrv_pwrite(bs, 65536 + 1024, r, 512), 0);
    ck_assert_int_eq(bdrv_pread(bs, 0, r, 1 << 20), 0);
    ck_assert_mem_eq(r, b, 65536 + 1024);
    for (int i = 0; i < 512; i++) {
        ck_assert_uint_eq(r[65536 + 1024 + i], 0xAB);
    }
    ck_assert_mem_eq(r + 65536 + 1536, b + 65536 + 1536, 700 * 1024 - 65536 - 1536);
    ck_assert(buffer_is_zero(r + 700 * 1024, (1 << 20) - 700 * 1024));
    /* Write in the cluster where the backing file ends: its tail is zeros. */
    memset(r, 0xCD, 512);
    ck_assert_int_eq(bdrv_pwrite(bs, 640 * 1024, r, 512), 0);
    ck_assert_int_eq(bdrv_pread(bs, 640 * 1024, r, 65536), 0);
    ck_assert_uint_eq(r[0], 0xCD);
    ck_assert_mem_eq(r + 512, b + 640 * 1024 + 512, 60 * 1024 - 512);
    ck_assert(buffer_is_zero(r + 60 * 1024, 4096));

    /* A zero write over whole clusters hides the backing file with zero clusters. */
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 131072, 131072), 0);
    check_zero(bs, 131072, 131072);
    ret = bdrv_block_status(bs, 131072, 131072, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_DATA),
                     BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED);
    ck_assert_uint_eq(pnum, 131072);
    /* The allocated cluster reports its host offset, the untouched one nothing. */
    ret = bdrv_block_status(bs, 65536, 65536, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID),
                     BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID);
    ck_assert_ptr_eq(file, bs->file);
    ck_assert_uint_eq(map % 65536, 0);
    ret = bdrv_block_status(bs, 0, 65536, &pnum, &map, &file);
    ck_assert_int_eq(ret & BDRV_BLOCK_ALLOCATED, 0);
    bdrv_close(bs);

    /* Zero clusters are entry 1 in the L2 table. */
    {
        uint64_t l2 = rd64(f, 65536);
        ck_assert_uint_eq(rd64(f, l2 + 2 * 8), 1);
        ck_assert_uint_eq(rd64(f, l2 + 3 * 8), 1);
    }
    free(b);
    free(r);
}
END_TEST

START_TEST(qed_grow_and_refuse_shrink)
{
    const char *f = P("g.qed");
    BdrvError err = { 0 };
    BlockDriverState *bs;

    create_img("qed", f, "size=4M");
    bs = open_img(f, "qed", BDRV_O_RDWR);
    write_pattern(bs, 4 * 1024 * 1024 - 512, 512, 3);
    ck_assert_int_eq(bdrv_truncate(bs, 16 << 20, BDRV_PREALLOC_OFF, &err), 0);
    ck_assert_int_eq(bdrv_getlength(bs), 16 << 20);
    check_pattern(bs, 4 * 1024 * 1024 - 512, 512, 3);
    check_zero(bs, 4 << 20, 1 << 20);
    ck_assert_int_eq(bdrv_truncate(bs, 8 << 20, BDRV_PREALLOC_OFF, &err), -ENOTSUP);
    ck_assert_int_eq(bdrv_truncate(bs, (16 << 20) + 100, BDRV_PREALLOC_OFF, &err), -EINVAL);
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, 48), 16 << 20);
}
END_TEST

START_TEST(qed_discard_keeps_image_consistent)
{
    const char *f = P("d.qed");
    BlockDriverState *bs;
    BdrvCheckResult r;
    uint8_t buf[512];

    create_img("qed", f, "size=4M");
    bs = open_img(f, "qed", BDRV_O_RDWR);
    write_pattern(bs, 0, 256 * 1024, 5);
    ck_assert_int_eq(bdrv_pdiscard(bs, 65536, 131072), 0);
    /* Discarded data reads as zeros or as before, never as anything else. */
    ck_assert_int_eq(bdrv_pread(bs, 65536, buf, 512), 0);
    {
        uint8_t want[512];
        uint8_t *all = malloc(256 * 1024);
        fill(all, 256 * 1024, 5);
        memcpy(want, all + 65536, 512);
        free(all);
        ck_assert(buffer_is_zero(buf, 512) || memcmp(buf, want, 512) == 0);
    }
    check_pattern(bs, 0, 512, 5);
    r = run_check(bs, 0);
    ck_assert_int_eq(r.corruptions + r.leaks, 0);
    bdrv_close(bs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Check and need-check                                                */

START_TEST(qed_check_finds_leaks_and_corruptions)
{
    const char *f = P("k.qed");
    BlockDriverState *bs;
    BdrvCheckResult r;
    uint64_t l2, d0;
    char msg[1024];

    create_img("qed", f, "size=8M");
    bs = open_img(f, "qed", BDRV_O_RDWR);
    write_pattern(bs, 0, 65536, 1);
    write_pattern(bs, 2 << 20, 131072, 2);
    bdrv_close(bs);
    l2 = rd64(f, 65536);
    d0 = rd64(f, l2);

    /* Two unreferenced clusters past the end: leaks (the partial tail is ignored). */
    ck_assert_int_eq(truncate(f, (off_t)(file_size(f) + 2 * 65536 + 100)), 0);
    /* A data entry past the end, a duplicate and an unaligned one: corruptions. */
    wr64(f, l2 + 2 * 8, 0x5000000);
    wr64(f, l2 + 3 * 8, d0);
    wr64(f, l2 + 4 * 8, d0 + 0x100);
    bs = open_img(f, "qed", 0);
    r = run_check(bs, 0);
    ck_assert_int_eq(r.corruptions, 3);
    ck_assert_int_eq(r.leaks, 2);
    ck_assert_uint_eq(r.allocated_clusters, 6);
    ck_assert_uint_eq(r.fragmented_clusters, 4);
    ck_assert_uint_eq(r.total_clusters, 128);
    /* Reading through the bad entry is refused, not followed. */
    {
        uint8_t b[512];
        ck_assert_int_eq(bdrv_pread(bs, 2 * 65536, b, 512), -EBADIMAGE);
    }
    bdrv_close(bs);

    /* Repair clears the bad entries; the duplicate stays an error, as in qemu-img. */
    bs = open_img(f, "qed", BDRV_O_RDWR);
    r = run_check(bs, BDRV_FIX_ERRORS | BDRV_FIX_LEAKS);
    ck_assert_int_eq(r.corruptions_fixed, 2);
    ck_assert_int_eq(r.corruptions, 1);
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, l2 + 2 * 8), 0);
    ck_assert_uint_eq(rd64(f, l2 + 4 * 8), 0);
    ck_assert_uint_eq(rd64(f, l2 + 3 * 8), d0);

    /* An L1 entry out of range is a corruption the repair removes. */
    wr64(f, l2 + 3 * 8, 0);
    wr64(f, 65536 + 8, 0x10000000);
    bs = open_img(f, "qed", 0);
    r = run_check(bs, 0);
    ck_assert_int_eq(r.corruptions, 1);
    bdrv_close(bs);
    bs = open_img(f, "qed", BDRV_O_RDWR);
    r = run_check(bs, BDRV_FIX_ERRORS);
    ck_assert_int_eq(r.corruptions, 0);
    ck_assert_int_eq(r.corruptions_fixed, 1);
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, 65536 + 8), 0);
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), 0);
}
END_TEST

START_TEST(qed_need_check_repaired_on_rw_open)
{
    const char *f = P("n.qed");
    BlockDriverState *bs;
    uint64_t l2;

    create_img("qed", f, "size=8M");
    bs = open_img(f, "qed", BDRV_O_RDWR);
    write_pattern(bs, 0, 4096, 1);
    bdrv_close(bs);
    l2 = rd64(f, 65536);
    /* As after a crash: the flag is set and an entry points past the end. */
    wr64(f, 16, 0x02);
    wr64(f, l2 + 8, 0x7000000);

    /* Read-only: no repair, the flag is reported. */
    bs = open_img(f, "qed", 0);
    ck_assert_int_eq(bdrv_is_dirty(bs), 1);
    {
        BlockDriverInfo bdi;
        ck_assert_int_eq(bdrv_get_info(bs, &bdi), 0);
        ck_assert(bdi.is_dirty);
        ck_assert_int_eq(bdi.cluster_size, 65536);
    }
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, l2 + 8), 0x7000000);

    /* Read-write: checked and repaired before use, then clean. */
    bs = open_img(f, "qed", BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_is_dirty(bs), 0);
    check_pattern(bs, 0, 4096, 1);
    check_zero(bs, 65536, 65536);
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(f, l2 + 8), 0);
    ck_assert_uint_eq(rd64(f, 16), 0);
}
END_TEST

/* A crash is simulated by copying the file while the writer still has it open. */
START_TEST(qed_crash_copy_is_consistent)
{
    const char *f = P("c.qed"), *copy = P("copy.qed");
    BlockDriverState *bs, *cs;
    BdrvCheckResult r;
    uint8_t *buf;
    uint64_t len;

    create_img("qed", f, "size=8M,cluster_size=4k");
    bs = open_img(f, "qed", BDRV_O_RDWR);
    write_pattern(bs, 0, 8192, 1);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    for (int i = 0; i < 50; i++) {
        write_pattern(bs, (uint64_t)i * 131072 + 65536 + 4096, 6144, 100 + i);
    }
    len = file_size(f);
    buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    file_read(f, 0, buf, len);
    {
        int fd = open(copy, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
        close(fd);
    }
    free(buf);
    bdrv_close(bs);
    ck_assert_uint_eq(rd64(copy, 16) & 2, 2);
    cs = open_img(copy, "qed", 0);
    r = run_check(cs, 0);
    ck_assert_int_eq(r.corruptions, 0);
    check_pattern(cs, 0, 8192, 1);
    bdrv_close(cs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile headers                                                     */

typedef struct HeaderPatch {
    const char *what;
    uint64_t off;
    int width;                /* 4 or 8 */
    uint64_t value;
    int expect;
} HeaderPatch;

START_TEST(qed_hostile_headers_refused)
{
    static const HeaderPatch patches[] = {
        { "cluster_size 0", 4, 4, 0, -EBADIMAGE },
        { "cluster_size 3000", 4, 4, 3000, -EBADIMAGE },
        { "cluster_size 2048", 4, 4, 2048, -EBADIMAGE },
        { "cluster_size 128M", 4, 4, 128u << 20, -EBADIMAGE },
        { "table_size 0", 8, 4, 0, -EBADIMAGE },
        { "table_size 3", 8, 4, 3, -EBADIMAGE },
        { "table_size 32", 8, 4, 32, -EBADIMAGE },
        { "header_size 0", 12, 4, 0, -EBADIMAGE },
        { "header_size huge", 12, 4, 0x10000000, -EBADIMAGE },
        { "header_size past the L1", 12, 4, 100, -EBADIMAGE },
        { "unknown feature", 16, 8, 0x08, -ENOTSUP },
        { "image_size unaligned", 48, 8, 1000, -EBADIMAGE },
        { "image_size too large", 48, 8, UINT64_C(1) << 60, -EBADIMAGE },
        { "L1 offset unaligned", 40, 8, 0x10200, -EBADIMAGE },
        { "L1 offset inside the header", 40, 8, 0, -EBADIMAGE },
        { "L1 past the end", 40, 8, 0x40000, -EBADIMAGE },
        { "L1 far past the end", 40, 8, UINT64_C(0xffffffffffff0000), -EBADIMAGE },
        { "backing name outside the header", 16, 8, 0x01, -EBADIMAGE },
    };
    const char *f = P("h.qed");
    char msg[1024];

    create_img("qed", f, "size=8M");
    ck_assert_int_eq(try_open(f, 0, NULL, 0), 0);
    for (size_t i = 0; i < ARRAY_SIZE(patches); i++) {
        const HeaderPatch *p = &patches[i];
        uint8_t orig[64];
        int ret;

        file_read(f, 0, orig, sizeof(orig));
        if (p->width == 4) {
            wr32(f, p->off, (uint32_t)p->value);
        } else {
            wr64(f, p->off, p->value);
        }
        if (i == ARRAY_SIZE(patches) - 1) {
            /* The name would lie past the header cluster. */
            wr32(f, 56, 65530);
            wr32(f, 60, 100);
        }
        ret = try_open(f, 0, msg, sizeof(msg));
        ck_assert_msg(ret == p->expect, "%s: got %d (%s), want %d", p->what, ret, msg,
                      p->expect);
        ck_assert_msg(strstr(msg, "h.qed") != NULL, "%s: message '%s' does not name the image",
                      p->what, msg);
        file_write(f, 0, orig, sizeof(orig));
    }
    ck_assert_int_eq(try_open(f, 0, NULL, 0), 0);

    /* A file too short for a header. */
    ck_assert_int_eq(truncate(f, 40), 0);
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
}
END_TEST

START_TEST(qed_hostile_tables_refused_on_read)
{
    const char *f = P("t.qed");
    BlockDriverState *bs;
    uint8_t b[4096];

    create_img("qed", f, "size=8M");
    /* L1[0] unaligned, L1[1] pointing at a table that does not fit in the file. */
    wr64(f, 65536, 0x10008);
    wr64(f, 65536 + 8, 0x40000);
    bs = open_img(f, "qed", 0);
    ck_assert_int_eq(bdrv_pread(bs, 0, b, sizeof(b)), -EBADIMAGE);
    ck_assert_int_eq(bdrv_pread(bs, 4 << 20, b, sizeof(b)), -EBADIMAGE);
    {
        uint64_t pnum;
        ck_assert_int_eq(bdrv_block_status(bs, 0, 4096, &pnum, NULL, NULL), -EBADIMAGE);
    }
    bdrv_close(bs);
}
END_TEST

START_TEST(qed_probe_scores)
{
    uint8_t buf[512] = { 'Q', 'E', 'D', 0 };
    const BlockDriver *drv = bdrv_find_format("qed");

    ck_assert_ptr_nonnull(drv);
    ck_assert_int_eq(drv->bdrv_probe(buf, sizeof(buf), "x"), 100);
    ck_assert_ptr_eq(bdrv_probe_format(buf, sizeof(buf), "x"), drv);
    buf[3] = 1;
    ck_assert_int_eq(drv->bdrv_probe(buf, sizeof(buf), "x"), 0);
    ck_assert_int_eq(drv->bdrv_probe(buf, 3, "x"), 0);
}
END_TEST

static Suite *qed_suite(void)
{
    Suite *s = suite_create("qed");
    TCase *tc;

    tc = tcase_create("create");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, qed_create_default_layout_matches_qemu);
    tcase_add_test(tc, qed_create_backing_raw_sets_no_probe);
    tcase_add_test(tc, qed_create_options_validated);
    tcase_add_test(tc, qed_probe_scores);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, qed_write_maps_to_table_entries);
    tcase_add_test(tc, qed_random_writes_match_mirror);
    tcase_add_test(tc, qed_backing_copy_on_write);
    tcase_add_test(tc, qed_grow_and_refuse_shrink);
    tcase_add_test(tc, qed_discard_keeps_image_consistent);
    suite_add_tcase(s, tc);

    tc = tcase_create("check");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, qed_check_finds_leaks_and_corruptions);
    tcase_add_test(tc, qed_need_check_repaired_on_rw_open);
    tcase_add_test(tc, qed_crash_copy_is_consistent);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, qed_hostile_headers_refused);
    tcase_add_test(tc, qed_hostile_tables_refused_on_read);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(qed_suite());
}
