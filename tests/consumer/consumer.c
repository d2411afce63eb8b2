/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * consumer.c: an out-of-tree program built only with `pkg-config --cflags
 * --libs libqblock` against an installed libqblock; it creates a raw image,
 * writes, reads back, checks, queries static info and closes.
 *
 * Usage: consumer IMAGE. Prints a fixed transcript on success (compared with
 * tests/interop/060-consumer.out) and exits non-zero on the first failure.
 */
#include <libqblock.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_SIZE (1024 * 1024)
#define MESSAGE "libqblock consumer"
#define MESSAGE_OFFSET 4099

static int fail(QBroker *broker, const char *what, long long ret)
{
    char msg[512];

    qb_error_get_human_str(broker, msg, sizeof(msg));
    fprintf(stderr, "consumer: %s failed: %lld (%s): %s\n", what, ret, qb_strerror((int)ret), msg);
    return 1;
}

int main(int argc, char **argv)
{
    QBroker *broker = NULL;
    QBlockState *qbs = NULL;
    QBlockProtInfo *loc = NULL;
    QBlockFmtInfo *fmt = NULL;
    QBlockStaticInfo *info = NULL;
    unsigned char buf[8192], back[8192];
    long long ret;
    size_t i;

    if (argc != 2) {
        fprintf(stderr, "usage: consumer IMAGE\n");
        return 2;
    }
    if (qb_broker_new(&broker) != 0) {
        fprintf(stderr, "consumer: qb_broker_new failed\n");
        return 1;
    }
    if ((ret = qb_state_new(broker, &qbs)) != 0) {
        return fail(broker, "qb_state_new", ret);
    }
    if ((ret = qb_prot_info_new(broker, &loc)) != 0) {
        return fail(broker, "qb_prot_info_new", ret);
    }
    if ((ret = qb_fmt_info_new(broker, &fmt)) != 0) {
        return fail(broker, "qb_fmt_info_new", ret);
    }
    loc->prot_type = QB_PROT_FILE;
    loc->prot_op.o_file.filename = argv[1];
    fmt->fmt_type = qb_str2fmttype("raw");
    if ((ret = qb_fmt_info_set_options(broker, fmt, "size=1M")) != 0) {
        return fail(broker, "qb_fmt_info_set_options", ret);
    }
    if ((ret = qb_create(broker, qbs, loc, fmt, 0)) != 0) {
        return fail(broker, "qb_create", ret);
    }
    printf("created a %s image of %llu bytes\n", qb_fmttype2str(fmt->fmt_type),
           (unsigned long long)fmt->fmt_op.o_raw.virt_size);

    /* Named, not probed: by default probing never guesses raw (the safe open policy). */
    if ((ret = qb_open(broker, qbs, loc, fmt, LIBQBLOCK_O_RDWR)) != 0) {
        return fail(broker, "qb_open", ret);
    }
    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (unsigned char)(i % 251);
    }
    memcpy(buf + 3, MESSAGE, strlen(MESSAGE));
    if ((ret = qb_write(broker, qbs, buf, sizeof(buf), MESSAGE_OFFSET - 3)) != (long long)sizeof(buf)) {
        return fail(broker, "qb_write", ret);
    }
    printf("wrote %u bytes at offset %u\n", (unsigned)sizeof(buf), MESSAGE_OFFSET - 3);
    if ((ret = qb_flush(broker, qbs)) != 0) {
        return fail(broker, "qb_flush", ret);
    }
    memset(back, 0, sizeof(back));
    if ((ret = qb_read(broker, qbs, back, sizeof(back), MESSAGE_OFFSET - 3)) != (long long)sizeof(back)) {
        return fail(broker, "qb_read", ret);
    }
    if (memcmp(buf, back, sizeof(buf)) != 0) {
        fprintf(stderr, "consumer: the data read back differs from the data written\n");
        return 1;
    }
    printf("read back %u bytes: identical\n", (unsigned)sizeof(back));
    /* Past the end is refused. */
    ret = qb_read(broker, qbs, back, 2, IMAGE_SIZE - 1);
    if (ret != QB_ERR_BLOCK_OUT_OF_RANGE) {
        return fail(broker, "qb_read past the end (expected QB_ERR_BLOCK_OUT_OF_RANGE)", ret);
    }
    printf("read past the end: %lld, QB_ERR_BLOCK_OUT_OF_RANGE\n", ret);

    if ((ret = qb_info_image_static_get(broker, qbs, &info)) != 0) {
        return fail(broker, "qb_info_image_static_get", ret);
    }
    printf("static info: format %s, virtual size %llu, sector size %d, backing %s\n",
           qb_fmttype2str(info->fmt_type), (unsigned long long)info->virt_size, info->sector_size,
           info->backing_loc.prot_type == QB_PROT_NONE ? "none" : "some");
    if (info->virt_size != IMAGE_SIZE || strcmp(info->loc.prot_op.o_file.filename, argv[1]) != 0) {
        fprintf(stderr, "consumer: static info does not describe the image\n");
        return 1;
    }
    qb_info_image_static_delete(broker, &info);

    if ((ret = qb_close(broker, qbs)) != 0) {
        return fail(broker, "qb_close", ret);
    }
    qb_state_delete(broker, &qbs);
    qb_fmt_info_delete(broker, &fmt);
    qb_prot_info_delete(broker, &loc);
    qb_broker_delete(&broker);
    printf("closed\n");
    return 0;
}
