#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 062-headers.sh: the public headers compile as installed (#include
# <libqblock.h>) under -std=c99 and -std=c11 with -pedantic -Werror and a set
# of strict warnings users commonly enable, and tests/headers/header-c.c links
# against and runs with the built libqblock.so.

set -eu

BUILDDIR=${BUILDDIR:-$SRCDIR}
CC=${CC:-cc}
inc=$SRCDIR/include/libqblock
rc=0

if ! command -v "${CC%% *}" >/dev/null 2>&1; then
    echo "SKIP: no C compiler ($CC)"
    exit 77
fi
if [ ! -e "$BUILDDIR/libqblock.so" ]; then
    echo "FAIL: $BUILDDIR/libqblock.so was not built" >&2
    exit 1
fi

strict="-pedantic -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wundef
        -Wshadow -Wredundant-decls -Wcast-qual -Wconversion -Wsign-conversion"

for std in c99 c11 gnu99 gnu11 c17; do
    # Each header alone, as the first and only include (the declaration after
    # it keeps a header of only macros from being an empty translation unit).
    for h in "$inc"/*.h; do
        printf '#include <%s>\nextern int header_test_anchor;\n' "$(basename "$h")" >"$TEST_DIR/one.c"
        # shellcheck disable=SC2086
        if ! $CC -std=$std $strict -I"$inc" -c -o /dev/null "$TEST_DIR/one.c" \
                2>"$TEST_DIR/err"; then
            echo "FAIL: $(basename "$h") does not compile alone with -std=$std:" >&2
            cat "$TEST_DIR/err" >&2
            rc=1
        fi
    done
    # The whole program: every declaration used, linked and run.
    # shellcheck disable=SC2086
    if ! $CC -std=$std -pedantic -Wall -Wextra -Werror ${TEST_CFLAGS:-} -I"$inc" \
            -o "$TEST_DIR/header-c-$std" "$SRCDIR/tests/headers/header-c.c" \
            -L"$BUILDDIR" -lqblock ${TEST_LDFLAGS:-} 2>"$TEST_DIR/err"; then
        echo "FAIL: tests/headers/header-c.c does not build with -std=$std:" >&2
        cat "$TEST_DIR/err" >&2
        rc=1
        continue
    fi
    if ! LD_LIBRARY_PATH=$BUILDDIR "$TEST_DIR/header-c-$std" >"$TEST_DIR/out-$std"; then
        echo "FAIL: header-c built with -std=$std failed to run" >&2
        rc=1
    fi
    echo "-std=$std: $(cat "$TEST_DIR/out-$std")" >&2
done

# The headers need nothing but their own folder: no block-layer header, no
# config-host.h, nothing from the build tree.
if grep -lE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](block/|config-host|util\.h)' \
        "$inc"/*.h >"$TEST_DIR/leaks" 2>/dev/null; then
    echo "FAIL: public headers include internal headers: $(cat "$TEST_DIR/leaks")" >&2
    rc=1
fi
exit $rc
