/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-replay.c: runs the fuzz workload over saved inputs without libFuzzer,
 * so that `make check` (interop 500) replays every seed and regression input
 * in an ordinary gcc build (under ASan too, with `make check-asan`).
 *
 * Usage: fuzz-replay [-o] FORMAT FILE|FOLDER...  (FORMAT as fuzz-target.h
 * says; "probe" for ""). Prints "FORMAT: N inputs" and exits 0 when every
 * input ran; a crash or a sanitizer report is the failure. With -o every
 * input must also open (seeds are valid images: this checks that the
 * workload really runs the driver, not only its refusals).
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz-target.h"

static bool must_open;

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;
    int ret = -1;

    if (!f) {
        perror(path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)len + 1);
        if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
            fuzz_one(buf, (size_t)len);
            ret = 0;
            if (must_open && fuzz_last_open_error < 0) {
                fprintf(stderr, "%s: does not open: %s\n", path, strerror(-fuzz_last_open_error));
                ret = -1;
            }
        }
    }
    if (ret < 0) {
        fprintf(stderr, "%s: cannot read\n", path);
    }
    free(buf);
    fclose(f);
    return ret;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay @path, or every regular file in it (sorted, not recursive). Returns inputs run or -1. */
static int replay_path(const char *path)
{
    struct stat st;
    struct dirent *de;
    char **names = NULL;
    int n = 0, count = 0;
    DIR *d;

    if (stat(path, &st) < 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return replay_file(path) < 0 ? -1 : 1;
    }
    d = opendir(path);
    if (!d) {
        perror(path);
        return -1;
    }
    while ((de = readdir(d))) {
        char **nn;
        if (de->d_name[0] == '.') {
            continue;
        }
        nn = realloc(names, sizeof(*names) * (size_t)(n + 1));
        if (!nn || asprintf(&nn[n], "%s/%s", path, de->d_name) < 0) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        names = nn;
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(*names), compare_names);
    for (int i = 0; i < n; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(names[i]) < 0) {
                count = -1;
            } else if (count >= 0) {
                count++;
            }
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    int total = 0;

    if (argc > 1 && strcmp(argv[1], "-o") == 0) {
        must_open = true;
        argv++;
        argc--;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: fuzz-replay [-o] FORMAT|probe FILE|FOLDER...\n");
        return 2;
    }
    fuzz_format = strcmp(argv[1], "probe") == 0 ? "" : argv[1];
    for (int i = 2; i < argc; i++) {
        int n = replay_path(argv[i]);
        if (n < 0) {
            return 1;
        }
        total += n;
    }
    printf("%s: %d inputs\n", argv[1], total);
    return 0;
}
