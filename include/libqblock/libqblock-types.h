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

/** An asynchronous request in flight (qb_aio_*); owned by the library. */
typedef struct QBlockAIOReq QBlockAIOReq;

/**
 * The completion callback of an asynchronous request: @ret is the number of
 * bytes transferred (0 for flush and discard) or a negative QB_ERR_* code.
 * It runs in the thread that calls qb_aio_run_completions or qb_aio_drain,
 * never on a library thread; @req is freed when it returns.
 */
typedef void (*QBlockAIOFunc)(QBlockAIOReq *req, int64_t ret, void *opaque);

/** The most entries a vector of qb_readv, qb_writev and their aio forms may have. */
#define QB_IOV_MAX 1024

/** The queue depth of a state's asynchronous requests unless set otherwise. */
#define QB_AIO_DEFAULT_QUEUE_DEPTH 128
/** The largest queue depth qb_aio_set_max_queue_depth accepts. */
#define QB_AIO_MAX_QUEUE_DEPTH 65536

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

/* ---- what an open may do with an untrusted image ---- */

/* Flags of QBlockOpenPolicy: each lifts one default restriction. */
#define QB_POLICY_ALLOW_RAW_PROBE  0x1  /* probing may settle on raw when no format matches */
#define QB_POLICY_ALLOW_ANY_PATH   0x2  /* backing files may be anywhere, and any file type */
#define QB_POLICY_ALL_FLAGS        0x3

/* The limits a zeroed member stands for. */
#define QB_POLICY_DEFAULT_MAX_CHAIN_DEPTH      16u
#define QB_POLICY_DEFAULT_MAX_METADATA_SIZE    (64ull << 20)
#define QB_POLICY_DEFAULT_MAX_DESCRIPTOR_SIZE  (64ull << 10)
/* A limit member set to this has no limit beyond the library's own caps. */
#define QB_POLICY_UNLIMITED                    UINT64_MAX

/*
 * The open policy of a state (qb_state_set_policy). A zeroed struct is the
 * safe default: no raw guess, backing files and extents confined to the
 * image's folder (and below it) or allowed_dirs, and the default limits.
 */
typedef struct QBlockOpenPolicy {
    uint32_t flags;                     /* QB_POLICY_* */
    uint32_t max_chain_depth;           /* backing files below the image; 0: default,
                                           UINT32_MAX: unlimited */
    uint64_t max_metadata_size;         /* bytes of tables and caches one image file may
                                           keep in memory; 0: default */
    uint64_t max_descriptor_size;       /* bytes of a text descriptor (vmdk); 0: default */
    const char *const *allowed_dirs;    /* NULL-terminated folders also allowed, or NULL;
                                           copied by qb_state_set_policy */
    uint64_t reserved[12];              /* must be zero */
} QBlockOpenPolicy;

/* ---- where the image is ---- */

enum QBlockProtType {
    QB_PROT_NONE = 0,
    QB_PROT_FILE,
    QB_PROT_NBD,            /* appended in 1.0: an export of an NBD server */
    QB_PROT_RBD,            /* appended in 1.0: an image of a Ceph RBD pool (librbd) */
    QB_PROT_MAX
};

/*
 * A file name of the form nbd://..., nbd+unix://... or nbd:... is taken
 * as an NBD location, and rbd:pool/image[@snap][:conf=PATH][:id=USER] as
 * an RBD location (as qemu-img does with such names); write "./nbd:name"
 * or "./rbd:name" for a local file so named.
 */
struct QBlockProtOptionFile {
    const char *filename;
};

/*
 * Appended in 1.0: where an NBD export is (QB_PROT_NBD). Either TCP (host,
 * and port as text or as a number) or a Unix socket (socket_path, host
 * NULL). The client speaks the fixed-newstyle handshake in clear text:
 * TLS is not supported, so tls must be 0 and a server that requires TLS
 * is refused with QB_ERR_NOT_SUPPORTED. A server that stops answering a
 * request or the handshake for timeout_ms fails it with QB_ERR_TIMEOUT;
 * a dropped connection fails every request with QB_ERR_IO. Images cannot
 * be created on NBD (the export exists already): qb_create refuses it.
 */
struct QBlockProtOptionNBD {
    const char *host;         /* name or address; NULL with socket_path */
    const char *port;         /* service or number as text; NULL: port_number */
    const char *socket_path;  /* Unix domain socket; NULL for TCP */
    const char *export_name;  /* NULL or "": the server's default export */
    uint32_t port_number;     /* used when port is NULL; 0: 10809 */
    uint32_t timeout_ms;      /* connect and per-request timeout; 0: 30000 */
    uint32_t tls;             /* must be 0 (TLS off) */
    uint32_t reserved32;
    uint64_t reserved[8];
};

/*
 * Appended in 1.0: where a Ceph RBD image is (QB_PROT_RBD), reached
 * through librbd. The cluster is the one conf names (NULL: librbd's
 * default search, which honours $CEPH_CONF), as the client "client.USER"
 * (user NULL: admin). With a snapshot the image opens read-only at that
 * snapshot. qb_create makes a new image (an existing one is an error):
 * format QB_FMT_RBD takes the object size as cluster_size, any other
 * format is stored inside the RBD image. A build without librbd refuses
 * every RBD location with QB_ERR_NOT_SUPPORTED.
 */
struct QBlockProtOptionRBD {
    const char *pool;         /* the RADOS pool, such as "rbd" */
    const char *image;        /* the image's name in the pool */
    const char *snapshot;     /* NULL or "": the image itself */
    const char *user;         /* the client id without "client."; NULL: admin */
    const char *conf;         /* a ceph.conf file; NULL: the default search */
    uint64_t reserved[8];     /* must be zero */
};

typedef struct QBlockProtInfo {
    enum QBlockProtType prot_type;
    union {
        struct QBlockProtOptionFile o_file;
        struct QBlockProtOptionNBD o_nbd;     /* appended in 1.0 */
        struct QBlockProtOptionRBD o_rbd;     /* appended in 1.0 */
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
    /*
     * Appended in 1.0: the image UUID and the last-modification UUID the
     * new image records, 16 bytes each in the order their text form reads
     * (options image_uuid and modification_uuid, "8-4-4-4-12" hex); all
     * zeros = a random one, as qemu-img makes. Images with the same UUIDs
     * and options are created byte for byte the same.
     */
    uint8_t image_uuid[16];
    uint8_t modification_uuid[16];
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

/* ---- the space a new image needs (qb_measure) ---- */

typedef struct QBlockMeasureInfo {
    uint64_t required;         /* bytes for the data measured, metadata included */
    uint64_t fully_allocated;  /* bytes with every cluster of the virtual disk allocated */
    uint64_t bitmaps;          /* bytes of the source's persistent bitmaps, with has_bitmaps */
    bool has_bitmaps;          /* the target could carry the source's bitmaps (qcow2 v3
                                  from a qcow2 v3 source), as qemu-img reports "bitmaps" */
    uint64_t reserved[12];
} QBlockMeasureInfo;

/* ---- format-specific facts about an open image (qb_info_image_specific_get) ---- */

/*
 * Every string (char *) below is allocated by the library, NUL-terminated,
 * and freed by qb_info_image_specific_delete together with the struct; the
 * arrays (bitmaps, extents) likewise. Callers read them and never free them.
 * A NULL string means "not recorded". Fixed char arrays are NUL-terminated.
 */

/* Flags of a qcow2 persistent dirty bitmap (the bitmap directory's flag bits). */
#define QB_QCOW2_BITMAP_IN_USE  0x1   /* the bitmap was not saved cleanly: its content is stale */
#define QB_QCOW2_BITMAP_AUTO    0x2   /* QEMU tracks writes in it when the image is opened */

struct QBlockSpecificQcow2Bitmap {
    char *name;
    uint64_t granularity;        /* bytes covered by one bit */
    uint32_t flags;              /* QB_QCOW2_BITMAP_* (other bits as stored) */
};

struct QBlockSpecificQcow2 {
    int version;                 /* 2 ("compat 0.10") or 3 ("compat 1.1") */
    bool lazy_refcounts;         /* compatible feature bit 0 (version 3 only) */
    bool corrupt;                /* incompatible feature bit 1: the image is marked corrupt */
    bool extended_l2;            /* incompatible feature bit 4: subclusters */
    uint32_t refcount_bits;      /* 1..64 */
    enum QBlockFmtOptionQcow2CompressionType compression_type;  /* ZLIB or ZSTD, never NONE */
    char *data_file;             /* external data file name; NULL when none (such images
                                    are not opened by this version, so always NULL today) */
    bool data_file_raw;          /* the data file is valid raw data on its own */
    uint32_t nb_bitmaps;         /* entries of bitmaps; 0 and bitmaps NULL when none */
    struct QBlockSpecificQcow2Bitmap *bitmaps;  /* in the bitmap directory's order */
};

struct QBlockSpecificVmdkExtent {
    char *filename;              /* the extent's file as opened (resolved against the
                                    descriptor's folder); "" for a ZERO extent */
    char *format;                /* the descriptor's extent type: "SPARSE", "FLAT", "VMFS",
                                    "VMFSSPARSE", "ZERO"; "" for the one extent of a
                                    monolithic sparse or stream-optimized image */
    uint64_t virt_size;          /* bytes of the virtual disk the extent covers */
    uint64_t cluster_size;       /* grain size in bytes; 0 for extents without grains */
    bool compressed;             /* grains are deflate-compressed (stream-optimized) */
};

struct QBlockSpecificVmdk {
    char *create_type;           /* the descriptor's createType, e.g. "monolithicSparse" */
    uint32_t cid;                /* content ID */
    uint32_t parent_cid;         /* parent's content ID; 0xffffffff without a parent */
    uint32_t nb_extents;
    struct QBlockSpecificVmdkExtent *extents;   /* in the descriptor's order */
};

struct QBlockSpecificQed {
    uint32_t cluster_size;       /* bytes */
    uint32_t table_size;         /* clusters per L1/L2 table */
    bool need_check;             /* feature bit QED_F_NEED_CHECK: not closed cleanly */
    uint64_t features;           /* the header's feature bits as stored */
    char *backing_file;          /* as recorded; NULL when none */
    char *backing_fmt;           /* "raw" when QED_F_BACKING_FORMAT_NO_PROBE says so;
                                    NULL when the format is to be probed or there is
                                    no backing file */
};

enum QBlockSpecificQcowCrypt {
    QB_QCOW_CRYPT_NONE = 0,
    QB_QCOW_CRYPT_AES = 1
};

struct QBlockSpecificQcow {
    uint32_t version;            /* 1 */
    uint32_t cluster_bits;       /* log2 of the cluster size in bytes */
    uint32_t l2_bits;            /* log2 of the entries of an L2 table */
    uint32_t crypt_method;       /* enum QBlockSpecificQcowCrypt, or another value as stored */
    uint32_t mtime;              /* the backing file's mtime as recorded (0 usually) */
};

struct QBlockSpecificCow {
    uint32_t version;            /* 1, 2 or 3 */
    char *backing_file;          /* as recorded (UML cow files always have one) */
    uint32_t mtime;              /* the backing file's mtime when the cow file was made */
    uint32_t sector_size;        /* bytes (512) */
    uint32_t alignment;          /* bytes the bitmap is aligned to (version 3; else sector_size) */
};

enum QBlockSpecificVdiType {
    QB_VDI_TYPE_DYNAMIC = 1,     /* blocks are allocated on first write ("normal") */
    QB_VDI_TYPE_STATIC = 2       /* every block allocated at creation ("fixed") */
};

struct QBlockSpecificVdi {
    uint32_t image_type;         /* enum QBlockSpecificVdiType, or another value as stored */
    uint32_t version;            /* header version, e.g. 0x00010001 for 1.1 */
    uint32_t block_size;         /* bytes */
    uint32_t blocks_allocated;   /* as the header records it */
    uint32_t blocks_total;       /* blocks of the virtual disk */
    /* The UUIDs as the header stores them (16 bytes each, printed in stored order). */
    uint8_t uuid_image[16];
    uint8_t uuid_last_snap[16];
    uint8_t uuid_link[16];
    uint8_t uuid_parent[16];
};

enum QBlockSpecificVpcType {
    QB_VPC_TYPE_FIXED = 2,
    QB_VPC_TYPE_DYNAMIC = 3,
    QB_VPC_TYPE_DIFFERENCING = 4
};

struct QBlockSpecificVpc {
    uint32_t disk_type;          /* enum QBlockSpecificVpcType, as the footer stores it */
    char creator_app[5];         /* four bytes as stored ("qemu", "win "...), NULs kept as NULs */
    char creator_os[5];          /* "Wi2k", "Mac "... */
    uint32_t creator_version;    /* major << 16 | minor */
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors_per_track;
    uint32_t block_size;         /* bytes; 0 for fixed images */
    bool size_from_footer;       /* the virtual size is the footer's current_size;
                                    false: cylinders * heads * sectors_per_track * 512 */
    uint64_t current_size;       /* the footer's current_size, bytes */
    uint64_t original_size;      /* the footer's original_size, bytes */
};

typedef struct QBlockSpecificInfo {
    enum QBlockFmtType fmt_type; /* selects the union member: QB_FMT_QCOW2 -> qcow2 ... */
    union {
        struct QBlockSpecificQcow2 qcow2;
        struct QBlockSpecificVmdk vmdk;
        struct QBlockSpecificQed qed;
        struct QBlockSpecificQcow qcow;
        struct QBlockSpecificCow cow;
        struct QBlockSpecificVdi vdi;
        struct QBlockSpecificVpc vpc;
        uint64_t reserved[1024 / sizeof(uint64_t)];
    } u;
} QBlockSpecificInfo;

/* ---- what a format can do (qb_fmt_get_caps) ---- */

#define QB_CAP_OPEN               (1ULL << 0)   /* this build can open the format */
#define QB_CAP_CREATE             (1ULL << 1)   /* qb_create can make images of it */
#define QB_CAP_WRITE              (1ULL << 2)   /* images can be opened read-write and written */
#define QB_CAP_BACKING            (1ULL << 3)   /* images can name a backing file */
#define QB_CAP_RESIZE_GROW        (1ULL << 4)   /* qb_truncate can grow an image */
#define QB_CAP_RESIZE_SHRINK      (1ULL << 5)   /* qb_truncate can shrink an image */
#define QB_CAP_DISCARD            (1ULL << 6)   /* qb_discard releases space (else ignored) */
#define QB_CAP_COMPRESSED_READ    (1ULL << 7)   /* compressed clusters/grains are read */
#define QB_CAP_COMPRESSED_WRITE   (1ULL << 8)   /* data can be stored compressed: through
                                                   qb_write_compressed (qcow2), or by a
                                                   compressing subformat with plain writes
                                                   (vmdk streamOptimized; there
                                                   qb_write_compressed is not supported) */
#define QB_CAP_INTERNAL_SNAPSHOTS (1ULL << 9)   /* internal snapshots are kept intact and can
                                                   be listed, taken, applied and deleted
                                                   (qb_snapshot_*) */
#define QB_CAP_CHECK              (1ULL << 10)  /* qb_check runs (QB_ERR_NOT_SUPPORTED if not) */
#define QB_CAP_REPAIR             (1ULL << 11)  /* qb_check with QB_CHECK_FIX_* repairs */
#define QB_CAP_ZERO_INIT          (1ULL << 12)  /* a new image without a backing file reads as
                                                   zeros, and qb_has_zero_init can say so */

/* QBlockFmtCaps.prealloc_modes: the values create's "preallocation" option takes. */
#define QB_PREALLOC_MODE_OFF       (1U << 0)
#define QB_PREALLOC_MODE_METADATA  (1U << 1)
#define QB_PREALLOC_MODE_FALLOC    (1U << 2)
#define QB_PREALLOC_MODE_FULL      (1U << 3)

typedef struct QBlockFmtCaps {
    uint64_t flags;              /* QB_CAP_* */
    uint32_t prealloc_modes;     /* QB_PREALLOC_MODE_*; 0 when there is no such option */
    uint32_t reserved32;
    uint64_t reserved[14];
} QBlockFmtCaps;

/* ---- create options of a format (qb_fmt_get_create_options) ---- */

enum QBlockOptionType {
    QB_OPT_TYPE_STRING = 0,
    QB_OPT_TYPE_BOOL,            /* on/off (also true/false, yes/no) */
    QB_OPT_TYPE_SIZE,            /* bytes, with k/M/G/T/P/E suffixes */
    QB_OPT_TYPE_NUMBER,          /* a plain unsigned integer */
    QB_OPT_TYPE_ENUM,            /* a string, one of @choices */
    QB_OPT_TYPE_MAX
};

/* QBlockOptionDesc.flags */
#define QB_OPT_F_SETTABLE  0x1   /* qb_fmt_info_set_options accepts it (a struct member holds it) */
#define QB_OPT_F_PROTOCOL  0x2   /* qemu-img lists it among the file protocol's options */

typedef struct QBlockOptionDesc {
    const char *name;            /* qemu-img's -o name */
    enum QBlockOptionType type;
    uint32_t flags;              /* QB_OPT_F_* */
    const char *def;             /* the default as text; NULL when there is none */
    const char *help;            /* one line of English */
    const char *const *choices;  /* QB_OPT_TYPE_ENUM: NULL-terminated values; else NULL */
    uint64_t reserved[8];
} QBlockOptionDesc;

/* qb_write_zeroes' flags */
#define QB_WRITE_ZEROES_MAY_UNMAP  0x1   /* the format may release the range's space */
/* ---- progress of long calls (qb_convert, qb_compare, qb_rebase, qb_commit) ---- */

/*
 * Called with the bytes handled so far and the bytes to handle in all;
 * @done never decreases from one call to the next, and the last call of a
 * successful run has @done == @total. A non-zero return asks the running
 * call to stop (see each call for what that leaves behind).
 */
typedef int (*QBlockProgressFunc)(uint64_t done, uint64_t total, void *opaque);

/* ---- copying images (qb_convert) ---- */

/* QBlockConvertParams.flags */
#define QB_CONVERT_COMPRESSED      0x1  /* store the data compressed (qemu-img convert -c) */
#define QB_CONVERT_TARGET_IS_ZERO  0x2  /* the target already reads as zeros everywhere
                                           (--target-is-zero): zero ranges are not written */
#define QB_CONVERT_OUT_OF_ORDER    0x4  /* requests may complete, and write, in any order (-W) */
#define QB_CONVERT_BACKING_SHARED  0x8  /* the target's backing file holds what the sources'
                                           backing chains hold (-B): only what a source
                                           allocates in its own top layer is copied */
#define QB_CONVERT_ALL_FLAGS       0xf

/* QBlockConvertParams.num_requests: 0 means the default, as qemu-img convert -m. */
#define QB_CONVERT_DEFAULT_REQUESTS 8
#define QB_CONVERT_MAX_REQUESTS     16
/* QBlockConvertParams.sparse_size: the largest value (qemu-img's -S limit). */
#define QB_CONVERT_MAX_SPARSE_SIZE  (16 * 1024 * 1024)

typedef struct QBlockConvertParams {
    QBlockState *const *sources;     /* nb_sources open images, copied one after the other */
    uint32_t nb_sources;
    uint32_t num_requests;           /* requests in flight, 1..QB_CONVERT_MAX_REQUESTS; 0: 8 */
    QBlockState *target;             /* see target_fmt */
    const QBlockProtInfo *target_loc;/* create mode: where the target is created */
    const QBlockFmtInfo *target_fmt; /* non-NULL: create mode, the target is created with
                                        these options (virt_size 0: the sources' total) into
                                        a closed @target; NULL: @target is open read-write
                                        already (qemu-img convert -n) */
    int target_flags;                /* create mode: LIBQBLOCK_O_* cache flags for the target */
    uint32_t flags;                  /* QB_CONVERT_* */
    uint64_t sparse_size;            /* runs of zeros at least this long (a multiple of 512)
                                        are left unwritten (-S); 0: write every byte */
    QBlockProgressFunc progress;     /* NULL: none */
    void *progress_opaque;
    uint64_t reserved[16];
} QBlockConvertParams;

/* ---- comparing images (qb_compare) ---- */

/* qb_compare's @flags */
#define QB_COMPARE_STRICT  0x1   /* allocation status and size differences count (-s) */

enum QBlockCompareMismatch {
    QB_COMPARE_SAME = 0,         /* no difference */
    QB_COMPARE_CONTENT,          /* the bytes differ at @offset */
    QB_COMPARE_STATUS,           /* strict: the allocation status differs at @offset */
    QB_COMPARE_SIZE,             /* strict: the virtual sizes differ */
    QB_COMPARE_MISMATCH_MAX
};

typedef struct QBlockCompareResult {
    enum QBlockCompareMismatch mismatch;
    bool size_differs;           /* the virtual sizes differ (also when not strict) */
    uint64_t offset;             /* CONTENT: the first differing byte's sector start;
                                    STATUS: where the differing run starts; else 0 */
    uint64_t reserved[8];
} QBlockCompareResult;

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

/* Flags of qb_rebase. */
#define QB_REBASE_UNSAFE   0x1   /* only rewrite the reference; copy no data (qemu-img rebase -u) */

/* Flags of qb_commit. */
#define QB_COMMIT_KEEP_TOP 0x1   /* leave the committed top image as it is (qemu-img commit -d) */

#ifdef __cplusplus
}
#endif

#endif /* LIBQBLOCK_TYPES_H */
