/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* img-util.c: messages, number parsing and formatting, JSON strings and image opening for qblock-img. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qblock-img.h"

/* ------------------------------------------------------------------ */
/* Messages                                                            */

void error_report(const char *fmt, ...)
{
    va_list ap;

    /* Anything already on stdout goes first, so that interleaved output keeps its order. */
    fflush(stdout);
    fputs(TOOL_NAME ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void warn_report(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs(TOOL_NAME ": warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void usage_error(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs(TOOL_NAME ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry '" TOOL_NAME " --help' for more information\n", stderr);
}

void report_bad_option(char **argv, int c)
{
    /*
     * getopt has already advanced optind past the offending word, so
     * argv[optind - 1] is the word the user typed, which is what qemu-img
     * quotes in both messages.
     */
    extern int optind;
    const char *word = (optind > 0) ? argv[optind - 1] : "?";

    if (c == ':') {
        usage_error("missing argument for option '%s'", word);
    } else {
        usage_error("unrecognized option '%s'", word);
    }
}

const char *broker_msg(QBroker *broker)
{
    /* Thread-local, because bench reports errors from its worker threads. */
    static __thread char buf[1024];

    buf[0] = '\0';
    if (broker) {
        qb_error_get_human_str(broker, buf, sizeof(buf));
    }
    if (buf[0] == '\0') {
        snprintf(buf, sizeof(buf), "unknown error");
    }
    /*
     * The library names the failing call ("qb_open: ..."); the tool's own
     * message already says what it was doing, so that prefix is dropped.
     */
    if (strncmp(buf, "qb_", 3) == 0) {
        size_t n = strspn(buf, "abcdefghijklmnopqrstuvwxyz_");
        if (buf[n] == ':' && buf[n + 1] == ' ') {
            return buf + n + 2;
        }
    }
    return buf;
}

/* ------------------------------------------------------------------ */
/* Numbers                                                             */

static uint64_t suffix_multiplier(char c)
{
    switch (c) {
    case 'b': case 'B': return 1;
    case 'k': case 'K': return 1ULL << 10;
    case 'm': case 'M': return 1ULL << 20;
    case 'g': case 'G': return 1ULL << 30;
    case 't': case 'T': return 1ULL << 40;
    case 'p': case 'P': return 1ULL << 50;
    case 'e': case 'E': return 1ULL << 60;
    default: return 0;
    }
}

int parse_size(const char *str, uint64_t *out)
{
    const char *p = str;
    uint64_t whole = 0, mult = 1, result;
    double fraction = 0.0;
    bool overflow = false, hex = false, has_fraction = false;

    if (!str) {
        return -EINVAL;
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (*p == '+') {
        p++;
    } else if (*p == '-') {
        return -EINVAL;
    }

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        hex = true;
        p += 2;
        if (!isxdigit((unsigned char)*p)) {
            return -EINVAL;
        }
        while (isxdigit((unsigned char)*p)) {
            unsigned d = isdigit((unsigned char)*p) ? (unsigned)(*p - '0')
                                                     : (unsigned)(tolower((unsigned char)*p) - 'a' + 10);
            if (whole > (UINT64_MAX - d) / 16) {
                overflow = true;
            } else {
                whole = whole * 16 + d;
            }
            p++;
        }
    } else {
        if (!isdigit((unsigned char)*p)) {
            return -EINVAL;
        }
        while (isdigit((unsigned char)*p)) {
            unsigned d = (unsigned)(*p - '0');
            if (whole > (UINT64_MAX - d) / 10) {
                overflow = true;
            } else {
                whole = whole * 10 + d;
            }
            p++;
        }
        if (*p == '.') {
            /* The fraction is parsed on its own so that long digit strings cannot overflow. */
            char tmp[64];
            size_t n = 0;

            has_fraction = true;
            tmp[n++] = '0';
            tmp[n++] = '.';
            p++;
            while (isdigit((unsigned char)*p)) {
                if (n < sizeof(tmp) - 1) {
                    tmp[n++] = *p;
                }
                p++;
            }
            tmp[n] = '\0';
            fraction = strtod(tmp, NULL);
        }
    }

    if (*p != '\0') {
        mult = suffix_multiplier(*p);
        if (mult == 0) {
            return -EINVAL;
        }
        p++;
        if (*p != '\0') {
            return -EINVAL;
        }
        if (hex && mult != 1) {
            warn_report("Using a multiplier suffix on hex numbers is deprecated: %s", str);
        }
    }

    /* A fraction of a byte makes no sense: "1.5" and "1.5b" are refused, "1.0b" is not. */
    if (has_fraction && mult == 1 && fraction != 0.0) {
        return -EINVAL;
    }
    if (overflow) {
        return -ERANGE;
    }
    if (whole > UINT64_MAX / mult) {
        return -ERANGE;
    }
    result = whole * mult;
    if (has_fraction && fraction != 0.0) {
        /* Rounded to the nearest byte: "1.9k" is 1946 bytes, as with qemu-img. */
        double extra = floor(fraction * (double)mult + 0.5);
        uint64_t add = (uint64_t)extra;

        if (result > UINT64_MAX - add) {
            return -ERANGE;
        }
        result += add;
    }
    *out = result;
    return 0;
}

void report_size_error(const char *what, int err, uint64_t max)
{
    if (err == -ERANGE) {
        error_report("Invalid %s specified. Must be between 0 and %" PRIu64 ".", what, max);
    } else {
        error_report("Invalid %s specified. You may use k, M, G, T, P or E suffixes for", what);
        error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
    }
}

void size_to_human(uint64_t val, char *buf, size_t buf_size)
{
    static const char *const units[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
    int i = 0;

    /*
     * The unit is the largest power of 1024 that keeps the number below
     * 1000 ("0.999 MiB" rather than "1023 KiB"), and the number is shown
     * with three significant digits.
     */
    while (i < 6 && val >= (1000ULL << (10 * i))) {
        i++;
    }
    snprintf(buf, buf_size, "%0.3g %sB", (double)val / (double)(1ULL << (10 * i)), units[i]);
}

void size_to_io_str(double val, char *buf, size_t buf_size)
{
    static const char *const units[] = { "EiB", "PiB", "TiB", "GiB", "MiB", "KiB" };
    int shift = 60;

    for (int i = 0; i < 6; i++, shift -= 10) {
        double unit = (double)(1ULL << shift);
        if (val >= unit) {
            size_t len;

            snprintf(buf, buf_size, "%.3f %s", val / unit, units[i]);
            /* Whole numbers drop their ".000", as qemu-io prints them. */
            len = strlen(buf);
            if (len > 8 && strncmp(buf + len - 8, ".000 ", 5) == 0) {
                memmove(buf + len - 8, buf + len - 4, 5);
            }
            return;
        }
    }
    snprintf(buf, buf_size, "%.0f bytes", val);
}

int parse_pattern(const char *str)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(str, &end, 0);
    if (errno || end == str || *end != '\0' || v < 0 || v > 255) {
        return -1;
    }
    return (int)v;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */

/*
 * Decodes one UTF-8 sequence at @s (not ASCII) the way qemu's JSON writer
 * does: *len is set to the bytes the sequence takes (a broken one takes
 * its lead byte and the continuation bytes that follow it), and the return
 * value is the code point, or -1 when the sequence is not valid: an
 * overlong form (but the two-byte form of U+0000, which "modified UTF-8"
 * allows), a surrogate, a value past U+10FFFF or a noncharacter.
 */
static int32_t utf8_decode(const unsigned char *s, int *len)
{
    static const uint32_t min_for_len[7] = { 0, 0, 0x80, 0x800, 0x10000, 0x200000, 0x4000000 };
    unsigned char c = s[0];
    int want, i;
    uint32_t cp;

    *len = 1;
    if (c < 0xc0 || c >= 0xfe) {
        return -1;              /* a stray continuation byte, or 0xfe/0xff */
    } else if (c < 0xe0) {
        want = 2; cp = c & 0x1f;
    } else if (c < 0xf0) {
        want = 3; cp = c & 0x0f;
    } else if (c < 0xf8) {
        want = 4; cp = c & 0x07;
    } else if (c < 0xfc) {
        want = 5; cp = c & 0x03;
    } else {
        want = 6; cp = c & 0x01;
    }
    for (i = 1; i < want && (s[i] & 0xc0) == 0x80; i++) {
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    *len = i;
    if (i < want) {
        return -1;
    }
    if (want == 2 && cp == 0) {
        return 0;
    }
    if (cp < min_for_len[want] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
        (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe) {
        return -1;
    }
    return (int32_t)cp;
}

void json_print_string(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    fputc('"', f);
    while (*s) {
        unsigned char c = *s;
        uint32_t cp;
        int32_t dec;
        int len;

        switch (c) {
        case '"':  fputs("\\\"", f); s++; continue;
        case '\\': fputs("\\\\", f); s++; continue;
        case '\b': fputs("\\b", f); s++; continue;
        case '\f': fputs("\\f", f); s++; continue;
        case '\n': fputs("\\n", f); s++; continue;
        case '\r': fputs("\\r", f); s++; continue;
        case '\t': fputs("\\t", f); s++; continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04X", c);
            s++;
            continue;
        }
        if (c < 0x80) {
            fputc(c, f);
            s++;
            continue;
        }
        /* Non-ASCII characters are written as \u escapes; broken UTF-8 becomes U+FFFD. */
        dec = utf8_decode(s, &len);
        s += len;
        if (dec < 0) {
            fputs("\\uFFFD", f);
            continue;
        }
        cp = (uint32_t)dec;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            fprintf(f, "\\u%04X\\u%04X", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else {
            fprintf(f, "\\u%04X", cp);
        }
    }
    fputc('"', f);
}

/* ------------------------------------------------------------------ */
/* Images                                                              */

bool img_force_share;

int img_open(ImgHandle *h, const char *filename, const char *fmt, int flags)
{
    QBlockFmtInfo *fi = NULL;
    int ret;

    if (img_force_share && !(flags & LIBQBLOCK_O_RDWR)) {
        flags |= LIBQBLOCK_O_FORCE_SHARE;
    }

    memset(h, 0, sizeof(*h));
    h->filename = filename;
    h->probed = (fmt == NULL);

    if (qb_broker_new(&h->broker) < 0) {
        error_report("Could not open '%s': out of memory", filename);
        return -1;
    }
    if (qb_state_new(h->broker, &h->qbs) < 0 || img_set_qemu_policy(h->broker, h->qbs) < 0 ||
        qb_prot_info_new(h->broker, &h->loc) < 0) {
        error_report("Could not open '%s': %s", filename, broker_msg(h->broker));
        goto fail;
    }
    h->loc->prot_type = QB_PROT_FILE;
    h->loc->prot_op.o_file.filename = filename;

    if (fmt) {
        enum QBlockFmtType type = qb_str2fmttype(fmt);

        if (type == QB_FMT_NONE) {
            error_report("Could not open '%s': Unknown driver '%s'", filename, fmt);
            goto fail;
        }
        if (qb_fmt_info_new(h->broker, &fi) < 0) {
            error_report("Could not open '%s': %s", filename, broker_msg(h->broker));
            goto fail;
        }
        fi->fmt_type = type;
    }

    ret = qb_open(h->broker, h->qbs, h->loc, fi, flags);
    qb_fmt_info_delete(h->broker, &fi);
    if (ret < 0) {
        error_report("Could not open '%s': %s", filename, broker_msg(h->broker));
        goto fail;
    }
    h->opened = true;
    if (qb_info_image_static_get(h->broker, h->qbs, &h->info) < 0) {
        error_report("Could not open '%s': %s", filename, broker_msg(h->broker));
        goto fail;
    }
    return 0;

fail:
    img_close(h);
    return -1;
}

int img_close(ImgHandle *h)
{
    int ret = 0;

    if (h->info) {
        qb_info_image_static_delete(h->broker, &h->info);
    }
    if (h->qbs) {
        /*
         * qb_state_delete would close the image too, but only qb_close
         * reports the final flush's error, which a writer must not lose.
         */
        if (h->opened && qb_close(h->broker, h->qbs) < 0) {
            error_report("Error while closing '%s': %s", h->filename, broker_msg(h->broker));
            ret = -1;
        }
        h->opened = false;
        qb_state_delete(h->broker, &h->qbs);
    }
    if (h->loc) {
        qb_prot_info_delete(h->broker, &h->loc);
    }
    if (h->broker) {
        qb_broker_delete(&h->broker);
    }
    return ret;
}

void warn_probed_raw(const ImgHandle *h)
{
    if (h->probed && h->info && h->info->fmt_type == QB_FMT_RAW) {
        fflush(stdout);
        fprintf(stderr,
                "WARNING: Image format was not specified for '%s' and probing guessed raw.\n"
                "         Automatically detecting the format is dangerous for raw images, "
                "write operations on block 0 will be restricted.\n"
                "         Specify the 'raw' format explicitly to remove the restrictions.\n",
                h->filename);
    }
}

int cache_mode_flags(const char *mode)
{
    /* The same meanings as qemu's cache modes: "none" is O_DIRECT with writeback semantics. */
    if (strcmp(mode, "writeback") == 0) {
        return LIBQBLOCK_O_CACHE_WB;
    } else if (strcmp(mode, "none") == 0 || strcmp(mode, "off") == 0) {
        return LIBQBLOCK_O_NOCACHE | LIBQBLOCK_O_CACHE_WB;
    } else if (strcmp(mode, "writethrough") == 0) {
        return 0;
    } else if (strcmp(mode, "directsync") == 0) {
        return LIBQBLOCK_O_NOCACHE;
    } else if (strcmp(mode, "unsafe") == 0) {
        return LIBQBLOCK_O_CACHE_WB | LIBQBLOCK_O_NO_FLUSH;
    }
    return -1;
}

char *path_combine(const char *base, const char *rel)
{
    const char *slash;
    size_t dirlen;
    char *out;

    if (rel[0] == '/' || !(slash = strrchr(base, '/'))) {
        return strdup(rel);
    }
    dirlen = (size_t)(slash - base) + 1;
    out = malloc(dirlen + strlen(rel) + 1);
    if (!out) {
        return NULL;
    }
    memcpy(out, base, dirlen);
    strcpy(out + dirlen, rel);
    return out;
}

/* ------------------------------------------------------------------ */
/* Progress                                                            */

static void progress_print(double pct)
{
    printf("    (%3.2f/100%%)\r", pct);
    fflush(stdout);
}

void progress_start(Progress *p, bool enabled)
{
    p->enabled = enabled;
    p->last = 0.0;
    if (enabled) {
        progress_print(0.0);
    }
}

void progress_update(Progress *p, uint64_t done, uint64_t total)
{
    double pct;

    if (!p->enabled) {
        return;
    }
    pct = total ? (double)done * 100.0 / (double)total : 100.0;
    if (pct > 100.0) {
        pct = 100.0;
    }
    /* Print on every full percent of progress, and once on reaching the end. */
    if (pct - p->last >= 1.0 || (pct == 100.0 && p->last < 100.0)) {
        p->last = pct;
        progress_print(pct);
    }
}

void progress_finish(Progress *p)
{
    if (p->enabled) {
        p->last = 100.0;
        progress_print(100.0);
    }
}

void progress_end(Progress *p)
{
    if (p->enabled) {
        printf("\n");
        fflush(stdout);
    }
}

void file_loc(QBlockProtInfo *loc, const char *name)
{
    memset(loc, 0, sizeof(*loc));
    loc->prot_type = QB_PROT_FILE;
    loc->prot_op.o_file.filename = name;
}

void *alloc_io_buffer(size_t size)
{
    void *p = NULL;

    if (posix_memalign(&p, 4096, size ? size : 1) != 0) {
        return NULL;
    }
    return p;
}

double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* -o option lists                                                     */

void opts_free(OptList *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].key);
        free(list->items[i].value);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

int opts_parse(const char *str, OptList *out)
{
    size_t len = strlen(str);
    char *item = malloc(len + 1);
    const char *p = str;

    out->items = NULL;
    out->count = 0;
    if (!item) {
        return -ENOMEM;
    }
    if (*p == '\0') {
        free(item);
        return 0;
    }
    for (;;) {
        size_t n = 0;
        OptPair *grown;
        char *eq;

        /* Copy one item, turning ",," into ",", up to a single comma or the end. */
        while (*p) {
            if (p[0] == ',' && p[1] == ',') {
                item[n++] = ',';
                p += 2;
            } else if (p[0] == ',') {
                break;
            } else {
                item[n++] = *p++;
            }
        }
        item[n] = '\0';
        if (n == 0) {
            free(item);
            opts_free(out);
            return -EINVAL;
        }
        grown = realloc(out->items, (out->count + 1) * sizeof(*grown));
        if (!grown) {
            free(item);
            opts_free(out);
            return -ENOMEM;
        }
        out->items = grown;
        eq = strchr(item, '=');
        if (eq) {
            *eq = '\0';
            grown[out->count].value = strdup(eq + 1);
        } else {
            grown[out->count].value = NULL;
        }
        grown[out->count].key = strdup(item);
        out->count++;
        if (!grown[out->count - 1].key || (eq && !grown[out->count - 1].value)) {
            free(item);
            opts_free(out);
            return -ENOMEM;
        }
        if (*p == '\0') {
            break;
        }
        p++;                    /* the separating comma */
        if (*p == '\0') {
            /* A trailing comma leaves an empty last item. */
            free(item);
            opts_free(out);
            return -EINVAL;
        }
    }
    free(item);
    return 0;
}

const char *opts_get(const OptList *list, const char *key)
{
    const char *found = NULL;

    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->items[i].key, key) == 0) {
            found = list->items[i].value ? list->items[i].value : "";
        }
    }
    return found;
}

bool opts_has_help(const OptList *list)
{
    for (size_t i = 0; i < list->count; i++) {
        if (!list->items[i].value &&
            (strcmp(list->items[i].key, "help") == 0 || strcmp(list->items[i].key, "?") == 0)) {
            return true;
        }
    }
    return false;
}

int append_options(char **opts, const char *more)
{
    size_t old = *opts ? strlen(*opts) : 0;
    char *s = realloc(*opts, old + 1 + strlen(more) + 1);

    if (!s) {
        return -ENOMEM;
    }
    if (old) {
        s[old++] = ',';
    }
    strcpy(s + old, more);
    *opts = s;
    return 0;
}

int opts_append(char **str, const char *key, const char *value)
{
    size_t old = *str ? strlen(*str) : 0;
    size_t need = old + 1 + strlen(key) + 1 + 2 * strlen(value) + 1;
    char *s = realloc(*str, need);
    char *w;

    if (!s) {
        return -ENOMEM;
    }
    w = s + old;
    if (old) {
        *w++ = ',';
    }
    w += sprintf(w, "%s=", key);
    for (const char *v = value; *v; v++) {
        *w++ = *v;
        if (*v == ',') {
            *w++ = ',';
        }
    }
    *w = '\0';
    *str = s;
    return 0;
}

/* qemu-img's spelling of an option's type in its -o help listing. */
static const char *option_type_label(enum QBlockOptionType type)
{
    switch (type) {
    case QB_OPT_TYPE_SIZE: return "<size>";
    case QB_OPT_TYPE_BOOL: return "<bool (on/off)>";
    case QB_OPT_TYPE_NUMBER: return "<num>";
    case QB_OPT_TYPE_STRING:
    case QB_OPT_TYPE_ENUM:
    case QB_OPT_TYPE_MAX:
        break;
    }
    return "<str>";
}

static int option_name_cmp(const void *a, const void *b)
{
    const QBlockOptionDesc *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

int print_create_options_help(const char *fmt, const char *filename)
{
    const QBlockOptionDesc *list, *sorted[64];
    enum QBlockFmtType type = qb_str2fmttype(fmt);
    QBroker *broker = NULL;
    int count, n = 0, ret = 1;

    if (type == QB_FMT_NONE) {
        error_report("Unknown file format '%s'", fmt);
        return 1;
    }
    if (qb_broker_new(&broker) < 0) {
        error_report("out of memory");
        return 1;
    }
    if (qb_fmt_get_create_options(broker, type, &list, &count) < 0) {
        error_report("%s", broker_msg(broker));
        goto out;
    }
    /*
     * The layout is qemu-img's: options sorted by name, "name=<type>" padded
     * to 22 columns. Without a file name qemu-img leaves out what belongs to
     * the protocol and says so; with one it lists both under one heading.
     */
    for (int i = 0; i < count && n < (int)(sizeof(sorted) / sizeof(sorted[0])); i++) {
        if (filename || !(list[i].flags & QB_OPT_F_PROTOCOL)) {
            sorted[n++] = &list[i];
        }
    }
    qsort(sorted, (size_t)n, sizeof(sorted[0]), option_name_cmp);
    if (filename) {
        printf("Supported options:\n");
    } else {
        printf("Supported %s options:\n", qb_fmttype2str(type));
    }
    for (int i = 0; i < n; i++) {
        char left[128];
        snprintf(left, sizeof(left), "%s=%s", sorted[i]->name, option_type_label(sorted[i]->type));
        printf("  %-22s - %s\n", left, sorted[i]->help ? sorted[i]->help : "");
    }
    if (!filename) {
        printf("\nThe protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
    }
    ret = 0;
out:
    qb_broker_delete(&broker);
    return ret;
}

/*
 * Reports the first option of the "k=v,..." list @opts (may be NULL) that
 * format @fmt does not know, or a backing file (@backing) it cannot have,
 * with qemu-img's messages; returns -1 then, 0 when all is known (or the
 * format has no option table in this build: the library says why).
 */
int check_create_option_names(const char *fmt, const char *filename, const char *opts,
                              bool backing)
{
    const QBlockOptionDesc *list;
    QBroker *broker = NULL;
    OptList parsed = { NULL, 0 };
    int count, ret = 0;

    if (qb_broker_new(&broker) < 0) {
        return 0;   /* the library reports it again, with its own words */
    }
    if (qb_fmt_get_create_options(broker, qb_str2fmttype(fmt), &list, &count) == 0 &&
        opts_parse(opts ? opts : "", &parsed) == 0) {
        bool has_backing = false;

        for (int k = 0; k < count; k++) {
            has_backing |= strcmp(list[k].name, "backing_file") == 0;
        }
        for (size_t i = 0; i < parsed.count && ret == 0; i++) {
            bool known = false;
            for (int k = 0; k < count && !known; k++) {
                known = strcmp(list[k].name, parsed.items[i].key) == 0;
            }
            if (!known) {
                error_report("%s: Invalid parameter '%s'", filename, parsed.items[i].key);
                ret = -1;
            }
        }
        if (ret == 0 && backing && !has_backing) {
            error_report("%s: Backing file not supported for file format '%s'", filename, fmt);
            ret = -1;
        }
    }
    opts_free(&parsed);
    qb_broker_delete(&broker);
    return ret;
}

int img_set_qemu_policy(QBroker *broker, QBlockState *qbs)
{
    /*
     * qemu-img opens what it is given: it guesses raw when probing finds no
     * format, follows backing files wherever they are, and has no chain,
     * metadata or descriptor budget of its own, so the tool lifts the
     * library's safe defaults to behave the same.
     */
    QBlockOpenPolicy p;

    memset(&p, 0, sizeof(p));
    p.flags = QB_POLICY_ALLOW_RAW_PROBE | QB_POLICY_ALLOW_ANY_PATH;
    p.max_chain_depth = UINT32_MAX;
    p.max_metadata_size = QB_POLICY_UNLIMITED;
    p.max_descriptor_size = QB_POLICY_UNLIMITED;
    return qb_state_set_policy(broker, qbs, &p);
}
