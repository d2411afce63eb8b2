#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 321-vmdk-we-write.sh: VMDK images that libqblock creates have qemu-img's
# layout (sparse headers, grain directories, descriptors but for the random
# CID, extent files and their sizes) for every subformat and option; after
# hundreds of seeded random writes mirrored by qemu-io they pass
# `qemu-img check`, compare equal to the mirror, `map`/`info` agree with
# qemu-img's, libyal's vmdkinfo accepts them, and (where FUSE works)
# vmdkmount reads back the mirror's bytes.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/img-common.sh"
require_qemu_img
require_qemu_io

# Shared helpers of the 3xx scripts (same_raw, same_map, same_info,
# random_writes) are in img-common.sh; this script's own follow.

# qio_fmt FMT FILE CMD...: qemu-io on an image of format FMT; must succeed.
qio_fmt() {
    local fmt=$1 file=$2 c out rc=0
    local -a args=()
    shift 2
    for c in "$@"; do
        args+=(-c "$c")
    done
    out=$("$QEMU_IO" -f "$fmt" "${args[@]}" "$file" 2>&1) || rc=$?
    if [ $rc -ne 0 ] || printf '%s\n' "$out" | grep -q "failed\|error"; then
        printf '%s\n' "$out" | sed 's/^/    (qemu-io) /' >&2
        fail "qemu-io reported a problem on $file"
    fi
}

# layout FILE: what must match qemu-img's: a sparse extent's header and
# directories, or a descriptor's text (CID lines and the image's own name
# replaced), or a flat extent's size.
layout() {
    if [ "$(head -c 4 "$1")" = KDMV ]; then
        od -An -v -tx1 -N 80 "$1"
        od -An -v -tx1 -j $((21 * 512)) -N 1024 "$1"
        dd if="$1" bs=512 skip=1 count=20 status=none | tr -d '\0' |
            sed -e 's/^CID=.*/CID=X/' -e 's/^parentCID=.*/parentCID=X/' -e "s/\"$2/\"NAME/"
        stat -c %s "$1"
    elif [ "$(head -c 1 "$1")" = "#" ]; then
        # A descriptor: its size varies with the CID's digits, the text is compared.
        sed -e 's/^CID=.*/CID=X/' -e 's/^parentCID=.*/parentCID=X/' -e "s/\"$2/\"NAME/" "$1"
    else
        stat -c %s "$1"
    fi
}

for opts in "subformat=monolithicSparse" "subformat=monolithicSparse,zeroed_grain=on" \
            "subformat=streamOptimized" "subformat=monolithicFlat" \
            "subformat=twoGbMaxExtentSparse" "subformat=twoGbMaxExtentFlat" \
            "adapter_type=lsilogic,hwversion=7,toolsversion=9" "compat6=on" \
            "adapter_type=legacyESX"; do
    for size in 64M 5G 10000; do
        case "$opts,$size" in
        *Flat*,5G) continue ;;     # 5 GiB of extents on disk: skipped
        esac
        rm -f ours* qemu*
        run qbi create -q -f vmdk -o "$opts" ours.vmdk $size
        run "$QEMU_IMG" create -q -f vmdk -o "$opts" qemu.vmdk $size
        for f in ours*; do
            layout "$f" ours >ours.txt
            layout "qemu${f#ours}" qemu >qemu.txt
            same_output "layout of $f ($opts, $size)" qemu.txt ours.txt
        done
        run "$QEMU_IMG" check -f vmdk ours.vmdk
    done
done

# Random writes in every writable subformat.
specs=("mono 64M subformat=monolithicSparse 250"
       "zero 24M subformat=monolithicSparse,zeroed_grain=on 100"
       "split 24M subformat=twoGbMaxExtentSparse 80"
       "flat 16M subformat=monolithicFlat 60"
       "splitflat 16M subformat=twoGbMaxExtentFlat 60")
seed=3200
for spec in "${specs[@]}"; do
    set -- $spec
    seed=$((seed + 1))
    run qbi create -q -f vmdk -o "$3" $1.vmdk $2
    sparse_file $1.raw $2
    random_writes vmdk $1.vmdk $1.raw $seed $4 300000
    run "$QEMU_IMG" check -f vmdk $1.vmdk
    run "$QEMU_IMG" compare -f vmdk -F raw $1.vmdk $1.raw
    run qbi compare -f vmdk -F raw $1.vmdk $1.raw
    same_map vmdk $1.vmdk
    same_info vmdk $1.vmdk
    if command -v vmdkinfo >/dev/null; then
        run vmdkinfo $1.vmdk
        grep -q "Media size.*($(stat -c %s $1.raw) bytes)" run.out ||
            fail "vmdkinfo does not see $(stat -c %s $1.raw) bytes in $1.vmdk: $(cat run.out)"
    fi
done

# QEMU writes into ours, and we again after it.
run "$QEMU_IO" -f vmdk -c "write -P 0x5a 60M 3M" -c "write -z 1M 64k" mono.vmdk
run "$QEMU_IO" -f raw -c "write -P 0x5a 60M 3M" -c "write -z 1M 64k" mono.raw
random_writes vmdk mono.vmdk mono.raw 3299 25 2000000
run "$QEMU_IMG" check -f vmdk mono.vmdk
run "$QEMU_IMG" compare -f vmdk -F raw mono.vmdk mono.raw

# vmdkmount (FUSE) reads our image back as the mirror's bytes, where FUSE works.
if command -v vmdkmount >/dev/null && [ -e /dev/fuse ]; then
    for img in mono split; do
        mkdir -p mnt
        vmdkmount $img.vmdk mnt >vmdkmount.log 2>&1 &
        for _ in $(seq 50); do
            [ -e mnt/vmdk1 ] && break
            sleep 0.1
        done
        if [ -e mnt/vmdk1 ]; then
            rc=0
            cmp mnt/vmdk1 $img.raw >&2 || rc=$?
            umount mnt || fusermount -u mnt 2>/dev/null
            wait
            [ $rc -eq 0 ] || fail "vmdkmount reads $img.vmdk differently from the mirror"
        else
            note "vmdkmount did not mount (FUSE unusable here): that part is not checked"
            kill %1 2>/dev/null
            wait
        fi
    done
else
    note "no vmdkmount or /dev/fuse: the FUSE read-back is not checked"
fi
echo "321: OK"
