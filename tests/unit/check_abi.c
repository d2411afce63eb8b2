/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_abi.c: the public ABI of libqblock 1 on x86_64 — struct sizes and
 * member offsets, enum values and every flag and error constant of api.md.
 *
 * The expected numbers are written out by hand from the layout rules of the
 * x86_64 System V ABI (8-byte alignment for uint64_t and pointers, 4 bytes for
 * enums and int, 1 for bool), never computed from the header itself: a change
 * to the header that moves a member or changes a size must fail here.
 */
#include "qbtest.h"

#include <stddef.h>

/* ---- struct sizes ---- */

START_TEST(abi_sizeof_prot_info_is_520)
{
    /*
     * enum prot_type (4) + 4 bytes of padding to align the union to 8
     * + the union, whose largest member is reserved[512 / 8] = 512 bytes.
     */
    ck_assert_uint_eq(sizeof(QBlockProtInfo), 520);
    ck_assert_uint_eq(sizeof(((QBlockProtInfo *)0)->prot_op), 512);
    ck_assert_uint_eq(sizeof(struct QBlockProtOptionFile), 8);
    ck_assert_uint_eq(_Alignof(QBlockProtInfo), 8);
}
END_TEST

START_TEST(abi_sizeof_fmt_info_is_1032)
{
    /*
     * enum fmt_type (4) + 4 padding + the union of 1024 bytes: reserved[1024 / 8].
     * The largest real member (qcow2 and qed, 552 bytes each, see below)
     * fits inside it, so the union is exactly the reserved array.
     */
    ck_assert_uint_eq(sizeof(QBlockFmtInfo), 1032);
    ck_assert_uint_eq(sizeof(((QBlockFmtInfo *)0)->fmt_op), 1024);
}
END_TEST

START_TEST(abi_sizeof_fmt_options_fit_reserved_union)
{
    /*
     * Option structs may grow by appending members (api.md), as long as each
     * still fits the union's 1024 reserved bytes; what may never change is
     * the offset of a member once released (abi_offsetof_fmt_option_members).
     * The sizes as of 1.0, for reference: cow 528, qed 552, qcow 536,
     * qcow2 568, raw 16, rbd 16, sheepdog 536, vdi 24, vmdk 536, vpc 16.
     */
    const size_t room = sizeof(((QBlockFmtInfo *)0)->fmt_op.reserved);

    ck_assert_uint_eq(room, 1024);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionCow), room);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionQed), room);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionQcow), room);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionQcow2), room);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionRaw), room);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionRbd), room);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionSheepdog), room);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionVdi), room);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionVmdk), room);
    ck_assert_uint_le(sizeof(struct QBlockFmtOptionVpc), room);
    /* Every member begins with virt_size and holds at least it. */
    ck_assert_uint_ge(sizeof(struct QBlockFmtOptionRaw), 8 + 4);
    ck_assert_uint_ge(sizeof(struct QBlockFmtOptionQcow2), 552);
}
END_TEST

START_TEST(abi_sizeof_open_policy_is_128)
{
    /* flags 4 | max_chain_depth 4 | two limits 16 | allowed_dirs 8 | reserved[12] 96. */
    ck_assert_uint_eq(sizeof(QBlockOpenPolicy), 128);
    ck_assert_uint_eq(offsetof(QBlockOpenPolicy, max_metadata_size), 8);
    ck_assert_uint_eq(offsetof(QBlockOpenPolicy, allowed_dirs), 24);
    ck_assert_uint_eq(offsetof(QBlockOpenPolicy, reserved), 32);
}
END_TEST

START_TEST(abi_sizeof_static_info_is_1584)
{
    /*
     * loc 520 | fmt_type 4 + 4 padding | virt_size 8 | backing_loc 520
     * | backing_fmt 4 | encrypt 1 + 3 padding | sector_size 4 + 4 padding
     * = 1072, then cluster_size 8 + reserved[63] 504 = 512 bytes, exactly
     * the reserved[64] of the original layout: 1072 + 512 = 1584.
     */
    ck_assert_uint_eq(sizeof(QBlockStaticInfo), 1584);
}
END_TEST

START_TEST(abi_sizeof_status_info_is_128)
{
    /* length 8 + flags 4 + depth 4 + host_offset 8 + reserved[13] 104 = 128. */
    ck_assert_uint_eq(sizeof(QBlockStatusInfo), 128);
}
END_TEST

START_TEST(abi_sizeof_check_result_is_192)
{
    /*
     * Five ints 20 + 4 padding | image_end_offset 8 | four uint64_t 32
     * | reserved[16] 128 = 192.
     */
    ck_assert_uint_eq(sizeof(QBlockCheckResult), 192);
    ck_assert_uint_eq(offsetof(QBlockCheckResult, image_end_offset), 24);
    ck_assert_uint_eq(offsetof(QBlockCheckResult, compressed_clusters), 56);
    ck_assert_uint_eq(offsetof(QBlockCheckResult, reserved), 64);
    ck_assert_int_eq(QB_CHECK_FIX_LEAKS, 1);
    ck_assert_int_eq(QB_CHECK_FIX_ERRORS, 2);
}
END_TEST

START_TEST(abi_sizeof_measure_info_is_128)
{
    /* required, fully_allocated, bitmaps 24 | has_bitmaps 1 + 7 padding | reserved[12] 96. */
    ck_assert_uint_eq(sizeof(QBlockMeasureInfo), 128);
    ck_assert_uint_eq(offsetof(QBlockMeasureInfo, has_bitmaps), 24);
    ck_assert_uint_eq(offsetof(QBlockMeasureInfo, reserved), 32);
}
END_TEST

START_TEST(abi_sizeof_specific_info_is_1032)
{
    /* fmt_type 4 + 4 padding | union of 1024 bytes (reserved[128]) = 1032. */
    const size_t room = sizeof(((QBlockSpecificInfo *)0)->u.reserved);

    ck_assert_uint_eq(sizeof(QBlockSpecificInfo), 1032);
    ck_assert_uint_eq(sizeof(((QBlockSpecificInfo *)0)->u), 1024);
    ck_assert_uint_eq(offsetof(QBlockSpecificInfo, u), 8);
    ck_assert_uint_eq(room, 1024);
    ck_assert_uint_le(sizeof(struct QBlockSpecificQcow2), room);
    ck_assert_uint_le(sizeof(struct QBlockSpecificVmdk), room);
    ck_assert_uint_le(sizeof(struct QBlockSpecificQed), room);
    ck_assert_uint_le(sizeof(struct QBlockSpecificQcow), room);
    ck_assert_uint_le(sizeof(struct QBlockSpecificCow), room);
    ck_assert_uint_le(sizeof(struct QBlockSpecificVdi), room);
    ck_assert_uint_le(sizeof(struct QBlockSpecificVpc), room);
    /* The member structs' layouts are ABI too (x86-64 / LP64 sizes). */
    ck_assert_uint_eq(sizeof(struct QBlockSpecificQcow2Bitmap), 24);
    ck_assert_uint_eq(sizeof(struct QBlockSpecificQcow2), 40);
    ck_assert_uint_eq(sizeof(struct QBlockSpecificVmdkExtent), 40);
    ck_assert_uint_eq(sizeof(struct QBlockSpecificVmdk), 32);
    ck_assert_uint_eq(sizeof(struct QBlockSpecificQed), 40);
    ck_assert_uint_eq(sizeof(struct QBlockSpecificQcow), 20);
    ck_assert_uint_eq(sizeof(struct QBlockSpecificCow), 32);
    ck_assert_uint_eq(sizeof(struct QBlockSpecificVdi), 84);
    ck_assert_uint_eq(sizeof(struct QBlockSpecificVpc), 48);
    ck_assert_int_eq(QB_QCOW2_BITMAP_IN_USE, 1);
    ck_assert_int_eq(QB_QCOW2_BITMAP_AUTO, 2);
    ck_assert_int_eq(QB_VDI_TYPE_DYNAMIC, 1);
    ck_assert_int_eq(QB_VDI_TYPE_STATIC, 2);
    ck_assert_int_eq(QB_VPC_TYPE_FIXED, 2);
    ck_assert_int_eq(QB_VPC_TYPE_DYNAMIC, 3);
    ck_assert_int_eq(QB_VPC_TYPE_DIFFERENCING, 4);
}
END_TEST

START_TEST(abi_sizeof_snapshot_info_is_256)
{
    /*
     * id 8 | name 8 | vm_state_size 8 | virt_size 8 | date_sec 8
     * | date_nsec 4 + 4 padding | vm_clock_nsec 8 | icount 8 | reserved[24] 192 = 256.
     */
    ck_assert_uint_eq(sizeof(QBlockSnapshotInfo), 256);
    ck_assert_uint_eq(offsetof(QBlockSnapshotInfo, name), 8);
    ck_assert_uint_eq(offsetof(QBlockSnapshotInfo, date_sec), 32);
    ck_assert_uint_eq(offsetof(QBlockSnapshotInfo, date_nsec), 40);
    ck_assert_uint_eq(offsetof(QBlockSnapshotInfo, vm_clock_nsec), 48);
    ck_assert_uint_eq(offsetof(QBlockSnapshotInfo, icount), 56);
    ck_assert_uint_eq(offsetof(QBlockSnapshotInfo, reserved), 64);
    ck_assert_uint_eq(QB_SNAPSHOT_NO_ICOUNT, UINT64_MAX);
}
END_TEST

/* ---- member offsets ---- */

START_TEST(abi_offsetof_prot_info_members)
{
    ck_assert_uint_eq(offsetof(QBlockProtInfo, prot_type), 0);
    ck_assert_uint_eq(offsetof(QBlockProtInfo, prot_op), 8);
    ck_assert_uint_eq(offsetof(QBlockProtInfo, prot_op.o_file), 8);
    ck_assert_uint_eq(offsetof(QBlockProtInfo, prot_op.o_file.filename), 8);
    ck_assert_uint_eq(offsetof(QBlockProtInfo, prot_op.reserved), 8);
    ck_assert_uint_eq(offsetof(QBlockProtInfo, prot_op.o_nbd), 8);
    ck_assert_uint_eq(offsetof(QBlockProtInfo, prot_op.o_rbd), 8);
}
END_TEST

/* The NBD location (appended in 1.0) fits the union's reserved space with room to grow. */
START_TEST(abi_nbd_location_layout)
{
    ck_assert_uint_eq(sizeof(struct QBlockProtOptionNBD), 112);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionNBD, host), 0);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionNBD, port), 8);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionNBD, socket_path), 16);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionNBD, export_name), 24);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionNBD, port_number), 32);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionNBD, timeout_ms), 36);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionNBD, tls), 40);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionNBD, reserved32), 44);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionNBD, reserved), 48);
}
END_TEST

/* The RBD location (appended in 1.0) fits the union's reserved space with room to grow. */
START_TEST(abi_rbd_location_layout)
{
    ck_assert_uint_eq(QB_PROT_RBD, 3);
    ck_assert_uint_eq(sizeof(struct QBlockProtOptionRBD), 104);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionRBD, pool), 0);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionRBD, image), 8);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionRBD, snapshot), 16);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionRBD, user), 24);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionRBD, conf), 32);
    ck_assert_uint_eq(offsetof(struct QBlockProtOptionRBD, reserved), 40);
    ck_assert_uint_le(sizeof(struct QBlockProtOptionRBD),
                      sizeof(((QBlockProtInfo *)0)->prot_op.reserved));
}
END_TEST

START_TEST(abi_offsetof_fmt_info_union_members)
{
    /* Every union member starts at the union, right after fmt_type and its padding. */
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_type), 0);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_cow), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_qed), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_qcow), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_qcow2), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_raw), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_rbd), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_sheepdog), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_vdi), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_vmdk), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.o_vpc), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtInfo, fmt_op.reserved), 8);
}
END_TEST

START_TEST(abi_offsetof_fmt_option_members)
{
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionCow, virt_size), 0);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionCow, backing_loc), 8);

    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQed, virt_size), 0);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQed, backing_loc), 8);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQed, backing_fmt), 528);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQed, cluster_size), 536);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQed, table_size), 544);

    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow, backing_loc), 8);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow, encrypt), 528);
    /* Appended in 1.0: after encrypt (1) and 3 bytes of padding. */
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow, backing_fmt), 532);

    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, virt_size), 0);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, backing_loc), 8);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, backing_fmt), 528);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, encrypt), 532);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, cluster_size), 536);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, cpt_lv), 544);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, pre_mode), 548);
    /* Appended in 1.0: refcount_bits 8, the two bools, 2 padding, compression_type 4. */
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, refcount_bits), 552);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, lazy_refcounts), 560);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, extended_l2), 561);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionQcow2, compression_type), 564);

    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionRaw, virt_size), 0);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionRaw, pre_mode), 8);

    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionRbd, cluster_size), 8);

    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionSheepdog, backing_loc), 8);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionSheepdog, pre_mode), 528);

    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionVdi, cluster_size), 8);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionVdi, pre_mode), 16);

    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionVmdk, backing_loc), 8);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionVmdk, cpt_lv), 528);
    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionVmdk, subfmt), 532);

    ck_assert_uint_eq(offsetof(struct QBlockFmtOptionVpc, subfmt), 8);
}
END_TEST

START_TEST(abi_offsetof_static_info_members)
{
    ck_assert_uint_eq(offsetof(QBlockStaticInfo, loc), 0);
    ck_assert_uint_eq(offsetof(QBlockStaticInfo, fmt_type), 520);
    ck_assert_uint_eq(offsetof(QBlockStaticInfo, virt_size), 528);
    ck_assert_uint_eq(offsetof(QBlockStaticInfo, backing_loc), 536);
    ck_assert_uint_eq(offsetof(QBlockStaticInfo, backing_fmt), 1056);
    ck_assert_uint_eq(offsetof(QBlockStaticInfo, encrypt), 1060);
    ck_assert_uint_eq(offsetof(QBlockStaticInfo, sector_size), 1064);
    ck_assert_uint_eq(offsetof(QBlockStaticInfo, cluster_size), 1072);
    ck_assert_uint_eq(offsetof(QBlockStaticInfo, reserved), 1080);
}
END_TEST

START_TEST(abi_offsetof_status_info_members)
{
    ck_assert_uint_eq(offsetof(QBlockStatusInfo, length), 0);
    ck_assert_uint_eq(offsetof(QBlockStatusInfo, flags), 8);
    ck_assert_uint_eq(offsetof(QBlockStatusInfo, depth), 12);
    ck_assert_uint_eq(offsetof(QBlockStatusInfo, host_offset), 16);
    ck_assert_uint_eq(offsetof(QBlockStatusInfo, reserved), 24);
}
END_TEST

/* ---- enum values ---- */

START_TEST(abi_enum_prot_type_values)
{
    ck_assert_int_eq(QB_PROT_NONE, 0);
    ck_assert_int_eq(QB_PROT_FILE, 1);
    ck_assert_int_eq(QB_PROT_NBD, 2);
    ck_assert_int_eq(QB_PROT_RBD, 3);
    ck_assert_int_eq(QB_PROT_MAX, 4);
    ck_assert_uint_eq(sizeof(enum QBlockProtType), 4);
}
END_TEST

START_TEST(abi_enum_fmt_type_values)
{
    ck_assert_int_eq(QB_FMT_NONE, 0);
    ck_assert_int_eq(QB_FMT_COW, 1);
    ck_assert_int_eq(QB_FMT_QED, 2);
    ck_assert_int_eq(QB_FMT_QCOW, 3);
    ck_assert_int_eq(QB_FMT_QCOW2, 4);
    ck_assert_int_eq(QB_FMT_RAW, 5);
    ck_assert_int_eq(QB_FMT_RBD, 6);
    ck_assert_int_eq(QB_FMT_SHEEPDOG, 7);
    ck_assert_int_eq(QB_FMT_VDI, 8);
    ck_assert_int_eq(QB_FMT_VMDK, 9);
    ck_assert_int_eq(QB_FMT_VPC, 10);
    ck_assert_int_eq(QB_FMT_MAX, 11);
    ck_assert_uint_eq(sizeof(enum QBlockFmtType), 4);
}
END_TEST

START_TEST(abi_enum_fmt_option_values)
{
    ck_assert_int_eq(QBO_FMT_QCOW2_CPT_NONE, 0);
    ck_assert_int_eq(QBO_FMT_QCOW2_CPT_V010, 1);
    ck_assert_int_eq(QBO_FMT_QCOW2_CPT_V110, 2);

    ck_assert_int_eq(QBO_FMT_QCOW2_PREALLOC_NONE, 0);
    ck_assert_int_eq(QBO_FMT_QCOW2_PREALLOC_OFF, 1);
    ck_assert_int_eq(QBO_FMT_QCOW2_PREALLOC_METADATA, 2);
    ck_assert_int_eq(QBO_FMT_QCOW2_PREALLOC_FALLOC, 3);
    ck_assert_int_eq(QBO_FMT_QCOW2_PREALLOC_FULL, 4);

    ck_assert_int_eq(QBO_FMT_QCOW2_COMPRESSION_NONE, 0);
    ck_assert_int_eq(QBO_FMT_QCOW2_COMPRESSION_ZLIB, 1);
    ck_assert_int_eq(QBO_FMT_QCOW2_COMPRESSION_ZSTD, 2);

    ck_assert_int_eq(QBO_FMT_SD_PREALLOC_NONE, 0);
    ck_assert_int_eq(QBO_FMT_SD_PREALLOC_OFF, 1);
    ck_assert_int_eq(QBO_FMT_SD_PREALLOC_FULL, 2);

    ck_assert_int_eq(QBO_FMT_VDI_PREALLOC_NONE, 0);
    ck_assert_int_eq(QBO_FMT_VDI_PREALLOC_FALSE, 1);
    ck_assert_int_eq(QBO_FMT_VDI_PREALLOC_TRUE, 2);

    ck_assert_int_eq(QBO_FMT_VMDK_CPT_NONE, 0);
    ck_assert_int_eq(QBO_FMT_VMDK_CPT_VMDKV6_FALSE, 1);
    ck_assert_int_eq(QBO_FMT_VMDK_CPT_VMDKV6_TRUE, 2);

    ck_assert_int_eq(QBO_FMT_VMDK_SUBFMT_MONOLITHIC_NONE, 0);
    ck_assert_int_eq(QBO_FMT_VMDK_SUBFMT_MONOLITHIC_SPARSE, 1);
    ck_assert_int_eq(QBO_FMT_VMDK_SUBFMT_MONOLITHIC_FLAT, 2);
    ck_assert_int_eq(QBO_FMT_VMDK_SUBFMT_TWOGBMAX_EXTENT_SPARSE, 3);
    ck_assert_int_eq(QBO_FMT_VMDK_SUBFMT_TWOGBMAX_EXTENT_FLAT, 4);
    ck_assert_int_eq(QBO_FMT_VMDK_SUBFMT_STREAM_OPTIMIZED, 5);

    ck_assert_int_eq(QBO_FMT_VPC_SUBFMT_NONE, 0);
    ck_assert_int_eq(QBO_FMT_VPC_SUBFMT_DYNAMIC, 1);
    ck_assert_int_eq(QBO_FMT_VPC_SUBFMT_FIXED, 2);

    ck_assert_int_eq(QBO_FMT_RAW_PREALLOC_NONE, 0);
    ck_assert_int_eq(QBO_FMT_RAW_PREALLOC_OFF, 1);
    ck_assert_int_eq(QBO_FMT_RAW_PREALLOC_FALLOC, 2);
    ck_assert_int_eq(QBO_FMT_RAW_PREALLOC_FULL, 3);
}
END_TEST

/* ---- flags ---- */

START_TEST(abi_flags_open_values)
{
    ck_assert_int_eq(LIBQBLOCK_O_RDWR, 0x0002);
    ck_assert_int_eq(LIBQBLOCK_O_SNAPSHOT, 0x0008);
    ck_assert_int_eq(LIBQBLOCK_O_NOCACHE, 0x0020);
    ck_assert_int_eq(LIBQBLOCK_O_CACHE_WB, 0x0040);
    ck_assert_int_eq(LIBQBLOCK_O_NATIVE_AIO, 0x0080);
    ck_assert_int_eq(LIBQBLOCK_O_NO_BACKING, 0x0100);
    ck_assert_int_eq(LIBQBLOCK_O_NO_FLUSH, 0x0200);
}
END_TEST

START_TEST(abi_flags_valid_mask_is_or_of_flags)
{
    static const int flags[] = {
        LIBQBLOCK_O_RDWR, LIBQBLOCK_O_SNAPSHOT, LIBQBLOCK_O_NOCACHE, LIBQBLOCK_O_CACHE_WB,
        LIBQBLOCK_O_NATIVE_AIO, LIBQBLOCK_O_NO_BACKING, LIBQBLOCK_O_NO_FLUSH,
    };
    int all = 0;

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        /* Each flag is one bit, distinct from the others. */
        ck_assert_int_eq(flags[i] & (flags[i] - 1), 0);
        ck_assert_int_eq(all & flags[i], 0);
        all |= flags[i];
    }
    ck_assert_int_eq(all, 0x03ea);
    ck_assert_int_eq(LIBQBLOCK_O_VALID_MASK, all);
}
END_TEST

START_TEST(abi_flags_added_after_contract)
{
    /* The v1.0 contract's mask keeps its value; newer flags join ALL_FLAGS only. */
    ck_assert_int_eq(LIBQBLOCK_O_FORCE_SHARE, 0x0400);
    ck_assert_int_eq(LIBQBLOCK_O_FORCE_SHARE & LIBQBLOCK_O_VALID_MASK, 0);
    ck_assert_int_eq(LIBQBLOCK_O_ALL_FLAGS, 0x07ea);
    ck_assert_int_eq(LIBQBLOCK_O_ALL_FLAGS, LIBQBLOCK_O_VALID_MASK | LIBQBLOCK_O_FORCE_SHARE);
}
END_TEST

START_TEST(abi_block_status_flag_values)
{
    ck_assert_int_eq(QB_BLOCK_DATA, 0x01);
    ck_assert_int_eq(QB_BLOCK_ZERO, 0x02);
    ck_assert_int_eq(QB_BLOCK_ALLOCATED, 0x04);
    ck_assert_int_eq(QB_BLOCK_OFFSET_VALID, 0x08);
}
END_TEST

/* ---- error codes ---- */

START_TEST(abi_errors_values)
{
    ck_assert_int_eq(QB_ERR_MEM_ERR, -1);
    ck_assert_int_eq(QB_ERR_INTERNAL_ERR, -2);
    ck_assert_int_eq(QB_ERR_INVALID_PARAM, -100);
    ck_assert_int_eq(QB_ERR_BLOCK_OUT_OF_RANGE, -101);
    ck_assert_int_eq(QB_ERR_NOT_SUPPORTED, -102);
    ck_assert_int_eq(QB_ERR_INVALID_IMAGE, -103);
    ck_assert_int_eq(QB_ERR_READ_ONLY, -104);
    ck_assert_int_eq(QB_ERR_LOCKED, -105);
    ck_assert_int_eq(QB_ERR_IO, -109);
    ck_assert_int_eq(QB_ERR_TIMEOUT, -110);
}
END_TEST

/* ---- function signatures: a changed prototype fails to compile here ---- */

START_TEST(abi_sizeof_fmt_caps_is_128)
{
    /* flags 8 | prealloc_modes 4 | reserved32 4 | reserved[14] 112 = 128. */
    ck_assert_uint_eq(sizeof(QBlockFmtCaps), 128);
    ck_assert_uint_eq(offsetof(QBlockFmtCaps, flags), 0);
    ck_assert_uint_eq(offsetof(QBlockFmtCaps, prealloc_modes), 8);
    ck_assert_uint_eq(offsetof(QBlockFmtCaps, reserved), 16);
}
END_TEST

START_TEST(abi_sizeof_option_desc_is_104)
{
    /* name 8 | type 4 | flags 4 | def 8 | help 8 | choices 8 | reserved[8] 64 = 104. */
    ck_assert_uint_eq(sizeof(QBlockOptionDesc), 104);
    ck_assert_uint_eq(offsetof(QBlockOptionDesc, name), 0);
    ck_assert_uint_eq(offsetof(QBlockOptionDesc, type), 8);
    ck_assert_uint_eq(offsetof(QBlockOptionDesc, flags), 12);
    ck_assert_uint_eq(offsetof(QBlockOptionDesc, def), 16);
    ck_assert_uint_eq(offsetof(QBlockOptionDesc, help), 24);
    ck_assert_uint_eq(offsetof(QBlockOptionDesc, choices), 32);
    ck_assert_uint_eq(offsetof(QBlockOptionDesc, reserved), 40);
}
END_TEST

START_TEST(abi_sizeof_convert_params_is_200)
{
    /*
     * sources 8 | nb_sources 4 | num_requests 4 | target 8 | target_loc 8 |
     * target_fmt 8 | target_flags 4 | flags 4 | sparse_size 8 | progress 8 |
     * progress_opaque 8 | reserved[16] 128 = 200.
     */
    ck_assert_uint_eq(sizeof(QBlockConvertParams), 200);
    ck_assert_uint_eq(offsetof(QBlockConvertParams, nb_sources), 8);
    ck_assert_uint_eq(offsetof(QBlockConvertParams, num_requests), 12);
    ck_assert_uint_eq(offsetof(QBlockConvertParams, target), 16);
    ck_assert_uint_eq(offsetof(QBlockConvertParams, target_fmt), 32);
    ck_assert_uint_eq(offsetof(QBlockConvertParams, target_flags), 40);
    ck_assert_uint_eq(offsetof(QBlockConvertParams, flags), 44);
    ck_assert_uint_eq(offsetof(QBlockConvertParams, sparse_size), 48);
    ck_assert_uint_eq(offsetof(QBlockConvertParams, progress), 56);
    ck_assert_uint_eq(offsetof(QBlockConvertParams, reserved), 72);
    ck_assert_uint_eq(QB_CONVERT_COMPRESSED, 1);
    ck_assert_uint_eq(QB_CONVERT_TARGET_IS_ZERO, 2);
    ck_assert_uint_eq(QB_CONVERT_OUT_OF_ORDER, 4);
    ck_assert_uint_eq(QB_CONVERT_BACKING_SHARED, 8);
    ck_assert_uint_eq(QB_CONVERT_DEFAULT_REQUESTS, 8);
    ck_assert_uint_eq(QB_CONVERT_MAX_REQUESTS, 16);
}
END_TEST

START_TEST(abi_sizeof_compare_result_is_80)
{
    /* mismatch 4 | size_differs 1 + 3 padding | offset 8 | reserved[8] 64 = 80. */
    ck_assert_uint_eq(sizeof(QBlockCompareResult), 80);
    ck_assert_uint_eq(offsetof(QBlockCompareResult, size_differs), 4);
    ck_assert_uint_eq(offsetof(QBlockCompareResult, offset), 8);
    ck_assert_uint_eq(offsetof(QBlockCompareResult, reserved), 16);
    ck_assert_int_eq(QB_COMPARE_STRICT, 1);
    ck_assert_int_eq(QB_COMPARE_SAME, 0);
    ck_assert_int_eq(QB_COMPARE_CONTENT, 1);
    ck_assert_int_eq(QB_COMPARE_STATUS, 2);
    ck_assert_int_eq(QB_COMPARE_SIZE, 3);
}
END_TEST

START_TEST(abi_caps_and_option_values)
{
    ck_assert_uint_eq(QB_CAP_OPEN, 1);
    ck_assert_uint_eq(QB_CAP_CREATE, 2);
    ck_assert_uint_eq(QB_CAP_WRITE, 4);
    ck_assert_uint_eq(QB_CAP_BACKING, 8);
    ck_assert_uint_eq(QB_CAP_RESIZE_GROW, 0x10);
    ck_assert_uint_eq(QB_CAP_RESIZE_SHRINK, 0x20);
    ck_assert_uint_eq(QB_CAP_DISCARD, 0x40);
    ck_assert_uint_eq(QB_CAP_COMPRESSED_READ, 0x80);
    ck_assert_uint_eq(QB_CAP_COMPRESSED_WRITE, 0x100);
    ck_assert_uint_eq(QB_CAP_INTERNAL_SNAPSHOTS, 0x200);
    ck_assert_uint_eq(QB_CAP_CHECK, 0x400);
    ck_assert_uint_eq(QB_CAP_REPAIR, 0x800);
    ck_assert_uint_eq(QB_CAP_ZERO_INIT, 0x1000);
    ck_assert_uint_eq(QB_PREALLOC_MODE_OFF, 1);
    ck_assert_uint_eq(QB_PREALLOC_MODE_METADATA, 2);
    ck_assert_uint_eq(QB_PREALLOC_MODE_FALLOC, 4);
    ck_assert_uint_eq(QB_PREALLOC_MODE_FULL, 8);
    ck_assert_int_eq(QB_OPT_TYPE_STRING, 0);
    ck_assert_int_eq(QB_OPT_TYPE_BOOL, 1);
    ck_assert_int_eq(QB_OPT_TYPE_SIZE, 2);
    ck_assert_int_eq(QB_OPT_TYPE_NUMBER, 3);
    ck_assert_int_eq(QB_OPT_TYPE_ENUM, 4);
    ck_assert_int_eq(QB_OPT_TYPE_MAX, 5);
    ck_assert_int_eq(QB_OPT_F_SETTABLE, 1);
    ck_assert_int_eq(QB_OPT_F_PROTOCOL, 2);
    ck_assert_int_eq(QB_WRITE_ZEROES_MAY_UNMAP, 1);
}
END_TEST

START_TEST(abi_prototypes_match_contract)
{
    int (*broker_new)(QBroker **) = qb_broker_new;
    void (*broker_delete)(QBroker **) = qb_broker_delete;
    const char *(*strerror_fn)(int) = qb_strerror;
    void (*human)(QBroker *, char *, size_t) = qb_error_get_human_str;
    int (*get_errno)(QBroker *) = qb_error_get_errno;
    int (*state_new)(QBroker *, QBlockState **) = qb_state_new;
    void (*state_delete)(QBroker *, QBlockState **) = qb_state_delete;
    int (*prot_new)(QBroker *, QBlockProtInfo **) = qb_prot_info_new;
    void (*prot_delete)(QBroker *, QBlockProtInfo **) = qb_prot_info_delete;
    int (*fmt_new)(QBroker *, QBlockFmtInfo **) = qb_fmt_info_new;
    void (*fmt_delete)(QBroker *, QBlockFmtInfo **) = qb_fmt_info_delete;
    int (*set_opts)(QBroker *, QBlockFmtInfo *, const char *) = qb_fmt_info_set_options;
    int (*create)(QBroker *, QBlockState *, QBlockProtInfo *, QBlockFmtInfo *, int) = qb_create;
    int (*open_fn)(QBroker *, QBlockState *, QBlockProtInfo *, QBlockFmtInfo *, int) = qb_open;
    int (*close_fn)(QBroker *, QBlockState *) = qb_close;
    int64_t (*read_fn)(QBroker *, QBlockState *, uint8_t *, uint64_t, uint64_t) = qb_read;
    int64_t (*write_fn)(QBroker *, QBlockState *, const uint8_t *, uint64_t, uint64_t) = qb_write;
    int (*flush)(QBroker *, QBlockState *) = qb_flush;
    int (*discard)(QBroker *, QBlockState *, uint64_t, uint64_t) = qb_discard;
    int (*check_alloc)(QBroker *, QBlockState *, uint64_t, int64_t, int *, int64_t *) =
        qb_check_allocation;
    int (*status)(QBroker *, QBlockState *, uint64_t, uint64_t, QBlockStatusInfo *) =
        qb_block_status;
    int (*info_get)(QBroker *, QBlockState *, QBlockStaticInfo **) = qb_info_image_static_get;
    void (*info_delete)(QBroker *, QBlockStaticInfo **) = qb_info_image_static_delete;
    int64_t (*alloc_size)(QBroker *, QBlockState *) = qb_get_allocated_file_size;
    int (*dirty)(QBroker *, QBlockState *) = qb_is_dirty;
    int (*zero_init)(QBroker *, QBlockState *) = qb_has_zero_init;
    enum QBlockFmtType (*str2fmt)(const char *) = qb_str2fmttype;
    const char *(*fmt2str)(enum QBlockFmtType) = qb_fmttype2str;
    int (*check_fn)(QBroker *, QBlockState *, int, QBlockCheckResult *) = qb_check;
    int (*truncate_fn)(QBroker *, QBlockState *, uint64_t) = qb_truncate;
    int (*caps_fn)(QBroker *, enum QBlockFmtType, QBlockFmtCaps *) = qb_fmt_get_caps;
    int (*create_opts)(QBroker *, enum QBlockFmtType, const QBlockOptionDesc **, int *) =
        qb_fmt_get_create_options;
    int (*zeroes)(QBroker *, QBlockState *, uint64_t, uint64_t, int) = qb_write_zeroes;
    void *all[] = {
        (void *)broker_new, (void *)broker_delete, (void *)strerror_fn, (void *)human,
        (void *)get_errno, (void *)state_new, (void *)state_delete, (void *)prot_new,
        (void *)prot_delete, (void *)fmt_new, (void *)fmt_delete, (void *)set_opts,
        (void *)create, (void *)open_fn, (void *)close_fn, (void *)read_fn, (void *)write_fn,
        (void *)flush, (void *)discard, (void *)check_alloc, (void *)status,
        (void *)info_get, (void *)info_delete, (void *)alloc_size, (void *)dirty,
        (void *)zero_init, (void *)str2fmt, (void *)fmt2str, (void *)check_fn,
        (void *)truncate_fn, (void *)caps_fn, (void *)create_opts, (void *)zeroes,
    };

    /* Every entry point resolved to a distinct address in the library. */
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        ck_assert_ptr_nonnull(all[i]);
        for (size_t j = 0; j < i; j++) {
            ck_assert_ptr_ne(all[i], all[j]);
        }
    }
}
END_TEST

static Suite *abi_suite(void)
{
    Suite *s = suite_create("abi");
    TCase *tc;

    tc = tcase_create("sizeof");
    tcase_add_test(tc, abi_sizeof_prot_info_is_520);
    tcase_add_test(tc, abi_sizeof_open_policy_is_128);
    tcase_add_test(tc, abi_sizeof_fmt_info_is_1032);
    tcase_add_test(tc, abi_sizeof_fmt_options_fit_reserved_union);
    tcase_add_test(tc, abi_sizeof_static_info_is_1584);
    tcase_add_test(tc, abi_sizeof_status_info_is_128);
    tcase_add_test(tc, abi_sizeof_check_result_is_192);
    tcase_add_test(tc, abi_sizeof_measure_info_is_128);
    tcase_add_test(tc, abi_sizeof_specific_info_is_1032);
    tcase_add_test(tc, abi_sizeof_fmt_caps_is_128);
    tcase_add_test(tc, abi_sizeof_option_desc_is_104);
    tcase_add_test(tc, abi_sizeof_snapshot_info_is_256);
    suite_add_tcase(s, tc);

    tc = tcase_create("offsetof");
    tcase_add_test(tc, abi_offsetof_prot_info_members);
    tcase_add_test(tc, abi_offsetof_fmt_info_union_members);
    tcase_add_test(tc, abi_offsetof_fmt_option_members);
    tcase_add_test(tc, abi_offsetof_static_info_members);
    tcase_add_test(tc, abi_offsetof_status_info_members);
    suite_add_tcase(s, tc);

    tc = tcase_create("enums");
    tcase_add_test(tc, abi_enum_prot_type_values);
    tcase_add_test(tc, abi_nbd_location_layout);
    tcase_add_test(tc, abi_rbd_location_layout);
    tcase_add_test(tc, abi_enum_fmt_type_values);
    tcase_add_test(tc, abi_enum_fmt_option_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("flags");
    tcase_add_test(tc, abi_flags_open_values);
    tcase_add_test(tc, abi_flags_valid_mask_is_or_of_flags);
    tcase_add_test(tc, abi_flags_added_after_contract);
    tcase_add_test(tc, abi_block_status_flag_values);
    tcase_add_test(tc, abi_caps_and_option_values);
    tcase_add_test(tc, abi_sizeof_convert_params_is_200);
    tcase_add_test(tc, abi_sizeof_compare_result_is_80);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, abi_errors_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("prototypes");
    tcase_add_test(tc, abi_prototypes_match_contract);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(abi_suite(), argv[0]);
}
