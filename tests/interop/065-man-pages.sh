#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 065-man-pages.sh: the manual pages the build generates are complete and
# well formed, and `man` finds them after `make install`:
#  - libqblock(3) has an entry for every function the public header exports,
#    and qblock-img(1) names every command `qblock-img --help` lists;
#  - groff renders both without a warning;
#  - after `make install DESTDIR=...`, `man -M` shows both pages, and
#    `make uninstall` removes them.

set -eu
source "$SRCDIR/tests/interop/common.sh"
BUILDDIR=${BUILDDIR:-$SRCDIR}
for tool in groff man make; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
lib3=$BUILDDIR/docs/libqblock.3
img1=$BUILDDIR/docs/qblock-img.1
[ -s "$lib3" ] || fail "$lib3 was not built"
[ -s "$img1" ] || fail "$img1 was not built"

grep -h "LIBQBLOCK_EXPORT" -A1 "$SRCDIR/include/libqblock/libqblock.h" |
    grep -o "qb_[a-z0-9_]*(" | tr -d '(' | LC_ALL=C sort -u >exported
sed -n 's/^\.SS //p' "$lib3" | sed 's/, /\n/g' | LC_ALL=C sort -u >documented
[ -s exported ] || fail "no exported function found in the header"
same_output "functions documented in libqblock(3)" exported documented
echo "libqblock(3): $(wc -l <documented) functions, every exported one"

qbi --help | sed -n '/^Command syntax:/,/^$/p' | awk 'NF > 1 || /^  [a-z]/ { print $1 }' |
    grep -v '^Command' >commands
[ "$(wc -l <commands)" -ge 10 ] || fail "too few commands in --help: $(cat commands)"
while read -r cmd; do
    grep -q "^  $cmd\\b" "$img1" || fail "qblock-img(1) lacks the $cmd command"
done <commands
echo "qblock-img(1): every command of --help"

for page in "$lib3" "$img1"; do
    LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>groff.err || fail "groff failed on $page"
    [ ! -s groff.err ] || { cat groff.err >&2; fail "groff warns about $page"; }
done
echo "groff renders both pages without a warning"

root=$TEST_DIR/root
submake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -s -C "$BUILDDIR" "$@"
}
submake install DESTDIR="$root" PREFIX=/usr >&2
MANWIDTH=80 man -M "$root/usr/share/man" 3 libqblock 2>/dev/null | grep -q "qb_snapshot_create" ||
    fail "man 3 libqblock does not show the installed page"
MANWIDTH=80 man -M "$root/usr/share/man" 1 qblock-img 2>/dev/null | grep -q "convert" ||
    fail "man 1 qblock-img does not show the installed page"
echo "man finds both pages after make install"
submake uninstall DESTDIR="$root" PREFIX=/usr >&2
left=$(find "$root/usr/share/man" -type f 2>/dev/null)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "make uninstall removes them"
