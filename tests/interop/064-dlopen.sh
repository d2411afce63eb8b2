#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 064-dlopen.sh: libqblock.so.1 loads with dlopen, dlsym finds every function
# the public headers declare (tests/headers/dlopen.c names them all; the list
# is compared with the headers so a new function cannot be forgotten there),
# calls through the pointers work, and dlclose succeeds.

set -eu

BUILDDIR=${BUILDDIR:-$SRCDIR}
CC=${CC:-cc}
inc=$SRCDIR/include/libqblock
lib=$BUILDDIR/libqblock.so.1

if ! command -v "${CC%% *}" >/dev/null 2>&1; then
    echo "SKIP: no C compiler ($CC)"
    exit 77
fi
if [ ! -e "$lib" ]; then
    echo "FAIL: $lib was not built" >&2
    exit 1
fi

# shellcheck disable=SC2086
# TEST_CFLAGS/TEST_LDFLAGS: a sanitized library needs the sanitizer runtime
# in the program that loads it.
$CC -std=gnu11 -Wall -Wextra -Werror ${TEST_CFLAGS:-} -I"$inc" -o "$TEST_DIR/dlopen" \
    "$SRCDIR/tests/headers/dlopen.c" -ldl ${TEST_LDFLAGS:-}

# The program must not depend on libqblock at link time.
if readelf -d "$TEST_DIR/dlopen" | grep -q 'libqblock'; then
    echo "FAIL: the dlopen test program links libqblock directly" >&2
    exit 1
fi

if ! "$TEST_DIR/dlopen" "$lib" >"$TEST_DIR/resolved"; then
    echo "FAIL: the dlopen test program failed" >&2
    exit 1
fi

grep -hv '^[[:space:]]*#' "$inc"/*.h | tr '\n' ' ' | tr ';' '\n' |
    sed -n 's/.*LIBQBLOCK_EXPORT[^(]*[^A-Za-z0-9_]\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' |
    LC_ALL=C sort >"$TEST_DIR/declared"
LC_ALL=C sort "$TEST_DIR/resolved" >"$TEST_DIR/resolved.sorted"
if ! diff -u "$TEST_DIR/declared" "$TEST_DIR/resolved.sorted" >&2; then
    echo "FAIL: tests/headers/dlopen.c does not resolve exactly the declared functions" \
         "(- declared only, + resolved only)" >&2
    exit 1
fi
echo "$(wc -l <"$TEST_DIR/resolved") functions resolved through dlsym" >&2
