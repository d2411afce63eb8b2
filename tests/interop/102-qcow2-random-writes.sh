#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 102-qcow2-random-writes.sh: qcow2 images libqblock creates (every cluster
# geometry and feature this driver writes, with and without backing files,
# a backing file shorter than the image, and a qcow2 backing file) take
# thousands of seeded random writes of any size and alignment, discards,
# flushes and reopens through the public API (tests/helpers/qbstress.c, which
# keeps a raw mirror with plain pwrite); then `qemu-img check` finds no
# errors and no leaks, `qemu-img compare` finds the image equal to the
# mirror, and `qblock-img map --output=json` equals QEMU's map.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

build_helper STRESS qbstress

norm_map() {
    sed -E 's/"depth": [0-9]+, "present": false/"depth": 0, "present": false/'
}

size=24M
run "$QEMU_IMG" create -q -f raw base.raw $size
qio_ok base.raw "write -P 0xa5 0 $size"
run "$QEMU_IMG" create -q -f raw short.raw 7M
qio_ok short.raw "write -P 0x5a 0 7M"
run "$QEMU_IMG" create -q -f qcow2 base.qcow2 $size
"$QEMU_IO" -f qcow2 -c 'write -P 0x77 0 10M' -c 'write -c -P 0x78 12M 2M' -c 'write -z 16M 1M' \
    base.qcow2 >/dev/null || fail "qemu-io on base.qcow2"

# case NAME OPTS BACKING SEED OPS [STRESS ARGS...]
stress_case() {
    local name=$1 opts=$2 backing=$3 seed=$4 ops=$5 bargs=()
    shift 5
    rm -f img.qcow2 mirror.raw
    case $backing in
        raw)   bargs=(-b base.raw -F raw) ;;
        short) bargs=(-b short.raw -F raw) ;;
        qcow2) bargs=(-b base.qcow2 -F qcow2) ;;
    esac
    run qbi create -q -f qcow2 ${opts:+-o "$opts"} "${bargs[@]}" img.qcow2 $size
    run "$QEMU_IMG" convert -O raw img.qcow2 mirror.raw
    run "$STRESS" -s "$seed" -n "$ops" -m 400000 -F 50 -d 8 -r 700 "$@" img.qcow2 mirror.raw
    "$QEMU_IMG" check img.qcow2 >check.out 2>&1 || {
        sed 's/^/    /' check.out >&2
        fail "$name: qemu-img check reported problems"
    }
    grep -q "No errors were found on the image." check.out || fail "$name: check not clean"
    "$QEMU_IMG" compare -q -f qcow2 -F raw img.qcow2 mirror.raw || fail "$name: contents differ"
    run qbi map -f qcow2 --output=json img.qcow2
    norm_map <run.out >ours.json
    "$QEMU_IMG" map -f qcow2 --output=json img.qcow2 | norm_map >theirs.json
    same_output "$name: map" theirs.json ours.json
    echo "$name: $ops operations, qemu-img check clean, contents and map as expected"
}

stress_case "v3 defaults" "" none 1 2000
stress_case "v2" "compat=0.10" none 2 1500
stress_case "512-byte clusters" "cluster_size=512" none 3 1000
stress_case "4k clusters, 1-bit refcounts" "cluster_size=4096,refcount_bits=1" none 4 1500
stress_case "2M clusters" "cluster_size=2M" none 5 600
stress_case "64-bit refcounts, 1k clusters" "refcount_bits=64,cluster_size=1024" none 6 800
stress_case "lazy refcounts" "lazy_refcounts=on" raw 7 1500
stress_case "extended L2 over raw" "extended_l2=on" raw 8 1500
stress_case "extended L2, 32k clusters over qcow2" "extended_l2=on,cluster_size=32768" qcow2 9 1500
stress_case "v3 over a short raw" "" short 10 1500
stress_case "v2 over raw" "compat=0.10" raw 11 1500
stress_case "v3 over qcow2 (compressed, zero clusters)" "" qcow2 12 1500
stress_case "metadata preallocation" "preallocation=metadata" none 13 1000
stress_case "falloc preallocation, 16k clusters" "preallocation=falloc,cluster_size=16k" none 14 1000
