/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* check_api_snapshot.c: qb_snapshot_* through the public API: every error path and data round-trips. */

#include "qbtest.h"

#include <pthread.h>
#include <time.h>

#define MIB (1024 * 1024)

#define EXPECT_FAIL(b, call, code, needle) \
    do { \
        int r_ = (call); \
        ck_assert_msg(r_ == (code), "%s: %d, expected %d (%s)", #call, r_, (code), qbt_msg(b)); \
        if ((b) && (needle)[0]) { \
            ck_assert_msg(strstr(qbt_msg(b), (needle)) != NULL, "%s: message '%s' lacks '%s'", \
                          #call, qbt_msg(b), (needle)); \
        } \
    } while (0)

/* Opens @path (format probed) into a new state. */
static QBlockState *open_img(QBroker *b, const char *path, int flag)
{
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    int ret;

    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    qbt_allow_raw_guess(b, qbs);
    ret = qb_open(b, qbs, &loc, NULL, flag);
    ck_assert_msg(ret == 0, "qb_open %s: %d %s", path, ret, qbt_msg(b));
    return qbs;
}

/* A new broker, and a new qcow2 image @name of @size bytes opened with @flag. */
static QBlockState *fresh_qcow2(QBroker **b, char *path, const char *name, uint64_t size,
                                int flag)
{
    qbt_path(path, PATH_MAX, name);
    ck_assert_int_eq(qb_broker_new(b), 0);
    qbt_create_fmt(*b, path, QB_FMT_QCOW2, size);
    return open_img(*b, path, flag);
}

static void fill(QBroker *b, QBlockState *qbs, uint64_t off, size_t len, uint8_t byte)
{
    uint8_t *buf = malloc(len);

    ck_assert_ptr_nonnull(buf);
    memset(buf, byte, len);
    ck_assert_msg(qb_write(b, qbs, buf, len, off) == (int64_t)len, "write: %s", qbt_msg(b));
    free(buf);
}

static void expect(QBroker *b, QBlockState *qbs, uint64_t off, size_t len, uint8_t byte,
                   const char *what)
{
    uint8_t *buf = malloc(len);

    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(qb_read(b, qbs, buf, len, off) == (int64_t)len, "read: %s", qbt_msg(b));
    qbt_assert_bytes(buf, byte, len, what);
    free(buf);
}

/* The image's metadata is consistent: no leak, no corruption. */
static void expect_clean(QBroker *b, QBlockState *qbs, const char *what)
{
    QBlockCheckResult res;

    ck_assert_msg(qb_check(b, qbs, 0, &res) == 0, "%s: check: %s", what, qbt_msg(b));
    ck_assert_msg(res.leaks == 0 && res.corruptions == 0 && res.check_errors == 0,
                  "%s: %d leaks, %d corruptions, %d check errors", what, res.leaks,
                  res.corruptions, res.check_errors);
}

static uint64_t virt_size(QBroker *b, QBlockState *qbs)
{
    QBlockStaticInfo *info = NULL;
    uint64_t size;

    ck_assert_int_eq(qb_info_image_static_get(b, qbs, &info), 0);
    size = info->virt_size;
    qb_info_image_static_delete(b, &info);
    return size;
}

/* ------------------------------------------------------------------ */

START_TEST(snapshot_argument_errors)
{
    char path[PATH_MAX], longname[300];
    QBroker *b = NULL;
    QBlockState *qbs, *ro, *closed = NULL;
    QBlockSnapshotInfo *list = (QBlockSnapshotInfo *)1;
    int count = -1;

    qbs = fresh_qcow2(&b, path, "args.qcow2", MIB, LIBQBLOCK_O_RDWR);
    ck_assert_int_eq(qb_state_new(b, &closed), 0);

    /* No broker: nothing to report to, but no crash. */
    EXPECT_FAIL(NULL, qb_snapshot_list(NULL, qbs, &list, &count), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(NULL, qb_snapshot_create(NULL, qbs, "x"), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(NULL, qb_snapshot_apply(NULL, qbs, "x"), QB_ERR_INVALID_PARAM, "");
    EXPECT_FAIL(NULL, qb_snapshot_delete(NULL, qbs, "x"), QB_ERR_INVALID_PARAM, "");
    /* NULL and closed states. */
    EXPECT_FAIL(b, qb_snapshot_list(b, NULL, &list, &count), QB_ERR_INVALID_PARAM, "NULL state");
    ck_assert_ptr_null(list);
    ck_assert_int_eq(count, 0);
    EXPECT_FAIL(b, qb_snapshot_create(b, NULL, "x"), QB_ERR_INVALID_PARAM, "qb_snapshot_create");
    EXPECT_FAIL(b, qb_snapshot_apply(b, NULL, "x"), QB_ERR_INVALID_PARAM, "qb_snapshot_apply");
    EXPECT_FAIL(b, qb_snapshot_delete(b, NULL, "x"), QB_ERR_INVALID_PARAM, "qb_snapshot_delete");
    EXPECT_FAIL(b, qb_snapshot_list(b, closed, &list, &count), QB_ERR_INVALID_PARAM, "not open");
    EXPECT_FAIL(b, qb_snapshot_create(b, closed, "x"), QB_ERR_INVALID_PARAM, "not open");
    EXPECT_FAIL(b, qb_snapshot_apply(b, closed, "x"), QB_ERR_INVALID_PARAM, "not open");
    EXPECT_FAIL(b, qb_snapshot_delete(b, closed, "x"), QB_ERR_INVALID_PARAM, "not open");
    /* NULL results and strings. */
    EXPECT_FAIL(b, qb_snapshot_list(b, qbs, NULL, &count), QB_ERR_INVALID_PARAM, "NULL");
    EXPECT_FAIL(b, qb_snapshot_list(b, qbs, &list, NULL), QB_ERR_INVALID_PARAM, "NULL");
    EXPECT_FAIL(b, qb_snapshot_create(b, qbs, NULL), QB_ERR_INVALID_PARAM, "NULL snapshot name");
    EXPECT_FAIL(b, qb_snapshot_apply(b, qbs, NULL), QB_ERR_INVALID_PARAM, "NULL snapshot id");
    EXPECT_FAIL(b, qb_snapshot_delete(b, qbs, NULL), QB_ERR_INVALID_PARAM, "NULL snapshot id");
    /* Freeing nothing is harmless. */
    qb_snapshot_list_free(b, NULL);
    list = NULL;
    qb_snapshot_list_free(NULL, &list);

    /* A name of 256 bytes is too long; 255 is the longest (QEMU's limit). */
    memset(longname, 'n', sizeof(longname));
    longname[256] = '\0';
    EXPECT_FAIL(b, qb_snapshot_create(b, qbs, longname), QB_ERR_INVALID_PARAM, "255");
    longname[255] = '\0';
    ck_assert_msg(qb_snapshot_create(b, qbs, longname) == 0, "255 bytes: %s", qbt_msg(b));

    /* Unknown snapshots: a bad argument, with ENOENT behind it. */
    EXPECT_FAIL(b, qb_snapshot_apply(b, qbs, "nope"), QB_ERR_INVALID_PARAM, "nope");
    ck_assert_int_eq(qb_error_get_errno(b), ENOENT);
    EXPECT_FAIL(b, qb_snapshot_delete(b, qbs, "2"), QB_ERR_INVALID_PARAM, "'2'");
    ck_assert_int_eq(qb_error_get_errno(b), ENOENT);
    EXPECT_FAIL(b, qb_snapshot_apply(b, qbs, ""), QB_ERR_INVALID_PARAM, "");
    ck_assert_int_eq(qb_error_get_errno(b), ENOENT);
    qbt_close(b, &qbs);

    /* Read-only: listing works, changes are refused and change nothing. */
    ro = open_img(b, path, 0);
    EXPECT_FAIL(b, qb_snapshot_create(b, ro, "x"), QB_ERR_READ_ONLY, "read-only");
    EXPECT_FAIL(b, qb_snapshot_apply(b, ro, "1"), QB_ERR_READ_ONLY, "read-only");
    EXPECT_FAIL(b, qb_snapshot_delete(b, ro, "1"), QB_ERR_READ_ONLY, "read-only");
    ck_assert_int_eq(qb_error_get_errno(b), EROFS);
    ck_assert_msg(qb_snapshot_list(b, ro, &list, &count) == 0, "list: %s", qbt_msg(b));
    ck_assert_int_eq(count, 1);
    ck_assert_str_eq(list[0].id, "1");
    ck_assert_str_eq(list[0].name, longname);
    qb_snapshot_list_free(b, &list);
    ck_assert_ptr_null(list);
    qbt_close(b, &ro);

    qb_state_delete(b, &closed);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(snapshot_formats_without_snapshots_not_supported)
{
    static const struct { enum QBlockFmtType type; const char *name, *file; } fmts[] = {
        { QB_FMT_RAW, "raw", "n.raw" },
        { QB_FMT_QED, "qed", "n.qed" },
        { QB_FMT_VDI, "vdi", "n.vdi" },
    };
    QBroker *b = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        char path[PATH_MAX], needle[64];
        QBlockSnapshotInfo *list = NULL;
        QBlockState *qbs;
        int count = 7;

        qbt_path(path, sizeof(path), fmts[i].file);
        qbt_create_fmt(b, path, fmts[i].type, MIB);
        qbs = open_img(b, path, LIBQBLOCK_O_RDWR);
        snprintf(needle, sizeof(needle), "the %s format", fmts[i].name);
        EXPECT_FAIL(b, qb_snapshot_list(b, qbs, &list, &count), QB_ERR_NOT_SUPPORTED, needle);
        ck_assert_int_eq(qb_error_get_errno(b), ENOTSUP);
        ck_assert_ptr_null(list);
        ck_assert_int_eq(count, 0);
        EXPECT_FAIL(b, qb_snapshot_create(b, qbs, "x"), QB_ERR_NOT_SUPPORTED, needle);
        EXPECT_FAIL(b, qb_snapshot_apply(b, qbs, "x"), QB_ERR_NOT_SUPPORTED, needle);
        EXPECT_FAIL(b, qb_snapshot_delete(b, qbs, "x"), QB_ERR_NOT_SUPPORTED, needle);
        qbt_close(b, &qbs);
    }
    qb_broker_delete(&b);
}
END_TEST

START_TEST(snapshot_create_list_apply_delete_round_trip)
{
    char path[PATH_MAX];
    QBroker *b = NULL;
    QBlockState *qbs;
    QBlockSnapshotInfo *list = NULL;
    int count = 0;
    time_t t0, t1;

    qbs = fresh_qcow2(&b, path, "rt.qcow2", 8 * MIB, LIBQBLOCK_O_RDWR);

    /* A fresh image has no snapshots: an empty list, not an error. */
    ck_assert_msg(qb_snapshot_list(b, qbs, &list, &count) == 0, "list: %s", qbt_msg(b));
    ck_assert_ptr_null(list);
    ck_assert_int_eq(count, 0);

    /* State A: 0x11 over the first MiB, "a" taken; then B: 0x22 over 512K..1.5M. */
    fill(b, qbs, 0, MIB, 0x11);
    t0 = time(NULL);
    ck_assert_msg(qb_snapshot_create(b, qbs, "a") == 0, "create a: %s", qbt_msg(b));
    t1 = time(NULL);
    fill(b, qbs, MIB / 2, MIB, 0x22);
    fill(b, qbs, 5 * MIB, 4096, 0x23);
    ck_assert_msg(qb_snapshot_create(b, qbs, "b") == 0, "create b: %s", qbt_msg(b));
    /* Then C, not kept in any snapshot. */
    fill(b, qbs, 0, 4096, 0x33);
    expect_clean(b, qbs, "after two snapshots");

    ck_assert_msg(qb_snapshot_list(b, qbs, &list, &count) == 0, "list: %s", qbt_msg(b));
    ck_assert_int_eq(count, 2);
    ck_assert_str_eq(list[0].id, "1");
    ck_assert_str_eq(list[0].name, "a");
    ck_assert_str_eq(list[1].id, "2");
    ck_assert_str_eq(list[1].name, "b");
    for (int i = 0; i < 2; i++) {
        ck_assert_uint_eq(list[i].vm_state_size, 0);
        ck_assert_uint_eq(list[i].vm_clock_nsec, 0);
        ck_assert_uint_eq(list[i].virt_size, 8 * MIB);
        ck_assert_uint_eq(list[i].icount, QB_SNAPSHOT_NO_ICOUNT);
        ck_assert_uint_lt(list[i].date_nsec, 1000000000u);
    }
    ck_assert_int_ge(list[0].date_sec, (int64_t)t0);
    ck_assert_int_le(list[0].date_sec, (int64_t)t1);
    ck_assert_int_ge(list[1].date_sec, list[0].date_sec);
    qb_snapshot_list_free(b, &list);

    /* Back to A by name: B and C are gone, A is whole. */
    ck_assert_msg(qb_snapshot_apply(b, qbs, "a") == 0, "apply a: %s", qbt_msg(b));
    expect(b, qbs, 0, MIB, 0x11, "A after apply a");
    expect(b, qbs, MIB, MIB, 0, "past A after apply a");
    expect(b, qbs, 5 * MIB, 4096, 0, "B's far write after apply a");
    expect_clean(b, qbs, "after apply a");
    /* Writes after an apply do not reach the snapshot. */
    fill(b, qbs, 0, 65536, 0x44);

    /* To B by id. */
    ck_assert_msg(qb_snapshot_apply(b, qbs, "2") == 0, "apply 2: %s", qbt_msg(b));
    expect(b, qbs, 0, MIB / 2, 0x11, "B's first half");
    expect(b, qbs, MIB / 2, MIB, 0x22, "B's overwrite");
    expect(b, qbs, 5 * MIB, 4096, 0x23, "B's far write");
    expect_clean(b, qbs, "after apply 2");

    /* Deleting A keeps B and the current content. */
    ck_assert_msg(qb_snapshot_delete(b, qbs, "a") == 0, "delete a: %s", qbt_msg(b));
    expect(b, qbs, 0, MIB / 2, 0x11, "current after delete a");
    expect_clean(b, qbs, "after delete a");
    EXPECT_FAIL(b, qb_snapshot_apply(b, qbs, "a"), QB_ERR_INVALID_PARAM, "a");
    qbt_close(b, &qbs);

    /* It all survives a reopen. */
    qbs = open_img(b, path, LIBQBLOCK_O_RDWR);
    ck_assert_msg(qb_snapshot_list(b, qbs, &list, &count) == 0, "list: %s", qbt_msg(b));
    ck_assert_int_eq(count, 1);
    ck_assert_str_eq(list[0].id, "2");
    ck_assert_str_eq(list[0].name, "b");
    qb_snapshot_list_free(b, &list);
    fill(b, qbs, 0, MIB, 0x55);
    ck_assert_msg(qb_snapshot_apply(b, qbs, "b") == 0, "apply b: %s", qbt_msg(b));
    expect(b, qbs, MIB / 2, MIB, 0x22, "B after reopen");
    ck_assert_msg(qb_snapshot_delete(b, qbs, "2") == 0, "delete 2: %s", qbt_msg(b));
    ck_assert_msg(qb_snapshot_list(b, qbs, &list, &count) == 0, "list: %s", qbt_msg(b));
    ck_assert_int_eq(count, 0);
    expect(b, qbs, MIB / 2, MIB, 0x22, "current after deleting every snapshot");
    expect_clean(b, qbs, "after deleting every snapshot");
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(snapshot_names_ids_and_duplicates)
{
    char path[PATH_MAX];
    QBroker *b = NULL;
    QBlockState *qbs;
    QBlockSnapshotInfo *list = NULL;
    int count = 0;

    qbs = fresh_qcow2(&b, path, "names.qcow2", 2 * MIB, LIBQBLOCK_O_RDWR);

    /* id 1 "x" holds 0x01, id 2 "1" holds 0x02, id 3 "x" again 0x03, id 4 "" 0x04. */
    fill(b, qbs, 0, 65536, 0x01);
    ck_assert_int_eq(qb_snapshot_create(b, qbs, "x"), 0);
    fill(b, qbs, 0, 65536, 0x02);
    ck_assert_int_eq(qb_snapshot_create(b, qbs, "1"), 0);
    fill(b, qbs, 0, 65536, 0x03);
    ck_assert_msg(qb_snapshot_create(b, qbs, "x") == 0, "a repeated name: %s", qbt_msg(b));
    fill(b, qbs, 0, 65536, 0x04);
    ck_assert_msg(qb_snapshot_create(b, qbs, "") == 0, "an empty name: %s", qbt_msg(b));
    ck_assert_int_eq(qb_snapshot_list(b, qbs, &list, &count), 0);
    ck_assert_int_eq(count, 4);
    ck_assert_str_eq(list[2].id, "3");
    ck_assert_str_eq(list[2].name, "x");
    ck_assert_str_eq(list[3].id, "4");
    ck_assert_str_eq(list[3].name, "");
    qb_snapshot_list_free(b, &list);

    /* An id wins over a name: "1" is id 1, not the snapshot named "1". */
    ck_assert_int_eq(qb_snapshot_apply(b, qbs, "1"), 0);
    expect(b, qbs, 0, 65536, 0x01, "apply 1 takes id 1");
    /* A repeated name finds the first snapshot that has it. */
    ck_assert_int_eq(qb_snapshot_apply(b, qbs, "4"), 0);
    ck_assert_int_eq(qb_snapshot_apply(b, qbs, "x"), 0);
    expect(b, qbs, 0, 65536, 0x01, "apply x takes id 1");
    ck_assert_int_eq(qb_snapshot_apply(b, qbs, "3"), 0);
    expect(b, qbs, 0, 65536, 0x03, "apply 3");
    /* The empty name is a name like any other. */
    ck_assert_int_eq(qb_snapshot_apply(b, qbs, ""), 0);
    expect(b, qbs, 0, 65536, 0x04, "apply the empty name");

    /* Delete "1" removes id 1; the next "1" then finds the snapshot named "1". */
    ck_assert_int_eq(qb_snapshot_delete(b, qbs, "1"), 0);
    ck_assert_int_eq(qb_snapshot_apply(b, qbs, "1"), 0);
    expect(b, qbs, 0, 65536, 0x02, "apply 1 takes the snapshot named 1");
    /* New ids follow the largest one in use. */
    ck_assert_int_eq(qb_snapshot_delete(b, qbs, "4"), 0);
    ck_assert_int_eq(qb_snapshot_create(b, qbs, "new"), 0);
    ck_assert_int_eq(qb_snapshot_list(b, qbs, &list, &count), 0);
    ck_assert_int_eq(count, 3);
    ck_assert_str_eq(list[0].id, "2");
    ck_assert_str_eq(list[1].id, "3");
    ck_assert_str_eq(list[2].id, "4");
    ck_assert_str_eq(list[2].name, "new");
    qb_snapshot_list_free(b, &list);
    expect_clean(b, qbs, "after names");
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(snapshot_apply_restores_virtual_size)
{
    char path[PATH_MAX];
    QBroker *b = NULL;
    QBlockState *qbs;

    qbs = fresh_qcow2(&b, path, "size.qcow2", MIB, LIBQBLOCK_O_RDWR);
    fill(b, qbs, 0, MIB, 0x61);
    ck_assert_int_eq(qb_snapshot_create(b, qbs, "small"), 0);
    ck_assert_msg(qb_truncate(b, qbs, 3 * MIB) == 0, "grow: %s", qbt_msg(b));
    fill(b, qbs, 2 * MIB, MIB, 0x62);
    ck_assert_int_eq(qb_snapshot_create(b, qbs, "big"), 0);

    /* The image takes each snapshot's size, as qemu-img snapshot -a makes it. */
    ck_assert_msg(qb_snapshot_apply(b, qbs, "small") == 0, "apply small: %s", qbt_msg(b));
    ck_assert_uint_eq(virt_size(b, qbs), MIB);
    expect(b, qbs, 0, MIB, 0x61, "small");
    EXPECT_FAIL(b, (int)qb_read(b, qbs, (uint8_t[1]){ 0 }, 1, MIB), QB_ERR_BLOCK_OUT_OF_RANGE,
                "outside");
    expect_clean(b, qbs, "after apply small");
    ck_assert_msg(qb_snapshot_apply(b, qbs, "big") == 0, "apply big: %s", qbt_msg(b));
    ck_assert_uint_eq(virt_size(b, qbs), 3 * MIB);
    expect(b, qbs, 2 * MIB, MIB, 0x62, "big");
    expect_clean(b, qbs, "after apply big");
    qbt_close(b, &qbs);

    qbs = open_img(b, path, 0);
    ck_assert_uint_eq(virt_size(b, qbs), 3 * MIB);
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(snapshot_mode_lists_image_and_refuses_changes)
{
    char path[PATH_MAX];
    QBroker *b = NULL;
    QBlockState *qbs;
    QBlockSnapshotInfo *list = NULL;
    int count = 0;

    qbs = fresh_qcow2(&b, path, "mode.qcow2", MIB, LIBQBLOCK_O_RDWR);
    fill(b, qbs, 0, 65536, 0x71);
    ck_assert_int_eq(qb_snapshot_create(b, qbs, "kept"), 0);
    fill(b, qbs, 0, 65536, 0x72);
    qbt_close(b, &qbs);

    /* The overlay is the top layer: the list is the image's; changes are refused. */
    qbs = open_img(b, path, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_SNAPSHOT);
    ck_assert_msg(qb_snapshot_list(b, qbs, &list, &count) == 0, "list: %s", qbt_msg(b));
    ck_assert_int_eq(count, 1);
    ck_assert_str_eq(list[0].name, "kept");
    qb_snapshot_list_free(b, &list);
    EXPECT_FAIL(b, qb_snapshot_create(b, qbs, "x"), QB_ERR_NOT_SUPPORTED, "snapshot mode");
    EXPECT_FAIL(b, qb_snapshot_apply(b, qbs, "kept"), QB_ERR_NOT_SUPPORTED, "snapshot mode");
    EXPECT_FAIL(b, qb_snapshot_delete(b, qbs, "kept"), QB_ERR_NOT_SUPPORTED, "snapshot mode");
    qbt_close(b, &qbs);
    /* Read-only snapshot mode says the same. */
    qbs = open_img(b, path, LIBQBLOCK_O_SNAPSHOT);
    EXPECT_FAIL(b, qb_snapshot_create(b, qbs, "x"), QB_ERR_NOT_SUPPORTED, "snapshot mode");
    qbt_close(b, &qbs);

    /* Nothing changed underneath. */
    qbs = open_img(b, path, LIBQBLOCK_O_RDWR);
    expect(b, qbs, 0, 65536, 0x72, "current");
    ck_assert_int_eq(qb_snapshot_list(b, qbs, &list, &count), 0);
    ck_assert_int_eq(count, 1);
    qb_snapshot_list_free(b, &list);
    ck_assert_int_eq(qb_snapshot_apply(b, qbs, "kept"), 0);
    expect(b, qbs, 0, 65536, 0x71, "kept");
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

/* One thread writes its own region over and over while the other takes snapshots. */
typedef struct Writer {
    QBlockState *qbs;
    int rounds;
    int failed;
} Writer;

static void *writer_main(void *opaque)
{
    Writer *w = opaque;
    QBroker *b = NULL;
    uint8_t buf[4096 + 512];

    if (qb_broker_new(&b) < 0) {
        w->failed = 1;
        return NULL;
    }
    for (int i = 0; i < w->rounds; i++) {
        memset(buf, (uint8_t)(i + 1), sizeof(buf));
        /* Unaligned, so that read-modify-write edges are part of it. */
        if (qb_write(b, w->qbs, buf, sizeof(buf), MIB + 100) != (int64_t)sizeof(buf)) {
            w->failed = 1;
            break;
        }
    }
    qb_broker_delete(&b);
    return NULL;
}

START_TEST(snapshot_create_while_another_thread_writes)
{
    char path[PATH_MAX];
    QBroker *b = NULL;
    QBlockState *qbs;
    QBlockSnapshotInfo *list = NULL;
    pthread_t t;
    Writer w;
    int count = 0, n = qbt_quick() ? 3 : 10;

    qbs = fresh_qcow2(&b, path, "thr.qcow2", 4 * MIB, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    w.qbs = qbs;
    w.rounds = qbt_quick() ? 50 : 200;
    w.failed = 0;
    ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%d", i);
        ck_assert_msg(qb_snapshot_create(b, qbs, name) == 0, "create %s: %s", name, qbt_msg(b));
    }
    pthread_join(t, NULL);
    ck_assert_int_eq(w.failed, 0);
    /* The last write is whole, and each snapshot holds one whole write or none. */
    expect(b, qbs, MIB + 100, 4096 + 512, (uint8_t)w.rounds, "last write");
    ck_assert_int_eq(qb_snapshot_list(b, qbs, &list, &count), 0);
    ck_assert_int_eq(count, n);
    for (int i = 0; i < count; i++) {
        uint8_t buf[4096 + 512];
        ck_assert_int_eq(qb_snapshot_apply(b, qbs, list[i].id), 0);
        ck_assert_int_eq(qb_read(b, qbs, buf, sizeof(buf), MIB + 100), (int64_t)sizeof(buf));
        qbt_assert_bytes(buf, buf[0], sizeof(buf), "a snapshot holds one whole write");
    }
    qb_snapshot_list_free(b, &list);
    expect_clean(b, qbs, "after concurrent snapshots");
    qbt_close(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

static Suite *snapshot_suite(void)
{
    Suite *s = suite_create("api_snapshot");
    TCase *tc = tcase_create("snapshot");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, snapshot_argument_errors);
    tcase_add_test(tc, snapshot_formats_without_snapshots_not_supported);
    tcase_add_test(tc, snapshot_create_list_apply_delete_round_trip);
    tcase_add_test(tc, snapshot_names_ids_and_duplicates);
    tcase_add_test(tc, snapshot_apply_restores_virtual_size);
    tcase_add_test(tc, snapshot_mode_lists_image_and_refuses_changes);
    tcase_add_test(tc, snapshot_create_while_another_thread_writes);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(snapshot_suite(), argv[0]);
}
