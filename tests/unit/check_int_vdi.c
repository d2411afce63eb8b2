/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_vdi.c: white-box tests of the VDI driver (block/vdi.c): the
 * header and block map it creates (read back with plain POSIX calls), where
 * writes allocate blocks, the unallocated and zero markers, block status,
 * qemu-img's check verdicts, what a crash between the ordered writes leaves,
 * and hostile headers.
 */

#define _GNU_SOURCE

#define QBINT_NAME "check_int_vdi"
#define QBINT_LITTLE_ENDIAN
#define QBINT_FMT "vdi"
#include "qbint.h"

#define MiB (1024 * 1024)

/* ------------------------------------------------------------------ */
/* Test helpers (the common ones are in qbint.h)                       */

static BdrvCheckResult run_check(BlockDriverState *bs)
{
    BdrvCheckResult r;
    BdrvError err = { 0 };
    int ret = bdrv_check(bs, &r, 0, &err);
    ck_assert_msg(ret == 0, "check: %d %s", ret, err.msg);
    return r;
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

START_TEST(vdi_create_dynamic_layout_matches_qemu)
{
    const char *f = P("d.vdi");
    uint8_t uuid[16], zero[16] = { 0 };

    create_img(f, "size=64M");
    /* The text, signature, version, and QEMU's VDIHEADER1 values. */
    {
        char text[64];
        file_read(f, 0, text, sizeof(text));
        ck_assert(memcmp(text, "<<< QEMU VM Virtual Disk Image >>>\n", 35) == 0);
    }
    ck_assert_uint_eq(rd32(f, 0x40), 0xBEDA107F);
    ck_assert_uint_eq(rd32(f, 0x44), 0x00010001);
    ck_assert_uint_eq(rd32(f, 0x48), 0x180);
    ck_assert_uint_eq(rd32(f, 0x4C), 1);
    ck_assert_uint_eq(rd32(f, 0x154), 0x200);
    ck_assert_uint_eq(rd32(f, 0x158), 0x400);
    ck_assert_uint_eq(rd32(f, 0x168), 512);
    ck_assert_uint_eq(rd64(f, 0x170), 64 * MiB);
    ck_assert_uint_eq(rd32(f, 0x178), MiB);
    ck_assert_uint_eq(rd32(f, 0x17C), 0);
    ck_assert_uint_eq(rd32(f, 0x180), 64);
    ck_assert_uint_eq(rd32(f, 0x184), 0);
    file_read(f, 0x188, uuid, 16);
    ck_assert(memcmp(uuid, zero, 16) != 0);
    ck_assert_uint_eq(uuid[7] >> 4, 4);          /* random UUID, RTUUID byte order */
    ck_assert_uint_eq(uuid[8] & 0xC0, 0x80);
    file_read(f, 0x1A8, uuid, 16);
    ck_assert(memcmp(uuid, zero, 16) == 0);      /* no link */
    file_read(f, 0x1B8, uuid, 16);
    ck_assert(memcmp(uuid, zero, 16) == 0);
    for (int i = 0; i < 64; i++) {
        ck_assert_uint_eq(rd32(f, 0x200 + 4 * (uint64_t)i), 0xFFFFFFFF);
    }
    ck_assert_uint_eq(file_size(f), 1024);

    /* Two images get different UUIDs. */
    {
        uint8_t a[16], b[16];
        create_img(P("e.vdi"), "size=64M");
        file_read(f, 0x188, a, 16);
        file_read(P("e.vdi"), 0x188, b, 16);
        ck_assert(memcmp(a, b, 16) != 0);
    }
}
END_TEST

START_TEST(vdi_create_static_and_odd_sizes)
{
    const char *f = P("s.vdi"), *o = P("odd.vdi");
    BlockDriverState *bs;

    create_img(f, "size=10M,static=on");
    ck_assert_uint_eq(rd32(f, 0x4C), 2);
    ck_assert_uint_eq(rd32(f, 0x180), 10);
    ck_assert_uint_eq(rd32(f, 0x184), 10);
    for (uint32_t i = 0; i < 10; i++) {
        ck_assert_uint_eq(rd32(f, 0x200 + 4 * (uint64_t)i), i);
    }
    ck_assert_uint_eq(file_size(f), 0x400 + 10ull * MiB);
    bs = open_img(f, 0);
    ck_assert_int_eq(run_check(bs).corruptions, 0);
    bdrv_close(bs);

    /* qemu-img rounds the size up to a sector; the map gets a whole block. */
    create_img(o, "size=10000");
    ck_assert_uint_eq(rd64(o, 0x170), 10240);
    ck_assert_uint_eq(rd32(o, 0x180), 1);
    bs = open_img(o, 0);
    ck_assert_int_eq(bdrv_getlength(bs), 10240);
    bdrv_close(bs);

    /* 600 blocks need 2400 bytes of map: data starts after 5 sectors of it. */
    create_img(P("big.vdi"), "size=600M");
    ck_assert_uint_eq(rd32(P("big.vdi"), 0x158), 0x200 + 2560);
}
END_TEST

START_TEST(vdi_create_options_validated)
{
    char msg[1024];

    ck_assert_int_eq(create_ret(P("a.vdi"), "size=8M,cluster_size=2M", msg, sizeof(msg)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "cluster_size"));
    ck_assert_int_eq(create_ret(P("a.vdi"), "size=8M,preallocation=metadata", msg, sizeof(msg)),
                     -EINVAL);
    ck_assert_int_eq(create_ret(P("a.vdi"), "size=8M,preallocation=bogus", msg, sizeof(msg)),
                     -EINVAL);
    ck_assert_int_eq(create_ret(P("a.vdi"), "size=8M,static=maybe", msg, sizeof(msg)),
                     -EINVAL);
    /* QEMU's maximum is 0x1fffff8000000 bytes. */
    ck_assert_int_eq(create_ret(P("a.vdi"), "size=562949953421312", msg, sizeof(msg)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "max supported"));
    ck_assert_int_eq(create_ret(P("a.vdi"), "size=8M,preallocation=full", msg, sizeof(msg)), 0);
}
END_TEST

START_TEST(vdi_probe_scores)
{
    uint8_t buf[512];

    create_img(P("p.vdi"), "size=1M");
    file_read(P("p.vdi"), 0, buf, sizeof(buf));
    ck_assert_ptr_eq(bdrv_probe_format(buf, sizeof(buf), "p.vdi"), &bdrv_vdi);
    ck_assert_int_eq(bdrv_vdi.bdrv_probe(buf, 0x43, "x"), 0);   /* too short for the signature */
    buf[0x40] ^= 1;
    ck_assert_int_eq(bdrv_vdi.bdrv_probe(buf, sizeof(buf), "x"), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* I/O                                                                 */

START_TEST(vdi_writes_allocate_blocks_in_order)
{
    const char *f = P("w.vdi");
    BlockDriverState *bs;
    uint8_t a[4096], b[4096];

    create_img(f, "size=16M");
    bs = open_img(f, BDRV_O_RDWR);
    fill(a, sizeof(a), 1);
    ck_assert_int_eq(bdrv_pwrite(bs, 5 * MiB + 8192, a, sizeof(a)), 0);
    fill(a, sizeof(a), 2);
    ck_assert_int_eq(bdrv_pwrite(bs, 2 * MiB, a, sizeof(a)), 0);
    bdrv_close(bs);

    /* First allocation: data-area block 0, the next: block 1; the count follows. */
    ck_assert_uint_eq(rd32(f, 0x200 + 4 * 5), 0);
    ck_assert_uint_eq(rd32(f, 0x200 + 4 * 2), 1);
    ck_assert_uint_eq(rd32(f, 0x200 + 4 * 3), 0xFFFFFFFF);
    ck_assert_uint_eq(rd32(f, 0x184), 2);
    fill(a, sizeof(a), 1);
    file_read(f, 0x400 + 8192, b, sizeof(b));
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    file_read(f, 0x400, b, sizeof(b));           /* the rest of the block is zeros */
    ck_assert(buffer_is_zero(b, sizeof(b)));
    fill(a, sizeof(a), 2);
    file_read(f, 0x400 + MiB, b, sizeof(b));
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    ck_assert_uint_eq(file_size(f), 0x400 + 2ull * MiB);

    bs = open_img(f, 0);
    ck_assert_int_eq(bdrv_pread(bs, 5 * MiB + 8192, b, sizeof(b)), 0);
    fill(a, sizeof(a), 1);
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    ck_assert_int_eq(bdrv_pread(bs, 7 * MiB, b, sizeof(b)), 0);
    ck_assert(buffer_is_zero(b, sizeof(b)));
    ck_assert_int_eq(run_check(bs).corruptions, 0);
    bdrv_close(bs);
}
END_TEST

START_TEST(vdi_random_writes_match_mirror)
{
    const char *f = P("r.vdi");
    const size_t size = 24 * MiB;
    uint8_t *mirror = calloc(1, size), *got = malloc(size), *buf = malloc(3 * MiB);
    BlockDriverState *bs;
    uint32_t seed = 12345;

    ck_assert_ptr_nonnull(mirror);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(buf);
    create_img(f, "size=24M");
    bs = open_img(f, BDRV_O_RDWR | BDRV_O_NO_FLUSH);
    random_writes(bs, mirror, buf, size, seed, 400, 6000, 7, 3);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    bdrv_close(bs);

    bs = open_img(f, 0);
    ck_assert_int_eq(bdrv_pread(bs, 0, got, size), 0);
    ck_assert(memcmp(got, mirror, size) == 0);
    ck_assert_int_eq(run_check(bs).corruptions, 0);
    bdrv_close(bs);
    free(mirror);
    free(got);
    free(buf);
}
END_TEST

START_TEST(vdi_zero_marker_and_block_status)
{
    const char *f = P("z.vdi");
    BlockDriverState *bs, *file;
    uint8_t a[512];
    uint64_t pnum, map;
    int ret;

    create_img(f, "size=8M");
    bs = open_img(f, BDRV_O_RDWR);
    memset(a, 0x5A, sizeof(a));
    ck_assert_int_eq(bdrv_pwrite(bs, 1 * MiB, a, sizeof(a)), 0);
    ck_assert_int_eq(bdrv_pwrite(bs, 2 * MiB, a, sizeof(a)), 0);

    /* Unallocated: reads zeros, shown present and zero as QEMU's map shows it. */
    ret = bdrv_block_status(bs, 0, 8 * MiB, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED),
                     BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED);
    ck_assert_uint_eq(pnum, MiB);
    /* Blocks 1 and 2 lie one after the other in the file: one extent. */
    ret = bdrv_block_status(bs, MiB, 7 * MiB, &pnum, &map, &file);
    ck_assert(ret & BDRV_BLOCK_DATA);
    ck_assert(ret & BDRV_BLOCK_OFFSET_VALID);
    ck_assert_uint_eq(map, 0x400);
    ck_assert_ptr_eq(file, bs->file);
    ck_assert_uint_eq(pnum, 2 * MiB);
    bdrv_close(bs);

    /* A discarded block (0xFFFFFFFE) reads as zeros and is not allocated. */
    wr32(f, 0x200 + 4 * 1, 0xFFFFFFFE);
    wr32(f, 0x184, 1);
    bs = open_img(f, BDRV_O_RDWR);
    memset(a, 0xEE, sizeof(a));
    ck_assert_int_eq(bdrv_pread(bs, MiB, a, sizeof(a)), 0);
    ck_assert(buffer_is_zero(a, sizeof(a)));
    ret = bdrv_block_status(bs, MiB, MiB, &pnum, &map, &file);
    ck_assert(ret & BDRV_BLOCK_ZERO);
    ck_assert(!(ret & BDRV_BLOCK_DATA));
    ck_assert_int_eq(run_check(bs).corruptions, 0);
    /* Writing it allocates a new block past the highest one in use. */
    memset(a, 0x77, sizeof(a));
    ck_assert_int_eq(bdrv_pwrite(bs, MiB + 512, a, sizeof(a)), 0);
    bdrv_close(bs);
    ck_assert_uint_eq(rd32(f, 0x200 + 4 * 1), 2);
    ck_assert_uint_eq(rd32(f, 0x184), 2);

    /* Zero writes over allocated data zero it in place; over holes they change nothing. */
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 2 * MiB, 512), 0);
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 5 * MiB, MiB), 0);
    ck_assert_int_eq(bdrv_pread(bs, 2 * MiB, a, sizeof(a)), 0);
    ck_assert(buffer_is_zero(a, sizeof(a)));
    bdrv_close(bs);
    ck_assert_uint_eq(rd32(f, 0x200 + 4 * 5), 0xFFFFFFFF);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Check and crash leftovers                                           */

START_TEST(vdi_check_verdicts_match_qemu)
{
    const char *f = P("c.vdi");
    BlockDriverState *bs;
    BdrvCheckResult r;
    BdrvError err = { 0 };
    uint8_t a[512];

    create_img(f, "size=8M");
    bs = open_img(f, BDRV_O_RDWR);
    memset(a, 1, sizeof(a));
    ck_assert_int_eq(bdrv_pwrite(bs, 0, a, sizeof(a)), 0);
    ck_assert_int_eq(bdrv_pwrite(bs, 3 * MiB, a, sizeof(a)), 0);
    r = run_check(bs);
    ck_assert_int_eq(r.corruptions, 0);
    ck_assert_int_eq(bdrv_check(bs, &r, BDRV_FIX_ERRORS, &err), -ENOTSUP);
    bdrv_close(bs);

    /* A duplicate index: one error, and the count (duplicates included) mismatches. */
    wr32(f, 0x200 + 4 * 6, 0);
    bs = open_img(f, 0);
    ck_assert_int_eq(run_check(bs).corruptions, 2);
    bdrv_close(bs);
    /* The count fixed: only the duplicate remains. */
    wr32(f, 0x184, 3);
    bs = open_img(f, 0);
    ck_assert_int_eq(run_check(bs).corruptions, 1);
    bdrv_close(bs);
    /* An index past blocks_in_image: "too large", and not counted. */
    wr32(f, 0x200 + 4 * 6, 8);
    wr32(f, 0x184, 2);
    bs = open_img(f, 0);
    ck_assert_int_eq(run_check(bs).corruptions, 1);
    /* Writing through such an entry could land anywhere: refused. */
    bdrv_close(bs);
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_pwrite(bs, 6 * MiB, a, sizeof(a)), -EBADIMAGE);
    bdrv_close(bs);
}
END_TEST

START_TEST(vdi_crash_leftovers_stay_consistent)
{
    const char *f = P("k.vdi"), *g = P("k2.vdi");
    BlockDriverState *bs;
    uint8_t a[512], junk[4096];

    create_img(f, "size=8M");
    bs = open_img(f, BDRV_O_RDWR);
    memset(a, 0x11, sizeof(a));
    ck_assert_int_eq(bdrv_pwrite(bs, 0, a, sizeof(a)), 0);
    bdrv_close(bs);

    /*
     * A crash after invariant 2: a whole block of data nobody references at
     * the end of the file. The next allocation reuses the space and must not
     * keep its old bytes.
     */
    copy_file(f, g);
    memset(junk, 0xCC, sizeof(junk));
    for (int i = 0; i < 256; i++) {
        file_write(g, 0x400 + MiB + (uint64_t)i * sizeof(junk), junk, sizeof(junk));
    }
    bs = open_img(g, BDRV_O_RDWR);
    ck_assert_int_eq(run_check(bs).corruptions, 0);
    memset(a, 0x22, sizeof(a));
    ck_assert_int_eq(bdrv_pwrite(bs, 4 * MiB, a, sizeof(a)), 0);
    ck_assert_uint_eq(rd32(g, 0x200 + 4 * 4), 1);
    ck_assert_int_eq(bdrv_pread(bs, 4 * MiB + 4096, junk, sizeof(junk)), 0);
    ck_assert(buffer_is_zero(junk, sizeof(junk)));
    ck_assert_int_eq(run_check(bs).corruptions, 0);
    bdrv_close(bs);

    /*
     * A crash between invariants 3 and 4: the map has the entry, the header
     * count is stale. The check says so (as qemu-img does), and the next
     * allocating write puts its block after the referenced one and fixes
     * the count.
     */
    copy_file(f, g);
    wr32(g, 0x200 + 4 * 2, 1);
    file_write(g, 0x400 + MiB, junk, sizeof(junk));
    bs = open_img(g, BDRV_O_RDWR);
    ck_assert_int_eq(run_check(bs).corruptions, 1);
    ck_assert_int_eq(bdrv_pwrite(bs, 7 * MiB, a, sizeof(a)), 0);
    ck_assert_uint_eq(rd32(g, 0x200 + 4 * 7), 2);
    ck_assert_uint_eq(rd32(g, 0x184), 3);
    ck_assert_int_eq(run_check(bs).corruptions, 0);
    bdrv_close(bs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile headers                                                     */

typedef struct {
    uint32_t off;
    int width;            /* 4 or 8 */
    uint64_t value;
    int want;             /* expected open result */
    const char *msg;      /* a substring of the message */
} Patch;

START_TEST(vdi_hostile_headers_refused)
{
    static const Patch patches[] = {
        { 0x40, 4, 0x12345678, -EBADIMAGE, "signature" },
        { 0x44, 4, 0x00010000, -ENOTSUP, "version 1.0" },
        { 0x44, 4, 0x00020001, -ENOTSUP, "version 2.1" },
        { 0x154, 4, 0x201, -EBADIMAGE, "unaligned block map offset 0x201" },
        { 0x158, 4, 0x401, -EBADIMAGE, "unaligned data offset 0x401" },
        { 0x168, 4, 4096, -EBADIMAGE, "sector size 4096 is not 512" },
        { 0x178, 4, 2 * MiB, -ENOTSUP, "block size 2097152 is not 1048576" },
        { 0x178, 4, 0, -ENOTSUP, "block size 0" },
        { 0x17C, 4, 512, -ENOTSUP, "block_extra" },
        { 0x180, 4, 0x7FFFFFFF, -EBADIMAGE, "too many blocks" },
        { 0x180, 4, 4, -EBADIMAGE, "image bitmap has room for 4194304" },
        { 0x180, 4, 0x1FFFFF00, -EBADIMAGE, "block map" },   /* map far past the file */
        { 0x170, 8, UINT64_MAX, -EBADIMAGE, "max supported" },
        { 0x170, 8, 9 * MiB, -EBADIMAGE, "disk size 9437184" },
        { 0x1A8, 4, 1, -ENOTSUP, "non-NULL link UUID" },
        { 0x1B8, 4, 1, -ENOTSUP, "non-NULL parent UUID" },
        { 0x154, 4, 0, -EBADIMAGE, "overlaps the header" },
        { 0x154, 4, 0x400, -EBADIMAGE, "block map" },
        { 0x158, 4, 0x200, -EBADIMAGE, "overlaps the block map" },
        { 0x154, 4, 0x7FFFFE00, -EBADIMAGE, "past the end of the file" },
    };
    const char *f = P("h.vdi"), *g = P("hp.vdi");
    char msg[1024];

    create_img(f, "size=8M");
    for (size_t i = 0; i < ARRAY_SIZE(patches); i++) {
        const Patch *p = &patches[i];
        int ret;
        copy_file(f, g);
        if (p->width == 4) {
            wr32(g, p->off, (uint32_t)p->value);
        } else {
            wr64(g, p->off, p->value);
        }
        ret = try_open(g, msg, sizeof(msg));
        ck_assert_msg(ret == p->want, "patch %zu (0x%x): %d, wanted %d (%s)", i, p->off, ret,
                      p->want, msg);
        ck_assert_msg(strstr(msg, p->msg) && strstr(msg, "hp.vdi"),
                      "patch %zu: message '%s' lacks '%s' or the image name", i, msg, p->msg);
    }
    /* A file cut inside the header. */
    ck_assert_int_eq(truncate(g, 100), 0);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), -EBADIMAGE);
    /* An odd disk size is rounded up to a sector, as QEMU does. */
    copy_file(f, g);
    wr64(g, 0x170, 8 * MiB - 100);
    ck_assert_int_eq(try_open(g, msg, sizeof(msg)), 0);
}
END_TEST

static Suite *vdi_suite(void)
{
    Suite *s = suite_create("vdi");
    TCase *tc;

    tc = tcase_create("create");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, vdi_create_dynamic_layout_matches_qemu);
    tcase_add_test(tc, vdi_create_static_and_odd_sizes);
    tcase_add_test(tc, vdi_create_options_validated);
    tcase_add_test(tc, vdi_probe_scores);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, vdi_writes_allocate_blocks_in_order);
    tcase_add_test(tc, vdi_random_writes_match_mirror);
    tcase_add_test(tc, vdi_zero_marker_and_block_status);
    suite_add_tcase(s, tc);

    tc = tcase_create("check");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, vdi_check_verdicts_match_qemu);
    tcase_add_test(tc, vdi_crash_leftovers_stay_consistent);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, vdi_hostile_headers_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(vdi_suite());
}
