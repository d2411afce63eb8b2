#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 103-qcow2-snapshots.sh: internal snapshots QEMU takes are never changed by
# writes through libqblock. An image gets data (plain, compressed and zero
# clusters), `qemu-img snapshot -c`, more data and a second snapshot; then
# thousands of random writes and discards go through the public API. After
# that `qemu-img check` is clean, the snapshot table is intact, the active
# state equals the writer's mirror, and `qemu-img snapshot -a` brings each
# snapshot back byte for byte; deleting a snapshot with qemu-img afterwards
# leaves a clean image too (the COPIED flags and refcounts were right).

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

build_helper STRESS qbstress

clean_check() {
    "$QEMU_IMG" check "$1" >check.out 2>&1 || {
        sed 's/^/    /' check.out >&2
        fail "$2: qemu-img check reported problems"
    }
    grep -q "No errors were found on the image." check.out || fail "$2: check not clean"
}

# case NAME OPTS SEED
snap_case() {
    local name=$1 opts=$2 seed=$3 b
    rm -f img.qcow2 s1.raw s2.raw mirror.raw
    run "$QEMU_IMG" create -q -f qcow2 ${opts:+-o "$opts"} img.qcow2 16M
    "$QEMU_IO" -f qcow2 -c 'write -P 0x11 0 3M' -c 'write -c -P 0x12 4M 256k' \
        -c 'write -z 6M 128k' -c 'write -P 0x13 8M 1M' img.qcow2 >/dev/null ||
        fail "$name: qemu-io"
    run "$QEMU_IMG" snapshot -c s1 img.qcow2
    run "$QEMU_IMG" convert -O raw img.qcow2 s1.raw
    "$QEMU_IO" -f qcow2 -c 'write -P 0x21 1M 1M' -c 'write -P 0x22 12M 2M' img.qcow2 >/dev/null ||
        fail "$name: qemu-io"
    run "$QEMU_IMG" snapshot -c s2 img.qcow2
    run "$QEMU_IMG" convert -O raw img.qcow2 s2.raw
    cp s2.raw mirror.raw
    run "$STRESS" -s "$seed" -n 1500 -m 300000 -F 60 -d 8 -r 500 img.qcow2 mirror.raw
    clean_check img.qcow2 "$name: after the writes"
    "$QEMU_IMG" compare -q -f qcow2 -F raw img.qcow2 mirror.raw ||
        fail "$name: the active state differs from the mirror"
    run "$QEMU_IMG" snapshot -l img.qcow2
    for b in s1 s2; do
        grep -q " $b " run.out || fail "$name: snapshot $b is missing from the list"
    done
    for b in s1 s2; do
        run "$QEMU_IMG" snapshot -a $b img.qcow2
        "$QEMU_IMG" compare -q -f qcow2 -F raw img.qcow2 $b.raw ||
            fail "$name: snapshot $b does not read as when it was taken"
        clean_check img.qcow2 "$name: after applying $b"
    done
    run "$QEMU_IMG" snapshot -d s1 img.qcow2
    clean_check img.qcow2 "$name: after deleting s1"
    "$QEMU_IMG" compare -q -f qcow2 -F raw img.qcow2 s2.raw || fail "$name: s2 state changed"
    echo "$name: snapshots intact after 1500 operations, check clean"
}

snap_case "v3" "" 21
snap_case "v2" "compat=0.10" 22
snap_case "4k clusters" "cluster_size=4096" 23
snap_case "extended L2" "extended_l2=on" 24
snap_case "8-bit refcounts" "refcount_bits=8" 25
