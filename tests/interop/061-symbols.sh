#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 061-symbols.sh: libqblock.so.1 exports exactly the qb_* functions that
# include/libqblock/*.h declares with LIBQBLOCK_EXPORT, every one of them at
# version LIBQBLOCK_1.0, with soname libqblock.so.1 and no undefined symbol,
# and links no Ceph library (librbd is loaded on first use).

set -eu

BUILDDIR=${BUILDDIR:-$SRCDIR}
lib=$BUILDDIR/libqblock.so.1
rc=0

fail() {
    echo "FAIL: $*" >&2
    rc=1
}

for tool in nm readelf; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool (binutils) is not installed"
        exit 77
    fi
done
if [ ! -e "$lib" ]; then
    echo "FAIL: $lib was not built" >&2
    exit 1
fi

# The file names the build promises: libqblock.so -> libqblock.so.1 -> libqblock.so.1.0.0.
[ "$(readlink "$BUILDDIR/libqblock.so")" = libqblock.so.1 ] ||
    fail "libqblock.so does not point at libqblock.so.1"
[ "$(readlink "$lib")" = libqblock.so.1.0.0 ] ||
    fail "libqblock.so.1 does not point at libqblock.so.1.0.0"

soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = libqblock.so.1 ] || fail "soname is '$soname', not libqblock.so.1"

# Ceph's libraries are loaded by block/rbd.c when an RBD location is first
# used; linking them would cost every program that loads libqblock their
# start-up (some thirty libraries) and make them a hard dependency.
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\].*/\1/p')
[ -n "$needed" ] || fail "readelf lists no NEEDED library for $lib"
for n in $needed; do
    case $n in
        librbd*|librados*|libceph*) fail "libqblock.so.1 links $n (it must be loaded on first use)" ;;
    esac
done

# Declared: every LIBQBLOCK_EXPORT declaration, even one spread over several
# lines. Preprocessor lines (the macro's own definition) are dropped, the
# rest is joined and cut at each ';'.
grep -hv '^[[:space:]]*#' "$SRCDIR"/include/libqblock/*.h | tr '\n' ' ' | tr ';' '\n' |
    sed -n 's/.*LIBQBLOCK_EXPORT[^(]*[^A-Za-z0-9_]\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' |
    LC_ALL=C sort >"$TEST_DIR/declared"
[ -s "$TEST_DIR/declared" ] || fail "no LIBQBLOCK_EXPORT declaration found in include/libqblock/*.h"
dups=$(uniq -d "$TEST_DIR/declared")
[ -z "$dups" ] || fail "declared twice: $dups"
bad_names=$(grep -v '^qb_' "$TEST_DIR/declared" || true)
[ -z "$bad_names" ] || fail "exported declarations outside the qb_ namespace: $bad_names"

# Exported: defined dynamic symbols with their versions. The version node
# itself is an absolute symbol (type A) and is left out.
nm -D --defined-only --with-symbol-versions "$lib" >"$TEST_DIR/nm"
awk '$2 != "A" { print $3 }' "$TEST_DIR/nm" | LC_ALL=C sort >"$TEST_DIR/exported-versioned"
sed 's/@.*//' "$TEST_DIR/exported-versioned" | LC_ALL=C sort -u >"$TEST_DIR/exported"

if ! diff -u "$TEST_DIR/declared" "$TEST_DIR/exported" >"$TEST_DIR/diff"; then
    fail "exported symbols differ from the declarations (- declared only, + exported only):"
    sed 's/^/    /' "$TEST_DIR/diff" >&2
fi

# Every exported symbol is the default version LIBQBLOCK_1.0 ("@@").
unversioned=$(grep -v '@@LIBQBLOCK_1\.0$' "$TEST_DIR/exported-versioned" || true)
[ -z "$unversioned" ] || fail "symbols without version LIBQBLOCK_1.0: $unversioned"
grep -q ' A LIBQBLOCK_1\.0$' "$TEST_DIR/nm" || fail "no LIBQBLOCK_1.0 version node"
nodes=$(awk '$2 == "A" { print $3 }' "$TEST_DIR/nm" | tr '\n' ' ')
[ "$nodes" = "LIBQBLOCK_1.0 " ] || fail "version nodes are '$nodes', expected only LIBQBLOCK_1.0"

# Every export is a function (no data symbols are part of the ABI).
notfunc=$(readelf --dyn-syms -W "$lib" | awk '$7 != "UND" && $8 ~ /^qb_/ && $4 != "FUNC" { print $8 }')
[ -z "$notfunc" ] || fail "exported symbols that are not functions: $notfunc"

# No undefined symbol is left for the loader to find (the library was linked
# with everything it needs).
if command -v ldd >/dev/null 2>&1; then
    undef=$(ldd -r "$lib" 2>&1 | grep -i 'undefined symbol' || true)
    [ -z "$undef" ] || fail "unresolved symbols: $undef"
fi

echo "$(wc -l <"$TEST_DIR/declared") functions declared and exported at LIBQBLOCK_1.0" >&2
exit $rc
