/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * qbpolicy.c: opens an image through the public API under an open policy
 * given on the command line (the library's safe default without options),
 * reads the first MiB and walks its allocation, for the hostile-image
 * catalogue (interop 501-509).
 *
 * Usage: qbpolicy [-f FMT] [-r] [-a] [-d DEPTH] [-m BYTES] [-D BYTES]
 *                 [-A FOLDER]... IMAGE
 *   -r allow the raw guess, -a allow any path, -d/-m/-D the chain depth,
 *   metadata and descriptor limits, -A an allowed folder.
 * Prints "ok" (exit 0), or "error CODE: MESSAGE" (exit 1) where CODE is
 * the QB_ERR_* value; exit 2 for bad usage.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libqblock.h"

int main(int argc, char **argv)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;
    QBlockOpenPolicy pol;
    QBlockProtInfo loc;
    QBlockFmtInfo fi;
    const char *dirs[16];
    int ndirs = 0, c, ret;
    char msg[1024];
    static uint8_t buf[1 << 20];

    memset(&pol, 0, sizeof(pol));
    memset(&fi, 0, sizeof(fi));
    while ((c = getopt(argc, argv, "f:rad:m:D:A:")) != -1) {
        switch (c) {
        case 'f':
            fi.fmt_type = qb_str2fmttype(optarg);
            break;
        case 'r':
            pol.flags |= QB_POLICY_ALLOW_RAW_PROBE;
            break;
        case 'a':
            pol.flags |= QB_POLICY_ALLOW_ANY_PATH;
            break;
        case 'd':
            pol.max_chain_depth = (uint32_t)strtoul(optarg, NULL, 0);
            break;
        case 'm':
            pol.max_metadata_size = strtoull(optarg, NULL, 0);
            break;
        case 'D':
            pol.max_descriptor_size = strtoull(optarg, NULL, 0);
            break;
        case 'A':
            if (ndirs < 15) {
                dirs[ndirs++] = optarg;
            }
            break;
        default:
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: qbpolicy [-f FMT] [-r] [-a] [-d N] [-m N] [-D N] [-A DIR]... IMAGE\n");
        return 2;
    }
    dirs[ndirs] = NULL;
    pol.allowed_dirs = ndirs ? dirs : NULL;
    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_FILE;
    loc.prot_op.o_file.filename = argv[optind];

    if (qb_broker_new(&b) < 0 || qb_state_new(b, &qbs) < 0) {
        return 3;
    }
    ret = qb_state_set_policy(b, qbs, &pol);
    if (ret == 0) {
        ret = qb_open(b, qbs, &loc, fi.fmt_type == QB_FMT_NONE ? NULL : &fi, 0);
    }
    if (ret == 0) {
        QBlockStaticInfo *info = NULL;
        uint64_t size = 0;
        if (qb_info_image_static_get(b, qbs, &info) == 0) {
            size = info->virt_size;
            qb_info_image_static_delete(b, &info);
        }
        size = size < sizeof(buf) ? size : sizeof(buf);
        if (size) {
            int64_t r = qb_read(b, qbs, buf, size, 0);
            ret = r < 0 ? (int)r : 0;
        }
    }
    if (ret < 0) {
        qb_error_get_human_str(b, msg, sizeof(msg));
        printf("error %d: %s\n", ret, msg);
    } else {
        printf("ok\n");
    }
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
    return ret < 0 ? 1 : 0;
}
