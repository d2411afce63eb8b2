#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 020-measure.sh: `qblock-img measure` (qb_measure) prints what qemu-img
# measure 7.2 prints, byte for byte, in human and JSON output, with the same
# exit status: for --size alone and for source images of several formats
# and chains, for raw and qcow2 targets with every layout option that
# changes the sums (cluster size, refcount width, extended L2, compat,
# preallocation), for qcow2 sources with persistent bitmaps, and for the
# usage errors. Only the wording of a few error messages differs; those
# cases compare the exit status alone.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# same_measure ARGS...: both tools, same stdout and exit status (stderr too,
# with the program name normalised, unless STATUS_ONLY is set).
same_measure() {
    local rq=0 rl=0
    "$QEMU_IMG" measure "$@" >q.out 2>q.err || rq=$?
    qbi measure "$@" >l.out 2>l.err || rl=$?
    [ "$rl" -le 128 ] || fail "measure $*: crashed"
    [ "$rq" = "$rl" ] || fail "measure $*: exit status $rl, qemu-img's $rq ($(cat l.err))"
    same_output "measure $*: stdout" q.out l.out
    if [ -z "${STATUS_ONLY:-}" ]; then
        sed -i 's/^qblock-img:/qemu-img:/' l.err
        same_output "measure $*: stderr" q.err l.err
    fi
}

# Sources: a raw file with data, zeros and holes; qcow2 images with data,
# zero clusters and a backing file; a chain; qed and vmdk with data.
run "$QEMU_IMG" create -q -f raw src.raw 24M
qio_ok src.raw "write -P 0x11 0 5M" "write -P 0 6M 1M" "write -P 0x22 9M 100k" \
    "write -P 0x33 20001k 3k"
run "$QEMU_IMG" create -q -f qcow2 base.qcow2 1G
"$QEMU_IO" -f qcow2 -c "write -P 1 0 3M" -c "write -z 8M 4M" -c "write -P 2 700M 64k" \
    base.qcow2 >/dev/null || fail "qemu-io base"
run "$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
"$QEMU_IO" -f qcow2 -c "write -P 3 1M 3M" -c "write -z 700M 64k" -c "write -P 4 900M 4k" \
    top.qcow2 >/dev/null || fail "qemu-io top"
run "$QEMU_IMG" create -q -f qed q.qed 64M
"$QEMU_IO" -f qed -c "write -P 5 1M 2M" q.qed >/dev/null || fail "qemu-io qed"
run "$QEMU_IMG" create -q -f vmdk v.vmdk 64M
"$QEMU_IO" -f vmdk -c "write -P 6 3M 1M" v.vmdk >/dev/null || fail "qemu-io vmdk"
run "$QEMU_IMG" create -q -f qcow2 bm.qcow2 3G
run "$QEMU_IMG" bitmap --add bm.qcow2 first
run "$QEMU_IMG" bitmap --add -g 512k bm.qcow2 a-much-longer-bitmap-name
run "$QEMU_IMG" bitmap --add -g 4k bm.qcow2 fine

for out in human json; do
    for size in 0 3000 1G 100G 1T; do
        same_measure --output=$out -O qcow2 --size $size
        same_measure --output=$out -O raw --size $size
    done
    for opts in cluster_size=512 cluster_size=4k,refcount_bits=1 cluster_size=2M \
                refcount_bits=64 extended_l2=on compat=0.10 preallocation=metadata \
                preallocation=falloc preallocation=full lazy_refcounts=on,cluster_size=16k; do
        same_measure --output=$out -O qcow2 -o "$opts" --size 5G
    done
    for src in src.raw base.qcow2 top.qcow2 q.qed v.vmdk bm.qcow2; do
        same_measure --output=$out -O qcow2 "$src"
        same_measure --output=$out -O qcow2 -o cluster_size=4k "$src"
        same_measure --output=$out -O qcow2 -o compat=0.10 "$src"
        same_measure --output=$out -O raw "$src"
    done
    same_measure --output=$out -O qcow2 -o cluster_size=512,extended_l2=off top.qcow2
    same_measure --output=$out -O qcow2 -f raw src.raw
done
echo "measure: the same figures as qemu-img"

# Usage errors and unsupported targets.
same_measure
same_measure --size 1G src.raw
same_measure -O vmdk --size 1G
same_measure -O vdi src.raw
same_measure -O qcow2 --size -5
same_measure -O raw -o cluster_size=4k --size 1G
same_measure --output=xml --size 1G
same_measure -O qcow2 -o size=5G --size 1G
STATUS_ONLY=1 same_measure -O qcow2 -o cluster_size=3k --size 1G
STATUS_ONLY=1 same_measure -O qcow2 no-such-file.qcow2
echo "measure: the same refusals as qemu-img"
