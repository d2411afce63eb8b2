/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockholder.c: keeps an image open through libqblock's public API until it
 * is killed, so that the lock interop scripts can test what QEMU's tools
 * may do to an image libqblock holds.
 *
 * Usage: lockholder [-w] [-f FMT] FILE
 *   -w      open read-write (default read-only)
 *   -f FMT  the format (default: probe)
 * Prints "holding FILE" on stdout once the image is open, then sleeps until
 * a signal ends it. Exits 3 when the open failed because the image is
 * locked (QB_ERR_LOCKED), 1 on any other failure, with the library's
 * message on stderr.
 */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libqblock/libqblock.h"

int main(int argc, char **argv)
{
    QBroker *broker = NULL;
    QBlockState *qbs = NULL;
    QBlockProtInfo *loc = NULL;
    QBlockFmtInfo *fmt = NULL;
    const char *fmt_name = NULL;
    int flags = 0;
    int opt, ret;
    char msg[1024];

    while ((opt = getopt(argc, argv, "wf:")) != -1) {
        switch (opt) {
        case 'w':
            flags |= LIBQBLOCK_O_RDWR;
            break;
        case 'f':
            fmt_name = optarg;
            break;
        default:
            fprintf(stderr, "usage: lockholder [-w] [-f FMT] FILE\n");
            return 1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: lockholder [-w] [-f FMT] FILE\n");
        return 1;
    }
    if (qb_broker_new(&broker) < 0 || qb_state_new(broker, &qbs) < 0 ||
        qb_prot_info_new(broker, &loc) < 0) {
        fprintf(stderr, "lockholder: out of memory\n");
        return 1;
    }
    loc->prot_type = QB_PROT_FILE;
    loc->prot_op.o_file.filename = argv[optind];
    if (fmt_name) {
        if (qb_fmt_info_new(broker, &fmt) < 0) {
            fprintf(stderr, "lockholder: out of memory\n");
            return 1;
        }
        fmt->fmt_type = qb_str2fmttype(fmt_name);
        if (fmt->fmt_type == QB_FMT_NONE) {
            fprintf(stderr, "lockholder: unknown format '%s'\n", fmt_name);
            return 1;
        }
    }
    ret = qb_open(broker, qbs, loc, fmt, flags);
    if (ret < 0) {
        qb_error_get_human_str(broker, msg, sizeof(msg));
        fprintf(stderr, "lockholder: %s\n", msg);
        /* Freed, so that a leak checker does not turn the exit status into its own. */
        qb_fmt_info_delete(broker, &fmt);
        qb_prot_info_delete(broker, &loc);
        qb_state_delete(broker, &qbs);
        qb_broker_delete(&broker);
        return ret == QB_ERR_LOCKED ? 3 : 1;
    }
    printf("holding %s\n", argv[optind]);
    fflush(stdout);
    /* The default action of SIGTERM/SIGKILL ends us; the kernel drops the locks. */
    for (;;) {
        pause();
    }
}
