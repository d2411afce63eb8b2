/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qcow2-cluster.c: guest-to-host cluster mapping: L1/L2 lookups, L2 table
 * allocation and copy-on-write, guest writes with cluster allocation and
 * copy-on-write of partial clusters, zero writes, discard, L1 growth,
 * preallocation and the mapping side of shrinking.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef CONFIG_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

#include "qcow2.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

/* Append [off, off+len) of @src to the growable vector @dst. */
static int qiov_add_slice(QBIOVector *dst, const QBIOVector *src, size_t off, size_t len)
{
    for (int i = 0; len && i < src->niov; i++) {
        size_t il = src->iov[i].iov_len;
        size_t n;
        int ret;

        if (off >= il) {
            off -= il;
            continue;
        }
        n = MIN(len, il - off);
        ret = qiov_add(dst, (char *)src->iov[i].iov_base + off, n);
        if (ret < 0) {
            return ret;
        }
        len -= n;
        off = 0;
    }
    return len ? -EINVAL : 0;
}

/* The cluster-level nature of an entry (subcluster 0 for non-extended images). */
static bool entry_has_host(const BDRVQcow2State *s, uint64_t entry)
{
    (void)s;
    return !(entry & QCOW_OFLAG_COMPRESSED) && (entry & L2E_OFFSET_MASK);
}

/* True when the cluster can be written where it is: ours alone, not compressed. */
static bool entry_in_place(const BDRVQcow2State *s, uint64_t entry)
{
    return entry_has_host(s, entry) && (entry & QCOW_OFLAG_COPIED);
}

/* Bitmask of the subclusters of a cluster that [a, b) (offsets in the cluster) touches. */
static uint32_t touched_mask(const BDRVQcow2State *s, uint64_t a, uint64_t b)
{
    int first = (int)(a >> s->subcluster_bits);
    int last = (int)((b - 1) >> s->subcluster_bits);
    uint64_t m = ((1ull << (last + 1)) - 1) & ~((1ull << first) - 1);
    return (uint32_t)m;
}

/* ------------------------------------------------------------------ */
/* L2 table access                                                     */

/*
 * Pin the L2 table of L1 entry @l1i for reading; *table NULL when there is
 * none. @peek (a shared read): only a cached table, not pinned, and
 * -EAGAIN when it is not cached.
 */
static int l2_load(BlockDriverState *bs, uint64_t l1i, void **table, bool peek)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l2_off;

    *table = NULL;
    if (l1i >= s->l1_size) {
        return 0;
    }
    l2_off = s->l1_table[l1i] & L1E_OFFSET_MASK;
    if (!l2_off) {
        return 0;
    }
    if (peek) {
        /* Only validated offsets are ever cached: a bad one is simply not found. */
        *table = qcow2_cache_peek(s->l2_cache, l2_off);
        return *table ? 0 : -EAGAIN;
    }
    if (qcow2_offset_into_cluster(s, l2_off)) {
        return qcow2_signal_corruption(bs, "L2 table offset 0x%llx (L1 index %llu) is not "
                                       "cluster-aligned", (unsigned long long)l2_off,
                                       (unsigned long long)l1i);
    }
    if (l2_off + s->cluster_size > QCOW2_MAX_CLUSTER_OFFSET) {
        return qcow2_signal_corruption(bs, "L2 table offset 0x%llx is out of range",
                                       (unsigned long long)l2_off);
    }
    return qcow2_cache_get(bs, s->l2_cache, l2_off, table);
}

int qcow2_write_l1_entries(BlockDriverState *bs, uint32_t first, uint32_t count)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t buf[512];
    uint64_t start = ((uint64_t)first * 8) & ~511ull;
    uint64_t end = ROUND_UP(((uint64_t)first + count) * 8, 512);
    int ret;

    end = MIN(end, (uint64_t)s->l1_size * 8);
    /* Whole 512-byte pieces, so that a torn write can only tear between sectors. */
    for (uint64_t off = start; off < end; off += 512) {
        uint64_t n = MIN(512, end - off);
        for (uint64_t i = 0; i < n / 8; i++) {
            be64_store(buf + 8 * i, s->l1_table[off / 8 + i]);
        }
        ret = qcow2_check_overlap_except(bs, s->l1_table_offset + off, n, QCOW2_OL_ACTIVE_L1);
        if (ret == 0) {
            ret = bdrv_pwrite(bs->file, s->l1_table_offset + off, buf, n);
        }
        if (ret < 0) {
            return ret;
        }
    }
    s->l2_unsynced = true;
    return 0;
}

/*
 * Recompute the COPIED flag of every entry of @table from the refcounts:
 * set exactly where the host cluster's refcount is 1.
 */
static int l2_fix_copied_flags(BlockDriverState *bs, void *table, bool *changed)
{
    BDRVQcow2State *s = bs->opaque;

    for (uint32_t i = 0; i < s->l2_size; i++) {
        uint64_t e = qcow2_l2_get(s, table, i);
        uint64_t rc, ne;
        int ret;

        if (!entry_has_host(s, e)) {
            if ((e & QCOW_OFLAG_COMPRESSED) && (e & QCOW_OFLAG_COPIED)) {
                qcow2_l2_set(s, table, i, e & ~QCOW_OFLAG_COPIED);
                *changed = true;
            }
            continue;
        }
        ret = qcow2_get_refcount(bs, (e & L2E_OFFSET_MASK) >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        ne = rc == 1 ? (e | QCOW_OFLAG_COPIED) : (e & ~QCOW_OFLAG_COPIED);
        if (ne != e) {
            qcow2_l2_set(s, table, i, ne);
            *changed = true;
        }
    }
    return 0;
}

/*
 * Pin the L2 table of L1 entry @l1i for writing: allocate it when missing,
 * copy it when shared with a snapshot. Invariants 1-3: the new table and
 * its refcount are durable before the L1 entry names it; the old shared
 * table's refcount drops only after that (deferred).
 */
static int l2_get_for_write(BlockDriverState *bs, uint64_t l1i, void **table)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1e, old_off;
    int64_t new_off;
    void *old = NULL;
    bool changed = false;
    int ret;

    *table = NULL;
    if (l1i >= s->l1_size) {
        ret = qcow2_grow_l1_table(bs, l1i + 1);
        if (ret < 0) {
            return ret;
        }
    }
    l1e = s->l1_table[l1i];
    old_off = l1e & L1E_OFFSET_MASK;
    if (old_off && (l1e & QCOW_OFLAG_COPIED)) {
        return l2_load(bs, l1i, table, false);
    }
    if (old_off) {
        ret = l2_load(bs, l1i, &old, false);
        if (ret < 0) {
            return ret;
        }
    }
    new_off = qcow2_alloc_clusters(bs, s->cluster_size);
    if (new_off < 0) {
        qcow2_cache_put(s->l2_cache, &old);
        return (int)new_off;
    }
    ret = qcow2_check_overlap(bs, (uint64_t)new_off, s->cluster_size);
    if (ret < 0) {
        qcow2_cache_put(s->l2_cache, &old);
        return ret;
    }
    ret = qcow2_cache_get_empty(bs, s->l2_cache, (uint64_t)new_off, table);
    if (ret < 0) {
        qcow2_cache_put(s->l2_cache, &old);
        return ret;
    }
    if (old) {
        memcpy(*table, old, s->cluster_size);
        qcow2_cache_put(s->l2_cache, &old);
        /* Snapshot tables may carry stale COPIED flags: recompute them. */
        ret = l2_fix_copied_flags(bs, *table, &changed);
        if (ret < 0) {
            goto fail;
        }
    } else {
        memset(*table, 0, s->cluster_size);
    }
    qcow2_cache_mark_dirty(s->l2_cache, *table);

    ret = qcow2_l2_sync(bs);
    if (ret < 0) {
        goto fail;
    }
    s->l1_table[l1i] = (uint64_t)new_off | QCOW_OFLAG_COPIED;
    ret = qcow2_write_l1_entries(bs, (uint32_t)l1i, 1);
    if (ret < 0) {
        s->l1_table[l1i] = l1e;
        goto fail;
    }
    if (old_off) {
        ret = qcow2_free_clusters_later(bs, old_off, s->cluster_size, false);
        if (ret < 0) {
            goto fail;
        }
    }
    return 0;

fail:
    qcow2_cache_put(s->l2_cache, table);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Mapping                                                             */

Qcow2SubclusterType qcow2_get_subcluster_type(const BDRVQcow2State *s, uint64_t entry,
                                              uint64_t bitmap, int sc)
{
    bool has_off = (entry & L2E_OFFSET_MASK) != 0;

    if (entry & QCOW_OFLAG_COMPRESSED) {
        return (s->extended_l2 && bitmap) ? QCOW2_SC_INVALID : QCOW2_SC_COMPRESSED;
    }
    if (!s->extended_l2) {
        if (entry & QCOW_OFLAG_ZERO) {
            return has_off ? QCOW2_SC_ZERO_ALLOC : QCOW2_SC_ZERO_PLAIN;
        }
        return has_off ? QCOW2_SC_NORMAL : QCOW2_SC_UNALLOCATED_PLAIN;
    }
    if ((bitmap >> 32) & bitmap) {
        return QCOW2_SC_INVALID;
    }
    if ((bitmap >> (32 + sc)) & 1) {
        return has_off ? QCOW2_SC_ZERO_ALLOC : QCOW2_SC_ZERO_PLAIN;
    }
    if ((bitmap >> sc) & 1) {
        return has_off ? QCOW2_SC_NORMAL : QCOW2_SC_INVALID;
    }
    return has_off ? QCOW2_SC_UNALLOCATED_ALLOC : QCOW2_SC_UNALLOCATED_PLAIN;
}

static bool type_has_host(Qcow2SubclusterType t)
{
    return t == QCOW2_SC_NORMAL || t == QCOW2_SC_ZERO_ALLOC || t == QCOW2_SC_UNALLOCATED_ALLOC;
}

/*
 * Both lookups in one: @peek (a shared read) takes only cached tables,
 * pins nothing and leaves corruption to the exclusive path to report.
 */
static int host_offset(BlockDriverState *bs, uint64_t offset, uint64_t *bytes, uint64_t *host,
                       Qcow2SubclusterType *type, bool peek)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t table_span = (uint64_t)s->l2_size << s->cluster_bits;
    uint64_t max = MIN(*bytes, table_span - (offset & (table_span - 1)));
    uint32_t l2i = qcow2_l2_index(s, offset);
    uint64_t in_cluster = qcow2_offset_into_cluster(s, offset);
    int sc = (int)(in_cluster >> s->subcluster_bits);
    uint64_t done, first_host = 0;
    uint64_t entry, bitmap;
    Qcow2SubclusterType t;
    void *table;
    int ret;

    *host = 0;
    ret = l2_load(bs, qcow2_l1_index(s, offset), &table, peek);
    if (ret < 0) {
        return ret;
    }
    if (!table) {
        *type = QCOW2_SC_UNALLOCATED_PLAIN;
        *bytes = max;
        return 0;
    }
    entry = qcow2_l2_get(s, table, l2i);
    bitmap = qcow2_l2_get_bitmap(s, table, l2i);
    t = qcow2_get_subcluster_type(s, entry, bitmap, sc);
    if (peek && (t == QCOW2_SC_INVALID ||
                 (type_has_host(t) && qcow2_offset_into_cluster(s, entry & L2E_OFFSET_MASK)))) {
        return -EAGAIN;
    }
    if (t == QCOW2_SC_INVALID) {
        qcow2_cache_put(s->l2_cache, &table);
        return qcow2_signal_corruption(bs, "invalid L2 entry 0x%llx (bitmap 0x%llx) for guest "
                                       "offset 0x%llx", (unsigned long long)entry,
                                       (unsigned long long)bitmap,
                                       (unsigned long long)offset);
    }
    if (type_has_host(t)) {
        first_host = entry & L2E_OFFSET_MASK;
        if (qcow2_offset_into_cluster(s, first_host)) {
            qcow2_cache_put(s->l2_cache, &table);
            return qcow2_signal_corruption(bs, "data cluster offset 0x%llx (guest offset "
                                           "0x%llx) is not cluster-aligned",
                                           (unsigned long long)first_host,
                                           (unsigned long long)offset);
        }
        *host = first_host + in_cluster;
    }
    if (t == QCOW2_SC_COMPRESSED) {
        /* One compressed cluster at a time: each is decompressed on its own. */
        *host = entry;
        *type = t;
        *bytes = MIN(max, s->cluster_size - in_cluster);
        if (!peek) {
            qcow2_cache_put(s->l2_cache, &table);
        }
        return 0;
    }

    /* Extend over following subclusters (and clusters) of the same kind. */
    done = MIN(max, s->subcluster_size - (in_cluster & (s->subcluster_size - 1)));
    {
        uint32_t i = l2i;
        int j = sc + 1;
        uint64_t e = entry, b = bitmap;

        while (done < max) {
            Qcow2SubclusterType nt;
            if (j >= s->subclusters_per_cluster) {
                i++;
                j = 0;
                if (i >= s->l2_size) {
                    break;
                }
                e = qcow2_l2_get(s, table, i);
                b = qcow2_l2_get_bitmap(s, table, i);
            }
            nt = qcow2_get_subcluster_type(s, e, b, j);
            if (nt != t) {
                break;
            }
            if (type_has_host(t)) {
                uint64_t expect = first_host + ((uint64_t)(i - l2i) << s->cluster_bits);
                if ((e & L2E_OFFSET_MASK) != expect) {
                    break;
                }
            }
            done = MIN(max, done + s->subcluster_size);
            j++;
        }
    }
    if (!peek) {
        qcow2_cache_put(s->l2_cache, &table);
    }
    *type = t;
    *bytes = done;
    return 0;
}

int qcow2_get_host_offset(BlockDriverState *bs, uint64_t offset, uint64_t *bytes,
                          uint64_t *host, Qcow2SubclusterType *type)
{
    return host_offset(bs, offset, bytes, host, type, false);
}

int qcow2_peek_host_offset(BlockDriverState *bs, uint64_t offset, uint64_t *bytes,
                           uint64_t *host, Qcow2SubclusterType *type)
{
    return host_offset(bs, offset, bytes, host, type, true);
}

/* An entry a shared write may overwrite in place: data, unshared, no zero flag. */
static bool entry_plain_in_place(const BDRVQcow2State *s, uint64_t entry)
{
    return entry_in_place(s, entry) && !(entry & QCOW_OFLAG_ZERO) &&
           !qcow2_offset_into_cluster(s, entry & L2E_OFFSET_MASK);
}

int qcow2_peek_in_place(BlockDriverState *bs, uint64_t offset, uint64_t *bytes, uint64_t *host)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t table_span = (uint64_t)s->l2_size << s->cluster_bits;
    uint64_t max = MIN(*bytes, table_span - (offset & (table_span - 1)));
    uint64_t in_cluster = qcow2_offset_into_cluster(s, offset);
    uint32_t l2i = qcow2_l2_index(s, offset);
    uint64_t first, len;
    void *table;
    int ret;

    /* Extended L2 entries keep per-subcluster state a write may have to change. */
    if (s->extended_l2) {
        return -EAGAIN;
    }
    ret = l2_load(bs, qcow2_l1_index(s, offset), &table, true);
    if (ret < 0 || !table) {
        return -EAGAIN;
    }
    first = qcow2_l2_get(s, table, l2i);
    if (!entry_plain_in_place(s, first)) {
        return -EAGAIN;
    }
    len = s->cluster_size - in_cluster;
    for (uint32_t k = 1; len < max; k++) {
        uint64_t e = qcow2_l2_get(s, table, l2i + k);
        if (!entry_plain_in_place(s, e) ||
            (e & L2E_OFFSET_MASK) != (first & L2E_OFFSET_MASK) + ((uint64_t)k << s->cluster_bits)) {
            break;
        }
        len += s->cluster_size;
    }
    *bytes = MIN(len, max);
    *host = (first & L2E_OFFSET_MASK) + in_cluster;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Compressed clusters                                                 */

static int inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    z_stream z;
    int zr;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -12) != Z_OK) {
        return -ENOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    zr = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    /* The input is padded to a sector: a full output buffer is success. */
    if (zr == Z_STREAM_END || ((zr == Z_BUF_ERROR || zr == Z_OK) && z.avail_out == 0)) {
        return z.avail_out == 0 ? 0 : -EIO;
    }
    return -EIO;
}

#ifdef CONFIG_ZSTD
static int zstd_decompress_cluster(BDRVQcow2State *s, const uint8_t *in, size_t in_len,
                                   uint8_t *out, size_t out_len)
{
    ZSTD_inBuffer ib = { in, in_len, 0 };
    ZSTD_outBuffer ob = { out, out_len, 0 };
    size_t r = 0;

    if (!s->zstd_dctx) {
        s->zstd_dctx = ZSTD_createDCtx();
        if (!s->zstd_dctx) {
            return -ENOMEM;
        }
    }
    ZSTD_DCtx_reset(s->zstd_dctx, ZSTD_reset_session_only);
    /* Frames may follow each other; stop once the cluster is complete. */
    while (ob.pos < ob.size && ib.pos < ib.size) {
        r = ZSTD_decompressStream(s->zstd_dctx, &ob, &ib);
        if (ZSTD_isError(r)) {
            return -EIO;
        }
        if (r == 0 && ob.pos < ob.size && ib.pos >= ib.size) {
            break;
        }
    }
    /*
     * A frame that still has output to give once the cluster is full
     * inflates past its bounds: corrupt, as qemu-img 7.2 also finds it.
     */
    return ob.pos == ob.size && r == 0 ? 0 : -EIO;
}
#endif

int qcow2_decompress_cluster(BlockDriverState *bs, uint64_t entry)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t coff, csize;
    int ret;

    if (s->dbuf_entry == entry) {
        return 0;
    }
    qcow2_parse_compressed(s, entry, &coff, &csize);
    if (coff == 0 || coff + csize > QCOW2_MAX_CLUSTER_OFFSET || csize > 2ull * s->cluster_size) {
        return qcow2_signal_corruption(bs, "compressed cluster entry 0x%llx is out of range",
                                       (unsigned long long)entry);
    }
    ret = bdrv_pread(bs->file, coff, s->cbuf, csize);
    if (ret < 0) {
        return ret;
    }
    s->dbuf_entry = 0;
    if (s->compression_type == QCOW2_COMPRESSION_ZLIB) {
        ret = inflate_raw(s->cbuf, csize, s->dbuf, s->cluster_size);
    } else {
#ifdef CONFIG_ZSTD
        ret = zstd_decompress_cluster(s, s->cbuf, csize, s->dbuf, s->cluster_size);
#else
        return -ENOTSUP;
#endif
    }
    if (ret < 0) {
        return ret;
    }
    s->dbuf_entry = entry;
    return 0;
}

/*
 * Compress @in (@in_len bytes) into @out, at most @out_max bytes, the way
 * the image's compression type says: zlib as a raw deflate stream with a
 * 4 KiB window (QEMU inflates with that window, so a larger one would
 * produce data it cannot read), or one zstd frame. Returns the compressed
 * length, -ENOSPC when it does not fit, or another negative errno.
 */
static int64_t compress_cluster(BDRVQcow2State *s, const uint8_t *in, size_t in_len,
                                uint8_t *out, size_t out_max)
{
    if (s->compression_type == QCOW2_COMPRESSION_ZLIB) {
        z_stream *z = s->deflate_stream;
        int zr;

        if (!z) {
            z = calloc(1, sizeof(*z));
            if (!z) {
                return -ENOMEM;
            }
            if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                             Z_DEFAULT_STRATEGY) != Z_OK) {
                free(z);
                return -ENOMEM;
            }
            s->deflate_stream = z;
        } else if (deflateReset(z) != Z_OK) {
            return -EIO;
        }
        z->next_in = (Bytef *)in;
        z->avail_in = (uInt)in_len;
        z->next_out = out;
        z->avail_out = (uInt)out_max;
        zr = deflate(z, Z_FINISH);
        if (zr == Z_STREAM_END) {
            return (int64_t)(out_max - z->avail_out);
        }
        return zr == Z_OK || zr == Z_BUF_ERROR ? -ENOSPC : -EIO;
    }
#ifdef CONFIG_ZSTD
    {
        size_t r;

        if (!s->zstd_cctx) {
            s->zstd_cctx = ZSTD_createCCtx();
            if (!s->zstd_cctx) {
                return -ENOMEM;
            }
        }
        r = ZSTD_compressCCtx(s->zstd_cctx, out, out_max, in, in_len, ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(r)) {
            return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ? -ENOSPC : -EIO;
        }
        return (int64_t)r;
    }
#else
    return -ENOTSUP;
#endif
}

void qcow2_compress_close(BDRVQcow2State *s)
{
    if (s->deflate_stream) {
        deflateEnd(s->deflate_stream);
        free(s->deflate_stream);
        s->deflate_stream = NULL;
    }
#ifdef CONFIG_ZSTD
    if (s->zstd_cctx) {
        ZSTD_freeCCtx(s->zstd_cctx);
    }
#endif
    s->zstd_cctx = NULL;
}

int qcow2_write_compressed(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    const uint8_t *in;
    uint8_t *gathered = NULL, *out = NULL;
    uint64_t old, entry, nb_csectors;
    uint32_t l2i = qcow2_l2_index(s, offset);
    void *table = NULL;
    int64_t clen, host;
    int ret;

    if (s->corrupt) {
        return -EIO;
    }
    if (qcow2_offset_into_cluster(s, offset) || qiov->size == 0 || qiov->size > cs) {
        return -EINVAL;
    }
    /*
     * Data that does not shrink at all is stored as it is. Anything
     * smaller is worth storing compressed, even by a few bytes: compressed
     * clusters are packed byte by byte into host clusters.
     */
    out = malloc(cs - 1);
    if (!out) {
        ret = -ENOMEM;
        goto out;
    }
    if (qiov->niov == 1 && qiov->size == cs) {
        /* The usual case, one whole-cluster buffer: compressed where it is. */
        in = qiov->iov[0].iov_base;
    } else {
        /* Gathered; a partial last cluster of the image compresses as zeros after it. */
        gathered = calloc(1, cs);
        if (!gathered) {
            ret = -ENOMEM;
            goto out;
        }
        qiov_to_buf(qiov, 0, gathered, qiov->size);
        in = gathered;
    }
    clen = compress_cluster(s, in, cs, out, cs - 1);
    if (clen == -ENOSPC) {
        ret = qcow2_write_guest(bs, offset, qiov);
        goto out;
    }
    if (clen < 0) {
        ret = (int)clen;
        goto out;
    }
    ret = qcow2_mark_dirty(bs);
    if (ret < 0) {
        goto out;
    }
    ret = l2_get_for_write(bs, qcow2_l1_index(s, offset), &table);
    if (ret < 0) {
        goto out;
    }
    host = qcow2_alloc_compressed_bytes(bs, (uint64_t)clen);
    if (host < 0) {
        ret = (int)host;
        goto out;
    }
    ret = qcow2_check_overlap(bs, (uint64_t)host, (uint64_t)clen);
    if (ret == 0) {
        /* Invariant 5: the data is in place before the entry names it. */
        ret = bdrv_pwrite(bs->file, (uint64_t)host, out, (size_t)clen);
    }
    if (ret < 0) {
        /* The bytes stay counted but unreferenced: a leak at worst. */
        goto out;
    }
    nb_csectors = (((uint64_t)host + (uint64_t)clen - 1) >> 9) - ((uint64_t)host >> 9) + 1;
    entry = QCOW_OFLAG_COMPRESSED | ((nb_csectors - 1) << s->csize_shift) | (uint64_t)host;
    old = qcow2_l2_get(s, table, l2i);
    qcow2_l2_set(s, table, l2i, entry);
    if (s->extended_l2) {
        /* The subcluster bitmap of a compressed cluster is reserved: all zero. */
        qcow2_l2_set_bitmap(s, table, l2i, 0);
    }
    qcow2_cache_mark_dirty(s->l2_cache, table);
    /* The decompressed-cluster cache may hold data once stored under this entry. */
    s->dbuf_entry = 0;
    s->compressed_tail = true;
    /* Invariant 4: what the entry named before is released once the entry is durable. */
    ret = qcow2_free_l2_entry_later(bs, old, false);
out:
    qcow2_cache_put(s->l2_cache, &table);
    free(gathered);
    free(out);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Writes                                                              */

/*
 * Read what the guest currently sees at [off, off+len) into a new buffer
 * (the copy-on-write source). *buf NULL when @len is 0.
 */
static int read_fill(BlockDriverState *bs, uint64_t off, uint64_t len, uint8_t **buf)
{
    QBIOVector q;
    int ret;

    *buf = NULL;
    if (len == 0) {
        return 0;
    }
    *buf = malloc(len);
    if (!*buf) {
        return -ENOMEM;
    }
    qiov_init_buf(&q, *buf, len);
    ret = qcow2_read_guest(bs, off, &q);
    if (ret < 0) {
        free(*buf);
        *buf = NULL;
    }
    return ret;
}

/* Write head fill + [pos, pos+len) of @qiov + tail fill at @host in one request. */
static int write_with_fills(BlockDriverState *bs, uint64_t host, const uint8_t *head,
                            uint64_t head_len, QBIOVector *qiov, size_t pos, size_t len,
                            const uint8_t *tail, uint64_t tail_len)
{
    QBIOVector q;
    int ret;

    ret = qcow2_check_overlap(bs, host, head_len + len + tail_len);
    if (ret < 0) {
        return ret;
    }
    ret = qiov_init(&q, qiov->niov + 2);
    if (ret < 0) {
        return ret;
    }
    if (head_len) {
        ret = qiov_add(&q, (void *)head, head_len);
    }
    if (ret == 0) {
        ret = qiov_add_slice(&q, qiov, pos, len);
    }
    if (ret == 0 && tail_len) {
        ret = qiov_add(&q, (void *)tail, tail_len);
    }
    if (ret == 0) {
        ret = bdrv_pwritev(bs->file, host, &q);
    }
    qiov_destroy(&q);
    return ret;
}

/*
 * The subcluster-granular fills of an in-place or extended-L2 write: the
 * part of the first touched subcluster before @start and of the last one
 * after @end, when those subclusters do not hold data yet.
 */
static void sc_fill_range(const BDRVQcow2State *s, uint64_t entry, uint64_t bitmap,
                          uint64_t cluster_start, uint64_t start, uint64_t end,
                          uint64_t *head_from, uint64_t *tail_to)
{
    uint64_t scs = s->subcluster_size;
    uint64_t a = ROUND_DOWN(start - cluster_start, scs);
    uint64_t b = ROUND_UP(end - cluster_start, scs);
    Qcow2SubclusterType t;

    *head_from = start;
    *tail_to = end;
    if (start - cluster_start > a) {
        t = qcow2_get_subcluster_type(s, entry, bitmap, (int)(a / scs));
        if (t != QCOW2_SC_NORMAL) {
            *head_from = cluster_start + a;
        }
    }
    if (b > end - cluster_start) {
        t = qcow2_get_subcluster_type(s, entry, bitmap, (int)((b - 1) / scs));
        if (t != QCOW2_SC_NORMAL) {
            *tail_to = cluster_start + b;
        }
    }
}

/*
 * Write [off, off+len) (inside one L2 table) to clusters that are ours and
 * contiguous on the host: data in place, zero or unallocated subclusters
 * at the edges completed, flags updated.
 */
static int write_in_place(BlockDriverState *bs, void *table, uint32_t l2i, uint32_t n,
                          uint64_t off, uint64_t len, QBIOVector *qiov, size_t pos)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t c0 = qcow2_start_of_cluster(s, off);
    uint64_t clast = c0 + ((uint64_t)(n - 1) << s->cluster_bits);
    uint64_t e0 = qcow2_l2_get(s, table, l2i), b0 = qcow2_l2_get_bitmap(s, table, l2i);
    uint64_t el = qcow2_l2_get(s, table, l2i + n - 1);
    uint64_t bl = qcow2_l2_get_bitmap(s, table, l2i + n - 1);
    uint64_t head_from, tail_to, dummy;
    uint8_t *head = NULL, *tail = NULL;
    uint64_t host = (e0 & L2E_OFFSET_MASK) + (off - c0);
    int ret;

    sc_fill_range(s, e0, b0, c0, off, MIN(off + len, c0 + cs), &head_from, &dummy);
    sc_fill_range(s, el, bl, clast, MAX(off, clast), off + len, &dummy, &tail_to);
    ret = read_fill(bs, head_from, off - head_from, &head);
    if (ret == 0) {
        ret = read_fill(bs, off + len, tail_to - (off + len), &tail);
    }
    if (ret == 0) {
        ret = write_with_fills(bs, host - (off - head_from), head, off - head_from, qiov, pos,
                               len, tail, tail_to - (off + len));
    }
    free(head);
    free(tail);
    if (ret < 0) {
        return ret;
    }

    /* Zero flags go, touched subclusters become allocated. */
    for (uint32_t k = 0; k < n; k++) {
        uint64_t cstart = c0 + ((uint64_t)k << s->cluster_bits);
        uint64_t a = MAX(head_from, cstart) - cstart;
        uint64_t b = MIN(tail_to, cstart + cs) - cstart;
        uint64_t e = qcow2_l2_get(s, table, l2i + k);
        uint64_t ne = e & ~QCOW_OFLAG_ZERO;

        if (s->extended_l2) {
            uint64_t bm = qcow2_l2_get_bitmap(s, table, l2i + k);
            uint32_t m = touched_mask(s, a, b);
            uint64_t nbm = (bm | m) & ~((uint64_t)m << 32);
            if (nbm != bm) {
                qcow2_l2_set_bitmap(s, table, l2i + k, nbm);
                qcow2_cache_mark_dirty(s->l2_cache, table);
            }
            ne = e;
        }
        if (ne != e) {
            qcow2_l2_set(s, table, l2i + k, ne);
            qcow2_cache_mark_dirty(s->l2_cache, table);
        }
    }
    return 0;
}

/*
 * Write [off, off+len) (inside one L2 table) to @n clusters that need new
 * host clusters: unallocated, zero, compressed, or shared with a snapshot.
 * The untouched parts are copied from what the guest saw before.
 */
/*
 * Whether the zero fills of new clusters at [host, host+bytes) can be left
 * unwritten: when both fills are zero and the clusters lie wholly past the
 * end of the file, extending the file over them leaves a hole that reads
 * as zero. The file is extended here; the caller then writes the guest
 * data alone. A 4 KiB write into a fresh 64 KiB cluster so writes 4 KiB
 * instead of 64 KiB (bench -w -S 64k wrote 512 MiB, mostly zeros, and
 * waited for them in the closing fdatasync).
 */
static bool past_eof_zero_fills(BlockDriverState *bs, uint64_t host, uint64_t bytes,
                                const uint8_t *head, uint64_t head_len,
                                const uint8_t *tail, uint64_t tail_len)
{
    BdrvError err = { 0 };
    int64_t flen;

    if ((head_len && !buffer_is_zero(head, head_len)) ||
        (tail_len && !buffer_is_zero(tail, tail_len))) {
        return false;
    }
    flen = bdrv_getlength(bs->file);
    if (flen < 0 || host < (uint64_t)flen) {
        return false;
    }
    /* A failure only means the fills are written after all. */
    return bdrv_truncate(bs->file, host + bytes, BDRV_PREALLOC_OFF, &err) == 0;
}

static int write_allocating(BlockDriverState *bs, void *table, uint32_t l2i, uint32_t n,
                            uint64_t off, uint64_t len, QBIOVector *qiov, size_t pos)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t c0 = qcow2_start_of_cluster(s, off);
    uint64_t clast = c0 + ((uint64_t)(n - 1) << s->cluster_bits);
    uint64_t e0 = qcow2_l2_get(s, table, l2i), b0 = qcow2_l2_get_bitmap(s, table, l2i);
    uint64_t el = qcow2_l2_get(s, table, l2i + n - 1);
    uint64_t bl = qcow2_l2_get_bitmap(s, table, l2i + n - 1);
    /* Extended L2 keeps subcluster granularity where no old host cluster must be replaced. */
    bool sub0 = s->extended_l2 && !(e0 & (L2E_OFFSET_MASK | QCOW_OFLAG_COMPRESSED));
    bool subl = s->extended_l2 && !(el & (L2E_OFFSET_MASK | QCOW_OFLAG_COMPRESSED));
    uint64_t head_from = c0, tail_to = clast + cs, dummy;
    uint8_t *head = NULL, *tail = NULL;
    int64_t host;
    int ret;

    if (sub0) {
        sc_fill_range(s, e0, b0, c0, off, MIN(off + len, c0 + cs), &head_from, &dummy);
    }
    if (subl) {
        sc_fill_range(s, el, bl, clast, MAX(off, clast), off + len, &dummy, &tail_to);
    }
    ret = read_fill(bs, head_from, off - head_from, &head);
    if (ret == 0) {
        ret = read_fill(bs, off + len, tail_to - (off + len), &tail);
    }
    if (ret < 0) {
        goto out;
    }
    host = qcow2_alloc_clusters(bs, (uint64_t)n * cs);
    if (host < 0) {
        ret = (int)host;
        goto out;
    }
    if (past_eof_zero_fills(bs, (uint64_t)host, (uint64_t)n * cs, head, off - head_from,
                            tail, tail_to - (off + len))) {
        ret = write_with_fills(bs, (uint64_t)host + (off - c0), NULL, 0, qiov, pos, len,
                               NULL, 0);
    } else {
        ret = write_with_fills(bs, (uint64_t)host + (head_from - c0), head, off - head_from,
                               qiov, pos, len, tail, tail_to - (off + len));
    }
    if (ret < 0) {
        /* The clusters stay allocated but unused: a leak at worst. */
        goto out;
    }

    for (uint32_t k = 0; k < n; k++) {
        uint64_t cstart = c0 + ((uint64_t)k << s->cluster_bits);
        uint64_t old = qcow2_l2_get(s, table, l2i + k);
        uint64_t ne = ((uint64_t)host + ((uint64_t)k << s->cluster_bits)) | QCOW_OFLAG_COPIED;

        if (s->extended_l2) {
            uint64_t bm = qcow2_l2_get_bitmap(s, table, l2i + k);
            bool sub = (k == 0 && sub0) || (k == n - 1 && subl) ||
                       !(old & (L2E_OFFSET_MASK | QCOW_OFLAG_COMPRESSED));
            uint64_t nbm;
            if (sub) {
                uint64_t a = MAX(head_from, cstart) - cstart;
                uint64_t b = MIN(tail_to, cstart + cs) - cstart;
                uint32_t m = touched_mask(s, a, b);
                nbm = (bm | m) & ~((uint64_t)m << 32);
            } else {
                nbm = QCOW_L2_BITMAP_ALL_ALLOC;
            }
            qcow2_l2_set_bitmap(s, table, l2i + k, nbm);
        }
        qcow2_l2_set(s, table, l2i + k, ne);
        /* Invariant 4: the old cluster is released only once this entry is durable. */
        if (old & QCOW_OFLAG_COMPRESSED) {
            s->dbuf_entry = 0;
        }
        ret = qcow2_free_l2_entry_later(bs, old, false);
        if (ret < 0) {
            qcow2_cache_mark_dirty(s->l2_cache, table);
            goto out;
        }
    }
    qcow2_cache_mark_dirty(s->l2_cache, table);
    ret = 0;
out:
    free(head);
    free(tail);
    return ret;
}

int qcow2_write_guest(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t table_span = (uint64_t)s->l2_size << s->cluster_bits;
    size_t pos = 0;
    int ret;

    if (s->corrupt) {
        return -EIO;
    }
    ret = qcow2_mark_dirty(bs);
    if (ret < 0) {
        return ret;
    }
    while (pos < qiov->size) {
        uint64_t off = offset + pos;
        uint64_t end = MIN(offset + qiov->size, ROUND_DOWN(off, table_span) + table_span);
        uint32_t l2i = qcow2_l2_index(s, off);
        void *table;

        ret = l2_get_for_write(bs, qcow2_l1_index(s, off), &table);
        if (ret < 0) {
            return ret;
        }
        while (off < end) {
            uint64_t e = qcow2_l2_get(s, table, l2i);
            bool in_place = entry_in_place(s, e);
            uint32_t n = 1;
            uint64_t run_end, len;

            if (in_place && qcow2_offset_into_cluster(s, e & L2E_OFFSET_MASK)) {
                qcow2_cache_put(s->l2_cache, &table);
                return qcow2_signal_corruption(bs, "data cluster offset 0x%llx is not "
                                               "cluster-aligned",
                                               (unsigned long long)(e & L2E_OFFSET_MASK));
            }
            run_end = qcow2_start_of_cluster(s, off) + s->cluster_size;
            while (run_end < end) {
                uint64_t ne = qcow2_l2_get(s, table, l2i + n);
                if (entry_in_place(s, ne) != in_place) {
                    break;
                }
                if (in_place && (ne & L2E_OFFSET_MASK) !=
                    (e & L2E_OFFSET_MASK) + ((uint64_t)n << s->cluster_bits)) {
                    break;
                }
                n++;
                run_end += s->cluster_size;
            }
            len = MIN(run_end, end) - off;
            if (in_place) {
                ret = write_in_place(bs, table, l2i, n, off, len, qiov, pos);
            } else {
                ret = write_allocating(bs, table, l2i, n, off, len, qiov, pos);
            }
            if (ret < 0) {
                qcow2_cache_put(s->l2_cache, &table);
                return ret;
            }
            off += len;
            pos += len;
            l2i += n;
        }
        qcow2_cache_put(s->l2_cache, &table);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Zero writes and discard                                             */

/* True when all of [off, off+len) already reads as zeros from this image's metadata. */
static bool range_reads_zero(BlockDriverState *bs, uint64_t off, uint64_t len)
{
    while (len) {
        uint64_t n = len, host;
        Qcow2SubclusterType t;

        if (qcow2_get_host_offset(bs, off, &n, &host, &t) < 0) {
            return false;
        }
        if (t != QCOW2_SC_ZERO_PLAIN && t != QCOW2_SC_ZERO_ALLOC &&
            !((t == QCOW2_SC_UNALLOCATED_PLAIN || t == QCOW2_SC_UNALLOCATED_ALLOC) &&
              !bs->backing)) {
            return false;
        }
        off += n;
        len -= n;
    }
    return true;
}

/*
 * Write explicit zeros over [off, off+len) through the normal write path,
 * unless the range reads as zeros already (nothing to store then).
 */
static int write_zero_buffer(BlockDriverState *bs, uint64_t off, uint64_t len)
{
    enum { CHUNK = 1 << 20 };
    uint8_t *zero;
    int ret = 0;

    if (len == 0 || range_reads_zero(bs, off, len)) {
        return 0;
    }
    zero = calloc(1, MIN(len, (uint64_t)CHUNK));
    if (!zero) {
        return -ENOMEM;
    }
    while (len && ret == 0) {
        uint64_t n = MIN(len, (uint64_t)CHUNK);
        QBIOVector q;
        qiov_init_buf(&q, zero, n);
        ret = qcow2_write_guest(bs, off, &q);
        off += n;
        len -= n;
    }
    free(zero);
    return ret;
}

/*
 * Apply @fn's new entry to every whole cluster of [start, end) (cluster
 * aligned), table by table, releasing replaced host clusters later.
 */
typedef bool (*EntryRewrite)(BlockDriverState *bs, uint64_t *entry, uint64_t *bitmap,
                             void *opaque);

static int rewrite_clusters(BlockDriverState *bs, uint64_t start, uint64_t end,
                            EntryRewrite fn, void *opaque, bool discard_file,
                            bool need_table_if_missing)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t table_span = (uint64_t)s->l2_size << s->cluster_bits;
    int ret;

    while (start < end) {
        uint64_t tend = MIN(end, ROUND_DOWN(start, table_span) + table_span);
        uint64_t l1i = qcow2_l1_index(s, start);
        bool have = l1i < s->l1_size && (s->l1_table[l1i] & L1E_OFFSET_MASK);
        void *table;

        if (!have) {
            uint64_t e = 0, b = 0;
            /* Ask what an unallocated cluster becomes; skip the table when nothing. */
            if (!need_table_if_missing || !fn(bs, &e, &b, opaque)) {
                start = tend;
                continue;
            }
        }
        ret = l2_get_for_write(bs, l1i, &table);
        if (ret < 0) {
            return ret;
        }
        for (uint64_t c = start; c < tend; c += s->cluster_size) {
            uint32_t i = qcow2_l2_index(s, c);
            uint64_t old = qcow2_l2_get(s, table, i);
            uint64_t oldb = qcow2_l2_get_bitmap(s, table, i);
            uint64_t ne = old, nb = oldb;

            if (!fn(bs, &ne, &nb, opaque) || (ne == old && nb == oldb)) {
                continue;
            }
            qcow2_l2_set(s, table, i, ne);
            qcow2_l2_set_bitmap(s, table, i, nb);
            qcow2_cache_mark_dirty(s->l2_cache, table);
            if ((old & L2E_OFFSET_MASK) != (ne & L2E_OFFSET_MASK) ||
                (old & QCOW_OFLAG_COMPRESSED)) {
                if (old & QCOW_OFLAG_COMPRESSED) {
                    s->dbuf_entry = 0;
                }
                ret = qcow2_free_l2_entry_later(bs, old, discard_file);
                if (ret < 0) {
                    qcow2_cache_put(s->l2_cache, &table);
                    return ret;
                }
            }
        }
        qcow2_cache_put(s->l2_cache, &table);
        start = tend;
    }
    return 0;
}

/*
 * Zero writes: a zero flag, keeping a host cluster that is ours alone (as
 * QEMU does), unless @opaque points at true (the caller allows unmapping):
 * then the host cluster is released and only the zero flag stays.
 */
static bool zero_rewrite(BlockDriverState *bs, uint64_t *entry, uint64_t *bitmap, void *opaque)
{
    BDRVQcow2State *s = bs->opaque;
    bool keep = !*(const bool *)opaque;
    uint64_t e = *entry;

    if (s->extended_l2) {
        *entry = keep && entry_in_place(s, e) ? e : 0;
        *bitmap = QCOW_L2_BITMAP_ALL_ZEROES;
    } else if (s->qcow_version >= 3) {
        *entry = keep && entry_in_place(s, e) ? (e | QCOW_OFLAG_ZERO) : QCOW_OFLAG_ZERO;
    } else {
        /* v2 without a backing file: an unallocated cluster reads as zeros. */
        *entry = 0;
    }
    return true;
}

int qcow2_zero_guest(BlockDriverState *bs, uint64_t offset, uint64_t bytes, bool unmap)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t end = offset + bytes;
    uint64_t a = ROUND_UP(offset, s->cluster_size);
    uint64_t b = ROUND_DOWN(end, s->cluster_size);
    int ret;

    if (s->corrupt) {
        return -EIO;
    }
    /* The last cluster of an image whose size is not cluster-aligned counts as whole. */
    if (end == s->size && b < end && a <= ROUND_DOWN(end, s->cluster_size)) {
        b = ROUND_UP(end, s->cluster_size);
    }
    if ((s->qcow_version < 3 && bs->backing) || a >= b) {
        return write_zero_buffer(bs, offset, bytes);
    }
    ret = qcow2_mark_dirty(bs);
    if (ret < 0) {
        return ret;
    }
    ret = write_zero_buffer(bs, offset, a - offset);
    if (ret == 0) {
        /* Released clusters are discarded in the file too, as a discard does. */
        ret = rewrite_clusters(bs, a, b, zero_rewrite, &unmap, unmap, s->qcow_version >= 3);
    }
    if (ret == 0 && b < end) {
        ret = write_zero_buffer(bs, b, end - b);
    }
    return ret;
}

typedef struct DiscardOpts {
    bool full;
} DiscardOpts;

static bool discard_rewrite(BlockDriverState *bs, uint64_t *entry, uint64_t *bitmap,
                            void *opaque)
{
    BDRVQcow2State *s = bs->opaque;
    DiscardOpts *d = opaque;
    uint64_t e = *entry;
    bool allocated = (e & QCOW_OFLAG_COMPRESSED) || (e & L2E_OFFSET_MASK);

    if (d->full) {
        *entry = 0;
        *bitmap = 0;
        return true;
    }
    /* A discarded cluster must read as zeros afterwards, never as stale backing data. */
    if (!bs->backing && !allocated) {
        return false;
    }
    if (s->extended_l2) {
        *entry = 0;
        *bitmap = QCOW_L2_BITMAP_ALL_ZEROES;
    } else {
        *entry = s->qcow_version >= 3 ? QCOW_OFLAG_ZERO : 0;
    }
    return true;
}

int qcow2_discard_guest(BlockDriverState *bs, uint64_t offset, uint64_t bytes, bool full)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t end = offset + bytes;
    uint64_t a = ROUND_UP(offset, s->cluster_size);
    uint64_t b = ROUND_DOWN(end, s->cluster_size);
    DiscardOpts d = { .full = full };
    int ret;

    if (s->corrupt) {
        return -EIO;
    }
    /* v2 cannot make a cluster read as zeros over a backing file: do nothing, as QEMU. */
    if (!full && s->qcow_version < 3 && bs->backing) {
        return 0;
    }
    if (end >= s->size && b < end) {
        b = ROUND_UP(end, s->cluster_size);
    }
    if (a >= b) {
        return 0;
    }
    ret = qcow2_mark_dirty(bs);
    if (ret < 0) {
        return ret;
    }
    return rewrite_clusters(bs, a, b, discard_rewrite, &d, true,
                            !full && bs->backing != NULL);
}

/* ------------------------------------------------------------------ */
/* L1 growth, preallocation, shrinking                                 */

int qcow2_grow_l1_table(BlockDriverState *bs, uint64_t min_size)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old_off = s->l1_table_offset;
    uint32_t old_size = s->l1_size;
    uint64_t bytes;
    int64_t new_off;
    uint64_t *nt;
    uint8_t *raw, hdr[12];
    int ret;

    if (min_size <= s->l1_size) {
        return 0;
    }
    if (min_size > QCOW2_MAX_L1_SIZE / 8) {
        return -EFBIG;
    }
    bytes = min_size * 8;
    nt = calloc(min_size, 8);
    raw = calloc(1, ROUND_UP(bytes, 512));
    if (!nt || !raw) {
        free(nt);
        free(raw);
        return -ENOMEM;
    }
    memcpy(nt, s->l1_table, (size_t)s->l1_size * 8);
    for (uint64_t i = 0; i < min_size; i++) {
        be64_store(raw + 8 * i, nt[i]);
    }
    new_off = qcow2_alloc_clusters(bs, bytes);
    if (new_off < 0) {
        ret = (int)new_off;
        goto out;
    }
    /* Invariant 1 and 3: refcounts, then the new table, then the header switch. */
    ret = qcow2_refcounts_sync(bs);
    if (ret == 0) {
        ret = qcow2_check_overlap(bs, (uint64_t)new_off, bytes);
    }
    if (ret == 0) {
        ret = bdrv_pwrite(bs->file, (uint64_t)new_off, raw, bytes);
    }
    if (ret == 0) {
        ret = bdrv_flush(bs->file);
    }
    if (ret < 0) {
        goto out;
    }
    be32_store(hdr, (uint32_t)min_size);
    be64_store(hdr + 4, (uint64_t)new_off);
    ret = qcow2_write_header_field(bs, 36, hdr, sizeof(hdr));
    if (ret < 0) {
        goto out;
    }
    free(s->l1_table);
    s->l1_table = nt;
    nt = NULL;
    s->l1_size = (uint32_t)min_size;
    s->l1_alloc = (uint32_t)min_size;
    s->l1_table_offset = (uint64_t)new_off;
    if (old_size && old_off) {
        ret = qcow2_update_refcount(bs, old_off, (uint64_t)old_size * 8, -1);
    }
out:
    free(nt);
    free(raw);
    return ret;
}

int qcow2_preallocate(BlockDriverState *bs, uint64_t offset, uint64_t bytes, BdrvPrealloc mode)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t table_span = (uint64_t)s->l2_size << s->cluster_bits;
    uint64_t start = qcow2_start_of_cluster(s, offset);
    uint64_t end = offset + bytes;
    uint64_t host_end = 0;
    int64_t flen;
    int ret;

    while (start < end) {
        uint64_t tend = MIN(end, ROUND_DOWN(start, table_span) + table_span);
        void *table;
        uint64_t c = start;

        ret = l2_get_for_write(bs, qcow2_l1_index(s, start), &table);
        if (ret < 0) {
            return ret;
        }
        while (c < tend) {
            uint32_t i = qcow2_l2_index(s, c);
            uint32_t n = 0;
            int64_t host;

            while (c + ((uint64_t)n << s->cluster_bits) < tend &&
                   !(qcow2_l2_get(s, table, i + n) & (L2E_OFFSET_MASK | QCOW_OFLAG_COMPRESSED))) {
                n++;
            }
            if (n == 0) {
                c += s->cluster_size;
                continue;
            }
            host = qcow2_alloc_clusters(bs, (uint64_t)n << s->cluster_bits);
            if (host < 0) {
                qcow2_cache_put(s->l2_cache, &table);
                return (int)host;
            }
            for (uint32_t k = 0; k < n; k++) {
                uint64_t old = qcow2_l2_get(s, table, i + k);
                uint64_t ne = ((uint64_t)host + ((uint64_t)k << s->cluster_bits)) |
                              QCOW_OFLAG_COPIED;
                if (!s->extended_l2 && (old & QCOW_OFLAG_ZERO)) {
                    ne |= QCOW_OFLAG_ZERO;
                }
                qcow2_l2_set(s, table, i + k, ne);
            }
            qcow2_cache_mark_dirty(s->l2_cache, table);
            if (mode == BDRV_PREALLOC_FALLOC || mode == BDRV_PREALLOC_FULL) {
                int64_t cur = bdrv_getlength(bs->file);
                if (cur > host) {
                    /* Reused space inside the file: make sure it reads as zeros. */
                    ret = bdrv_pwrite_zeroes(bs->file, (uint64_t)host,
                                             (uint64_t)n << s->cluster_bits);
                    if (ret < 0) {
                        qcow2_cache_put(s->l2_cache, &table);
                        return ret;
                    }
                }
            }
            host_end = MAX(host_end, (uint64_t)host + ((uint64_t)n << s->cluster_bits));
            c += (uint64_t)n << s->cluster_bits;
        }
        qcow2_cache_put(s->l2_cache, &table);
        start = tend;
    }
    ret = qcow2_flush_all(bs);
    if (ret < 0) {
        return ret;
    }
    flen = bdrv_getlength(bs->file);
    if (flen < 0) {
        return (int)flen;
    }
    if (host_end > (uint64_t)flen) {
        /* The data clusters lie past the end: extend the file over them. */
        ret = bdrv_truncate(bs->file, host_end,
                            mode == BDRV_PREALLOC_METADATA ? BDRV_PREALLOC_OFF : mode, NULL);
    }
    return ret;
}

int qcow2_shrink_mappings(BlockDriverState *bs, uint64_t new_size)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t from = ROUND_UP(new_size, s->cluster_size);
    uint64_t new_l1 = qcow2_size_to_l1(s, new_size);
    DiscardOpts d = { .full = true };
    int ret;

    /*
     * QEMU's shrink walks the discarded range table by table and allocates
     * a missing L2 table on the way; only the one for the new last L1
     * entry survives. Doing the same keeps the result byte-identical.
     */
    if (from < s->size && qcow2_l1_index(s, from) < new_l1 &&
        !(s->l1_table[qcow2_l1_index(s, from)] & L1E_OFFSET_MASK)) {
        void *table;
        ret = l2_get_for_write(bs, qcow2_l1_index(s, from), &table);
        if (ret < 0) {
            return ret;
        }
        qcow2_cache_put(s->l2_cache, &table);
    }
    if (from < s->size) {
        ret = rewrite_clusters(bs, from, ROUND_UP(s->size, s->cluster_size), discard_rewrite,
                               &d, true, false);
        if (ret < 0) {
            return ret;
        }
    }
    /* L2 tables wholly past the end: unlink them (durably), then free them. */
    if (new_l1 < s->l1_size) {
        ret = qcow2_l2_sync(bs);
        if (ret < 0) {
            return ret;
        }
        for (uint64_t i = new_l1; i < s->l1_size; i++) {
            uint64_t l2 = s->l1_table[i] & L1E_OFFSET_MASK;
            if (!l2) {
                continue;
            }
            s->l1_table[i] = 0;
            qcow2_cache_discard(s->l2_cache, l2);
            ret = qcow2_free_clusters_later(bs, l2, s->cluster_size, true);
            if (ret < 0) {
                return ret;
            }
        }
        ret = qcow2_write_l1_entries(bs, (uint32_t)new_l1, s->l1_size - (uint32_t)new_l1);
        if (ret < 0) {
            return ret;
        }
    }
    return qcow2_process_frees(bs);
}

int qcow2_preallocate_data(BlockDriverState *bs, uint64_t old_size, uint64_t new_size,
                           BdrvPrealloc mode)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t table_span = (uint64_t)s->l2_size << s->cluster_bits;
    uint64_t guest = qcow2_start_of_cluster(s, old_size);
    uint64_t nb_data = (ROUND_UP(new_size, s->cluster_size) - guest) >> s->cluster_bits;
    uint64_t nb_l2 = DIV_ROUND_UP(nb_data, s->l2_size) + 1;
    uint64_t used_end = 0, area_end, host;
    int64_t flen;
    int ret;

    if (nb_data == 0) {
        return 0;
    }
    /* Everything in use stays below the new refcount area. */
    flen = bdrv_getlength(bs->file);
    if (flen < 0) {
        return (int)flen;
    }
    for (uint64_t c = qcow2_size_to_clusters(s, (uint64_t)flen); c > 0; c--) {
        uint64_t rc;
        ret = qcow2_get_refcount(bs, c - 1, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc) {
            used_end = c;
            break;
        }
    }
    ret = qcow2_refcount_area(bs, used_end, nb_data + nb_l2, true, 0, 0, &area_end);
    if (ret == 0) {
        /* The old refcount table is free now; the first new L2 table may take it. */
        ret = qcow2_process_frees(bs);
    }
    if (ret == 0) {
        ret = qcow2_update_refcount(bs, area_end, nb_data << s->cluster_bits, 1);
    }
    if (ret == 0) {
        ret = qcow2_refcounts_sync(bs);
    }
    if (ret == 0) {
        ret = bdrv_truncate(bs->file, area_end + (nb_data << s->cluster_bits), mode, NULL);
    }
    if (ret < 0) {
        return ret;
    }

    /* The part of the first cluster below the old end keeps its content. */
    if (qcow2_offset_into_cluster(s, old_size)) {
        uint8_t *head;
        ret = read_fill(bs, guest, old_size - guest, &head);
        if (ret == 0) {
            ret = bdrv_pwrite(bs->file, area_end, head, old_size - guest);
            free(head);
        }
        if (ret < 0) {
            return ret;
        }
    }

    host = area_end;
    while (nb_data) {
        uint32_t l2i = qcow2_l2_index(s, guest);
        uint64_t n = MIN(nb_data, (uint64_t)s->l2_size - l2i);
        void *table;

        ret = l2_get_for_write(bs, qcow2_l1_index(s, guest), &table);
        if (ret < 0) {
            return ret;
        }
        for (uint64_t k = 0; k < n; k++) {
            uint64_t old = qcow2_l2_get(s, table, l2i + (uint32_t)k);
            qcow2_l2_set(s, table, l2i + (uint32_t)k,
                         (host + (k << s->cluster_bits)) | QCOW_OFLAG_COPIED);
            if (old & (L2E_OFFSET_MASK | QCOW_OFLAG_COMPRESSED)) {
                ret = qcow2_free_l2_entry_later(bs, old, false);
                if (ret < 0) {
                    qcow2_cache_mark_dirty(s->l2_cache, table);
                    qcow2_cache_put(s->l2_cache, &table);
                    return ret;
                }
            }
        }
        qcow2_cache_mark_dirty(s->l2_cache, table);
        qcow2_cache_put(s->l2_cache, &table);
        guest += n << s->cluster_bits;
        host += n << s->cluster_bits;
        nb_data -= n;
        (void)table_span;
    }
    return qcow2_flush_all(bs);
}
