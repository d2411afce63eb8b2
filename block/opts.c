/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* opts.c: create options ("key=value,...") and their validation against a driver's table. */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"

void bdrv_opts_init(BdrvOpts *o)
{
    o->v = NULL;
    o->n = 0;
    o->cap = 0;
}

void bdrv_opts_free(BdrvOpts *o)
{
    for (int i = 0; i < o->n; i++) {
        free(o->v[i].name);
        free(o->v[i].value);
    }
    free(o->v);
    bdrv_opts_init(o);
}

static int opts_find(const BdrvOpts *o, const char *name)
{
    for (int i = 0; i < o->n; i++) {
        if (strcmp(o->v[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

int bdrv_opts_set(BdrvOpts *o, const char *name, const char *value)
{
    char *v = strdup(value);
    int i;

    if (!v) {
        return -ENOMEM;
    }
    i = opts_find(o, name);
    if (i >= 0) {
        free(o->v[i].value);
        o->v[i].value = v;
        return 0;
    }
    if (o->n == o->cap) {
        int cap = o->cap ? o->cap * 2 : 8;
        struct BdrvOpt *nv = realloc(o->v, (size_t)cap * sizeof(*nv));
        if (!nv) {
            free(v);
            return -ENOMEM;
        }
        o->v = nv;
        o->cap = cap;
    }
    o->v[o->n].name = strdup(name);
    if (!o->v[o->n].name) {
        free(v);
        return -ENOMEM;
    }
    o->v[o->n].value = v;
    o->n++;
    return 0;
}

int bdrv_opts_set_u64(BdrvOpts *o, const char *name, uint64_t value)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, value);
    return bdrv_opts_set(o, name, buf);
}

const char *bdrv_opts_get(const BdrvOpts *o, const char *name)
{
    int i = opts_find(o, name);
    return i >= 0 ? o->v[i].value : NULL;
}

int bdrv_opts_parse(BdrvOpts *o, const char *str, BdrvError *err)
{
    size_t len = strlen(str);
    char *key = malloc(len + 1), *val = malloc(len + 1);
    const char *p = str;
    int ret = 0;

    if (!key || !val) {
        free(key);
        free(val);
        return bdrv_error_set(err, -ENOMEM, "out of memory parsing options");
    }
    while (*p) {
        size_t k = 0, v = 0;
        while (*p && *p != '=' && *p != ',') {
            key[k++] = *p++;
        }
        key[k] = '\0';
        if (*p != '=') {
            ret = bdrv_error_set(err, -EINVAL, "option '%s' has no value (expected key=value)", key);
            break;
        }
        if (k == 0) {
            ret = bdrv_error_set(err, -EINVAL, "empty option name in '%s'", str);
            break;
        }
        p++;
        /* A value runs to the next single comma; ",," stands for one comma. */
        while (*p) {
            if (*p == ',') {
                if (p[1] == ',') {
                    val[v++] = ',';
                    p += 2;
                    continue;
                }
                break;
            }
            val[v++] = *p++;
        }
        val[v] = '\0';
        ret = bdrv_opts_set(o, key, val);
        if (ret < 0) {
            bdrv_error_set(err, ret, "out of memory parsing options");
            break;
        }
        if (*p == ',') {
            p++;
            if (!*p) {
                ret = bdrv_error_set(err, -EINVAL, "trailing comma in options '%s'", str);
                break;
            }
        }
    }
    free(key);
    free(val);
    return ret;
}

int bdrv_parse_size(const char *str, uint64_t *out)
{
    static const char units[] = "bkmgtpe";
    const char *p = str;
    uint64_t whole = 0, frac_num = 0, frac_den = 1;
    const char *u;
    int shift = 0;

    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (!isdigit((unsigned char)*p)) {
        return -EINVAL;
    }
    for (; isdigit((unsigned char)*p); p++) {
        if (MUL_OVERFLOW(whole, 10, &whole) || ADD_OVERFLOW(whole, (uint64_t)(*p - '0'), &whole)) {
            return -ERANGE;
        }
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) {
            return -EINVAL;
        }
        for (; isdigit((unsigned char)*p); p++) {
            if (frac_den < 1000000000000ULL) {   /* more digits add nothing for byte sizes */
                frac_num = frac_num * 10 + (uint64_t)(*p - '0');
                frac_den *= 10;
            }
        }
    }
    if (*p) {
        u = strchr(units, tolower((unsigned char)*p));
        if (!u) {
            return -EINVAL;
        }
        shift = (int)(u - units) * 10;
        p++;
    }
    if (*p) {
        return -EINVAL;
    }
    if (frac_num && shift == 0) {
        return -EINVAL;   /* a fraction of a byte */
    }
    if (shift && (whole >> (64 - shift))) {
        return -ERANGE;
    }
    uint64_t v = whole << shift;
    if (frac_num) {
        /* frac_num/frac_den < 1, so the product fits in 128 bits comfortably. */
        unsigned __int128 f = ((unsigned __int128)frac_num << shift) / frac_den;
        if (ADD_OVERFLOW(v, (uint64_t)f, &v)) {
            return -ERANGE;
        }
    }
    *out = v;
    return 0;
}

int bdrv_uuid_parse(const char *str, uint8_t out[16])
{
    int n = 0;

    /* 8-4-4-4-12 hex digits: dashes only at those places, nothing after. */
    for (int i = 0; str[i]; i++) {
        int v;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (str[i] != '-') {
                return -EINVAL;
            }
            continue;
        }
        if (n == 32) {
            return -EINVAL;
        }
        if (str[i] >= '0' && str[i] <= '9') {
            v = str[i] - '0';
        } else if (str[i] >= 'a' && str[i] <= 'f') {
            v = str[i] - 'a' + 10;
        } else if (str[i] >= 'A' && str[i] <= 'F') {
            v = str[i] - 'A' + 10;
        } else {
            return -EINVAL;
        }
        if (n % 2 == 0) {
            out[n / 2] = (uint8_t)(v << 4);
        } else {
            out[n / 2] |= (uint8_t)v;
        }
        n++;
    }
    return n == 32 && strlen(str) == 36 ? 0 : -EINVAL;
}

void bdrv_uuid_format(const uint8_t u[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
             u[13], u[14], u[15]);
}

int bdrv_parse_bool(const char *str, bool *out)
{
    static const char *const yes[] = { "on", "true", "yes", "1" };
    static const char *const no[] = { "off", "false", "no", "0" };
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(str, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(str, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int bdrv_parse_prealloc(const char *str, BdrvPrealloc *out)
{
    static const char *const names[] = { "off", "metadata", "falloc", "full" };
    if (!str || !*str) {
        *out = BDRV_PREALLOC_OFF;
        return 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (strcmp(str, names[i]) == 0) {
            *out = (BdrvPrealloc)i;
            return 0;
        }
    }
    return -EINVAL;
}

static const BdrvOptDesc *desc_find(const BdrvOptDesc *desc, const char *name)
{
    for (; desc && desc->name; desc++) {
        if (strcmp(desc->name, name) == 0) {
            return desc;
        }
    }
    return NULL;
}

static int opt_check_value(const BdrvOptDesc *d, const char *value, const char *fmt_name,
                           BdrvError *err)
{
    uint64_t u;
    bool b;
    char *end;

    switch (d->type) {
    case BDRV_OPT_SIZE:
        if (bdrv_parse_size(value, &u) < 0) {
            return bdrv_error_set(err, -EINVAL,
                                  "%s: parameter '%s' expects a size (with an optional "
                                  "k, M, G, T, P or E suffix), not '%s'",
                                  fmt_name, d->name, value);
        }
        return 0;
    case BDRV_OPT_NUMBER:
        errno = 0;
        u = strtoull(value, &end, 10);
        if (!*value || *end || errno || value[0] == '-') {
            return bdrv_error_set(err, -EINVAL, "%s: parameter '%s' expects a number, not '%s'",
                                  fmt_name, d->name, value);
        }
        return 0;
    case BDRV_OPT_BOOL:
        if (bdrv_parse_bool(value, &b) < 0) {
            return bdrv_error_set(err, -EINVAL,
                                  "%s: parameter '%s' expects 'on' or 'off', not '%s'",
                                  fmt_name, d->name, value);
        }
        return 0;
    case BDRV_OPT_STRING:
        if (d->choices && *value) {
            for (const char *const *c = d->choices; *c; c++) {
                if (strcmp(*c, value) == 0) {
                    return 0;
                }
            }
            return bdrv_error_set(err, -EINVAL, "%s: invalid value '%s' for parameter '%s'",
                                  fmt_name, value, d->name);
        }
        return 0;
    }
    return 0;
}

int bdrv_opts_validate(BdrvOpts *o, const BdrvOptDesc *desc, const char *fmt_name,
                       BdrvError *err)
{
    int ret;

    for (int i = 0; i < o->n; i++) {
        const BdrvOptDesc *d = desc_find(desc, o->v[i].name);
        if (!d) {
            return bdrv_error_set(err, -EINVAL, "%s: invalid parameter '%s'", fmt_name,
                                  o->v[i].name);
        }
        ret = opt_check_value(d, o->v[i].value, fmt_name, err);
        if (ret < 0) {
            return ret;
        }
    }
    for (; desc && desc->name; desc++) {
        if (desc->def && !bdrv_opts_get(o, desc->name)) {
            ret = bdrv_opts_set(o, desc->name, desc->def);
            if (ret < 0) {
                return bdrv_error_set(err, ret, "out of memory");
            }
        }
    }
    return 0;
}

uint64_t bdrv_opts_get_size(const BdrvOpts *o, const char *name)
{
    const char *v = bdrv_opts_get(o, name);
    uint64_t u = 0;
    if (v && bdrv_parse_size(v, &u) < 0) {
        u = strtoull(v, NULL, 10);
    }
    return u;
}

bool bdrv_opts_get_bool(const BdrvOpts *o, const char *name)
{
    const char *v = bdrv_opts_get(o, name);
    bool b = false;
    if (v) {
        bdrv_parse_bool(v, &b);
    }
    return b;
}

const char *bdrv_opts_get_str(const BdrvOpts *o, const char *name)
{
    const char *v = bdrv_opts_get(o, name);
    return v && *v ? v : NULL;
}
