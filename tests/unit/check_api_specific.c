/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* check_api_specific.c: qb_info_image_specific_get per format, checked against the headers' bytes. */

#include "qbtest.h"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Creates @name in the scratch folder as @fmt with qemu-img -o style @opts; its path in @path. */
static void create_img(QBroker *b, char *path, size_t size, const char *name,
                       enum QBlockFmtType fmt, const char *opts)
{
    QBlockState *qbs = NULL;
    QBlockFmtInfo *fi = NULL;
    QBlockProtInfo loc;
    int ret;

    qbt_path(path, size, name);
    loc = qbt_loc(path);
    ck_assert_int_eq(qb_fmt_info_new(b, &fi), 0);
    fi->fmt_type = fmt;
    ck_assert_msg(qb_fmt_info_set_options(b, fi, opts) == 0, "options '%s': %s", opts,
                  qbt_msg(b));
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ret = qb_create(b, qbs, &loc, fi, 0);
    ck_assert_msg(ret == 0, "qb_create %s: %d %s", path, ret, qbt_msg(b));
    qb_state_delete(b, &qbs);
    qb_fmt_info_delete(b, &fi);
}

/* Opens @path (format @fmt, QB_FMT_NONE probes) and returns its specific facts. */
static QBlockSpecificInfo *get_specific(QBroker *b, QBlockState **qbs, const char *path,
                                        enum QBlockFmtType fmt, int flag)
{
    QBlockProtInfo loc = qbt_loc(path);
    QBlockFmtInfo fi;
    QBlockSpecificInfo *si = NULL;
    int ret;

    memset(&fi, 0, sizeof(fi));
    fi.fmt_type = fmt;
    ck_assert_int_eq(qb_state_new(b, qbs), 0);
    ret = qb_open(b, *qbs, &loc, &fi, flag | LIBQBLOCK_O_NO_BACKING);
    ck_assert_msg(ret == 0, "qb_open %s: %d %s", path, ret, qbt_msg(b));
    ret = qb_info_image_specific_get(b, *qbs, &si);
    ck_assert_msg(ret == 0, "qb_info_image_specific_get %s: %d %s", path, ret, qbt_msg(b));
    ck_assert_ptr_nonnull(si);
    ck_assert_int_eq(si->fmt_type, fmt == QB_FMT_NONE ? si->fmt_type : fmt);
    return si;
}

static void put_specific(QBroker *b, QBlockState **qbs, QBlockSpecificInfo **si)
{
    qb_info_image_specific_delete(b, si);
    ck_assert_ptr_null(*si);
    qbt_close(b, qbs);
}

START_TEST(specific_argument_errors)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL, *closed = NULL;
    QBlockSpecificInfo *si = (QBlockSpecificInfo *)&si;   /* not NULL: failures must reset it */
    char path[PATH_MAX];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(path, sizeof(path), "args.raw");
    qbt_create_raw(b, path, 1 << 20);
    qbs = qbt_open(b, path, 0, 0);
    ck_assert_int_eq(qb_state_new(b, &closed), 0);

    EXPECT_FAIL(NULL, qb_info_image_specific_get(NULL, qbs, &si), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(b, qb_info_image_specific_get(b, NULL, &si), QB_ERR_INVALID_PARAM,
                "qb_info_image_specific_get");
    ck_assert_ptr_null(si);
    si = (QBlockSpecificInfo *)&si;
    EXPECT_FAIL(b, qb_info_image_specific_get(b, closed, &si), QB_ERR_INVALID_PARAM, "not open");
    ck_assert_ptr_null(si);
    EXPECT_FAIL(b, qb_info_image_specific_get(b, qbs, NULL), QB_ERR_INVALID_PARAM,
                "qb_info_image_specific_get");
    /* raw has no format-specific facts. */
    si = (QBlockSpecificInfo *)&si;
    EXPECT_FAIL(b, qb_info_image_specific_get(b, qbs, &si), QB_ERR_NOT_SUPPORTED, "raw");
    ck_assert_ptr_null(si);
    /* Deleting nothing is harmless. */
    qb_info_image_specific_delete(b, NULL);
    qb_info_image_specific_delete(b, &si);
    qb_info_image_specific_delete(NULL, &si);
    qbt_close(b, &qbs);
    qb_state_delete(b, &closed);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(specific_qcow2_features_follow_the_header)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockSpecificInfo *si;
    char path[PATH_MAX];
    uint8_t hdr[104];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    create_img(b, path, sizeof(path), "v3.qcow2", QB_FMT_QCOW2,
               "size=16M,lazy_refcounts=on,refcount_bits=8,extended_l2=on,cluster_size=128k");
    qbt_pread_file(path, hdr, sizeof(hdr), 0);
    si = get_specific(b, &qbs, path, QB_FMT_NONE, 0);
    ck_assert_int_eq(si->fmt_type, QB_FMT_QCOW2);
    ck_assert_int_eq(si->u.qcow2.version, (int)be32(hdr + 4));
    ck_assert_int_eq(si->u.qcow2.version, 3);
    ck_assert(si->u.qcow2.lazy_refcounts);
    ck_assert(si->u.qcow2.lazy_refcounts == ((hdr[87] & 1) != 0));
    ck_assert_uint_eq(si->u.qcow2.refcount_bits, 1u << be32(hdr + 96));
    ck_assert_uint_eq(si->u.qcow2.refcount_bits, 8);
    ck_assert(si->u.qcow2.extended_l2);
    ck_assert(!si->u.qcow2.corrupt);
    ck_assert_int_eq(si->u.qcow2.compression_type, QBO_FMT_QCOW2_COMPRESSION_ZLIB);
    ck_assert_ptr_null(si->u.qcow2.data_file);
    ck_assert_uint_eq(si->u.qcow2.nb_bitmaps, 0);
    ck_assert_ptr_null(si->u.qcow2.bitmaps);
    put_specific(b, &qbs, &si);

    /* The corrupt bit set behind the library's back shows on the next open. */
    hdr[79] |= 2;
    qbt_pwrite_file(path, hdr + 79, 1, 79);
    si = get_specific(b, &qbs, path, QB_FMT_QCOW2, 0);
    ck_assert(si->u.qcow2.corrupt);
    put_specific(b, &qbs, &si);

    create_img(b, path, sizeof(path), "v2.qcow2", QB_FMT_QCOW2, "size=1M,compat=0.10");
    qbt_pread_file(path, hdr, 8, 0);
    si = get_specific(b, &qbs, path, QB_FMT_QCOW2, 0);
    ck_assert_int_eq(si->u.qcow2.version, (int)be32(hdr + 4));
    ck_assert_int_eq(si->u.qcow2.version, 2);
    ck_assert(!si->u.qcow2.lazy_refcounts && !si->u.qcow2.extended_l2);
    ck_assert_uint_eq(si->u.qcow2.refcount_bits, 16);
    put_specific(b, &qbs, &si);
    qb_broker_delete(&b);
}
END_TEST

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

/*
 * Gives the qcow2 image at @path a bitmaps extension (in place of its other
 * header extensions) whose directory holds one entry named "bm" with
 * @name_size, granularity 2^@gran_bits and @flags, written with plain
 * pwrite as the qcow2 specification lays it out (with the valid sizes,
 * qemu-img 7.2 lists that bitmap just as libqblock does).
 */
static void add_bitmap_dir(const char *path, uint16_t name_size, uint8_t gran_bits,
                           uint32_t flags)
{
    uint8_t hdr[104], ext[40], entry[32], byte;
    uint64_t dir = ((uint64_t)qbt_file_size(path) + 65535) / 65536 * 65536;

    qbt_pread_file(path, hdr, sizeof(hdr), 0);
    memset(ext, 0, sizeof(ext));
    put_be(ext, 0x23852875, 4);            /* bitmaps extension, 24 bytes */
    put_be(ext + 4, 24, 4);
    put_be(ext + 8, 1, 4);                 /* one bitmap */
    put_be(ext + 16, sizeof(entry), 8);    /* directory size */
    put_be(ext + 24, dir, 8);              /* directory offset */
    qbt_pwrite_file(path, ext, sizeof(ext), be32(hdr + 100));  /* then the end marker */
    byte = hdr[95] | 1;                    /* autoclear bit 0: the bitmaps are consistent */
    qbt_pwrite_file(path, &byte, 1, 95);
    memset(entry, 0, sizeof(entry));
    /* A one-entry bitmap table (1 MiB at 64 KiB a bit) in a zeroed cluster after it. */
    put_be(entry, dir + 65536, 8);
    put_be(entry + 8, 1, 4);
    put_be(entry + 12, flags, 4);
    entry[16] = 1;                         /* a dirty tracking bitmap */
    entry[17] = gran_bits;
    put_be(entry + 18, name_size, 2);
    memcpy(entry + 24, "bm", 2);
    qbt_pwrite_file(path, entry, sizeof(entry), (off_t)dir);
    byte = 0;
    qbt_pwrite_file(path, &byte, 1, (off_t)dir + 2 * 65536 - 1);
}

START_TEST(specific_qcow2_bitmap_directory)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockSpecificInfo *si;
    char path[PATH_MAX];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    create_img(b, path, sizeof(path), "bitmaps.qcow2", QB_FMT_QCOW2, "size=1M");
    add_bitmap_dir(path, 2, 16, QB_QCOW2_BITMAP_AUTO | QB_QCOW2_BITMAP_IN_USE);
    si = get_specific(b, &qbs, path, QB_FMT_QCOW2, 0);
    ck_assert_uint_eq(si->u.qcow2.nb_bitmaps, 1);
    ck_assert_str_eq(si->u.qcow2.bitmaps[0].name, "bm");
    ck_assert_uint_eq(si->u.qcow2.bitmaps[0].granularity, 65536);
    ck_assert_uint_eq(si->u.qcow2.bitmaps[0].flags, QB_QCOW2_BITMAP_AUTO | QB_QCOW2_BITMAP_IN_USE);
    put_specific(b, &qbs, &si);

    /* An entry whose name runs past the directory, or with an impossible granularity. */
    for (int i = 0; i < 2; i++) {
        QBlockProtInfo loc = qbt_loc(path);
        QBlockFmtInfo fi;

        create_img(b, path, sizeof(path), "bad-bitmaps.qcow2", QB_FMT_QCOW2, "size=1M");
        add_bitmap_dir(path, i == 0 ? 100 : 2, i == 0 ? 16 : 63, 0);
        memset(&fi, 0, sizeof(fi));
        fi.fmt_type = QB_FMT_QCOW2;
        ck_assert_int_eq(qb_state_new(b, &qbs), 0);
        ck_assert_msg(qb_open(b, qbs, &loc, &fi, 0) == 0, "open: %s", qbt_msg(b));
        si = (QBlockSpecificInfo *)&si;
        EXPECT_FAIL(b, qb_info_image_specific_get(b, qbs, &si), QB_ERR_INVALID_IMAGE,
                    "bitmap directory");
        ck_assert_ptr_null(si);
        qbt_close(b, &qbs);
    }
    qb_broker_delete(&b);
}
END_TEST

/* The value of "key=" in the descriptor text inside @path's first 64 KiB (hex or decimal). */
static uint32_t desc_value(const char *path, const char *key)
{
    static char buf[65536 + 1];
    size_t n = (size_t)MIN(qbt_file_size(path), (off_t)65536);
    const char *p = NULL;

    qbt_pread_file(path, buf, n, 0);
    buf[n] = '\0';
    for (size_t i = 0; i < n && !p; i++) {
        /* The descriptor sits after binary headers: search past NUL bytes. */
        if (strncmp(buf + i, key, strlen(key)) == 0 && (i == 0 || buf[i - 1] == '\n')) {
            p = buf + i + strlen(key);
        }
    }
    ck_assert_msg(p != NULL, "%s: no '%s' in the descriptor", path, key);
    return (uint32_t)strtoul(p, NULL, 16);
}

START_TEST(specific_vmdk_extents_follow_the_descriptor)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockSpecificInfo *si;
    char path[PATH_MAX], base[PATH_MAX], want[PATH_MAX + 16];
    uint32_t base_cid;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    create_img(b, base, sizeof(base), "sparse.vmdk", QB_FMT_VMDK, "size=8M");
    si = get_specific(b, &qbs, base, QB_FMT_NONE, 0);
    ck_assert_int_eq(si->fmt_type, QB_FMT_VMDK);
    ck_assert_str_eq(si->u.vmdk.create_type, "monolithicSparse");
    base_cid = desc_value(base, "CID=");
    ck_assert_uint_eq(si->u.vmdk.cid, base_cid);
    ck_assert_uint_eq(si->u.vmdk.parent_cid, 0xffffffffu);
    ck_assert_uint_eq(si->u.vmdk.nb_extents, 1);
    ck_assert_str_eq(si->u.vmdk.extents[0].filename, base);
    ck_assert_str_eq(si->u.vmdk.extents[0].format, "");
    ck_assert_uint_eq(si->u.vmdk.extents[0].virt_size, 8 << 20);
    ck_assert_uint_eq(si->u.vmdk.extents[0].cluster_size, 65536);
    ck_assert(!si->u.vmdk.extents[0].compressed);
    put_specific(b, &qbs, &si);

    create_img(b, path, sizeof(path), "stream.vmdk", QB_FMT_VMDK,
               "size=4M,subformat=streamOptimized");
    si = get_specific(b, &qbs, path, QB_FMT_VMDK, 0);
    ck_assert_str_eq(si->u.vmdk.create_type, "streamOptimized");
    ck_assert(si->u.vmdk.extents[0].compressed);
    put_specific(b, &qbs, &si);

    create_img(b, path, sizeof(path), "split.vmdk", QB_FMT_VMDK,
               "size=3G,subformat=twoGbMaxExtentFlat");
    si = get_specific(b, &qbs, path, QB_FMT_VMDK, 0);
    ck_assert_str_eq(si->u.vmdk.create_type, "twoGbMaxExtentFlat");
    ck_assert_uint_eq(si->u.vmdk.cid, desc_value(path, "CID="));
    ck_assert_uint_eq(si->u.vmdk.nb_extents, 2);
    for (int i = 0; i < 2; i++) {
        snprintf(want, sizeof(want), "%.*s-f00%d.vmdk", (int)strlen(path) - 5, path, i + 1);
        ck_assert_str_eq(si->u.vmdk.extents[i].filename, want);
        ck_assert_str_eq(si->u.vmdk.extents[i].format, "FLAT");
        ck_assert_uint_eq(si->u.vmdk.extents[i].cluster_size, 0);
        ck_assert_uint_eq(si->u.vmdk.extents[i].virt_size, (uint64_t)qbt_file_size(want));
    }
    ck_assert_uint_eq(si->u.vmdk.extents[0].virt_size, 2ull << 30);
    ck_assert_uint_eq(si->u.vmdk.extents[1].virt_size, 1ull << 30);
    put_specific(b, &qbs, &si);

    /* A child records its parent's CID. */
    snprintf(want, sizeof(want), "backing_file=%s", base);
    create_img(b, path, sizeof(path), "child.vmdk", QB_FMT_VMDK, want);
    si = get_specific(b, &qbs, path, QB_FMT_VMDK, 0);
    ck_assert_uint_eq(si->u.vmdk.parent_cid, base_cid);
    ck_assert_uint_eq(si->u.vmdk.parent_cid, desc_value(path, "parentCID="));
    put_specific(b, &qbs, &si);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(specific_qed_header_and_need_check)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockSpecificInfo *si;
    char path[PATH_MAX], base[PATH_MAX], opts[PATH_MAX + 128];
    uint8_t hdr[64];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    qbt_path(base, sizeof(base), "qed-base.raw");
    qbt_create_raw(b, base, 1 << 20);
    snprintf(opts, sizeof(opts), "size=1G,cluster_size=128k,table_size=8,backing_file=%s,"
             "backing_fmt=raw", base);
    create_img(b, path, sizeof(path), "t8.qed", QB_FMT_QED, opts);
    qbt_pread_file(path, hdr, sizeof(hdr), 0);
    si = get_specific(b, &qbs, path, QB_FMT_NONE, 0);
    ck_assert_int_eq(si->fmt_type, QB_FMT_QED);
    ck_assert_uint_eq(si->u.qed.cluster_size, le32(hdr + 4));
    ck_assert_uint_eq(si->u.qed.cluster_size, 128 << 10);
    ck_assert_uint_eq(si->u.qed.table_size, le32(hdr + 8));
    ck_assert_uint_eq(si->u.qed.table_size, 8);
    ck_assert_uint_eq(si->u.qed.features, le32(hdr + 16));
    ck_assert(!si->u.qed.need_check);
    ck_assert_str_eq(si->u.qed.backing_file, base);
    ck_assert_str_eq(si->u.qed.backing_fmt, "raw");
    put_specific(b, &qbs, &si);

    /* Mark it as needing a check (feature bit 1) as a crashed writer leaves it. */
    hdr[16] |= 2;
    qbt_pwrite_file(path, hdr + 16, 1, 16);
    si = get_specific(b, &qbs, path, QB_FMT_QED, 0);
    ck_assert(si->u.qed.need_check);
    put_specific(b, &qbs, &si);

    create_img(b, path, sizeof(path), "plain.qed", QB_FMT_QED, "size=1M");
    si = get_specific(b, &qbs, path, QB_FMT_QED, 0);
    ck_assert_ptr_null(si->u.qed.backing_file);
    ck_assert_ptr_null(si->u.qed.backing_fmt);
    ck_assert_uint_eq(si->u.qed.cluster_size, 64 << 10);
    put_specific(b, &qbs, &si);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(specific_qcow_and_cow_headers)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockSpecificInfo *si;
    char path[PATH_MAX], base[PATH_MAX], opts[PATH_MAX + 64];
    uint8_t hdr[48];
    struct stat st;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    create_img(b, path, sizeof(path), "v1.qcow", QB_FMT_QCOW, "size=100M");
    qbt_pread_file(path, hdr, sizeof(hdr), 0);
    si = get_specific(b, &qbs, path, QB_FMT_NONE, 0);
    ck_assert_int_eq(si->fmt_type, QB_FMT_QCOW);
    ck_assert_uint_eq(si->u.qcow.version, be32(hdr + 4));
    ck_assert_uint_eq(si->u.qcow.cluster_bits, hdr[32]);
    ck_assert_uint_eq(si->u.qcow.l2_bits, hdr[33]);
    ck_assert_uint_eq(si->u.qcow.crypt_method, be32(hdr + 36));
    ck_assert_uint_eq(si->u.qcow.crypt_method, QB_QCOW_CRYPT_NONE);
    ck_assert_uint_eq(si->u.qcow.mtime, be32(hdr + 20));
    put_specific(b, &qbs, &si);

    qbt_path(base, sizeof(base), "cow-base.raw");
    qbt_create_raw(b, base, 3 << 20);
    ck_assert_int_eq(stat(base, &st), 0);
    snprintf(opts, sizeof(opts), "backing_file=%s", base);
    create_img(b, path, sizeof(path), "uml.cow", QB_FMT_COW, opts);
    qbt_pread_file(path, hdr, 16, 0);
    si = get_specific(b, &qbs, path, QB_FMT_NONE, 0);
    ck_assert_int_eq(si->fmt_type, QB_FMT_COW);
    ck_assert_uint_eq(si->u.cow.version, be32(hdr + 4));
    ck_assert_uint_eq(si->u.cow.mtime, be32(hdr + 8));
    ck_assert_uint_eq(si->u.cow.mtime, (uint32_t)st.st_mtime);
    ck_assert_uint_eq(si->u.cow.sector_size, 512);
    ck_assert_str_eq(si->u.cow.backing_file, base);
    put_specific(b, &qbs, &si);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(specific_vdi_blocks_and_uuids)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockSpecificInfo *si;
    char path[PATH_MAX];
    uint8_t hdr[512], byte = 0x5a;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    create_img(b, path, sizeof(path), "static.vdi", QB_FMT_VDI, "size=4M,static=on");
    qbt_pread_file(path, hdr, sizeof(hdr), 0);
    si = get_specific(b, &qbs, path, QB_FMT_NONE, 0);
    ck_assert_int_eq(si->fmt_type, QB_FMT_VDI);
    ck_assert_uint_eq(si->u.vdi.image_type, QB_VDI_TYPE_STATIC);
    ck_assert_uint_eq(si->u.vdi.image_type, le32(hdr + 0x4c));
    ck_assert_uint_eq(si->u.vdi.version, le32(hdr + 0x44));
    ck_assert_uint_eq(si->u.vdi.block_size, le32(hdr + 0x178));
    ck_assert_uint_eq(si->u.vdi.blocks_total, 4);
    ck_assert_uint_eq(si->u.vdi.blocks_allocated, 4);
    ck_assert_mem_eq(si->u.vdi.uuid_image, hdr + 0x188, 16);
    ck_assert_mem_eq(si->u.vdi.uuid_last_snap, hdr + 0x198, 16);
    ck_assert_mem_eq(si->u.vdi.uuid_link, hdr + 0x1a8, 16);
    ck_assert_mem_eq(si->u.vdi.uuid_parent, hdr + 0x1b8, 16);
    put_specific(b, &qbs, &si);

    /* A dynamic image counts the blocks written since, read while it is open. */
    create_img(b, path, sizeof(path), "dynamic.vdi", QB_FMT_VDI, "size=4M");
    si = get_specific(b, &qbs, path, QB_FMT_VDI, LIBQBLOCK_O_RDWR);
    ck_assert_uint_eq(si->u.vdi.image_type, QB_VDI_TYPE_DYNAMIC);
    ck_assert_uint_eq(si->u.vdi.blocks_allocated, 0);
    qb_info_image_specific_delete(b, &si);
    ck_assert_int_eq(qb_write(b, qbs, &byte, 1, 3 << 20), 1);
    ck_assert_int_eq(qb_info_image_specific_get(b, qbs, &si), 0);
    ck_assert_uint_eq(si->u.vdi.blocks_allocated, 1);
    put_specific(b, &qbs, &si);
    qbt_pread_file(path, hdr, sizeof(hdr), 0);
    ck_assert_uint_eq(le32(hdr + 0x184), 1);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(specific_vpc_footer)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockSpecificInfo *si;
    QBlockStaticInfo *st = NULL;
    char path[PATH_MAX];
    uint8_t ft[512];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    create_img(b, path, sizeof(path), "fixed.vpc", QB_FMT_VPC, "size=10M,subformat=fixed");
    qbt_pread_file(path, ft, sizeof(ft), qbt_file_size(path) - 512);
    si = get_specific(b, &qbs, path, QB_FMT_VPC, 0);
    ck_assert_uint_eq(si->u.vpc.disk_type, QB_VPC_TYPE_FIXED);
    ck_assert_uint_eq(si->u.vpc.disk_type, be32(ft + 60));
    ck_assert_mem_eq(si->u.vpc.creator_app, ft + 28, 4);
    ck_assert_str_eq(si->u.vpc.creator_app, "qemu");
    ck_assert_mem_eq(si->u.vpc.creator_os, ft + 36, 4);
    ck_assert_uint_eq(si->u.vpc.creator_version, be32(ft + 32));
    ck_assert_uint_eq(si->u.vpc.cylinders, (unsigned)ft[56] << 8 | ft[57]);
    ck_assert_uint_eq(si->u.vpc.heads, ft[58]);
    ck_assert_uint_eq(si->u.vpc.sectors_per_track, ft[59]);
    ck_assert_uint_eq(si->u.vpc.block_size, 0);
    ck_assert(!si->u.vpc.size_from_footer);
    /* Without force_size the virtual size is the geometry's. */
    ck_assert_int_eq(qb_info_image_static_get(b, qbs, &st), 0);
    ck_assert_uint_eq(st->virt_size, (uint64_t)si->u.vpc.cylinders * si->u.vpc.heads *
                                     si->u.vpc.sectors_per_track * 512);
    qb_info_image_static_delete(b, &st);
    put_specific(b, &qbs, &si);

    create_img(b, path, sizeof(path), "force.vpc", QB_FMT_VPC, "size=10M,force_size=on");
    si = get_specific(b, &qbs, path, QB_FMT_NONE, 0);
    ck_assert_int_eq(si->fmt_type, QB_FMT_VPC);
    ck_assert_uint_eq(si->u.vpc.disk_type, QB_VPC_TYPE_DYNAMIC);
    ck_assert_str_eq(si->u.vpc.creator_app, "qem2");
    ck_assert(si->u.vpc.size_from_footer);
    ck_assert_uint_eq(si->u.vpc.current_size, 10 << 20);
    ck_assert_uint_eq(si->u.vpc.block_size, 2 << 20);
    put_specific(b, &qbs, &si);
    qb_broker_delete(&b);
}
END_TEST

static Suite *specific_suite(void)
{
    Suite *s = suite_create("api_specific");
    TCase *tc = tcase_create("specific");

    tcase_add_test(tc, specific_argument_errors);
    tcase_add_test(tc, specific_qcow2_features_follow_the_header);
    tcase_add_test(tc, specific_qcow2_bitmap_directory);
    tcase_add_test(tc, specific_vmdk_extents_follow_the_descriptor);
    tcase_add_test(tc, specific_qed_header_and_need_check);
    tcase_add_test(tc, specific_qcow_and_cow_headers);
    tcase_add_test(tc, specific_vdi_blocks_and_uuids);
    tcase_add_test(tc, specific_vpc_footer);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(specific_suite(), argv[0]);
}
