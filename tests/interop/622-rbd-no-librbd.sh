#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 622-rbd-no-librbd.sh: libqblock loads librbd only when an RBD location is
# first used, so a machine without Ceph's libraries (or with a broken copy)
# still runs everything else, and an RBD location there fails with
# QB_ERR_NOT_SUPPORTED and a message naming what is missing, never a crash.
# The broken copies are put in front of the real one with LD_LIBRARY_PATH,
# which dlopen searches first: an empty file, a library without librbd's
# functions, and a library whose own dependency is missing. A build without
# librbd is checked for its own message instead. Needs no Ceph cluster.
# (061 checks that libqblock.so itself links no Ceph library.)

source "$SRCDIR/tests/interop/common.sh"
build_helper QBRBD qbrbd
cc=${CC:-cc}

if ! grep -q "^#define CONFIG_RBD 1" "$BUILDDIR/config-host.h"; then
    [ "${CI:-}" = true ] && fail "built without librbd (scripts/install-deps installs librbd-dev)"
    out=$("$QBRBD" rbd img size) && fail "qbrbd size succeeded without librbd: $out"
    grep -q "^failed: QB_ERR_NOT_SUPPORTED: .*built without librbd" <<<"$out" \
        || fail "a build without librbd: $out"
    skip "built without librbd (its message checked; the loading cases need librbd)"
fi

head -c 1M /dev/zero >plain.raw

# expect_missing DIR WHY: with DIR in front of the library path, RBD
# locations fail through the API and the tool with a message ending in WHY,
# while a plain file still opens.
expect_missing() {
    local dir=$1 why=$2 out rc saved=${LD_LIBRARY_PATH:-}
    export LD_LIBRARY_PATH=$TEST_DIR/$dir${saved:+:$saved}

    for mode in "size" "create 4M 0"; do
        rc=0
        # shellcheck disable=SC2086  # MODE and its arguments
        out=$("$QBRBD" rbd img $mode) || rc=$?
        [ $rc -eq 1 ] || fail "qbrbd $mode with $dir exited $rc: $out"
        grep -q "^failed: QB_ERR_NOT_SUPPORTED: qb_[a-z]*: 'rbd:rbd/img': RBD needs librbd: $why" <<<"$out" \
            || fail "qbrbd $mode with $dir: $out"
        note "$dir: $out"
    done
    run_fails qbi info -f raw rbd:rbd/img
    grep -q "RBD needs librbd: $why" run.err || fail "qblock-img info with $dir: $(cat run.err)"
    run_fails qbi create -f rbd rbd:rbd/img 4M
    grep -q "RBD needs librbd: $why" run.err || fail "qblock-img create with $dir: $(cat run.err)"
    run qbi info plain.raw
    grep -q "^virtual size: 1 MiB" run.out || fail "qblock-img info plain.raw with $dir: $(cat run.out)"
    echo "$dir: NOT_SUPPORTED through the API and the tool; a plain file still opens"
    LD_LIBRARY_PATH=$saved
}

command -v "${cc%% *}" >/dev/null 2>&1 || skip "no C compiler ($cc) to build the stand-in libraries"

mkdir empty nofuncs nodep
: >empty/librbd.so.1
expect_missing empty "cannot load librbd.so.1 (.*librbd.so.1: file too short)"

# shellcheck disable=SC2086
$cc -shared -fPIC -o nofuncs/librbd.so.1 -x c /dev/null || fail "cannot build a stand-in library"
expect_missing nofuncs "librbd.so.1 has no rados_conf_get"

# librbd present but librados (here: a stand-in) gone.
# shellcheck disable=SC2086
$cc -shared -fPIC -o libqbt-gone.so -x c /dev/null || fail "cannot build a stand-in library"
# shellcheck disable=SC2086
$cc -shared -fPIC -o nodep/librbd.so.1 -x c /dev/null -L. -Wl,--no-as-needed -lqbt-gone \
    || fail "cannot build a stand-in library"
rm libqbt-gone.so
expect_missing nodep "cannot load librbd.so.1 (libqbt-gone.so: cannot open shared object file"
