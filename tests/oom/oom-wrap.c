/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* oom-wrap.c: fails the Nth allocation made by libqblock's own code, for the out-of-memory test build. */

/*
 * Linked into libqblock.so only by `make check-oom` (build-oom/), together
 * with -Wl,--wrap=malloc and the like: the linker then sends the library's
 * own calls (and only those: not libc's, zlib's or the program's) here,
 * and __real_malloc reaches the allocator (ASan's, in that build).
 *
 * QB_OOM_FAIL_AT=N (N >= 1) fails the Nth allocation counted in the
 * process, once; unset or 0 counts without failing. When it fails, one
 * byte is written to the file descriptor QB_OOM_NOTIFY_FD, so that the
 * driver (tests/helpers/qboom.c) knows the run met its injected failure.
 * The environment is read on every call, never cached, so a process that
 * sets it after fork() is obeyed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/util.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
int __real_vasprintf(char **strp, const char *fmt, va_list ap);

HIDDEN void *__wrap_malloc(size_t size);
HIDDEN void *__wrap_calloc(size_t n, size_t size);
HIDDEN void *__wrap_realloc(void *p, size_t size);
HIDDEN char *__wrap_strdup(const char *s);
HIDDEN char *__wrap_strndup(const char *s, size_t n);
HIDDEN int __wrap_posix_memalign(void **p, size_t align, size_t size);
HIDDEN void *__wrap_aligned_alloc(size_t align, size_t size);
HIDDEN int __wrap_vasprintf(char **strp, const char *fmt, va_list ap);
HIDDEN int __wrap_asprintf(char **strp, const char *fmt, ...);

static unsigned long oom_count;

/* True when this allocation is the one to fail. */
static bool oom_fail(void)
{
    const char *at = getenv("QB_OOM_FAIL_AT");
    const char *fd = getenv("QB_OOM_NOTIFY_FD");
    unsigned long n = __atomic_add_fetch(&oom_count, 1, __ATOMIC_SEQ_CST);

    if (!at || strtoul(at, NULL, 10) != n) {
        return false;
    }
    if (fd && write(atoi(fd), "!", 1) < 0) {
        /* The driver then sees no injection and reports the run as unchecked. */
    }
    errno = ENOMEM;
    return true;
}

void *__wrap_malloc(size_t size)
{
    return oom_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return oom_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return oom_fail() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
    return oom_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return oom_fail() ? NULL : __real_strndup(s, n);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
    return oom_fail() ? ENOMEM : __real_posix_memalign(p, align, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    return oom_fail() ? NULL : __real_aligned_alloc(align, size);
}

int __wrap_vasprintf(char **strp, const char *fmt, va_list ap)
{
    return oom_fail() ? -1 : __real_vasprintf(strp, fmt, ap);
}

int __wrap_asprintf(char **strp, const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = __wrap_vasprintf(strp, fmt, ap);
    va_end(ap);
    return ret;
}
