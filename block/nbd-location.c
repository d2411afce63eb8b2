/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbd-location.c: the NBD driver's location names (qemu-img's URI and legacy forms), parsed and written. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "block/nbd.h"


static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

bool nbd_is_location(const char *name)
{
    return name && (has_prefix(name, "nbd://") || has_prefix(name, "nbd+tcp://") ||
                    has_prefix(name, "nbd+unix://") || has_prefix(name, "nbd:"));
}

void nbd_address_free(NBDAddress *addr)
{
    free(addr->host);
    free(addr->port);
    free(addr->socket_path);
    free(addr->export_name);
    memset(addr, 0, sizeof(*addr));
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* A malloc'ed copy of @len bytes of @s, %XX sequences decoded when @decode. */
static char *dup_part(const char *s, size_t len, bool decode)
{
    char *out = malloc(len + 1), *o = out;

    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (decode && s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
            hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static int parse_timeout(const char *v, size_t len, uint32_t *out)
{
    char buf[16];
    char *end;
    unsigned long n;

    if (len == 0 || len >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, v, len);
    buf[len] = '\0';
    errno = 0;
    n = strtoul(buf, &end, 10);
    if (*end || errno || n == 0 || n > 86400000UL) {
        return -EINVAL;
    }
    *out = (uint32_t)n;
    return 0;
}

/* The URI forms: nbd[+tcp|+unix]://[host[:port]]/[export][?query]. */
static int parse_uri(const char *name, NBDAddress *a, char *msg, size_t msglen)
{
    bool unix_sock = has_prefix(name, "nbd+unix://");
    const char *p = strstr(name, "://") + 3;
    const char *auth_end = p + strcspn(p, "/?");
    const char *path_end;

    if (unix_sock) {
        if (auth_end != p) {
            snprintf(msg, msglen, "an nbd+unix URI takes no host ('%s')", name);
            return -EINVAL;
        }
    } else {
        const char *colon;
        if (*p == '[') {
            const char *close = memchr(p, ']', (size_t)(auth_end - p));
            if (!close) {
                snprintf(msg, msglen, "unterminated IPv6 address in '%s'", name);
                return -EINVAL;
            }
            a->host = dup_part(p + 1, (size_t)(close - p - 1), false);
            colon = close + 1 < auth_end && close[1] == ':' ? close + 1 : NULL;
        } else {
            colon = memchr(p, ':', (size_t)(auth_end - p));
            a->host = dup_part(p, (size_t)((colon ? colon : auth_end) - p), true);
        }
        if (!a->host) {
            return -ENOMEM;
        }
        if (!a->host[0]) {
            snprintf(msg, msglen, "no host in '%s'", name);
            return -EINVAL;
        }
        if (colon && colon + 1 < auth_end) {
            a->port = dup_part(colon + 1, (size_t)(auth_end - colon - 1), false);
        } else {
            a->port = malloc(8);
            if (a->port) {
                snprintf(a->port, 8, "%d", NBD_DEFAULT_PORT);
            }
        }
        if (!a->port) {
            return -ENOMEM;
        }
    }
    /* The path, less its leading slash, is the export name. */
    path_end = auth_end + strcspn(auth_end, "?");
    if (*auth_end == '/') {
        auth_end++;
    }
    a->export_name = dup_part(auth_end, (size_t)(path_end - auth_end), true);
    if (!a->export_name) {
        return -ENOMEM;
    }
    if (*path_end == '?') {
        const char *q = path_end + 1;
        while (*q) {
            size_t len = strcspn(q, "&");
            const char *eq = memchr(q, '=', len);
            size_t klen = eq ? (size_t)(eq - q) : len;
            const char *v = eq ? eq + 1 : q + len;
            size_t vlen = (size_t)(q + len - v);

            if (unix_sock && klen == 6 && strncmp(q, "socket", 6) == 0) {
                free(a->socket_path);
                a->socket_path = dup_part(v, vlen, true);
                if (!a->socket_path) {
                    return -ENOMEM;
                }
            } else if (klen == 10 && strncmp(q, "timeout_ms", 10) == 0) {
                if (parse_timeout(v, vlen, &a->timeout_ms) < 0) {
                    snprintf(msg, msglen, "bad timeout_ms in '%s'", name);
                    return -EINVAL;
                }
            } else {
                snprintf(msg, msglen, "unknown parameter '%.*s' in '%s'", (int)klen, q, name);
                return -EINVAL;
            }
            q += len;
            if (*q == '&') {
                q++;
            }
        }
    }
    if (unix_sock && (!a->socket_path || !a->socket_path[0])) {
        snprintf(msg, msglen, "an nbd+unix URI needs ?socket=PATH ('%s')", name);
        return -EINVAL;
    }
    return 0;
}

/* The legacy forms: nbd:host:port[:exportname=X] and nbd:unix:PATH[:exportname=X]. */
static int parse_legacy(const char *name, NBDAddress *a, char *msg, size_t msglen)
{
    const char *p = name + 4;
    const char *exp = strstr(p, ":exportname=");
    const char *end = exp ? exp : p + strlen(p);

    if (has_prefix(p, "unix:")) {
        p += 5;
        a->socket_path = dup_part(p, (size_t)(end - p), false);
        if (!a->socket_path) {
            return -ENOMEM;
        }
        if (!a->socket_path[0]) {
            snprintf(msg, msglen, "no socket path in '%s'", name);
            return -EINVAL;
        }
    } else {
        const char *colon = NULL;
        for (const char *c = p; c < end; c++) {
            if (*c == ':') {
                colon = c;       /* the last colon: an IPv6 host may hold others */
            }
        }
        if (!colon || colon == p || colon + 1 == end) {
            snprintf(msg, msglen, "expected nbd:host:port in '%s'", name);
            return -EINVAL;
        }
        if (*p == '[' && colon[-1] == ']') {
            a->host = dup_part(p + 1, (size_t)(colon - p - 2), false);
        } else {
            a->host = dup_part(p, (size_t)(colon - p), false);
        }
        a->port = dup_part(colon + 1, (size_t)(end - colon - 1), false);
        if (!a->host || !a->port) {
            return -ENOMEM;
        }
    }
    a->export_name = strdup(exp ? exp + strlen(":exportname=") : "");
    return a->export_name ? 0 : -ENOMEM;
}

int nbd_parse_location(const char *name, NBDAddress *addr, char *msg, size_t msglen)
{
    int ret;

    memset(addr, 0, sizeof(*addr));
    addr->timeout_ms = NBD_DEFAULT_TIMEOUT_MS;
    if (!nbd_is_location(name)) {
        snprintf(msg, msglen, "'%s' is not an NBD location", name ? name : "");
        return -EINVAL;
    }
    if (has_prefix(name, "nbd://") || has_prefix(name, "nbd+tcp://") ||
        has_prefix(name, "nbd+unix://")) {
        ret = parse_uri(name, addr, msg, msglen);
    } else {
        ret = parse_legacy(name, addr, msg, msglen);
    }
    if (ret == 0 && strlen(addr->export_name) > NBD_MAX_NAME) {
        snprintf(msg, msglen, "export name longer than %d bytes", NBD_MAX_NAME);
        ret = -EINVAL;
    }
    if (ret == 0 && addr->socket_path &&
        strlen(addr->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(msg, msglen, "socket path '%s' is too long", addr->socket_path);
        ret = -EINVAL;
    }
    if (ret == -ENOMEM) {
        snprintf(msg, msglen, "out of memory");
    }
    if (ret < 0) {
        nbd_address_free(addr);
    }
    return ret;
}

/* Append @s to @out percent-encoding what a URI part cannot hold as it is. */
static char *encode_into(char *out, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c) || (keep_slash && c == '/')) {
            *out++ = (char)c;
        } else {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    return out;
}

char *nbd_format_location(const char *host, const char *port, const char *socket_path,
                          const char *export_name, uint32_t timeout_ms)
{
    size_t cap = 64 + 3 * (strlen(host ? host : "") + strlen(port ? port : "") +
                           strlen(socket_path ? socket_path : "") +
                           strlen(export_name ? export_name : ""));
    char *out = malloc(cap), *o = out;

    if (!out) {
        return NULL;
    }
    if (socket_path) {
        o += sprintf(o, "nbd+unix:///");
    } else {
        bool v6 = strchr(host, ':') != NULL;
        o += sprintf(o, "nbd://%s", v6 ? "[" : "");
        o = v6 ? stpcpy(o, host) : encode_into(o, host, false);
        o += sprintf(o, "%s:%s/", v6 ? "]" : "", port);
    }
    o = encode_into(o, export_name ? export_name : "", true);
    if (socket_path) {
        o = stpcpy(o, "?socket=");
        o = encode_into(o, socket_path, true);
    }
    if (timeout_ms && timeout_ms != NBD_DEFAULT_TIMEOUT_MS) {
        sprintf(o, "%stimeout_ms=%u", socket_path ? "&" : "?", timeout_ms);
    } else {
        *o = '\0';
    }
    return out;
}
