/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmdk.c: the VMware VMDK format: the text descriptor (embedded in a sparse
 * extent or a file of its own), images made of FLAT, SPARSE, VMFSSPARSE and
 * ZERO extents, backing files through parentFileNameHint and CID/parentCID,
 * and the creation of every subformat qemu-img 7.2 creates.
 *
 * The sparse extents themselves (tables, grains, compression) and their
 * write-ordering invariants are in vmdk-sparse.c. This file adds one more
 * ordered write: as QEMU does, the descriptor's CID is renewed (written
 * first) before an image's first change after open, so that overlays whose
 * parentCID recorded the old CID see that their parent changed.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "vmdk.h"

#define VMDK_MAX_EXTENTS 65536

static const char *const vmdk_subformats[] = {
    "monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
    "streamOptimized", NULL
};
static const char *const vmdk_adapter_types[] = {
    "ide", "lsilogic", "buslogic", "legacyESX", NULL
};
static const char *const vmdk_prealloc_choices[] = { "off", "falloc", "full", NULL };

static const BdrvOptDesc vmdk_create_opts[] = {
    { .name = "size", .type = BDRV_OPT_SIZE, .def = "0", .help = "Size of the virtual disk" },
    { .name = "adapter_type", .type = BDRV_OPT_STRING, .def = "ide",
      .help = "Controller named in the descriptor: ide (default), lsilogic, buslogic "
              "or legacyESX", .choices = vmdk_adapter_types },
    { .name = "backing_file", .type = BDRV_OPT_STRING, .help = "Image that unwritten areas are read from" },
    { .name = "backing_fmt", .type = BDRV_OPT_STRING, .help = "Format name of the backing image; only vmdk" },
    { .name = "compat6", .type = BDRV_OPT_BOOL, .def = "off", .help = "Record virtual hardware version 6" },
    { .name = "hwversion", .type = BDRV_OPT_STRING, .help = "Value of ddb.virtualHWVersion in the descriptor" },
    { .name = "toolsversion", .type = BDRV_OPT_STRING, .help = "Value of ddb.toolsVersion in the descriptor" },
    { .name = "subformat", .type = BDRV_OPT_STRING, .def = "monolithicSparse",
      .help = "Extent layout: monolithicSparse (default), monolithicFlat, "
              "twoGbMaxExtentSparse, twoGbMaxExtentFlat or streamOptimized",
      .choices = vmdk_subformats },
    { .name = "zeroed_grain", .type = BDRV_OPT_BOOL, .def = "off",
      .help = "Mark zeroed grains in the grain tables instead of writing zeros" },
    { .name = "preallocation", .type = BDRV_OPT_STRING, .def = "off",
      .help = "What to allocate at creation for flat extents: off, falloc or full",
      .choices = vmdk_prealloc_choices,
      .flags = BDRV_OPT_F_PROTOCOL },
    { 0 }
};

/* ------------------------------------------------------------------ */
/* Probing and the descriptor                                          */

/*
 * QEMU's rule for a descriptor file: after '#' comment lines and lines of
 * spaces (an optional '\r' before the newline), the first line must be
 * exactly "version=1", "version=2" or "version=3". An empty line ("\n"
 * alone) is not a line of spaces and fails, as in QEMU.
 */
int vmdk_probe_text(const uint8_t *buf, int buf_size)
{
    const char *p = (const char *)buf, *end = p + buf_size;

    while (p < end) {
        if (*p == '#') {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                return 0;
            }
            p = nl + 1;
            continue;
        }
        if (*p == ' ') {
            while (p < end && *p == ' ') {
                p++;
            }
            if (p < end && *p == '\r') {
                p++;
            }
            if (p == end || *p != '\n') {
                return 0;
            }
            p++;
            continue;
        }
        for (char v = '1'; v <= '3'; v++) {
            char lf[] = "version=X\n", crlf[] = "version=X\r\n";
            lf[8] = v;
            crlf[8] = v;
            if ((size_t)(end - p) >= strlen(lf) && memcmp(p, lf, strlen(lf)) == 0) {
                return 100;
            }
            if ((size_t)(end - p) >= strlen(crlf) && memcmp(p, crlf, strlen(crlf)) == 0) {
                return 100;
            }
        }
        return 0;
    }
    return 0;
}

static int vmdk_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    (void)filename;
    if (buf_size >= 4 && (memcmp(buf, VMDK4_MAGIC, 4) == 0 || memcmp(buf, VMDK3_MAGIC, 4) == 0)) {
        return 100;
    }
    return vmdk_probe_text(buf, buf_size);
}

void vmdk_desc_free(VmdkDesc *desc)
{
    for (int i = 0; i < desc->nb_extents; i++) {
        free(desc->extents[i].filename);
    }
    free(desc->extents);
    free(desc->parent_hint);
    memset(desc, 0, sizeof(*desc));
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* A hex u32 as QEMU writes CIDs (no prefix, no padding needed). */
static bool parse_hex32(const char *p, const char *end, uint32_t *out)
{
    uint64_t v = 0;

    if (p == end) {
        return false;
    }
    for (; p < end; p++) {
        int d = isdigit((unsigned char)*p) ? *p - '0'
              : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
              : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;
        if (d < 0) {
            return false;
        }
        v = v * 16 + (uint64_t)d;
        if (v > UINT32_MAX) {
            return false;
        }
    }
    *out = (uint32_t)v;
    return true;
}

static bool parse_u64(const char **pp, const char *end, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;

    if (p == end || !isdigit((unsigned char)*p)) {
        return false;
    }
    for (; p < end && isdigit((unsigned char)*p); p++) {
        if (MUL_OVERFLOW(v, 10, &v) || ADD_OVERFLOW(v, (uint64_t)(*p - '0'), &v)) {
            return false;
        }
    }
    *pp = p;
    *out = v;
    return true;
}

static char *dup_range(const char *p, const char *end)
{
    char *s = malloc((size_t)(end - p) + 1);
    if (s) {
        memcpy(s, p, (size_t)(end - p));
        s[end - p] = '\0';
    }
    return s;
}

/* "ACCESS SECTORS TYPE ["FILE" [OFFSET [...]]]" */
static int vmdk_parse_extent_line(const char *p, const char *end, VmdkDesc *desc,
                                  const char *image, BdrvError *err)
{
    const char *line = p;
    VmdkDescExtent x;
    VmdkDescExtent *grown;
    const char *t;

    memset(&x, 0, sizeof(x));
    if (end - p >= 2 && memcmp(p, "RW", 2) == 0 && (end - p == 2 || is_blank(p[2]))) {
        x.access = VMDK_ACCESS_RW;
        p += 2;
    } else if (end - p >= 6 && memcmp(p, "RDONLY", 6) == 0) {
        x.access = VMDK_ACCESS_RDONLY;
        p += 6;
    } else {
        x.access = VMDK_ACCESS_NOACCESS;
        p += 8;
    }
    while (p < end && is_blank(*p)) {
        p++;
    }
    if (!parse_u64(&p, end, &x.sectors) || x.sectors > (uint64_t)INT64_MAX / VMDK_SECTOR) {
        goto invalid;
    }
    while (p < end && is_blank(*p)) {
        p++;
    }
    t = p;
    while (p < end && isalpha((unsigned char)*p)) {
        p++;
    }
    if (p == t || (size_t)(p - t) >= sizeof(x.type) || (p < end && !is_blank(*p))) {
        goto invalid;
    }
    memcpy(x.type, t, (size_t)(p - t));
    while (p < end && is_blank(*p)) {
        p++;
    }
    if (p < end) {
        const char *name_end;
        if (*p == '"') {
            p++;
            name_end = memchr(p, '"', (size_t)(end - p));
            if (!name_end) {
                goto invalid;
            }
        } else {
            name_end = p;
            while (name_end < end && !is_blank(*name_end)) {
                name_end++;
            }
        }
        if (name_end == p) {
            goto invalid;
        }
        x.filename = dup_range(p, name_end);
        if (!x.filename) {
            return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", image);
        }
        p = name_end + (*name_end == '"' ? 1 : 0);
        while (p < end && is_blank(*p)) {
            p++;
        }
        if (p < end) {
            if (!parse_u64(&p, end, &x.offset) ||
                x.offset > (uint64_t)INT64_MAX / VMDK_SECTOR) {
                free(x.filename);
                goto invalid;
            }
            x.has_offset = true;
            /* Partition UUIDs and device names may follow; they change nothing here. */
        }
    }
    if (strcmp(x.type, "ZERO") != 0 && !x.filename) {
        goto invalid;
    }
    if (strcmp(x.type, "FLAT") == 0 && !x.has_offset) {
        free(x.filename);
        goto invalid;
    }
    if (desc->nb_extents >= VMDK_MAX_EXTENTS) {
        free(x.filename);
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': more than %d extents",
                              image, VMDK_MAX_EXTENTS);
    }
    grown = realloc(desc->extents, sizeof(*grown) * (size_t)(desc->nb_extents + 1));
    if (!grown) {
        free(x.filename);
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", image);
    }
    desc->extents = grown;
    desc->extents[desc->nb_extents++] = x;
    return 0;

invalid:
    return bdrv_error_set(err, -EBADIMAGE, "image '%s': Invalid extent line: %.*s", image,
                          (int)MIN(end - line, 200), line);
}

/*
 * Parse a descriptor: '#' comments, blank lines, CRLF line ends, "key =
 * value" lines with or without quotes (unknown keys are left alone: the
 * text itself is kept and only the CID is ever rewritten), and extent
 * lines. The text ends at @len or at the first NUL (embedded descriptors
 * are NUL-padded). Extent lines are skipped unless @want_extents.
 */
int vmdk_desc_parse(const char *text, size_t len, bool want_extents, VmdkDesc *desc,
                    const char *image, BdrvError *err)
{
    const char *p = text;
    const char *stop;
    int ret;

    memset(desc, 0, sizeof(*desc));
    stop = memchr(text, '\0', len);
    if (!stop) {
        stop = text + len;
    }
    while (p < stop) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        const char *le = nl ? nl : stop;
        const char *ls = p;
        const char *eq;

        p = nl ? nl + 1 : stop;
        while (ls < le && (is_blank(*ls))) {
            ls++;
        }
        while (le > ls && (is_blank(le[-1]) || le[-1] == '\r')) {
            le--;
        }
        if (ls == le || *ls == '#') {
            continue;
        }
        if ((le - ls > 2 && memcmp(ls, "RW", 2) == 0 && is_blank(ls[2])) ||
            (le - ls > 6 && memcmp(ls, "RDONLY", 6) == 0 && is_blank(ls[6])) ||
            (le - ls > 8 && memcmp(ls, "NOACCESS", 8) == 0 && is_blank(ls[8]))) {
            if (!want_extents) {
                continue;
            }
            ret = vmdk_parse_extent_line(ls, le, desc, image, err);
            if (ret < 0) {
                vmdk_desc_free(desc);
                return ret;
            }
            continue;
        }
        eq = memchr(ls, '=', (size_t)(le - ls));
        if (!eq) {
            continue;   /* not a setting; VMware tools ignore such lines too */
        }
        {
            const char *ke = eq, *vs = eq + 1, *ve = le;
            size_t klen;
            while (ke > ls && is_blank(ke[-1])) {
                ke--;
            }
            while (vs < ve && is_blank(*vs)) {
                vs++;
            }
            if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
                vs++;
                ve--;
            }
            klen = (size_t)(ke - ls);
#define KEY_IS(k) (klen == strlen(k) && memcmp(ls, k, klen) == 0)
            if (KEY_IS("version")) {
                uint64_t v;
                const char *q = vs;
                desc->version = parse_u64(&q, ve, &v) && q == ve && v <= 100 ? (int)v : -1;
            } else if (KEY_IS("CID")) {
                desc->has_cid = parse_hex32(vs, ve, &desc->cid);
            } else if (KEY_IS("parentCID")) {
                desc->has_parent_cid = parse_hex32(vs, ve, &desc->parent_cid);
            } else if (KEY_IS("createType")) {
                if ((size_t)(ve - vs) >= sizeof(desc->create_type)) {
                    vmdk_desc_free(desc);
                    return bdrv_error_set(err, -EBADIMAGE,
                                          "image '%s': createType is too long", image);
                }
                memcpy(desc->create_type, vs, (size_t)(ve - vs));
                desc->create_type[ve - vs] = '\0';
            } else if (KEY_IS("parentFileNameHint")) {
                free(desc->parent_hint);
                desc->parent_hint = ve > vs ? dup_range(vs, ve) : NULL;
                if (ve > vs && !desc->parent_hint) {
                    vmdk_desc_free(desc);
                    return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", image);
                }
            }
#undef KEY_IS
        }
    }
    return 0;
}

/*
 * An extent file name is taken as QEMU takes it: an absolute name as it
 * is, a relative one from the descriptor's folder. Whether the file may be
 * opened at all (inside the image's folder, a regular file) is the open
 * policy's decision (bdrv_policy_check_path), so that the library's safe
 * default confines extents while a caller that lifts it, as qblock-img
 * does, opens every image qemu-img opens.
 */
int vmdk_resolve_extent_path(char *dest, size_t sz, const char *desc_path, const char *name)
{
    const char *slash = strrchr(desc_path, '/');
    int n;

    if (!*name) {
        return -EINVAL;
    }
    if (name[0] == '/' || !slash) {
        n = snprintf(dest, sz, "%s", name);
    } else {
        n = snprintf(dest, sz, "%.*s/%s", (int)(slash - desc_path), desc_path, name);
    }
    if (n < 0 || (size_t)n >= sz) {
        return -ENAMETOOLONG;
    }
    return 0;
}

static uint32_t vmdk_random_u32(void)
{
    uint32_t v = 0;

    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        v = (uint32_t)time(NULL) * 2654435761u ^ (uint32_t)clock();
    }
    return v;
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */

static void vmdk_free_extents(BDRVVmdkState *s)
{
    for (int i = 0; i < s->nb_extents; i++) {
        VmdkExtent *e = &s->extents[i];
        vmdk_sparse_close(e);
        if (e->owns_file) {
            bdrv_close(e->file);
        }
        free(e->name);
    }
    free(s->extents);
    s->extents = NULL;
    s->nb_extents = 0;
}

static void vmdk_close(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;

    /* Callers flush before closing; this only catches a forgotten flush (errors are lost). */
    for (int i = 0; i < s->nb_extents; i++) {
        if (s->extents[i].pending_buf && !bs->read_only) {
            vmdk_stream_commit(bs, &s->extents[i]);
        }
    }
    vmdk_free_extents(s);
    free(s->desc);
    free(s->grain_buf);
    free(s->cbuf);
    s->desc = NULL;
    s->grain_buf = NULL;
    s->cbuf = NULL;
}

static VmdkExtent *vmdk_add_extent(BDRVVmdkState *s)
{
    VmdkExtent *grown = realloc(s->extents, sizeof(*grown) * (size_t)(s->nb_extents + 1));

    if (!grown) {
        return NULL;
    }
    s->extents = grown;
    memset(&s->extents[s->nb_extents], 0, sizeof(VmdkExtent));
    s->extents[s->nb_extents].pending_g = UINT64_MAX;
    return &s->extents[s->nb_extents++];
}

/* Take what the descriptor says about identity and parents. */
static int vmdk_apply_desc(BlockDriverState *bs, const VmdkDesc *d, BdrvError *err)
{
    BDRVVmdkState *s = bs->opaque;

    s->cid = d->has_cid ? d->cid : 0xFFFFFFFFu;
    s->parent_cid = d->has_parent_cid ? d->parent_cid : 0xFFFFFFFFu;
    snprintf(s->create_type, sizeof(s->create_type), "%s", d->create_type);
    if (d->parent_hint) {
        if (strlen(d->parent_hint) >= sizeof(bs->backing_file)) {
            return bdrv_error_set(err, -EBADIMAGE, "image '%s': parentFileNameHint is too long",
                                  bs->filename);
        }
        snprintf(bs->backing_file, sizeof(bs->backing_file), "%s", d->parent_hint);
        snprintf(bs->backing_format, sizeof(bs->backing_format), "vmdk");
    }
    return 0;
}

/* A monolithic sparse image: bs->file is the only extent, the descriptor is embedded. */
static int vmdk_open_monolithic(BlockDriverState *bs, const uint8_t *head, int flags,
                                BdrvError *err)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = vmdk_add_extent(s);
    VmdkDesc d;
    int ret;

    if (!e) {
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
    }
    e->file = bs->file;
    e->owns_file = false;
    e->access = VMDK_ACCESS_RW;
    e->name = strdup(bs->filename);
    if (!e->name) {
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
    }
    ret = vmdk_sparse_open(bs, e, (flags & BDRV_O_RDWR) != 0, err);
    if (ret < 0) {
        return ret;
    }
    e->start = 0;
    if (e->capacity > (uint64_t)INT64_MAX / VMDK_SECTOR) {
        return bdrv_error_set(err, -EBADIMAGE, "image '%s': capacity %" PRIu64 " is too large",
                              bs->filename, e->capacity);
    }
    e->length = e->capacity * VMDK_SECTOR;
    snprintf(s->create_type, sizeof(s->create_type), "%s",
             e->type == VMDK_EXTENT_COWD ? "vmfsSparse"
             : e->compressed ? "streamOptimized" : "monolithicSparse");
    s->cid = 0xFFFFFFFFu;
    s->parent_cid = 0xFFFFFFFFu;

    /* The embedded descriptor: its extent lines are ignored (the file is the extent). */
    if (e->type == VMDK_EXTENT_SPARSE) {
        uint64_t doff = le64_load(head + 0x1C), dsize = le64_load(head + 0x24);
        int64_t len = bdrv_getlength(bs->file);
        /*
         * A descriptor that lies (partly) past the end of the file is read as
         * far as it goes, or ignored, as QEMU does: it only names the CID and
         * the parent, never the layout of a monolithic image.
         */
        if (doff && dsize && len >= 0 && doff < (uint64_t)len / VMDK_SECTOR) {
            uint64_t bytes = MIN(MIN(dsize, (uint64_t)VMDK_DESC_MAX / VMDK_SECTOR) * VMDK_SECTOR,
                                 (uint64_t)len - doff * VMDK_SECTOR);
            ret = bdrv_policy_check_descriptor(bs, bytes, err);
            if (ret < 0) {
                return ret;
            }
            s->desc = calloc(1, (size_t)bytes + 1);
            if (!s->desc) {
                return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
            }
            ret = bdrv_pread(bs->file, doff * VMDK_SECTOR, s->desc, (size_t)bytes);
            if (ret < 0) {
                return bdrv_error_set(err, ret, "image '%s': cannot read the descriptor",
                                      bs->filename);
            }
            s->desc_file = bs->file;
            s->desc_offset = doff * VMDK_SECTOR;
            s->desc_room = bytes;
            ret = vmdk_desc_parse(s->desc, (size_t)bytes, false, &d, bs->filename, err);
            if (ret < 0) {
                return ret;
            }
            ret = vmdk_apply_desc(bs, &d, err);
            if (d.create_type[0] == '\0') {
                snprintf(s->create_type, sizeof(s->create_type), "%s",
                         e->compressed ? "streamOptimized" : "monolithicSparse");
            }
            vmdk_desc_free(&d);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

static bool vmdk_known_create_type(const char *t)
{
    static const char *const types[] = {
        "monolithicFlat", "monolithicSparse", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
        "2GbMaxExtentSparse", "2GbMaxExtentFlat", "streamOptimized", "vmfs", "vmfsSparse",
        "vmfsThin", "vmfsPreallocated", "vmfsEagerZeroedThick", "custom",
    };
    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        if (strcmp(types[i], t) == 0) {
            return true;
        }
    }
    return false;
}

/* A descriptor file: every extent is a file of its own, named relative to it. */

/* The open file of an earlier extent named @name, or NULL. */
static BlockDriverState *vmdk_find_open_extent(BDRVVmdkState *s, const VmdkExtent *upto,
                                               const char *name)
{
    for (VmdkExtent *e = s->extents; e < upto; e++) {
        if (e->owns_file && e->file && strcmp(e->name, name) == 0) {
            return e->file;
        }
    }
    return NULL;
}

/* Whether any extent of the descriptor that names file @name is read-write. */
static bool vmdk_name_has_rw(const VmdkDesc *d, const char *name)
{
    for (int i = 0; i < d->nb_extents; i++) {
        if (d->extents[i].filename && strcmp(d->extents[i].filename, name) == 0 &&
            d->extents[i].access == VMDK_ACCESS_RW) {
            return true;
        }
    }
    return false;
}

static int vmdk_open_desc_file(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVVmdkState *s = bs->opaque;
    int64_t len = bdrv_getlength(bs->file);
    uint64_t pos = 0;
    VmdkDesc d;
    int ret;

    if (len < 0) {
        return bdrv_error_set(err, (int)len, "image '%s': could not get the file size",
                              bs->filename);
    }
    if (len > VMDK_DESC_MAX) {
        return bdrv_error_set(err, -EBADIMAGE,
                              "image '%s': not a VMDK image (a descriptor file may not exceed "
                              "%d bytes)", bs->filename, VMDK_DESC_MAX);
    }
    ret = bdrv_policy_check_descriptor(bs, (uint64_t)len, err);
    if (ret < 0) {
        return ret;
    }
    s->desc = calloc(1, (size_t)len + 1);
    if (!s->desc) {
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
    }
    ret = len ? bdrv_pread(bs->file, 0, s->desc, (size_t)len) : 0;
    if (ret < 0) {
        return bdrv_error_set(err, ret, "image '%s': cannot read the descriptor", bs->filename);
    }
    /* QEMU pads a descriptor it rewrote to a whole sector with NULs: the text ends there. */
    s->desc_file = bs->file;
    s->desc_offset = 0;
    s->desc_room = 0;
    ret = vmdk_desc_parse(s->desc, (size_t)len, true, &d, bs->filename, err);
    if (ret < 0) {
        return ret;
    }
    if (!d.create_type[0]) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': the descriptor has no createType",
                             bs->filename);
        goto out;
    }
    if (!vmdk_known_create_type(d.create_type)) {
        ret = bdrv_error_set(err, -ENOTSUP, "image '%s': Unsupported image type '%s'",
                             bs->filename, d.create_type);
        goto out;
    }
    if (d.nb_extents == 0) {
        ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': the descriptor lists no extents",
                             bs->filename);
        goto out;
    }
    ret = vmdk_apply_desc(bs, &d, err);
    if (ret < 0) {
        goto out;
    }
    for (int i = 0; i < d.nb_extents; i++) {
        VmdkDescExtent *x = &d.extents[i];
        VmdkExtent *e;
        char path[PATH_MAX];
        bool writable = (flags & BDRV_O_RDWR) && x->access == VMDK_ACCESS_RW;

        e = vmdk_add_extent(s);
        if (!e) {
            ret = bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
            goto out;
        }
        e->access = x->access;
        e->start = pos * VMDK_SECTOR;
        e->length = x->sectors * VMDK_SECTOR;
        if (ADD_OVERFLOW(pos, x->sectors, &pos) || pos > (uint64_t)INT64_MAX / VMDK_SECTOR) {
            ret = bdrv_error_set(err, -EBADIMAGE, "image '%s': the extents are too large",
                                 bs->filename);
            goto out;
        }
        e->name = strdup(x->filename ? x->filename : "");
        if (!e->name) {
            ret = bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
            goto out;
        }
        snprintf(e->desc_type, sizeof(e->desc_type), "%s", x->type);
        if (strcmp(x->type, "ZERO") == 0) {
            e->type = VMDK_EXTENT_ZERO;
            continue;
        }
        if (strcmp(x->type, "FLAT") != 0 && strcmp(x->type, "VMFS") != 0 &&
            strcmp(x->type, "SPARSE") != 0 && strcmp(x->type, "VMFSSPARSE") != 0) {
            ret = bdrv_error_set(err, -ENOTSUP, "image '%s': unsupported extent type '%s'",
                                 bs->filename, x->type);
            goto out;
        }
        ret = vmdk_resolve_extent_path(path, sizeof(path), bs->filename, x->filename);
        if (ret < 0) {
            ret = bdrv_error_set(err, ret == -EINVAL ? -EBADIMAGE : ret,
                                 "image '%s': extent file name '%s' %s", bs->filename,
                                 x->filename, ret == -EINVAL ? "is empty" : "is too long");
            goto out;
        }
        /*
         * A file named by several extents is opened once: its locks would
         * otherwise conflict with each other. It is writable when any of
         * its extents is (each extent's access still decides its writes).
         */
        e->file = vmdk_find_open_extent(s, e, x->filename);
        if (!e->file) {
            bool file_writable = (flags & BDRV_O_RDWR) && vmdk_name_has_rw(&d, x->filename);

            ret = bdrv_policy_check_path(bs, path, "extent", err);
            if (ret < 0) {
                goto out;
            }

            ret = bdrv_file_open_for(&e->file, path, bs->drv,
                                     (flags & ~BDRV_O_RDWR & ~BDRV_O_CREATE) |
                                     (file_writable ? BDRV_O_RDWR : 0), err);
            if (ret < 0) {
                bdrv_error_prefix(err, "image '%s': cannot open extent '%s'", bs->filename,
                                  x->filename);
                goto out;
            }
            e->owns_file = true;
        }
        if (strcmp(x->type, "FLAT") == 0 || strcmp(x->type, "VMFS") == 0) {
            e->type = VMDK_EXTENT_FLAT;
            e->flat_offset = x->offset * VMDK_SECTOR;
        } else {
            ret = vmdk_sparse_open(bs, e, writable, err);
            if (ret < 0) {
                goto out;
            }
        }
    }
    bs->total_sectors = (int64_t)pos;
    ret = 0;
out:
    vmdk_desc_free(&d);
    return ret;
}

static int vmdk_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVVmdkState *s = bs->opaque;
    uint8_t head[512];
    int64_t len = bdrv_getlength(bs->file);
    int ret;

    if (len < 0) {
        return bdrv_error_set(err, (int)len, "image '%s': could not get the file size",
                              bs->filename);
    }
    memset(head, 0, sizeof(head));
    if (len > 0) {
        ret = bdrv_pread(bs->file, 0, head, (size_t)MIN(len, (int64_t)sizeof(head)));
        if (ret < 0) {
            return bdrv_error_set(err, ret, "image '%s': cannot read the header: %s",
                                  bs->filename, strerror(-ret));
        }
    }
    if (len >= 4 && (memcmp(head, VMDK4_MAGIC, 4) == 0 || memcmp(head, VMDK3_MAGIC, 4) == 0)) {
        ret = vmdk_open_monolithic(bs, head, flags, err);
        if (ret == 0) {
            bs->total_sectors = (int64_t)(s->extents[0].length / VMDK_SECTOR);
        }
    } else {
        ret = vmdk_open_desc_file(bs, flags, err);
    }
    if (ret < 0) {
        vmdk_close(bs);
        bs->backing_file[0] = '\0';
        bs->backing_format[0] = '\0';
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

static int64_t vmdk_getlength(BlockDriverState *bs)
{
    return bs->total_sectors * (int64_t)VMDK_SECTOR;
}

/* The extent holding virtual byte @pos (the caller keeps @pos inside the image). */
static VmdkExtent *vmdk_find_extent(BDRVVmdkState *s, uint64_t pos)
{
    int lo = 0, hi = s->nb_extents - 1;

    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s->extents[mid].start <= pos) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    /* Zero-length extents share a start with their successor: skip them. */
    while (lo + 1 < s->nb_extents && s->extents[lo].start + s->extents[lo].length <= pos) {
        lo++;
    }
    return s->nb_extents ? &s->extents[lo] : NULL;
}

/*
 * The parent's CID must still be the parentCID recorded here; QEMU fails
 * reads that reach a parent that changed with EINVAL, and so does this.
 */
static int vmdk_parent_valid(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;

    if (!s->parent_checked) {
        s->parent_checked = true;
        s->parent_ok = 0;
        if (bs->backing && bs->backing->drv == bs->drv) {
            const BDRVVmdkState *ps = bs->backing->opaque;
            if (ps->cid != s->parent_cid) {
                s->parent_ok = -EINVAL;
            }
        }
    }
    return s->parent_ok;
}

int vmdk_read_parent(BlockDriverState *bs, uint64_t vpos, QBIOVector *qiov, size_t qoff,
                     size_t n)
{
    int64_t plen;
    size_t from_parent = 0;
    int ret;

    if (bs->backing) {
        ret = vmdk_parent_valid(bs);
        if (ret < 0) {
            return ret;
        }
        plen = bdrv_getlength(bs->backing);
        if (plen < 0) {
            return (int)plen;
        }
        if (vpos < (uint64_t)plen) {
            QBIOVector part;
            from_parent = (size_t)MIN((uint64_t)n, (uint64_t)plen - vpos);
            /* The parent's length is a whole number of sectors; so is this part. */
            ret = qiov_init_slice(&part, qiov, qoff, from_parent);
            if (ret < 0) {
                return ret;
            }
            ret = bdrv_preadv(bs->backing, vpos, &part);
            qiov_destroy(&part);
            if (ret < 0) {
                return ret;
            }
        }
    }
    if (from_parent < n) {
        qiov_memset(qiov, qoff + from_parent, 0, n - from_parent);
    }
    return 0;
}

/* Replace the value of the CID line of the descriptor text with @cid. */
static char *vmdk_desc_with_cid(const char *desc, uint32_t cid)
{
    const char *p = desc;

    while (*p) {
        const char *ls = p, *nl = strchr(p, '\n');
        const char *le = nl ? nl : p + strlen(p);
        const char *k = ls;

        p = nl ? nl + 1 : le;
        while (k < le && is_blank(*k)) {
            k++;
        }
        if ((size_t)(le - k) > 3 && memcmp(k, "CID", 3) == 0) {
            const char *q = k + 3;
            while (q < le && is_blank(*q)) {
                q++;
            }
            if (q < le && *q == '=') {
                /* Keep the line's own ending (CRLF or LF). */
                const char *ve = le;
                size_t cap;
                char *out;
                if (ve > q && ve[-1] == '\r') {
                    ve--;
                }
                cap = strlen(desc) + 16;
                out = malloc(cap);
                if (!out) {
                    return NULL;
                }
                snprintf(out, cap, "%.*sCID=%" PRIx32 "%s", (int)(k - desc), desc, cid, ve);
                return out;
            }
        }
    }
    return NULL;
}

int vmdk_note_write(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;
    uint32_t cid;
    size_t old_len, new_len;
    char *text;
    int ret;

    if (s->cid_updated || !s->desc) {
        return 0;
    }
    do {
        cid = vmdk_random_u32();
    } while (cid == s->cid || cid == 0xFFFFFFFFu || cid == 0xFFFFFFFEu);
    text = vmdk_desc_with_cid(s->desc, cid);
    if (!text) {
        /* No CID line to renew (or no memory for it): leave the descriptor as it is. */
        s->cid_updated = true;
        return 0;
    }
    old_len = strlen(s->desc);
    new_len = strlen(text);
    if (s->desc_room) {
        char *buf;
        size_t w = MAX(old_len, new_len);
        if (new_len > s->desc_room) {
            free(text);
            s->cid_updated = true;
            return 0;
        }
        buf = calloc(1, w);
        if (!buf) {
            free(text);
            return -ENOMEM;
        }
        memcpy(buf, text, new_len);
        ret = bdrv_pwrite(s->desc_file, s->desc_offset, buf, w);
        free(buf);
    } else {
        ret = bdrv_pwrite(s->desc_file, 0, text, new_len);
        if (ret == 0 && new_len < old_len) {
            ret = bdrv_truncate(s->desc_file, new_len, BDRV_PREALLOC_OFF, NULL);
        }
    }
    if (ret < 0) {
        free(text);
        return ret;
    }
    free(s->desc);
    s->desc = text;
    s->cid = cid;
    s->cid_updated = true;
    return 0;
}

static int vmdk_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVVmdkState *s = bs->opaque;
    size_t done = 0;
    int ret = 0;

    while (done < qiov->size) {
        uint64_t pos = offset + done;
        VmdkExtent *e = vmdk_find_extent(s, pos);
        uint64_t in;
        size_t n;

        if (!e || pos >= e->start + e->length) {
            return -EIO;
        }
        in = pos - e->start;
        n = (size_t)MIN(e->length - in, (uint64_t)(qiov->size - done));
        if (e->access == VMDK_ACCESS_NOACCESS) {
            return -EACCES;
        }
        switch (e->type) {
        case VMDK_EXTENT_ZERO:
            qiov_memset(qiov, done, 0, n);
            break;
        case VMDK_EXTENT_FLAT: {
            QBIOVector part;
            ret = qiov_init_slice(&part, qiov, done, n);
            if (ret == 0) {
                ret = bdrv_preadv(e->file, e->flat_offset + in, &part);
                qiov_destroy(&part);
            }
            break;
        }
        default:
            ret = vmdk_sparse_read(bs, e, in, qiov, done, n);
            break;
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

static int vmdk_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVVmdkState *s = bs->opaque;
    size_t done = 0;
    int ret = 0;

    while (done < qiov->size) {
        uint64_t pos = offset + done;
        VmdkExtent *e = vmdk_find_extent(s, pos);
        uint64_t in;
        size_t n;

        if (!e || pos >= e->start + e->length) {
            return -EIO;
        }
        in = pos - e->start;
        n = (size_t)MIN(e->length - in, (uint64_t)(qiov->size - done));
        if (e->access != VMDK_ACCESS_RW || e->type == VMDK_EXTENT_ZERO) {
            return e->access == VMDK_ACCESS_NOACCESS ? -EACCES : -EROFS;
        }
        if (e->type == VMDK_EXTENT_FLAT) {
            QBIOVector part;
            ret = vmdk_note_write(bs);
            if (ret == 0) {
                ret = qiov_init_slice(&part, qiov, done, n);
            }
            if (ret == 0) {
                ret = bdrv_pwritev(e->file, e->flat_offset + in, &part);
                qiov_destroy(&part);
            }
        } else {
            ret = vmdk_sparse_write(bs, e, in, qiov, done, n);
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

static int vmdk_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVVmdkState *s = bs->opaque;
    uint64_t done = 0;
    int ret = 0;

    while (done < bytes) {
        uint64_t pos = offset + done;
        VmdkExtent *e = vmdk_find_extent(s, pos);
        uint64_t in, n;

        if (!e || pos >= e->start + e->length) {
            return -EIO;
        }
        in = pos - e->start;
        n = MIN(e->length - in, bytes - done);
        if (e->access != VMDK_ACCESS_RW || e->type == VMDK_EXTENT_ZERO) {
            return e->access == VMDK_ACCESS_NOACCESS ? -EACCES : -EROFS;
        }
        if (e->type == VMDK_EXTENT_FLAT) {
            ret = vmdk_note_write(bs);
            if (ret == 0) {
                ret = bdrv_pwrite_zeroes(e->file, e->flat_offset + in, n);
            }
        } else {
            ret = vmdk_sparse_zero(bs, e, in, n);
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

static int vmdk_flush(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;
    int ret = 0;

    for (int i = 0; i < s->nb_extents && ret == 0; i++) {
        ret = vmdk_stream_commit(bs, &s->extents[i]);
    }
    for (int i = 0; i < s->nb_extents && ret == 0; i++) {
        if (s->extents[i].owns_file && !s->extents[i].file->read_only) {
            ret = bdrv_flush(s->extents[i].file);
        }
    }
    return ret;
}

static int vmdk_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    BDRVVmdkState *s = bs->opaque;
    VmdkExtent *e = vmdk_find_extent(s, offset);
    uint64_t in, n;
    int ret;

    if (!e || offset >= e->start + e->length) {
        return -EIO;
    }
    in = offset - e->start;
    n = MIN(e->length - in, bytes);
    switch (e->type) {
    case VMDK_EXTENT_ZERO:
        *pnum = n;
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
    case VMDK_EXTENT_FLAT:
        *pnum = n;
        *map = e->flat_offset + in;
        *file = e->file;
        return bdrv_status_look_through(e->file, *map, pnum, BDRV_BLOCK_DATA |
                                        BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID);
    default:
        ret = vmdk_sparse_status(bs, e, in, n, pnum, map);
        if (ret & BDRV_BLOCK_OFFSET_VALID) {
            *file = e->file;
        }
        return ret;
    }
}

static int vmdk_has_zero_init(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;

    for (int i = 0; i < s->nb_extents; i++) {
        if (s->extents[i].type == VMDK_EXTENT_FLAT && !bdrv_has_zero_init(s->extents[i].file)) {
            return 0;
        }
    }
    return 1;
}

static int64_t vmdk_get_allocated_file_size(BlockDriverState *bs)
{
    BDRVVmdkState *s = bs->opaque;
    int64_t total = bdrv_get_allocated_file_size(bs->file);

    for (int i = 0; i < s->nb_extents && total >= 0; i++) {
        if (s->extents[i].owns_file) {
            int64_t n = bdrv_get_allocated_file_size(s->extents[i].file);
            if (n < 0) {
                return n;
            }
            total += n;
        }
    }
    return total;
}

static int vmdk_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVVmdkState *s = bs->opaque;

    bdi->is_dirty = false;
    if (s->nb_extents && (s->extents[0].type == VMDK_EXTENT_SPARSE ||
                          s->extents[0].type == VMDK_EXTENT_COWD)) {
        bdi->cluster_size = (int)MIN(s->extents[0].grain_sectors * VMDK_SECTOR,
                                     (uint64_t)INT_MAX);
    }
    return 0;
}

/*
 * What qemu-img info lists under the extents: the file each extent was
 * opened from (the image itself for a monolithic one), the descriptor's
 * type word, the bytes it covers and, for extents made of grains, the grain
 * size.
 */
static int vmdk_get_specific_info(BlockDriverState *bs, QBlockSpecificInfo *info,
                                  BdrvError *err)
{
    BDRVVmdkState *s = bs->opaque;
    struct QBlockSpecificVmdk *v = &info->u.vmdk;

    info->fmt_type = QB_FMT_VMDK;
    v->cid = s->cid;
    v->parent_cid = s->parent_cid;
    v->create_type = strdup(s->create_type);
    v->extents = calloc(s->nb_extents ? (size_t)s->nb_extents : 1, sizeof(*v->extents));
    if (!v->create_type || !v->extents) {
        return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
    }
    v->nb_extents = (uint32_t)s->nb_extents;
    for (int i = 0; i < s->nb_extents; i++) {
        const VmdkExtent *e = &s->extents[i];
        struct QBlockSpecificVmdkExtent *x = &v->extents[i];

        x->filename = strdup(e->file ? e->file->filename : "");
        x->format = strdup(e->desc_type);
        if (!x->filename || !x->format) {
            return bdrv_error_set(err, -ENOMEM, "image '%s': out of memory", bs->filename);
        }
        x->virt_size = e->length;
        if (e->type == VMDK_EXTENT_SPARSE || e->type == VMDK_EXTENT_COWD) {
            x->cluster_size = e->grain_sectors * VMDK_SECTOR;
        }
        x->compressed = e->compressed;
    }
    return 0;
}

static int vmdk_check(BlockDriverState *bs, BdrvCheckResult *res, int fix, BdrvError *err)
{
    BDRVVmdkState *s = bs->opaque;

    if (fix) {
        return bdrv_error_set(err, -ENOTSUP, "image '%s': VMDK images cannot be repaired",
                              bs->filename);
    }
    for (int i = 0; i < s->nb_extents; i++) {
        VmdkExtent *e = &s->extents[i];
        if (e->type == VMDK_EXTENT_SPARSE || e->type == VMDK_EXTENT_COWD) {
            int ret = vmdk_sparse_check(bs, e, res, err);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

/* "<dir>/<prefix><suffix><postfix>" as QEMU names extents: "x.vmdk" -> "x-s001.vmdk". */
static int vmdk_extent_name(char *path, size_t psz, char *base, size_t bsz, const char *filename,
                            const char *suffix)
{
    const char *slash = strrchr(filename, '/');
    const char *name = slash ? slash + 1 : filename;
    const char *dot = strrchr(name, '.');
    int pl = dot ? (int)(dot - name) : (int)strlen(name);
    int n;

    n = snprintf(base, bsz, "%.*s%s%s", pl, name, suffix, dot ? dot : "");
    if (n < 0 || (size_t)n >= bsz) {
        return -ENAMETOOLONG;
    }
    n = snprintf(path, psz, "%.*s%s", slash ? (int)(slash - filename + 1) : 0, filename, base);
    return n < 0 || (size_t)n >= psz ? -ENAMETOOLONG : 0;
}

/* The descriptor text qemu-img writes, in its layout and key order. */
static char *vmdk_make_desc(uint32_t cid, uint32_t parent_cid, const char *create_type,
                            const char *parent_hint, const char *extents, const char *hwversion,
                            uint64_t cyls, unsigned heads, const char *adapter,
                            const char *toolsversion)
{
    size_t cap = strlen(extents) + strlen(create_type) + (parent_hint ? strlen(parent_hint) : 0) +
                 strlen(hwversion) + strlen(adapter) + strlen(toolsversion) + 512;
    char *out = malloc(cap);
    int n;

    if (!out) {
        return NULL;
    }
    n = snprintf(out, cap,
                 "# Disk DescriptorFile\n"
                 "version=1\n"
                 "CID=%" PRIx32 "\n"
                 "parentCID=%" PRIx32 "\n"
                 "createType=\"%s\"\n"
                 "%s%s%s\n"
                 "# Extent description\n"
                 "%s"
                 "\n"
                 "# The Disk Data Base\n"
                 "#DDB\n"
                 "\n"
                 "ddb.virtualHWVersion = \"%s\"\n"
                 "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
                 "ddb.geometry.heads = \"%u\"\n"
                 "ddb.geometry.sectors = \"63\"\n"
                 "ddb.adapterType = \"%s\"\n"
                 "ddb.toolsVersion = \"%s\"\n",
                 cid, parent_cid, create_type,
                 parent_hint ? "parentFileNameHint=\"" : "", parent_hint ? parent_hint : "",
                 parent_hint ? "\"" : "", extents, hwversion, cyls, heads, adapter, toolsversion);
    if (n < 0 || (size_t)n >= cap) {
        free(out);
        return NULL;
    }
    return out;
}

/* Append one extent line to the growing @lines. */
static int vmdk_add_line(char **lines, size_t *len, const char *fmt, ...) PRINTF_FMT(3, 4);
static int vmdk_add_line(char **lines, size_t *len, const char *fmt, ...)
{
    char line[PATH_MAX + 64];
    va_list ap;
    char *grown;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return -ENAMETOOLONG;
    }
    grown = realloc(*lines, *len + (size_t)n + 1);
    if (!grown) {
        return -ENOMEM;
    }
    memcpy(grown + *len, line, (size_t)n + 1);
    *lines = grown;
    *len += (size_t)n;
    return 0;
}

/* The CID of the vmdk image @backing (resolved against @filename), for parentCID. */
static int vmdk_backing_cid(const char *filename, const char *backing, int flags, uint32_t *cid,
                            BdrvError *err)
{
    char full[PATH_MAX];
    BlockDriverState *bbs;
    int ret;

    ret = bdrv_resolve_backing_name(full, sizeof(full), filename, backing);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "vmdk: backing file name '%s' is too long", backing);
    }
    ret = bdrv_open(&bbs, full, NULL, (flags & (BDRV_O_NOCACHE | BDRV_O_NATIVE_AIO)) |
                    BDRV_O_NO_BACKING, err);
    if (ret < 0) {
        bdrv_error_prefix(err, "vmdk: could not open backing file '%s'", backing);
        return ret;
    }
    if (strcmp(bdrv_get_format_name(bbs), "vmdk") != 0) {
        bdrv_close(bbs);
        return bdrv_error_set(err, -EINVAL, "vmdk: backing_file must be a vmdk image");
    }
    *cid = ((const BDRVVmdkState *)bbs->opaque)->cid;
    bdrv_close(bbs);
    return 0;
}

static int vmdk_create(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    uint64_t size = ROUND_UP(bdrv_opts_get_size(opts, "size"), VMDK_SECTOR);
    uint64_t sectors = size / VMDK_SECTOR;
    const char *subformat = bdrv_opts_get_str(opts, "subformat");
    const char *adapter = bdrv_opts_get_str(opts, "adapter_type");
    const char *backing = bdrv_opts_get_str(opts, "backing_file");
    const char *backing_fmt = bdrv_opts_get_str(opts, "backing_fmt");
    const char *hwversion = bdrv_opts_get_str(opts, "hwversion");
    const char *toolsversion = bdrv_opts_get_str(opts, "toolsversion");
    bool compat6 = bdrv_opts_get_bool(opts, "compat6");
    bool zeroed_grain = bdrv_opts_get_bool(opts, "zeroed_grain");
    bool flat, split, stream;
    BdrvPrealloc prealloc;
    uint32_t parent_cid = 0xFFFFFFFFu, cid;
    unsigned heads;
    char *lines = NULL, *desc = NULL;
    size_t lines_len = 0;
    BlockDriverState *file = NULL;
    int ret;

    if (!subformat) {
        subformat = "monolithicSparse";
    }
    if (!adapter) {
        adapter = "ide";
    }
    if (!toolsversion) {
        toolsversion = "2147483647";
    }
    if (bdrv_parse_prealloc(bdrv_opts_get(opts, "preallocation"), &prealloc) < 0 ||
        prealloc == BDRV_PREALLOC_METADATA) {
        return bdrv_error_set(err, -EINVAL, "vmdk: invalid preallocation mode '%s'",
                              bdrv_opts_get(opts, "preallocation"));
    }
    flat = strcmp(subformat, "monolithicFlat") == 0 || strcmp(subformat, "twoGbMaxExtentFlat") == 0;
    split = strncmp(subformat, "twoGb", 5) == 0;
    stream = strcmp(subformat, "streamOptimized") == 0;
    if (!flat && !split && !stream && strcmp(subformat, "monolithicSparse") != 0) {
        return bdrv_error_set(err, -EINVAL, "vmdk: invalid parameter value: %s", subformat);
    }
    if (compat6 && hwversion) {
        return bdrv_error_set(err, -EINVAL, "vmdk: compat6 cannot be enabled with hwversion set");
    }
    if (!hwversion) {
        hwversion = compat6 ? "6" : "4";
    }
    if (strchr(hwversion, '"') || strchr(hwversion, '\n') || strchr(toolsversion, '"') ||
        strchr(toolsversion, '\n')) {
        return bdrv_error_set(err, -EINVAL, "vmdk: hwversion and toolsversion may not contain "
                              "quotes or newlines");
    }
    if (sectors > (uint64_t)UINT32_MAX * VMDK_DEFAULT_GRAIN * VMDK_MAX_GTES / 2) {
        return bdrv_error_set(err, -EINVAL, "vmdk: image size %" PRIu64 " is too large", size);
    }
    if (flat && zeroed_grain) {
        return bdrv_error_set(err, -EINVAL, "vmdk: Flat image can't enable zeroed grain");
    }
    if (backing) {
        if (flat) {
            return bdrv_error_set(err, -EINVAL, "vmdk: Flat image can't have backing file");
        }
        if (backing_fmt && strcmp(backing_fmt, "vmdk") != 0) {
            return bdrv_error_set(err, -EINVAL, "vmdk: backing_file must be a vmdk image");
        }
        if (strchr(backing, '"') || strchr(backing, '\n')) {
            return bdrv_error_set(err, -EINVAL, "vmdk: the backing file name may not contain "
                                  "quotes or newlines");
        }
        ret = vmdk_backing_cid(filename, backing, flags, &parent_cid, err);
        if (ret < 0) {
            return ret;
        }
    }
    heads = strcmp(adapter, "ide") == 0 ? 16 : 255;
    do {
        cid = vmdk_random_u32();
    } while (cid == 0xFFFFFFFFu || cid == 0xFFFFFFFEu);

    if (!flat && !split) {
        /* monolithicSparse and streamOptimized: the descriptor lives in the extent. */
        const char *slash = strrchr(filename, '/');
        const char *name = slash ? slash + 1 : filename;
        if (strchr(name, '"')) {
            return bdrv_error_set(err, -EINVAL, "vmdk: file names may not contain quotes");
        }
        ret = vmdk_add_line(&lines, &lines_len, "RW %" PRIu64 " SPARSE \"%s\"\n", sectors, name);
        if (ret < 0) {
            ret = bdrv_error_set(err, ret, "vmdk: out of memory");
            goto out;
        }
        desc = vmdk_make_desc(cid, parent_cid, subformat, backing, lines, hwversion,
                              sectors / (heads * 63), heads, adapter, toolsversion);
        if (!desc) {
            ret = bdrv_error_set(err, -ENOMEM, "vmdk: out of memory");
            goto out;
        }
        ret = vmdk_create_sparse_extent(filename, sectors, zeroed_grain, stream, desc, flags, err);
        goto out;
    }

    /* Separate extent files, then the descriptor file. */
    for (uint64_t done = 0, i = 1; done < sectors || (sectors == 0 && i == 1); i++) {
        uint64_t n = split ? MIN(sectors - done, VMDK_SPLIT_SECTORS) : sectors;
        char path[PATH_MAX], base[PATH_MAX], suffix[16];

        if (split) {
            snprintf(suffix, sizeof(suffix), "-%c%03" PRIu64, flat ? 'f' : 's', i);
        } else {
            snprintf(suffix, sizeof(suffix), "-flat");
        }
        ret = vmdk_extent_name(path, sizeof(path), base, sizeof(base), filename, suffix);
        if (ret == 0 && strchr(base, '"')) {
            ret = -EINVAL;
        }
        if (ret < 0) {
            ret = bdrv_error_set(err, ret, "vmdk: cannot name the extents of '%s'", filename);
            goto out;
        }
        if (flat) {
            ret = bdrv_create_file(path, n * VMDK_SECTOR, prealloc, flags, err);
            if (ret == 0) {
                ret = vmdk_add_line(&lines, &lines_len, "RW %" PRIu64 " FLAT \"%s\" 0\n", n,
                                    base);
            }
        } else {
            ret = vmdk_create_sparse_extent(path, n, zeroed_grain, false, NULL, flags, err);
            if (ret == 0) {
                ret = vmdk_add_line(&lines, &lines_len, "RW %" PRIu64 " SPARSE \"%s\"\n", n,
                                    base);
            }
        }
        if (ret < 0) {
            if (err && err->code == 0) {
                bdrv_error_set(err, ret, "vmdk: cannot create extent '%s'", path);
            }
            goto out;
        }
        done += n;
        if (!split || sectors == 0) {
            break;
        }
    }
    desc = vmdk_make_desc(cid, parent_cid, subformat, backing, lines ? lines : "", hwversion,
                          sectors / (heads * 63), heads, adapter, toolsversion);
    if (!desc) {
        ret = bdrv_error_set(err, -ENOMEM, "vmdk: out of memory");
        goto out;
    }
    ret = bdrv_create_file(filename, 0, BDRV_PREALLOC_OFF, flags, err);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_file_open_for(&file, filename, &bdrv_vmdk, flags | BDRV_O_RDWR, err);
    if (ret < 0) {
        goto out;
    }
    ret = bdrv_pwrite(file, 0, desc, strlen(desc));
    if (ret == 0) {
        ret = bdrv_flush(file);
    }
    if (ret < 0) {
        bdrv_error_set(err, ret, "vmdk: could not write '%s': %s", filename, strerror(-ret));
    }
out:
    bdrv_close(file);
    free(lines);
    free(desc);
    return ret;
}

const BlockDriver bdrv_vmdk = {
    .format_name = "vmdk",
    .instance_size = sizeof(BDRVVmdkState),
    .thread_safe = false,
    .shares_write = false,
    .supports_backing = true,
    .caps = BDRV_CAP_COMPRESSED_READ | BDRV_CAP_COMPRESSED_WRITE,
    .bdrv_probe = vmdk_probe,
    .bdrv_open = vmdk_open,
    .bdrv_close = vmdk_close,
    .bdrv_create = vmdk_create,
    .create_opts = vmdk_create_opts,
    .bdrv_preadv = vmdk_preadv,
    .bdrv_pwritev = vmdk_pwritev,
    .bdrv_pwrite_zeroes = vmdk_pwrite_zeroes,
    .bdrv_flush = vmdk_flush,
    .bdrv_block_status = vmdk_block_status,
    .bdrv_getlength = vmdk_getlength,
    .bdrv_has_zero_init = vmdk_has_zero_init,
    .bdrv_get_allocated_file_size = vmdk_get_allocated_file_size,
    .bdrv_get_info = vmdk_get_info,
    .bdrv_check = vmdk_check,
    .bdrv_get_specific_info = vmdk_get_specific_info,
};
