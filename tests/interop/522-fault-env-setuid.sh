#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 522-fault-env-setuid.sh: the fault-injection variables are for tests
# only, and a set-user-ID program linking the library must ignore them:
# otherwise whoever starts it could fail its I/O, stop its flushes reaching
# the disk (LIBQBLOCK_FAULT_NOSYNC) or make it append to any file
# (LIBQBLOCK_FAULT_LOG). The same program (check_int_fault's child mode,
# with the library linked in) runs with the variables set, first plainly,
# where they apply, then set-user-ID nobody, where they must not.
# Needs root (to give the copy to another user) and a folder mounted
# without nosuid; otherwise it skips.

source "$SRCDIR/tests/interop/common.sh"

child=${BUILDDIR:?}/tests/unit/check_int_fault
[ -x "$child" ] || fail "$child is not built"
[ "$(id -u)" = 0 ] || skip "needs root to make a set-user-ID copy owned by another user"
id nobody >/dev/null 2>&1 || skip "no user 'nobody'"

# The set-user-ID copy runs as nobody, who cannot enter the runner's
# private scratch folder: use a world-readable folder of its own.
dir=$(mktemp -d "${TMPDIR:-/tmp}/qblock-522.XXXXXX") || fail "mktemp"
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
head -c 4096 /dev/zero >"$dir/img.raw"
chmod 644 "$dir/img.raw"
cp "$child" "$dir/plain"
cp "$child" "$dir/suid"
chown nobody "$dir/suid"
chmod 4755 "$dir/suid"

run_child() {
    QBT_FAULT_ENV_CHILD=$dir/img.raw LIBQBLOCK_FAULT_INJECT=read:1:eio \
        LIBQBLOCK_FAULT_LOG=$dir/fault.log "$dir/$1" || fail "$1 child exited $?"
}

echo "== plain: the variables apply"
out=$(run_child plain) || exit 1
note "$out"
case $out in
    "euid=0 node=faulty read=Input/output error") echo "first read failed as injected" ;;
    *) fail "plain child: '$out'" ;;
esac
grep -q "read" "$dir/fault.log" || fail "the injection was not logged"
echo "the injection was logged"
rm -f "$dir/fault.log"

echo "== set-user-ID: the variables are ignored"
out=$(run_child suid) || exit 1
note "$out"
case $out in
    euid=0\ *) skip "$dir is mounted nosuid: the copy ran as root" ;;
    "euid=$(id -u nobody) node=file read=ok") echo "plain file node, read succeeded" ;;
    *) fail "set-user-ID child: '$out'" ;;
esac
[ ! -e "$dir/fault.log" ] || fail "the set-user-ID child wrote $dir/fault.log"
echo "no log written"
