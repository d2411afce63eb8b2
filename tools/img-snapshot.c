/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* img-snapshot.c: the snapshot command (list, create, apply, delete) and the snapshot part of info. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qblock-img.h"

/*
 * qemu-img keeps ids and names in fixed buffers of 128 and 256 bytes, so
 * it shows at most 127 and 255 bytes of them, and stores at most 255 bytes
 * of a new name; the same limits apply here, so that the outputs match.
 */
#define SHOWN_ID_MAX    127
#define SHOWN_NAME_MAX  255

/* ------------------------------------------------------------------ */
/* The table qemu-img prints for -l and under "Snapshot list:" in info */

static void print_table_header(void)
{
    printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
}

static void print_table_row(const QBlockSnapshotInfo *sn)
{
    char size[64], date[64] = "", clock[64], icount[32] = "";
    uint64_t secs = sn->vm_clock_nsec / 1000000000u;
    time_t t = (time_t)sn->date_sec;
    struct tm tm;

    size_to_human(sn->vm_state_size, size, sizeof(size));
    /* The date is shown in local time, as qemu-img shows it. */
    if (localtime_r(&t, &tm)) {
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    }
    snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d", (int)(secs / 3600),
             (int)((secs / 60) % 60), (int)(secs % 60),
             (int)((sn->vm_clock_nsec / 1000000u) % 1000));
    if (sn->icount != QB_SNAPSHOT_NO_ICOUNT) {
        snprintf(icount, sizeof(icount), "%" PRId64, (int64_t)sn->icount);
    }
    printf("%-9.*s %-16.*s %8s%20s%13s%11s\n", SHOWN_ID_MAX, sn->id, SHOWN_NAME_MAX, sn->name,
           size, date, clock, icount);
}

static void print_table(const QBlockSnapshotInfo *list, int count)
{
    printf("Snapshot list:\n");
    print_table_header();
    for (int i = 0; i < count; i++) {
        print_table_row(&list[i]);
    }
}

/* ------------------------------------------------------------------ */
/* info                                                                */

int img_snapshots_get(ImgHandle *h, ImgSnapshots *out)
{
    memset(out, 0, sizeof(*out));
    if (qb_snapshot_list(h->broker, h->qbs, &out->list, &out->count) < 0) {
        /* Formats without snapshots have none to show; anything else is an error. */
        if (qb_error_get_errno(h->broker) == ENOTSUP) {
            return 0;
        }
        error_report("Could not list the snapshots of '%s': %s", h->filename,
                     broker_msg(h->broker));
        return -1;
    }
    return 0;
}

void img_snapshots_free(ImgSnapshots *s)
{
    qb_snapshot_list_free(NULL, &s->list);
    s->count = 0;
}

void img_snapshots_print_human(const ImgSnapshots *s)
{
    if (s->count > 0) {
        print_table(s->list, s->count);
    }
}

void img_snapshots_print_json(const ImgSnapshots *s, const char *indent)
{
    /* qemu-img's key order (its dictionaries' order), "icount" only where recorded. */
    printf("[");
    for (int i = 0; i < s->count; i++) {
        const QBlockSnapshotInfo *sn = &s->list[i];
        char id[SHOWN_ID_MAX + 1], name[SHOWN_NAME_MAX + 1];

        snprintf(id, sizeof(id), "%s", sn->id);
        snprintf(name, sizeof(name), "%s", sn->name);
        printf("%s\n%s        {\n", i ? "," : "", indent);
        if (sn->icount != QB_SNAPSHOT_NO_ICOUNT) {
            printf("%s            \"icount\": %" PRId64 ",\n", indent, (int64_t)sn->icount);
        }
        printf("%s            \"vm-clock-nsec\": %" PRIu64 ",\n", indent,
               sn->vm_clock_nsec % 1000000000u);
        printf("%s            \"name\": ", indent);
        json_print_string(stdout, name);
        printf(",\n%s            \"date-sec\": %" PRId64 ",\n", indent, sn->date_sec);
        printf("%s            \"date-nsec\": %" PRIu32 ",\n", indent, sn->date_nsec);
        printf("%s            \"vm-clock-sec\": %" PRIu64 ",\n", indent,
               sn->vm_clock_nsec / 1000000000u);
        printf("%s            \"id\": ", indent);
        json_print_string(stdout, id);
        printf(",\n%s            \"vm-state-size\": %" PRIu64 "\n", indent, sn->vm_state_size);
        printf("%s        }", indent);
    }
    printf("\n%s    ]", indent);
}

/* ------------------------------------------------------------------ */
/* snapshot                                                            */

enum { SNAP_NONE, SNAP_LIST, SNAP_APPLY, SNAP_CREATE, SNAP_DELETE };

static int snapshot_list(ImgHandle *h)
{
    QBlockSnapshotInfo *list = NULL;
    int count = 0;

    /* qemu-img prints nothing at all, and succeeds, when the format has no snapshots. */
    if (qb_snapshot_list(h->broker, h->qbs, &list, &count) < 0) {
        if (qb_error_get_errno(h->broker) == ENOTSUP) {
            return 0;
        }
        error_report("Could not list the snapshots of '%s': %s", h->filename,
                     broker_msg(h->broker));
        return 1;
    }
    if (count > 0) {
        print_table(list, count);
    }
    qb_snapshot_list_free(h->broker, &list);
    return 0;
}

static int snapshot_create(ImgHandle *h, const char *name)
{
    char shown[SHOWN_NAME_MAX + 1];

    /* qemu-img keeps the first 255 bytes of a longer name, silently. */
    snprintf(shown, sizeof(shown), "%s", name);
    if (qb_snapshot_create(h->broker, h->qbs, shown) < 0) {
        int e = qb_error_get_errno(h->broker);
        error_report("Could not create snapshot '%s': %d (%s)", name, -e, strerror(e));
        return 1;
    }
    return 0;
}

static int snapshot_apply(ImgHandle *h, const char *id_or_name)
{
    if (qb_snapshot_apply(h->broker, h->qbs, id_or_name) < 0) {
        int e = qb_error_get_errno(h->broker);
        if (e == ENOTSUP) {
            /*
             * qemu-img reopens the image while it looks for a driver that
             * has snapshots, and so warns a second time about probed raw.
             */
            warn_probed_raw(h);
            error_report("Could not apply snapshot '%s': Block driver does not support "
                         "snapshots", id_or_name);
        } else {
            error_report("Could not apply snapshot '%s': Failed to load snapshot: %s",
                         id_or_name, strerror(e));
        }
        return 1;
    }
    return 0;
}

/*
 * qemu-img snapshot -d finds the snapshot by name only (-a takes an id as
 * well): the first snapshot of that name is looked up here and deleted by
 * its id, which the library matches before any name.
 */
static int snapshot_delete(ImgHandle *h, const char *name)
{
    QBlockSnapshotInfo *list = NULL;
    char *id = NULL;
    int count = 0, ret = 0;

    if (qb_snapshot_list(h->broker, h->qbs, &list, &count) < 0 &&
        qb_error_get_errno(h->broker) != ENOTSUP) {
        error_report("Could not delete snapshot '%s': %s", name, broker_msg(h->broker));
        return 1;
    }
    for (int i = 0; i < count && !id; i++) {
        if (strcmp(list[i].name, name) == 0) {
            id = strdup(list[i].id);
            if (!id) {
                error_report("out of memory");
                qb_snapshot_list_free(h->broker, &list);
                return 1;
            }
        }
    }
    qb_snapshot_list_free(h->broker, &list);
    if (!id) {
        /* A format without snapshots has none to find either, as qemu-img sees it. */
        error_report("Could not delete snapshot '%s': snapshot not found", name);
        return 1;
    }
    if (qb_snapshot_delete(h->broker, h->qbs, id) < 0) {
        error_report("Could not delete snapshot '%s': %s", name, broker_msg(h->broker));
        ret = 1;
    }
    free(id);
    return ret;
}

int img_snapshot(int argc, char **argv)
{
    enum { OPT_OBJECT = 256 };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *filename, *arg = NULL;
    int action = SNAP_NONE, flags = LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB;
    ImgHandle h;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":la:c:d:f:hqU", long_options, NULL)) != -1) {
        int want = SNAP_NONE;

        switch (c) {
        case 'l': want = SNAP_LIST; break;
        case 'a': want = SNAP_APPLY; break;
        case 'c': want = SNAP_CREATE; break;
        case 'd': want = SNAP_DELETE; break;
        /* Not in qemu-img 7.2's snapshot (it has --image-opts); the one way to skip probing. */
        case 'f': fmt = optarg; break;
        case 'h': print_help(); return 0;
        case 'q': break;   /* nothing but -l prints, and qemu-img -q -l still lists */
        case 'U': img_force_share = true; break;
        /* Secrets and other objects serve encrypted images, which this tool does not open. */
        case OPT_OBJECT: break;
        default: report_bad_option(argv, c); return 1;
        }
        if (want != SNAP_NONE) {
            /* qemu-img stops at the second action, whatever follows. */
            if (action != SNAP_NONE) {
                usage_error("Cannot mix '-l', '-a', '-c', '-d'");
                return 1;
            }
            action = want;
            arg = optarg;
        }
    }
    if (optind != argc - 1) {
        usage_error("Expecting one image file name");
        return 1;
    }
    filename = argv[optind];
    if (action == SNAP_LIST) {
        flags = LIBQBLOCK_O_CACHE_WB;
    } else if (img_force_share) {
        /* Everything but -l opens the image read-write (even with no action), as qemu-img does. */
        error_report("Could not open '%s': force-share=on can only be used with read-only "
                     "images", filename);
        return 1;
    }
    if (img_open(&h, filename, fmt, flags) < 0) {
        return 1;
    }
    /* qemu-img warns about a probed raw image only when it opens it read-write. */
    if (flags & LIBQBLOCK_O_RDWR) {
        warn_probed_raw(&h);
    }
    switch (action) {
    case SNAP_LIST: ret = snapshot_list(&h); break;
    case SNAP_CREATE: ret = snapshot_create(&h, arg); break;
    case SNAP_APPLY: ret = snapshot_apply(&h, arg); break;
    case SNAP_DELETE: ret = snapshot_delete(&h, arg); break;
    default: ret = 0; break;
    }
    if (img_close(&h) < 0) {
        ret = 1;
    }
    return ret;
}
