/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rbd.c: the Ceph RBD protocol driver, an image of a RADOS pool reached through librbd. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CONFIG_RBD
#include <dlfcn.h>
#include <pthread.h>
#include <rbd/librbd.h>

/* The library loaded on first use (see rbd_lib_load). */
#define RBD_LIB_SONAME "librbd.so.1"
#endif

#include "block/block_int.h"
#include "block/rbd.h"
#include "block/util.h"

#define RBD_PREFIX "rbd:"

/* ------------------------------------------------------------------ */
/* Location names                                                      */

bool rbd_is_location(const char *name)
{
    return name && strncmp(name, RBD_PREFIX, strlen(RBD_PREFIX)) == 0;
}

void rbd_address_free(RBDAddress *addr)
{
    free(addr->pool);
    free(addr->nspace);
    free(addr->image);
    free(addr->snap);
    free(addr->user);
    free(addr->conf);
    for (int i = 0; i < addr->n_kv; i++) {
        free(addr->keys[i]);
        free(addr->values[i]);
    }
    free(addr->keys);
    free(addr->values);
    memset(addr, 0, sizeof(*addr));
}

/*
 * Copy the next token of *@p into a malloc'ed string, dropping the
 * backslashes that escape a character, and stop before the first
 * unescaped character of @stops (left at *@p). NULL on -ENOMEM.
 */
static char *next_token(const char **p, const char *stops)
{
    const char *s = *p;
    char *out = malloc(strlen(s) + 1);
    size_t n = 0;

    if (!out) {
        return NULL;
    }
    while (*s && !strchr(stops, *s)) {
        if (*s == '\\' && s[1]) {
            s++;
        }
        out[n++] = *s++;
    }
    out[n] = '\0';
    *p = s;
    return out;
}

static int add_kv(RBDAddress *addr, char *key, char *value)
{
    char **k = realloc(addr->keys, (size_t)(addr->n_kv + 1) * sizeof(*k));
    if (!k) {
        return -ENOMEM;
    }
    addr->keys = k;
    char **v = realloc(addr->values, (size_t)(addr->n_kv + 1) * sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    addr->values = v;
    addr->keys[addr->n_kv] = key;
    addr->values[addr->n_kv] = value;
    addr->n_kv++;
    return 0;
}

int rbd_parse_location(const char *name, RBDAddress *addr, char *msg, size_t msglen)
{
    const char *p = name + strlen(RBD_PREFIX);
    char *parts[3] = { NULL, NULL, NULL };
    int nparts = 0, ret = -ENOMEM;

    memset(addr, 0, sizeof(*addr));
    if (!rbd_is_location(name)) {
        snprintf(msg, msglen, "'%s' is not an RBD location (rbd:pool/image)", name);
        return -EINVAL;
    }
    /* pool/[namespace/]image, then @snap, then :key=value pairs. */
    for (;;) {
        char *t = next_token(&p, "/@:");
        if (!t) {
            goto fail;
        }
        if (nparts == 3) {
            free(t);
            snprintf(msg, msglen, "'%s': too many '/' in an RBD location "
                     "(rbd:pool/[namespace/]image)", name);
            ret = -EINVAL;
            goto fail;
        }
        parts[nparts++] = t;
        if (*p != '/') {
            break;
        }
        p++;
    }
    if (nparts < 2 || !parts[0][0] || !parts[nparts - 1][0] || (nparts == 3 && !parts[1][0])) {
        snprintf(msg, msglen, "'%s': an RBD location needs a pool and an image "
                 "(rbd:pool/image)", name);
        ret = -EINVAL;
        goto fail;
    }
    addr->pool = parts[0];
    addr->image = parts[nparts - 1];
    addr->nspace = nparts == 3 ? parts[1] : NULL;
    parts[0] = parts[1] = parts[2] = NULL;
    if (*p == '@') {
        p++;
        addr->snap = next_token(&p, ":");
        if (!addr->snap) {
            goto fail;
        }
        if (!addr->snap[0]) {
            snprintf(msg, msglen, "'%s': empty snapshot name after '@'", name);
            ret = -EINVAL;
            goto fail;
        }
    }
    while (*p == ':') {
        p++;
        char *key = next_token(&p, "=:");
        if (!key) {
            goto fail;
        }
        if (*p != '=' || !key[0]) {
            snprintf(msg, msglen, "'%s': option '%s' of an RBD location needs key=value",
                     name, key);
            free(key);
            ret = -EINVAL;
            goto fail;
        }
        p++;
        char *value = next_token(&p, ":");
        if (!value) {
            free(key);
            goto fail;
        }
        if (strcmp(key, "id") == 0 || strcmp(key, "conf") == 0) {
            char **slot = key[0] == 'i' ? &addr->user : &addr->conf;
            free(*slot);
            *slot = value;
            free(key);
        } else if (add_kv(addr, key, value) < 0) {
            free(key);
            free(value);
            goto fail;
        }
    }
    if (*p) {
        snprintf(msg, msglen, "'%s': unexpected '%c' in an RBD location", name, *p);
        ret = -EINVAL;
        goto fail;
    }
    return 0;

fail:
    for (int i = 0; i < 3; i++) {
        free(parts[i]);
    }
    if (ret == -ENOMEM) {
        snprintf(msg, msglen, "out of memory");
    }
    rbd_address_free(addr);
    return ret;
}

/* Append @s to @out (at *@n) with the characters the parser splits on escaped. */
static void put_escaped(char *out, size_t *n, const char *s)
{
    for (; *s; s++) {
        if (strchr("/@:=\\", *s)) {
            out[(*n)++] = '\\';
        }
        out[(*n)++] = *s;
    }
}

char *rbd_format_location(const char *pool, const char *image, const char *snap,
                          const char *user, const char *conf)
{
    size_t cap = strlen(RBD_PREFIX) + 64;
    const char *all[] = { pool, image, snap, user, conf };
    size_t n = 0;
    char *out;

    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        cap += all[i] ? 2 * strlen(all[i]) : 0;
    }
    out = malloc(cap);
    if (!out) {
        return NULL;
    }
    memcpy(out, RBD_PREFIX, strlen(RBD_PREFIX));
    n = strlen(RBD_PREFIX);
    put_escaped(out, &n, pool);
    out[n++] = '/';
    put_escaped(out, &n, image);
    if (snap && snap[0]) {
        out[n++] = '@';
        put_escaped(out, &n, snap);
    }
    if (conf && conf[0]) {
        memcpy(out + n, ":conf=", 6);
        n += 6;
        put_escaped(out, &n, conf);
    }
    if (user && user[0]) {
        memcpy(out + n, ":id=", 4);
        n += 4;
        put_escaped(out, &n, user);
    }
    out[n] = '\0';
    return out;
}

#ifdef CONFIG_RBD

/* ------------------------------------------------------------------ */
/* librbd, loaded on first use                                          */

/*
 * librbd and librados are loaded when the first RBD location is used, not
 * when libqblock is: they bring Ceph's runtime with them (some thirty
 * libraries), which cost every program linking libqblock about 0.1 s at
 * start-up whether it touched RBD or not, and a machine without Ceph's
 * libraries could not load libqblock at all. The build still needs
 * librbd's headers; these are every function of theirs the driver calls.
 */
#define RBD_LIB_FUNCS(X) \
    X(rados_conf_get) \
    X(rados_conf_read_file) \
    X(rados_conf_set) \
    X(rados_connect) \
    X(rados_create) \
    X(rados_ioctx_create) \
    X(rados_ioctx_destroy) \
    X(rados_ioctx_set_namespace) \
    X(rados_shutdown) \
    X(rbd_close) \
    X(rbd_create) \
    X(rbd_diff_iterate2) \
    X(rbd_discard) \
    X(rbd_flush) \
    X(rbd_get_size) \
    X(rbd_open) \
    X(rbd_open_read_only) \
    X(rbd_read) \
    X(rbd_resize) \
    X(rbd_stat) \
    X(rbd_write)

static struct {
#define RBD_LIB_MEMBER(f) __typeof__(f) *f;
    RBD_LIB_FUNCS(RBD_LIB_MEMBER)
#undef RBD_LIB_MEMBER
} rl;

static pthread_once_t rbd_lib_once = PTHREAD_ONCE_INIT;
static char rbd_lib_error[512];

/* librbd.so.1 brings librados.so.2 as its dependency; never unloaded. */
static void rbd_lib_load(void)
{
    void *h = dlopen(RBD_LIB_SONAME, RTLD_NOW | RTLD_LOCAL);

    if (!h) {
        snprintf(rbd_lib_error, sizeof(rbd_lib_error), "cannot load " RBD_LIB_SONAME " (%s)",
                 dlerror());
        return;
    }
#define RBD_LIB_BIND(f)                                                                   \
    if (!rbd_lib_error[0] && !(rl.f = (__typeof__(f) *)dlsym(h, #f))) {                   \
        snprintf(rbd_lib_error, sizeof(rbd_lib_error), RBD_LIB_SONAME " has no %s", #f);  \
    }
    RBD_LIB_FUNCS(RBD_LIB_BIND)
#undef RBD_LIB_BIND
}

/* 0 once librbd is loaded, else -ENOTSUP with a message naming what is missing. */
static int rbd_lib_ready(const char *name, BdrvError *err)
{
    pthread_once(&rbd_lib_once, rbd_lib_load);
    if (rbd_lib_error[0]) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': RBD needs librbd: %s", name, rbd_lib_error);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */

/*
 * How long the cluster may take to answer unless the configuration or the
 * location says otherwise. librados' own defaults wait 5 minutes for the
 * connection and for ever for each request once connected (0: no
 * timeout), so a cluster whose monitor or OSD died hangs whoever reads or
 * writes; with these a request fails with -ETIMEDOUT instead. A request's
 * bound is generous: an OSD that dies in a healthy cluster is replaced
 * within about 20 s (its heartbeat grace), which requests must outlive.
 */
static const struct {
    const char *key;
    const char *value;
} rbd_default_conf[] = {
    { "client_mount_timeout", "30" },   /* connecting: the monitor's first answer */
    { "rados_mon_op_timeout", "30" },   /* each request to the monitor */
    { "rados_osd_op_timeout", "60" },   /* each read, write, flush, discard */
};

typedef struct RBDConn {
    rados_t cluster;
    rados_ioctx_t io;
    bool have_cluster, have_io;
    /* Seconds, as the connection uses them, for the messages of timeouts. */
    char mount_timeout[16], osd_op_timeout[16];
} RBDConn;

/* The cluster's value of @key in @buf, or "?" when librados does not say. */
static void rbd_conf_value(rados_t cluster, const char *key, char *buf, size_t len)
{
    if (rl.rados_conf_get(cluster, key, buf, len) < 0) {
        snprintf(buf, len, "?");
    }
}

/*
 * Read the configuration file @conf (NULL: librados' search) with our
 * defaults under it. librados keeps a value set with rados_conf_set over
 * one from the file whatever their order (a set is an override, a file
 * value is not: we checked), so a default is set only where the file left
 * librados' own value unchanged. A file that sets one of these explicitly
 * to librados' default (say rados_osd_op_timeout = 0) cannot be told apart
 * from no setting and gets ours.
 */
static int rbd_read_conf(rados_t cluster, const char *conf)
{
    char before[ARRAY_SIZE(rbd_default_conf)][64], after[64];
    int ret;

    for (size_t i = 0; i < ARRAY_SIZE(rbd_default_conf); i++) {
        rbd_conf_value(cluster, rbd_default_conf[i].key, before[i], sizeof(before[i]));
    }
    ret = rl.rados_conf_read_file(cluster, conf);
    for (size_t i = 0; i < ARRAY_SIZE(rbd_default_conf); i++) {
        rbd_conf_value(cluster, rbd_default_conf[i].key, after, sizeof(after));
        if (strcmp(before[i], after) == 0) {
            rl.rados_conf_set(cluster, rbd_default_conf[i].key, rbd_default_conf[i].value);
        }
    }
    return ret;
}

static void rbd_disconnect(RBDConn *c)
{
    if (c->have_io) {
        rl.rados_ioctx_destroy(c->io);
    }
    if (c->have_cluster) {
        rl.rados_shutdown(c->cluster);
    }
    c->have_io = c->have_cluster = false;
}

/* Connect to the cluster @a names and open its pool (and namespace). */
static int rbd_connect(RBDConn *c, const RBDAddress *a, const char *name, BdrvError *err)
{
    int ret;

    memset(c, 0, sizeof(*c));
    ret = rbd_lib_ready(name, err);
    if (ret < 0) {
        return ret;
    }
    ret = rl.rados_create(&c->cluster, a->user);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': cannot create a RADOS cluster handle", name);
    }
    c->have_cluster = true;
    /* With no conf= the default search runs (CEPH_CONF, /etc/ceph...): missing is fine. */
    ret = rbd_read_conf(c->cluster, a->conf);
    if (ret < 0 && a->conf) {
        bdrv_error_set(err, ret, "'%s': cannot read the Ceph configuration '%s'", name, a->conf);
        goto fail;
    }
    for (int i = 0; i < a->n_kv; i++) {
        ret = rl.rados_conf_set(c->cluster, a->keys[i], a->values[i]);
        if (ret < 0) {
            bdrv_error_set(err, ret, "'%s': Ceph refuses the option %s=%s", name, a->keys[i],
                           a->values[i]);
            goto fail;
        }
    }
    /* The location's keys are set last: they win over the file and our defaults. */
    rbd_conf_value(c->cluster, "client_mount_timeout", c->mount_timeout,
                   sizeof(c->mount_timeout));
    rbd_conf_value(c->cluster, "rados_osd_op_timeout", c->osd_op_timeout,
                   sizeof(c->osd_op_timeout));
    ret = rl.rados_connect(c->cluster);
    if (ret == -ETIMEDOUT) {
        bdrv_error_set(err, ret, "'%s': cannot connect to the Ceph cluster: it did not answer "
                       "in %s s (client_mount_timeout)", name, c->mount_timeout);
        goto fail;
    } else if (ret < 0) {
        bdrv_error_set(err, ret, "'%s': cannot connect to the Ceph cluster (%s)", name,
                       strerror(-ret));
        goto fail;
    }
    ret = rl.rados_ioctx_create(c->cluster, a->pool, &c->io);
    if (ret == -ETIMEDOUT) {
        bdrv_error_set(err, ret, "'%s': cannot open the pool '%s': the Ceph cluster did not "
                       "answer in time (rados_mon_op_timeout)", name, a->pool);
        goto fail;
    } else if (ret < 0) {
        bdrv_error_set(err, ret, "'%s': cannot open the pool '%s' (%s)", name, a->pool,
                       strerror(-ret));
        goto fail;
    }
    c->have_io = true;
    if (a->nspace) {
        rl.rados_ioctx_set_namespace(c->io, a->nspace);
    }
    return 0;

fail:
    rbd_disconnect(c);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Creating                                                            */

static int rbd_create_image(const char *filename, uint64_t size, uint64_t obj_size,
                            BdrvError *err)
{
    RBDAddress a;
    RBDConn c;
    char msg[256];
    int order = 0, ret;

    if (obj_size) {
        order = __builtin_ctzll(obj_size);
        if ((obj_size & (obj_size - 1)) || order < RBD_MIN_ORDER || order > RBD_MAX_ORDER) {
            return bdrv_error_set(err, -EINVAL, "'%s': the RBD object size (cluster_size) must "
                                  "be a power of two from 4 KiB to 32 MiB, not %llu", filename,
                                  (unsigned long long)obj_size);
        }
    }
    ret = rbd_parse_location(filename, &a, msg, sizeof(msg));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "%s", msg);
    }
    if (a.snap) {
        ret = bdrv_error_set(err, -EINVAL, "'%s': an image cannot be created at a snapshot",
                             filename);
        goto out;
    }
    ret = rbd_connect(&c, &a, filename, err);
    if (ret < 0) {
        goto out;
    }
    ret = rl.rbd_create(c.io, a.image, size, &order);
    if (ret < 0) {
        bdrv_error_set(err, ret, "'%s': cannot create the RBD image (%s)", filename,
                       strerror(-ret));
    }
    rbd_disconnect(&c);
out:
    rbd_address_free(&a);
    return ret;
}

static int rbd_create_file(const char *filename, uint64_t size, BdrvPrealloc prealloc,
                           int flags, BdrvError *err)
{
    (void)flags;
    if (prealloc != BDRV_PREALLOC_OFF) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': RBD images cannot be preallocated",
                              filename);
    }
    return rbd_create_image(filename, size, 0, err);
}

/* Format rbd's create options; qb_fmt_get_create_options lists them from here. */
static const BdrvOptDesc rbd_create_opts[] = {
    { .name = "size", .type = BDRV_OPT_SIZE, .def = "0",
      .help = "Size of the virtual disk" },
    { .name = "cluster_size", .type = BDRV_OPT_SIZE, .def = "0",
      .help = "RBD object size (a power of two, 4K to 32M; 0: librbd's default, 4M)" },
    { 0 }
};

int rbd_create_format(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    int ret;

    (void)flags;
    if (!rbd_is_location(filename)) {
        /* Not a malformed request: an rbd image cannot live anywhere but in Ceph. */
        return bdrv_error_set(err, -ENOTSUP, "'%s': format 'rbd' is not supported outside "
                              "an RBD location (rbd:pool/image)", filename);
    }
    ret = bdrv_opts_validate(opts, rbd_create_opts, "rbd", err);
    if (ret < 0) {
        return ret;
    }
    return rbd_create_image(filename, bdrv_opts_get_size(opts, "size"),
                            bdrv_opts_get_size(opts, "cluster_size"), err);
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */

typedef struct BDRVRBDState {
    RBDConn conn;
    rbd_image_t image;
    uint64_t object_size;
} BDRVRBDState;

static int rbd_open_node(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVRBDState *s = bs->opaque;
    rbd_image_info_t info;
    RBDAddress a;
    char msg[256];
    int ret;

    ret = rbd_parse_location(bs->filename, &a, msg, sizeof(msg));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "%s", msg);
    }
    if (a.snap && (flags & BDRV_O_RDWR)) {
        ret = bdrv_error_set(err, -EROFS, "'%s': an RBD snapshot can only be opened read-only",
                             bs->filename);
        goto out;
    }
    ret = rbd_connect(&s->conn, &a, bs->filename, err);
    if (ret < 0) {
        goto out;
    }
    if (flags & BDRV_O_RDWR) {
        ret = rl.rbd_open(s->conn.io, a.image, &s->image, NULL);
    } else {
        ret = rl.rbd_open_read_only(s->conn.io, a.image, &s->image, a.snap);
    }
    if (ret < 0) {
        char why[96];

        if (ret == -ETIMEDOUT) {
            snprintf(why, sizeof(why), "the Ceph cluster did not answer in %s s "
                     "(rados_osd_op_timeout)", s->conn.osd_op_timeout);
        } else {
            snprintf(why, sizeof(why), "%s", strerror(-ret));
        }
        bdrv_error_set(err, ret, "'%s': cannot open the RBD image%s%s (%s)", bs->filename,
                       a.snap ? " at its snapshot " : "", a.snap ? a.snap : "", why);
        rbd_disconnect(&s->conn);
        goto out;
    }
    ret = rl.rbd_stat(s->image, &info, sizeof(info));
    if (ret < 0) {
        bdrv_error_set(err, ret, "'%s': cannot read the RBD image's facts", bs->filename);
        rl.rbd_close(s->image);
        rbd_disconnect(&s->conn);
        goto out;
    }
    s->object_size = info.obj_size;
    bs->total_sectors = (int64_t)(DIV_ROUND_UP(info.size, BDRV_SECTOR_SIZE));
out:
    rbd_address_free(&a);
    return ret;
}

static void rbd_close_node(BlockDriverState *bs)
{
    BDRVRBDState *s = bs->opaque;

    rl.rbd_close(s->image);
    rbd_disconnect(&s->conn);
}

/* ------------------------------------------------------------------ */
/* Data                                                                */

/*
 * @ret, a request's result; a timeout (the cluster did not answer within
 * rados_osd_op_timeout: an OSD or the monitor died) leaves a message that
 * names the image and the bound for the facade.
 */
static int rbd_io_ret(BlockDriverState *bs, int ret)
{
    BDRVRBDState *s = bs->opaque;

    if (ret == -ETIMEDOUT) {
        bdrv_io_error_note(ret, "'%s': the Ceph cluster did not answer in %s s "
                           "(rados_osd_op_timeout)", bs->filename, s->conn.osd_op_timeout);
    }
    return ret;
}

static int rbd_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVRBDState *s = bs->opaque;

    for (int i = 0; i < qiov->niov; i++) {
        char *buf = qiov->iov[i].iov_base;
        size_t len = qiov->iov[i].iov_len, done = 0;

        while (done < len) {
            ssize_t r = rl.rbd_read(s->image, offset, len - done, buf + done);
            if (r < 0) {
                return rbd_io_ret(bs, (int)r);
            }
            if (r == 0) {
                /* Past the end of the image: what is not there reads as zeros. */
                memset(buf + done, 0, len - done);
                offset += len - done;
                break;
            }
            done += (size_t)r;
            offset += (uint64_t)r;
        }
    }
    return 0;
}

static int rbd_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVRBDState *s = bs->opaque;
    uint64_t size;
    int ret = rl.rbd_get_size(s->image, &size);

    if (ret < 0) {
        return rbd_io_ret(bs, ret);
    }
    /*
     * librbd refuses writes past the end, but a format's file grows as it
     * writes (a new qcow2 starts empty), as a file does: grow the image.
     */
    if (offset + qiov->size > size) {
        ret = rl.rbd_resize(s->image, offset + qiov->size);
        if (ret < 0) {
            return rbd_io_ret(bs, ret);
        }
    }

    for (int i = 0; i < qiov->niov; i++) {
        const char *buf = qiov->iov[i].iov_base;
        size_t len = qiov->iov[i].iov_len, done = 0;

        while (done < len) {
            ssize_t r = rl.rbd_write(s->image, offset, len - done, buf + done);
            if (r < 0) {
                return rbd_io_ret(bs, (int)r);
            }
            if (r == 0) {
                return -EIO;
            }
            done += (size_t)r;
            offset += (uint64_t)r;
        }
    }
    return 0;
}

static int rbd_flush_node(BlockDriverState *bs)
{
    BDRVRBDState *s = bs->opaque;
    return rbd_io_ret(bs, rl.rbd_flush(s->image));
}

static int rbd_pdiscard(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVRBDState *s = bs->opaque;

    /* rbd_discard returns the length as an int: keep each piece well below INT_MAX. */
    while (bytes) {
        uint64_t n = MIN(bytes, (uint64_t)1 << 30);
        int r = rl.rbd_discard(s->image, offset, n);
        if (r < 0) {
            return rbd_io_ret(bs, r);
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

/* The first run of extents diff-iterate reports, all allocated or all not. */
typedef struct RBDExtentRun {
    bool found;
    bool exists;
    uint64_t start, end;
} RBDExtentRun;

/* Stops the iteration once the first run of extents is known. */
#define RBD_RUN_DONE 1

static int rbd_diff_cb(uint64_t off, size_t len, int exists, void *opaque)
{
    RBDExtentRun *run = opaque;

    if (!run->found) {
        run->found = true;
        run->exists = exists != 0;
        run->start = off;
        run->end = off + len;
        return 0;
    }
    if (off == run->end && (exists != 0) == run->exists) {
        run->end += len;
        return 0;
    }
    return RBD_RUN_DONE;
}

static int rbd_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    BDRVRBDState *s = bs->opaque;
    const int data = BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
    const int zero = BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
    RBDExtentRun run = { 0 };
    uint64_t size;
    int ret;

    *map = offset;
    *file = bs;
    *pnum = bytes;
    ret = rl.rbd_get_size(s->image, &size);
    if (ret < 0) {
        return ret;
    }
    if (offset >= size) {
        return zero | BDRV_BLOCK_EOF;
    }
    bytes = MIN(bytes, size - offset);
    /*
     * Whole objects are enough: an object that exists is reported as data
     * in full, as QEMU's rbd driver does; a hole is an object never
     * written (or discarded), which reads as zeros.
     */
    ret = rl.rbd_diff_iterate2(s->image, NULL, offset, bytes, 1, 1, rbd_diff_cb, &run);
    if (ret < 0) {
        return rbd_io_ret(bs, ret);
    }
    if (!run.found || run.start >= offset + bytes) {
        *pnum = bytes;
        ret = zero | BDRV_BLOCK_HOLE;
    } else if (run.start > offset) {
        *pnum = run.start - offset;
        ret = zero | BDRV_BLOCK_HOLE;
    } else {
        *pnum = MIN(run.end, offset + bytes) - offset;
        ret = run.exists ? data : zero | BDRV_BLOCK_HOLE;
    }
    if (offset + *pnum >= size) {
        ret |= BDRV_BLOCK_EOF;
    }
    return ret;
}

static int64_t rbd_getlength(BlockDriverState *bs)
{
    BDRVRBDState *s = bs->opaque;
    uint64_t size;
    int ret = rl.rbd_get_size(s->image, &size);

    return ret < 0 ? ret : (int64_t)size;
}

static int rbd_truncate(BlockDriverState *bs, uint64_t offset, BdrvPrealloc prealloc,
                        BdrvError *err)
{
    BDRVRBDState *s = bs->opaque;
    int ret;

    if (prealloc != BDRV_PREALLOC_OFF) {
        return bdrv_error_set(err, -ENOTSUP, "'%s': RBD images cannot be preallocated",
                              bs->filename);
    }
    ret = rl.rbd_resize(s->image, offset);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "'%s': cannot resize the RBD image (%s)", bs->filename,
                              strerror(-ret));
    }
    bs->total_sectors = (int64_t)DIV_ROUND_UP(offset, BDRV_SECTOR_SIZE);
    return 0;
}

static int rbd_has_zero_init(BlockDriverState *bs)
{
    (void)bs;
    return 1;
}

static int rbd_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVRBDState *s = bs->opaque;

    bdi->cluster_size = (int)s->object_size;
    return 0;
}

static int64_t rbd_get_allocated_file_size(BlockDriverState *bs)
{
    (void)bs;
    return -ENOTSUP;   /* what the cluster stores is the OSDs' business (and replicated) */
}

const BlockDriver bdrv_rbd = {
    .format_name = "rbd",
    .instance_size = sizeof(BDRVRBDState),
    .is_protocol = true,
    .shares_write = true,
    .caps = BDRV_CAP_SHRINK,
    .bdrv_open = rbd_open_node,
    .bdrv_close = rbd_close_node,
    .bdrv_preadv = rbd_preadv,
    .bdrv_pwritev = rbd_pwritev,
    .bdrv_flush = rbd_flush_node,
    .bdrv_pdiscard = rbd_pdiscard,
    .bdrv_block_status = rbd_block_status,
    .bdrv_getlength = rbd_getlength,
    .bdrv_truncate = rbd_truncate,
    .bdrv_has_zero_init = rbd_has_zero_init,
    .bdrv_get_info = rbd_get_info,
    .bdrv_get_allocated_file_size = rbd_get_allocated_file_size,
    .bdrv_create_file = rbd_create_file,
    /*
     * Format rbd (raw data on an RBD image of its own object size) is
     * created here (bdrv_create sends it here), and its capabilities are
     * this driver's: qb_fmt_get_caps reads them from this table. The build
     * without librbd sets neither, and so claims nothing for it.
     */
    .bdrv_create = rbd_create_format,
    .create_opts = rbd_create_opts,
};

#else /* !CONFIG_RBD */

#define RBD_MISSING "RBD is not supported by this build of libqblock (it was built without " \
                    "librbd; install librbd-dev and run configure again)"

int rbd_create_format(const char *filename, BdrvOpts *opts, int flags, BdrvError *err)
{
    (void)opts;
    (void)flags;
    return bdrv_error_set(err, -ENOTSUP, "'%s': " RBD_MISSING, filename);
}

static int rbd_create_file(const char *filename, uint64_t size, BdrvPrealloc prealloc,
                           int flags, BdrvError *err)
{
    (void)size;
    (void)prealloc;
    return rbd_create_format(filename, NULL, flags, err);
}

static int rbd_open_node(BlockDriverState *bs, int flags, BdrvError *err)
{
    (void)flags;
    return bdrv_error_set(err, -ENOTSUP, "'%s': " RBD_MISSING, bs->filename);
}

static void rbd_close_node(BlockDriverState *bs)
{
    (void)bs;
}

static int rbd_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    (void)bs;
    (void)offset;
    (void)qiov;
    return -ENOTSUP;
}

const BlockDriver bdrv_rbd = {
    .format_name = "rbd",
    .is_protocol = true,
    .bdrv_open = rbd_open_node,
    .bdrv_close = rbd_close_node,
    .bdrv_preadv = rbd_preadv,
    .bdrv_create_file = rbd_create_file,
};

#endif /* CONFIG_RBD */
