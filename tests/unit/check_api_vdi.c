/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* check_api_vdi.c: VDI UUIDs chosen by the caller, through the struct and through option strings. */

#include "qbtest.h"

static const uint8_t image_uuid[16] = {
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef
};
/* The same UUID as VirtualBox stores it: the first three fields little-endian. */
static const uint8_t image_uuid_disk[16] = {
    0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef
};

static void create_vdi(QBroker *b, const char *path, QBlockFmtInfo *fmt)
{
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = qbt_loc(path);
    int ret;

    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ret = qb_create(b, qbs, &loc, fmt, 0);
    ck_assert_msg(ret == 0, "qb_create vdi %s: %d %s", path, ret, qbt_msg(b));
    qb_state_delete(b, &qbs);
}

START_TEST(vdi_uuid_struct)
{
    QBroker *b = NULL;
    QBlockFmtInfo fmt;
    char p1[PATH_MAX], p2[PATH_MAX];
    uint8_t got[32], other[32];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    memset(&fmt, 0, sizeof(fmt));
    fmt.fmt_type = QB_FMT_VDI;
    fmt.fmt_op.o_vdi.virt_size = 4 << 20;
    memcpy(fmt.fmt_op.o_vdi.image_uuid, image_uuid, 16);
    qbt_path(p1, sizeof(p1), "s1.vdi");
    create_vdi(b, p1, &fmt);
    qbt_pread_file(p1, got, 32, 0x188);
    qbt_assert_same(got, image_uuid_disk, 16, "image UUID in the header");
    /* The modification UUID was left unset: a random, non-null one. */
    memset(other, 0, 16);
    ck_assert_msg(memcmp(got + 16, other, 16) != 0, "the modification UUID is null");

    /* A second image without UUIDs gets different random ones. */
    memset(fmt.fmt_op.o_vdi.image_uuid, 0, 16);
    qbt_path(p2, sizeof(p2), "s2.vdi");
    create_vdi(b, p2, &fmt);
    qbt_pread_file(p2, other, 32, 0x188);
    ck_assert_msg(memcmp(got, other, 16) != 0 && memcmp(got + 16, other + 16, 16) != 0,
                  "two images share a random UUID");
    qb_broker_delete(&b);
}
END_TEST

START_TEST(vdi_uuid_options)
{
    QBroker *b = NULL;
    QBlockFmtInfo *fmt = NULL;
    char p[PATH_MAX];
    uint8_t got[16];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_fmt_info_new(b, &fmt), 0);
    fmt->fmt_type = QB_FMT_VDI;
    ck_assert_int_eq(qb_fmt_info_set_options(b, fmt, "size=4M,modification_uuid="
                                             "01234567-89AB-cdef-0123-456789abcdef"), 0);
    qbt_assert_same(fmt->fmt_op.o_vdi.modification_uuid, image_uuid, 16, "parsed UUID");
    qbt_path(p, sizeof(p), "o.vdi");
    create_vdi(b, p, fmt);
    qbt_pread_file(p, got, 16, 0x198);
    qbt_assert_same(got, image_uuid_disk, 16, "modification UUID in the header");

    /* Malformed UUIDs are refused and leave the struct as it was. */
    static const char *const bad[] = {
        "image_uuid=0123456789abcdef0123456789abcdef",
        "image_uuid=01234567-89ab-cdef-0123-456789abcdeg",
        "image_uuid=01234567-89ab-cdef-0123-456789abcdef0",
        "image_uuid=01234567-89ab-cdef-0123-456789abcde",
        "image_uuid=01234567_89ab-cdef-0123-456789abcdef",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(qb_fmt_info_set_options(b, fmt, bad[i]) == QB_ERR_INVALID_PARAM,
                      "accepted '%s'", bad[i]);
        ck_assert_msg(strstr(qbt_msg(b), "UUID") != NULL, "message: %s", qbt_msg(b));
    }
    memset(got, 0, 16);
    qbt_assert_same(fmt->fmt_op.o_vdi.image_uuid, got, 16, "image UUID after refusals");
    qb_fmt_info_delete(b, &fmt);
    qb_broker_delete(&b);
}
END_TEST

static Suite *vdi_suite(void)
{
    Suite *s = suite_create("api_vdi");
    TCase *tc = tcase_create("uuid");

    tcase_add_test(tc, vdi_uuid_struct);
    tcase_add_test(tc, vdi_uuid_options);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(vdi_suite(), argv[0]);
}
