#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 400-random-writes-all.sh: every writable format and subformat libqblock
# creates (qcow2 v2, v3, extended L2, 512-byte and 2M clusters, over a raw
# backing file; qed alone and over a backing file; qcow; cow; vdi dynamic
# and static; vpc dynamic and fixed; vmdk monolithicSparse, monolithicFlat,
# twoGbMaxExtentSparse, twoGbMaxExtentFlat) takes thousands of seeded random
# writes of any size and alignment, discards, flushes and reopens through
# the public API (tests/helpers/qbstress, which keeps a raw mirror). Then:
#  - `qemu-img check` finds no errors and no leaks where QEMU can check the
#    format (qcow2, qed, vdi, vmdk); `qblock-img check` agrees;
#  - `qemu-img compare` finds the image equal to the mirror (cow, which QEMU
#    no longer reads, is compared by qblock-img and merged by uml_moo);
#  - libyal's qcowinfo, vhdiinfo and vmdkinfo accept qcow, vpc and vmdk.
# streamOptimized vmdk takes only front-to-back writes: rewriting a stored
# grain is refused, as QEMU refuses it, and the refusal is what is tested.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io
build_helper STRESS qbstress

have() {
    command -v "$1" >/dev/null 2>&1
}

size=8M
head -c $((8 * 1024 * 1024)) /dev/urandom >base.raw
run "$QEMU_IMG" convert -f raw -O vmdk base.raw base.vmdk

# clean_check NAME FMT IMG: qemu-img check and qblock-img check find nothing.
clean_check() {
    local rc=0
    "$QEMU_IMG" check -f "$2" "$3" >check.out 2>&1 || rc=$?
    if [ $rc -ne 0 ] || ! grep -q "^No errors were found on the image.$" check.out; then
        sed 's/^/    (qemu-img check) /' check.out >&2
        fail "$1: qemu-img check exited $rc"
    fi
    run qbi check -f "$2" "$3"
    grep -q "^No errors were found on the image.$" run.out || fail "$1: qblock-img check not clean"
}

# libyal NAME TOOL IMG: a libyal info tool reads the image without an error.
libyal() {
    have "$2" || { note "$1: $2 is not installed, not run"; return 0; }
    "$2" "$3" >yal.out 2>&1 || { sed 's/^/    /' yal.out >&2; fail "$1: $2 refused the image"; }
    if grep -qi "error" yal.out; then
        sed 's/^/    /' yal.out >&2
        fail "$1: $2 reported an error"
    fi
}

# stress_case NAME FMT OPTS BACKING SEED OPS: create, stress, check, compare.
# BACKING is no, raw, cow (base.raw, named without a format) or vmdk
# (base.vmdk, which holds base.raw's bytes).
stress_case() {
    local name=$1 fmt=$2 opts=$3 backing=$4 seed=$5 ops=$6 bargs=() sargs=() img
    img=img.$fmt
    rm -f img.* img-* mirror.raw
    case $backing in
        raw) bargs=(-b base.raw -F raw) ;;
        cow) bargs=(-u -b base.raw) ;;   # a cow file names no backing format
        vmdk) bargs=(-b base.vmdk -F vmdk) ;;   # a vmdk's parent must be a vmdk
    esac
    # The backing file's bytes are what a discarded range may read as.
    [ "$backing" = no ] || sargs=(-b base.raw)
    run qbi create -q -f "$fmt" ${opts:+-o "$opts"} "${bargs[@]}" "$img" $size
    run qbi convert -f "$fmt" -O raw "$img" mirror.raw
    run "$STRESS" -s "$seed" -n "$ops" -m 300000 -F 40 -d 6 -r 600 -f "$fmt" "${sargs[@]}" \
        "$img" mirror.raw
    case $fmt in
        qcow2|qed|vdi|vmdk) clean_check "$name" "$fmt" "$img" ;;
    esac
    if [ "$fmt" = cow ]; then
        run qbi compare -q -f cow -F raw "$img" mirror.raw
        if have uml_moo; then
            run uml_moo "$img" merged.raw
            same_content mirror.raw merged.raw
        else
            note "$name: uml_moo is not installed, the merge is not tried"
        fi
    else
        "$QEMU_IMG" compare -q -f "$fmt" -F raw "$img" mirror.raw ||
            fail "$name: qemu-img compare finds the image unlike the mirror"
    fi
    case $fmt in
        qcow) libyal "$name" qcowinfo "$img" ;;
        vpc) libyal "$name" vhdiinfo "$img" ;;
        vmdk) libyal "$name" vmdkinfo "$img" ;;
    esac
    echo "$name: $ops operations, checked and equal to the mirror"
}

stress_case "qcow2 v2" qcow2 compat=0.10 no 1 2500
stress_case "qcow2 v3" qcow2 "" no 2 2500
stress_case "qcow2 extended L2" qcow2 extended_l2=on no 3 2500
stress_case "qcow2 512-byte clusters" qcow2 cluster_size=512 no 4 1500
stress_case "qcow2 2M clusters" qcow2 cluster_size=2M no 5 1000
stress_case "qcow2 v3 over raw" qcow2 "" raw 6 2500
stress_case "qcow2 v2 over raw" qcow2 compat=0.10 raw 7 1500
stress_case "qed" qed "" no 8 2500
stress_case "qed over raw" qed cluster_size=16k raw 9 2500
stress_case "qcow" qcow "" no 10 2500
stress_case "qcow over raw" qcow "" raw 11 1500
stress_case "cow" cow "" cow 12 2500
stress_case "vdi dynamic" vdi "" no 13 2500
stress_case "vdi static" vdi static=on no 14 2500
stress_case "vpc dynamic" vpc subformat=dynamic no 15 2500
stress_case "vpc fixed" vpc subformat=fixed no 16 2500
stress_case "vmdk monolithicSparse" vmdk subformat=monolithicSparse no 17 2500
stress_case "vmdk monolithicFlat" vmdk subformat=monolithicFlat no 18 2500
stress_case "vmdk twoGbMaxExtentSparse" vmdk subformat=twoGbMaxExtentSparse no 19 2500
stress_case "vmdk twoGbMaxExtentFlat" vmdk subformat=twoGbMaxExtentFlat no 20 2500
stress_case "vmdk monolithicSparse over vmdk" vmdk "" vmdk 21 1500

# streamOptimized: a grain once stored cannot be written again (QEMU's rule
# too), so random writes are not possible; the refusal must be clean.
rm -f img.* stream.raw
run qbi create -q -f vmdk -o subformat=streamOptimized img.vmdk $size
run qbi write -q -f vmdk -P 0x5a img.vmdk 1M 64k
run_fails qbi write -q -f vmdk -P 0x5b img.vmdk 1M 512
run_fails qbi write -q -f vmdk -P 0x5b img.vmdk 1M 64k
run qbi write -q -f vmdk -P 0x5c img.vmdk 2M 64k
run qbi read -q -f vmdk -P 0x5a img.vmdk 1M 64k
clean_check "streamOptimized" vmdk img.vmdk
"$QEMU_IO" -f vmdk -r -c 'read -P 0x5a 1M 64k' -c 'read -P 0x5c 2M 64k' -c 'read -P 0 0 1M' \
    img.vmdk >qio.out 2>&1 || { cat qio.out >&2; fail "streamOptimized: qemu-io reads differ"; }
grep -q "Pattern verification failed" qio.out && { cat qio.out >&2; fail "streamOptimized: qemu-io"; }
libyal "streamOptimized" vmdkinfo img.vmdk
echo "vmdk streamOptimized: rewriting a stored grain is refused, the image stays clean"
