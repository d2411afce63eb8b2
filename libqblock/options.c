/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * options.c: protocol and format info structs, the format name table, and
 * the mapping between qemu-img's create option names and the members of
 * the public per-format structs (one table serves qb_fmt_info_set_options
 * and qb_create).
 */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------------------ */
/* Format names                                                        */

/* Indexed by enum QBlockFmtType; the block layer uses the same names. */
static const char *const fmt_names[QB_FMT_MAX] = {
    [QB_FMT_NONE] = NULL,
    [QB_FMT_COW] = "cow",
    [QB_FMT_QED] = "qed",
    [QB_FMT_QCOW] = "qcow",
    [QB_FMT_QCOW2] = "qcow2",
    [QB_FMT_RAW] = "raw",
    [QB_FMT_RBD] = "rbd",
    [QB_FMT_SHEEPDOG] = "sheepdog",
    [QB_FMT_VDI] = "vdi",
    [QB_FMT_VMDK] = "vmdk",
    [QB_FMT_VPC] = "vpc",
};

enum QBlockFmtType qb_str2fmttype(const char *fmt_str)
{
    if (!fmt_str) {
        return QB_FMT_NONE;
    }
    if (strcmp(fmt_str, "vhd") == 0) {
        return QB_FMT_VPC;   /* the common name of the vpc format */
    }
    for (int i = 1; i < QB_FMT_MAX; i++) {
        if (strcmp(fmt_names[i], fmt_str) == 0) {
            return (enum QBlockFmtType)i;
        }
    }
    return QB_FMT_NONE;
}

const char *qb_fmttype2str(enum QBlockFmtType fmt_type)
{
    if ((int)fmt_type <= QB_FMT_NONE || fmt_type >= QB_FMT_MAX) {
        return NULL;
    }
    return fmt_names[fmt_type];
}

/* ------------------------------------------------------------------ */
/* Info structs                                                        */

int qb_prot_info_new(QBroker *broker, QBlockProtInfo **op)
{
    QB_REQUIRE_BROKER(broker);
    if (!op) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, 0, "qb_prot_info_new: NULL pointer");
    }
    *op = calloc(1, sizeof(**op));
    if (!*op) {
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_prot_info_new: out of memory");
    }
    return 0;
}

void qb_prot_info_delete(QBroker *broker, QBlockProtInfo **op)
{
    (void)broker;
    if (op) {
        free(*op);
        *op = NULL;
    }
}

/*
 * Strings that qb_fmt_info_set_options stores in a QBlockFmtInfo belong to
 * the library. A QBlockFmtInfo from qb_fmt_info_new is really this
 * wrapper, recognised through a registry of the ones alive (a caller's own
 * struct on the stack is never read past its public size).
 */
typedef struct FmtInfoPriv {
    QBlockFmtInfo pub;
    char *backing;                 /* owned backing_loc filename, or NULL */
    struct FmtInfoPriv *next;
} FmtInfoPriv;

static pthread_mutex_t fmt_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static FmtInfoPriv *fmt_registry;

static FmtInfoPriv *fmt_priv_lookup_locked(const QBlockFmtInfo *fmt)
{
    for (FmtInfoPriv *p = fmt_registry; p; p = p->next) {
        if (&p->pub == fmt) {
            return p;
        }
    }
    return NULL;
}

int qb_fmt_info_new(QBroker *broker, QBlockFmtInfo **op)
{
    FmtInfoPriv *p;

    QB_REQUIRE_BROKER(broker);

    if (!op) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, 0, "qb_fmt_info_new: NULL pointer");
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        *op = NULL;
        return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "qb_fmt_info_new: out of memory");
    }
    pthread_mutex_lock(&fmt_registry_lock);
    p->next = fmt_registry;
    fmt_registry = p;
    pthread_mutex_unlock(&fmt_registry_lock);
    *op = &p->pub;
    return 0;
}

void qb_fmt_info_delete(QBroker *broker, QBlockFmtInfo **op)
{
    FmtInfoPriv *p = NULL;

    (void)broker;
    if (!op || !*op) {
        return;
    }
    pthread_mutex_lock(&fmt_registry_lock);
    for (FmtInfoPriv **pp = &fmt_registry; *pp; pp = &(*pp)->next) {
        if (&(*pp)->pub == *op) {
            p = *pp;
            *pp = p->next;
            break;
        }
    }
    pthread_mutex_unlock(&fmt_registry_lock);
    if (p) {
        free(p->backing);
        free(p);
    }
    /* A struct not made by qb_fmt_info_new is not ours to free. */
    *op = NULL;
}

/* ------------------------------------------------------------------ */
/* Option <-> struct member table                                      */

typedef enum {
    OK_SIZE,      /* uint64_t, size with suffixes */
    OK_UINT,      /* uint64_t, plain number */
    OK_BOOL,      /* bool */
    OK_BACKING,   /* struct QBlockProtInfo, file name */
    OK_FMT,       /* enum QBlockFmtType, format name */
    OK_ENUM,      /* an enum, by the names in .names (index = value, [0] = "none") */
    OK_BOOL_ENUM, /* an enum set from on/off: .names[1] = off value name, [2] = on */
    OK_UUID,      /* uint8_t[16], text form 8-4-4-4-12; "" or all zeros = unset */
} OptKind;

typedef struct OptMap {
    enum QBlockFmtType fmt;
    const char *key;
    OptKind kind;
    size_t offset;                 /* of the member inside QBlockFmtInfo */
    const char *const *names;      /* OK_ENUM: value names indexed by enum value */
} OptMap;

#define M(f, memb) offsetof(QBlockFmtInfo, fmt_op.f.memb)

/* Value names by enum value; index 0 (the *_NONE default) is never written. */
static const char *const qcow2_compat_names[] = { "", "0.10", "1.1", NULL };
/* Other names an OK_ENUM value goes by (the driver takes them too). */
static const struct EnumAlias {
    enum QBlockFmtType fmt;
    const char *key, *alias, *name;
} enum_aliases[] = {
    { QB_FMT_QCOW2, "compat", "v2", "0.10" },
    { QB_FMT_QCOW2, "compat", "v3", "1.1" },
};
static const char *const qcow2_prealloc_names[] = { "", "off", "metadata", "falloc", "full", NULL };
static const char *const qcow2_compression_names[] = { "", "zlib", "zstd", NULL };
static const char *const raw_prealloc_names[] = { "", "off", "falloc", "full", NULL };
static const char *const sd_prealloc_names[] = { "", "off", "full", NULL };
static const char *const vmdk_subfmt_names[] = {
    "", "monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
    "streamOptimized", NULL
};
static const char *const vpc_subfmt_names[] = { "", "dynamic", "fixed", NULL };
static const char *const vmdk_adapter_names[] = {
    "", "ide", "lsilogic", "buslogic", "legacyESX", NULL
};
/* OK_BOOL_ENUM: the values for off and on. */
static const char *const vdi_static_values[] = { "", "off", "on", NULL };
static const char *const vmdk_compat6_values[] = { "", "off", "on", NULL };

static const OptMap opt_map[] = {
    { QB_FMT_COW, "size", OK_SIZE, M(o_cow, virt_size), NULL },
    { QB_FMT_COW, "backing_file", OK_BACKING, M(o_cow, backing_loc), NULL },

    { QB_FMT_QED, "size", OK_SIZE, M(o_qed, virt_size), NULL },
    { QB_FMT_QED, "backing_file", OK_BACKING, M(o_qed, backing_loc), NULL },
    { QB_FMT_QED, "backing_fmt", OK_FMT, M(o_qed, backing_fmt), NULL },
    { QB_FMT_QED, "cluster_size", OK_SIZE, M(o_qed, cluster_size), NULL },
    { QB_FMT_QED, "table_size", OK_UINT, M(o_qed, table_size), NULL },

    { QB_FMT_QCOW, "size", OK_SIZE, M(o_qcow, virt_size), NULL },
    { QB_FMT_QCOW, "backing_file", OK_BACKING, M(o_qcow, backing_loc), NULL },
    { QB_FMT_QCOW, "encryption", OK_BOOL, M(o_qcow, encrypt), NULL },
    { QB_FMT_QCOW, "backing_fmt", OK_FMT, M(o_qcow, backing_fmt), NULL },

    { QB_FMT_QCOW2, "size", OK_SIZE, M(o_qcow2, virt_size), NULL },
    { QB_FMT_QCOW2, "backing_file", OK_BACKING, M(o_qcow2, backing_loc), NULL },
    { QB_FMT_QCOW2, "backing_fmt", OK_FMT, M(o_qcow2, backing_fmt), NULL },
    { QB_FMT_QCOW2, "encryption", OK_BOOL, M(o_qcow2, encrypt), NULL },
    { QB_FMT_QCOW2, "cluster_size", OK_SIZE, M(o_qcow2, cluster_size), NULL },
    { QB_FMT_QCOW2, "compat", OK_ENUM, M(o_qcow2, cpt_lv), qcow2_compat_names },
    { QB_FMT_QCOW2, "preallocation", OK_ENUM, M(o_qcow2, pre_mode), qcow2_prealloc_names },
    { QB_FMT_QCOW2, "refcount_bits", OK_UINT, M(o_qcow2, refcount_bits), NULL },
    { QB_FMT_QCOW2, "lazy_refcounts", OK_BOOL, M(o_qcow2, lazy_refcounts), NULL },
    { QB_FMT_QCOW2, "extended_l2", OK_BOOL, M(o_qcow2, extended_l2), NULL },
    { QB_FMT_QCOW2, "compression_type", OK_ENUM, M(o_qcow2, compression_type),
      qcow2_compression_names },

    { QB_FMT_RAW, "size", OK_SIZE, M(o_raw, virt_size), NULL },
    { QB_FMT_RAW, "preallocation", OK_ENUM, M(o_raw, pre_mode), raw_prealloc_names },

    { QB_FMT_RBD, "size", OK_SIZE, M(o_rbd, virt_size), NULL },
    { QB_FMT_RBD, "cluster_size", OK_SIZE, M(o_rbd, cluster_size), NULL },

    { QB_FMT_SHEEPDOG, "size", OK_SIZE, M(o_sheepdog, virt_size), NULL },
    { QB_FMT_SHEEPDOG, "backing_file", OK_BACKING, M(o_sheepdog, backing_loc), NULL },
    { QB_FMT_SHEEPDOG, "preallocation", OK_ENUM, M(o_sheepdog, pre_mode), sd_prealloc_names },

    { QB_FMT_VDI, "size", OK_SIZE, M(o_vdi, virt_size), NULL },
    { QB_FMT_VDI, "cluster_size", OK_SIZE, M(o_vdi, cluster_size), NULL },
    { QB_FMT_VDI, "static", OK_BOOL_ENUM, M(o_vdi, pre_mode), vdi_static_values },
    { QB_FMT_VDI, "image_uuid", OK_UUID, M(o_vdi, image_uuid), NULL },
    { QB_FMT_VDI, "modification_uuid", OK_UUID, M(o_vdi, modification_uuid), NULL },

    { QB_FMT_VMDK, "size", OK_SIZE, M(o_vmdk, virt_size), NULL },
    { QB_FMT_VMDK, "backing_file", OK_BACKING, M(o_vmdk, backing_loc), NULL },
    { QB_FMT_VMDK, "compat6", OK_BOOL_ENUM, M(o_vmdk, cpt_lv), vmdk_compat6_values },
    { QB_FMT_VMDK, "subformat", OK_ENUM, M(o_vmdk, subfmt), vmdk_subfmt_names },
    { QB_FMT_VMDK, "backing_fmt", OK_FMT, M(o_vmdk, backing_fmt), NULL },
    { QB_FMT_VMDK, "adapter_type", OK_ENUM, M(o_vmdk, adapter_type), vmdk_adapter_names },
    { QB_FMT_VMDK, "hwversion", OK_UINT, M(o_vmdk, hwversion), NULL },
    { QB_FMT_VMDK, "toolsversion", OK_UINT, M(o_vmdk, toolsversion), NULL },
    { QB_FMT_VMDK, "zeroed_grain", OK_BOOL, M(o_vmdk, zeroed_grain), NULL },

    { QB_FMT_VPC, "size", OK_SIZE, M(o_vpc, virt_size), NULL },
    { QB_FMT_VPC, "subformat", OK_ENUM, M(o_vpc, subfmt), vpc_subfmt_names },
    { QB_FMT_VPC, "force_size", OK_BOOL, M(o_vpc, force_size), NULL },
};

static const OptMap *opt_map_find(enum QBlockFmtType fmt, const char *key)
{
    for (size_t i = 0; i < ARRAY_SIZE(opt_map); i++) {
        if (opt_map[i].fmt == fmt && strcmp(opt_map[i].key, key) == 0) {
            return &opt_map[i];
        }
    }
    return NULL;
}

bool qb_fmt_option_settable(enum QBlockFmtType fmt, const char *key)
{
    return opt_map_find(fmt, key) != NULL;
}

static int enum_index(const char *const *names, const char *value)
{
    for (int i = 1; names[i]; i++) {
        if (strcmp(names[i], value) == 0) {
            return i;
        }
    }
    return -1;
}

/* A plain decimal number, nothing else. */
static int parse_uint(const char *value, uint64_t *out)
{
    uint64_t u = 0;

    if (!*value) {
        return -EINVAL;
    }
    for (const char *p = value; *p; p++) {
        if (*p < '0' || *p > '9' || MUL_OVERFLOW(u, 10, &u) ||
            ADD_OVERFLOW(u, (uint64_t)(*p - '0'), &u)) {
            return -EINVAL;
        }
    }
    *out = u;
    return 0;
}

/* Parse @value for @m into the member of @fmt (a scratch copy); strings go to *@backing. */
static int opt_apply(QBroker *broker, QBlockFmtInfo *fmt, const OptMap *m, const char *value,
                     char **backing)
{
    void *field = (char *)fmt + m->offset;
    const char *fname = qb_fmttype2str(m->fmt);
    uint64_t u;
    bool b;
    int i;

    switch (m->kind) {
    case OK_SIZE:
    case OK_UINT:
        if (m->kind == OK_SIZE ? bdrv_parse_size(value, &u) < 0 : parse_uint(value, &u) < 0) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "qb_fmt_info_set_options: %s: parameter '%s' expects %s, not '%s'",
                           fname, m->key, m->kind == OK_SIZE ? "a size" : "a number", value);
        }
        memcpy(field, &u, sizeof(u));
        return 0;
    case OK_BOOL:
        if (bdrv_parse_bool(value, &b) < 0) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "qb_fmt_info_set_options: %s: parameter '%s' expects on or off, "
                           "not '%s'", fname, m->key, value);
        }
        memcpy(field, &b, sizeof(b));
        return 0;
    case OK_BOOL_ENUM:
        if (bdrv_parse_bool(value, &b) < 0) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "qb_fmt_info_set_options: %s: parameter '%s' expects on or off, "
                           "not '%s'", fname, m->key, value);
        }
        i = b ? 2 : 1;
        memcpy(field, &i, sizeof(i));
        return 0;
    case OK_ENUM:
        for (size_t k = 0; k < ARRAY_SIZE(enum_aliases); k++) {
            const struct EnumAlias *a = &enum_aliases[k];
            if (a->fmt == m->fmt && strcmp(a->key, m->key) == 0 &&
                strcmp(a->alias, value) == 0) {
                value = a->name;
                break;
            }
        }
        i = enum_index(m->names, value);
        if (i < 0) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "qb_fmt_info_set_options: %s: invalid value '%s' for parameter '%s'",
                           fname, value, m->key);
        }
        memcpy(field, &i, sizeof(i));
        return 0;
    case OK_UUID:
        /* Empty: no UUID of the caller's, a random one is made. */
        if (!*value) {
            memset(field, 0, 16);
            return 0;
        }
        if (bdrv_uuid_parse(value, field) < 0) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "qb_fmt_info_set_options: %s: parameter '%s' expects a UUID "
                           "(8-4-4-4-12 hex digits), not '%s'", fname, m->key, value);
        }
        return 0;
    case OK_FMT: {
        enum QBlockFmtType t = qb_str2fmttype(value);
        if (t == QB_FMT_NONE) {
            return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                           "qb_fmt_info_set_options: %s: unknown backing format '%s'",
                           fname, value);
        }
        memcpy(field, &t, sizeof(t));
        return 0;
    }
    case OK_BACKING: {
        QBlockProtInfo *loc = field;
        char *copy = NULL;
        if (*value) {
            copy = strdup(value);
            if (!copy) {
                return qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM,
                               "qb_fmt_info_set_options: out of memory");
            }
        }
        free(*backing);
        *backing = copy;
        loc->prot_type = copy ? QB_PROT_FILE : QB_PROT_NONE;
        loc->prot_op.o_file.filename = copy;
        return 0;
    }
    }
    return QB_ERR_INTERNAL_ERR;
}

int qb_fmt_info_set_options(QBroker *broker, QBlockFmtInfo *fmt, const char *opts)
{
    BdrvOpts parsed;
    BdrvError err = { 0 };
    QBlockFmtInfo scratch;
    FmtInfoPriv *priv;
    char *backing = NULL;
    bool backing_set = false;
    const char *fname;
    int ret;

    QB_REQUIRE_BROKER(broker);

    if (!fmt || !opts) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_fmt_info_set_options: NULL %s", fmt ? "options" : "format info");
    }
    fname = qb_fmttype2str(fmt->fmt_type);
    if (!fname) {
        return qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                       "qb_fmt_info_set_options: fmt_type %d is not a format; set it first",
                       (int)fmt->fmt_type);
    }
    bdrv_opts_init(&parsed);
    ret = bdrv_opts_parse(&parsed, opts, &err);
    if (ret < 0) {
        bdrv_opts_free(&parsed);
        return qb_fail_errno(broker, ret, &err, "qb_fmt_info_set_options", NULL);
    }

    /* Work on a copy so that a bad option leaves @fmt as it was. */
    scratch = *fmt;
    pthread_mutex_lock(&fmt_registry_lock);
    priv = fmt_priv_lookup_locked(fmt);
    pthread_mutex_unlock(&fmt_registry_lock);

    for (int i = 0; i < parsed.n; i++) {
        const char *key = parsed.v[i].name, *value = parsed.v[i].value;
        const OptMap *m = opt_map_find(fmt->fmt_type, key);

        if (!m) {
            ret = qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                          "qb_fmt_info_set_options: %s: invalid parameter '%s'", fname, key);
            goto out;
        }
        if (m->kind == OK_BACKING) {
            if (!priv) {
                ret = qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                              "qb_fmt_info_set_options: '%s' stores a string, which needs a "
                              "format info made by qb_fmt_info_new", key);
                goto out;
            }
            backing_set = true;
        }
        ret = opt_apply(broker, &scratch, m, value, &backing);
        if (ret < 0) {
            goto out;
        }
    }
    /* Values must also satisfy the driver, where this build has one. */
    ret = qb_fmt_info_to_opts(broker, &scratch, NULL);
    if (ret < 0) {
        goto out;
    }
    *fmt = scratch;
    if (backing_set) {
        free(priv->backing);
        priv->backing = backing;
        backing = NULL;
    }
    ret = 0;
out:
    free(backing);
    bdrv_opts_free(&parsed);
    return ret;
}

/*
 * The create options of @fmt as name=value pairs for the block layer
 * (members left 0 / *_NONE are omitted: the driver's default applies).
 * With @out NULL, only checks them against the driver's table.
 */
int qb_fmt_info_to_opts(QBroker *broker, const QBlockFmtInfo *fmt, BdrvOpts *out)
{
    BdrvOpts local;
    BdrvOpts *opts = out ? out : &local;
    BdrvError err = { 0 };
    const char *fname = qb_fmttype2str(fmt->fmt_type);
    int ret = 0;

    if (!out) {
        bdrv_opts_init(&local);
    }
    for (size_t i = 0; i < ARRAY_SIZE(opt_map) && ret == 0; i++) {
        const OptMap *m = &opt_map[i];
        const void *field = (const char *)fmt + m->offset;
        uint64_t u;
        bool b;
        int e;

        if (m->fmt != fmt->fmt_type) {
            continue;
        }
        switch (m->kind) {
        case OK_SIZE:
        case OK_UINT:
            memcpy(&u, field, sizeof(u));
            if (u) {
                ret = bdrv_opts_set_u64(opts, m->key, u);
            }
            break;
        case OK_BOOL:
            memcpy(&b, field, sizeof(b));
            if (b) {
                ret = bdrv_opts_set(opts, m->key, "on");
            }
            break;
        case OK_BOOL_ENUM:
        case OK_ENUM: {
            int n = 0;
            memcpy(&e, field, sizeof(e));
            while (m->names[n]) {
                n++;
            }
            if (e < 0 || e >= n) {
                ret = qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                              "%s: value %d of option '%s' is out of range", fname, e, m->key);
                goto out;
            }
            if (e > 0) {
                ret = bdrv_opts_set(opts, m->key, m->names[e]);
            }
            break;
        }
        case OK_UUID: {
            static const uint8_t unset[16];
            char text[37];
            if (memcmp(field, unset, sizeof(unset)) != 0) {
                bdrv_uuid_format(field, text);
                ret = bdrv_opts_set(opts, m->key, text);
            }
            break;
        }
        case OK_FMT:
            memcpy(&e, field, sizeof(e));
            if (e != QB_FMT_NONE) {
                const char *name = qb_fmttype2str((enum QBlockFmtType)e);
                if (!name) {
                    ret = qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                                  "%s: backing format %d is not a format", fname, e);
                    goto out;
                }
                ret = bdrv_opts_set(opts, m->key, name);
            }
            break;
        case OK_BACKING: {
            const QBlockProtInfo *loc = field;
            if (loc->prot_type == QB_PROT_FILE) {
                if (!loc->prot_op.o_file.filename || !loc->prot_op.o_file.filename[0]) {
                    ret = qb_fail(broker, QB_ERR_INVALID_PARAM, EINVAL,
                                  "%s: the backing file location has no file name", fname);
                    goto out;
                }
                ret = bdrv_opts_set(opts, m->key, loc->prot_op.o_file.filename);
            } else if (loc->prot_type != QB_PROT_NONE) {
                ret = qb_fail(broker, QB_ERR_NOT_SUPPORTED, ENOTSUP,
                              "%s: backing file protocol %d is not supported",
                              fname, (int)loc->prot_type);
                goto out;
            }
            break;
        }
        }
        if (ret < 0) {
            ret = qb_fail(broker, QB_ERR_MEM_ERR, ENOMEM, "%s: out of memory", fname);
            goto out;
        }
    }
    ret = bdrv_check_create_opts(fname, opts, &err);
    if (ret < 0) {
        ret = qb_fail_errno(broker, ret, &err, "qb_fmt_info", NULL);
    }
out:
    if (!out) {
        bdrv_opts_free(&local);
    }
    return ret;
}
