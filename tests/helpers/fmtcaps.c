/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fmtcaps: prints a format's capability and create-option tables as docs/formats/ pages hold them. */

/*
 * Interop script 037 runs it for every format and compares its output with
 * the tables between the "caps" and "options" markers of
 * docs/formats/<fmt>.md, so the pages cannot drift from what
 * qb_fmt_get_caps and qb_fmt_get_create_options report.
 *   fmtcaps FMT   prints both tables (Markdown) for FMT ("qcow2", ...).
 * Exit 1 on a bad argument or a failed call.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <libqblock/libqblock.h>

static const struct {
    uint64_t bit;
    const char *what;
} caps[] = {
    { QB_CAP_OPEN, "open (read)" },
    { QB_CAP_CREATE, "create" },
    { QB_CAP_WRITE, "write" },
    { QB_CAP_BACKING, "backing files" },
    { QB_CAP_RESIZE_GROW, "resize: grow" },
    { QB_CAP_RESIZE_SHRINK, "resize: shrink" },
    { QB_CAP_DISCARD, "discard releases space" },
    { QB_CAP_COMPRESSED_READ, "compressed reads" },
    { QB_CAP_COMPRESSED_WRITE, "compressed writes" },
    { QB_CAP_INTERNAL_SNAPSHOTS, "internal snapshots" },
    { QB_CAP_CHECK, "check" },
    { QB_CAP_REPAIR, "repair (check -r)" },
    { QB_CAP_ZERO_INIT, "new images read as zeros" },
};

static const struct {
    uint32_t bit;
    const char *name;
} modes[] = {
    { QB_PREALLOC_MODE_OFF, "off" },
    { QB_PREALLOC_MODE_METADATA, "metadata" },
    { QB_PREALLOC_MODE_FALLOC, "falloc" },
    { QB_PREALLOC_MODE_FULL, "full" },
};

/* The broker's last error message. */
static const char *errmsg(QBroker *broker)
{
    static char buf[512];

    qb_error_get_human_str(broker, buf, sizeof(buf));
    return buf;
}

static const char *const type_names[] = { "string", "bool", "size", "number", "enum" };

int main(int argc, char **argv)
{
    QBroker *broker = NULL;
    QBlockFmtCaps c;
    const QBlockOptionDesc *opts = NULL;
    enum QBlockFmtType t;
    int n = 0, ret;

    if (argc != 2 || (t = qb_str2fmttype(argv[1])) == QB_FMT_NONE) {
        fprintf(stderr, "usage: fmtcaps FORMAT\n");
        return 1;
    }
    if (qb_broker_new(&broker) < 0) {
        fprintf(stderr, "fmtcaps: no broker\n");
        return 1;
    }
    memset(&c, 0, sizeof(c));
    if (qb_fmt_get_caps(broker, t, &c) < 0) {
        fprintf(stderr, "fmtcaps: qb_fmt_get_caps: %s\n", errmsg(broker));
        return 1;
    }
    printf("| capability | %s |\n|---|---|\n", argv[1]);
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        printf("| %s | %s |\n", caps[i].what, (c.flags & caps[i].bit) ? "yes" : "no");
    }
    printf("| preallocation modes |");
    if (!c.prealloc_modes) {
        printf(" none");
    }
    for (size_t i = 0, first = 1; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (c.prealloc_modes & modes[i].bit) {
            printf("%s%s", first ? " " : ", ", modes[i].name);
            first = 0;
        }
    }
    printf(" |\n\n");

    ret = qb_fmt_get_create_options(broker, t, &opts, &n);
    if (ret == QB_ERR_NOT_SUPPORTED) {
        printf("No create options: this build has no driver for %s.\n", argv[1]);
    } else if (ret < 0) {
        fprintf(stderr, "fmtcaps: qb_fmt_get_create_options: %s\n",
                errmsg(broker));
        return 1;
    } else {
        printf("| option | type | default | values |\n|---|---|---|---|\n");
        for (int i = 0; i < n; i++) {
            printf("| %s | %s%s | %s |", opts[i].name,
                   (unsigned)opts[i].type < sizeof(type_names) / sizeof(type_names[0])
                       ? type_names[opts[i].type] : "?",
                   (opts[i].flags & QB_OPT_F_PROTOCOL) ? " (file protocol)" : "",
                   opts[i].def ? (*opts[i].def ? opts[i].def : "(empty)") : "(none)");
            for (const char *const *ch = opts[i].choices; ch && *ch; ch++) {
                printf("%s%s", ch == opts[i].choices ? " " : ", ", *ch);
            }
            printf(" |\n");
        }
    }
    qb_broker_delete(&broker);
    return 0;
}
