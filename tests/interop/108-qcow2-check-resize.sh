#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 108-qcow2-check-resize.sh: `qblock-img check` (the driver's bdrv_check
# through qb_check) prints what `qemu-img check` prints and exits as it
# exits, in text and JSON, on clean images (with snapshots, compressed and
# zero clusters) and on copies damaged one field at a time: leaks, refcounts
# too low, unaligned or overlapping tables, missing COPIED flags, broken
# refcount tables. `check -r leaks` and `check -r all` repair what QEMU
# repairs, reporting the same figures, and leave images QEMU finds clean
# with the same contents. `qblock-img resize` grows and shrinks images to
# the very bytes `qemu-img resize` leaves.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# patch FILE OFFSET HEXBYTES
patch() {
    local file=$1 off=$2 hex=$3 esc=""
    while [ -n "$hex" ]; do
        esc+="\\x${hex:0:2}"
        hex=${hex:2}
    done
    printf "$esc" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none || fail "patch $file"
}
be64() { od -An -tu8 --endian=big -j "$2" -N8 "$1" | tr -d ' '; }
hex64() { printf '%016x' "$1"; }

run "$QEMU_IMG" create -q -f qcow2 base.qcow2 16M
"$QEMU_IO" -f qcow2 -c 'write -P 1 0 200k' -c 'write -P 2 2M 64k' -c 'write -c -P 3 4M 128k' \
    -c 'write -z 6M 64k' base.qcow2 >/dev/null || fail "qemu-io"
run "$QEMU_IMG" snapshot -c s1 base.qcow2
"$QEMU_IO" -f qcow2 -c 'write -P 4 0 64k' -c 'write -c -P 5 8M 64k' base.qcow2 >/dev/null ||
    fail "qemu-io"

l1=$(be64 base.qcow2 40)
rt=$(be64 base.qcow2 48)
rb=$(be64 base.qcow2 "$rt")
l2=$(( $(be64 base.qcow2 "$l1") & 0x00fffffffffffe00 ))
e0=$(be64 base.qcow2 "$l2")
d0=$(( e0 & 0x00fffffffffffe00 ))

# damaged NAME OFFSET HEX...: a copy of base.qcow2 with the patches applied.
damaged() {
    local name=$1
    shift
    cp base.qcow2 "$name.qcow2"
    while [ $# -gt 0 ]; do
        patch "$name.qcow2" "$1" "$2"
        shift 2
    done
}

# same_check NAME ARGS...: both tools' check output and status must agree.
same_check() {
    local name=$1 qrc=0 lrc=0
    shift
    "$QEMU_IMG" check "$@" >qemu.txt 2>/dev/null || qrc=$?
    "$QBLOCK_IMG" check "$@" >ours.txt 2>ours.err || lrc=$?
    [ $lrc -le 128 ] || fail "$name: qblock-img check crashed"
    same_output "$name: check $*" qemu.txt ours.txt
    [ $qrc = $lrc ] || fail "$name: check $* exited $lrc, qemu-img $qrc"
}

# case NAME [MODES]: check in text and JSON, then the repairs (default:
# leaks and all) on copies, compared with QEMU's.
check_case() {
    local name=$1 modes=${2:-leaks all} mode
    same_check "$name" "$name.qcow2"
    same_check "$name" --output=json "$name.qcow2"
    for mode in $modes; do
        cp "$name.qcow2" q.qcow2
        cp "$name.qcow2" l.qcow2
        "$QEMU_IMG" check -r $mode q.qcow2 >qemu.txt 2>/dev/null
        "$QBLOCK_IMG" check -r $mode l.qcow2 >ours.txt 2>ours.err
        same_output "$name: check -r $mode" qemu.txt ours.txt
        "$QEMU_IMG" check --output=json q.qcow2 2>/dev/null | sed '/"filename"/d' >qemu.json
        "$QEMU_IMG" check --output=json l.qcow2 2>/dev/null | sed '/"filename"/d' >ours.json
        same_output "$name: state after -r $mode" qemu.json ours.json
    done
    echo "same as qemu-img: $name"
}

cp base.qcow2 clean.qcow2
check_case clean
damaged leak_used $((rb + 2 * (d0 >> 16))) 0002
check_case leak_used
damaged leak_inside $((rb + 2 * 40)) 0001
truncate -s $((41 * 65536)) leak_inside.qcow2
check_case leak_inside
damaged refcount_too_low $((rb + 2 * (d0 >> 16))) 0000
check_case refcount_too_low
damaged l1_unaligned "$l1" "$(hex64 $(( (l2 + 512) | (1 << 63) )))"
check_case l1_unaligned
damaged copied_missing "$l2" "$(hex64 $(( e0 & ~(1 << 63) )))"
check_case copied_missing
damaged copied_missing_l1 "$l1" "$(hex64 "$l2")"
check_case copied_missing_l1
damaged reftable_unaligned "$rt" "$(hex64 $((rb + 512)))"
check_case reftable_unaligned leaks
# qemu-img 7.2 cannot repair this one (its rebuild stops at the refcount read
# errors); libqblock rebuilds the refcount structure from the tables, which
# leaves an image QEMU finds clean, with every byte of the guest data.
cp reftable_unaligned.qcow2 l.qcow2
run qbi check -q -r all l.qcow2
run "$QEMU_IMG" check -q l.qcow2
"$QEMU_IMG" compare -q l.qcow2 base.qcow2 || fail "reftable_unaligned: the repair changed the data"
echo "repaired where qemu-img cannot: reftable_unaligned"
damaged refblock_outside $((rt + 8)) 0000000040000000
check_case refblock_outside
damaged data_unaligned "$l2" "$(hex64 $((e0 + 512)))"
check_case data_unaligned
damaged l2_names_reftable $((l2 + 8 * 6)) "$(hex64 $(( rt | (1 << 63) )))"
check_case l2_names_reftable

# Resize: the same bytes as qemu-img resize, growing (L1 growth) and shrinking.
run "$QEMU_IMG" create -q -f qcow2 -o cluster_size=4096 r.qcow2 4M
"$QEMU_IO" -f qcow2 -c 'write -P 1 0 1M' -c 'write -P 2 3M 64k' r.qcow2 >/dev/null || fail "qemu-io"
for size in 64M 300M 2M 1G 3M +5M -1M; do
    cp r.qcow2 q.qcow2
    run "$QEMU_IMG" resize -q --shrink q.qcow2 -- "$size"
    run qbi resize -q --shrink r.qcow2 -- "$size"
    cmp q.qcow2 r.qcow2 >&2 || fail "resize $size: files differ"
    run "$QEMU_IMG" check -q r.qcow2
    echo "resize $size: same bytes as qemu-img resize"
done
