/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qblock-img.h: declarations shared by the source files of the qblock-img tool. */
#ifndef QBLOCK_IMG_H
#define QBLOCK_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "libqblock/libqblock.h"

#define TOOL_NAME "qblock-img"

#ifndef QBLOCK_VERSION
#define QBLOCK_VERSION "1.0.0"
#endif

/* The largest size any command accepts, as qemu-img does: sizes are signed 64-bit there. */
#define IMG_SIZE_MAX ((uint64_t)INT64_MAX)

/* Sub-command entry points: each returns the process exit code. */
int img_create(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_read(int argc, char **argv);
int img_write(int argc, char **argv);
int img_discard(int argc, char **argv);
int img_bench(int argc, char **argv);
int img_check(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_snapshot(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_amend(int argc, char **argv);
int img_dd(int argc, char **argv);

/* The full help text of the tool (on stdout). */
void print_help(void);

/* ---- messages ---- */

/* "qblock-img: <message>\n" on stderr. */
void error_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "qblock-img: warning: <message>\n" on stderr. */
void warn_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports a getopt failure (unknown option or missing argument) the way qemu-img does. */
void report_bad_option(char **argv, int c);
/* "qblock-img: <message>\nTry 'qblock-img --help' for more information\n". */
void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The broker's last error message; the text lives in the broker's own buffer (see util). */
const char *broker_msg(QBroker *broker);
/* Give @qbs the open policy that makes qb_open behave like qemu-img (no safe-default limits). */
int img_set_qemu_policy(QBroker *broker, QBlockState *qbs);

/* ---- numbers ---- */

/*
 * Parses a size in qemu-img syntax: decimal (or 0x hexadecimal) digits, an
 * optional fraction, an optional suffix b/B k/K m/M g/G t/T p/P e/E (powers of
 * 1024). Returns 0 and sets *out, -EINVAL for a malformed string, -ERANGE when
 * the value does not fit in 64 bits.
 */
int parse_size(const char *str, uint64_t *out);

/* Reports a parse_size failure with the qemu-img wording; @what is e.g. "image size". */
void report_size_error(const char *what, int err, uint64_t max);

/* Formats @val as qemu-img does ("0 B", "1.5 KiB", "0.999 MiB", "10 GiB"). */
void size_to_human(uint64_t val, char *buf, size_t buf_size);

/* Formats @val as qemu-io does ("1023 bytes", "64 KiB", "1.500 KiB"). */
void size_to_io_str(double val, char *buf, size_t buf_size);

/* Parses a pattern byte as qemu-io does (strtol base 0, 0..255). -1 when invalid. */
int parse_pattern(const char *str);

/* ---- -o option lists ---- */

/* One "key=value" item of a -o list (value NULL for a bare key such as "help"). */
typedef struct OptPair {
    char *key;
    char *value;
} OptPair;

typedef struct OptList {
    OptPair *items;
    size_t count;
} OptList;

/*
 * Splits a qemu-img -o string ("a=1,b=2", ",," being a literal comma) into
 * @out. Returns 0, -EINVAL for an empty item, or -ENOMEM.
 */
int opts_parse(const char *str, OptList *out);
void opts_free(OptList *list);
/* The value of the last item named @key, "" for a bare key, NULL when absent. */
const char *opts_get(const OptList *list, const char *key);
/* True when the list asks for help ("help" or "?"). */
bool opts_has_help(const OptList *list);
/* Appends ",key=value" (or "key=value" to an empty string) with commas in @value doubled. */
/* Appends @more to the -o string being gathered: qemu-img joins repeated -o with a comma. */
int append_options(char **opts, const char *more);
int opts_append(char **str, const char *key, const char *value);
/*
 * Prints the create options of @fmt for "-o help" as qemu-img lays them out
 * (with @filename non-NULL, protocol options too); returns the exit code.
 */
int print_create_options_help(const char *fmt, const char *filename);
/*
 * qemu-img's errors for an option in @opts that @fmt does not know, or a
 * @backing file it cannot have; -1 after reporting one, else 0.
 */
int check_create_option_names(const char *fmt, const char *filename, const char *opts,
                              bool backing);

/* ---- JSON ---- */

/* Writes @str as a JSON string literal (with quotes), escaping as qemu's writer does. */
void json_print_string(FILE *f, const char *str);

/* ---- images ---- */

/* One open image with its broker and facts. */
typedef struct ImgHandle {
    QBroker *broker;
    QBlockState *qbs;
    QBlockProtInfo *loc;
    QBlockStaticInfo *info;
    const char *filename;
    bool probed;            /* the format was probed, not given with -f */
    bool opened;            /* qb_open succeeded, so qb_close is due */
} ImgHandle;

/*
 * Opens @filename with format @fmt (NULL: probe) and @flags, and fetches its
 * static info. On failure prints "qblock-img: Could not open '<f>': <msg>"
 * and returns -1 (the handle is left empty and safe to close).
 */
/*
 * Set by -U: read-only opens share every permission (LIBQBLOCK_O_FORCE_SHARE),
 * so that an image another process writes can still be inspected.
 */
extern bool img_force_share;

int img_open(ImgHandle *h, const char *filename, const char *fmt, int flags);

/* Closes (flushing) and frees everything; reports a failed close and returns -1 then, else 0. */
int img_close(ImgHandle *h);

/*
 * info's format-specific section (img-info-specific.c). specific_get fills
 * *@si (NULL for a format without one) and reports errors itself; JSON gets
 * the section only where qemu-img prints one (specific_in_json).
 */
int specific_get(ImgHandle *h, QBlockSpecificInfo **si);
bool specific_in_json(const QBlockSpecificInfo *si);
void print_specific_human(const QBlockSpecificInfo *si);
void print_specific_json(const QBlockSpecificInfo *si, const char *indent);

/* Prints qemu's warning about writing to an image whose raw format was only probed. */
void warn_probed_raw(const ImgHandle *h);

/* Maps a qemu-img cache mode name to LIBQBLOCK_O_* flags; -1 when unknown. */
int cache_mode_flags(const char *mode);

/* Joins the folder of @base (up to its last '/') with @rel unless @rel is absolute. */
char *path_combine(const char *base, const char *rel);

/* ---- internal snapshots (img-snapshot.c), for info ---- */

typedef struct ImgSnapshots {
    QBlockSnapshotInfo *list;   /* NULL when there are none */
    int count;
} ImgSnapshots;

/* The snapshots of an open image (none for formats without them); -1 after reporting an error. */
int img_snapshots_get(ImgHandle *h, ImgSnapshots *out);
void img_snapshots_free(ImgSnapshots *s);
/* info's "Snapshot list:" table (nothing when there are none). */
void img_snapshots_print_human(const ImgSnapshots *s);
/* The value of info's "snapshots" key, a JSON array; @indent as for the object holding it. */
void img_snapshots_print_json(const ImgSnapshots *s, const char *indent);

/* ---- progress ---- */

typedef struct Progress {
    bool enabled;
    double last;        /* last percentage printed */
} Progress;

void progress_start(Progress *p, bool enabled);
void progress_update(Progress *p, uint64_t done, uint64_t total);
/* Prints the final 100%. */
void progress_finish(Progress *p);
/* Ends the progress line. */
void progress_end(Progress *p);

/*
 * A data buffer aligned for O_DIRECT (-t none), so that the library need
 * not bounce the data through one of its own; free() releases it.
 */
void *alloc_io_buffer(size_t size);
/* Fill @loc as the location of the local file (or qemu-img style name) @name. */
void file_loc(QBlockProtInfo *loc, const char *name);

/* Monotonic clock in seconds. */
double now_seconds(void);

#endif /* QBLOCK_IMG_H */
