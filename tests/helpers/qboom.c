/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qboom: runs one workload per format again and again with the Nth library allocation failing, N = 1, 2, ... */

/*
 *   qboom [-k STEP] [-a FIRST] [-q QEMU_IMG] FMT DIR
 *
 * Needs a library built by `make check-oom` (tests/oom/oom-wrap.c); with
 * any other it exits 77 after its first run. Each run forks a child that
 * sets QB_OOM_FAIL_AT=N and does, through the public API: create DIR/oom.FMT
 * (4 MiB; cow over DIR/base.raw, made here), open it read-write, write
 * three patterns (one unaligned), read them back, flush, walk the
 * allocation map, check, for qcow2 take, list and delete a snapshot, close
 * and free everything. The child stops at the first failing call, after
 * closing what it opened. N runs 1..FIRST (default 50), then every STEP-th
 * (default 1) until a run meets no injected failure.
 *
 * Every run must: not crash (a signal, an ASan report); not leak (LSan
 * fails the child); fail only where the injection happened, with
 * QB_ERR_MEM_ERR, or absorb the failure and complete with the right data;
 * and leave an image that `qemu-img check` (QEMU_IMG, for qcow2, qed, vdi
 * and vmdk) finds without errors whenever its creation succeeded.
 * Prints one summary line; exits 0 when every run passed, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libqblock/libqblock.h"

#define IMG_SIZE (4u << 20)

/* How a child ended (its exit status). */
enum {
    CHILD_DONE = 0,          /* the whole workload succeeded */
    CHILD_MEM_AFTER = 11,    /* a call failed with QB_ERR_MEM_ERR after the image was created */
    CHILD_MEM_CREATE = 12,   /* create failed with QB_ERR_MEM_ERR (the image may be half made) */
    CHILD_WRONG_ERROR = 20,  /* a call failed with another error */
    CHILD_BAD_DATA = 21,     /* a read did not return what was written */
};

static const char *fmt_name, *img_path;

static int child_fail(QBroker *b, const char *call, int ret, bool created)
{
    char msg[512];

    qb_error_get_human_str(b, msg, sizeof(msg));
    if (ret == QB_ERR_MEM_ERR) {
        return created ? CHILD_MEM_AFTER : CHILD_MEM_CREATE;
    }
    fprintf(stderr, "qboom: %s: %s failed with %d, not QB_ERR_MEM_ERR: %s\n", fmt_name, call,
            ret, msg);
    return CHILD_WRONG_ERROR;
}

/* The workload; returns the child's exit status. */
static int workload(QBroker *b, const char *base)
{
    static const struct { uint64_t off; size_t len; uint8_t byte; } w[] = {
        { 0, 65536, 0x11 }, { 1048576 + 1000, 5000, 0x22 }, { 3u << 20, 131072, 0x33 },
    };
    QBlockState *qbs = NULL;
    QBlockProtInfo loc = { .prot_type = QB_PROT_FILE };
    QBlockFmtInfo *fmt = NULL;
    QBlockCheckResult res;
    QBlockSnapshotInfo *list = NULL;
    uint8_t buf[131072], want[131072];
    char opts[512];
    int ret = 0, count;

    loc.prot_op.o_file.filename = img_path;
    if ((ret = qb_state_new(b, &qbs)) < 0) {
        return child_fail(b, "qb_state_new", ret, false);
    }
    /* The open below probes; a raw image is only probed as raw when the policy allows it. */
    if (strcmp(fmt_name, "raw") == 0) {
        QBlockOpenPolicy guess = { .flags = QB_POLICY_ALLOW_RAW_PROBE };

        if ((ret = qb_state_set_policy(b, qbs, &guess)) < 0) {
            qb_state_delete(b, &qbs);
            return child_fail(b, "qb_state_set_policy", ret, false);
        }
    }
    if ((ret = qb_fmt_info_new(b, &fmt)) < 0) {
        qb_state_delete(b, &qbs);
        return child_fail(b, "qb_fmt_info_new", ret, false);
    }
    fmt->fmt_type = qb_str2fmttype(fmt_name);
    fmt->fmt_op.o_raw.virt_size = IMG_SIZE;
    if (strcmp(fmt_name, "cow") == 0) {
        snprintf(opts, sizeof(opts), "backing_file=%s", base);
        ret = qb_fmt_info_set_options(b, fmt, opts);
    }
    if (ret == 0) {
        ret = qb_create(b, qbs, &loc, fmt, 0);
    }
    qb_fmt_info_delete(b, &fmt);
    if (ret < 0) {
        qb_state_delete(b, &qbs);
        return child_fail(b, "qb_create", ret, false);
    }
    if ((ret = qb_open(b, qbs, &loc, NULL, LIBQBLOCK_O_RDWR | LIBQBLOCK_O_CACHE_WB)) < 0) {
        qb_state_delete(b, &qbs);
        return child_fail(b, "qb_open", ret, true);
    }
#define STEP(call, expr) do { \
        if ((ret = (expr)) < 0) { \
            int st_ = child_fail(b, call, ret, true); \
            qb_close(b, qbs); \
            qb_state_delete(b, &qbs); \
            return st_; \
        } \
    } while (0)
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        memset(buf, w[i].byte, w[i].len);
        STEP("qb_write", (int)qb_write(b, qbs, buf, w[i].len, w[i].off));
    }
    STEP("qb_flush", qb_flush(b, qbs));
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        memset(want, w[i].byte, w[i].len);
        STEP("qb_read", (int)qb_read(b, qbs, buf, w[i].len, w[i].off));
        if (memcmp(buf, want, w[i].len) != 0) {
            fprintf(stderr, "qboom: %s: read at %" PRIu64 " differs from what was written\n",
                    fmt_name, w[i].off);
            qb_close(b, qbs);
            qb_state_delete(b, &qbs);
            return CHILD_BAD_DATA;
        }
    }
    for (uint64_t off = 0; off < IMG_SIZE;) {
        QBlockStatusInfo st;
        STEP("qb_block_status", qb_block_status(b, qbs, off, IMG_SIZE - off, &st));
        off += st.length;
    }
    ret = qb_check(b, qbs, 0, &res);
    if (ret != QB_ERR_NOT_SUPPORTED) {
        STEP("qb_check", ret);
    }
    if (strcmp(fmt_name, "qcow2") == 0) {
        STEP("qb_snapshot_create", qb_snapshot_create(b, qbs, "oom"));
        STEP("qb_snapshot_list", qb_snapshot_list(b, qbs, &list, &count));
        qb_snapshot_list_free(b, &list);
        STEP("qb_snapshot_delete", qb_snapshot_delete(b, qbs, "oom"));
    }
#undef STEP
    ret = qb_close(b, qbs);
    qb_state_delete(b, &qbs);
    return ret < 0 ? child_fail(b, "qb_close", ret, true) : CHILD_DONE;
}

/* One run with allocation @n failing; false when it broke a rule. *@injected: it met the failure. */
static bool run_once(unsigned long n, const char *base, const char *qemu_img, bool *injected)
{
    int pfd[2], status;
    char num[32];
    pid_t pid;
    char c;

    if (pipe2(pfd, O_CLOEXEC) < 0) {
        perror("qboom: pipe");
        exit(1);
    }
    unlink(img_path);
    pid = fork();
    if (pid < 0) {
        perror("qboom: fork");
        exit(1);
    }
    if (pid == 0) {
        QBroker *b = NULL;
        int st;

        close(pfd[0]);
        snprintf(num, sizeof(num), "%lu", n);
        setenv("QB_OOM_FAIL_AT", num, 1);
        snprintf(num, sizeof(num), "%d", pfd[1]);
        setenv("QB_OOM_NOTIFY_FD", num, 1);
        if (qb_broker_new(&b) < 0) {
            _exit(CHILD_MEM_CREATE);   /* the broker itself was the failed allocation */
        }
        st = workload(b, base);
        qb_broker_delete(&b);
        exit(st);   /* exit, not _exit: LeakSanitizer runs at exit */
    }
    close(pfd[1]);
    *injected = read(pfd[0], &c, 1) == 1;
    close(pfd[0]);
    if (waitpid(pid, &status, 0) < 0) {
        perror("qboom: waitpid");
        exit(1);
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "qboom: %s: N=%lu: the child crashed (signal %d)\n", fmt_name, n,
                WTERMSIG(status));
        return false;
    }
    status = WEXITSTATUS(status);
    if (status == CHILD_WRONG_ERROR || status == CHILD_BAD_DATA ||
        (status != CHILD_DONE && status != CHILD_MEM_AFTER && status != CHILD_MEM_CREATE)) {
        fprintf(stderr, "qboom: %s: N=%lu: the child exited %d%s\n", fmt_name, n, status,
                status == 1 || status == 23 ? " (a sanitizer report: a leak or a memory error)" : "");
        return false;
    }
    if (status != CHILD_DONE && !*injected) {
        fprintf(stderr, "qboom: %s: N=%lu: a call failed with no allocation failed\n", fmt_name, n);
        return false;
    }
    if (qemu_img && *qemu_img && status != CHILD_MEM_CREATE &&
        (!strcmp(fmt_name, "qcow2") || !strcmp(fmt_name, "qed") || !strcmp(fmt_name, "vdi") ||
         !strcmp(fmt_name, "vmdk"))) {
        char cmd[4096];
        int rc;

        /* Leaks (exit 3) are allowed: an interrupted allocation may leave them. */
        snprintf(cmd, sizeof(cmd), "'%s' check -f %s '%s' >'%s.check' 2>&1", qemu_img, fmt_name,
                 img_path, img_path);
        rc = system(cmd);
        if (rc == -1 || !WIFEXITED(rc) || (WEXITSTATUS(rc) != 0 && WEXITSTATUS(rc) != 3)) {
            fprintf(stderr, "qboom: %s: N=%lu: qemu-img check found errors (see %s.check)\n",
                    fmt_name, n, img_path);
            return false;
        }
    }
    return true;
}

int main(int argc, char **argv)
{
    unsigned long step = 1, first = 50, runs = 0, bad = 0, n, last = 0;
    const char *qemu_img = NULL;
    char base[4096], img[4096];
    bool injected = true;
    int opt, fd;

    while ((opt = getopt(argc, argv, "k:a:q:")) != -1) {
        switch (opt) {
        case 'k': step = strtoul(optarg, NULL, 0); break;
        case 'a': first = strtoul(optarg, NULL, 0); break;
        case 'q': qemu_img = optarg; break;
        default:
            fprintf(stderr, "usage: qboom [-k STEP] [-a FIRST] [-q QEMU_IMG] FMT DIR\n");
            return 1;
        }
    }
    if (optind != argc - 2 || step == 0) {
        fprintf(stderr, "usage: qboom [-k STEP] [-a FIRST] [-q QEMU_IMG] FMT DIR\n");
        return 1;
    }
    fmt_name = argv[optind];
    snprintf(base, sizeof(base), "%s/base.raw", argv[optind + 1]);
    snprintf(img, sizeof(img), "%s/oom.%s", argv[optind + 1], fmt_name);
    img_path = img;
    fd = open(base, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0 || close(fd) < 0) {
        perror("qboom: base.raw");
        return 1;
    }
    for (n = 1; injected; n = n < first ? n + 1 : n + step) {
        last = n;
        if (!run_once(n, base, qemu_img, &injected)) {
            bad++;
        }
        runs++;
        if (n == 1 && !injected) {
            printf("SKIP: the library has no allocation hook (build it with make check-oom)\n");
            return 77;
        }
    }
    printf("%s: %lu runs, a complete run makes fewer than %lu allocations, %lu runs failed\n",
           fmt_name, runs, last, bad);
    return bad ? 1 : 0;
}
