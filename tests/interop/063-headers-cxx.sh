#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 063-headers-cxx.sh: the public headers compile as C++ (-std=c++11 and
# c++17, -pedantic -Werror), and tests/headers/header-cxx.cc links against
# and runs with the built libqblock.so (which proves extern "C" linkage).

set -eu

BUILDDIR=${BUILDDIR:-$SRCDIR}
CXX=${CXX:-g++}
inc=$SRCDIR/include/libqblock
rc=0

if ! command -v "${CXX%% *}" >/dev/null 2>&1; then
    echo "SKIP: no C++ compiler ($CXX)"
    exit 77
fi
if [ ! -e "$BUILDDIR/libqblock.so" ]; then
    echo "FAIL: $BUILDDIR/libqblock.so was not built" >&2
    exit 1
fi

for std in c++11 c++17; do
    for h in "$inc"/*.h; do
        printf '#include <%s>\n' "$(basename "$h")" >"$TEST_DIR/one.cc"
        # shellcheck disable=SC2086
        if ! $CXX -std=$std -pedantic -Wall -Wextra -Werror -Wundef -Wshadow -Wold-style-cast \
                -Wzero-as-null-pointer-constant -I"$inc" -c -o /dev/null "$TEST_DIR/one.cc" \
                2>"$TEST_DIR/err"; then
            echo "FAIL: $(basename "$h") does not compile alone as $std:" >&2
            cat "$TEST_DIR/err" >&2
            rc=1
        fi
    done
    # shellcheck disable=SC2086
    if ! $CXX -std=$std -pedantic -Wall -Wextra -Werror ${TEST_CFLAGS:-} -I"$inc" \
            -o "$TEST_DIR/header-cxx-$std" "$SRCDIR/tests/headers/header-cxx.cc" \
            -L"$BUILDDIR" -lqblock ${TEST_LDFLAGS:-} 2>"$TEST_DIR/err"; then
        echo "FAIL: tests/headers/header-cxx.cc does not build as $std:" >&2
        cat "$TEST_DIR/err" >&2
        rc=1
        continue
    fi
    if ! LD_LIBRARY_PATH=$BUILDDIR "$TEST_DIR/header-cxx-$std" >&2; then
        echo "FAIL: header-cxx built as $std failed to run" >&2
        rc=1
    fi
done
exit $rc
