/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* img-map.c: the map command of qblock-img, built on qb_block_status. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qblock-img.h"

/* One run of the map: a range whose status is the same all along. */
typedef struct MapEntry {
    uint64_t start;
    uint64_t length;
    int depth;
    bool present;
    bool zero;
    bool data;
    bool has_offset;
    uint64_t offset;
} MapEntry;

/*
 * The names of the layers of the chain, found lazily: the human output names
 * the file that holds each data run, and only this needs the backing files'
 * names, which are recorded in each layer and so need each layer opened.
 */
#define MAX_CHAIN 64

typedef struct ChainNames {
    char *names[MAX_CHAIN];
    const char *fmt[MAX_CHAIN];
    int known;                  /* names[0..known-1] are filled */
    bool ended;                 /* the last known layer has no backing file */
} ChainNames;

static const char *chain_name(ChainNames *c, int depth)
{
    while (c->known <= depth && !c->ended && c->known < MAX_CHAIN) {
        ImgHandle h;
        const QBlockProtInfo *b;

        if (img_open(&h, c->names[c->known - 1], c->fmt[c->known - 1],
                     LIBQBLOCK_O_NO_BACKING | LIBQBLOCK_O_CACHE_WB) < 0) {
            return NULL;
        }
        b = &h.info->backing_loc;
        if (b->prot_type != QB_PROT_FILE || !b->prot_op.o_file.filename ||
            !b->prot_op.o_file.filename[0]) {
            c->ended = true;
        } else {
            c->names[c->known] = path_combine(c->names[c->known - 1], b->prot_op.o_file.filename);
            c->fmt[c->known] = h.info->backing_fmt != QB_FMT_NONE ?
                               qb_fmttype2str(h.info->backing_fmt) : NULL;
            if (!c->names[c->known]) {
                img_close(&h);
                return NULL;
            }
            c->known++;
        }
        img_close(&h);
    }
    return depth < c->known ? c->names[depth] : NULL;
}

static bool entries_mergeable(const MapEntry *a, const MapEntry *b)
{
    if (a->length == 0) {
        return false;
    }
    if (a->depth != b->depth || a->present != b->present || a->zero != b->zero ||
        a->data != b->data || a->has_offset != b->has_offset) {
        return false;
    }
    /* Runs merge only where their host offsets continue each other too. */
    if (a->has_offset && a->offset + a->length != b->offset) {
        return false;
    }
    return true;
}

static int dump_entry(bool json, const MapEntry *e, bool last, ChainNames *names)
{
    if (json) {
        printf("{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %d, "
               "\"present\": %s, \"zero\": %s, \"data\": %s",
               e->start, e->length, e->depth,
               e->present ? "true" : "false", e->zero ? "true" : "false",
               e->data ? "true" : "false");
        if (e->has_offset) {
            printf(", \"offset\": %" PRIu64, e->offset);
        }
        printf("}");
        printf(last ? "]\n" : ",\n");
        return 0;
    }

    if (e->data && !e->has_offset) {
        error_report("File contains external, encrypted or compressed clusters.");
        return -1;
    }
    /* The human form lists only the runs that hold data in some file. */
    if (e->data && !e->zero) {
        const char *name = chain_name(names, e->depth);

        if (!name) {
            error_report("Could not find the file of layer %d", e->depth);
            return -1;
        }
        printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
               e->start, e->length, e->offset, name);
    }
    return 0;
}

int img_map(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256, OPT_START, OPT_MAXLEN };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "start-offset", required_argument, NULL, OPT_START },
        { "max-length", required_argument, NULL, OPT_MAXLEN },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = "human";
    uint64_t start = 0, max_length = IMG_SIZE_MAX, end, offset;
    bool json, first = true;
    MapEntry curr;
    ChainNames names;
    ImgHandle h;
    int c, err, ret = 1;

    while ((c = getopt_long(argc, argv, ":f:hU", long_options, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'h': print_help(); return 0;
        case 'U': img_force_share = true; break;
        case OPT_OUTPUT: output = optarg; break;
        case OPT_START:
            err = parse_size(optarg, &start);
            if (err == 0 && start > IMG_SIZE_MAX) {
                err = -ERANGE;
            }
            if (err < 0) {
                report_size_error("start offset", -EINVAL, 0);
                return 1;
            }
            break;
        case OPT_MAXLEN:
            err = parse_size(optarg, &max_length);
            if (err == 0 && max_length > IMG_SIZE_MAX) {
                err = -ERANGE;
            }
            if (err < 0) {
                report_size_error("max length", -EINVAL, 0);
                return 1;
            }
            break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (optind != argc - 1) {
        usage_error("Expecting one image file name");
        return 1;
    }
    if (strcmp(output, "json") == 0) {
        json = true;
    } else if (strcmp(output, "human") == 0) {
        json = false;
    } else {
        error_report("--output must be used with human or json as argument.");
        return 1;
    }

    if (img_open(&h, argv[optind], fmt, LIBQBLOCK_O_CACHE_WB) < 0) {
        return 1;
    }
    memset(&names, 0, sizeof(names));
    names.names[0] = strdup(h.filename);
    names.fmt[0] = qb_fmttype2str(h.info->fmt_type);
    names.known = 1;
    if (!names.names[0]) {
        error_report("out of memory");
        goto out;
    }

    if (json) {
        printf("[");
    } else {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    }

    end = h.info->virt_size;
    if (max_length < end && start < end - max_length) {
        end = start + max_length;
    }
    /* With nothing to map, a single empty run at the start offset is shown. */
    memset(&curr, 0, sizeof(curr));
    curr.start = start;

    for (offset = start; offset < end; ) {
        QBlockStatusInfo st;
        MapEntry next;
        /* Ask for at most 1 GiB at a time so that each answer stays cheap to compute. */
        uint64_t want = end - offset < (1ULL << 30) ? end - offset : (1ULL << 30);

        memset(&st, 0, sizeof(st));
        if (qb_block_status(h.broker, h.qbs, offset, want, &st) < 0) {
            if (json) {
                printf("]\n");
            }
            error_report("Could not read file metadata: %s", broker_msg(h.broker));
            goto out;
        }
        if (st.length == 0 || st.length > want) {
            if (json) {
                printf("]\n");
            }
            error_report("Could not read file metadata: block status of offset %" PRIu64
                         " returned a length of %" PRIu64, offset, st.length);
            goto out;
        }
        next.start = offset;
        next.length = st.length;
        next.depth = st.depth;
        next.present = st.flags & QB_BLOCK_ALLOCATED;
        next.zero = st.flags & QB_BLOCK_ZERO;
        next.data = st.flags & QB_BLOCK_DATA;
        next.has_offset = st.flags & QB_BLOCK_OFFSET_VALID;
        next.offset = next.has_offset ? st.host_offset : 0;

        if (!first && entries_mergeable(&curr, &next)) {
            curr.length += next.length;
        } else {
            if (!first && dump_entry(json, &curr, false, &names) < 0) {
                goto out;
            }
            curr = next;
            first = false;
        }
        offset += st.length;
    }
    if (dump_entry(json, &curr, true, &names) < 0) {
        goto out;
    }
    ret = 0;

out:
    for (int i = 0; i < names.known; i++) {
        free(names.names[i]);
    }
    if (img_close(&h) < 0) {
        ret = 1;
    }
    return ret;
}
