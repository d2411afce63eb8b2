/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libqblock-glib.h: a GSource that runs a state's asynchronous completions
 * from a GLib main loop.
 *
 * Usage:
 *     GSource *src = qb_aio_gsource_new(qbs);
 *     g_source_attach(src, NULL);        // or a GMainContext of your own
 *     g_source_unref(src);               // the context keeps it alive
 *     ... qb_aio_read(..., my_callback, ...) ...
 *     // my_callback runs inside the loop, in the loop's thread
 *     g_source_destroy(src);             // before qb_close(qbs)
 *
 * The source watches qb_aio_get_fd and calls qb_aio_run_completions when it
 * polls readable; the request callbacks therefore run in the thread that
 * iterates the source's GMainContext. A callback set with
 * g_source_set_callback (a GSourceFunc) is called after each batch of
 * completions; returning G_SOURCE_REMOVE from it removes the source.
 *
 * Why header-only: the adapter is some forty lines over the public API, so a
 * separate libqblock-glib.so with its own .pc file would cost packagers more
 * than it saves; libqblock.so itself stays free of GLib, and a program that
 * includes this header already links GLib. The functions are static inline
 * and carry no LIBQBLOCK_EXPORT: nothing here is part of libqblock.so.
 *
 * The header needs <glib.h> (pkg-config --cflags glib-2.0); when the
 * compiler cannot find it the header declares nothing, so that it can be
 * included unconditionally.
 */
#ifndef LIBQBLOCK_GLIB_H
#define LIBQBLOCK_GLIB_H

#include "libqblock.h"

#if defined(__has_include)
#if __has_include(<glib.h>)
#define LIBQBLOCK_HAVE_GLIB 1
#endif
#endif

#ifdef LIBQBLOCK_HAVE_GLIB
#include <glib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The source: a GSource followed by what dispatch needs. */
typedef struct QBlockGSource {
    GSource source;
    QBlockState *qbs;
    QBroker *broker;      /* owned: the source's own, used only from its context's thread */
} QBlockGSource;

static inline gboolean qb_aio_gsource_dispatch(GSource *source, GSourceFunc callback,
                                               gpointer user_data)
{
    QBlockGSource *s = (QBlockGSource *)(void *)source;

    qb_aio_run_completions(s->broker, s->qbs);
    if (callback) {
        return callback(user_data);
    }
    return G_SOURCE_CONTINUE;
}

static inline void qb_aio_gsource_finalize(GSource *source)
{
    QBlockGSource *s = (QBlockGSource *)(void *)source;

    qb_broker_delete(&s->broker);
}

static inline GSourceFuncs *qb_aio_gsource_funcs(void)
{
    /* One table per program unit is enough: GLib only keeps the pointer. */
    static GSourceFuncs funcs = {
        NULL, NULL, qb_aio_gsource_dispatch, qb_aio_gsource_finalize, NULL, NULL,
    };
    return &funcs;
}

/*
 * qb_aio_gsource_new: a new (unattached) GSource for the open state @qbs,
 * or NULL when the state is not open or its eventfd or a broker cannot be
 * made. The caller owns the reference; destroy the source before closing
 * the state.
 */
static inline GSource *qb_aio_gsource_new(QBlockState *qbs)
{
    QBroker *broker = NULL;
    QBlockGSource *s;
    int fd;

    if (qb_broker_new(&broker) < 0) {
        return NULL;
    }
    fd = qb_aio_get_fd(broker, qbs);
    if (fd < 0) {
        qb_broker_delete(&broker);
        return NULL;
    }
    s = (QBlockGSource *)(void *)g_source_new(qb_aio_gsource_funcs(), sizeof(QBlockGSource));
    s->qbs = qbs;
    s->broker = broker;
    g_source_set_name(&s->source, "libqblock aio");
    g_source_add_unix_fd(&s->source, fd, G_IO_IN);
    return &s->source;
}

#ifdef __cplusplus
}
#endif

#endif /* LIBQBLOCK_HAVE_GLIB */

#endif /* LIBQBLOCK_GLIB_H */
