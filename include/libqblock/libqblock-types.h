/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libqblock-types.h: the public types of libqblock, version 1.
 *
 * Names, enum order and values here are part of the ABI and never change.
 * New enum values are appended before their *_MAX; new struct members go
 * inside a struct's reserved space, so no public struct ever changes size.
 */
#ifndef LIBQBLOCK_TYPES_H
#define LIBQBLOCK_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && __GNUC__ >= 4
#define LIBQBLOCK_EXPORT __attribute__((visibility("default")))
#else
#define LIBQBLOCK_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Per-thread error carrier; every call takes the caller's own broker. */
typedef struct QBroker QBroker;

/** One image object: created, opened (or used to create), read, written, closed. */
typedef struct QBlockState QBlockState;

/* Flags of qb_open() and qb_create(). */
#define LIBQBLOCK_O_RDWR        0x0002  /* open read-write; read-only without it */
#define LIBQBLOCK_O_SNAPSHOT    0x0008  /* writes go to a temporary overlay dropped at close */
#define LIBQBLOCK_O_NOCACHE     0x0020  /* bypass the host page cache (O_DIRECT) */
#define LIBQBLOCK_O_CACHE_WB    0x0040  /* writeback: a write completes before it is on disk */
#define LIBQBLOCK_O_NATIVE_AIO  0x0080  /* Linux native AIO for the file protocol */
#define LIBQBLOCK_O_NO_BACKING  0x0100  /* do not open the backing file */
#define LIBQBLOCK_O_NO_FLUSH    0x0200  /* never flush to disk (scratch images) */
#define LIBQBLOCK_O_VALID_MASK  0x03ea  /* every flag above (the v1.0 contract's set) */
/*
 * Flags added since the v1.0 contract. LIBQBLOCK_O_VALID_MASK keeps its
 * value; LIBQBLOCK_O_ALL_FLAGS is every flag this header defines.
 */
#define LIBQBLOCK_O_FORCE_SHARE 0x0400  /* read-only open that shares every permission,
                                           like qemu-img -U: succeeds while another process
                                           writes the image (its data may be inconsistent);
                                           with LIBQBLOCK_O_RDWR it is QB_ERR_INVALID_PARAM */
#define LIBQBLOCK_O_ALL_FLAGS   (LIBQBLOCK_O_VALID_MASK | LIBQBLOCK_O_FORCE_SHARE)

/* ---- where the image is ---- */

enum QBlockProtType {
    QB_PROT_NONE = 0,
    QB_PROT_FILE,
    QB_PROT_MAX
};

struct QBlockProtOptionFile {
    const char *filename;
};

typedef struct QBlockProtInfo {
    enum QBlockProtType prot_type;
    union {
        struct QBlockProtOptionFile o_file;
        uint64_t reserved[512 / sizeof(uint64_t)];
    } prot_op;
} QBlockProtInfo;

/* ---- how the bytes are laid out ---- */

enum QBlockFmtType {
    QB_FMT_NONE = 0,
    QB_FMT_COW,
    QB_FMT_QED,
    QB_FMT_QCOW,
    QB_FMT_QCOW2,
    QB_FMT_RAW,
    QB_FMT_RBD,
    QB_FMT_SHEEPDOG,
    QB_FMT_VDI,
    QB_FMT_VMDK,
    QB_FMT_VPC,
    QB_FMT_MAX
};

enum QBlockFmtOptionQcow2CptLv {
    QBO_FMT_QCOW2_CPT_NONE = 0,
    QBO_FMT_QCOW2_CPT_V010,
    QBO_FMT_QCOW2_CPT_V110
};

enum QBlockFmtOptionQcow2PreAllocType {
    QBO_FMT_QCOW2_PREALLOC_NONE = 0,
    QBO_FMT_QCOW2_PREALLOC_OFF,
    QBO_FMT_QCOW2_PREALLOC_METADATA,
    QBO_FMT_QCOW2_PREALLOC_FALLOC,
    QBO_FMT_QCOW2_PREALLOC_FULL
};

/* Added in 1.0: qcow2's "compression_type" (zstd needs a build with libzstd). */
enum QBlockFmtOptionQcow2CompressionType {
    QBO_FMT_QCOW2_COMPRESSION_NONE = 0,
    QBO_FMT_QCOW2_COMPRESSION_ZLIB,
    QBO_FMT_QCOW2_COMPRESSION_ZSTD
};

enum QBlockFmtOptionSdPreAllocType {
    QBO_FMT_SD_PREALLOC_NONE = 0,
    QBO_FMT_SD_PREALLOC_OFF,
    QBO_FMT_SD_PREALLOC_FULL
};

enum QBlockFmtOptionVdiPreAllocType {
    QBO_FMT_VDI_PREALLOC_NONE = 0,
    QBO_FMT_VDI_PREALLOC_FALSE,
    QBO_FMT_VDI_PREALLOC_TRUE
};

enum QBlockFmtOptionVmdkCptLv {
    QBO_FMT_VMDK_CPT_NONE = 0,
    QBO_FMT_VMDK_CPT_VMDKV6_FALSE,
    QBO_FMT_VMDK_CPT_VMDKV6_TRUE
};

enum QBlockFmtOptionVmdkSubfmtType {
    QBO_FMT_VMDK_SUBFMT_MONOLITHIC_NONE = 0,
    QBO_FMT_VMDK_SUBFMT_MONOLITHIC_SPARSE,
    QBO_FMT_VMDK_SUBFMT_MONOLITHIC_FLAT,
    QBO_FMT_VMDK_SUBFMT_TWOGBMAX_EXTENT_SPARSE,
    QBO_FMT_VMDK_SUBFMT_TWOGBMAX_EXTENT_FLAT,
    QBO_FMT_VMDK_SUBFMT_STREAM_OPTIMIZED
};

enum QBlockFmtOptionVpcSubfmtType {
    QBO_FMT_VPC_SUBFMT_NONE = 0,
    QBO_FMT_VPC_SUBFMT_DYNAMIC,
    QBO_FMT_VPC_SUBFMT_FIXED
};

/* Added in 1.0 beyond the seed contract: vmdk's adapter_type option. */
enum QBlockFmtOptionVmdkAdapterType {
    QBO_FMT_VMDK_ADAPTER_NONE = 0,
    QBO_FMT_VMDK_ADAPTER_IDE,
    QBO_FMT_VMDK_ADAPTER_LSILOGIC,
    QBO_FMT_VMDK_ADAPTER_BUSLOGIC,
    QBO_FMT_VMDK_ADAPTER_LEGACYESX
};

/* Added in 1.0 beyond the seed contract: raw preallocation (qemu-img's
 * "preallocation" option of the raw format). */
enum QBlockFmtOptionRawPreAllocType {
    QBO_FMT_RAW_PREALLOC_NONE = 0,
    QBO_FMT_RAW_PREALLOC_OFF,
    QBO_FMT_RAW_PREALLOC_FALLOC,
    QBO_FMT_RAW_PREALLOC_FULL
};

/*
 * Per-format create options. A zero (or *_NONE) member means "the format's
 * usual default", the same default qemu-img create uses. virt_size is in
 * bytes and is rounded up to a multiple of 512, as qemu-img does.
 */
struct QBlockFmtOptionCow {
    uint64_t virt_size;
    struct QBlockProtInfo backing_loc;
};

struct QBlockFmtOptionQed {
    uint64_t virt_size;
    struct QBlockProtInfo backing_loc;
    enum QBlockFmtType backing_fmt;
    uint64_t cluster_size;
    uint64_t table_size;
};

struct QBlockFmtOptionQcow {
    uint64_t virt_size;
    struct QBlockProtInfo backing_loc;
    bool encrypt;
    /* Appended: accepted as qemu-img does, but not stored (qcow has no field for it). */
    enum QBlockFmtType backing_fmt;
};

struct QBlockFmtOptionQcow2 {
    uint64_t virt_size;
    struct QBlockProtInfo backing_loc;
    enum QBlockFmtType backing_fmt;
    bool encrypt;
    uint64_t cluster_size;
    enum QBlockFmtOptionQcow2CptLv cpt_lv;
    enum QBlockFmtOptionQcow2PreAllocType pre_mode;
    /* Appended in 1.0 (qemu-img's names): 0 / false / *_NONE mean the default. */
    uint64_t refcount_bits;                     /* "refcount_bits": 1..64, default 16 */
    bool lazy_refcounts;                        /* "lazy_refcounts" (compat 1.1 only) */
    bool extended_l2;                           /* "extended_l2" (compat 1.1 only) */
    enum QBlockFmtOptionQcow2CompressionType compression_type;  /* "compression_type" */
};

struct QBlockFmtOptionRaw {
    uint64_t virt_size;
    enum QBlockFmtOptionRawPreAllocType pre_mode;   /* appended in 1.0 */
};

struct QBlockFmtOptionRbd {
    uint64_t virt_size;
    uint64_t cluster_size;
};

struct QBlockFmtOptionSheepdog {
    uint64_t virt_size;
    struct QBlockProtInfo backing_loc;
    enum QBlockFmtOptionSdPreAllocType pre_mode;
};

struct QBlockFmtOptionVdi {
    uint64_t virt_size;
    uint64_t cluster_size;
    enum QBlockFmtOptionVdiPreAllocType pre_mode;
};

struct QBlockFmtOptionVmdk {
    uint64_t virt_size;
    struct QBlockProtInfo backing_loc;
    enum QBlockFmtOptionVmdkCptLv cpt_lv;
    enum QBlockFmtOptionVmdkSubfmtType subfmt;
    /* Appended in 1.0 (qemu-img's backing_fmt, adapter_type, hwversion,
     * toolsversion and zeroed_grain; 0 = qemu-img's default). */
    enum QBlockFmtType backing_fmt;                   /* must be QB_FMT_VMDK if set */
    enum QBlockFmtOptionVmdkAdapterType adapter_type;
    uint64_t hwversion;                               /* ddb.virtualHWVersion */
    uint64_t toolsversion;                            /* ddb.toolsVersion */
    bool zeroed_grain;
};

struct QBlockFmtOptionVpc {
    uint64_t virt_size;
    enum QBlockFmtOptionVpcSubfmtType subfmt;
    /* Appended in 1.0: keep the exact size instead of the CHS-rounded one. */
    bool force_size;
};

typedef struct QBlockFmtInfo {
    enum QBlockFmtType fmt_type;
    union {
        struct QBlockFmtOptionCow o_cow;
        struct QBlockFmtOptionQed o_qed;
        struct QBlockFmtOptionQcow o_qcow;
        struct QBlockFmtOptionQcow2 o_qcow2;
        struct QBlockFmtOptionRaw o_raw;
        struct QBlockFmtOptionRbd o_rbd;
        struct QBlockFmtOptionSheepdog o_sheepdog;
        struct QBlockFmtOptionVdi o_vdi;
        struct QBlockFmtOptionVmdk o_vmdk;
        struct QBlockFmtOptionVpc o_vpc;
        uint64_t reserved[1024 / sizeof(uint64_t)];
    } fmt_op;
} QBlockFmtInfo;

/* ---- facts about an open image, filled by the library ---- */

typedef struct QBlockStaticInfo {
    struct QBlockProtInfo loc;          /* where the open image is (library-owned strings) */
    enum QBlockFmtType fmt_type;
    uint64_t virt_size;                 /* bytes */
    struct QBlockProtInfo backing_loc;  /* prot_type QB_PROT_NONE when there is no backing file */
    enum QBlockFmtType backing_fmt;     /* QB_FMT_NONE when none or not recorded */
    bool encrypt;
    int sector_size;                    /* 512 */
    /* Appended in 1.0 inside the reserved space: */
    uint64_t cluster_size;              /* bytes; 0 when the format has no clusters */
    uint64_t reserved[63];
} QBlockStaticInfo;

/* ---- allocation status of a range (qb_block_status) ---- */

#define QB_BLOCK_DATA          0x01  /* reads come from data stored in some layer */
#define QB_BLOCK_ZERO          0x02  /* reads return zeros */
#define QB_BLOCK_ALLOCATED     0x04  /* some layer of the chain decides the content ("present") */
#define QB_BLOCK_OFFSET_VALID  0x08  /* host_offset is where the data lives in that layer's file */

typedef struct QBlockStatusInfo {
    uint64_t length;       /* bytes from the queried offset sharing this status */
    int flags;             /* QB_BLOCK_* */
    int depth;             /* layer that allocates the range: 0 the image itself, 1 its
                              backing file...; when no layer does (no QB_BLOCK_ALLOCATED),
                              the deepest layer consulted, as qemu-img map prints it */
    uint64_t host_offset;  /* with QB_BLOCK_OFFSET_VALID */
    uint64_t reserved[13];
} QBlockStatusInfo;

/* ---- consistency check (qb_check) ---- */

/* qb_check's @fix bits: repair leaked clusters, or every inconsistency found. */
#define QB_CHECK_FIX_LEAKS   1
#define QB_CHECK_FIX_ERRORS  2

/*
 * What a consistency check found. Counters a format does not keep stay 0;
 * after a repair the counts describe what is still wrong, and the *_fixed
 * fields what the repair mended.
 */
typedef struct QBlockCheckResult {
    int corruptions;               /* inconsistencies that may damage data */
    int leaks;                     /* clusters allocated but unused (wasted space only) */
    int check_errors;              /* failures of the check itself (e.g. I/O errors) */
    int corruptions_fixed;
    int leaks_fixed;
    int64_t image_end_offset;      /* bytes of the image file in use; 0 when not known */
    uint64_t allocated_clusters;
    uint64_t total_clusters;       /* clusters of the virtual disk; 0 for unclustered formats */
    uint64_t fragmented_clusters;
    uint64_t compressed_clusters;
    uint64_t reserved[16];
} QBlockCheckResult;

/* ---- internal snapshots (qb_snapshot_list) ---- */

/* icount of a snapshot that records none (every snapshot not taken under record/replay). */
#define QB_SNAPSHOT_NO_ICOUNT  UINT64_MAX

/*
 * One internal snapshot of an image, as qemu-img snapshot -l lists it. The
 * strings belong to the list they came in (qb_snapshot_list_free).
 */
typedef struct QBlockSnapshotInfo {
    const char *id;             /* the id the image records ("1", "2" ...), unique */
    const char *name;           /* the name ("tag"); may be "" and may repeat */
    uint64_t vm_state_size;     /* bytes of saved VM state; 0 for a disk-only snapshot */
    uint64_t virt_size;         /* virtual size of the image when it was taken, bytes */
    int64_t date_sec;           /* wall clock when it was taken: Unix time ... */
    uint32_t date_nsec;         /* ... and nanoseconds */
    uint64_t vm_clock_nsec;     /* guest clock when it was taken, ns (0 without a VM) */
    uint64_t icount;            /* instruction count, or QB_SNAPSHOT_NO_ICOUNT */
    uint64_t reserved[24];
} QBlockSnapshotInfo;

#ifdef __cplusplus
}
#endif

#endif /* LIBQBLOCK_TYPES_H */
