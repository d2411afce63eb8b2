/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* img-measure.c: the measure command of qblock-img (qemu-img measure's flags and output). */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qblock-img.h"

/* qemu-img's refusal of an option the target format does not have; -1 after reporting. */
static int check_option_names(QBroker *broker, const char *fmt, const char *opts)
{
    const QBlockOptionDesc *list;
    OptList parsed = { NULL, 0 };
    int count, ret = 0;

    if (qb_fmt_get_create_options(broker, qb_str2fmttype(fmt), &list, &count) < 0 ||
        opts_parse(opts, &parsed) < 0) {
        opts_free(&parsed);
        return 0;   /* the library reports what is wrong when the options are applied */
    }
    for (size_t i = 0; i < parsed.count && ret == 0; i++) {
        bool known = false;
        for (int k = 0; k < count && !known; k++) {
            known = strcmp(list[k].name, parsed.items[i].key) == 0;
        }
        if (!known) {
            error_report("Invalid parameter '%s'", parsed.items[i].key);
            error_report("Invalid options for file format '%s'", fmt);
            ret = -1;
        }
    }
    opts_free(&parsed);
    return ret;
}

int img_measure(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256, OPT_SIZE, OPT_OBJECT, OPT_FORCE_SHARE };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "size", required_argument, NULL, OPT_SIZE },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *out_fmt = "raw", *output = "human", *filename = NULL;
    char *user_opts = NULL;
    bool have_size = false, json;
    uint64_t size = 0;
    QBroker *broker = NULL;
    QBlockFmtInfo *fi = NULL;
    QBlockMeasureInfo mi;
    ImgHandle src;
    int c, ret = 1;

    memset(&src, 0, sizeof(src));
    while ((c = getopt_long(argc, argv, ":hf:O:o:l:U", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'o':
            if (append_options(&user_opts, optarg) < 0) {
                error_report("out of memory");
                goto out;
            }
            break;
        case 'l':
            error_report("internal snapshots of the source (-l) are not supported by measure");
            goto out;
        case 'U': img_force_share = true; break;
        case OPT_OUTPUT: output = optarg; break;
        case OPT_OBJECT: break;   /* no secret or other objects are needed here */
        case OPT_SIZE:
            if (parse_size(optarg, &size) < 0) {
                error_report("Invalid image size specified. You may use k, M, G, T, P or E "
                             "suffixes for");
                error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and "
                             "exabytes.");
                goto out;
            }
            have_size = true;
            break;
        default: report_bad_option(argv, c); goto out;
        }
    }
    if (strcmp(output, "json") != 0 && strcmp(output, "human") != 0) {
        error_report("--output must be used with human or json as argument.");
        goto out;
    }
    json = strcmp(output, "json") == 0;
    if (optind < argc) {
        filename = argv[optind];
    }
    if (have_size && filename) {
        error_report("--size N cannot be used together with a filename.");
        goto out;
    }
    if (!have_size && !filename) {
        error_report("Either --size N or one filename must be specified.");
        goto out;
    }
    if (optind + 1 < argc) {
        error_report("Expecting one image file name");
        goto out;
    }
    if (qb_str2fmttype(out_fmt) == QB_FMT_NONE) {
        error_report("Unknown file format '%s'", out_fmt);
        goto out;
    }
    if (qb_broker_new(&broker) < 0 || qb_fmt_info_new(broker, &fi) < 0) {
        error_report("out of memory");
        goto out;
    }
    if (user_opts) {
        OptList list = { NULL, 0 };
        bool help = opts_parse(user_opts, &list) == 0 && opts_has_help(&list);

        opts_free(&list);
        if (help) {
            ret = print_create_options_help(out_fmt, NULL);
            goto out;
        }
    }
    fi->fmt_type = qb_str2fmttype(out_fmt);
    if (user_opts && check_option_names(broker, out_fmt, user_opts) < 0) {
        goto out;
    }
    if (user_opts && qb_fmt_info_set_options(broker, fi, user_opts) < 0) {
        error_report("%s", broker_msg(broker));
        goto out;
    }
    if (filename) {
        if (img_open(&src, filename, fmt, 0) < 0) {
            goto out;
        }
    } else {
        /* --size wins over a size among the -o options, as in qemu-img. */
        char opt[48];

        snprintf(opt, sizeof(opt), "size=%" PRIu64, size);
        if (qb_fmt_info_set_options(broker, fi, opt) < 0) {
            error_report("%s", broker_msg(broker));
            goto out;
        }
    }
    if (qb_measure(broker, fi, filename ? src.qbs : NULL, &mi) < 0) {
        error_report("%s", broker_msg(broker));
        goto out;
    }
    if (json) {
        printf("{\n");
        if (mi.has_bitmaps) {
            printf("    \"bitmaps\": %" PRIu64 ",\n", mi.bitmaps);
        }
        printf("    \"required\": %" PRIu64 ",\n", mi.required);
        printf("    \"fully-allocated\": %" PRIu64 "\n}\n", mi.fully_allocated);
    } else {
        printf("required size: %" PRIu64 "\n", mi.required);
        printf("fully allocated size: %" PRIu64 "\n", mi.fully_allocated);
        if (mi.has_bitmaps) {
            printf("bitmaps size: %" PRIu64 "\n", mi.bitmaps);
        }
    }
    ret = 0;

out:
    if (filename && img_close(&src) < 0) {
        ret = 1;
    }
    qb_fmt_info_delete(broker, &fi);
    qb_broker_delete(&broker);
    free(user_opts);
    return ret;
}
