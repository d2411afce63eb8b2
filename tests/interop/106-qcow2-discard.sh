#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 106-qcow2-discard.sh: discard through libqblock (`qblock-img discard`,
# qb_discard) does to a qcow2 image what qemu-io's discard does to a copy
# of it: whole clusters only (partial ones are left alone, except a
# partial last cluster at the end of the image), v3 clusters then read as
# zeros whether or not a backing file exists, v2 clusters are deallocated
# without a backing file and left alone with one, extended L2 entries get
# their zero bits. The two copies are compared for contents, for the map
# qemu-img prints, and for a clean `qemu-img check`.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

run "$QEMU_IMG" create -q -f raw base.raw 8M
qio_ok base.raw "write -P 0xbb 0 8M"

# case NAME OPTS BACKING(yes|no) SIZE OFFSET LENGTH...
disc_case() {
    local name=$1 opts=$2 backing=$3 size=$4 bargs=() o l
    shift 4
    [ "$backing" = yes ] && bargs=(-b base.raw -F raw)
    rm -f q.qcow2 l.qcow2
    run "$QEMU_IMG" create -q -f qcow2 ${opts:+-o "$opts"} "${bargs[@]}" q.qcow2 "$size"
    "$QEMU_IO" -f qcow2 -c "write -P 0x11 0 $size" -c "write -z 256k 64k" q.qcow2 >/dev/null ||
        fail "$name: qemu-io"
    cp q.qcow2 l.qcow2
    while [ $# -gt 0 ]; do
        o=$1 l=$2
        shift 2
        "$QEMU_IO" -f qcow2 -c "discard $o $l" q.qcow2 >/dev/null || fail "$name: qemu-io discard"
        run qbi discard -q -f qcow2 l.qcow2 "$o" "$l"
    done
    "$QEMU_IMG" compare -q q.qcow2 l.qcow2 || fail "$name: contents differ from QEMU's"
    "$QEMU_IMG" map --output=json q.qcow2 >theirs.json
    "$QEMU_IMG" map --output=json l.qcow2 >ours.json
    same_output "$name: map" theirs.json ours.json
    "$QEMU_IMG" check -q l.qcow2 || fail "$name: check"
    echo "as QEMU: $name"
}

disc_case "v3, aligned" "" no 4M 0 64k 1M 512k
disc_case "v3, unaligned edges" "" no 4M 1000 200000 3000000 70000
disc_case "v3, preallocated zero cluster" "" no 4M 256k 64k
disc_case "v3, unallocated cluster" "" no 8M 6M 1M
disc_case "v3 over raw" "" yes 8M 0 64k 100000 300000 7M 1M
disc_case "v2" "compat=0.10" no 4M 0 64k 1M 512k 100 1000
disc_case "v2 over raw (left alone)" "compat=0.10" yes 4M 0 1M
disc_case "extended L2" "extended_l2=on" no 4M 0 64k 70000 100000
disc_case "extended L2 over raw" "extended_l2=on" yes 8M 0 64k 1M 2M 7M 1M
disc_case "4k clusters" "cluster_size=4096" yes 4M 5000 100000
disc_case "unaligned size, the tail cluster" "" no 4000k 3M 950272
disc_case "unaligned size, v2 tail" "compat=0.10" no 4000k 3968k 32768
disc_case "unaligned size, partial tail start" "" no 4000k 4064232 31768
