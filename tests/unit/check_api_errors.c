/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_api_errors.c: every public function given bad arguments, called in
 * the wrong state or out of range returns the documented QB_ERR_* code,
 * records a message naming the function (and the file where there is one),
 * never crashes, and returns the documented value on success.
 */
#include "qbtest.h"

#include <signal.h>
#include <sys/wait.h>

#define IMG_SIZE (1024 * 1024)

/*
 * Asserts that @expr returns @code, and when @b is a broker, that the broker's
 * message is not empty and names @fn, as libqblock.h promises.
 */
#define EXPECT_ERR(b, expr, code, fn)                                                       \
    do {                                                                                    \
        int64_t r_ = (int64_t)(expr);                                                      \
        ck_assert_msg(r_ == (int64_t)(code), "%s: expected %d, got %" PRId64 " (%s)",       \
                      #expr, (int)(code), r_, qbt_msg(b));                                  \
        if ((b) != NULL) {                                                                  \
            const char *m_ = qbt_msg(b);                                                    \
            ck_assert_msg(m_[0] != '\0', "%s: failed without a message", #expr);           \
            ck_assert_msg(strstr(m_, (fn)) != NULL, "%s: message '%s' does not name %s",    \
                          #expr, m_, (fn));                                                 \
        }                                                                                   \
    } while (0)

#define EXPECT_OK(b, expr, value)                                                           \
    do {                                                                                    \
        int64_t r_ = (int64_t)(expr);                                                      \
        ck_assert_msg(r_ == (int64_t)(value), "%s: expected %" PRId64 ", got %" PRId64     \
                      " (%s)", #expr, (int64_t)(value), r_, qbt_msg(b));                    \
    } while (0)

/* A broker, a state and the path of a 1 MiB raw image made without libqblock. */
typedef struct Env {
    QBroker *b;
    QBlockState *qbs;
    QBlockProtInfo loc;
    QBlockFmtInfo fmt;
    char path[PATH_MAX];
} Env;

static void env_init(Env *e, const char *name)
{
    memset(e, 0, sizeof(*e));
    ck_assert_int_eq(qb_broker_new(&e->b), 0);
    ck_assert_ptr_nonnull(e->b);
    ck_assert_int_eq(qb_state_new(e->b, &e->qbs), 0);
    qbt_allow_raw_guess(e->b, e->qbs);
    ck_assert_ptr_nonnull(e->qbs);
    qbt_path(e->path, sizeof(e->path), name);
    qbt_make_sparse_file(e->path, IMG_SIZE);
    e->loc = qbt_loc(e->path);
    e->fmt.fmt_type = QB_FMT_RAW;
}

static void env_open(Env *e, int flag)
{
    int ret = qb_open(e->b, e->qbs, &e->loc, &e->fmt, flag);

    ck_assert_msg(ret == 0, "qb_open %s: %d %s", e->path, ret, qbt_msg(e->b));
}

static void env_fini(Env *e)
{
    qb_state_delete(e->b, &e->qbs);
    ck_assert_ptr_null(e->qbs);
    qb_broker_delete(&e->b);
    ck_assert_ptr_null(e->b);
}

/* ------------------------------------------------------------------ */
/* brokers                                                             */

START_TEST(broker_new_null_invalid_param)
{
    ck_assert_int_eq(qb_broker_new(NULL), QB_ERR_INVALID_PARAM);
}
END_TEST

START_TEST(broker_new_delete_sets_null)
{
    QBroker *b = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_ptr_nonnull(b);
    qb_broker_delete(&b);
    ck_assert_ptr_null(b);
    /* Deleting again through the now-NULL pointer, or a NULL pointer, is a no-op. */
    qb_broker_delete(&b);
    qb_broker_delete(NULL);
}
END_TEST

START_TEST(broker_new_fresh_has_no_error)
{
    QBroker *b = NULL;
    char buf[8];

    ck_assert_int_eq(qb_broker_new(&b), 0);
    memset(buf, 'X', sizeof(buf));
    qb_error_get_human_str(b, buf, sizeof(buf));
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(qb_error_get_errno(b), 0);
    qb_broker_delete(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_strerror                                                         */

static const int all_codes[] = {
    QB_ERR_MEM_ERR, QB_ERR_INTERNAL_ERR, QB_ERR_INVALID_PARAM, QB_ERR_BLOCK_OUT_OF_RANGE,
    QB_ERR_NOT_SUPPORTED, QB_ERR_INVALID_IMAGE, QB_ERR_READ_ONLY, QB_ERR_LOCKED,
    QB_ERR_CANCELED, QB_ERR_BUSY,
};
#define N_CODES (sizeof(all_codes) / sizeof(all_codes[0]))

START_TEST(strerror_known_codes_distinct_text)
{
    const char *unknown = qb_strerror(-9999);

    ck_assert_ptr_nonnull(unknown);
    ck_assert_str_eq(unknown, "unknown error");
    ck_assert_ptr_nonnull(qb_strerror(0));
    ck_assert_str_ne(qb_strerror(0), "");
    for (size_t i = 0; i < N_CODES; i++) {
        const char *t = qb_strerror(all_codes[i]);

        ck_assert_ptr_nonnull(t);
        ck_assert_msg(t[0] != '\0', "empty text for %d", all_codes[i]);
        ck_assert_msg(strcmp(t, unknown) != 0, "code %d reads 'unknown error'", all_codes[i]);
        ck_assert_msg(strcmp(t, qb_strerror(0)) != 0, "code %d reads like success", all_codes[i]);
        for (size_t j = 0; j < i; j++) {
            ck_assert_msg(strcmp(t, qb_strerror(all_codes[j])) != 0, "codes %d and %d share '%s'",
                          all_codes[i], all_codes[j], t);
        }
        /* Static text: the same pointer or at least the same text every time. */
        ck_assert_str_eq(t, qb_strerror(all_codes[i]));
    }
}
END_TEST

START_TEST(strerror_unknown_codes_unknown_error)
{
    static const int bad[] = { 1, 5, -3, -99, -150, -200, 4096, INT_MIN, INT_MAX };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *t = qb_strerror(bad[i]);

        ck_assert_msg(t != NULL, "qb_strerror(%d) is NULL", bad[i]);
        ck_assert_msg(strcmp(t, "unknown error") == 0, "qb_strerror(%d) = '%s'", bad[i], t);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_error_get_human_str / qb_error_get_errno                          */

/* Fails an open of a missing file so that the broker holds a long message. */
static void fail_open_missing(Env *e, char *missing, size_t size)
{
    QBlockProtInfo loc;

    qbt_path(missing, size, "no-such-image.raw");
    loc = qbt_loc(missing);
    ck_assert_int_lt(qb_open(e->b, e->qbs, &loc, &e->fmt, 0), 0);
}

START_TEST(human_str_truncates_and_terminates)
{
    Env e;
    char missing[PATH_MAX];
    char full[1024];
    char buf[16];
    size_t len;

    env_init(&e, "human.raw");
    fail_open_missing(&e, missing, sizeof(missing));
    qb_error_get_human_str(e.b, full, sizeof(full));
    len = strlen(full);
    ck_assert_uint_gt(len, 5);
    ck_assert_uint_lt(len, sizeof(full) - 1);

    memset(buf, 'X', sizeof(buf));
    qb_error_get_human_str(e.b, buf, 0);
    qbt_assert_bytes((const uint8_t *)buf, 'X', sizeof(buf), "buffer given buf_size 0");

    memset(buf, 'X', sizeof(buf));
    qb_error_get_human_str(e.b, buf, 1);
    ck_assert_int_eq(buf[0], '\0');
    ck_assert_int_eq(buf[1], 'X');

    memset(buf, 'X', sizeof(buf));
    qb_error_get_human_str(e.b, buf, 5);
    ck_assert_int_eq(memcmp(buf, full, 4), 0);
    ck_assert_int_eq(buf[4], '\0');
    ck_assert_int_eq(buf[5], 'X');

    /* Exactly enough room: the whole message. */
    {
        char *exact = malloc(len + 2);

        ck_assert_ptr_nonnull(exact);
        memset(exact, 'X', len + 2);
        qb_error_get_human_str(e.b, exact, len + 1);
        ck_assert_str_eq(exact, full);
        ck_assert_int_eq(exact[len + 1], 'X');
        /* One byte short: all but the last character. */
        memset(exact, 'X', len + 2);
        qb_error_get_human_str(e.b, exact, len);
        ck_assert_uint_eq(strlen(exact), len - 1);
        ck_assert_int_eq(memcmp(exact, full, len - 1), 0);
        free(exact);
    }

    /* NULL broker or buffer: nothing happens, nothing crashes. */
    memset(buf, 'X', sizeof(buf));
    qb_error_get_human_str(NULL, buf, sizeof(buf));
    qb_error_get_human_str(e.b, NULL, 10);
    env_fini(&e);
}
END_TEST

START_TEST(errno_missing_file_enoent_message_names_file)
{
    Env e;
    char missing[PATH_MAX];
    QBlockProtInfo loc;
    const char *msg;

    env_init(&e, "enoent.raw");
    qbt_path(missing, sizeof(missing), "no-such-image.raw");
    loc = qbt_loc(missing);
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INTERNAL_ERR, "qb_open");
    ck_assert_int_eq(qb_error_get_errno(e.b), ENOENT);
    msg = qbt_msg(e.b);
    ck_assert_msg(strstr(msg, missing) != NULL, "message '%s' does not name '%s'", msg, missing);

    /* Probing (fmt NULL) fails the same way. */
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &loc, NULL, 0), QB_ERR_INTERNAL_ERR, "qb_open");
    ck_assert_int_eq(qb_error_get_errno(e.b), ENOENT);
    ck_assert_ptr_nonnull(strstr(qbt_msg(e.b), missing));
    env_fini(&e);
}
END_TEST

START_TEST(errno_success_keeps_previous_error)
{
    Env e;
    char missing[PATH_MAX];
    char before[1024];
    QBlockState *other = NULL;

    env_init(&e, "keep.raw");
    fail_open_missing(&e, missing, sizeof(missing));
    qb_error_get_human_str(e.b, before, sizeof(before));
    ck_assert_int_eq(qb_error_get_errno(e.b), ENOENT);

    /* Successful calls leave the last error as it was. */
    ck_assert_int_eq(qb_state_new(e.b, &other), 0);
    env_open(&e, 0);
    ck_assert_str_eq(qbt_msg(e.b), before);
    ck_assert_int_eq(qb_error_get_errno(e.b), ENOENT);

    /*
     * A later failure replaces both (a bad argument has no system errno; EINVAL
     * is the natural one if the library records any).
     */
    EXPECT_ERR(e.b, qb_state_new(e.b, NULL), QB_ERR_INVALID_PARAM, "qb_state_new");
    ck_assert_msg(qb_error_get_errno(e.b) == 0 || qb_error_get_errno(e.b) == EINVAL,
                  "errno %d after an invalid-parameter failure", qb_error_get_errno(e.b));
    ck_assert_str_ne(qbt_msg(e.b), before);

    qb_state_delete(e.b, &other);
    env_fini(&e);
}
END_TEST

START_TEST(errno_null_broker_not_positive)
{
    int r = qb_error_get_errno(NULL);

    ck_assert_msg(r == 0 || r == QB_ERR_INVALID_PARAM, "qb_error_get_errno(NULL) = %d", r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* states and info structs                                             */

START_TEST(state_new_null_args_invalid_param)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    EXPECT_ERR(NULL, qb_state_new(NULL, &qbs), QB_ERR_INVALID_PARAM, "");
    ck_assert_ptr_null(qbs);
    EXPECT_ERR(b, qb_state_new(b, NULL), QB_ERR_INVALID_PARAM, "qb_state_new");
    /* Deleting nothing is a no-op. */
    qb_state_delete(b, NULL);
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(state_delete_open_state_closes_and_flushes)
{
    Env e;
    QBlockState *again = NULL;
    uint8_t data[4096], back[4096];

    env_init(&e, "delete-open.raw");
    env_open(&e, LIBQBLOCK_O_RDWR);
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 7 + 3);
    }
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, data, sizeof(data), 8192 + 100), sizeof(data));
    /* No qb_close: qb_state_delete must close (and flush) the image. */
    qb_state_delete(e.b, &e.qbs);
    ck_assert_ptr_null(e.qbs);

    qbt_pread_file(e.path, back, sizeof(back), 8192 + 100);
    ck_assert_int_eq(memcmp(back, data, sizeof(data)), 0);

    /* The image is released: it opens read-write again (no lock or fd left behind). */
    again = qbt_open(e.b, e.path, 0, LIBQBLOCK_O_RDWR);
    memset(back, 0, sizeof(back));
    EXPECT_OK(e.b, qb_read(e.b, again, back, sizeof(back), 8192 + 100), sizeof(back));
    ck_assert_int_eq(memcmp(back, data, sizeof(data)), 0);
    qbt_close(e.b, &again);
    env_fini(&e);
}
END_TEST

START_TEST(prot_info_new_zeroed_and_null_invalid_param)
{
    QBroker *b = NULL;
    QBlockProtInfo *p = NULL;
    QBlockProtInfo zero;

    memset(&zero, 0, sizeof(zero));
    ck_assert_int_eq(qb_broker_new(&b), 0);
    EXPECT_ERR(b, qb_prot_info_new(b, NULL), QB_ERR_INVALID_PARAM, "qb_prot_info_new");
    EXPECT_ERR(NULL, qb_prot_info_new(NULL, &p), QB_ERR_INVALID_PARAM, "");
    ck_assert_ptr_null(p);
    EXPECT_OK(b, qb_prot_info_new(b, &p), 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(memcmp(p, &zero, sizeof(zero)), 0);
    qb_prot_info_delete(b, &p);
    ck_assert_ptr_null(p);
    qb_prot_info_delete(b, &p);
    qb_prot_info_delete(b, NULL);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(fmt_info_new_zeroed_and_null_invalid_param)
{
    QBroker *b = NULL;
    QBlockFmtInfo *f = NULL;
    QBlockFmtInfo zero;

    memset(&zero, 0, sizeof(zero));
    ck_assert_int_eq(qb_broker_new(&b), 0);
    EXPECT_ERR(b, qb_fmt_info_new(b, NULL), QB_ERR_INVALID_PARAM, "qb_fmt_info_new");
    EXPECT_ERR(NULL, qb_fmt_info_new(NULL, &f), QB_ERR_INVALID_PARAM, "");
    ck_assert_ptr_null(f);
    EXPECT_OK(b, qb_fmt_info_new(b, &f), 0);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(memcmp(f, &zero, sizeof(zero)), 0);
    qb_fmt_info_delete(b, &f);
    ck_assert_ptr_null(f);
    qb_fmt_info_delete(b, &f);
    qb_fmt_info_delete(b, NULL);
    qb_broker_delete(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_fmt_info_set_options                                             */

/* A raw QBlockFmtInfo with recognisable non-default values. */
static QBlockFmtInfo *raw_fmt(QBroker *b)
{
    QBlockFmtInfo *f = NULL;

    ck_assert_int_eq(qb_fmt_info_new(b, &f), 0);
    f->fmt_type = QB_FMT_RAW;
    f->fmt_op.o_raw.virt_size = 12345 * 512;
    f->fmt_op.o_raw.pre_mode = QBO_FMT_RAW_PREALLOC_OFF;
    return f;
}

START_TEST(set_options_null_args_invalid_param)
{
    QBroker *b = NULL;
    QBlockFmtInfo *f;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    f = raw_fmt(b);
    EXPECT_ERR(NULL, qb_fmt_info_set_options(NULL, f, "size=1M"), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(b, qb_fmt_info_set_options(b, NULL, "size=1M"), QB_ERR_INVALID_PARAM,
               "qb_fmt_info_set_options");
    EXPECT_ERR(b, qb_fmt_info_set_options(b, f, NULL), QB_ERR_INVALID_PARAM,
               "qb_fmt_info_set_options");
    ck_assert_uint_eq(f->fmt_op.o_raw.virt_size, 12345 * 512);
    qb_fmt_info_delete(b, &f);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(set_options_bad_fmt_type_invalid_param)
{
    static const int bad_types[] = { QB_FMT_NONE, QB_FMT_MAX, QB_FMT_MAX + 7, -1 };
    QBroker *b = NULL;
    QBlockFmtInfo *f = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_fmt_info_new(b, &f), 0);
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        f->fmt_type = (enum QBlockFmtType)bad_types[i];
        EXPECT_ERR(b, qb_fmt_info_set_options(b, f, "size=1M"), QB_ERR_INVALID_PARAM,
                   "qb_fmt_info_set_options");
        ck_assert_uint_eq(f->fmt_op.o_raw.virt_size, 0);
    }
    qb_fmt_info_delete(b, &f);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(set_options_raw_sizes_parsed)
{
    static const struct {
        const char *opts;
        uint64_t size;
    } cases[] = {
        { "size=0", 0 },
        { "size=1024", 1024 },
        { "size=4096b", 4096 },
        { "size=4096B", 4096 },
        { "size=1k", 1024 },
        { "size=1K", 1024 },
        { "size=3M", 3ULL << 20 },
        { "size=2G", 2ULL << 30 },
        { "size=5T", 5ULL << 40 },
        { "size=1P", 1ULL << 50 },
        { "size=1E", 1ULL << 60 },
        { "size=7E", 7ULL << 60 },
    };
    QBroker *b = NULL;
    QBlockFmtInfo *f;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    f = raw_fmt(b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EXPECT_OK(b, qb_fmt_info_set_options(b, f, cases[i].opts), 0);
        ck_assert_msg(f->fmt_op.o_raw.virt_size == cases[i].size, "%s gave %" PRIu64,
                      cases[i].opts, f->fmt_op.o_raw.virt_size);
        ck_assert_int_eq(f->fmt_type, QB_FMT_RAW);
        /* Options not named keep their value. */
        ck_assert_int_eq(f->fmt_op.o_raw.pre_mode, QBO_FMT_RAW_PREALLOC_OFF);
    }
    qb_fmt_info_delete(b, &f);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(set_options_raw_preallocation_parsed)
{
    QBroker *b = NULL;
    QBlockFmtInfo *f;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    f = raw_fmt(b);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "size=1M,preallocation=full"), 0);
    ck_assert_uint_eq(f->fmt_op.o_raw.virt_size, 1 << 20);
    ck_assert_int_eq(f->fmt_op.o_raw.pre_mode, QBO_FMT_RAW_PREALLOC_FULL);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "preallocation=falloc"), 0);
    ck_assert_int_eq(f->fmt_op.o_raw.pre_mode, QBO_FMT_RAW_PREALLOC_FALLOC);
    ck_assert_uint_eq(f->fmt_op.o_raw.virt_size, 1 << 20);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "preallocation=off,size=2k"), 0);
    ck_assert_int_eq(f->fmt_op.o_raw.pre_mode, QBO_FMT_RAW_PREALLOC_OFF);
    ck_assert_uint_eq(f->fmt_op.o_raw.virt_size, 2048);
    qb_fmt_info_delete(b, &f);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(set_options_bad_strings_invalid_param_unchanged)
{
    static const char *const bad[] = {
        /* unknown keys, and keys raw has no use for */
        "bogus=1", "size=1M,bogus=1", "bogus=1,size=1M", "cluster_size=64k", "backing_file=x",
        "compat=1.1", "SIZE=1M", " size=1M",
        /* malformed structure */
        "size", "size=1M,preallocation", "=1M", "=", ",", "size=1M,", ",size=1M",
        "size=1M,,preallocation=full", "size==1M", "size=1M,,", "size=1M,=2",
        /* bad sizes */
        "size=", "size=abc", "size=-1", "size=-1k", "size=1X", "size=1MB5", "size=1M5",
        "size=18446744073709551616", "size=16E", "size=99999999999T", "size=0x",
        /* bad enumerations */
        "preallocation=bogus", "preallocation=", "preallocation=metadata", "size=1M,preallocation=bogus",
    };
    QBroker *b = NULL;
    QBlockFmtInfo *f;
    QBlockFmtInfo before;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    f = raw_fmt(b);
    memcpy(&before, f, sizeof(before));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int ret = qb_fmt_info_set_options(b, f, bad[i]);

        ck_assert_msg(ret == QB_ERR_INVALID_PARAM, "'%s': expected %d, got %d", bad[i],
                      QB_ERR_INVALID_PARAM, ret);
        ck_assert_msg(qbt_msg(b)[0] != '\0', "'%s': no message", bad[i]);
        ck_assert_msg(memcmp(f, &before, sizeof(before)) == 0,
                      "'%s' changed fmt although it failed (virt_size %" PRIu64 ", pre_mode %d)",
                      bad[i], f->fmt_op.o_raw.virt_size, (int)f->fmt_op.o_raw.pre_mode);
    }
    qb_fmt_info_delete(b, &f);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(set_options_qcow2_fields_parsed)
{
    QBroker *b = NULL;
    QBlockFmtInfo *f = NULL;
    struct QBlockFmtOptionQcow2 *o;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_fmt_info_new(b, &f), 0);
    f->fmt_type = QB_FMT_QCOW2;
    o = &f->fmt_op.o_qcow2;
    EXPECT_OK(b, qb_fmt_info_set_options(b, f,
              "size=1G,cluster_size=64k,compat=1.1,preallocation=metadata,"
              "backing_file=base,,1.img,backing_fmt=raw"), 0);
    ck_assert_uint_eq(o->virt_size, 1ULL << 30);
    ck_assert_uint_eq(o->cluster_size, 65536);
    ck_assert_int_eq(o->cpt_lv, QBO_FMT_QCOW2_CPT_V110);
    ck_assert_int_eq(o->pre_mode, QBO_FMT_QCOW2_PREALLOC_METADATA);
    ck_assert_int_eq(o->backing_fmt, QB_FMT_RAW);
    ck_assert_int_eq(o->backing_loc.prot_type, QB_PROT_FILE);
    ck_assert_ptr_nonnull(o->backing_loc.prot_op.o_file.filename);
    /* ",," is a literal comma inside a value. */
    ck_assert_str_eq(o->backing_loc.prot_op.o_file.filename, "base,1.img");

    /* A second backing_file replaces (and frees) the first copy. */
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "backing_file=other.qcow2,compat=0.10"), 0);
    ck_assert_str_eq(o->backing_loc.prot_op.o_file.filename, "other.qcow2");
    ck_assert_int_eq(o->cpt_lv, QBO_FMT_QCOW2_CPT_V010);
    ck_assert_uint_eq(o->virt_size, 1ULL << 30);

    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "preallocation=off"), 0);
    ck_assert_int_eq(o->pre_mode, QBO_FMT_QCOW2_PREALLOC_OFF);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "preallocation=falloc"), 0);
    ck_assert_int_eq(o->pre_mode, QBO_FMT_QCOW2_PREALLOC_FALLOC);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "preallocation=full"), 0);
    ck_assert_int_eq(o->pre_mode, QBO_FMT_QCOW2_PREALLOC_FULL);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "refcount_bits=64,lazy_refcounts=on,"
                                         "extended_l2=on,compression_type=zlib"), 0);
    ck_assert_uint_eq(o->refcount_bits, 64);
    ck_assert(o->lazy_refcounts);
    ck_assert(o->extended_l2);
    ck_assert_int_eq(o->compression_type, QBO_FMT_QCOW2_COMPRESSION_ZLIB);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "lazy_refcounts=off"), 0);
    ck_assert(!o->lazy_refcounts);

    /* Bad values leave everything (including the backing string) alone. */
    EXPECT_ERR(b, qb_fmt_info_set_options(b, f, "compat=2.0"), QB_ERR_INVALID_PARAM,
               "qb_fmt_info_set_options");
    EXPECT_ERR(b, qb_fmt_info_set_options(b, f, "compression_type=lzma"), QB_ERR_INVALID_PARAM,
               "qb_fmt_info_set_options");
    EXPECT_ERR(b, qb_fmt_info_set_options(b, f, "lazy_refcounts=perhaps"), QB_ERR_INVALID_PARAM,
               "qb_fmt_info_set_options");
    ck_assert_int_eq(o->compression_type, QBO_FMT_QCOW2_COMPRESSION_ZLIB);
    EXPECT_ERR(b, qb_fmt_info_set_options(b, f, "backing_fmt=nosuchformat"), QB_ERR_INVALID_PARAM,
               "qb_fmt_info_set_options");
    EXPECT_ERR(b, qb_fmt_info_set_options(b, f, "backing_file=x.img,bogus=1"),
               QB_ERR_INVALID_PARAM, "qb_fmt_info_set_options");
    ck_assert_str_eq(o->backing_loc.prot_op.o_file.filename, "other.qcow2");
    ck_assert_int_eq(o->cpt_lv, QBO_FMT_QCOW2_CPT_V010);
    ck_assert_int_eq(o->backing_fmt, QB_FMT_RAW);
    qb_fmt_info_delete(b, &f);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(set_options_other_formats_parsed)
{
    QBroker *b = NULL;
    QBlockFmtInfo *f = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_fmt_info_new(b, &f), 0);

    f->fmt_type = QB_FMT_VPC;
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "size=10M,subformat=fixed"), 0);
    ck_assert_uint_eq(f->fmt_op.o_vpc.virt_size, 10 << 20);
    ck_assert_int_eq(f->fmt_op.o_vpc.subfmt, QBO_FMT_VPC_SUBFMT_FIXED);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "subformat=dynamic"), 0);
    ck_assert_int_eq(f->fmt_op.o_vpc.subfmt, QBO_FMT_VPC_SUBFMT_DYNAMIC);
    EXPECT_ERR(b, qb_fmt_info_set_options(b, f, "subformat=bogus"), QB_ERR_INVALID_PARAM,
               "qb_fmt_info_set_options");
    ck_assert_int_eq(f->fmt_op.o_vpc.subfmt, QBO_FMT_VPC_SUBFMT_DYNAMIC);

    memset(&f->fmt_op, 0, sizeof(f->fmt_op));
    f->fmt_type = QB_FMT_VMDK;
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "size=1G,subformat=monolithicFlat"), 0);
    ck_assert_int_eq(f->fmt_op.o_vmdk.subfmt, QBO_FMT_VMDK_SUBFMT_MONOLITHIC_FLAT);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "subformat=streamOptimized"), 0);
    ck_assert_int_eq(f->fmt_op.o_vmdk.subfmt, QBO_FMT_VMDK_SUBFMT_STREAM_OPTIMIZED);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "subformat=twoGbMaxExtentSparse"), 0);
    ck_assert_int_eq(f->fmt_op.o_vmdk.subfmt, QBO_FMT_VMDK_SUBFMT_TWOGBMAX_EXTENT_SPARSE);

    memset(&f->fmt_op, 0, sizeof(f->fmt_op));
    f->fmt_type = QB_FMT_VDI;
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "size=64M,static=on"), 0);
    ck_assert_uint_eq(f->fmt_op.o_vdi.virt_size, 64 << 20);
    ck_assert_int_eq(f->fmt_op.o_vdi.pre_mode, QBO_FMT_VDI_PREALLOC_TRUE);
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "static=off"), 0);
    ck_assert_int_eq(f->fmt_op.o_vdi.pre_mode, QBO_FMT_VDI_PREALLOC_FALSE);
    EXPECT_ERR(b, qb_fmt_info_set_options(b, f, "static=maybe"), QB_ERR_INVALID_PARAM,
               "qb_fmt_info_set_options");
    ck_assert_int_eq(f->fmt_op.o_vdi.pre_mode, QBO_FMT_VDI_PREALLOC_FALSE);

    memset(&f->fmt_op, 0, sizeof(f->fmt_op));
    f->fmt_type = QB_FMT_QED;
    EXPECT_OK(b, qb_fmt_info_set_options(b, f, "size=1G,cluster_size=128k,table_size=8"), 0);
    ck_assert_uint_eq(f->fmt_op.o_qed.cluster_size, 128 << 10);
    ck_assert_uint_eq(f->fmt_op.o_qed.table_size, 8);

    qb_fmt_info_delete(b, &f);
    qb_broker_delete(&b);
}
END_TEST

START_TEST(set_options_backing_file_on_stack_fmt_invalid_param)
{
    QBroker *b = NULL;
    QBlockFmtInfo f;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    memset(&f, 0, sizeof(f));
    f.fmt_type = QB_FMT_QCOW2;
    /* Copied strings need an fmt from qb_fmt_info_new, which owns them. */
    EXPECT_ERR(b, qb_fmt_info_set_options(b, &f, "backing_file=base.img"), QB_ERR_INVALID_PARAM,
               "qb_fmt_info_set_options");
    ck_assert_ptr_null(f.fmt_op.o_qcow2.backing_loc.prot_op.o_file.filename);
    /* Options without strings work on a caller's struct. */
    EXPECT_OK(b, qb_fmt_info_set_options(b, &f, "size=2M"), 0);
    ck_assert_uint_eq(f.fmt_op.o_qcow2.virt_size, 2 << 20);
    qb_broker_delete(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_create                                                           */

START_TEST(create_null_args_invalid_param)
{
    Env e;

    env_init(&e, "create-null.raw");
    e.fmt.fmt_op.o_raw.virt_size = 65536;
    EXPECT_ERR(NULL, qb_create(NULL, e.qbs, &e.loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(e.b, qb_create(e.b, NULL, &e.loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_create");
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, NULL, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_create");
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &e.loc, NULL, 0), QB_ERR_INVALID_PARAM, "qb_create");
    /* Nothing was created or changed. */
    ck_assert_int_eq(qbt_file_size(e.path), IMG_SIZE);
    env_fini(&e);
}
END_TEST

START_TEST(create_bad_flags_invalid_param)
{
    Env e;
    char path[PATH_MAX];

    env_init(&e, "create-flags-env.raw");
    qbt_path(path, sizeof(path), "create-flags.raw");
    e.loc = qbt_loc(path);
    e.fmt.fmt_op.o_raw.virt_size = 65536;
    for (int bit = 0; bit < 32; bit++) {
        int flag = (int)(1U << bit);

        if (flag & LIBQBLOCK_O_ALL_FLAGS) {
            continue;
        }
        EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &e.loc, &e.fmt, flag), QB_ERR_INVALID_PARAM,
                   "qb_create");
        EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &e.loc, &e.fmt, flag | LIBQBLOCK_O_RDWR),
                   QB_ERR_INVALID_PARAM, "qb_create");
        ck_assert_msg(access(path, F_OK) != 0, "flag 0x%x created the file", flag);
    }
    /* Combinations refused as for qb_open. */
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &e.loc, &e.fmt, LIBQBLOCK_O_NATIVE_AIO),
               QB_ERR_INVALID_PARAM, "qb_create");
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &e.loc, &e.fmt, LIBQBLOCK_O_FORCE_SHARE |
                              LIBQBLOCK_O_RDWR), QB_ERR_INVALID_PARAM, "qb_create");
    ck_assert_msg(access(path, F_OK) != 0, "a refused flag combination created the file");
    EXPECT_OK(e.b, qb_create(e.b, e.qbs, &e.loc, &e.fmt, 0), 0);
    ck_assert_int_eq(qbt_file_size(path), 65536);
    env_fini(&e);
}
END_TEST

START_TEST(create_bad_location_invalid_param)
{
    Env e;
    QBlockProtInfo loc;

    env_init(&e, "create-loc.raw");
    e.fmt.fmt_op.o_raw.virt_size = 65536;
    memset(&loc, 0, sizeof(loc));
    loc.prot_type = QB_PROT_NONE;
    loc.prot_op.o_file.filename = e.path;
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_create");
    loc.prot_type = QB_PROT_MAX;
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_create");
    loc.prot_type = (enum QBlockProtType)-1;
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_create");
    loc.prot_type = QB_PROT_FILE;
    loc.prot_op.o_file.filename = NULL;
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_create");
    loc.prot_op.o_file.filename = "";
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_create");
    ck_assert_int_eq(qbt_file_size(e.path), IMG_SIZE);
    env_fini(&e);
}
END_TEST

START_TEST(create_bad_fmt_type_invalid_param)
{
    static const int bad_types[] = { QB_FMT_NONE, QB_FMT_MAX, QB_FMT_MAX + 1, 99, -1 };
    Env e;
    char path[PATH_MAX];

    env_init(&e, "create-fmt-env.raw");
    qbt_path(path, sizeof(path), "create-fmt.img");
    e.loc = qbt_loc(path);
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        memset(&e.fmt, 0, sizeof(e.fmt));
        e.fmt.fmt_type = (enum QBlockFmtType)bad_types[i];
        e.fmt.fmt_op.o_raw.virt_size = 65536;
        EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &e.loc, &e.fmt, 0), QB_ERR_INVALID_PARAM,
                   "qb_create");
        ck_assert_msg(access(path, F_OK) != 0, "fmt_type %d created the file", bad_types[i]);
    }
    env_fini(&e);
}
END_TEST

START_TEST(create_unsupported_format_not_supported)
{
    Env e;
    char path[PATH_MAX];

    env_init(&e, "create-sd-env.raw");
    qbt_path(path, sizeof(path), "create-sd.img");
    e.loc = qbt_loc(path);
    memset(&e.fmt, 0, sizeof(e.fmt));
    /* Sheepdog is a network format this build does not handle. */
    e.fmt.fmt_type = QB_FMT_SHEEPDOG;
    e.fmt.fmt_op.o_sheepdog.virt_size = 65536;
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &e.loc, &e.fmt, 0), QB_ERR_NOT_SUPPORTED, "qb_create");
    env_fini(&e);
}
END_TEST

START_TEST(create_missing_folder_enoent)
{
    Env e;
    char path[PATH_MAX];

    env_init(&e, "create-enoent-env.raw");
    qbt_path(path, sizeof(path), "no-such-folder/img.raw");
    e.loc = qbt_loc(path);
    e.fmt.fmt_op.o_raw.virt_size = 65536;
    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &e.loc, &e.fmt, 0), QB_ERR_INTERNAL_ERR, "qb_create");
    ck_assert_int_eq(qb_error_get_errno(e.b), ENOENT);
    ck_assert_msg(strstr(qbt_msg(e.b), path) != NULL, "message '%s' does not name '%s'",
                  qbt_msg(e.b), path);
    env_fini(&e);
}
END_TEST

/* A child process that holds an image open through libqblock. */
typedef struct Holder {
    pid_t pid;
    int go;     /* write end: one byte tells the child to close and exit */
} Holder;

static void hold_image(Holder *h, const char *path, enum QBlockFmtType type, int flag)
{
    int ready[2], go[2];
    char c = 0;

    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    h->pid = fork();
    ck_assert_int_ge(h->pid, 0);
    if (h->pid == 0) {
        QBroker *cb = NULL;
        QBlockState *cs = NULL;
        QBlockProtInfo loc = qbt_loc(path);
        QBlockFmtInfo fmt;
        char ok;

        /*
         * Never outlive the parent: with its ends of the pipes closed here, a
         * parent that fails early (or exits) gives the read below an end of
         * file, and the alarm covers a parent that hangs.
         */
        close(ready[0]);
        close(go[1]);
        alarm(60);
        memset(&fmt, 0, sizeof(fmt));
        fmt.fmt_type = type;
        ok = (qb_broker_new(&cb) == 0 && qb_state_new(cb, &cs) == 0 &&
              qb_open(cb, cs, &loc, &fmt, flag) == 0) ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1 || ok != 'y' || read(go[0], &ok, 1) != 1) {
            _exit(3);
        }
        ok = qb_close(cb, cs) == 0;
        qb_state_delete(cb, &cs);
        qb_broker_delete(&cb);
        _exit(ok ? 0 : 4);
    }
    close(ready[1]);
    close(go[0]);
    h->go = go[1];
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    ck_assert_msg(c == 'y', "the child could not open %s", path);
}

static void release_image(Holder *h)
{
    int status;

    ck_assert_int_eq(write(h->go, "x", 1), 1);
    close(h->go);
    ck_assert_int_eq(waitpid(h->pid, &status, 0), h->pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
}

/*
 * Locking follows QEMU 7.2: a format with metadata (qcow2) shares neither
 * write nor resize, so while another process holds a qcow2 image read-write,
 * create, read-write and read-only opens return QB_ERR_LOCKED; only a
 * LIBQBLOCK_O_FORCE_SHARE open (qemu-img -U) succeeds.
 */
START_TEST(create_qcow2_held_by_other_process_locked)
{
    Env e;
    Holder h;
    QBlockFmtInfo q;

    env_init(&e, "locked.qcow2");
    memset(&q, 0, sizeof(q));
    q.fmt_type = QB_FMT_QCOW2;
    q.fmt_op.o_qcow2.virt_size = IMG_SIZE;
    EXPECT_OK(e.b, qb_create(e.b, e.qbs, &e.loc, &q, 0), 0);
    hold_image(&h, e.path, QB_FMT_QCOW2, LIBQBLOCK_O_RDWR);

    EXPECT_ERR(e.b, qb_create(e.b, e.qbs, &e.loc, &q, 0), QB_ERR_LOCKED, "qb_create");
    ck_assert_ptr_nonnull(strstr(qbt_msg(e.b), e.path));
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &q, LIBQBLOCK_O_RDWR), QB_ERR_LOCKED, "qb_open");
    ck_assert_ptr_nonnull(strstr(qbt_msg(e.b), e.path));
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, NULL, 0), QB_ERR_LOCKED, "qb_open");
    /* Sharing every permission, like qemu-img -U, a read-only open succeeds. */
    EXPECT_OK(e.b, qb_open(e.b, e.qbs, &e.loc, &q, LIBQBLOCK_O_FORCE_SHARE), 0);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);

    release_image(&h);
    /* Released: everything works again, and the refused create changed nothing. */
    EXPECT_OK(e.b, qb_open(e.b, e.qbs, &e.loc, NULL, LIBQBLOCK_O_RDWR), 0);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    EXPECT_OK(e.b, qb_create(e.b, e.qbs, &e.loc, &q, 0), 0);
    env_fini(&e);
}
END_TEST

/*
 * Raw has no metadata and shares write, as in QEMU (two read-write qemu-io
 * on one raw image both open): holding a raw image read-write does not lock
 * out a second read-write open.
 */
START_TEST(open_raw_held_by_other_process_shares_write)
{
    Env e;
    Holder h;
    uint8_t buf[512];

    env_init(&e, "shared.raw");
    hold_image(&h, e.path, QB_FMT_RAW, LIBQBLOCK_O_RDWR);
    EXPECT_OK(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, LIBQBLOCK_O_RDWR), 0);
    memset(buf, 0x3c, sizeof(buf));
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, sizeof(buf), 4096), sizeof(buf));
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    release_image(&h);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_open                                                             */

START_TEST(open_null_args_invalid_param)
{
    Env e;

    env_init(&e, "open-null.raw");
    EXPECT_ERR(NULL, qb_open(NULL, e.qbs, &e.loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(e.b, qb_open(e.b, NULL, &e.loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_open");
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, NULL, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_open");
    /* The state is still closed and usable. */
    env_open(&e, 0);
    env_fini(&e);
}
END_TEST

START_TEST(open_bad_flags_invalid_param)
{
    Env e;

    env_init(&e, "open-flags.raw");
    for (int bit = 0; bit < 32; bit++) {
        int flag = (int)(1U << bit);

        if (flag & LIBQBLOCK_O_ALL_FLAGS) {
            continue;
        }
        EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, flag), QB_ERR_INVALID_PARAM, "qb_open");
        EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, NULL, flag | LIBQBLOCK_O_RDWR),
                   QB_ERR_INVALID_PARAM, "qb_open");
    }
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, -1), QB_ERR_INVALID_PARAM, "qb_open");
    /* Valid bits in combinations the header rules out. */
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, LIBQBLOCK_O_NATIVE_AIO),
               QB_ERR_INVALID_PARAM, "qb_open");
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, LIBQBLOCK_O_NATIVE_AIO | LIBQBLOCK_O_RDWR),
               QB_ERR_INVALID_PARAM, "qb_open");
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, LIBQBLOCK_O_FORCE_SHARE | LIBQBLOCK_O_RDWR),
               QB_ERR_INVALID_PARAM, "qb_open");
    /* Valid flags are accepted, alone and together (snapshot has its own test). */
    {
        static const int ok_flags[] = {
            0, LIBQBLOCK_O_RDWR, LIBQBLOCK_O_NOCACHE, LIBQBLOCK_O_CACHE_WB,
            LIBQBLOCK_O_NO_BACKING, LIBQBLOCK_O_NO_FLUSH, LIBQBLOCK_O_FORCE_SHARE,
            LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB | LIBQBLOCK_O_NO_BACKING | LIBQBLOCK_O_NO_FLUSH,
            LIBQBLOCK_O_RDWR | LIBQBLOCK_O_NOCACHE | LIBQBLOCK_O_NATIVE_AIO,
        };

        for (size_t i = 0; i < sizeof(ok_flags) / sizeof(ok_flags[0]); i++) {
            env_open(&e, ok_flags[i]);
            EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
        }
    }
    env_fini(&e);
}
END_TEST

START_TEST(open_bad_location_invalid_param)
{
    Env e;
    QBlockProtInfo loc;

    env_init(&e, "open-loc.raw");
    memset(&loc, 0, sizeof(loc));
    loc.prot_op.o_file.filename = e.path;
    loc.prot_type = QB_PROT_NONE;
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_open");
    loc.prot_type = QB_PROT_MAX;
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_open");
    loc.prot_type = (enum QBlockProtType)1000;
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &loc, NULL, 0), QB_ERR_INVALID_PARAM, "qb_open");
    loc.prot_type = QB_PROT_FILE;
    loc.prot_op.o_file.filename = NULL;
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_open");
    loc.prot_op.o_file.filename = "";
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_open");
    env_open(&e, 0);
    env_fini(&e);
}
END_TEST

START_TEST(open_bad_fmt_type_invalid_param)
{
    static const int bad_types[] = { QB_FMT_MAX, QB_FMT_MAX + 1, 99, -1 };
    Env e;

    env_init(&e, "open-fmt.raw");
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        e.fmt.fmt_type = (enum QBlockFmtType)bad_types[i];
        EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, 0), QB_ERR_INVALID_PARAM, "qb_open");
    }
    e.fmt.fmt_type = QB_FMT_SHEEPDOG;
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, 0), QB_ERR_NOT_SUPPORTED, "qb_open");
    /* QB_FMT_NONE in a given fmt means "probe", like fmt NULL. */
    e.fmt.fmt_type = QB_FMT_NONE;
    env_open(&e, 0);
    env_fini(&e);
}
END_TEST

START_TEST(open_wrong_explicit_format_invalid_image)
{
    Env e;

    /* A file of zeros is no qcow2 image. */
    env_init(&e, "zeros-as-qcow2.img");
    e.fmt.fmt_type = QB_FMT_QCOW2;
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, 0), QB_ERR_INVALID_IMAGE, "qb_open");
    ck_assert_ptr_nonnull(strstr(qbt_msg(e.b), e.path));
    e.fmt.fmt_type = QB_FMT_RAW;
    env_open(&e, 0);
    env_fini(&e);
}
END_TEST

START_TEST(open_twice_invalid_param_first_open_intact)
{
    Env e;
    uint8_t buf[512];

    env_init(&e, "open-twice.raw");
    env_open(&e, LIBQBLOCK_O_RDWR);
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, &e.fmt, LIBQBLOCK_O_RDWR), QB_ERR_INVALID_PARAM,
               "qb_open");
    EXPECT_ERR(e.b, qb_open(e.b, e.qbs, &e.loc, NULL, 0), QB_ERR_INVALID_PARAM, "qb_open");
    /* The first open still works, read-write. */
    memset(buf, 0x5a, sizeof(buf));
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, sizeof(buf), 0), sizeof(buf));
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, buf, sizeof(buf), 512), sizeof(buf));
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    env_fini(&e);
}
END_TEST

START_TEST(open_failed_state_stays_closed_and_reusable)
{
    Env e;
    char missing[PATH_MAX];
    char dir_path[PATH_MAX];
    QBlockProtInfo dloc;
    int ret;

    env_init(&e, "reuse.raw");
    fail_open_missing(&e, missing, sizeof(missing));
    EXPECT_ERR(e.b, qb_close(e.b, e.qbs), QB_ERR_INVALID_PARAM, "qb_close");

    /* A folder is not an image. */
    qbt_path(dir_path, sizeof(dir_path), "a-folder");
    ck_assert_int_eq(mkdir(dir_path, 0755), 0);
    dloc = qbt_loc(dir_path);
    ret = qb_open(e.b, e.qbs, &dloc, NULL, 0);
    ck_assert_msg(ret < 0, "opening a folder returned %d", ret);
    ret = qb_open(e.b, e.qbs, &dloc, &e.fmt, LIBQBLOCK_O_RDWR);
    ck_assert_msg(ret < 0, "opening a folder read-write returned %d", ret);
    EXPECT_ERR(e.b, qb_close(e.b, e.qbs), QB_ERR_INVALID_PARAM, "qb_close");

    env_open(&e, 0);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    /* A closed state opens again. */
    env_open(&e, LIBQBLOCK_O_RDWR);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_close                                                            */

START_TEST(close_not_open_invalid_param)
{
    Env e;

    env_init(&e, "close.raw");
    EXPECT_ERR(NULL, qb_close(NULL, e.qbs), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(e.b, qb_close(e.b, NULL), QB_ERR_INVALID_PARAM, "qb_close");
    EXPECT_ERR(e.b, qb_close(e.b, e.qbs), QB_ERR_INVALID_PARAM, "qb_close");
    env_open(&e, 0);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    EXPECT_ERR(e.b, qb_close(e.b, e.qbs), QB_ERR_INVALID_PARAM, "qb_close");
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* calls on a state that is not open                                   */

/* Every call that needs an open image must refuse a closed state. */
static void expect_all_refuse_closed(Env *e)
{
    uint8_t buf[512] = { 0 };
    int st = -7;
    int64_t len = -7;
    QBlockStatusInfo si;
    QBlockStaticInfo *info = NULL;

    EXPECT_ERR(e->b, qb_read(e->b, e->qbs, buf, sizeof(buf), 0), QB_ERR_INVALID_PARAM, "qb_read");
    EXPECT_ERR(e->b, qb_write(e->b, e->qbs, buf, sizeof(buf), 0), QB_ERR_INVALID_PARAM, "qb_write");
    EXPECT_ERR(e->b, qb_flush(e->b, e->qbs), QB_ERR_INVALID_PARAM, "qb_flush");
    EXPECT_ERR(e->b, qb_discard(e->b, e->qbs, 0, 512), QB_ERR_INVALID_PARAM, "qb_discard");
    EXPECT_ERR(e->b, qb_check_allocation(e->b, e->qbs, 0, 512, &st, &len), QB_ERR_INVALID_PARAM,
               "qb_check_allocation");
    EXPECT_ERR(e->b, qb_block_status(e->b, e->qbs, 0, 512, &si), QB_ERR_INVALID_PARAM,
               "qb_block_status");
    EXPECT_ERR(e->b, qb_info_image_static_get(e->b, e->qbs, &info), QB_ERR_INVALID_PARAM,
               "qb_info_image_static_get");
    ck_assert_ptr_null(info);
    EXPECT_ERR(e->b, qb_get_allocated_file_size(e->b, e->qbs), QB_ERR_INVALID_PARAM,
               "qb_get_allocated_file_size");
    EXPECT_ERR(e->b, qb_is_dirty(e->b, e->qbs), QB_ERR_INVALID_PARAM, "qb_is_dirty");
    EXPECT_ERR(e->b, qb_has_zero_init(e->b, e->qbs), QB_ERR_INVALID_PARAM, "qb_has_zero_init");
}

START_TEST(state_calls_before_open_invalid_param)
{
    Env e;

    env_init(&e, "before-open.raw");
    expect_all_refuse_closed(&e);
    env_fini(&e);
}
END_TEST

START_TEST(state_calls_after_close_invalid_param)
{
    Env e;

    env_init(&e, "after-close.raw");
    env_open(&e, LIBQBLOCK_O_RDWR);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    expect_all_refuse_closed(&e);
    env_fini(&e);
}
END_TEST

/* Every call given a NULL broker or a NULL state returns QB_ERR_INVALID_PARAM. */
START_TEST(state_calls_null_broker_or_state_invalid_param)
{
    Env e;
    uint8_t buf[512] = { 0 };
    int st;
    int64_t len;
    QBlockStatusInfo si;
    QBlockStaticInfo *info = NULL;

    env_init(&e, "null-state.raw");
    env_open(&e, LIBQBLOCK_O_RDWR);
    EXPECT_ERR(NULL, qb_read(NULL, e.qbs, buf, 512, 0), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(NULL, qb_write(NULL, e.qbs, buf, 512, 0), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(NULL, qb_flush(NULL, e.qbs), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(NULL, qb_discard(NULL, e.qbs, 0, 512), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(NULL, qb_check_allocation(NULL, e.qbs, 0, 512, &st, &len), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(NULL, qb_block_status(NULL, e.qbs, 0, 512, &si), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(NULL, qb_info_image_static_get(NULL, e.qbs, &info), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(NULL, qb_get_allocated_file_size(NULL, e.qbs), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(NULL, qb_is_dirty(NULL, e.qbs), QB_ERR_INVALID_PARAM, "");
    EXPECT_ERR(NULL, qb_has_zero_init(NULL, e.qbs), QB_ERR_INVALID_PARAM, "");

    EXPECT_ERR(e.b, qb_read(e.b, NULL, buf, 512, 0), QB_ERR_INVALID_PARAM, "qb_read");
    EXPECT_ERR(e.b, qb_write(e.b, NULL, buf, 512, 0), QB_ERR_INVALID_PARAM, "qb_write");
    EXPECT_ERR(e.b, qb_flush(e.b, NULL), QB_ERR_INVALID_PARAM, "qb_flush");
    EXPECT_ERR(e.b, qb_discard(e.b, NULL, 0, 512), QB_ERR_INVALID_PARAM, "qb_discard");
    EXPECT_ERR(e.b, qb_check_allocation(e.b, NULL, 0, 512, &st, &len), QB_ERR_INVALID_PARAM,
               "qb_check_allocation");
    EXPECT_ERR(e.b, qb_block_status(e.b, NULL, 0, 512, &si), QB_ERR_INVALID_PARAM,
               "qb_block_status");
    EXPECT_ERR(e.b, qb_info_image_static_get(e.b, NULL, &info), QB_ERR_INVALID_PARAM,
               "qb_info_image_static_get");
    EXPECT_ERR(e.b, qb_get_allocated_file_size(e.b, NULL), QB_ERR_INVALID_PARAM,
               "qb_get_allocated_file_size");
    EXPECT_ERR(e.b, qb_is_dirty(e.b, NULL), QB_ERR_INVALID_PARAM, "qb_is_dirty");
    EXPECT_ERR(e.b, qb_has_zero_init(e.b, NULL), QB_ERR_INVALID_PARAM, "qb_has_zero_init");
    ck_assert_ptr_null(info);

    /* NULL output pointers. */
    EXPECT_ERR(e.b, qb_read(e.b, e.qbs, NULL, 512, 0), QB_ERR_INVALID_PARAM, "qb_read");
    EXPECT_ERR(e.b, qb_write(e.b, e.qbs, NULL, 512, 0), QB_ERR_INVALID_PARAM, "qb_write");
    EXPECT_ERR(e.b, qb_check_allocation(e.b, e.qbs, 0, 512, NULL, &len), QB_ERR_INVALID_PARAM,
               "qb_check_allocation");
    EXPECT_ERR(e.b, qb_check_allocation(e.b, e.qbs, 0, 512, &st, NULL), QB_ERR_INVALID_PARAM,
               "qb_check_allocation");
    EXPECT_ERR(e.b, qb_block_status(e.b, e.qbs, 0, 512, NULL), QB_ERR_INVALID_PARAM,
               "qb_block_status");
    EXPECT_ERR(e.b, qb_info_image_static_get(e.b, e.qbs, NULL), QB_ERR_INVALID_PARAM,
               "qb_info_image_static_get");

    /* The image is still fine afterwards. */
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 512, 0), 512);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_read / qb_write                                                  */

/* Ranges that reach outside a 1 MiB image, including ones whose end wraps past 2^64. */
static const struct {
    uint64_t offset, len;
} bad_ranges[] = {
    { IMG_SIZE, 1 },
    { IMG_SIZE - 1, 2 },
    { IMG_SIZE - 512, 1024 },
    { 0, IMG_SIZE + 1 },
    { IMG_SIZE + 4096, 512 },
    { UINT64_MAX, 1 },
    { UINT64_MAX - 511, 512 },
    { 512, UINT64_MAX - 511 },     /* offset + len wraps to 0 */
    { 1, UINT64_MAX },             /* wraps to 0 */
    { 0, UINT64_MAX },
    { 0, 1ULL << 63 },             /* more than an int64_t return can say */
    { 4096, (1ULL << 63) + 1 },
};
#define N_BAD_RANGES (sizeof(bad_ranges) / sizeof(bad_ranges[0]))

START_TEST(read_out_of_range_block_out_of_range)
{
    Env e;
    uint8_t buf[4096];

    env_init(&e, "read-range.raw");
    env_open(&e, 0);
    for (size_t i = 0; i < N_BAD_RANGES; i++) {
        int64_t r = qb_read(e.b, e.qbs, buf, bad_ranges[i].len, bad_ranges[i].offset);

        ck_assert_msg(r == QB_ERR_BLOCK_OUT_OF_RANGE,
                      "qb_read(len %" PRIu64 ", offset %" PRIu64 ") = %" PRId64 " (%s)",
                      bad_ranges[i].len, bad_ranges[i].offset, r, qbt_msg(e.b));
        ck_assert_ptr_nonnull(strstr(qbt_msg(e.b), "qb_read"));
    }
    env_fini(&e);
}
END_TEST

START_TEST(write_out_of_range_block_out_of_range_file_unchanged)
{
    Env e;
    uint8_t buf[4096];
    uint8_t back[4096];

    env_init(&e, "write-range.raw");
    env_open(&e, LIBQBLOCK_O_RDWR);
    memset(buf, 0xee, sizeof(buf));
    for (size_t i = 0; i < N_BAD_RANGES; i++) {
        int64_t r = qb_write(e.b, e.qbs, buf, bad_ranges[i].len, bad_ranges[i].offset);

        ck_assert_msg(r == QB_ERR_BLOCK_OUT_OF_RANGE,
                      "qb_write(len %" PRIu64 ", offset %" PRIu64 ") = %" PRId64 " (%s)",
                      bad_ranges[i].len, bad_ranges[i].offset, r, qbt_msg(e.b));
        ck_assert_ptr_nonnull(strstr(qbt_msg(e.b), "qb_write"));
    }
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    /* Nothing was written, in particular no partial head of a refused request, and
     * the file did not grow. */
    ck_assert_int_eq(qbt_file_size(e.path), IMG_SIZE);
    qbt_pread_file(e.path, back, sizeof(back), IMG_SIZE - sizeof(back));
    qbt_assert_bytes(back, 0, sizeof(back), "the image's last 4 KiB");
    qbt_pread_file(e.path, back, sizeof(back), 0);
    qbt_assert_bytes(back, 0, sizeof(back), "the image's first 4 KiB");
    env_fini(&e);
}
END_TEST

START_TEST(read_write_len_zero_returns_zero)
{
    Env e;
    uint8_t buf[16];

    env_init(&e, "len0.raw");
    env_open(&e, LIBQBLOCK_O_RDWR);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, buf, 0, 0), 0);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, buf, 0, 777), 0);
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, buf, 0, IMG_SIZE), 0);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 0, 0), 0);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 0, 777), 0);
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, 0, IMG_SIZE), 0);
    /* The whole image, and the last byte, are in range. */
    {
        uint8_t *all = malloc(IMG_SIZE);

        ck_assert_ptr_nonnull(all);
        EXPECT_OK(e.b, qb_read(e.b, e.qbs, all, IMG_SIZE, 0), IMG_SIZE);
        EXPECT_OK(e.b, qb_write(e.b, e.qbs, all, 1, IMG_SIZE - 1), 1);
        free(all);
    }
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    ck_assert_int_eq(qbt_file_size(e.path), IMG_SIZE);
    env_fini(&e);
}
END_TEST

START_TEST(write_read_only_image_read_only)
{
    Env e;
    uint8_t buf[1024];
    uint8_t back[1024];

    env_init(&e, "ro.raw");
    env_open(&e, 0);
    memset(buf, 0x77, sizeof(buf));
    EXPECT_ERR(e.b, qb_write(e.b, e.qbs, buf, 512, 0), QB_ERR_READ_ONLY, "qb_write");
    EXPECT_ERR(e.b, qb_write(e.b, e.qbs, buf, 1, 3), QB_ERR_READ_ONLY, "qb_write");
    EXPECT_ERR(e.b, qb_write(e.b, e.qbs, buf, sizeof(buf), 700), QB_ERR_READ_ONLY, "qb_write");
    EXPECT_ERR(e.b, qb_discard(e.b, e.qbs, 0, 65536), QB_ERR_READ_ONLY, "qb_discard");
    ck_assert_ptr_nonnull(strstr(qbt_msg(e.b), e.path));
    /* Reads and flushes of a read-only image are fine. */
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, sizeof(back), 0), sizeof(back));
    EXPECT_OK(e.b, qb_flush(e.b, e.qbs), 0);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    qbt_pread_file(e.path, back, sizeof(back), 0);
    qbt_assert_bytes(back, 0, sizeof(back), "a read-only image after refused writes");
    env_fini(&e);
}
END_TEST

START_TEST(write_success_returns_len)
{
    Env e;
    uint8_t buf[3000];
    uint8_t back[3000];

    env_init(&e, "write-ok.raw");
    env_open(&e, LIBQBLOCK_O_RDWR);
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i ^ 0xa5);
    }
    EXPECT_OK(e.b, qb_write(e.b, e.qbs, buf, sizeof(buf), 1001), sizeof(buf));
    EXPECT_OK(e.b, qb_read(e.b, e.qbs, back, sizeof(back), 1001), sizeof(back));
    ck_assert_int_eq(memcmp(buf, back, sizeof(buf)), 0);
    EXPECT_OK(e.b, qb_flush(e.b, e.qbs), 0);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    qbt_pread_file(e.path, back, sizeof(back), 1001);
    ck_assert_int_eq(memcmp(buf, back, sizeof(buf)), 0);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_discard                                                          */

START_TEST(discard_out_of_range_block_out_of_range)
{
    Env e;

    env_init(&e, "discard-range.raw");
    env_open(&e, LIBQBLOCK_O_RDWR);
    for (size_t i = 0; i < N_BAD_RANGES; i++) {
        int r = qb_discard(e.b, e.qbs, bad_ranges[i].offset, bad_ranges[i].len);

        ck_assert_msg(r == QB_ERR_BLOCK_OUT_OF_RANGE,
                      "qb_discard(offset %" PRIu64 ", len %" PRIu64 ") = %d (%s)",
                      bad_ranges[i].offset, bad_ranges[i].len, r, qbt_msg(e.b));
    }
    EXPECT_OK(e.b, qb_discard(e.b, e.qbs, 0, 0), 0);
    EXPECT_OK(e.b, qb_discard(e.b, e.qbs, IMG_SIZE, 0), 0);
    EXPECT_OK(e.b, qb_discard(e.b, e.qbs, 0, IMG_SIZE), 0);
    EXPECT_OK(e.b, qb_close(e.b, e.qbs), 0);
    ck_assert_int_eq(qbt_file_size(e.path), IMG_SIZE);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* qb_check_allocation / qb_block_status                               */

START_TEST(check_allocation_bad_lengths_and_ranges)
{
    static const int64_t bad_lengths[] = { 0, -1, -512, INT64_MIN };
    Env e;
    int st = -7;
    int64_t len = -7;

    env_init(&e, "alloc-args.raw");
    env_open(&e, 0);
    for (size_t i = 0; i < sizeof(bad_lengths) / sizeof(bad_lengths[0]); i++) {
        EXPECT_ERR(e.b, qb_check_allocation(e.b, e.qbs, 0, bad_lengths[i], &st, &len),
                   QB_ERR_INVALID_PARAM, "qb_check_allocation");
    }
    EXPECT_ERR(e.b, qb_check_allocation(e.b, e.qbs, IMG_SIZE, 512, &st, &len),
               QB_ERR_BLOCK_OUT_OF_RANGE, "qb_check_allocation");
    EXPECT_ERR(e.b, qb_check_allocation(e.b, e.qbs, IMG_SIZE - 512, 1024, &st, &len),
               QB_ERR_BLOCK_OUT_OF_RANGE, "qb_check_allocation");
    EXPECT_ERR(e.b, qb_check_allocation(e.b, e.qbs, UINT64_MAX - 10, 100, &st, &len),
               QB_ERR_BLOCK_OUT_OF_RANGE, "qb_check_allocation");
    EXPECT_ERR(e.b, qb_check_allocation(e.b, e.qbs, 512, INT64_MAX, &st, &len),
               QB_ERR_BLOCK_OUT_OF_RANGE, "qb_check_allocation");
    /* The documented success values. */
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, 0, IMG_SIZE, &st, &len), 0);
    ck_assert_msg(st == 0 || st == 1, "status %d", st);
    ck_assert_msg(len >= 1 && len <= IMG_SIZE, "length %" PRId64, len);
    EXPECT_OK(e.b, qb_check_allocation(e.b, e.qbs, IMG_SIZE - 1, 1, &st, &len), 0);
    ck_assert_int_eq(len, 1);
    env_fini(&e);
}
END_TEST

START_TEST(block_status_bad_lengths_and_ranges)
{
    Env e;
    QBlockStatusInfo si;

    env_init(&e, "status-args.raw");
    env_open(&e, 0);
    EXPECT_ERR(e.b, qb_block_status(e.b, e.qbs, 0, 0, &si), QB_ERR_INVALID_PARAM,
               "qb_block_status");
    EXPECT_ERR(e.b, qb_block_status(e.b, e.qbs, IMG_SIZE, 512, &si), QB_ERR_BLOCK_OUT_OF_RANGE,
               "qb_block_status");
    EXPECT_ERR(e.b, qb_block_status(e.b, e.qbs, IMG_SIZE - 512, 1024, &si),
               QB_ERR_BLOCK_OUT_OF_RANGE, "qb_block_status");
    EXPECT_ERR(e.b, qb_block_status(e.b, e.qbs, 512, UINT64_MAX - 511, &si),
               QB_ERR_BLOCK_OUT_OF_RANGE, "qb_block_status");
    EXPECT_ERR(e.b, qb_block_status(e.b, e.qbs, UINT64_MAX, 1, &si), QB_ERR_BLOCK_OUT_OF_RANGE,
               "qb_block_status");
    memset(&si, 0xff, sizeof(si));
    EXPECT_OK(e.b, qb_block_status(e.b, e.qbs, 0, IMG_SIZE, &si), 0);
    ck_assert_msg(si.length >= 1 && si.length <= IMG_SIZE, "length %" PRIu64, si.length);
    ck_assert_int_eq(si.depth, 0);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* static info and simple queries                                      */

START_TEST(static_info_null_and_delete_safe)
{
    Env e;
    QBlockStaticInfo *info = NULL;

    env_init(&e, "info.raw");
    env_open(&e, 0);
    EXPECT_ERR(e.b, qb_info_image_static_get(e.b, e.qbs, NULL), QB_ERR_INVALID_PARAM,
               "qb_info_image_static_get");
    EXPECT_OK(e.b, qb_info_image_static_get(e.b, e.qbs, &info), 0);
    ck_assert_ptr_nonnull(info);
    ck_assert_uint_eq(info->virt_size, IMG_SIZE);
    qb_info_image_static_delete(e.b, &info);
    ck_assert_ptr_null(info);
    qb_info_image_static_delete(e.b, &info);
    qb_info_image_static_delete(e.b, NULL);
    EXPECT_OK(e.b, qb_is_dirty(e.b, e.qbs), 0);
    EXPECT_OK(e.b, qb_has_zero_init(e.b, e.qbs), 1);
    ck_assert_int_ge(qb_get_allocated_file_size(e.b, e.qbs), 0);
    env_fini(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* format names                                                        */

START_TEST(fmttype_unknown_names_and_values)
{
    static const char *const bad_names[] = { "", "qcow3", "raw ", " raw", "vhdx", "none", "file" };
    static const int bad_types[] = { QB_FMT_MAX, QB_FMT_MAX + 1, 1000, -1 };

    ck_assert_int_eq(qb_str2fmttype(NULL), QB_FMT_NONE);
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        ck_assert_msg(qb_str2fmttype(bad_names[i]) == QB_FMT_NONE, "'%s' gave %d", bad_names[i],
                      qb_str2fmttype(bad_names[i]));
    }
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        ck_assert_ptr_null(qb_fmttype2str((enum QBlockFmtType)bad_types[i]));
    }
}
END_TEST

static Suite *api_errors_suite(void)
{
    Suite *s = suite_create("api_errors");
    TCase *tc;

    tc = tcase_create("broker");
    tcase_add_test(tc, broker_new_null_invalid_param);
    tcase_add_test(tc, broker_new_delete_sets_null);
    tcase_add_test(tc, broker_new_fresh_has_no_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("strerror");
    tcase_add_test(tc, strerror_known_codes_distinct_text);
    tcase_add_test(tc, strerror_unknown_codes_unknown_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("human_str");
    tcase_add_test(tc, human_str_truncates_and_terminates);
    suite_add_tcase(s, tc);

    tc = tcase_create("errno");
    tcase_add_test(tc, errno_missing_file_enoent_message_names_file);
    tcase_add_test(tc, errno_success_keeps_previous_error);
    tcase_add_test(tc, errno_null_broker_not_positive);
    suite_add_tcase(s, tc);

    tc = tcase_create("state");
    tcase_add_test(tc, state_new_null_args_invalid_param);
    tcase_add_test(tc, state_delete_open_state_closes_and_flushes);
    tcase_add_test(tc, state_calls_before_open_invalid_param);
    tcase_add_test(tc, state_calls_after_close_invalid_param);
    tcase_add_test(tc, state_calls_null_broker_or_state_invalid_param);
    suite_add_tcase(s, tc);

    tc = tcase_create("prot_info");
    tcase_add_test(tc, prot_info_new_zeroed_and_null_invalid_param);
    suite_add_tcase(s, tc);

    tc = tcase_create("fmt_info");
    tcase_add_test(tc, fmt_info_new_zeroed_and_null_invalid_param);
    suite_add_tcase(s, tc);

    tc = tcase_create("set_options");
    tcase_add_test(tc, set_options_null_args_invalid_param);
    tcase_add_test(tc, set_options_bad_fmt_type_invalid_param);
    tcase_add_test(tc, set_options_raw_sizes_parsed);
    tcase_add_test(tc, set_options_raw_preallocation_parsed);
    tcase_add_test(tc, set_options_bad_strings_invalid_param_unchanged);
    tcase_add_test(tc, set_options_qcow2_fields_parsed);
    tcase_add_test(tc, set_options_other_formats_parsed);
    tcase_add_test(tc, set_options_backing_file_on_stack_fmt_invalid_param);
    suite_add_tcase(s, tc);

    tc = tcase_create("create");
    tcase_add_test(tc, create_null_args_invalid_param);
    tcase_add_test(tc, create_bad_flags_invalid_param);
    tcase_add_test(tc, create_bad_location_invalid_param);
    tcase_add_test(tc, create_bad_fmt_type_invalid_param);
    tcase_add_test(tc, create_unsupported_format_not_supported);
    tcase_add_test(tc, create_missing_folder_enoent);
    tcase_add_test(tc, create_qcow2_held_by_other_process_locked);
    tcase_add_test(tc, open_raw_held_by_other_process_shares_write);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("open");
    tcase_add_test(tc, open_null_args_invalid_param);
    tcase_add_test(tc, open_bad_flags_invalid_param);
    tcase_add_test(tc, open_bad_location_invalid_param);
    tcase_add_test(tc, open_bad_fmt_type_invalid_param);
    tcase_add_test(tc, open_wrong_explicit_format_invalid_image);
    tcase_add_test(tc, open_twice_invalid_param_first_open_intact);
    tcase_add_test(tc, open_failed_state_stays_closed_and_reusable);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_test(tc, close_not_open_invalid_param);
    suite_add_tcase(s, tc);

    tc = tcase_create("read");
    tcase_add_test(tc, read_out_of_range_block_out_of_range);
    tcase_add_test(tc, read_write_len_zero_returns_zero);
    suite_add_tcase(s, tc);

    tc = tcase_create("write");
    tcase_add_test(tc, write_out_of_range_block_out_of_range_file_unchanged);
    tcase_add_test(tc, write_read_only_image_read_only);
    tcase_add_test(tc, write_success_returns_len);
    suite_add_tcase(s, tc);

    tc = tcase_create("discard");
    tcase_add_test(tc, discard_out_of_range_block_out_of_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("check_allocation");
    tcase_add_test(tc, check_allocation_bad_lengths_and_ranges);
    suite_add_tcase(s, tc);

    tc = tcase_create("block_status");
    tcase_add_test(tc, block_status_bad_lengths_and_ranges);
    suite_add_tcase(s, tc);

    tc = tcase_create("static_info");
    tcase_add_test(tc, static_info_null_and_delete_safe);
    suite_add_tcase(s, tc);

    tc = tcase_create("fmttype");
    tcase_add_test(tc, fmttype_unknown_names_and_values);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return qbt_run(api_errors_suite(), argv[0]);
}
