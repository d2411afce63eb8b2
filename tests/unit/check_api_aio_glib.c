/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check_api_aio_glib.c: asynchronous requests driven by a GLib main loop
 * through the GSource of libqblock-glib.h: requests submitted from an idle
 * callback complete inside the source's dispatch, in the loop's thread,
 * and the last completion quits the loop.
 */
#include "qbtest.h"

#include <pthread.h>

#include "libqblock/libqblock-glib.h"

#ifdef LIBQBLOCK_HAVE_GLIB

#define N_REQ 32
#define CHUNK (64 * 1024)

typedef struct Ctx {
    GMainLoop *loop;
    QBroker *b;
    QBlockState *qbs;
    pthread_t loop_thread;
    uint8_t *wbuf, *rbuf;
    int writes_done, reads_done, wrong_thread, failed;
    int dispatches;
} Ctx;

static void on_read(QBlockAIOReq *req, int64_t ret, void *opaque)
{
    Ctx *c = opaque;

    (void)req;
    c->wrong_thread += !pthread_equal(pthread_self(), c->loop_thread);
    c->failed += ret != CHUNK;
    if (++c->reads_done == N_REQ) {
        g_main_loop_quit(c->loop);
    }
}

static void on_write(QBlockAIOReq *req, int64_t ret, void *opaque)
{
    Ctx *c = opaque;
    int i = c->writes_done++;

    (void)req;
    c->wrong_thread += !pthread_equal(pthread_self(), c->loop_thread);
    c->failed += ret != CHUNK;
    /* Read each chunk back once all writes are in, from inside the loop. */
    if (c->writes_done == N_REQ) {
        for (i = 0; i < N_REQ; i++) {
            c->failed += qb_aio_read(c->b, c->qbs, c->rbuf + (size_t)i * CHUNK, CHUNK,
                                     (uint64_t)i * CHUNK, on_read, c, NULL) != 0;
        }
    }
}

static gboolean submit_from_idle(gpointer opaque)
{
    Ctx *c = opaque;

    for (int i = 0; i < N_REQ; i++) {
        c->failed += qb_aio_write(c->b, c->qbs, c->wbuf + (size_t)i * CHUNK, CHUNK,
                                  (uint64_t)i * CHUNK, on_write, c, NULL) != 0;
    }
    return G_SOURCE_REMOVE;
}

static gboolean count_dispatch(gpointer opaque)
{
    Ctx *c = opaque;

    c->dispatches++;
    return G_SOURCE_CONTINUE;
}

static gboolean give_up(gpointer opaque)
{
    Ctx *c = opaque;

    c->failed += 1000;
    g_main_loop_quit(c->loop);
    return G_SOURCE_REMOVE;
}

START_TEST(aio_glib_loop_completes_requests)
{
    char path[PATH_MAX];
    Ctx c;
    GSource *src;
    guint timeout;
    QbtRng rng;

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(qb_broker_new(&c.b), 0);
    qbt_path(path, sizeof(path), "glib.qcow2");
    qbt_create_fmt(c.b, path, QB_FMT_QCOW2, (uint64_t)N_REQ * CHUNK);
    c.qbs = qbt_open_fmt(c.b, QB_FMT_QCOW2, path, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB);
    c.wbuf = malloc((size_t)N_REQ * CHUNK);
    c.rbuf = calloc(N_REQ, CHUNK);
    ck_assert(c.wbuf && c.rbuf);
    qbt_rng_seed(&rng, qbt_seed("glib"));
    qbt_rng_fill(&rng, c.wbuf, (size_t)N_REQ * CHUNK);

    c.loop = g_main_loop_new(NULL, FALSE);
    c.loop_thread = pthread_self();
    src = qb_aio_gsource_new(c.qbs);
    ck_assert_ptr_nonnull(src);
    g_source_set_callback(src, count_dispatch, &c, NULL);
    g_source_attach(src, NULL);
    g_idle_add(submit_from_idle, &c);
    /* A safety net only: the loop normally quits on the last completion. */
    timeout = g_timeout_add_seconds(120, give_up, &c);
    g_main_loop_run(c.loop);
    g_source_remove(timeout);

    ck_assert_int_eq(c.failed, 0);
    ck_assert_int_eq(c.writes_done, N_REQ);
    ck_assert_int_eq(c.reads_done, N_REQ);
    ck_assert_int_eq(c.wrong_thread, 0);
    ck_assert_int_gt(c.dispatches, 0);
    qbt_assert_same(c.rbuf, c.wbuf, (size_t)N_REQ * CHUNK, "read back in the loop");
    g_source_destroy(src);
    g_source_unref(src);
    g_main_loop_unref(c.loop);
    qbt_close(c.b, &c.qbs);
    free(c.wbuf);
    free(c.rbuf);
    qb_broker_delete(&c.b);
}
END_TEST

/* A state that is not open gets no source. */
START_TEST(aio_glib_source_needs_open_state)
{
    QBroker *b = NULL;
    QBlockState *qbs = NULL;

    ck_assert_int_eq(qb_broker_new(&b), 0);
    ck_assert_int_eq(qb_state_new(b, &qbs), 0);
    ck_assert_ptr_null(qb_aio_gsource_new(qbs));
    ck_assert_ptr_null(qb_aio_gsource_new(NULL));
    qb_state_delete(b, &qbs);
    qb_broker_delete(&b);
}
END_TEST

int main(int argc, char **argv)
{
    Suite *s = suite_create("api_aio_glib");
    TCase *tc = tcase_create("glib");

    (void)argc;
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, aio_glib_loop_completes_requests);
    tcase_add_test(tc, aio_glib_source_needs_open_state);
    suite_add_tcase(s, tc);
    return qbt_run(s, argv[0]);
}

#else /* !LIBQBLOCK_HAVE_GLIB */

int main(void)
{
    const char *ci = getenv("CI");

    printf("SKIP: built without GLib (Debian package libglib2.0-dev)\n");
    return ci && strcmp(ci, "true") == 0 ? 1 : 77;
}

#endif
