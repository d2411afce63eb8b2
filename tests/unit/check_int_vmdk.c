/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_vmdk.c: white-box tests of the VMDK driver (block/vmdk.c,
 * block/vmdk-sparse.c): the descriptor parser and probe, extent path rules,
 * the layouts it creates (read back with POSIX calls), grain allocation in
 * the grain tables and their redundant copies, copy-on-write from a parent
 * and the CID rules, stream-optimized grains (including a footer-at-end
 * image), zeroed grains, the check, ESX "COWD" extents, and hostile headers
 * and descriptors.
 */

#define _GNU_SOURCE

#define QBINT_NAME "check_int_vmdk"
#define QBINT_LITTLE_ENDIAN
#define QBINT_FMT "vmdk"
#define QBINT_OWN_TRY_OPEN
#define QBINT_P_BUFS 6
#define QBINT_OWN_FILE_WRITE
#include "qbint.h"
#include "../../block/vmdk.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

static int try_open(const char *file, int flags, char *msg, size_t msglen)
{
    BdrvError err = { 0 };
    BlockDriverState *bs = NULL;
    int ret = bdrv_open(&bs, file, "vmdk", flags, &err);

    snprintf(msg, msglen, "%s", err.msg);
    if (ret == 0) {
        bdrv_close(bs);
    }
    return ret;
}

static void file_write(const char *file, uint64_t off, const void *buf, size_t len)
{
    int fd = open(file, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void file_put(const char *file, const char *text)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* The descriptor text embedded at sector 1 of a sparse extent. */
static void read_embedded_desc(const char *file, char *buf, size_t len)
{
    memset(buf, 0, len);
    file_read(file, 512, buf, MIN(len - 1, (size_t)20 * 512));
}

static void check_pattern(BlockDriverState *bs, uint64_t off, size_t len, uint32_t seed)
{
    uint8_t *a = malloc(len), *b = malloc(len);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    fill(a, len, seed);
    ck_assert_int_eq(bdrv_pread(bs, off, b, len), 0);
    ck_assert_msg(memcmp(a, b, len) == 0, "pattern %u mismatch at %" PRIu64, seed, off);
    free(a);
    free(b);
}

static uint32_t image_cid(BlockDriverState *bs)
{
    return ((BDRVVmdkState *)bs->opaque)->cid;
}

/* ------------------------------------------------------------------ */
/* Descriptor, probe, paths                                            */

START_TEST(vmdk_desc_parse_variants)
{
    static const char text[] =
        "# Disk DescriptorFile\r\n"
        "version=1\r\n"
        "encoding=\"UTF-8\"\r\n"
        "CID=0a0B0c0D\r\n"
        "parentCID = fffffffe\r\n"
        "isNativeSnapshot=\"no\"\r\n"
        "   createType = \"twoGbMaxExtentFlat\"   \r\n"
        "parentFileNameHint=\"../base image.vmdk\"\r\n"
        "\r\n"
        "# Extent description\r\n"
        "RW 4192256 FLAT \"disk name with spaces-f001.vmdk\" 0\r\n"
        "RDONLY\t100 SPARSE \"b.vmdk\"\r\n"
        "NOACCESS 8 FLAT \"c.vmdk\" 77 partuuid devid\r\n"
        "RW 2048 ZERO\r\n"
        "RW 64 VMFS plain.vmdk\r\n"
        "garbage line without equals\r\n"
        "ddb.adapterType = \"lsilogic\"\r\n";
    VmdkDesc d;
    BdrvError err = { 0 };

    ck_assert_int_eq(vmdk_desc_parse(text, strlen(text), true, &d, "t", &err), 0);
    ck_assert_int_eq(d.version, 1);
    ck_assert(d.has_cid);
    ck_assert_uint_eq(d.cid, 0x0a0b0c0d);
    ck_assert(d.has_parent_cid);
    ck_assert_uint_eq(d.parent_cid, 0xfffffffe);
    ck_assert_str_eq(d.create_type, "twoGbMaxExtentFlat");
    ck_assert_str_eq(d.parent_hint, "../base image.vmdk");
    ck_assert_int_eq(d.nb_extents, 5);
    ck_assert_int_eq(d.extents[0].access, VMDK_ACCESS_RW);
    ck_assert_uint_eq(d.extents[0].sectors, 4192256);
    ck_assert_str_eq(d.extents[0].type, "FLAT");
    ck_assert_str_eq(d.extents[0].filename, "disk name with spaces-f001.vmdk");
    ck_assert(d.extents[0].has_offset);
    ck_assert_int_eq(d.extents[1].access, VMDK_ACCESS_RDONLY);
    ck_assert(!d.extents[1].has_offset);
    ck_assert_int_eq(d.extents[2].access, VMDK_ACCESS_NOACCESS);
    ck_assert_uint_eq(d.extents[2].offset, 77);
    ck_assert_str_eq(d.extents[3].type, "ZERO");
    ck_assert_ptr_null(d.extents[3].filename);
    ck_assert_str_eq(d.extents[4].filename, "plain.vmdk");
    vmdk_desc_free(&d);

    /* Without extents wanted (embedded descriptors), extent lines are not even checked. */
    ck_assert_int_eq(vmdk_desc_parse("CID=5\nRW x FLAT\n", 16, false, &d, "t", &err), 0);
    ck_assert_uint_eq(d.cid, 5);
    ck_assert_int_eq(d.nb_extents, 0);
    vmdk_desc_free(&d);
    /* The text ends at a NUL (descriptors are NUL-padded). */
    ck_assert_int_eq(vmdk_desc_parse("CID=7\n\0CID=8\n", 13, true, &d, "t", &err), 0);
    ck_assert_uint_eq(d.cid, 7);
    vmdk_desc_free(&d);
    /* Bad extent lines. */
    ck_assert_int_eq(vmdk_desc_parse("RW 100 FLAT \"a\"\n", 16, true, &d, "t", &err), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "Invalid extent line"));
    ck_assert_int_eq(vmdk_desc_parse("RW -1 FLAT \"a\" 0\n", 17, true, &d, "t", &err),
                     -EBADIMAGE);
    ck_assert_int_eq(vmdk_desc_parse("RW 10 SPARSE \"a\n", 16, true, &d, "t", &err), -EBADIMAGE);
    ck_assert_int_eq(vmdk_desc_parse("RW 10 SPARSE\n", 13, true, &d, "t", &err), -EBADIMAGE);
    ck_assert_int_eq(vmdk_desc_parse("RW 99999999999999999999 FLAT \"a\" 0\n", 35, true, &d,
                                     "t", &err), -EBADIMAGE);
    ck_assert_int_eq(vmdk_desc_parse("CID=zz\n", 7, true, &d, "t", &err), 0);
    ck_assert(!d.has_cid);
    vmdk_desc_free(&d);
}
END_TEST

START_TEST(vmdk_probe_follows_qemu_rules)
{
    static const struct {
        const char *text;
        int score;
    } cases[] = {
        { "version=1\n", 100 },
        { "# Disk DescriptorFile\nversion=2\r\nCID=1\n", 100 },
        { "   \n# c\n  \r\nversion=3\n", 100 },
        { "\nversion=1\n", 0 },              /* a bare empty line first */
        { "version=4\n", 0 },
        { "version=1", 0 },
        { "CID=1\nversion=1\n", 0 },
        { "# only a comment", 0 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        ck_assert_msg(vmdk_probe_text((const uint8_t *)cases[i].text,
                                      (int)strlen(cases[i].text)) == cases[i].score,
                      "case %zu", i);
    }
    ck_assert_int_eq(bdrv_vmdk.bdrv_probe((const uint8_t *)"KDMV", 4, "x"), 100);
    ck_assert_int_eq(bdrv_vmdk.bdrv_probe((const uint8_t *)"COWD", 4, "x"), 100);
    ck_assert_int_eq(bdrv_vmdk.bdrv_probe((const uint8_t *)"KDM", 3, "x"), 0);
}
END_TEST

START_TEST(vmdk_extent_paths_resolve_as_qemu)
{
    char out[PATH_MAX];

    ck_assert_int_eq(vmdk_resolve_extent_path(out, sizeof(out), "/a/b/x.vmdk", "y.vmdk"), 0);
    ck_assert_str_eq(out, "/a/b/y.vmdk");
    ck_assert_int_eq(vmdk_resolve_extent_path(out, sizeof(out), "x.vmdk", "y.vmdk"), 0);
    ck_assert_str_eq(out, "y.vmdk");
    ck_assert_int_eq(vmdk_resolve_extent_path(out, sizeof(out), "/a/x.vmdk", "sub/y.vmdk"), 0);
    ck_assert_str_eq(out, "/a/sub/y.vmdk");
    ck_assert_int_eq(vmdk_resolve_extent_path(out, sizeof(out), "/a/x.vmdk", "../y"), 0);
    ck_assert_str_eq(out, "/a/../y");
    ck_assert_int_eq(vmdk_resolve_extent_path(out, sizeof(out), "/a/x.vmdk", "/etc/passwd"), 0);
    ck_assert_str_eq(out, "/etc/passwd");
    ck_assert_int_eq(vmdk_resolve_extent_path(out, sizeof(out), "/a/x.vmdk", ""), -EINVAL);
    ck_assert_int_eq(vmdk_resolve_extent_path(out, 8, "/a/x.vmdk", "long-name.vmdk"),
                     -ENAMETOOLONG);
}
END_TEST

/*
 * Whether an extent may leave the folder is the open policy's decision:
 * confined by default, anywhere once allow_any_path lifts it (as qblock-img
 * does, like qemu-img).
 */
START_TEST(vmdk_extent_paths_follow_the_policy)
{
    BdrvPolicy confined = { 0 }, any = { .allow_any_path = true };
    const char *base = strrchr(dir, '/') + 1;
    char outdir[600], out[700], link[600], climb[700], desc[1024];

    /* A file beside the test folder, reached three ways from inside it. */
    snprintf(outdir, sizeof(outdir), "%s-out", dir);
    mkdir(outdir, 0755);
    snprintf(out, sizeof(out), "%s/out.bin", outdir);
    file_put(out, "");
    ck_assert_int_eq(truncate(out, 8192), 0);
    snprintf(link, sizeof(link), "%s/link.bin", dir);
    unlink(link);
    ck_assert_int_eq(symlink(out, link), 0);
    snprintf(climb, sizeof(climb), "../%s-out/out.bin", base);
    const char *names[] = { climb, out, "link.bin" };

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        const char *f = P("x.vmdk");
        BlockDriverState *bs = NULL;
        BdrvError err = { 0 };

        snprintf(desc, sizeof(desc),
                 "version=1\nCID=1\ncreateType=\"monolithicFlat\"\nRW 16 FLAT \"%s\" 0\n",
                 names[i]);
        file_put(f, desc);
        ck_assert_int_eq(bdrv_open_policy(&bs, f, "vmdk", 0, &confined, &err), -EPOLICY);
        ck_assert_msg(strstr(err.msg, "outside the image's folder"), "%s: %s", names[i], err.msg);
        memset(&err, 0, sizeof(err));
        ck_assert_msg(bdrv_open_policy(&bs, f, "vmdk", 0, &any, &err) == 0, "%s: %s", names[i],
                      err.msg);
        ck_assert_int_eq(bdrv_getlength(bs), 16 * 512);
        bdrv_close(bs);
    }
    unlink(link);
    unlink(out);
    rmdir(outdir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Create                                                              */

START_TEST(vmdk_create_sparse_layout_matches_qemu)
{
    const char *f = P("s.vmdk"), *b = P("big.vmdk");
    char desc[20 * 512 + 1];
    VmdkDesc d;
    BdrvError err = { 0 };

    create_img(f, "size=64M");
    ck_assert(rd32(f, 0) == 0x564D444B);           /* "KDMV" */
    ck_assert_uint_eq(rd32(f, 4), 1);
    ck_assert_uint_eq(rd32(f, 8), 3);
    ck_assert_uint_eq(rd64(f, 0x0C), 131072);
    ck_assert_uint_eq(rd64(f, 0x14), 128);
    ck_assert_uint_eq(rd64(f, 0x1C), 1);
    ck_assert_uint_eq(rd64(f, 0x24), 20);
    ck_assert_uint_eq(rd32(f, 0x2C), 512);
    ck_assert_uint_eq(rd64(f, 0x30), 21);
    ck_assert_uint_eq(rd64(f, 0x38), 30);
    ck_assert_uint_eq(rd64(f, 0x40), 128);
    {
        uint8_t nl[6];
        file_read(f, 0x48, nl, sizeof(nl));
        ck_assert(memcmp(nl, "\0\n \r\n\0", 6) == 0);
    }
    ck_assert_uint_eq(rd32(f, 21 * 512), 22);      /* redundant GTs */
    ck_assert_uint_eq(rd32(f, 21 * 512 + 4), 26);
    ck_assert_uint_eq(rd32(f, 30 * 512), 31);      /* primary GTs */
    ck_assert_uint_eq(rd32(f, 30 * 512 + 4), 35);
    ck_assert_uint_eq(file_size(f), 65536);

    read_embedded_desc(f, desc, sizeof(desc));
    ck_assert(strncmp(desc, "# Disk DescriptorFile\nversion=1\nCID=", 36) == 0);
    ck_assert_ptr_nonnull(strstr(desc, "\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n"
                                       "# Extent description\nRW 131072 SPARSE \"s.vmdk\"\n\n"
                                       "# The Disk Data Base\n#DDB\n\n"
                                       "ddb.virtualHWVersion = \"4\"\n"
                                       "ddb.geometry.cylinders = \"130\"\n"
                                       "ddb.geometry.heads = \"16\"\n"
                                       "ddb.geometry.sectors = \"63\"\n"
                                       "ddb.adapterType = \"ide\"\n"
                                       "ddb.toolsVersion = \"2147483647\"\n"));
    ck_assert_int_eq(vmdk_desc_parse(desc, strlen(desc), true, &d, "s", &err), 0);
    ck_assert(d.has_cid);
    ck_assert_uint_ne(d.cid, 0xFFFFFFFF);
    vmdk_desc_free(&d);

    /* formats.md §5.1 (obs, 200 GiB): rgd=21, gd=25671, overhead=51328. */
    create_img(b, "size=200G");
    ck_assert_uint_eq(rd64(b, 0x30), 21);
    ck_assert_uint_eq(rd64(b, 0x38), 25671);
    ck_assert_uint_eq(rd64(b, 0x40), 51328);
    ck_assert_uint_eq(rd32(b, 25671 * 512), 25671 + 50);
}
END_TEST

START_TEST(vmdk_create_options)
{
    char desc[20 * 512 + 1], msg[1024], text[4096];
    const char *f = P("o.vmdk");
    BlockDriverState *bs;

    create_img(f, "size=1G,zeroed_grain=on");
    ck_assert_uint_eq(rd32(f, 4), 2);
    ck_assert_uint_eq(rd32(f, 8), 7);
    create_img(f, "size=1G,subformat=streamOptimized");
    ck_assert_uint_eq(rd32(f, 4), 3);
    ck_assert_uint_eq(rd32(f, 8), 0x30003);
    ck_assert_uint_eq(rd32(f, 0x4C) >> 8 & 0xFFFF, 1);   /* compressAlgorithm at 0x4D */
    create_img(f, "size=1G,compat6=on");
    read_embedded_desc(f, desc, sizeof(desc));
    ck_assert_ptr_nonnull(strstr(desc, "ddb.virtualHWVersion = \"6\""));
    create_img(f, "size=1G,adapter_type=lsilogic,hwversion=7,toolsversion=123");
    read_embedded_desc(f, desc, sizeof(desc));
    ck_assert_ptr_nonnull(strstr(desc, "ddb.virtualHWVersion = \"7\""));
    ck_assert_ptr_nonnull(strstr(desc, "ddb.geometry.cylinders = \"130\""));
    ck_assert_ptr_nonnull(strstr(desc, "ddb.geometry.heads = \"255\""));
    ck_assert_ptr_nonnull(strstr(desc, "ddb.adapterType = \"lsilogic\""));
    ck_assert_ptr_nonnull(strstr(desc, "ddb.toolsVersion = \"123\""));

    ck_assert_int_eq(create_ret(f, "size=1M,compat6=on,hwversion=7", msg, sizeof(msg)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "compat6 cannot be enabled with hwversion set"));
    ck_assert_int_eq(create_ret(f, "size=1M,subformat=monolithicFlat,zeroed_grain=on", msg,
                                sizeof(msg)), -EINVAL);
    ck_assert_int_eq(create_ret(f, "size=1M,adapter_type=scsi", msg, sizeof(msg)), -EINVAL);
    ck_assert_int_eq(create_ret(f, "size=1M,subformat=vmfs", msg, sizeof(msg)), -EINVAL);
    ck_assert_int_eq(create_ret(f, "size=1M,hwversion=a\"b", msg, sizeof(msg)), -EINVAL);

    /* Split and flat layouts: extent names and sizes as qemu-img makes them. */
    create_img(P("t.vmdk"), "size=5G,subformat=twoGbMaxExtentSparse");
    memset(text, 0, sizeof(text));
    file_read(P("t.vmdk"), 0, text, (size_t)MIN(file_size(P("t.vmdk")), sizeof(text) - 1));
    ck_assert_ptr_nonnull(strstr(text, "createType=\"twoGbMaxExtentSparse\"\n\n"
                                       "# Extent description\n"
                                       "RW 4194304 SPARSE \"t-s001.vmdk\"\n"
                                       "RW 4194304 SPARSE \"t-s002.vmdk\"\n"
                                       "RW 2097152 SPARSE \"t-s003.vmdk\"\n\n"));
    ck_assert_uint_eq(rd64(P("t-s002.vmdk"), 0x0C), 4194304);
    ck_assert_uint_eq(rd64(P("t-s003.vmdk"), 0x0C), 2097152);
    ck_assert_uint_eq(file_size(P("t-s001.vmdk")), 327680);
    create_img(P("g.img"), "size=3M,subformat=twoGbMaxExtentFlat");
    ck_assert_uint_eq(file_size(P("g-f001.img")), 3 * MiB);
    create_img(P("m"), "size=3M,subformat=monolithicFlat,preallocation=full");
    ck_assert_uint_eq(file_size(P("m-flat")), 3 * MiB);
    bs = open_img(P("t.vmdk"), 0);
    ck_assert_int_eq(bdrv_getlength(bs), 5 * (int64_t)GiB);
    bdrv_close(bs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* I/O                                                                 */

START_TEST(vmdk_write_fills_gt_and_redundant_gt)
{
    const char *f = P("w.vmdk");
    BlockDriverState *bs;
    uint8_t a[4096], b[4096];
    uint32_t cid0, cid1;

    create_img(f, "size=64M");
    bs = open_img(f, BDRV_O_RDWR);
    cid0 = image_cid(bs);
    fill(a, sizeof(a), 3);
    ck_assert_int_eq(bdrv_pwrite(bs, 3 * 64 * KiB + 512, a, sizeof(a)), 0);
    cid1 = image_cid(bs);
    ck_assert_uint_ne(cid0, cid1);                  /* renewed before the first change */
    ck_assert_int_eq(bdrv_pwrite(bs, 40 * MiB, a, sizeof(a)), 0);
    ck_assert_uint_eq(image_cid(bs), cid1);         /* ... and only once per open */
    bdrv_close(bs);

    /* Grain 3 -> the first free grain (sector 128), in the GT (31) and the RGT (22). */
    ck_assert_uint_eq(rd32(f, 31 * 512 + 3 * 4), 128);
    ck_assert_uint_eq(rd32(f, 22 * 512 + 3 * 4), 128);
    /* 40 MiB is grain 640: table 1, entry 128 -> sector 256. */
    ck_assert_uint_eq(rd32(f, 35 * 512 + 128 * 4), 256);
    ck_assert_uint_eq(rd32(f, 26 * 512 + 128 * 4), 256);
    file_read(f, 128 * 512 + 512, b, sizeof(b));
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    file_read(f, 128 * 512, b, 512);
    ck_assert(buffer_is_zero(b, 512));
    ck_assert_uint_eq(file_size(f), 256 * 512 + 64 * KiB);
    {
        char desc[20 * 512 + 1];
        char want[32];
        read_embedded_desc(f, desc, sizeof(desc));
        snprintf(want, sizeof(want), "\nCID=%" PRIx32 "\n", cid1);
        ck_assert_ptr_nonnull(strstr(desc, want));
    }
    bs = open_img(f, 0);
    ck_assert_uint_eq(image_cid(bs), cid1);
    ck_assert_int_eq(bdrv_pread(bs, 3 * 64 * KiB + 512, b, sizeof(b)), 0);
    ck_assert(memcmp(a, b, sizeof(a)) == 0);
    check_zero(bs, 0, 64 * KiB);
    bdrv_close(bs);
}
END_TEST

/*
 * Grains of 2 MiB: the old content around a small write (copied from the
 * parent) is more than one fill piece (1 MiB) on one side, so it is written
 * in pieces of its own, and less on the other, so it goes in the vectored
 * write with the data. Both must land where they belong.
 */
START_TEST(vmdk_large_grain_writes_copy_in_pieces)
{
    const char *base = P("lg-base.vmdk"), *top = P("lg-top.vmdk");
    const size_t len = 8 * MiB;
    uint8_t *want = malloc(len), *got = malloc(len);
    BlockDriverState *bs;

    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(got);
    create_img(base, "size=8M");
    bs = open_img(base, BDRV_O_RDWR);
    write_pattern(bs, 0, len, 21);
    bdrv_close(bs);
    fill(want, len, 21);

    create_img(top, "backing_file=lg-base.vmdk,backing_fmt=vmdk");
    ck_assert_uint_eq(rd64(top, 20), 128);
    wr64(top, 20, 4096);                               /* grainSize: 2 MiB */
    bs = open_img(top, BDRV_O_RDWR);
    write_pattern(bs, 1 * MiB + 512, 512, 22);         /* head 1 MiB + 512: apart */
    fill(want + 1 * MiB + 512, 512, 22);
    write_pattern(bs, 2 * MiB + 4096, 512, 23);        /* tail 2 MiB - 4608: apart */
    fill(want + 2 * MiB + 4096, 512, 23);
    bdrv_close(bs);

    bs = open_img(top, 0);
    ck_assert_int_eq(bdrv_pread(bs, 0, got, len), 0);
    ck_assert(memcmp(want, got, len) == 0);
    bdrv_close(bs);
    /* Two whole grains were allocated, nothing more. */
    bs = open_img(top, BDRV_O_NO_BACKING);
    ck_assert_int_eq(bdrv_pread(bs, 0, got, 4 * MiB), 0);
    ck_assert(memcmp(want, got, 4 * MiB) == 0);
    check_zero(bs, 4 * MiB, 4 * MiB);
    bdrv_close(bs);
    free(want);
    free(got);
}
END_TEST

START_TEST(vmdk_random_writes_match_mirror)
{
    static const char *const opts[] = {
        "size=24M", "size=24M,zeroed_grain=on", "size=24M,subformat=twoGbMaxExtentSparse",
        "size=24M,subformat=monolithicFlat",
    };

    for (size_t k = 0; k < ARRAY_SIZE(opts); k++) {
        const char *f = P("r.vmdk");
        const size_t size = 24 * MiB;
        uint8_t *mirror = calloc(1, size), *got = malloc(size), *buf = malloc(2 * MiB);
        BlockDriverState *bs;
        BdrvCheckResult r;
        BdrvError err = { 0 };
        uint32_t seed = 99 + (uint32_t)k;

        ck_assert_ptr_nonnull(mirror);
        ck_assert_ptr_nonnull(got);
        ck_assert_ptr_nonnull(buf);
        create_img(f, opts[k]);
        bs = open_img(f, BDRV_O_RDWR | BDRV_O_NO_FLUSH);
        random_writes(bs, mirror, buf, size, seed, 300, 4000, 6, 1);
        ck_assert_int_eq(bdrv_flush(bs), 0);
        bdrv_close(bs);
        bs = open_img(f, 0);
        ck_assert_int_eq(bdrv_pread(bs, 0, got, size), 0);
        ck_assert_msg(memcmp(got, mirror, size) == 0, "%s: content differs", opts[k]);
        ck_assert_int_eq(bdrv_check(bs, &r, 0, &err), 0);
        ck_assert_int_eq(r.corruptions, 0);
        bdrv_close(bs);
        free(mirror);
        free(got);
        free(buf);
    }
}
END_TEST

START_TEST(vmdk_zeroed_grains_and_status)
{
    const char *f = P("z.vmdk");
    BlockDriverState *bs, *file;
    uint64_t pnum, map;
    int ret;

    create_img(f, "size=8M,zeroed_grain=on");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 256 * KiB, 5);
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 64 * KiB, 128 * KiB), 0);   /* grains 1, 2 */
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 1 * MiB, 64 * KiB), 0);     /* unallocated */
    check_zero(bs, 64 * KiB, 128 * KiB);
    check_pattern(bs, 0, 64 * KiB, 5);
    ret = bdrv_block_status(bs, 64 * KiB, 8 * MiB - 64 * KiB, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED),
                     BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED);
    /* Sparse extents answer one grain at a time, as QEMU's driver does. */
    ck_assert_uint_eq(pnum, 64 * KiB);
    ret = bdrv_block_status(bs, 128 * KiB, 8 * MiB - 128 * KiB, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED),
                     BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED);
    ck_assert_uint_eq(pnum, 64 * KiB);
    ret = bdrv_block_status(bs, 192 * KiB, 64 * KiB, &pnum, &map, &file);
    ck_assert_int_eq(ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA), BDRV_BLOCK_DATA);
    ret = bdrv_block_status(bs, 0, 8 * MiB, &pnum, &map, &file);
    ck_assert(ret & BDRV_BLOCK_OFFSET_VALID);
    ck_assert_uint_eq(map, 128 * 512);
    ck_assert_ptr_eq(file, bs->file);
    ret = bdrv_block_status(bs, 4 * MiB, 4 * MiB, &pnum, &map, &file);
    ck_assert_int_eq(ret & ~BDRV_BLOCK_EOF, 0);     /* unallocated: the parent decides */
    ck_assert_uint_eq(pnum, 64 * KiB);
    ck_assert_int_eq(ret & BDRV_BLOCK_EOF, 0);      /* the end is one grain per answer away */
    ret = bdrv_block_status(bs, 8 * MiB - 64 * KiB, 64 * KiB, &pnum, &map, &file);
    ck_assert_int_eq(ret, BDRV_BLOCK_EOF);
    bdrv_close(bs);
    ck_assert_uint_eq(rd32(f, 27 * 512 + 4), 1);    /* GTE 1: zeroed grain (8 MiB: GT at 27) */
    ck_assert_uint_eq(rd32(f, 27 * 512 + 16 * 4), 0);
}
END_TEST

START_TEST(vmdk_backing_copy_on_write_and_cid)
{
    const char *base = P("base.vmdk"), *top = P("top.vmdk");
    BlockDriverState *bs;
    char desc[20 * 512 + 1], want[64];
    uint32_t base_cid;

    create_img(base, "size=4M");
    bs = open_img(base, BDRV_O_RDWR);
    write_pattern(bs, 0, 4 * MiB, 11);
    base_cid = image_cid(bs);
    bdrv_close(bs);

    create_img(top, "backing_file=base.vmdk,backing_fmt=vmdk");
    read_embedded_desc(top, desc, sizeof(desc));
    snprintf(want, sizeof(want), "\nparentCID=%" PRIx32 "\n", base_cid);
    ck_assert_ptr_nonnull(strstr(desc, want));
    ck_assert_ptr_nonnull(strstr(desc, "parentFileNameHint=\"base.vmdk\"\n# Extent"));

    bs = open_img(top, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_getlength(bs), 4 * MiB);
    ck_assert_str_eq(bs->backing_file, "base.vmdk");
    ck_assert_str_eq(bs->backing_format, "vmdk");
    /* A partial grain write copies the rest of the grain from the parent. */
    write_pattern(bs, 64 * KiB + 4096, 1024, 12);
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 1 * MiB, 512), 0);
    bdrv_close(bs);

    bs = open_img(top, BDRV_O_NO_BACKING);
    {
        uint8_t a[64 * KiB], b[64 * KiB];
        uint8_t p[4096];
        ck_assert_int_eq(bdrv_pread(bs, 64 * KiB, a, sizeof(a)), 0);
        fill(p, sizeof(p), 11);   /* (only used below through the full read) */
        (void)p;
        fill(b, sizeof(b), 0);
        bdrv_close(bs);
        bs = open_img(base, 0);
        ck_assert_int_eq(bdrv_pread(bs, 64 * KiB, b, sizeof(b)), 0);
        bdrv_close(bs);
        fill(p, 1024, 12);
        ck_assert(memcmp(a, b, 4096) == 0);
        ck_assert(memcmp(a + 4096, p, 1024) == 0);
        ck_assert(memcmp(a + 5120, b + 5120, sizeof(a) - 5120) == 0);
    }
    bs = open_img(top, 0);
    check_pattern(bs, 0, 64 * KiB, 11);
    check_zero(bs, 1 * MiB, 512);
    bdrv_close(bs);

    /* Changing the parent renews its CID: reads that reach it now fail with EINVAL. */
    bs = open_img(base, BDRV_O_RDWR);
    write_pattern(bs, 3 * MiB, 512, 13);
    bdrv_close(bs);
    bs = open_img(top, 0);
    {
        uint8_t a[512];
        ck_assert_int_eq(bdrv_pread(bs, 2 * MiB, a, sizeof(a)), -EINVAL);
        ck_assert_int_eq(bdrv_pread(bs, 64 * KiB + 4096, a, sizeof(a)), 0);   /* own data */
    }
    bdrv_close(bs);

    /* Creation refuses non-vmdk parents and flat images with parents. */
    {
        char msg[1024];
        int fd = open(P("raw.img"), O_WRONLY | O_CREAT, 0644);
        ck_assert_int_eq(ftruncate(fd, MiB), 0);
        close(fd);
        ck_assert_int_eq(create_ret(P("c.vmdk"), "backing_file=raw.img", msg, sizeof(msg)),
                         -EINVAL);
        ck_assert_ptr_nonnull(strstr(msg, "backing_file must be a vmdk image"));
        ck_assert_int_eq(create_ret(P("c.vmdk"), "backing_file=base.vmdk,backing_fmt=raw", msg,
                                    sizeof(msg)), -EINVAL);
        ck_assert_int_eq(create_ret(P("c.vmdk"), "backing_file=base.vmdk,"
                                    "subformat=monolithicFlat", msg, sizeof(msg)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(msg, "Flat image can't have backing file"));
    }
}
END_TEST

START_TEST(vmdk_descriptor_file_cid_rewrite_keeps_text)
{
    const char *f = P("d.vmdk");
    char text[2048];
    BlockDriverState *bs;
    uint8_t blk[512];
    uint32_t cid;

    memset(blk, 0x21, sizeof(blk));
    file_write(P("d-flat.vmdk"), 0, blk, sizeof(blk));
    ck_assert_int_eq(truncate(P("d-flat.vmdk"), 64 * KiB), 0);
    file_put(f, "# Disk DescriptorFile\r\nversion=1\r\nCID=12345678\r\nparentCID=ffffffff\r\n"
                "createType=\"monolithicFlat\"\r\n\r\nRW 128 FLAT \"d-flat.vmdk\" 0\r\n"
                "ddb.custom = \"kept\"\r\n");
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_uint_eq(image_cid(bs), 0x12345678);
    ck_assert_int_eq(bdrv_getlength(bs), 64 * KiB);
    ck_assert_int_eq(bdrv_pread(bs, 0, blk, sizeof(blk)), 0);
    ck_assert_uint_eq(blk[511], 0x21);
    ck_assert_int_eq(bdrv_pwrite(bs, 512, blk, sizeof(blk)), 0);
    cid = image_cid(bs);
    bdrv_close(bs);
    memset(text, 0, sizeof(text));
    file_read(f, 0, text, (size_t)file_size(f));
    {
        char want[512];
        snprintf(want, sizeof(want),
                 "# Disk DescriptorFile\r\nversion=1\r\nCID=%" PRIx32 "\r\nparentCID=ffffffff\r\n"
                 "createType=\"monolithicFlat\"\r\n\r\nRW 128 FLAT \"d-flat.vmdk\" 0\r\n"
                 "ddb.custom = \"kept\"\r\n", cid);
        ck_assert_str_eq(text, want);
    }
    /* ZERO and read-only extents: readable, not writable. */
    file_put(f, "version=1\nCID=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"d-flat.vmdk\" 0\n"
                "RW 2 ZERO\nRDONLY 1 FLAT \"d-flat.vmdk\" 1\n");
    bs = open_img(f, BDRV_O_RDWR);
    ck_assert_int_eq(bdrv_getlength(bs), 4 * 512);
    check_zero(bs, 512, 1024);
    ck_assert_int_eq(bdrv_pread(bs, 1536, blk, sizeof(blk)), 0);
    ck_assert_uint_eq(blk[0], 0x21);
    ck_assert_int_eq(bdrv_pwrite(bs, 512, blk, sizeof(blk)), -EROFS);
    ck_assert_int_eq(bdrv_pwrite(bs, 1536, blk, sizeof(blk)), -EROFS);
    bdrv_close(bs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* streamOptimized                                                     */

START_TEST(vmdk_stream_front_to_back)
{
    const char *f = P("so.vmdk"), *g = P("so-end.vmdk");
    BlockDriverState *bs;
    uint8_t *img = calloc(1, 2 * MiB), *got = malloc(2 * MiB);
    uint64_t len;

    ck_assert_ptr_nonnull(img);
    ck_assert_ptr_nonnull(got);
    create_img(f, "size=2M,subformat=streamOptimized");
    ck_assert_int_eq(try_open(f, BDRV_O_RDWR, (char[64]){ 0 }, 64), 0);
    bs = open_img(f, BDRV_O_RDWR);
    fill(img, 128 * KiB, 21);                        /* grains 0, 1: whole */
    ck_assert_int_eq(bdrv_pwrite(bs, 0, img, 128 * KiB), 0);
    fill(img + 200 * KiB, 4 * KiB, 22);               /* grain 3, in two pieces */
    ck_assert_int_eq(bdrv_pwrite(bs, 200 * KiB, img + 200 * KiB, 2 * KiB), 0);
    ck_assert_int_eq(bdrv_pread(bs, 192 * KiB, got, 64 * KiB), 0);   /* pending: readable */
    ck_assert(memcmp(got, img + 192 * KiB, 10 * KiB) == 0);
    ck_assert(buffer_is_zero(got + 10 * KiB, 54 * KiB));
    ck_assert_int_eq(bdrv_pwrite(bs, 202 * KiB, img + 202 * KiB, 2 * KiB), 0);
    /* An all-zero grain is not stored. */
    ck_assert_int_eq(bdrv_pwrite(bs, 1 * MiB, img + 1 * MiB, 64 * KiB), 0);
    fill(img + 2 * MiB - 64 * KiB, 64 * KiB, 23);
    ck_assert_int_eq(bdrv_pwrite(bs, 2 * MiB - 64 * KiB, img + 2 * MiB - 64 * KiB, 64 * KiB), 0);
    /* A stored grain cannot be written again (QEMU: EINVAL). */
    ck_assert_int_eq(bdrv_pwrite(bs, 0, img, 64 * KiB), -EINVAL);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    bdrv_close(bs);

    ck_assert_uint_eq(rd32(f, 27 * 512 + 0), 128);   /* GT at 27: sector-packed grains */
    ck_assert_uint_ne(rd32(f, 27 * 512 + 4), 0);
    ck_assert_uint_eq(rd32(f, 27 * 512 + 2 * 4), 0);
    ck_assert_uint_eq(rd32(f, 27 * 512 + 16 * 4), 0);
    ck_assert_uint_eq(rd32(f, 22 * 512 + 4 * 3), rd32(f, 27 * 512 + 4 * 3));   /* RGT too */
    /* A grain marker: its LBA, its size, a zlib header. */
    ck_assert_uint_eq(rd64(f, 128 * 512), 0);
    ck_assert_uint_gt(rd32(f, 128 * 512 + 8), 0);
    {
        uint8_t z[2];
        file_read(f, 128 * 512 + 12, z, 2);
        ck_assert_uint_eq(z[0], 0x78);
        ck_assert_uint_eq(rd64(f, (uint64_t)rd32(f, 27 * 512 + 3 * 4) * 512), 3 * 128);
    }
    bs = open_img(f, 0);
    ck_assert_int_eq(bdrv_pread(bs, 0, got, 2 * MiB), 0);
    ck_assert(memcmp(got, img, 2 * MiB) == 0);
    bdrv_close(bs);

    /*
     * The VMware layout with the directory at the end: header says GD_AT_END,
     * and the last three sectors are a footer marker, the footer (a header
     * with the real gdOffset) and an end-of-stream marker.
     */
    copy_file(f, g);
    len = ROUND_UP(file_size(g), 512);
    {
        uint8_t tail[1536], hdr[512];
        memset(tail, 0, sizeof(tail));
        file_read(g, 0, hdr, sizeof(hdr));
        le32_store(tail + 12, VMDK_MARKER_FOOTER);
        memcpy(tail + 512, hdr, 512);
        le32_store(tail + 1024 + 12, VMDK_MARKER_EOS);
        file_write(g, len, tail, sizeof(tail));
        wr64(g, 0x38, UINT64_MAX);
    }
    bs = open_img(g, 0);
    ck_assert_int_eq(bdrv_pread(bs, 0, got, 2 * MiB), 0);
    ck_assert(memcmp(got, img, 2 * MiB) == 0);
    bdrv_close(bs);
    /* A damaged footer marker is refused. */
    wr32(g, len + 12, 7);
    {
        char msg[1024];
        ck_assert_int_eq(try_open(g, 0, msg, sizeof(msg)), -EBADIMAGE);
        ck_assert_ptr_nonnull(strstr(msg, "Invalid footer"));
    }
    free(img);
    free(got);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Check, COWD, hostile                                                */

START_TEST(vmdk_check_finds_grains_past_eof)
{
    const char *f = P("c.vmdk");
    BlockDriverState *bs;
    BdrvCheckResult r;
    BdrvError err = { 0 };

    create_img(f, "size=8M");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 64 * KiB, 1);
    ck_assert_int_eq(bdrv_check(bs, &r, 0, &err), 0);
    ck_assert_int_eq(r.corruptions, 0);
    ck_assert_int_eq(bdrv_check(bs, &r, BDRV_FIX_ERRORS, &err), -ENOTSUP);
    bdrv_close(bs);
    wr32(f, 27 * 512 + 5 * 4, 0x100000);       /* 8 MiB: the GT is at sector 27 */
    bs = open_img(f, 0);
    ck_assert_int_eq(bdrv_check(bs, &r, 0, &err), -EINVAL);
    ck_assert_int_eq(r.corruptions, 1);
    ck_assert_ptr_nonnull(strstr(err.msg, "cluster offset for sector 640 points after EOF"));
    bdrv_close(bs);
}
END_TEST

START_TEST(vmdk_cowd_extent_reads)
{
    /* An ESX sparse extent: header, GD at sector 4 (1 entry), GT at 5..36, grain at 64. */
    const char *f = P("e-delta.vmdk"), *d = P("e.vmdk");
    uint8_t hdr[2048], a[4096];
    BlockDriverState *bs;

    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, "COWD", 4);
    le32_store(hdr + 4, 1);
    le32_store(hdr + 8, 3);
    le32_store(hdr + 12, 8192);           /* 4 MiB */
    le32_store(hdr + 16, 16);             /* 8 KiB grains */
    le32_store(hdr + 20, 4);
    le32_store(hdr + 24, 1);
    file_write(f, 0, hdr, sizeof(hdr));
    wr32(f, 4 * 512, 5);
    wr32(f, 5 * 512 + 3 * 4, 64);         /* grain 3 (24 KiB) at sector 64 */
    fill(a, sizeof(a), 31);
    file_write(f, 64 * 512, a, sizeof(a));
    ck_assert_int_eq(truncate(f, 64 * 512 + 8192), 0);
    file_put(d, "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
                "createType=\"vmfsSparse\"\nRW 8192 VMFSSPARSE \"e-delta.vmdk\"\n");
    bs = open_img(d, 0);
    ck_assert_int_eq(bdrv_getlength(bs), 4 * MiB);
    check_pattern(bs, 24 * KiB, sizeof(a), 31);
    check_zero(bs, 24 * KiB + 4096, 4096);
    check_zero(bs, 0, 24 * KiB);
    bdrv_close(bs);
    /* The COWD file alone opens too; writes are not supported. */
    bs = open_img(f, BDRV_O_RDWR);
    check_pattern(bs, 24 * KiB, sizeof(a), 31);
    ck_assert_int_eq(bdrv_pwrite(bs, 0, a, 512), -ENOTSUP);
    bdrv_close(bs);
    /* A directory too small for the capacity is refused. */
    wr32(f, 12, 8192 * 1024);
    ck_assert_int_eq(try_open(f, 0, (char[256]){ 0 }, 256), -EBADIMAGE);
}
END_TEST

typedef struct {
    uint32_t off;
    int width;
    uint64_t value;
    int want;
    const char *msg;
} Patch;

START_TEST(vmdk_hostile_headers_refused)
{
    static const Patch patches[] = {
        { 0x04, 4, 4, -ENOTSUP, "Unsupported VMDK version 4" },
        { 0x2C, 4, 1024, -EBADIMAGE, "L2 table size too big" },
        { 0x2C, 4, 0, -EBADIMAGE, "L1 entry size is invalid" },
        { 0x14, 8, 0, -EBADIMAGE, "L1 entry size is invalid" },
        { 0x14, 8, 0x400000, -EBADIMAGE, "Invalid granularity" },
        { 0x14, 8, UINT64_MAX, -EBADIMAGE, "L1 entry size" },
        { 0x0C, 8, 1ull << 62, -EBADIMAGE, "L1 size too big" },
        { 0x40, 8, 1ull << 20, -EBADIMAGE, "File truncated, expecting at least 536870912" },
        { 0x40, 8, UINT64_MAX, -EBADIMAGE, "File truncated" },
        { 0x38, 8, 1ull << 40, -EBADIMAGE, "grain directory" },
        { 0x38, 8, UINT64_MAX, -EBADIMAGE, "Invalid footer" },
        { 0x38, 8, 0x7FFFFFFFFFFFFFFFull, -EBADIMAGE, "grain directory" },
        { 0x0C, 8, 1ull << 41, -EBADIMAGE, "grain directory" },
        { 0x04, 4, 3, -ENOTSUP, "must be read only" },
    };
    const char *f = P("h.vmdk"), *g = P("hp.vmdk");
    char msg[1024];
    BlockDriverState *bs;

    create_img(f, "size=64M");
    bs = open_img(f, BDRV_O_RDWR);
    write_pattern(bs, 0, 200 * KiB, 4);
    bdrv_close(bs);
    for (size_t i = 0; i < ARRAY_SIZE(patches); i++) {
        const Patch *p = &patches[i];
        int ret;
        copy_file(f, g);
        if (p->width == 4) {
            wr32(g, p->off, (uint32_t)p->value);
        } else {
            wr64(g, p->off, p->value);
        }
        ret = try_open(g, BDRV_O_RDWR, msg, sizeof(msg));
        ck_assert_msg(ret == p->want, "patch %zu (0x%x): %d, wanted %d (%s)", i, p->off, ret,
                      p->want, msg);
        ck_assert_msg(strstr(msg, p->msg) && strstr(msg, "hp.vmdk"),
                      "patch %zu: message '%s' lacks '%s' or the image name", i, msg, p->msg);
    }
    /* Version 3 without compression opens read-only, as in QEMU. */
    copy_file(f, g);
    wr32(g, 4, 3);
    ck_assert_int_eq(try_open(g, 0, msg, sizeof(msg)), 0);
    /* A grain table past the end of the file: reads through it fail, no crash. */
    copy_file(f, g);
    wr32(g, 30 * 512, 0x7FFFFFFF);
    bs = open_img(g, 0);
    {
        uint8_t a[512];
        ck_assert_int_eq(bdrv_pread(bs, 0, a, sizeof(a)), -EBADIMAGE);
    }
    bdrv_close(bs);
    /* Compressed grains that are not deflate streams. */
    copy_file(f, g);
    file_write(g, 0x4D, "\1\0", 2);
    bs = open_img(g, 0);
    {
        uint8_t a[512];
        ck_assert_int_eq(bdrv_pread(bs, 0, a, sizeof(a)), -EBADIMAGE);
    }
    bdrv_close(bs);
    /* Short files. */
    copy_file(f, g);
    ck_assert_int_eq(truncate(g, 100), 0);
    ck_assert_int_lt(try_open(g, 0, msg, sizeof(msg)), 0);
}
END_TEST

START_TEST(vmdk_hostile_descriptors_refused)
{
    const char *f = P("x.vmdk");
    char msg[1024];
    char *big;

    ck_assert_int_eq(truncate(P("x-flat.vmdk"), 0) == 0 || errno == ENOENT, 1);
    file_put(P("x-flat.vmdk"), "");
    ck_assert_int_eq(truncate(P("x-flat.vmdk"), 8192), 0);

    file_put(f, "version=1\nCID=1\ncreateType=\"fullDevice\"\nRW 16 FLAT \"x-flat.vmdk\" 0\n");
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -ENOTSUP);
    ck_assert_ptr_nonnull(strstr(msg, "Unsupported image type 'fullDevice'"));
    file_put(f, "version=1\nCID=1\nRW 16 FLAT \"x-flat.vmdk\" 0\n");
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
    file_put(f, "version=1\ncreateType=\"monolithicFlat\"\n");
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "no extents"));
    file_put(f, "version=1\ncreateType=\"monolithicFlat\"\nRW 16 FLAT \"\" 0\n");
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
    ck_assert_ptr_nonnull(strstr(msg, "Invalid extent line"));
    file_put(f, "version=1\ncreateType=\"monolithicFlat\"\nRW 16 FLAT \"missing.vmdk\" 0\n");
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(msg, "missing.vmdk"));
    file_put(f, "version=1\ncreateType=\"monolithicFlat\"\nRW 16 SESPARSE \"x-flat.vmdk\"\n");
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -ENOTSUP);
    file_put(f, "version=1\ncreateType=\"monolithicFlat\"\nRW 16 SPARSE \"x-flat.vmdk\"\n");
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);   /* not a sparse file */
    file_put(f, "version=1\ncreateType=\"monolithicFlat\"\n"
                "RW 9223372036854775807 FLAT \"x-flat.vmdk\" 0\n");
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
    file_put(f, "version=1\ncreateType=\"monolithicFlat\"\n"
                "RW 18014398509481983 FLAT \"x-flat.vmdk\" 0\nRW 18014398509481983 ZERO\n");
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
    /* More than 1 MiB is not a descriptor. */
    big = malloc(2 * MiB);
    ck_assert_ptr_nonnull(big);
    memset(big, '#', 2 * MiB - 1);
    big[2 * MiB - 1] = '\0';
    file_put(f, big);
    free(big);
    ck_assert_int_eq(try_open(f, 0, msg, sizeof(msg)), -EBADIMAGE);
    /* Random bytes forced as vmdk. */
    {
        uint8_t junk[4096];
        fill(junk, sizeof(junk), 77);
        junk[0] = 'x';
        file_write(P("junk.vmdk"), 0, junk, sizeof(junk));
        ck_assert_int_lt(try_open(P("junk.vmdk"), 0, msg, sizeof(msg)), 0);
    }
}
END_TEST

static Suite *vmdk_suite(void)
{
    Suite *s = suite_create("vmdk");
    TCase *tc;

    tc = tcase_create("descriptor");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, vmdk_desc_parse_variants);
    tcase_add_test(tc, vmdk_probe_follows_qemu_rules);
    tcase_add_test(tc, vmdk_extent_paths_resolve_as_qemu);
    tcase_add_test(tc, vmdk_extent_paths_follow_the_policy);
    suite_add_tcase(s, tc);

    tc = tcase_create("create");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, vmdk_create_sparse_layout_matches_qemu);
    tcase_add_test(tc, vmdk_create_options);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, vmdk_write_fills_gt_and_redundant_gt);
    tcase_add_test(tc, vmdk_large_grain_writes_copy_in_pieces);
    tcase_add_test(tc, vmdk_random_writes_match_mirror);
    tcase_add_test(tc, vmdk_zeroed_grains_and_status);
    tcase_add_test(tc, vmdk_backing_copy_on_write_and_cid);
    tcase_add_test(tc, vmdk_descriptor_file_cid_rewrite_keeps_text);
    tcase_add_test(tc, vmdk_stream_front_to_back);
    suite_add_tcase(s, tc);

    tc = tcase_create("check");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, vmdk_check_finds_grains_past_eof);
    tcase_add_test(tc, vmdk_cowd_extent_reads);
    tcase_add_test(tc, vmdk_hostile_headers_refused);
    tcase_add_test(tc, vmdk_hostile_descriptors_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(vmdk_suite());
}
