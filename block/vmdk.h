/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmdk.h: the private interface between the VMDK driver's files: the
 * descriptor parser and image logic (vmdk.c) and the sparse extents, hosted
 * "KDMV" and ESX "COWD", with their grain directories and tables
 * (vmdk-sparse.c).
 */
#ifndef BLOCK_VMDK_H
#define BLOCK_VMDK_H

#include "block/block_int.h"

#define VMDK_SECTOR             ((uint64_t)512)
#define VMDK4_MAGIC             "KDMV"
#define VMDK3_MAGIC             "COWD"

/* Hosted sparse header flags. */
#define VMDK4_FLAG_NL_DETECT    (1u << 0)
#define VMDK4_FLAG_RGD          (1u << 1)
#define VMDK4_FLAG_ZERO_GRAIN   (1u << 2)
#define VMDK4_FLAG_COMPRESS     (1u << 16)
#define VMDK4_FLAG_MARKER       (1u << 17)
#define VMDK4_COMPRESSION_DEFLATE 1

#define VMDK_GD_AT_END          UINT64_MAX
#define VMDK_GTE_ZEROED         1u     /* with VMDK4_FLAG_ZERO_GRAIN: the grain reads as zeros */

/* Stream-optimized metadata marker types. */
#define VMDK_MARKER_EOS         0
#define VMDK_MARKER_GT          1
#define VMDK_MARKER_GD          2
#define VMDK_MARKER_FOOTER      3

/* QEMU 7.2's limits, enforced on open. */
#define VMDK_MAX_GTES           512u          /* numGTEsPerGT of a hosted sparse extent */
#define VMDK3_GTES              4096u         /* entries of a COWD grain table */
#define VMDK_MAX_GRAIN_SECTORS  ((uint64_t)0x200000)  /* 1 GiB */
#define VMDK_MAX_GD_ENTRIES     (32u * 1024 * 1024)
#define VMDK_DESC_MAX           (1024 * 1024 - 1)  /* descriptor files larger are refused */
#define VMDK_DEFAULT_GRAIN      ((uint64_t)128)      /* sectors (64 KiB) */
#define VMDK_SPLIT_SECTORS      ((uint64_t)4194304)   /* 2 GiB: twoGbMaxExtent* extent size */
#define VMDK_GT_CACHE_SLOTS     16

typedef enum VmdkExtentType {
    VMDK_EXTENT_FLAT,          /* FLAT and VMFS: raw data at flat_offset */
    VMDK_EXTENT_SPARSE,        /* hosted sparse "KDMV" (SPARSE, or streamOptimized) */
    VMDK_EXTENT_COWD,          /* ESX sparse "COWD" (VMFSSPARSE), read only */
    VMDK_EXTENT_ZERO,          /* ZERO: reads zeros, stores nothing */
} VmdkExtentType;

typedef enum VmdkAccess {
    VMDK_ACCESS_RW,
    VMDK_ACCESS_RDONLY,
    VMDK_ACCESS_NOACCESS,
} VmdkAccess;

typedef struct VmdkGtSlot {
    bool valid;
    uint32_t gdi;              /* which grain table */
    uint64_t stamp;
    uint32_t *entries;         /* host order, gtes entries */
} VmdkGtSlot;

typedef struct VmdkExtent {
    VmdkExtentType type;
    VmdkAccess access;
    BlockDriverState *file;    /* where the extent's bytes live */
    bool owns_file;            /* opened by the driver (closed with the image) */
    char *name;                /* the file name as the descriptor gives it */
    char desc_type[16];        /* the descriptor's extent type ("" for a monolithic image) */
    uint64_t start;            /* first byte of the extent in the virtual disk */
    uint64_t length;           /* bytes of the virtual disk it covers */
    uint64_t flat_offset;      /* FLAT: byte offset of the data in file */

    /* Sparse and COWD extents. */
    uint32_t version;
    uint32_t flags;
    uint64_t capacity;         /* sectors the header declares */
    uint64_t grain_sectors;
    uint32_t gtes;             /* entries per grain table */
    uint64_t gd_offset;        /* bytes */
    uint64_t rgd_offset;       /* bytes; 0 without a redundant directory */
    uint32_t gd_entries;
    uint32_t *gd;              /* host order */
    uint32_t *rgd;             /* host order, or NULL */
    bool compressed;           /* grains are deflate streams */
    bool markers;              /* grains start with a (lba, size) marker */
    bool zero_grain;           /* GTE 1 means a zeroed grain */
    uint64_t next_sector;      /* where the next grain or table goes */
    VmdkGtSlot gt_cache[VMDK_GT_CACHE_SLOTS];
    uint64_t gt_clock;
    /* Stream-optimized: a grain being written in pieces, not stored yet. */
    uint64_t pending_g;        /* its grain number, UINT64_MAX when none */
    uint8_t *pending_buf;      /* one grain */
} VmdkExtent;

typedef struct BDRVVmdkState {
    VmdkExtent *extents;
    int nb_extents;
    uint32_t cid;
    uint32_t parent_cid;
    bool cid_updated;          /* the CID was renewed since open (first write) */
    bool parent_checked;       /* the parent's CID was compared with parent_cid */
    int parent_ok;             /* 0 or -EINVAL after that comparison */
    char create_type[64];
    char *desc;                /* the descriptor text, NUL-terminated */
    BlockDriverState *desc_file;/* where the descriptor lives */
    uint64_t desc_offset;      /* byte offset of the descriptor in desc_file */
    uint64_t desc_room;        /* bytes available there; 0: a whole file of its own */
    uint8_t *grain_buf;        /* one grain, for copy-on-write and (de)compression */
    uint8_t *cbuf;             /* compressed-grain buffer */
    size_t grain_buf_size, cbuf_size;
} BDRVVmdkState;

/* One extent line of a descriptor. */
typedef struct VmdkDescExtent {
    VmdkAccess access;
    uint64_t sectors;
    char type[16];
    char *filename;            /* NULL for ZERO extents without a name */
    uint64_t offset;           /* sectors; FLAT/VMFS */
    bool has_offset;
} VmdkDescExtent;

/* What a descriptor says (vmdk_desc_parse). */
typedef struct VmdkDesc {
    int version;
    bool has_cid;
    uint32_t cid;
    bool has_parent_cid;
    uint32_t parent_cid;
    char create_type[64];
    char *parent_hint;         /* parentFileNameHint, or NULL */
    VmdkDescExtent *extents;
    int nb_extents;
} VmdkDesc;

/* vmdk.c */
HIDDEN int vmdk_desc_parse(const char *text, size_t len, bool want_extents, VmdkDesc *desc,
                           const char *image, BdrvError *err);
HIDDEN void vmdk_desc_free(VmdkDesc *desc);
HIDDEN int vmdk_resolve_extent_path(char *dest, size_t sz, const char *desc_path,
                                    const char *name);
HIDDEN int vmdk_probe_text(const uint8_t *buf, int buf_size);

/* vmdk-sparse.c */
HIDDEN int vmdk_sparse_open(BlockDriverState *bs, VmdkExtent *e, bool writable, BdrvError *err);
HIDDEN void vmdk_sparse_close(VmdkExtent *e);
HIDDEN int vmdk_sparse_read(BlockDriverState *bs, VmdkExtent *e, uint64_t off, QBIOVector *qiov,
                            size_t qoff, size_t n);
HIDDEN int vmdk_sparse_write(BlockDriverState *bs, VmdkExtent *e, uint64_t off,
                             QBIOVector *qiov, size_t qoff, size_t n);
HIDDEN int vmdk_sparse_zero(BlockDriverState *bs, VmdkExtent *e, uint64_t off, uint64_t n);
HIDDEN int vmdk_sparse_status(BlockDriverState *bs, VmdkExtent *e, uint64_t off, uint64_t n,
                              uint64_t *pnum, uint64_t *map);
/* Store the pending grain of a stream-optimized extent, if any. */
HIDDEN int vmdk_stream_commit(BlockDriverState *bs, VmdkExtent *e);
HIDDEN int vmdk_sparse_check(BlockDriverState *bs, VmdkExtent *e, BdrvCheckResult *res,
                             BdrvError *err);
/* Read the virtual range [vpos, vpos+n) of the parent (zeros past its end or without one). */
HIDDEN int vmdk_read_parent(BlockDriverState *bs, uint64_t vpos, QBIOVector *qiov, size_t qoff,
                            size_t n);
/* Renew the CID before the image's first change since open (QEMU's rule). */
HIDDEN int vmdk_note_write(BlockDriverState *bs);
/* Create a hosted sparse extent file (the descriptor embedded when @desc is non-NULL). */
HIDDEN int vmdk_create_sparse_extent(const char *filename, uint64_t sectors, bool zeroed_grain,
                                     bool stream, const char *desc, int flags, BdrvError *err);

#endif /* BLOCK_VMDK_H */
