/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* img-check.c: the check and resize commands of qblock-img, with qemu-img's output and exit codes. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qblock-img.h"

/* ------------------------------------------------------------------ */
/* check                                                               */

/* The exit codes of qemu-img check, which scripts rely on. */
enum {
    CHECK_OK = 0,
    CHECK_FAILED = 1,        /* the check could not be completed */
    CHECK_CORRUPT = 2,
    CHECK_LEAKS = 3,
    CHECK_UNSUPPORTED = 63,
};

static void check_print_human(const QBlockCheckResult *r)
{
    if (r->corruptions == 0 && r->leaks == 0 && r->check_errors == 0) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions) {
            printf("\n%d errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image may corrupt it.\n",
                   r->corruptions);
        }
        if (r->leaks) {
            printf("\n%d leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n", r->leaks);
        }
        if (r->check_errors) {
            printf("\n%d internal errors have occurred during the check.\n", r->check_errors);
        }
    }
    if (r->total_clusters != 0 && r->allocated_clusters != 0) {
        double total = (double)r->total_clusters;
        double alloc = (double)r->allocated_clusters;

        printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, "
               "%0.2f%% compressed clusters\n",
               r->allocated_clusters, r->total_clusters, alloc * 100.0 / total,
               (double)r->fragmented_clusters * 100.0 / alloc,
               (double)r->compressed_clusters * 100.0 / alloc);
    }
    if (r->image_end_offset) {
        printf("Image end offset: %" PRId64 "\n", r->image_end_offset);
    }
}

/*
 * qemu-img prints the result from a hash table, so its keys come in the
 * order of their hash buckets, not in declaration order; this is that order
 * (observed from qemu-img 7.2). Every key but filename, format and
 * check-errors appears only when its value is not zero.
 */
static void check_print_json(const QBlockCheckResult *r, const char *filename, const char *format)
{
    const char *sep = "";

#define NUM(key, val, always) \
    do { \
        if ((always) || (val) != 0) { \
            printf("%s\n    \"" key "\": %" PRId64, sep, (int64_t)(val)); \
            sep = ","; \
        } \
    } while (0)

    printf("{");
    NUM("image-end-offset", r->image_end_offset, 0);
    NUM("compressed-clusters", r->compressed_clusters, 0);
    NUM("total-clusters", r->total_clusters, 0);
    NUM("corruptions", r->corruptions, 0);
    NUM("corruptions-fixed", r->corruptions_fixed, 0);
    NUM("check-errors", r->check_errors, 1);
    NUM("leaks", r->leaks, 0);
    NUM("leaks-fixed", r->leaks_fixed, 0);
    NUM("allocated-clusters", r->allocated_clusters, 0);
    printf("%s\n    \"filename\": ", sep);
    json_print_string(stdout, filename);
    printf(",\n    \"format\": ");
    json_print_string(stdout, format);
    NUM("fragmented-clusters", r->fragmented_clusters, 0);
    printf("\n}\n");
#undef NUM
}

int img_check(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256 };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = "human", *filename, *format;
    bool quiet = false, json;
    int c, fix = 0, ret = CHECK_FAILED;
    QBlockCheckResult res;
    ImgHandle h;

    memset(&h, 0, sizeof(h));
    while ((c = getopt_long(argc, argv, ":hf:r:qU", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'r':
            if (strcmp(optarg, "leaks") == 0) {
                fix = QB_CHECK_FIX_LEAKS;
            } else if (strcmp(optarg, "all") == 0) {
                fix = QB_CHECK_FIX_LEAKS | QB_CHECK_FIX_ERRORS;
            } else {
                usage_error("Unknown option value for -r (expecting 'leaks' or 'all'): %s",
                            optarg);
                return 1;
            }
            break;
        case 'q': quiet = true; break;
        case 'U': img_force_share = true; break;
        case OPT_OUTPUT: output = optarg; break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (optind != argc - 1) {
        usage_error("Expecting one image file name");
        return 1;
    }
    filename = argv[optind];
    if (strcmp(output, "json") == 0) {
        json = true;
    } else if (strcmp(output, "human") == 0) {
        json = false;
    } else {
        error_report("--output must be used with human or json as argument.");
        return 1;
    }
    if (fix && img_force_share) {
        error_report("Could not open '%s': force-share=on can only be used with read-only images",
                     filename);
        return 1;
    }
    if (img_open(&h, filename, fmt, fix ? LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB : 0) < 0) {
        return 1;
    }
    format = qb_fmttype2str(h.info->fmt_type);

    if (qb_check(h.broker, h.qbs, fix, &res) < 0) {
        if (qb_error_get_errno(h.broker) == ENOTSUP) {
            error_report("This image format does not support checks");
            ret = CHECK_UNSUPPORTED;
        } else {
            error_report("Check failed: %s", strerror(qb_error_get_errno(h.broker)));
        }
        goto out;
    }
    if (res.corruptions_fixed || res.leaks_fixed) {
        /*
         * After a repair the image is checked again, and that second result
         * is the one shown, with the counts of what the repair mended.
         */
        int corruptions_fixed = res.corruptions_fixed, leaks_fixed = res.leaks_fixed;

        if (!json && !quiet) {
            printf("The following inconsistencies were found and repaired:\n\n"
                   "    %d leaked clusters\n"
                   "    %d corruptions\n\n"
                   "Double checking the fixed image now...\n", leaks_fixed, corruptions_fixed);
        }
        if (qb_check(h.broker, h.qbs, 0, &res) < 0) {
            error_report("Check failed: %s", strerror(qb_error_get_errno(h.broker)));
            goto out;
        }
        res.corruptions_fixed = corruptions_fixed;
        res.leaks_fixed = leaks_fixed;
    }
    if (!quiet) {
        if (json) {
            check_print_json(&res, filename, format ? format : "");
        } else {
            check_print_human(&res);
        }
    }
    if (res.check_errors) {
        error_report("Check failed");
        ret = CHECK_FAILED;
    } else if (res.corruptions) {
        ret = CHECK_CORRUPT;
    } else if (res.leaks) {
        ret = CHECK_LEAKS;
    } else {
        ret = CHECK_OK;
    }

out:
    if (img_close(&h) < 0 && ret == CHECK_OK) {
        ret = CHECK_FAILED;
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* resize                                                              */

/* The broker message without the "qb_truncate: " the library puts first. */
static const char *truncate_msg(QBroker *broker)
{
    const char *msg = broker_msg(broker);
    static const char prefix[] = "qb_truncate: ";

    if (strncmp(msg, prefix, sizeof(prefix) - 1) == 0) {
        msg += sizeof(prefix) - 1;
    }
    return msg;
}

int img_resize(int argc, char **argv)
{
    enum { OPT_SHRINK = 256 };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "shrink", no_argument, NULL, OPT_SHRINK },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *size_str, *filename;
    bool quiet = false, shrink = false;
    int c, ret = 1, sign = 0;
    uint64_t n, cur, total;
    ImgHandle h;

    memset(&h, 0, sizeof(h));
    /*
     * The size is the last argument and may start with '-', so it is taken
     * off before the options are parsed, as qemu-img does; "resize f -1M"
     * then shrinks instead of failing on an unknown option.
     */
    if (argc < 3) {
        usage_error("Expecting image file name and size");
        return 1;
    }
    size_str = argv[argc - 1];
    argc--;
    while ((c = getopt_long(argc, argv, ":hf:q", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'f': fmt = optarg; break;
        case 'q': quiet = true; break;
        case OPT_SHRINK: shrink = true; break;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (optind != argc - 1) {
        usage_error("Expecting image file name and size");
        return 1;
    }
    filename = argv[optind];
    if (size_str[0] == '+' || size_str[0] == '-') {
        sign = size_str[0] == '+' ? 1 : -1;
        size_str++;
    }
    if (parse_size(size_str, &n) < 0) {
        error_report("Parameter 'size' expects a non-negative number below 2^64");
        fprintf(stderr, "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, "
                "peta-\nand exabytes, respectively.\n");
        return 1;
    }
    if (img_open(&h, filename, fmt, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB) < 0) {
        return 1;
    }
    warn_probed_raw(&h);
    /* img_open has just fetched the static info, so its size is current. */
    cur = h.info->virt_size;
    if (sign > 0) {
        total = n > IMG_SIZE_MAX - cur ? 0 : cur + n;
    } else if (sign < 0) {
        total = n >= cur ? 0 : cur - n;
    } else {
        total = n;
    }
    if (total == 0 || total > IMG_SIZE_MAX) {
        error_report("New image size must be positive");
        goto out;
    }
    if (total < cur && !shrink) {
        error_report("Use the --shrink option to perform a shrink operation.");
        warn_report("Shrinking an image will delete all data beyond the shrunken image's end. "
                    "Before performing such an operation, make sure there is no important data "
                    "there.");
        goto out;
    }
    if (qb_truncate(h.broker, h.qbs, total) < 0) {
        if (qb_error_get_errno(h.broker) == ENOTSUP) {
            error_report("Image format driver does not support resize");
        } else {
            error_report("%s", truncate_msg(h.broker));
        }
        goto out;
    }
    ret = 0;

out:
    if (img_close(&h) < 0) {
        ret = 1;
    }
    if (ret == 0 && !quiet) {
        printf("Image resized.\n");
    }
    return ret;
}
