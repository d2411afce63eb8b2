/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qblock-img.c: the qemu-img-style command-line tool of libqblock: dispatch, help, create and info. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qblock-img.h"

/* ------------------------------------------------------------------ */
/* Help                                                                */

void print_help(void)
{
    printf(
"%s version %s\n"
"usage: %s [standard options] command [command options]\n"
"Disk image utility built on libqblock\n"
"\n"
"    '-h', '--help'       display this help and exit\n"
"    '-V', '--version'    output version information and exit\n"
"\n"
"Command syntax:\n"
"  amend [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename\n"
"  bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename\n"
"  check [-q] [--output=ofmt] [-f fmt] [-r [leaks | all]] [-U] filename\n"
"  commit [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] filename\n"
"  compare [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2\n"
"  convert [--target-is-zero] [-U] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] [-m num_requests] [-W] filename [filename2 [...]] output_filename\n"
"  create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]\n"
"  dd [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output\n"
"  discard [-f fmt] [-q] filename offset length\n"
"  help\n"
"  info [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename\n"
"  map [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename\n"
"  measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [--object objectdef] [-f fmt] [-U] filename]\n"
"  read [-f fmt] [-P pattern] [-v] [-q] filename offset length\n"
"  rebase [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt] filename\n"
"  resize [-f fmt] [-q] [--shrink] filename [+ | -]size\n"
"  snapshot [--object objectdef] [-U] [-q] [-f fmt] [-l | -a snapshot | -c snapshot | -d snapshot] filename\n"
"  write [-c] [-f fmt] [-P pattern] [-z [-u]] [-q] filename offset length\n"
"\n"
"Command parameters:\n"
"  'filename' is a disk image filename, or an NBD export in one of qemu-img's\n"
"    forms: nbd://host[:port]/export, nbd+unix:///export?socket=path,\n"
"    nbd:host:port[:exportname=name], nbd:unix:path[:exportname=name]\n"
"    or a Ceph RBD image (builds with librbd):\n"
"    rbd:pool/image[@snapshot][:conf=path][:id=user]\n"
"  'fmt' is the disk image format. It is guessed automatically in most cases\n"
"  'cache' is the cache mode used to write the output disk image, the valid\n"
"    options are: 'none', 'writeback' (default, except for convert), 'writethrough',\n"
"    'directsync' and 'unsafe' (default for convert)\n"
"  'src_cache' is the cache mode used to read input disk images, the valid\n"
"    options are the same as for the 'cache' option\n"
"  'size', 'offset' and 'length' are numbers of bytes. Optional suffixes\n"
"    'k' or 'K' (kilobyte, 1024), 'M' (megabyte, 1024k), 'G' (gigabyte, 1024M),\n"
"    'T' (terabyte, 1024G), 'P' (petabyte, 1024T) and 'E' (exabyte, 1024P) are\n"
"    supported. 'b' is ignored.\n"
"  'output_filename' is the destination disk image filename\n"
"  'output_fmt' is the destination format\n"
"  'options' is a comma separated list of format specific options in a\n"
"    name=value format. Use -o help for an overview of the options supported by\n"
"    the used format\n"
"  'pattern' is a byte value (0..255, decimal or 0x hexadecimal) to write or to\n"
"    verify\n"
"  '-u' allows creating an image whose backing file is not opened\n"
"  '-p' show progress of command (only certain commands)\n"
"  '-q' use Quiet mode - do not print any output (except errors)\n"
"  '-S' indicates the consecutive number of bytes (defaults to 4k) that must\n"
"       contain only zeros for the output of convert to be left sparse there.\n"
"       If the number of bytes is 0, the source will not be scanned for\n"
"       unallocated or zero sectors, and the destination image will always be\n"
"       fully allocated\n"
"  '--output' takes the format in which the output must be done (human or json)\n"
"  '-c' indicates that the target image must be compressed (qcow2; vmdk stores\n"
"       compressed grains in its streamOptimized subformat)\n"
"  '-n' skips the target volume creation (useful if the volume is created\n"
"       prior to running convert)\n"
"  '--target-is-zero' tells convert that the target (with '-n') already reads\n"
"       as zeros, so that zero ranges are not written\n"
"  '-B' gives the target of convert a backing file holding what the sources'\n"
"       backing files hold: only the sources' own data is copied ('-F' is the\n"
"       backing file's format)\n"
"  '-m' is the number of requests convert keeps in flight (1 to 16, default 8)\n"
"  '-W' lets convert write out of order (faster; the target is complete only\n"
"       once convert has finished)\n"
"  '-U' is accepted for compatibility; images are opened with the usual locks\n"
"\n"
"Parameters to commit subcommand:\n"
"  '-b' names the base image to commit into, deeper in the backing chain; it\n"
"       implies '-d'\n"
"  '-d' keeps the committed image as it is; without it the image is emptied\n"
"       where its format can be (qcow2, qcow), so it reads its backing file\n"
"  '-r' is accepted for compatibility; the copy is not rate-limited\n"
"\n"
"Parameters to rebase subcommand:\n"
"  '-b' the new backing file (\"\" makes the image standalone); in safe mode\n"
"       (the default) every area where the old and the new backing file\n"
"       differ is first copied into the image\n"
"  '-F' the new backing file's format, required as in qemu-img 7.2\n"
"  '-u' unsafe mode: only the backing file reference is changed\n"
"\n"
"Parameters to amend subcommand:\n"
"  '-o' qcow2 options to change: compat (0.10 or 1.1), lazy_refcounts, size;\n"
"       refcount_bits only at its current value; '-o help' lists qemu-img's\n"
"\n"
"Parameters to dd subcommand:\n"
"  'bs=BYTES' read and write up to BYTES bytes at a time (default: 512)\n"
"  'count=N' copy only N input blocks\n"
"  'if=FILE' read from FILE\n"
"  'of=FILE' write to FILE\n"
"  'skip=N' skip N bs-sized blocks at the start of input\n"
"  As in qemu-img 7.2 (and unlike dd(1)), count=N ends the input N blocks\n"
"  from its start and skip=M starts inside that range: 'skip=2 count=3'\n"
"  copies one block, not three\n"
"\n"
"Parameters to compare subcommand:\n"
"  '-f' first image format\n"
"  '-F' second image format\n"
"  '-s' run in Strict mode - fail on different image size or sector allocation\n"
"\n"
"Parameters to snapshot subcommand:\n"
"  'snapshot' is the name of the snapshot to create, apply or delete\n"
"  '-a' applies a snapshot (revert disk to saved state)\n"
"  '-c' creates a snapshot\n"
"  '-d' deletes a snapshot\n"
"  '-l' lists all snapshots in the given image\n"
"\n"
"Parameters to read, write and discard subcommands:\n"
"  '-P' fills the written range with the pattern byte (default 0xcd), or\n"
"       checks that the range read holds only that byte\n"
"  '-v' dumps the bytes read in hexadecimal\n"
"  '-z' writes zeros (as one zero-write request); with '-u' the format may unmap them\n"
"\n"
"Supported formats: cow qcow qcow2 qed raw vdi vmdk vpc\n",
        TOOL_NAME, QBLOCK_VERSION, TOOL_NAME);
}

static void print_version(void)
{
    printf("%s version %s\n", TOOL_NAME, QBLOCK_VERSION);
    printf("Part of libqblock, licensed under the LGPL-2.1-or-later\n");
}

static int img_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    print_help();
    return 0;
}

/* ------------------------------------------------------------------ */
/* create                                                              */


/* Finds the size of the backing file the new image will use (opened relative to @filename). */
static int backing_size(const char *filename, const char *backing, const char *backing_fmt,
                        uint64_t *size)
{
    ImgHandle h;
    char *path = path_combine(filename, backing);

    if (!path) {
        error_report("%s: out of memory", filename);
        return -1;
    }
    if (img_open(&h, path, backing_fmt, LIBQBLOCK_O_NO_BACKING | LIBQBLOCK_O_CACHE_WB) < 0) {
        fprintf(stderr, "Could not open backing image.\n");
        free(path);
        return -1;
    }
    *size = h.info->virt_size;
    img_close(&h);
    free(path);
    return 0;
}

/* Probes the backing file's format, to say which one -F should name. */
static void report_detected_backing_format(const char *filename, const char *backing)
{
    char *path = path_combine(filename, backing);
    QBroker *broker = NULL;
    QBlockState *qbs = NULL;
    QBlockProtInfo loc;
    QBlockStaticInfo *info = NULL;

    if (!path || qb_broker_new(&broker) < 0 || qb_state_new(broker, &qbs) < 0 ||
        img_set_qemu_policy(broker, qbs) < 0) {
        goto out;
    }
    file_loc(&loc, path);
    if (qb_open(broker, qbs, &loc, NULL, LIBQBLOCK_O_NO_BACKING) == 0) {
        if (qb_info_image_static_get(broker, qbs, &info) == 0) {
            const char *name = qb_fmttype2str(info->fmt_type);
            fprintf(stderr, "Detected format of %s.\n", name ? name : "unknown");
            qb_info_image_static_delete(broker, &info);
        }
        qb_close(broker, qbs);
    }
out:
    qb_state_delete(broker, &qbs);
    qb_broker_delete(&broker);
    free(path);
}

int img_create(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = "raw", *backing = NULL, *backing_fmt = NULL, *filename;
    char *user_opts = NULL, *all_opts = NULL;
    bool quiet = false, unsafe = false, have_size = false;
    uint64_t size = 0;
    OptList list = { NULL, 0 };
    QBroker *broker = NULL;
    QBlockState *qbs = NULL;
    QBlockFmtInfo *fi = NULL;
    QBlockProtInfo loc;
    const char *opt_size;
    int c, ret = 1, err;

    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", long_options, NULL)) != -1) {
        switch (c) {
        case 'F': backing_fmt = optarg; break;
        case 'b': backing = optarg; break;
        case 'f': fmt = optarg; break;
        case 'h': print_help(); ret = 0; goto out;
        case 'o':
            if (append_options(&user_opts, optarg) < 0) {
                error_report("out of memory");
                goto out;
            }
            break;
        case 'q': quiet = true; break;
        case 'u': unsafe = true; break;
        default: report_bad_option(argv, c); goto out;
        }
    }

    if (user_opts) {
        err = opts_parse(user_opts, &list);
        if (err == -EINVAL) {
            error_report("Invalid option list: %s", user_opts);
            goto out;
        } else if (err < 0) {
            error_report("out of memory");
            goto out;
        }
        if (opts_has_help(&list)) {
            ret = print_create_options_help(fmt, optind < argc ? argv[optind] : NULL);
            goto out;
        }
    }

    if (optind >= argc) {
        usage_error("Expecting image file name");
        goto out;
    }
    filename = argv[optind++];
    if (optind < argc) {
        err = parse_size(argv[optind], &size);
        if (err == 0 && size > IMG_SIZE_MAX) {
            err = -ERANGE;
        }
        if (err < 0) {
            report_size_error("image size", err, IMG_SIZE_MAX);
            goto out;
        }
        have_size = true;
        optind++;
    }
    if (optind < argc) {
        usage_error("Unexpected argument: %s", argv[optind]);
        goto out;
    }

    if (qb_str2fmttype(fmt) == QB_FMT_NONE) {
        error_report("%s: Unknown file format '%s'", filename, fmt);
        goto out;
    }
    opt_size = opts_get(&list, "size");
    if (opt_size && have_size) {
        error_report("%s: The image size must be specified only once", filename);
        goto out;
    }
    if (opt_size) {
        /* Shown normalised, as qemu-img does; a bad value is left for the library to refuse. */
        if (parse_size(opt_size, &size) == 0) {
            have_size = true;
        }
    }
    /*
     * The library validates the options before anything else happens, so
     * that a bad option or a backing file the format cannot have is
     * reported first, as qemu-img does.
     */
    if (user_opts || backing) {
        char *check = NULL;
        bool ok = false;

        if (qb_broker_new(&broker) < 0 || qb_fmt_info_new(broker, &fi) < 0) {
            error_report("out of memory");
            goto out;
        }
        fi->fmt_type = qb_str2fmttype(fmt);
        if (check_create_option_names(fmt, filename, user_opts, backing != NULL) < 0) {
            qb_fmt_info_delete(broker, &fi);
            qb_broker_delete(&broker);
            goto out;
        }
        if ((!user_opts || append_options(&check, user_opts) == 0) &&
            (!backing || opts_append(&check, "backing_file", backing) == 0)) {
            if (qb_fmt_info_set_options(broker, fi, check) < 0) {
                error_report("%s: %s", filename, broker_msg(broker));
            } else {
                ok = true;
            }
        } else {
            error_report("out of memory");
        }
        free(check);
        qb_fmt_info_delete(broker, &fi);
        qb_broker_delete(&broker);
        if (!ok) {
            goto out;
        }
    }
    if (backing_fmt && !backing) {
        error_report("%s: Backing format cannot be used without backing file", filename);
        goto out;
    }
    if (backing && !backing_fmt && !unsafe) {
        /* qemu-img 7.2 refuses to record a backing file whose format it would have to guess. */
        error_report("%s: Backing file specified without backing format", filename);
        report_detected_backing_format(filename, backing);
        goto out;
    }
    if (!have_size && !opt_size) {
        if (!backing || unsafe) {
            error_report("%s: Image creation needs a size parameter", filename);
            goto out;
        }
        if (backing_size(filename, backing, backing_fmt, &size) < 0) {
            goto out;
        }
        have_size = true;
    }

    /* Everything goes to the library as one -o string, which it validates. */
    if (have_size && !opt_size) {
        char num[32];
        snprintf(num, sizeof(num), "%" PRIu64, size);
        if (opts_append(&all_opts, "size", num) < 0) {
            error_report("out of memory");
            goto out;
        }
    }
    if (user_opts && append_options(&all_opts, user_opts) < 0) {
        error_report("out of memory");
        goto out;
    }
    if ((backing && opts_append(&all_opts, "backing_file", backing) < 0) ||
        (backing_fmt && opts_append(&all_opts, "backing_fmt", backing_fmt) < 0)) {
        error_report("out of memory");
        goto out;
    }

    if (qb_broker_new(&broker) < 0) {
        error_report("out of memory");
        goto out;
    }
    if (qb_fmt_info_new(broker, &fi) < 0 || qb_state_new(broker, &qbs) < 0) {
        error_report("%s: %s", filename, broker_msg(broker));
        goto out;
    }
    fi->fmt_type = qb_str2fmttype(fmt);
    if (all_opts && qb_fmt_info_set_options(broker, fi, all_opts) < 0) {
        error_report("%s: %s", filename, broker_msg(broker));
        goto out;
    }

    if (!quiet) {
        printf("Formatting '%s', fmt=%s", filename, fmt);
        if (have_size) {
            printf(" size=%" PRIu64, size);
        }
        for (size_t i = 0; i < list.count; i++) {
            if (strcmp(list.items[i].key, "size") == 0) {
                continue;
            }
            if (list.items[i].value) {
                printf(" %s=%s", list.items[i].key, list.items[i].value);
            } else {
                printf(" %s", list.items[i].key);
            }
        }
        if (backing) {
            printf(" backing_file=%s", backing);
        }
        if (backing_fmt) {
            printf(" backing_fmt=%s", backing_fmt);
        }
        printf("\n");
        fflush(stdout);
    }

    file_loc(&loc, filename);
    if (qb_create(broker, qbs, &loc, fi, LIBQBLOCK_O_CACHE_WB) < 0) {
        error_report("%s: %s", filename, broker_msg(broker));
        goto out;
    }
    ret = 0;

out:
    opts_free(&list);
    free(user_opts);
    free(all_opts);
    if (broker) {
        qb_fmt_info_delete(broker, &fi);
        qb_state_delete(broker, &qbs);
        qb_broker_delete(&broker);
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* info                                                                */

/* What info shows about one image of a chain. */
typedef struct ImageFacts {
    const char *filename;
    const char *format;
    uint64_t virt_size;
    int64_t actual_size;        /* < 0: unknown */
    uint64_t cluster_size;
    bool encrypted;
    int dirty;                  /* < 0: unknown */
    char *backing;              /* NULL: none */
    char *full_backing;
    const char *backing_fmt;    /* NULL: not recorded */
    QBlockSpecificInfo *specific;/* NULL: the format has none */
    ImgSnapshots snapshots;     /* internal snapshots (img-snapshot.c) */
} ImageFacts;

static void facts_free(ImageFacts *f)
{
    free(f->backing);
    free(f->full_backing);
    /* Its broker is gone with the image's handle; delete needs none. */
    qb_info_image_specific_delete(NULL, &f->specific);
    img_snapshots_free(&f->snapshots);
    memset(f, 0, sizeof(*f));
}

static int facts_get(ImgHandle *h, ImageFacts *f)
{
    const QBlockStaticInfo *info = h->info;

    memset(f, 0, sizeof(*f));
    f->filename = h->filename;
    f->format = qb_fmttype2str(info->fmt_type);
    if (!f->format) {
        f->format = "unknown";
    }
    f->virt_size = info->virt_size;
    f->actual_size = qb_get_allocated_file_size(h->broker, h->qbs);
    f->cluster_size = info->cluster_size;
    f->encrypted = info->encrypt;
    f->dirty = qb_is_dirty(h->broker, h->qbs);
    if (specific_get(h, &f->specific) < 0) {
        return -1;
    }
    if (info->backing_loc.prot_type == QB_PROT_FILE && info->backing_loc.prot_op.o_file.filename &&
        info->backing_loc.prot_op.o_file.filename[0]) {
        f->backing = strdup(info->backing_loc.prot_op.o_file.filename);
        f->full_backing = f->backing ? path_combine(h->filename, f->backing) : NULL;
        if (!f->backing || !f->full_backing) {
            error_report("out of memory");
            facts_free(f);
            return -1;
        }
        if (info->backing_fmt != QB_FMT_NONE) {
            f->backing_fmt = qb_fmttype2str(info->backing_fmt);
        }
    }
    if (img_snapshots_get(h, &f->snapshots) < 0) {
        facts_free(f);
        return -1;
    }
    return 0;
}

static void print_facts_human(const ImageFacts *f)
{
    char buf[64];

    printf("image: %s\n", f->filename);
    printf("file format: %s\n", f->format);
    size_to_human(f->virt_size, buf, sizeof(buf));
    printf("virtual size: %s (%" PRIu64 " bytes)\n", buf, f->virt_size);
    if (f->actual_size >= 0) {
        size_to_human((uint64_t)f->actual_size, buf, sizeof(buf));
        printf("disk size: %s\n", buf);
    } else {
        printf("disk size: unavailable\n");
    }
    if (f->encrypted) {
        printf("encrypted: yes\n");
    }
    if (f->cluster_size > 0) {
        printf("cluster_size: %" PRIu64 "\n", f->cluster_size);
    }
    if (f->dirty > 0) {
        printf("cleanly shut down: no\n");
    }
    if (f->backing) {
        printf("backing file: %s", f->backing);
        if (strcmp(f->backing, f->full_backing) != 0) {
            printf(" (actual path: %s)", f->full_backing);
        }
        printf("\n");
        if (f->backing_fmt) {
            printf("backing file format: %s\n", f->backing_fmt);
        }
    }
    img_snapshots_print_human(&f->snapshots);
    print_specific_human(f->specific);
}

/* The keys come in the order qemu-img's JSON output has them (its dictionary's order). */
static void print_facts_json(const ImageFacts *f, const char *indent)
{
    const char *sep = "";

#define KEY(name) printf("%s\n%s    \"" name "\": ", sep, indent), sep = ","
    printf("{");
    if (f->backing && f->backing_fmt) {
        KEY("backing-filename-format");
        json_print_string(stdout, f->backing_fmt);
    }
    if (f->snapshots.count > 0) {
        KEY("snapshots");
        img_snapshots_print_json(&f->snapshots, indent);
    }
    KEY("virtual-size");
    printf("%" PRIu64, f->virt_size);
    KEY("filename");
    json_print_string(stdout, f->filename);
    if (f->cluster_size > 0) {
        KEY("cluster-size");
        printf("%" PRIu64, f->cluster_size);
    }
    KEY("format");
    json_print_string(stdout, f->format);
    if (f->actual_size >= 0) {
        KEY("actual-size");
        printf("%" PRId64, f->actual_size);
    }
    if (specific_in_json(f->specific)) {
        KEY("format-specific");
        print_specific_json(f->specific, indent);
    }
    if (f->backing) {
        KEY("full-backing-filename");
        json_print_string(stdout, f->full_backing);
    }
    if (f->encrypted) {
        KEY("encrypted");
        printf("true");
    }
    if (f->backing) {
        KEY("backing-filename");
        json_print_string(stdout, f->backing);
    }
    if (f->dirty >= 0) {
        KEY("dirty-flag");
        printf("%s", f->dirty > 0 ? "true" : "false");
    }
#undef KEY
    printf("\n%s}", indent);
}

int img_info(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256, OPT_BACKING_CHAIN };
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "backing-chain", no_argument, NULL, OPT_BACKING_CHAIN },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = "human", *filename;
    bool json, chain = false;
    int c, ret = 1, n = 0;

    while ((c = getopt_long(argc, argv, ":f:hU", long_options, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'h': print_help(); return 0;
        case 'U': img_force_share = true; break;
        case OPT_OUTPUT: output = optarg; break;
        case OPT_BACKING_CHAIN: chain = true; break;
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

    /*
     * Each image of a chain is opened on its own, without its backing file,
     * so that info works on an image whose backing file is missing, as
     * qemu-img info does. The output is gathered first: an error half way
     * down a chain prints nothing, as with qemu-img.
     */
    ImageFacts facts[64];
    const char *name = filename;
    const char *name_fmt = fmt;
    int depth_max = chain ? (int)(sizeof(facts) / sizeof(facts[0])) : 1;
    char *names[64] = { NULL };

    for (n = 0; n < depth_max; ) {
        ImgHandle h;

        if (img_open(&h, name, name_fmt, LIBQBLOCK_O_NO_BACKING | LIBQBLOCK_O_CACHE_WB) < 0) {
            goto out;
        }
        if (facts_get(&h, &facts[n]) < 0) {
            img_close(&h);
            goto out;
        }
        img_close(&h);
        n++;
        if (!facts[n - 1].backing || n == depth_max) {
            break;
        }
        /* The next image is the backing file, named as the chain resolves it. */
        names[n] = strdup(facts[n - 1].full_backing);
        if (!names[n]) {
            error_report("out of memory");
            goto out;
        }
        name = names[n];
        name_fmt = facts[n - 1].backing_fmt;
    }
    if (chain && n == depth_max && facts[n - 1].backing) {
        error_report("Backing chain of '%s' is longer than %d images (a loop?)", filename, depth_max);
        goto out;
    }

    for (int i = 0; i < n; i++) {
        if (json) {
            if (chain) {
                printf(i == 0 ? "[\n    " : ",\n    ");
                print_facts_json(&facts[i], "    ");
            } else {
                print_facts_json(&facts[i], "");
            }
        } else {
            if (i > 0) {
                printf("\n");
            }
            print_facts_human(&facts[i]);
        }
    }
    if (json) {
        printf(chain ? "\n]\n" : "\n");
    }
    ret = 0;

out:
    for (int i = 0; i < n; i++) {
        facts_free(&facts[i]);
    }
    for (int i = 0; i < 64; i++) {
        free(names[i]);
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

typedef struct Command {
    const char *name;
    int (*fn)(int argc, char **argv);
} Command;

static const Command commands[] = {
    { "amend", img_amend },
    { "bench", img_bench },
    { "check", img_check },
    { "compare", img_compare },
    { "convert", img_convert },
    { "commit", img_commit },
    { "create", img_create },
    { "dd", img_dd },
    { "discard", img_discard },
    { "help", img_help },
    { "info", img_info },
    { "map", img_map },
    { "measure", img_measure },
    { "read", img_read },
    { "rebase", img_rebase },
    { "resize", img_resize },
    { "snapshot", img_snapshot },
    { "write", img_write },
};

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    if (argc < 2) {
        usage_error("Not enough arguments");
        return 1;
    }
    /* Global options come before the command; "+" stops at the first non-option. */
    while ((c = getopt_long(argc, argv, "+:hV", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': print_help(); return 0;
        case 'V': print_version(); return 0;
        default: report_bad_option(argv, c); return 1;
        }
    }
    if (optind >= argc) {
        usage_error("Not enough arguments");
        return 1;
    }

    const char *cmd = argv[optind];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            int ret;

            /* Each command parses its own options, starting after its name. */
            optind = 0;
            ret = commands[i].fn(sub_argc, sub_argv);
            if (fflush(stdout) != 0 && ret == 0) {
                error_report("Error writing the output: %s", strerror(errno));
                ret = 1;
            }
            return ret;
        }
    }
    usage_error("Command not found: %s", cmd);
    return 1;
}
