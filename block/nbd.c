/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nbd.c: the NBD protocol driver, a client of the Network Block Device
 * protocol (fixed-newstyle handshake, structured replies, base:allocation
 * block status) written from the protocol's published specification.
 *
 * Invariants of the transmission phase:
 *  1. Only the reader thread reads the socket, and only it completes a
 *     request (sets done). A caller's buffers are therefore never written
 *     after its request completed, whatever failed.
 *  2. A sender holds send_lock for a whole request (header and payload), so
 *     requests never interleave on the wire; several may be in flight.
 *  3. Once the connection fails (s->dead < 0) it stays failed: the reader
 *     completes every pending request with that error and exits, and new
 *     requests fail at once. A failure in a sender shuts the socket down,
 *     which makes the reader notice.
 *  4. A pending request for which nothing arrives for timeout_ms fails the
 *     connection with -ETIMEDOUT; nothing waits without a bound.
 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "block/block_int.h"
#include "block/nbd.h"

/* Handshake. */
#define NBD_MAGIC               0x4e42444d41474943ULL   /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC          0x49484156454f5054ULL   /* "IHAVEOPT" */
#define NBD_OLDSTYLE_MAGIC      0x0000420281861253ULL
#define NBD_REP_MAGIC           0x0003e889045565a9ULL
#define NBD_FLAG_FIXED_NEWSTYLE 0x1
#define NBD_FLAG_NO_ZEROES      0x2
#define NBD_OPT_EXPORT_NAME     1
#define NBD_OPT_ABORT           2
#define NBD_OPT_GO              7
#define NBD_OPT_STRUCTURED_REPLY 8
#define NBD_OPT_SET_META_CONTEXT 10
#define NBD_REP_ACK             1
#define NBD_REP_INFO            3
#define NBD_REP_META_CONTEXT    4
#define NBD_REP_ERR_BIT         0x80000000u
#define NBD_REP_ERR_UNSUP       (NBD_REP_ERR_BIT | 1)
#define NBD_REP_ERR_POLICY      (NBD_REP_ERR_BIT | 2)
#define NBD_REP_ERR_TLS_REQD    (NBD_REP_ERR_BIT | 5)
#define NBD_REP_ERR_UNKNOWN     (NBD_REP_ERR_BIT | 6)
#define NBD_INFO_EXPORT         0
#define NBD_INFO_BLOCK_SIZE     3

/* Transmission flags. */
#define NBD_TFLAG_HAS_FLAGS     (1u << 0)
#define NBD_TFLAG_READ_ONLY     (1u << 1)
#define NBD_TFLAG_SEND_FLUSH    (1u << 2)
#define NBD_TFLAG_SEND_TRIM     (1u << 5)
#define NBD_TFLAG_SEND_WRITE_ZEROES (1u << 6)

/* Requests and replies. */
#define NBD_REQUEST_MAGIC       0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC  0x67446698u
#define NBD_STRUCT_REPLY_MAGIC  0x668e33efu
#define NBD_CMD_READ            0
#define NBD_CMD_WRITE           1
#define NBD_CMD_DISC            2
#define NBD_CMD_FLUSH           3
#define NBD_CMD_TRIM            4
#define NBD_CMD_WRITE_ZEROES    6
#define NBD_CMD_BLOCK_STATUS    7
#define NBD_CMD_FLAG_NO_HOLE    (1u << 1)
#define NBD_CMD_FLAG_REQ_ONE    (1u << 3)
#define NBD_REPLY_FLAG_DONE     1
#define NBD_REPLY_TYPE_NONE     0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR_BIT 0x8000u
#define NBD_STATE_HOLE          1u
#define NBD_STATE_ZERO          2u

/* Bounds this client keeps to. */
#define NBD_MAX_INFLIGHT        16
#define NBD_MAX_REQUEST         (32u << 20)   /* the largest request servers must accept */
#define NBD_MAX_OPT_REPLY       (64u << 10)
#define NBD_IDLE_POLL_MS        200           /* the reader's wake-up period when idle */

typedef struct NBDRequest {
    bool in_use;
    bool done;
    int ret;
    uint16_t type;
    uint64_t cookie;
    uint64_t offset;
    uint32_t len;
    QBIOVector *qiov;             /* READ: where the data goes */
    uint64_t covered;             /* READ: bytes the data and hole chunks filled */
    bool got_status;              /* BLOCK_STATUS: the first extent */
    uint32_t status_len;
    uint32_t status_flags;
    int64_t sent_ms;              /* monotonic time the request was sent */
} NBDRequest;

typedef struct BDRVNBDState {
    int fd;
    NBDAddress addr;
    uint64_t size;
    uint16_t tflags;
    bool structured;
    bool have_meta;
    uint32_t meta_id;
    uint32_t max_request;
    uint32_t min_block;            /* requests are multiples of it, at multiples of it */
    pthread_mutex_t rmw_lock;      /* with min_block > 1: one write at a time */

    pthread_mutex_t lock;          /* requests, dead, last_recv_ms */
    pthread_cond_t cond;           /* a request completed or a slot freed */
    pthread_mutex_t send_lock;     /* one request on the wire at a time */
    pthread_t reader;
    bool reader_running;
    int dead;                      /* 0, or the -errno the connection failed with */
    uint64_t seq;
    int64_t last_recv_ms;
    NBDRequest req[NBD_MAX_INFLIGHT];
} BDRVNBDState;

/* ------------------------------------------------------------------ */
/* Socket I/O with timeouts                                            */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until @fd is ready for @events; -ETIMEDOUT after @timeout_ms. */
static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int64_t deadline = now_ms() + timeout_ms;

    for (;;) {
        int left = (int)MAX(deadline - now_ms(), 0);
        int n = poll(&pfd, 1, left);
        if (n > 0) {
            return 0;
        }
        if (n == 0) {
            return -ETIMEDOUT;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

/* Read exactly @len bytes; -EIO on end of stream, -ETIMEDOUT when the peer stalls. */
static int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;

    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n == 0) {
            return -EIO;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int ret = wait_fd(fd, POLLIN, timeout_ms);
            if (ret < 0) {
                return ret;
            }
        } else if (errno != EINTR) {
            return errno == ECONNRESET ? -EIO : -errno;
        }
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t len, int timeout_ms)
{
    const char *p = buf;

    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int ret = wait_fd(fd, POLLOUT, timeout_ms);
            if (ret < 0) {
                return ret;
            }
        } else if (n < 0 && errno != EINTR) {
            return errno == EPIPE || errno == ECONNRESET ? -EIO : -errno;
        }
    }
    return 0;
}

/* Read and throw away @len bytes. */
static int drain(int fd, uint64_t len, int timeout_ms)
{
    char buf[4096];

    while (len) {
        size_t n = (size_t)MIN(len, sizeof(buf));
        int ret = read_full(fd, buf, n, timeout_ms);
        if (ret < 0) {
            return ret;
        }
        len -= n;
    }
    return 0;
}

/* Read @len bytes into @qiov from byte @offset of it. */
static int read_qiov(int fd, QBIOVector *qiov, size_t offset, size_t len, int timeout_ms)
{
    for (int i = 0; i < qiov->niov && len; i++) {
        size_t seg = qiov->iov[i].iov_len;
        size_t n;
        int ret;

        if (offset >= seg) {
            offset -= seg;
            continue;
        }
        n = MIN(seg - offset, len);
        ret = read_full(fd, (char *)qiov->iov[i].iov_base + offset, n, timeout_ms);
        if (ret < 0) {
            return ret;
        }
        offset = 0;
        len -= n;
    }
    return len ? -EIO : 0;
}

static int connect_socket(BDRVNBDState *s, BdrvError *err)
{
    const NBDAddress *a = &s->addr;
    int timeout = (int)a->timeout_ms;
    int fd = -1, ret = -EHOSTUNREACH;

    if (a->socket_path) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", a->socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            return bdrv_error_set(err, -errno, "cannot create a socket: %s", strerror(errno));
        }
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
            ret = -errno;
            if (errno == EAGAIN || errno == EINPROGRESS) {
                ret = wait_fd(fd, POLLOUT, timeout);
            }
            if (ret < 0) {
                close(fd);
                /* No socket file is no server listening, as a refused TCP connect. */
                return bdrv_error_set(err, ret == -ENOENT ? -ECONNREFUSED : ret,
                                      "cannot connect to NBD server at '%s': %s",
                                      a->socket_path, strerror(-ret));
            }
        }
        s->fd = fd;
        return 0;
    }

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(a->host, a->port, &hints, &res);
    if (gai != 0) {
        return bdrv_error_set(err, -EHOSTUNREACH, "cannot resolve NBD server '%s' port '%s': %s",
                              a->host, a->port, gai_strerror(gai));
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0) {
            ret = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            ret = 0;
        } else if (errno == EINPROGRESS) {
            ret = wait_fd(fd, POLLOUT, timeout);
            if (ret == 0) {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                ret = -soerr;
            }
        } else {
            ret = -errno;
        }
        if (ret == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        return bdrv_error_set(err, ret, "cannot connect to NBD server %s port %s: %s",
                              a->host, a->port, strerror(-ret));
    }
    s->fd = fd;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Handshake                                                           */

static int send_option(BDRVNBDState *s, uint32_t opt, const void *data, uint32_t len)
{
    uint8_t hdr[16];
    int ret;

    be64_store(hdr, NBD_OPTS_MAGIC);
    be32_store(hdr + 8, opt);
    be32_store(hdr + 12, len);
    ret = write_full(s->fd, hdr, sizeof(hdr), (int)s->addr.timeout_ms);
    if (ret == 0 && len) {
        ret = write_full(s->fd, data, len, (int)s->addr.timeout_ms);
    }
    return ret;
}

/*
 * Read one option reply to @opt: its type in *type, its payload (at most
 * NBD_MAX_OPT_REPLY bytes) malloc'ed in *data with its length in *len.
 */
static int read_option_reply(BDRVNBDState *s, uint32_t opt, uint32_t *type, uint8_t **data,
                             uint32_t *len, BdrvError *err)
{
    uint8_t hdr[20];
    int ret = read_full(s->fd, hdr, sizeof(hdr), (int)s->addr.timeout_ms);

    *data = NULL;
    if (ret < 0) {
        return bdrv_error_set(err, ret, "NBD handshake: reading an option reply: %s",
                              strerror(-ret));
    }
    if (be64_load(hdr) != NBD_REP_MAGIC || be32_load(hdr + 8) != opt) {
        return bdrv_error_set(err, -EPROTO, "NBD handshake: malformed reply to option %u", opt);
    }
    *type = be32_load(hdr + 12);
    *len = be32_load(hdr + 16);
    if (*len > NBD_MAX_OPT_REPLY) {
        return bdrv_error_set(err, -EPROTO, "NBD handshake: option reply of %u bytes is too long",
                              *len);
    }
    *data = malloc(*len + 1);
    if (!*data) {
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    ret = read_full(s->fd, *data, *len, (int)s->addr.timeout_ms);
    if (ret < 0) {
        free(*data);
        *data = NULL;
        return bdrv_error_set(err, ret, "NBD handshake: reading an option reply: %s",
                              strerror(-ret));
    }
    (*data)[*len] = '\0';
    return 0;
}

/* The errno and message for an option's error reply (the server's text kept). */
static int option_error(BDRVNBDState *s, uint32_t type, const char *what, const uint8_t *data,
                        BdrvError *err)
{
    int code;
    const char *why;

    switch (type) {
    case NBD_REP_ERR_UNKNOWN:
        code = -ENOENT;
        why = "the server has no such export";
        break;
    case NBD_REP_ERR_TLS_REQD:
        code = -ENOTSUP;
        why = "the server requires TLS, which libqblock does not support";
        break;
    case NBD_REP_ERR_POLICY:
        code = -EACCES;
        why = "refused by the server's policy";
        break;
    default:
        code = -EPROTO;
        why = "refused by the server";
        break;
    }
    return bdrv_error_set(err, code, "NBD export '%s': %s: %s%s%s", s->addr.export_name, what,
                          why, data && data[0] ? ": " : "", data ? (const char *)data : "");
}

/* NBD_OPT_STRUCTURED_REPLY; a server that refuses it gets simple replies. */
static int negotiate_structured(BDRVNBDState *s, BdrvError *err)
{
    uint32_t type, len;
    uint8_t *data;
    int ret = send_option(s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);

    if (ret < 0) {
        return bdrv_error_set(err, ret, "NBD handshake: %s", strerror(-ret));
    }
    ret = read_option_reply(s, NBD_OPT_STRUCTURED_REPLY, &type, &data, &len, err);
    free(data);
    if (ret == 0) {
        s->structured = type == NBD_REP_ACK;
    }
    return ret;
}

/* Build "u32 name length, name" at @p; returns the bytes written. */
static size_t put_name(uint8_t *p, const char *name)
{
    size_t n = strlen(name);
    be32_store(p, (uint32_t)n);
    memcpy(p + 4, name, n);
    return 4 + n;
}

/*
 * Send option @opt whose data is the export name (u32 length, name)
 * followed by @tail; a broken stream is reported in @err.
 */
static int send_named_option(BDRVNBDState *s, uint32_t opt, const uint8_t *tail,
                             size_t tail_len, BdrvError *err)
{
    uint8_t *buf = malloc(4 + strlen(s->addr.export_name) + tail_len);
    size_t n;
    int ret;

    if (!buf) {
        return bdrv_error_set(err, -ENOMEM, "out of memory");
    }
    n = put_name(buf, s->addr.export_name);
    memcpy(buf + n, tail, tail_len);
    ret = send_option(s, opt, buf, (uint32_t)(n + tail_len));
    free(buf);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "NBD handshake: %s", strerror(-ret));
    }
    return 0;
}

/* NBD_OPT_SET_META_CONTEXT for base:allocation; without it, status says "all data". */
static int negotiate_meta(BDRVNBDState *s, BdrvError *err)
{
    static const char ctx[] = "base:allocation";
    uint8_t query[4 + 4 + sizeof(ctx)];
    int ret;

    be32_store(query, 1);
    ret = send_named_option(s, NBD_OPT_SET_META_CONTEXT, query,
                            4 + put_name(query + 4, ctx), err);
    if (ret < 0) {
        return ret;
    }
    for (;;) {
        uint32_t type, len;
        uint8_t *data;
        ret = read_option_reply(s, NBD_OPT_SET_META_CONTEXT, &type, &data, &len, err);
        if (ret < 0) {
            return ret;
        }
        if (type == NBD_REP_META_CONTEXT && len >= 4 && len - 4 == strlen(ctx) &&
            memcmp(data + 4, ctx, len - 4) == 0) {
            s->have_meta = true;
            s->meta_id = be32_load(data);
        }
        free(data);
        if (type == NBD_REP_ACK || (type & NBD_REP_ERR_BIT)) {
            return 0;
        }
    }
}

/* NBD_OPT_GO: 1 on success, 0 when the server does not know it (use EXPORT_NAME). */
static int negotiate_go(BDRVNBDState *s, BdrvError *err)
{
    uint8_t infos[4];
    bool got_export = false;
    int ret;

    be16_store(infos, 1);
    be16_store(infos + 2, NBD_INFO_BLOCK_SIZE);
    ret = send_named_option(s, NBD_OPT_GO, infos, sizeof(infos), err);
    if (ret < 0) {
        return ret;
    }
    for (;;) {
        uint32_t type, len;
        uint8_t *data;
        ret = read_option_reply(s, NBD_OPT_GO, &type, &data, &len, err);
        if (ret < 0) {
            return ret;
        }
        if (type == NBD_REP_INFO && len >= 2) {
            uint16_t info = be16_load(data);
            if (info == NBD_INFO_EXPORT && len >= 12) {
                s->size = be64_load(data + 2);
                s->tflags = be16_load(data + 10);
                got_export = true;
            } else if (info == NBD_INFO_BLOCK_SIZE && len >= 14) {
                uint32_t min = be32_load(data + 2), max = be32_load(data + 10);
                /* The spec bounds the minimum to a power of two up to 64 KiB. */
                if (IS_POW2(min) && min <= 65536) {
                    s->min_block = min;
                }
                if (max >= 512) {
                    s->max_request = MIN(max, NBD_MAX_REQUEST);
                }
            }
        } else if (type == NBD_REP_ACK) {
            free(data);
            if (!got_export) {
                return bdrv_error_set(err, -EPROTO,
                                      "NBD handshake: the server did not tell the export size");
            }
            return 1;
        } else if (type == NBD_REP_ERR_UNSUP) {
            free(data);
            return 0;
        } else if (type & NBD_REP_ERR_BIT) {
            ret = option_error(s, type, "cannot open", data, err);
            free(data);
            return ret;
        }
        free(data);
    }
}

/* The old way to pick an export: the server closes the connection when it has none. */
static int negotiate_export_name(BDRVNBDState *s, bool no_zeroes, BdrvError *err)
{
    uint8_t reply[10 + 124];
    int ret = send_option(s, NBD_OPT_EXPORT_NAME, s->addr.export_name,
                          (uint32_t)strlen(s->addr.export_name));

    if (ret == 0) {
        ret = read_full(s->fd, reply, no_zeroes ? 10 : sizeof(reply), (int)s->addr.timeout_ms);
    }
    if (ret < 0) {
        return bdrv_error_set(err, ret, "NBD export '%s': the server refused it (%s)",
                              s->addr.export_name, strerror(-ret));
    }
    s->size = be64_load(reply);
    s->tflags = be16_load(reply + 8);
    return 0;
}

static int nbd_handshake(BDRVNBDState *s, BdrvError *err)
{
    uint8_t buf[18];
    uint16_t hflags;
    uint32_t cflags;
    int ret = read_full(s->fd, buf, 16, (int)s->addr.timeout_ms);

    if (ret < 0) {
        return bdrv_error_set(err, ret == -ETIMEDOUT ? ret : -EPROTO,
                              "NBD handshake: no greeting from the server (%s)", strerror(-ret));
    }
    if (be64_load(buf) != NBD_MAGIC) {
        return bdrv_error_set(err, -EPROTO, "NBD handshake: the peer is not an NBD server");
    }
    if (be64_load(buf + 8) == NBD_OLDSTYLE_MAGIC) {
        return bdrv_error_set(err, -ENOTSUP,
                              "NBD handshake: the server speaks the old-style protocol, which "
                              "libqblock does not support");
    }
    if (be64_load(buf + 8) != NBD_OPTS_MAGIC) {
        return bdrv_error_set(err, -EPROTO, "NBD handshake: unknown protocol variant");
    }
    ret = read_full(s->fd, buf + 16, 2, (int)s->addr.timeout_ms);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "NBD handshake: %s", strerror(-ret));
    }
    hflags = be16_load(buf + 16);
    cflags = hflags & (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    be32_store(buf, cflags);
    ret = write_full(s->fd, buf, 4, (int)s->addr.timeout_ms);
    if (ret < 0) {
        return bdrv_error_set(err, ret, "NBD handshake: %s", strerror(-ret));
    }
    s->max_request = NBD_MAX_REQUEST;
    s->min_block = 1;
    if (hflags & NBD_FLAG_FIXED_NEWSTYLE) {
        ret = negotiate_structured(s, err);
        if (ret == 0 && s->structured) {
            ret = negotiate_meta(s, err);
        }
        if (ret == 0) {
            ret = negotiate_go(s, err);
        }
        if (ret != 0) {
            return ret < 0 ? ret : 0;
        }
    }
    return negotiate_export_name(s, cflags & NBD_FLAG_NO_ZEROES, err);
}

/* ------------------------------------------------------------------ */
/* Transmission: the reader thread                                     */

/* Fail the connection (invariant 3); the caller holds s->lock. */
static void fail_all_locked(BDRVNBDState *s, int ret)
{
    if (!s->dead) {
        s->dead = ret;
    }
    for (int i = 0; i < NBD_MAX_INFLIGHT; i++) {
        if (s->req[i].in_use && !s->req[i].done) {
            s->req[i].done = true;
            s->req[i].ret = s->dead;
        }
    }
    pthread_cond_broadcast(&s->cond);
}

static NBDRequest *find_request(BDRVNBDState *s, uint64_t cookie)
{
    NBDRequest *r = &s->req[cookie % NBD_MAX_INFLIGHT];
    NBDRequest *found;

    pthread_mutex_lock(&s->lock);
    found = r->in_use && !r->done && r->cookie == cookie ? r : NULL;
    s->last_recv_ms = now_ms();
    pthread_mutex_unlock(&s->lock);
    return found;
}

static void complete(BDRVNBDState *s, NBDRequest *r)
{
    pthread_mutex_lock(&s->lock);
    r->done = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* The errno an NBD error value stands for (the protocol's numbers are Linux's). */
static int nbd_errno(uint32_t e)
{
    switch (e) {
    case 1: return -EPERM;
    case 5: return -EIO;
    case 12: return -ENOMEM;
    case 22: return -EINVAL;
    case 28: return -ENOSPC;
    case 75: return -EOVERFLOW;
    case 95: return -ENOTSUP;
    case 108: return -ESHUTDOWN;
    default: return -EIO;
    }
}

/*
 * Wait for the next reply header, failing pending requests that get no
 * answer for timeout_ms (invariant 4). 0: readable; <0: the connection failed.
 */
static int wait_reply(BDRVNBDState *s)
{
    struct pollfd pfd = { .fd = s->fd, .events = POLLIN };

    for (;;) {
        int64_t deadline = -1, now = now_ms();
        int wait = NBD_IDLE_POLL_MS, n;

        pthread_mutex_lock(&s->lock);
        if (s->dead) {
            pthread_mutex_unlock(&s->lock);
            return s->dead;
        }
        for (int i = 0; i < NBD_MAX_INFLIGHT; i++) {
            NBDRequest *r = &s->req[i];
            if (r->in_use && !r->done && r->sent_ms) {
                int64_t d = MAX(r->sent_ms, s->last_recv_ms) + s->addr.timeout_ms;
                deadline = deadline < 0 ? d : MIN(deadline, d);
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (deadline >= 0) {
            if (now >= deadline) {
                return -ETIMEDOUT;
            }
            wait = (int)MIN(deadline - now, (int64_t)NBD_IDLE_POLL_MS);
        }
        n = poll(&pfd, 1, wait);
        if (n > 0) {
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
    }
}

static int read_simple_reply(BDRVNBDState *s, const uint8_t *hdr)
{
    int timeout = (int)s->addr.timeout_ms;
    uint8_t rest[12];
    NBDRequest *r;
    int ret = read_full(s->fd, rest, sizeof(rest), timeout);

    (void)hdr;
    if (ret < 0) {
        return ret;
    }
    r = find_request(s, be64_load(rest + 4));
    if (!r) {
        return -EPROTO;
    }
    r->ret = be32_load(rest) ? nbd_errno(be32_load(rest)) : 0;
    if (r->ret == 0 && r->type == NBD_CMD_READ) {
        ret = read_qiov(s->fd, r->qiov, 0, r->len, timeout);
        if (ret < 0) {
            return ret;
        }
    }
    complete(s, r);
    return 0;
}

static int read_structured_chunk(BDRVNBDState *s)
{
    int timeout = (int)s->addr.timeout_ms;
    uint8_t hdr[16], buf[14];
    NBDRequest *r;
    uint16_t flags, type;
    uint32_t len;
    int ret = read_full(s->fd, hdr, sizeof(hdr), timeout);

    if (ret < 0) {
        return ret;
    }
    flags = be16_load(hdr);
    type = be16_load(hdr + 2);
    len = be32_load(hdr + 12);
    r = find_request(s, be64_load(hdr + 4));
    if (!r) {
        return -EPROTO;
    }
    switch (type) {
    case NBD_REPLY_TYPE_NONE:
        if (len != 0 || !(flags & NBD_REPLY_FLAG_DONE)) {
            return -EPROTO;
        }
        break;
    case NBD_REPLY_TYPE_OFFSET_DATA:
    case NBD_REPLY_TYPE_OFFSET_HOLE: {
        uint64_t off, n;
        if (r->type != NBD_CMD_READ || len < (type == NBD_REPLY_TYPE_OFFSET_DATA ? 8u : 12u)) {
            return -EPROTO;
        }
        ret = read_full(s->fd, buf, type == NBD_REPLY_TYPE_OFFSET_DATA ? 8 : 12, timeout);
        if (ret < 0) {
            return ret;
        }
        off = be64_load(buf);
        n = type == NBD_REPLY_TYPE_OFFSET_DATA ? len - 8u : be32_load(buf + 8);
        if (type == NBD_REPLY_TYPE_OFFSET_HOLE && len != 12) {
            return -EPROTO;
        }
        /* A chunk outside the request would write past the caller's buffer. */
        if (off < r->offset || n > r->len || off - r->offset > r->len - n) {
            return -EPROTO;
        }
        if (type == NBD_REPLY_TYPE_OFFSET_DATA) {
            ret = read_qiov(s->fd, r->qiov, (size_t)(off - r->offset), (size_t)n, timeout);
            if (ret < 0) {
                return ret;
            }
        } else {
            qiov_memset(r->qiov, (size_t)(off - r->offset), 0, (size_t)n);
        }
        r->covered += n;
        break;
    }
    case NBD_REPLY_TYPE_BLOCK_STATUS:
        if (r->type != NBD_CMD_BLOCK_STATUS || len < 12 || (len - 4) % 8) {
            return -EPROTO;
        }
        ret = read_full(s->fd, buf, 12, timeout);
        if (ret < 0) {
            return ret;
        }
        if (be32_load(buf) == s->meta_id && !r->got_status) {
            r->got_status = true;
            r->status_len = be32_load(buf + 4);
            r->status_flags = be32_load(buf + 8);
        }
        ret = drain(s->fd, len - 12, timeout);
        if (ret < 0) {
            return ret;
        }
        break;
    default:
        if (type & NBD_REPLY_TYPE_ERROR_BIT) {
            uint32_t e = 0;
            if (len >= 6) {
                ret = read_full(s->fd, buf, 4, timeout);
                if (ret < 0) {
                    return ret;
                }
                e = be32_load(buf);
                len -= 4;
            }
            ret = drain(s->fd, len, timeout);
            if (ret < 0) {
                return ret;
            }
            if (r->ret == 0) {
                r->ret = nbd_errno(e);
            }
        } else {
            /* A chunk type this client did not negotiate. */
            return -EPROTO;
        }
        break;
    }
    if (flags & NBD_REPLY_FLAG_DONE) {
        /* Chunks never overlap, so a successful read must have filled every byte. */
        if (r->type == NBD_CMD_READ && r->ret == 0 && r->covered != r->len) {
            r->ret = -EIO;
        }
        complete(s, r);
    }
    return 0;
}

static void *reader_main(void *opaque)
{
    BDRVNBDState *s = opaque;
    int ret;

    for (;;) {
        uint8_t magic[4];

        ret = wait_reply(s);
        if (ret == 0) {
            ret = read_full(s->fd, magic, 4, (int)s->addr.timeout_ms);
        }
        if (ret == 0) {
            uint32_t m = be32_load(magic);
            if (m == NBD_SIMPLE_REPLY_MAGIC) {
                ret = read_simple_reply(s, magic);
            } else if (m == NBD_STRUCT_REPLY_MAGIC && s->structured) {
                ret = read_structured_chunk(s);
            } else {
                ret = -EPROTO;
            }
        }
        if (ret < 0) {
            break;
        }
    }
    /* A server that breaks the protocol is as unusable as one that is gone. */
    pthread_mutex_lock(&s->lock);
    fail_all_locked(s, ret == -ETIMEDOUT ? -ETIMEDOUT : -EIO);
    pthread_mutex_unlock(&s->lock);
    shutdown(s->fd, SHUT_RDWR);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Transmission: requests                                              */

/*
 * Send one request and wait for its reply. @wq: the payload of a WRITE;
 * @rq: where a READ's data goes. For BLOCK_STATUS the first extent is
 * returned in *status_len / *status_flags (0 / 0 when none came).
 */
static int nbd_request(BDRVNBDState *s, uint16_t type, uint16_t flags, uint64_t offset,
                       uint32_t len, QBIOVector *wq, QBIOVector *rq, uint32_t *status_len,
                       uint32_t *status_flags)
{
    int timeout = (int)s->addr.timeout_ms;
    uint8_t hdr[28];
    NBDRequest *r = NULL;
    int ret;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        if (s->dead) {
            ret = s->dead;
            pthread_mutex_unlock(&s->lock);
            return ret;
        }
        for (int i = 0; i < NBD_MAX_INFLIGHT && !r; i++) {
            if (!s->req[i].in_use) {
                r = &s->req[i];
                memset(r, 0, sizeof(*r));
                r->in_use = true;
                r->cookie = ++s->seq * NBD_MAX_INFLIGHT + (uint64_t)i;
            }
        }
        if (r) {
            break;
        }
        pthread_cond_wait(&s->cond, &s->lock);
    }
    r->type = type;
    r->offset = offset;
    r->len = len;
    r->qiov = rq;
    pthread_mutex_unlock(&s->lock);

    be32_store(hdr, NBD_REQUEST_MAGIC);
    be16_store(hdr + 4, flags);
    be16_store(hdr + 6, type);
    be64_store(hdr + 8, r->cookie);
    be64_store(hdr + 16, offset);
    be32_store(hdr + 24, len);

    pthread_mutex_lock(&s->send_lock);
    pthread_mutex_lock(&s->lock);
    r->sent_ms = now_ms();
    pthread_mutex_unlock(&s->lock);
    ret = write_full(s->fd, hdr, sizeof(hdr), timeout);
    for (int i = 0; ret == 0 && wq && i < wq->niov; i++) {
        ret = write_full(s->fd, wq->iov[i].iov_base, wq->iov[i].iov_len, timeout);
    }
    if (ret < 0) {
        /* The stream is broken mid-request: let the reader fail everything. */
        shutdown(s->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&s->send_lock);

    pthread_mutex_lock(&s->lock);
    while (!r->done) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    ret = r->ret;
    if (status_len) {
        *status_len = r->got_status ? r->status_len : 0;
        *status_flags = r->got_status ? r->status_flags : 0;
    }
    r->in_use = false;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* READ or WRITE @len bytes from byte @qoff of @qiov at @offset, in requests the server accepts. */
static int nbd_transfer(BDRVNBDState *s, uint16_t type, uint64_t offset, QBIOVector *qiov,
                        size_t qoff, size_t len)
{
    for (size_t done = 0; done < len;) {
        QBIOVector part;
        size_t n = MIN(len - done, (size_t)s->max_request);
        int ret = qiov_init_slice(&part, qiov, qoff + done, n);
        if (ret < 0) {
            return ret;
        }
        ret = nbd_request(s, type, 0, offset + done, (uint32_t)n,
                          type == NBD_CMD_WRITE ? &part : NULL,
                          type == NBD_CMD_READ ? &part : NULL, NULL, NULL);
        qiov_destroy(&part);
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/*
 * The same for a server with a minimum block size (NBD_INFO_BLOCK_SIZE,
 * which a client that asked for it must respect): the aligned middle goes
 * as it is, each partial block at the edges through a bounce buffer (read,
 * or read-modify-write; writes are serialised by the caller, so that no
 * concurrent write to the same block is lost).
 */
static int nbd_transfer_unaligned(BDRVNBDState *s, uint16_t type, uint64_t offset,
                                  QBIOVector *qiov, size_t len)
{
    const uint64_t mb = s->min_block;
    uint8_t *bounce = NULL;
    int ret = 0;

    for (size_t done = 0; done < len && ret == 0;) {
        uint64_t pos = offset + done, blk = ROUND_DOWN(pos, mb);
        size_t n;

        if (pos == blk && len - done >= mb) {
            n = (size_t)ROUND_DOWN((uint64_t)(len - done), mb);
            ret = nbd_transfer(s, type, pos, qiov, done, n);
        } else {
            QBIOVector bq;
            size_t skip = (size_t)(pos - blk);
            size_t blen = (size_t)MIN(mb, s->size - blk);   /* the export may end mid-block */

            n = MIN((size_t)mb - skip, len - done);
            if (!bounce && !(bounce = malloc(mb))) {
                return -ENOMEM;
            }
            qiov_init_buf(&bq, bounce, blen);
            ret = nbd_transfer(s, NBD_CMD_READ, blk, &bq, 0, blen);
            if (ret == 0 && type == NBD_CMD_READ) {
                qiov_from_buf(qiov, done, bounce + skip, n);
            } else if (ret == 0) {
                qiov_to_buf(qiov, done, bounce + skip, n);
                ret = nbd_transfer(s, NBD_CMD_WRITE, blk, &bq, 0, blen);
            }
        }
        done += n;
    }
    free(bounce);
    return ret;
}

static bool is_aligned_request(BDRVNBDState *s, uint64_t offset, uint64_t len)
{
    return s->min_block == 1 || (IS_ALIGNED(offset, s->min_block) &&
                                 (IS_ALIGNED(len, s->min_block) || offset + len == s->size));
}

static int nbd_preadv(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVNBDState *s = bs->opaque;
    size_t want = qiov->size;

    /* Past the end an export reads as zeros, as a file does past its end. */
    if (offset >= s->size) {
        want = 0;
    } else if (want > s->size - offset) {
        want = (size_t)(s->size - offset);
    }
    qiov_memset(qiov, want, 0, qiov->size - want);
    if (!is_aligned_request(s, offset, want)) {
        return nbd_transfer_unaligned(s, NBD_CMD_READ, offset, qiov, want);
    }
    return nbd_transfer(s, NBD_CMD_READ, offset, qiov, 0, want);
}

static int nbd_pwritev(BlockDriverState *bs, uint64_t offset, QBIOVector *qiov)
{
    BDRVNBDState *s = bs->opaque;
    int ret;

    if (s->tflags & NBD_TFLAG_READ_ONLY) {
        return -EROFS;
    }
    /* An export cannot grow: a format that allocates past its end is out of space. */
    if (offset > s->size || qiov->size > s->size - offset) {
        return -ENOSPC;
    }
    if (s->min_block == 1) {
        return nbd_transfer(s, NBD_CMD_WRITE, offset, qiov, 0, qiov->size);
    }
    pthread_mutex_lock(&s->rmw_lock);
    if (is_aligned_request(s, offset, qiov->size)) {
        ret = nbd_transfer(s, NBD_CMD_WRITE, offset, qiov, 0, qiov->size);
    } else {
        ret = nbd_transfer_unaligned(s, NBD_CMD_WRITE, offset, qiov, qiov->size);
    }
    pthread_mutex_unlock(&s->rmw_lock);
    return ret;
}

/* TRIM or WRITE_ZEROES over a range, in pieces the server accepts. */
static int nbd_range_command(BDRVNBDState *s, uint16_t type, uint16_t flags, uint64_t offset,
                             uint64_t bytes)
{
    while (bytes) {
        uint32_t n = (uint32_t)MIN(bytes, (uint64_t)s->max_request);
        int ret = nbd_request(s, type, flags, offset, n, NULL, NULL, NULL, NULL);
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

static int nbd_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes, bool unmap)
{
    BDRVNBDState *s = bs->opaque;

    if (s->tflags & NBD_TFLAG_READ_ONLY) {
        return -EROFS;
    }
    if (offset > s->size || bytes > s->size - offset) {
        return -ENOSPC;
    }
    if (!(s->tflags & NBD_TFLAG_SEND_WRITE_ZEROES) || !is_aligned_request(s, offset, bytes)) {
        return -ENOTSUP;   /* the generic layer writes a zeroed buffer instead */
    }
    /* NO_HOLE keeps the range allocated, as a plain zero write must. */
    return nbd_range_command(s, NBD_CMD_WRITE_ZEROES, unmap ? 0 : NBD_CMD_FLAG_NO_HOLE, offset,
                             bytes);
}

static int nbd_pwrite_zeroes(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return nbd_zeroes(bs, offset, bytes, false);
}

static int nbd_pwrite_zeroes_unmap(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    return nbd_zeroes(bs, offset, bytes, true);
}

static int nbd_pdiscard(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVNBDState *s = bs->opaque;

    if (s->tflags & NBD_TFLAG_READ_ONLY) {
        return -EROFS;
    }
    /* Discard is advisory: a server that cannot trim keeps the data. */
    if (!(s->tflags & NBD_TFLAG_SEND_TRIM) || offset >= s->size) {
        return 0;
    }
    bytes = MIN(bytes, s->size - offset);
    if (!is_aligned_request(s, offset, bytes)) {
        /* Only the whole blocks inside the range may go. */
        uint64_t start = ROUND_UP(offset, s->min_block);
        uint64_t end = offset + bytes == s->size ? s->size
                                                 : ROUND_DOWN(offset + bytes, s->min_block);
        if (end <= start) {
            return 0;
        }
        offset = start;
        bytes = end - start;
    }
    return nbd_range_command(s, NBD_CMD_TRIM, 0, offset, bytes);
}

static int nbd_flush(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;

    if (!(s->tflags & NBD_TFLAG_SEND_FLUSH) || (s->tflags & NBD_TFLAG_READ_ONLY)) {
        return 0;
    }
    return nbd_request(s, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL, NULL, NULL);
}

static int nbd_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, BlockDriverState **file)
{
    BDRVNBDState *s = bs->opaque;
    const int data = BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID;
    uint32_t len, flags;
    int ret;

    *map = offset;
    *file = bs;
    *pnum = bytes;
    if (offset >= s->size) {
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_EOF;
    }
    bytes = MIN(bytes, s->size - offset);
    *pnum = bytes;
    if (!s->have_meta) {
        ret = data;
    } else {
        /* Asked from the start of offset's block, as a server with a minimum block size needs. */
        uint64_t qoff = ROUND_DOWN(offset, s->min_block);
        uint64_t qend = MIN(ROUND_UP(offset + bytes, s->min_block), s->size);
        uint32_t ask = (uint32_t)MIN(qend - qoff, (uint64_t)s->max_request);
        ret = nbd_request(s, NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, qoff, ask, NULL,
                          NULL, &len, &flags);
        if (ret < 0) {
            return ret;
        }
        if ((uint64_t)len <= offset - qoff) {
            return -EIO;    /* the server answered without an extent that reaches offset */
        }
        *pnum = MIN(MIN((uint64_t)len, (uint64_t)ask) - (offset - qoff), bytes);
        ret = (flags & NBD_STATE_HOLE) ? BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_OFFSET_VALID : data;
        if (flags & NBD_STATE_ZERO) {
            ret |= BDRV_BLOCK_ZERO;
        }
        if ((flags & NBD_STATE_HOLE) && (flags & NBD_STATE_ZERO)) {
            ret |= BDRV_BLOCK_HOLE;
        }
    }
    if (offset + *pnum >= s->size) {
        ret |= BDRV_BLOCK_EOF;
    }
    return ret;
}

static int64_t nbd_getlength(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;
    return (int64_t)s->size;
}

static int64_t nbd_get_allocated_file_size(BlockDriverState *bs)
{
    (void)bs;
    return -ENOTSUP;   /* the server does not tell what its storage uses */
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */

static void nbd_disconnect(BDRVNBDState *s)
{
    pthread_mutex_lock(&s->lock);
    bool alive = !s->dead;
    pthread_mutex_unlock(&s->lock);
    if (alive && s->reader_running) {
        uint8_t hdr[28] = { 0 };
        be32_store(hdr, NBD_REQUEST_MAGIC);
        be16_store(hdr + 6, NBD_CMD_DISC);
        pthread_mutex_lock(&s->send_lock);
        (void)write_full(s->fd, hdr, sizeof(hdr), 1000);
        pthread_mutex_unlock(&s->send_lock);
    }
    if (s->fd >= 0) {
        shutdown(s->fd, SHUT_RDWR);
    }
    if (s->reader_running) {
        pthread_join(s->reader, NULL);
        s->reader_running = false;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static void nbd_close(BlockDriverState *bs)
{
    BDRVNBDState *s = bs->opaque;

    nbd_disconnect(s);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->send_lock);
    pthread_mutex_destroy(&s->rmw_lock);
    pthread_mutex_destroy(&s->lock);
    nbd_address_free(&s->addr);
}

static int nbd_open(BlockDriverState *bs, int flags, BdrvError *err)
{
    BDRVNBDState *s = bs->opaque;
    char msg[512];
    int ret;

    s->fd = -1;
    if (flags & BDRV_O_CREATE) {
        return bdrv_error_set(err, -ENOTSUP,
                              "'%s': images cannot be created on NBD (the export exists "
                              "already); open it and write the data instead", bs->filename);
    }
    ret = nbd_parse_location(bs->filename, &s->addr, msg, sizeof(msg));
    if (ret < 0) {
        return bdrv_error_set(err, ret, "%s", msg);
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->send_lock, NULL);
    pthread_mutex_init(&s->rmw_lock, NULL);
    pthread_cond_init(&s->cond, NULL);

    ret = connect_socket(s, err);
    if (ret == 0) {
        ret = nbd_handshake(s, err);
        if (ret < 0) {
            bdrv_error_prefix(err, "'%s'", bs->filename);
        }
    }
    if (ret == 0 && (flags & BDRV_O_RDWR) && (s->tflags & NBD_TFLAG_READ_ONLY)) {
        ret = bdrv_error_set(err, -EROFS, "'%s': the NBD export is read-only", bs->filename);
    }
    if (ret == 0) {
        /* Every request piece must stay a multiple of the minimum block size. */
        s->max_request = (uint32_t)MAX(ROUND_DOWN(s->max_request, s->min_block), s->min_block);
    }
    if (ret == 0 && s->size > INT64_MAX) {
        ret = bdrv_error_set(err, -EPROTO, "'%s': the NBD export's size is not valid",
                             bs->filename);
    }
    if (ret == 0) {
        ret = -pthread_create(&s->reader, NULL, reader_main, s);
        if (ret < 0) {
            bdrv_error_set(err, ret, "'%s': cannot start the NBD reply reader", bs->filename);
        } else {
            s->reader_running = true;
        }
    }
    if (ret < 0) {
        nbd_close(bs);
        return ret == -EPROTO ? -EIO : ret;
    }
    bs->total_sectors = (int64_t)(s->size / BDRV_SECTOR_SIZE);
    return 0;
}

const BlockDriver bdrv_nbd = {
    .format_name = "nbd",
    .instance_size = sizeof(BDRVNBDState),
    .is_protocol = true,
    .thread_safe = true,
    .bdrv_open = nbd_open,
    .bdrv_close = nbd_close,
    .bdrv_preadv = nbd_preadv,
    .bdrv_pwritev = nbd_pwritev,
    .bdrv_pwrite_zeroes = nbd_pwrite_zeroes,
    .bdrv_pwrite_zeroes_unmap = nbd_pwrite_zeroes_unmap,
    .bdrv_flush = nbd_flush,
    .bdrv_pdiscard = nbd_pdiscard,
    .bdrv_block_status = nbd_block_status,
    .bdrv_getlength = nbd_getlength,
    .bdrv_get_allocated_file_size = nbd_get_allocated_file_size,
};
