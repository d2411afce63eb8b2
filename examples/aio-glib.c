/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * aio-glib.c: an example of libqblock's asynchronous calls in a GLib main
 * loop: reads a whole image with up to 16 requests in flight and prints the
 * SHA-256 of its virtual content (the same as sha256sum of the image
 * converted to raw) and its size.
 *
 * Usage: aio-glib IMAGE [FORMAT]  (FORMAT: "raw" for a raw image, which is not probed)
 * Build: cc aio-glib.c $(pkg-config --cflags --libs libqblock glib-2.0)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libqblock-glib.h>

#ifdef LIBQBLOCK_HAVE_GLIB

#define SLOTS 16
#define CHUNK (256 * 1024)

/*
 * Completions arrive in any order, but the checksum needs the bytes in
 * order: chunk k lives in slot k % SLOTS until every chunk before it has
 * been hashed, and only then is the slot reused for chunk k + SLOTS.
 */
typedef struct Reader Reader;

/* What a callback's opaque pointer names: one slot of the reader. */
typedef struct Slot {
    Reader *r;
    int idx;
} Slot;

struct Reader {
    GMainLoop *loop;
    QBroker *broker;
    QBlockState *qbs;
    GChecksum *sum;
    uint64_t size;
    uint64_t next_submit;     /* the next chunk to read */
    uint64_t next_hash;       /* the next chunk to add to the checksum */
    uint64_t nchunks;
    uint8_t *buf[SLOTS];
    uint64_t len[SLOTS];
    gboolean ready[SLOTS];
    Slot slots[SLOTS];
    int failed;
};

static void on_read(QBlockAIOReq *req, int64_t ret, void *opaque);

/* Start reading chunk k into its slot. */
static void submit(Reader *r, uint64_t k)
{
    int slot = (int)(k % SLOTS);
    uint64_t off = k * CHUNK;
    int ret;

    r->len[slot] = r->size - off < CHUNK ? r->size - off : CHUNK;
    r->ready[slot] = FALSE;
    ret = qb_aio_read(r->broker, r->qbs, r->buf[slot], r->len[slot], off, on_read,
                      &r->slots[slot], NULL);
    if (ret < 0) {
        char msg[1024];
        qb_error_get_human_str(r->broker, msg, sizeof(msg));
        fprintf(stderr, "aio-glib: %s\n", msg);
        r->failed = 1;
        g_main_loop_quit(r->loop);
    }
}

static void on_read(QBlockAIOReq *req, int64_t ret, void *opaque)
{
    Slot *sl = opaque;
    Reader *r = sl->r;

    (void)req;
    if (r->failed) {
        return;      /* draining after a failure: nothing more to do */
    }
    if (ret < 0) {
        fprintf(stderr, "aio-glib: read failed: %s\n", qb_strerror((int)ret));
        r->failed = 1;
        g_main_loop_quit(r->loop);
        return;
    }
    r->ready[sl->idx] = TRUE;
    /* Hash the finished prefix, refilling each slot it frees. */
    while (r->next_hash < r->nchunks && r->ready[r->next_hash % SLOTS]) {
        int s = (int)(r->next_hash % SLOTS);
        g_checksum_update(r->sum, r->buf[s], (gssize)r->len[s]);
        r->ready[s] = FALSE;
        r->next_hash++;
        if (r->next_submit < r->nchunks) {
            submit(r, r->next_submit++);
        }
    }
    if (r->next_hash == r->nchunks) {
        g_main_loop_quit(r->loop);
    }
}

static gboolean start(gpointer opaque)
{
    Reader *r = opaque;

    while (r->next_submit < r->nchunks && r->next_submit < SLOTS) {
        submit(r, r->next_submit++);
    }
    if (r->nchunks == 0) {
        g_main_loop_quit(r->loop);
    }
    return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
    QBlockProtInfo loc;
    QBlockFmtInfo fmt;
    QBlockStaticInfo *info = NULL;
    Reader r;
    GSource *src;
    int ret = 1;

    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: aio-glib IMAGE [FORMAT]\n");
        return 2;
    }
    memset(&r, 0, sizeof(r));
    memset(&loc, 0, sizeof(loc));
    memset(&fmt, 0, sizeof(fmt));
    loc.prot_type = QB_PROT_FILE;
    loc.prot_op.o_file.filename = argv[1];
    /*
     * Without a format the library probes, and by default will not guess
     * raw for a file no format recognises: name "raw" for a raw image.
     */
    if (argc == 3) {
        fmt.fmt_type = qb_str2fmttype(argv[2]);
        if (fmt.fmt_type == QB_FMT_NONE) {
            fprintf(stderr, "aio-glib: unknown format '%s'\n", argv[2]);
            return 2;
        }
    }
    if (qb_broker_new(&r.broker) < 0 || qb_state_new(r.broker, &r.qbs) < 0) {
        fprintf(stderr, "aio-glib: out of memory\n");
        return 1;
    }
    if (qb_open(r.broker, r.qbs, &loc, &fmt, 0) < 0 ||
        qb_info_image_static_get(r.broker, r.qbs, &info) < 0) {
        char msg[1024];
        qb_error_get_human_str(r.broker, msg, sizeof(msg));
        fprintf(stderr, "aio-glib: %s\n", msg);
        goto out;
    }
    r.size = info->virt_size;
    qb_info_image_static_delete(r.broker, &info);
    r.nchunks = (r.size + CHUNK - 1) / CHUNK;
    for (int i = 0; i < SLOTS; i++) {
        r.buf[i] = g_malloc(CHUNK);
        r.slots[i].r = &r;
        r.slots[i].idx = i;
    }
    r.sum = g_checksum_new(G_CHECKSUM_SHA256);
    r.loop = g_main_loop_new(NULL, FALSE);
    src = qb_aio_gsource_new(r.qbs);
    if (!src) {
        fprintf(stderr, "aio-glib: cannot watch the image's completions\n");
        goto out;
    }
    g_source_attach(src, NULL);
    g_idle_add(start, &r);
    g_main_loop_run(r.loop);
    /* Requests still in flight after a failure finish before the source goes. */
    qb_aio_drain(r.broker, r.qbs);
    g_source_destroy(src);
    g_source_unref(src);
    if (!r.failed) {
        printf("%s  %llu\n", g_checksum_get_string(r.sum), (unsigned long long)r.size);
        ret = 0;
    }
    g_main_loop_unref(r.loop);
    g_checksum_free(r.sum);
    for (int i = 0; i < SLOTS; i++) {
        g_free(r.buf[i]);
    }
out:
    if (qb_close(r.broker, r.qbs) < 0 && ret == 0) {
        ret = 1;
    }
    qb_state_delete(r.broker, &r.qbs);
    qb_broker_delete(&r.broker);
    return ret;
}

#else /* !LIBQBLOCK_HAVE_GLIB */

int main(void)
{
    printf("SKIP: aio-glib was built without GLib\n");
    return 77;
}

#endif
