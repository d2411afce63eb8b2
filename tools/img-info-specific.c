/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* img-info-specific.c: qblock-img info's "Format specific information", in qemu-img's layouts. */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "qblock-img.h"

/*
 * One writer serves both outputs, because qemu-img prints the same tree of
 * dictionaries and lists twice: as pretty JSON (four spaces a level, a comma
 * before each item but the first, the closing bracket on a line of its own
 * even for an empty list) and as indented "key: value" lines (dashes in
 * keys become spaces, list items are named "[i]", a nested dictionary or
 * list puts its items on the lines after its key).
 */
#define SW_MAX_DEPTH 8

typedef struct SpecWriter {
    bool json;
    const char *indent;          /* printed before every JSON line (the chain's nesting) */
    int depth;                   /* the level whose items are being written */
    bool first[SW_MAX_DEPTH];    /* JSON: no item written at that level yet */
    int index[SW_MAX_DEPTH];     /* human: the next list item's number at that level */
} SpecWriter;

static void sw_pad(const SpecWriter *w)
{
    printf("%s%*s", w->json ? w->indent : "", 4 * w->depth, "");
}

/* Start an item: @key in a dictionary, NULL in a list. */
static void sw_item(SpecWriter *w, const char *key)
{
    if (w->json) {
        printf("%s\n", w->first[w->depth] ? "" : ",");
        w->first[w->depth] = false;
        sw_pad(w);
        if (key) {
            json_print_string(stdout, key);
            printf(": ");
        }
        return;
    }
    sw_pad(w);
    if (key) {
        for (const char *c = key; *c; c++) {
            putchar(*c == '-' ? ' ' : *c);
        }
    } else {
        printf("[%d]", w->index[w->depth]++);
    }
    printf(":");
}

static void sw_open(SpecWriter *w, const char *key, bool list)
{
    sw_item(w, key);
    if (w->json) {
        printf(list ? "[" : "{");
    } else {
        printf("\n");
    }
    if (w->depth + 1 < SW_MAX_DEPTH) {
        w->depth++;
    }
    w->first[w->depth] = true;
    w->index[w->depth] = 0;
}

static void sw_close(SpecWriter *w, bool list)
{
    w->depth--;
    if (w->json) {
        printf("\n");
        sw_pad(w);
        printf(list ? "]" : "}");
    }
}

static void sw_str(SpecWriter *w, const char *key, const char *val)
{
    sw_item(w, key);
    if (w->json) {
        json_print_string(stdout, val);
    } else {
        printf(" %s\n", val);
    }
}

static void sw_u64(SpecWriter *w, const char *key, uint64_t val)
{
    sw_item(w, key);
    printf(w->json ? "%" PRIu64 : " %" PRIu64 "\n", val);
}

static void sw_bool(SpecWriter *w, const char *key, bool val)
{
    sw_item(w, key);
    printf(w->json ? "%s" : " %s\n", val ? "true" : "false");
}

/* qcow2, in the order of qemu-img 7.2's dictionary. */
static void spec_qcow2(SpecWriter *w, const struct QBlockSpecificQcow2 *q)
{
    bool v3 = q->version >= 3;

    sw_str(w, "compat", v3 ? "1.1" : "0.10");
    sw_str(w, "compression-type",
           q->compression_type == QBO_FMT_QCOW2_COMPRESSION_ZSTD ? "zstd" : "zlib");
    if (v3) {
        sw_bool(w, "lazy-refcounts", q->lazy_refcounts);
    }
    if (q->nb_bitmaps) {
        sw_open(w, "bitmaps", true);
        for (uint32_t i = 0; i < q->nb_bitmaps; i++) {
            const struct QBlockSpecificQcow2Bitmap *b = &q->bitmaps[i];

            sw_open(w, NULL, false);
            sw_open(w, "flags", true);
            if (b->flags & QB_QCOW2_BITMAP_IN_USE) {
                sw_str(w, NULL, "in-use");
            }
            if (b->flags & QB_QCOW2_BITMAP_AUTO) {
                sw_str(w, NULL, "auto");
            }
            sw_close(w, true);
            sw_str(w, "name", b->name);
            sw_u64(w, "granularity", b->granularity);
            sw_close(w, false);
        }
        sw_close(w, true);
    }
    sw_u64(w, "refcount-bits", q->refcount_bits);
    if (q->data_file) {
        sw_str(w, "data-file", q->data_file);
        sw_bool(w, "data-file-raw", q->data_file_raw);
    }
    if (v3) {
        sw_bool(w, "corrupt", q->corrupt);
        sw_bool(w, "extended-l2", q->extended_l2);
    }
}

static void spec_vmdk(SpecWriter *w, const struct QBlockSpecificVmdk *v)
{
    sw_u64(w, "cid", v->cid);
    sw_u64(w, "parent-cid", v->parent_cid);
    sw_str(w, "create-type", v->create_type);
    sw_open(w, "extents", true);
    for (uint32_t i = 0; i < v->nb_extents; i++) {
        const struct QBlockSpecificVmdkExtent *e = &v->extents[i];

        sw_open(w, NULL, false);
        if (e->compressed) {
            sw_bool(w, "compressed", true);
        }
        sw_u64(w, "virtual-size", e->virt_size);
        sw_str(w, "filename", e->filename);
        if (e->cluster_size) {
            sw_u64(w, "cluster-size", e->cluster_size);
        }
        sw_str(w, "format", e->format);
        sw_close(w, false);
    }
    sw_close(w, true);
}

/*
 * The formats below have no format-specific section in qemu-img 7.2; their
 * facts are libqblock's own and appear in the human output only, so that
 * the JSON output stays what qemu-img prints (README, "qblock-img").
 */
static void spec_qed(SpecWriter *w, const struct QBlockSpecificQed *q)
{
    sw_u64(w, "cluster-size", q->cluster_size);
    sw_u64(w, "table-size", q->table_size);
    sw_bool(w, "need-check", q->need_check);
    if (q->backing_file) {
        sw_str(w, "backing-file", q->backing_file);
        sw_str(w, "backing-file-format", q->backing_fmt ? q->backing_fmt : "probed");
    }
}

static void spec_qcow(SpecWriter *w, const struct QBlockSpecificQcow *q)
{
    sw_u64(w, "cluster-bits", q->cluster_bits);
    sw_u64(w, "l2-bits", q->l2_bits);
    if (q->crypt_method == QB_QCOW_CRYPT_NONE || q->crypt_method == QB_QCOW_CRYPT_AES) {
        sw_str(w, "encryption", q->crypt_method == QB_QCOW_CRYPT_AES ? "aes" : "none");
    } else {
        sw_u64(w, "encryption", q->crypt_method);
    }
}

static void spec_cow(SpecWriter *w, const struct QBlockSpecificCow *c)
{
    sw_u64(w, "version", c->version);
    sw_str(w, "backing-file", c->backing_file);
    sw_u64(w, "backing-file-mtime", c->mtime);
    sw_u64(w, "sector-size", c->sector_size);
}

static void sw_uuid(SpecWriter *w, const char *key, const uint8_t *u)
{
    char buf[37];
    int n = 0;

    for (int i = 0; i < 16; i++) {
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s%02x",
                      i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", u[i]);
    }
    sw_str(w, key, buf);
}

static void spec_vdi(SpecWriter *w, const struct QBlockSpecificVdi *v)
{
    if (v->image_type == QB_VDI_TYPE_DYNAMIC || v->image_type == QB_VDI_TYPE_STATIC) {
        sw_str(w, "image-type", v->image_type == QB_VDI_TYPE_STATIC ? "static" : "dynamic");
    } else {
        sw_u64(w, "image-type", v->image_type);
    }
    sw_u64(w, "block-size", v->block_size);
    sw_u64(w, "blocks-allocated", v->blocks_allocated);
    sw_u64(w, "blocks-total", v->blocks_total);
    sw_uuid(w, "uuid", v->uuid_image);
    sw_uuid(w, "last-snapshot-uuid", v->uuid_last_snap);
    sw_uuid(w, "link-uuid", v->uuid_link);
    sw_uuid(w, "parent-uuid", v->uuid_parent);
}

static void spec_vpc(SpecWriter *w, const struct QBlockSpecificVpc *v)
{
    char buf[32];

    switch (v->disk_type) {
    case QB_VPC_TYPE_FIXED: sw_str(w, "subformat", "fixed"); break;
    case QB_VPC_TYPE_DYNAMIC: sw_str(w, "subformat", "dynamic"); break;
    case QB_VPC_TYPE_DIFFERENCING: sw_str(w, "subformat", "differencing"); break;
    default: sw_u64(w, "subformat", v->disk_type); break;
    }
    sw_str(w, "creator-app", v->creator_app);
    snprintf(buf, sizeof(buf), "%u.%u", v->creator_version >> 16, v->creator_version & 0xffff);
    sw_str(w, "creator-version", buf);
    sw_str(w, "creator-os", v->creator_os);
    snprintf(buf, sizeof(buf), "%u/%u/%u", v->cylinders, v->heads, v->sectors_per_track);
    sw_str(w, "geometry (c/h/s)", buf);
    if (v->block_size) {
        sw_u64(w, "block-size", v->block_size);
    }
    sw_str(w, "size-from", v->size_from_footer ? "footer" : "geometry");
}

static void spec_write(SpecWriter *w, const QBlockSpecificInfo *si)
{
    switch (si->fmt_type) {
    case QB_FMT_QCOW2: spec_qcow2(w, &si->u.qcow2); break;
    case QB_FMT_VMDK: spec_vmdk(w, &si->u.vmdk); break;
    case QB_FMT_QED: spec_qed(w, &si->u.qed); break;
    case QB_FMT_QCOW: spec_qcow(w, &si->u.qcow); break;
    case QB_FMT_COW: spec_cow(w, &si->u.cow); break;
    case QB_FMT_VDI: spec_vdi(w, &si->u.vdi); break;
    case QB_FMT_VPC: spec_vpc(w, &si->u.vpc); break;
    default: break;
    }
}

bool specific_in_json(const QBlockSpecificInfo *si)
{
    return si && (si->fmt_type == QB_FMT_QCOW2 || si->fmt_type == QB_FMT_VMDK);
}

void print_specific_human(const QBlockSpecificInfo *si)
{
    SpecWriter w = { .json = false, .indent = "", .depth = 1 };

    if (!si) {
        return;
    }
    printf("Format specific information:\n");
    spec_write(&w, si);
}

void print_specific_json(const QBlockSpecificInfo *si, const char *indent)
{
    SpecWriter w = { .json = true, .indent = indent, .depth = 1 };

    /* The value of the image's "format-specific" key, which is at depth 1. */
    printf("{");
    w.depth = 2;
    w.first[2] = true;
    sw_str(&w, "type", qb_fmttype2str(si->fmt_type));
    sw_open(&w, "data", false);
    spec_write(&w, si);
    sw_close(&w, false);
    w.depth = 1;
    printf("\n");
    sw_pad(&w);
    printf("}");
}

int specific_get(ImgHandle *h, QBlockSpecificInfo **si)
{
    int ret = qb_info_image_specific_get(h->broker, h->qbs, si);

    if (ret == QB_ERR_NOT_SUPPORTED) {
        *si = NULL;
        return 0;
    }
    if (ret < 0) {
        error_report("Could not read the format-specific information of '%s': %s",
                     h->filename, broker_msg(h->broker));
        return -1;
    }
    return 0;
}
