#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 060-consumer.sh: `make install DESTDIR=... PREFIX=/usr` installs a library,
# headers and a pkg-config file that an out-of-tree program
# (tests/consumer/consumer.c) builds against with pkg-config alone and runs
# with; the install leaves the build untouched, and `make uninstall` removes
# everything it installed.
#
# Standard output is the consumer's transcript plus a few fixed lines
# (compared with 060-consumer.out); diagnostics go to standard error.

set -eu

BUILDDIR=${BUILDDIR:-$SRCDIR}
CC=${CC:-cc}
root=$TEST_DIR/root

for tool in make pkg-config "${CC%% *}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed"
        exit 77
    fi
done
if [ ! -e "$BUILDDIR/libqblock.so.1" ]; then
    echo "FAIL: $BUILDDIR/libqblock.so.1 was not built" >&2
    exit 1
fi

# Run make as a fresh top-level make: when the runner itself was started by
# make, its jobserver and flags must not leak into the nested invocation.
submake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -s -C "$BUILDDIR" "$@"
}

# Installing must not rebuild anything: the built artefacts keep their times.
stamp() {
    (cd "$BUILDDIR" && find . -maxdepth 2 \( -name 'libqblock.so*' -o -name 'libqblock.pc' \
        -o -name 'libqblock-internal.a' -o -name 'qblock-img*' \) -printf '%p %T@\n' | LC_ALL=C sort)
}
before=$(stamp)
submake install DESTDIR="$root" PREFIX=/usr >&2
after=$(stamp)
if [ "$before" != "$after" ]; then
    echo "FAIL: make install rebuilt or changed build outputs (was the build out of date," \
         "sources edited after make?); the install must not disturb the build:" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    exit 1
fi

# Where things went. Everything is under DESTDIR, nothing outside /usr.
outside=$(cd "$root" && find . -mindepth 1 -maxdepth 1 ! -name usr)
if [ -n "$outside" ]; then
    echo "FAIL: make install PREFIX=/usr wrote outside \$DESTDIR/usr: $outside" >&2
    exit 1
fi
mapfile -t pcs < <(find "$root" -name libqblock.pc)
if [ "${#pcs[@]}" -ne 1 ]; then
    echo "FAIL: expected one installed libqblock.pc, found ${#pcs[@]}" >&2
    exit 1
fi
pcdir=$(dirname "${pcs[0]}")
for h in libqblock.h libqblock-types.h libqblock-error.h; do
    if [ ! -f "$root/usr/include/libqblock/$h" ]; then
        echo "FAIL: $h is not installed in /usr/include/libqblock" >&2
        exit 1
    fi
done
echo "headers installed in /usr/include/libqblock"

# pkg-config sees only the installed file, with paths moved under DESTDIR.
export PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_PATH='' PKG_CONFIG_SYSROOT_DIR=$root
pkg-config --exists libqblock
version=$(pkg-config --modversion libqblock)
[ -n "$version" ] || { echo "FAIL: libqblock.pc has no version" >&2; exit 1; }
# pkg-config ends its output with a blank; compare without it.
cflags=$(pkg-config --cflags libqblock | sed 's/[[:space:]]*$//')
libs=$(pkg-config --libs libqblock | sed 's/[[:space:]]*$//')
echo "pkg-config: version $version, cflags '$cflags', libs '$libs'" >&2
prefix=$(PKG_CONFIG_SYSROOT_DIR='' pkg-config --variable=prefix libqblock)
if [ "$prefix" != /usr ]; then
    echo "FAIL: libqblock.pc says prefix=$prefix, installed with PREFIX=/usr" >&2
    exit 1
fi
if [ "$cflags" != "-I$root/usr/include/libqblock" ]; then
    echo "FAIL: Cflags '$cflags' do not point at the installed headers" >&2
    exit 1
fi
libdir=$(PKG_CONFIG_SYSROOT_DIR='' pkg-config --variable=libdir libqblock)
case $libdir in
    /usr/*) ;;
    *) echo "FAIL: libdir=$libdir is not under the prefix /usr" >&2; exit 1 ;;
esac
if [ ! -f "$root$libdir/libqblock.so.1.0.0" ] || [ "$(readlink "$root$libdir/libqblock.so.1")" != libqblock.so.1.0.0 ] ||
        [ "$(readlink "$root$libdir/libqblock.so")" != libqblock.so.1 ]; then
    echo "FAIL: $libdir does not hold libqblock.so -> libqblock.so.1 -> libqblock.so.1.0.0" >&2
    ls -l "$root$libdir" >&2 || true
    exit 1
fi
echo "library installed with its soname links"

# Build the consumer with nothing but what pkg-config says.
# shellcheck disable=SC2086
# TEST_CFLAGS/TEST_LDFLAGS carry a sanitized build's flags (its library needs
# the sanitizer runtime in the program); they are empty otherwise.
$CC -std=c99 -pedantic -Wall -Wextra -Werror ${TEST_CFLAGS:-} $cflags -o "$TEST_DIR/consumer" \
    "$SRCDIR/tests/consumer/consumer.c" $libs ${TEST_LDFLAGS:-}
echo "consumer built with pkg-config"

# Run it against the installed copy only (not the build folder's).
run_installed() {
    LD_LIBRARY_PATH=$root$libdir "$@"
}
if ! run_installed ldd "$TEST_DIR/consumer" | grep -q "=> $root$libdir/libqblock.so.1 "; then
    echo "FAIL: the consumer does not load the installed libqblock.so.1:" >&2
    run_installed ldd "$TEST_DIR/consumer" >&2
    exit 1
fi
run_installed "$TEST_DIR/consumer" "$TEST_DIR/consumer.raw"

# Check the image independently of libqblock: size and the message bytes.
size=$(stat -c %s "$TEST_DIR/consumer.raw")
[ "$size" = 1048576 ] || { echo "FAIL: the image is $size bytes" >&2; exit 1; }
msg=$(dd if="$TEST_DIR/consumer.raw" bs=1 skip=4099 count=18 status=none)
[ "$msg" = "libqblock consumer" ] || { echo "FAIL: the image holds '$msg' at 4099" >&2; exit 1; }
if [ -n "${QEMU_IMG:-}" ]; then
    "$QEMU_IMG" info -f raw --output=json "$TEST_DIR/consumer.raw" | grep -q '"virtual-size": 1048576' ||
        { echo "FAIL: qemu-img does not see a 1 MiB raw image" >&2; exit 1; }
fi
echo "image checked outside libqblock"

# Uninstalling removes every file the install put there.
submake uninstall DESTDIR="$root" PREFIX=/usr >&2
left=$(find "$root" \( -type f -o -type l \) | sed "s|^$root||")
if [ -n "$left" ]; then
    echo "FAIL: make uninstall left files behind:" >&2
    echo "$left" >&2
    exit 1
fi
echo "uninstall removed every installed file"
