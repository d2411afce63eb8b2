/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_int_nbd.c: the NBD driver against a scripted in-process server
 * (protocol corners real servers never show: chunks outside a request,
 * unknown cookies, silence, dropped connections, old servers), its location
 * parser, and the public QB_PROT_NBD and sheepdog refusals.
 */

#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "block/block_int.h"
#include "block/nbd.h"
#include "libqblock/libqblock.h"

/* ------------------------------------------------------------------ */
/* The scripted server                                                 */

enum {
    SRV_GOOD,          /* behaves */
    SRV_SILENT,        /* never answers a request */
    SRV_DROP,          /* closes the connection at the first request */
    SRV_BAD_COOKIE,    /* answers with a cookie nobody sent */
    SRV_BAD_OFFSET,    /* sends read data outside the request */
    SRV_WRITE_ENOSPC,  /* fails writes with an error chunk */
    SRV_SHORT_READ,    /* ends a read's reply before all its data came */
};

typedef struct Server {
    /* Script. */
    int mode;
    bool fixed;            /* fixed-newstyle; false: only EXPORT_NAME works */
    bool structured;       /* accepts NBD_OPT_STRUCTURED_REPLY */
    bool oldstyle;
    bool tls_required;
    const char *export_name;
    uint16_t tflags;
    uint32_t max_block;    /* 0: no NBD_INFO_BLOCK_SIZE */
    /* State. */
    char dir[64];
    char path[100];
    int lfd;
    pthread_t thread;
    uint8_t disk[1 << 20];
    /* What it saw. */
    bool saw_meta_query;
    bool saw_go;
    bool saw_export_name;
    int reads, writes, trims, zeroes, zeroes_no_hole, flushes, statuses;
} Server;

static int rd(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void wr(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void opt_reply(int fd, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
    uint8_t h[20];
    be64_store(h, 0x0003e889045565a9ULL);
    be32_store(h + 8, opt);
    be32_store(h + 12, type);
    be32_store(h + 16, len);
    wr(fd, h, sizeof(h));
    wr(fd, data, len);
}

static void chunk(int fd, uint16_t flags, uint16_t type, uint64_t cookie, const void *p1,
                  uint32_t l1, const void *p2, uint32_t l2)
{
    uint8_t h[20];
    be32_store(h, 0x668e33ef);
    be16_store(h + 4, flags);
    be16_store(h + 6, type);
    be64_store(h + 8, cookie);
    be32_store(h + 16, l1 + l2);
    wr(fd, h, sizeof(h));
    wr(fd, p1, l1);
    wr(fd, p2, l2);
}

static void simple(int fd, uint32_t err, uint64_t cookie, const void *data, uint32_t len)
{
    uint8_t h[16];
    be32_store(h, 0x67446698);
    be32_store(h + 4, err);
    be64_store(h + 8, cookie);
    wr(fd, h, sizeof(h));
    wr(fd, data, len);
}

/* The handshake; false when the client went away or was refused. */
static bool serve_handshake(Server *s, int fd)
{
    uint8_t b[64];

    if (s->oldstyle) {
        be64_store(b, 0x4e42444d41474943ULL);
        be64_store(b + 8, 0x0000420281861253ULL);
        wr(fd, b, 16);
        return false;
    }
    be64_store(b, 0x4e42444d41474943ULL);
    be64_store(b + 8, 0x49484156454f5054ULL);
    be16_store(b + 16, s->fixed ? 3 : 0);
    wr(fd, b, 18);
    if (rd(fd, b, 4) < 0) {
        return false;
    }
    for (;;) {
        uint32_t opt, len;
        uint8_t *data;
        if (rd(fd, b, 16) < 0) {
            return false;
        }
        opt = be32_load(b + 8);
        len = be32_load(b + 12);
        data = calloc(1, len + 1);
        if (!data || rd(fd, data, len) < 0) {
            free(data);
            return false;
        }
        if (opt == 1) {                                   /* EXPORT_NAME */
            s->saw_export_name = true;
            if (strcmp((char *)data, s->export_name) != 0) {
                free(data);
                return false;
            }
            be64_store(b, sizeof(s->disk));
            be16_store(b + 8, s->tflags);
            wr(fd, b, 10);                                /* NO_ZEROES was offered */
            free(data);
            return true;
        }
        if (!s->fixed) {
            free(data);
            return false;
        }
        if (s->tls_required) {
            opt_reply(fd, opt, 0x80000005, NULL, 0);
        } else if (opt == 8) {                            /* STRUCTURED_REPLY */
            opt_reply(fd, opt, s->structured ? 1 : 0x80000001, NULL, 0);
        } else if (opt == 10 && s->structured) {          /* SET_META_CONTEXT */
            uint8_t ctx[4 + 15];
            s->saw_meta_query = len >= 4 + 15 &&
                                memmem(data, len, "base:allocation", 15) != NULL;
            be32_store(ctx, 7);
            memcpy(ctx + 4, "base:allocation", 15);
            opt_reply(fd, opt, 4, ctx, sizeof(ctx));
            opt_reply(fd, opt, 1, NULL, 0);
        } else if (opt == 7 && s->max_block) {            /* GO, when this server knows it */
            uint8_t info[14];
            s->saw_go = true;
            if (len < 4 || be32_load(data) != strlen(s->export_name) ||
                memcmp(data + 4, s->export_name, strlen(s->export_name)) != 0) {
                opt_reply(fd, opt, 0x80000006, "no such export", 14);
                free(data);
                continue;
            }
            be16_store(info, 0);
            be64_store(info + 2, sizeof(s->disk));
            be16_store(info + 10, s->tflags);
            opt_reply(fd, opt, 3, info, 12);
            be16_store(info, 3);
            be32_store(info + 2, 1);
            be32_store(info + 6, 4096);
            be32_store(info + 10, s->max_block);
            opt_reply(fd, opt, 3, info, 14);
            opt_reply(fd, opt, 1, NULL, 0);
            free(data);
            return true;
        } else {
            opt_reply(fd, opt, 0x80000001, NULL, 0);
        }
        free(data);
    }
}

static void serve_requests(Server *s, int fd)
{
    uint8_t h[28];

    while (rd(fd, h, 28) == 0) {
        uint16_t flags = be16_load(h + 4), type = be16_load(h + 6);
        uint64_t cookie = be64_load(h + 8), off = be64_load(h + 16);
        uint32_t len = be32_load(h + 24);

        if (type == 2) {
            return;
        }
        if (type == 1 && rd(fd, s->disk + off, len) < 0) {
            return;
        }
        if (s->mode == SRV_SILENT) {
            continue;
        }
        if (s->mode == SRV_DROP) {
            return;
        }
        if (s->mode == SRV_BAD_COOKIE) {
            cookie ^= 0x5555;
        }
        switch (type) {
        case 0: {                                         /* READ */
            uint8_t o[8];
            s->reads++;
            if (!s->structured) {
                simple(fd, 0, cookie, s->disk + off, len);
                break;
            }
            if (s->mode == SRV_SHORT_READ) {
                be64_store(o, off);
                chunk(fd, 1, 1, cookie, o, 8, s->disk + off, len / 2);
                break;
            }
            if (s->mode == SRV_BAD_OFFSET) {
                be64_store(o, off + len - 8);
                chunk(fd, 1, 1, cookie, o, 8, s->disk, 16);
                break;
            }
            /* The second half first, then the first: the client must place each. */
            be64_store(o, off + len / 2);
            chunk(fd, 0, 1, cookie, o, 8, s->disk + off + len / 2, len - len / 2);
            be64_store(o, off);
            chunk(fd, 1, 1, cookie, o, 8, s->disk + off, len / 2);
            break;
        }
        case 1:                                           /* WRITE */
            s->writes++;
            if (s->mode == SRV_WRITE_ENOSPC) {
                uint8_t e[6 + 4];
                be32_store(e, 28);
                be16_store(e + 4, 4);
                memcpy(e + 6, "full", 4);
                chunk(fd, 1, 0x8001, cookie, e, sizeof(e), NULL, 0);
            } else {
                simple(fd, 0, cookie, NULL, 0);
            }
            break;
        case 3:
            s->flushes++;
            simple(fd, 0, cookie, NULL, 0);
            break;
        case 4:
            s->trims++;
            memset(s->disk + off, 0, len);
            simple(fd, 0, cookie, NULL, 0);
            break;
        case 6:
            s->zeroes++;
            s->zeroes_no_hole += (flags & 2) != 0;
            memset(s->disk + off, 0, len);
            simple(fd, 0, cookie, NULL, 0);
            break;
        case 7: {                                         /* BLOCK_STATUS, REQ_ONE */
            uint8_t d[12];
            uint64_t half = sizeof(s->disk) / 2;
            s->statuses++;
            be32_store(d, 7);
            be32_store(d + 4, (uint32_t)(off < half ? MIN((uint64_t)len, half - off) : len));
            be32_store(d + 8, off < half ? 0 : 3);
            chunk(fd, 1, 5, cookie, d, 12, NULL, 0);
            break;
        }
        default:
            simple(fd, 22, cookie, NULL, 0);
        }
    }
}

static void *server_main(void *opaque)
{
    Server *s = opaque;
    int fd = accept(s->lfd, NULL, NULL);

    if (fd >= 0) {
        if (serve_handshake(s, fd)) {
            serve_requests(s, fd);
        }
        close(fd);
    }
    return NULL;
}

static Server *server_start(int mode)
{
    Server *s = calloc(1, sizeof(*s));
    struct sockaddr_un sun = { .sun_family = AF_UNIX };

    ck_assert_ptr_nonnull(s);
    s->mode = mode;
    s->fixed = true;
    s->structured = true;
    s->export_name = "x";
    s->tflags = 1 | 4 | 32 | 64;        /* HAS_FLAGS, FLUSH, TRIM, WRITE_ZEROES */
    s->max_block = 64 * 1024;
    for (size_t i = 0; i < sizeof(s->disk); i++) {
        s->disk[i] = (uint8_t)(i * 7 + i / 4096);
    }
    snprintf(s->dir, sizeof(s->dir), "/tmp/qbnbd-unit.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/s", s->dir);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s->path);
    s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(s->lfd, 0);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    ck_assert_int_eq(listen(s->lfd, 1), 0);
    return s;
}

static void server_run(Server *s)
{
    ck_assert_int_eq(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(Server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    unlink(s->path);
    rmdir(s->dir);
    free(s);
}

/* Open the server's export "x" (or @exp) through the protocol layer. */
static int open_srv(Server *s, const char *exp, unsigned timeout_ms, BlockDriverState **bs,
                    BdrvError *err)
{
    char *name = nbd_format_location(NULL, NULL, s->path, exp ? exp : "x", timeout_ms);
    int ret;

    ck_assert_ptr_nonnull(name);
    ret = bdrv_file_open(bs, name, BDRV_O_RDWR, err);
    free(name);
    return ret;
}

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

START_TEST(nbd_location_forms_parse)
{
    NBDAddress a;
    char msg[256];

    ck_assert_int_eq(nbd_parse_location("nbd://example.org/some%20disk", &a, msg, sizeof(msg)), 0);
    ck_assert_str_eq(a.host, "example.org");
    ck_assert_str_eq(a.port, "10809");
    ck_assert_str_eq(a.export_name, "some disk");
    ck_assert_ptr_null(a.socket_path);
    ck_assert_uint_eq(a.timeout_ms, NBD_DEFAULT_TIMEOUT_MS);
    nbd_address_free(&a);

    ck_assert_int_eq(nbd_parse_location("nbd://[::1]:1234/?timeout_ms=250", &a, msg, sizeof(msg)), 0);
    ck_assert_str_eq(a.host, "::1");
    ck_assert_str_eq(a.port, "1234");
    ck_assert_str_eq(a.export_name, "");
    ck_assert_uint_eq(a.timeout_ms, 250);
    nbd_address_free(&a);

    ck_assert_int_eq(nbd_parse_location("nbd+unix:///e?socket=/run/a%26b.sock", &a, msg,
                                        sizeof(msg)), 0);
    ck_assert_str_eq(a.socket_path, "/run/a&b.sock");
    ck_assert_str_eq(a.export_name, "e");
    ck_assert_ptr_null(a.host);
    nbd_address_free(&a);

    ck_assert_int_eq(nbd_parse_location("nbd:unix:/tmp/s:exportname=d1", &a, msg, sizeof(msg)), 0);
    ck_assert_str_eq(a.socket_path, "/tmp/s");
    ck_assert_str_eq(a.export_name, "d1");
    nbd_address_free(&a);

    ck_assert_int_eq(nbd_parse_location("nbd:localhost:10810", &a, msg, sizeof(msg)), 0);
    ck_assert_str_eq(a.host, "localhost");
    ck_assert_str_eq(a.port, "10810");
    ck_assert_str_eq(a.export_name, "");
    nbd_address_free(&a);

    ck_assert(!nbd_is_location("disk.qcow2"));
    ck_assert(!nbd_is_location("/tmp/nbd:x"));
    ck_assert(nbd_is_location("nbd:unix:/x"));
}
END_TEST

START_TEST(nbd_location_errors_are_einval)
{
    static const char *const bad[] = {
        "nbd+unix:///e", "nbd+unix:///e?socket=", "nbd://", "nbd://:99/e", "nbd://[::1/e",
        "nbd://h/e?color=red", "nbd://h/e?timeout_ms=0", "nbd://h/e?timeout_ms=12x",
        "nbd:hostonly", "nbd:unix:", "nbd:h:", "nbd+unix://host/e?socket=/s",
    };
    NBDAddress a;
    char msg[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = '\0';
        ck_assert_msg(nbd_parse_location(bad[i], &a, msg, sizeof(msg)) == -EINVAL, "%s", bad[i]);
        ck_assert_msg(msg[0] != '\0', "no message for %s", bad[i]);
    }
}
END_TEST

START_TEST(nbd_location_format_round_trips)
{
    static const char *const names[] = { "plain", "a b/c?d&e=f%", "", "\xc3\xa9t\xc3\xa9" };
    NBDAddress a;
    char msg[256];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *u = nbd_format_location(NULL, NULL, "/tmp/dir with space/s?&", names[i], 1234);
        char *t = nbd_format_location("host.example", "4321", NULL, names[i], 0);
        ck_assert_int_eq(nbd_parse_location(u, &a, msg, sizeof(msg)), 0);
        ck_assert_str_eq(a.export_name, names[i]);
        ck_assert_str_eq(a.socket_path, "/tmp/dir with space/s?&");
        ck_assert_uint_eq(a.timeout_ms, 1234);
        nbd_address_free(&a);
        ck_assert_int_eq(nbd_parse_location(t, &a, msg, sizeof(msg)), 0);
        ck_assert_str_eq(a.export_name, names[i]);
        ck_assert_str_eq(a.host, "host.example");
        ck_assert_str_eq(a.port, "4321");
        ck_assert_uint_eq(a.timeout_ms, NBD_DEFAULT_TIMEOUT_MS);
        nbd_address_free(&a);
        free(u);
        free(t);
    }
}
END_TEST

START_TEST(nbd_modern_server_io_status_trim_zero)
{
    Server *s = server_start(SRV_GOOD);
    BlockDriverState *bs;
    BdrvError err = { 0 };
    uint8_t *buf = malloc(300000), *want = malloc(300000);
    uint64_t pnum, map;
    BlockDriverState *file;
    int ret;

    server_run(s);
    ck_assert_int_eq(open_srv(s, NULL, 0, &bs, &err), 0);
    ck_assert_int_eq(bdrv_getlength(bs), 1 << 20);
    ck_assert(s->saw_go && s->saw_meta_query && !s->saw_export_name);

    /* 300000 bytes: five requests at the server's 64 KiB maximum, each in two chunks. */
    memcpy(want, s->disk + 1001, 300000);
    ck_assert_int_eq(bdrv_pread(bs, 1001, buf, 300000), 0);
    ck_assert(memcmp(buf, want, 300000) == 0);
    ck_assert_int_eq(s->reads, 5);

    memset(buf, 0xab, 70000);
    ck_assert_int_eq(bdrv_pwrite(bs, 5, buf, 70000), 0);
    ck_assert_int_eq(s->writes, 2);
    ck_assert(s->disk[5] == 0xab && s->disk[70004] == 0xab);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_int_eq(s->flushes, 1);

    ck_assert_int_eq(bdrv_pdiscard(bs, 4096, 4096), 0);
    ck_assert_int_eq(s->trims, 1);
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 8192, 100), 0);
    ck_assert_int_eq(bdrv_pwrite_zeroes_flags(bs, 9000, 100, BDRV_REQ_MAY_UNMAP), 0);
    ck_assert_int_eq(s->zeroes, 2);
    ck_assert_int_eq(s->zeroes_no_hole, 1);

    /* The first half is data, the second a zero hole. */
    ret = bdrv_block_status(bs, 1000, 1 << 20, &pnum, &map, &file);
    ck_assert_int_ge(ret, 0);
    ck_assert(ret & BDRV_BLOCK_DATA);
    ck_assert(!(ret & BDRV_BLOCK_ZERO));
    ck_assert_uint_eq(pnum, 64 * 1024);
    ret = bdrv_block_status(bs, 600000, 100000, &pnum, &map, &file);
    ck_assert_int_ge(ret, 0);
    ck_assert(!(ret & BDRV_BLOCK_DATA));
    ck_assert(ret & BDRV_BLOCK_ZERO);
    ck_assert(ret & BDRV_BLOCK_HOLE);
    ck_assert_uint_eq(pnum, 64 * 1024);   /* one request at most */
    /* Past the end: zeros, and a write there is out of space. */
    ck_assert_int_eq(bdrv_pread(bs, (1 << 20) - 10, buf, 20), 0);
    ck_assert(buf[10] == 0 && buf[19] == 0);
    ck_assert_int_eq(bdrv_pwrite(bs, (1 << 20) - 10, buf, 20), -ENOSPC);

    bdrv_close(bs);
    server_stop(s);
    free(buf);
    free(want);
}
END_TEST

START_TEST(nbd_old_server_uses_export_name_and_simple_replies)
{
    Server *s = server_start(SRV_GOOD);
    BlockDriverState *bs;
    BdrvError err = { 0 };
    uint8_t buf[5000];
    uint64_t pnum, map;
    BlockDriverState *file;

    s->structured = false;
    s->max_block = 0;           /* no NBD_OPT_GO either */
    s->tflags = 1;              /* no flush, trim or zero */
    server_run(s);
    ck_assert_int_eq(open_srv(s, NULL, 0, &bs, &err), 0);
    ck_assert(s->saw_export_name && !s->saw_meta_query);
    ck_assert_int_eq(bdrv_pread(bs, 777, buf, sizeof(buf)), 0);
    ck_assert(memcmp(buf, s->disk + 777, sizeof(buf)) == 0);
    /* Without base:allocation everything is data; without TRIM a discard sends nothing. */
    ck_assert_int_eq(bdrv_block_status(bs, 600000, 4096, &pnum, &map, &file),
                     BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID);
    ck_assert_int_eq(bdrv_pdiscard(bs, 0, 4096), 0);
    ck_assert_int_eq(s->trims, 0);
    ck_assert(s->disk[1] != 0 || s->disk[2] != 0);
    /* Without WRITE_ZEROES the generic layer writes zeros. */
    ck_assert_int_eq(bdrv_pwrite_zeroes(bs, 0, 4096), 0);
    ck_assert_int_eq(s->zeroes, 0);
    ck_assert(s->disk[1] == 0 && s->disk[4095] == 0);
    ck_assert_int_eq(bdrv_flush(bs), 0);
    ck_assert_int_eq(s->flushes, 0);
    bdrv_close(bs);
    server_stop(s);
}
END_TEST

START_TEST(nbd_silent_server_times_out)
{
    Server *s = server_start(SRV_SILENT);
    BlockDriverState *bs;
    BdrvError err = { 0 };
    uint8_t buf[512];
    int64_t t0;

    server_run(s);
    ck_assert_int_eq(open_srv(s, NULL, 300, &bs, &err), 0);
    t0 = ms_now();
    ck_assert_int_eq(bdrv_pread(bs, 0, buf, sizeof(buf)), -ETIMEDOUT);
    ck_assert_int_ge(ms_now() - t0, 290);
    /* The connection stays failed: later requests fail at once. */
    ck_assert_int_eq(bdrv_pwrite(bs, 0, buf, sizeof(buf)), -ETIMEDOUT);
    bdrv_close(bs);
    server_stop(s);
}
END_TEST

/* A misbehaving server fails the request with @want; the buffer outside the request is intact. */
static void misbehaving(int mode, bool write, int want)
{
    Server *s = server_start(mode);
    BlockDriverState *bs;
    BdrvError err = { 0 };
    uint8_t buf[4096 + 64];
    QBIOVector qiov;

    server_run(s);
    ck_assert_int_eq(open_srv(s, NULL, 5000, &bs, &err), 0);
    memset(buf, 0xee, sizeof(buf));
    qiov_init_buf(&qiov, buf, 4096);
    ck_assert_int_eq(write ? bdrv_pwritev(bs, 8192, &qiov) : bdrv_preadv(bs, 8192, &qiov), want);
    for (size_t i = 4096; i < sizeof(buf); i++) {
        ck_assert_uint_eq(buf[i], 0xee);
    }
    bdrv_close(bs);
    server_stop(s);
}

START_TEST(nbd_dropped_connection_is_eio)
{
    misbehaving(SRV_DROP, false, -EIO);
}
END_TEST

START_TEST(nbd_unknown_cookie_is_eio)
{
    misbehaving(SRV_BAD_COOKIE, false, -EIO);
}
END_TEST

START_TEST(nbd_chunk_outside_request_is_eio)
{
    misbehaving(SRV_BAD_OFFSET, false, -EIO);
}
END_TEST

START_TEST(nbd_short_read_is_eio)
{
    misbehaving(SRV_SHORT_READ, false, -EIO);
}
END_TEST

START_TEST(nbd_error_chunk_maps_errno)
{
    misbehaving(SRV_WRITE_ENOSPC, true, -ENOSPC);
}
END_TEST

START_TEST(nbd_handshake_refusals)
{
    BlockDriverState *bs;
    BdrvError err = { 0 };
    Server *s = server_start(SRV_GOOD);

    server_run(s);
    ck_assert_int_eq(open_srv(s, "nope", 0, &bs, &err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "no such export"));
    server_stop(s);

    s = server_start(SRV_GOOD);
    s->tls_required = true;
    server_run(s);
    ck_assert_msg(open_srv(s, NULL, 0, &bs, &err) == -ENOTSUP, "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "TLS"));
    server_stop(s);

    s = server_start(SRV_GOOD);
    s->oldstyle = true;
    server_run(s);
    ck_assert_int_eq(open_srv(s, NULL, 0, &bs, &err), -ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err.msg, "old-style"));
    server_stop(s);

    s = server_start(SRV_GOOD);
    s->tflags |= 2;            /* read-only */
    server_run(s);
    ck_assert_int_eq(open_srv(s, NULL, 0, &bs, &err), -EROFS);
    server_stop(s);
}
END_TEST

START_TEST(nbd_public_location_validated_and_opened)
{
    QBroker *b;
    QBlockState *qbs;
    QBlockProtInfo loc;
    QBlockFmtInfo *fi;
    QBlockStaticInfo *info;
    Server *s;
    char msg[1024], sock_path[100];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_NBD;
    ck_assert_int_eq(qb_open(b, qbs, &loc, NULL, 0), QB_ERR_INVALID_PARAM);   /* nowhere */
    loc.prot_op.o_nbd.host = "localhost";
    loc.prot_op.o_nbd.socket_path = "/tmp/x";
    ck_assert_int_eq(qb_open(b, qbs, &loc, NULL, 0), QB_ERR_INVALID_PARAM);   /* both */
    loc.prot_op.o_nbd.socket_path = NULL;
    loc.prot_op.o_nbd.tls = 1;
    ck_assert_int_eq(qb_open(b, qbs, &loc, NULL, 0), QB_ERR_NOT_SUPPORTED);
    loc.prot_op.o_nbd.tls = 0;
    loc.prot_op.o_nbd.reserved[3] = 1;
    ck_assert_int_eq(qb_open(b, qbs, &loc, NULL, 0), QB_ERR_INVALID_PARAM);
    loc.prot_op.o_nbd.reserved[3] = 0;
    loc.prot_op.o_nbd.port_number = 70000;
    ck_assert_int_eq(qb_open(b, qbs, &loc, NULL, 0), QB_ERR_INVALID_PARAM);

    /* Creating on NBD is refused before anything connects. */
    ck_assert_int_eq(qb_fmt_info_new(b, &fi), 0);
    fi->fmt_type = QB_FMT_QCOW2;
    fi->fmt_op.o_qcow2.virt_size = 1 << 20;
    loc.prot_op.o_nbd.port_number = 1;
    ck_assert_int_eq(qb_create(b, qbs, &loc, fi, 0), QB_ERR_NOT_SUPPORTED);
    qb_error_get_human_str(b, msg, sizeof(msg));
    ck_assert_ptr_nonnull(strstr(msg, "cannot be created on NBD"));

    /* A real (scripted) server through the public API. */
    s = server_start(SRV_GOOD);
    server_run(s);
    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_NBD;
    snprintf(sock_path, sizeof(sock_path), "%s", s->path);
    loc.prot_op.o_nbd.socket_path = sock_path;
    loc.prot_op.o_nbd.export_name = "x";
    fi->fmt_type = QB_FMT_RAW;
    ck_assert_int_eq(qb_open(b, qbs, &loc, fi, 0), 0);
    ck_assert_int_eq(qb_info_image_static_get(b, qbs, &info), 0);
    ck_assert_uint_eq(info->virt_size, 1 << 20);
    qb_info_image_static_delete(b, &info);
    ck_assert_int_eq(qb_close(b, qbs), 0);
    server_stop(s);

    /* No server at all: an I/O error, not a hang or an internal error. */
    ck_assert_int_eq(qb_open(b, qbs, &loc, fi, 0), QB_ERR_IO);
    qb_fmt_info_delete(b, &fi);
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
    ck_assert_ptr_nonnull(strstr(qb_strerror(QB_ERR_IO), "network"));
    ck_assert_ptr_nonnull(strstr(qb_strerror(QB_ERR_TIMEOUT), "time"));
}
END_TEST

START_TEST(sheepdog_is_refused_with_the_reason)
{
    QBroker *b;
    QBlockState *qbs;
    QBlockProtInfo loc;
    QBlockFmtInfo *fi;
    char path[] = "/tmp/qbsheep.XXXXXX";
    char msg[1024];
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ck_assert_int_eq(qb_fmt_info_new(b, &fi), 0);
    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_FILE;
    loc.prot_op.o_file.filename = path;
    fi->fmt_type = QB_FMT_SHEEPDOG;
    fi->fmt_op.o_sheepdog.virt_size = 1 << 20;
    ck_assert_int_eq(qb_create(b, qbs, &loc, fi, 0), QB_ERR_NOT_SUPPORTED);
    qb_error_get_human_str(b, msg, sizeof(msg));
    ck_assert_ptr_nonnull(strstr(msg, "no Sheepdog server exists"));
    ck_assert_int_eq(qb_open(b, qbs, &loc, fi, 0), QB_ERR_NOT_SUPPORTED);
    qb_error_get_human_str(b, msg, sizeof(msg));
    ck_assert_ptr_nonnull(strstr(msg, "QEMU removed its sheepdog driver in 6.0"));
    qb_fmt_info_delete(b, &fi);
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
    unlink(path);
}
END_TEST

static Suite *nbd_suite(void)
{
    Suite *s = suite_create("nbd");
    TCase *tc = tcase_create("location");

    tcase_add_test(tc, nbd_location_forms_parse);
    tcase_add_test(tc, nbd_location_errors_are_einval);
    tcase_add_test(tc, nbd_location_format_round_trips);
    suite_add_tcase(s, tc);

    tc = tcase_create("protocol");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, nbd_modern_server_io_status_trim_zero);
    tcase_add_test(tc, nbd_old_server_uses_export_name_and_simple_replies);
    tcase_add_test(tc, nbd_silent_server_times_out);
    tcase_add_test(tc, nbd_dropped_connection_is_eio);
    tcase_add_test(tc, nbd_unknown_cookie_is_eio);
    tcase_add_test(tc, nbd_chunk_outside_request_is_eio);
    tcase_add_test(tc, nbd_error_chunk_maps_errno);
    tcase_add_test(tc, nbd_short_read_is_eio);
    tcase_add_test(tc, nbd_handshake_refusals);
    suite_add_tcase(s, tc);

    tc = tcase_create("public");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, nbd_public_location_validated_and_opened);
    tcase_add_test(tc, sheepdog_is_refused_with_the_reason);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nbd_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
