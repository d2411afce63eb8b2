#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 320-vmdk-qemu-images.sh: VMDK images that qemu-img 7.2 creates with every
# create option (the five subformats, zeroed_grain, adapter_type, compat6,
# hwversion, toolsversion) and fills with qemu-io (data, unaligned writes,
# zero writes) read through libqblock exactly as `qemu-img convert -O raw`
# reads them, with the same `map` and `info`; images qemu-img converts to
# streamOptimized too, and images whose extents span several files.

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

n=0
for opts in "subformat=monolithicSparse" "subformat=monolithicSparse,zeroed_grain=on" \
            "subformat=monolithicFlat" "subformat=twoGbMaxExtentSparse" \
            "subformat=twoGbMaxExtentSparse,zeroed_grain=on" "subformat=twoGbMaxExtentFlat" \
            "adapter_type=lsilogic,hwversion=7" "adapter_type=buslogic,compat6=on" \
            "adapter_type=legacyESX,toolsversion=42" "subformat=streamOptimized"; do
    img=q$n.vmdk
    n=$((n + 1))
    run "$QEMU_IMG" create -q -f vmdk -o "$opts" "$img" 20M
    case $opts in
    *streamOptimized*)
        # Streams take whole grains, front to back.
        qio_fmt vmdk "$img" "write -P 0xaa 0 128k" "write -P 0xbb 1M 64k" \
            "write -P 0xcc 20905984 64k"
        ;;
    *)
        qio_fmt vmdk "$img" "write -P 0xaa 0 1M" "write -P 0xbb 3M 4k" \
            "write -P 0xcc 5000 77777" "write -z 6M 128k" "write -P 0xdd 19M 1M" \
            "write -z 19M 64k" "write -P 0xee 7M 100k" "write -z 7344128 512"
        ;;
    esac
    same_raw vmdk "$img"
    same_map vmdk "$img"
    same_info vmdk "$img"
done

# Images qemu-img converts from raw, in each subformat.
run "$QEMU_IMG" create -q -f raw src.raw 9M
run "$QEMU_IO" -f raw -c "write -P 0x11 0 1M" -c "write -P 0x12 2M 4k" \
    -c "write -P 0x13 4M 1000" -c "write -P 0 5M 64k" -c "write -P 0x14 9436672 512" src.raw
for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat \
           streamOptimized; do
    run "$QEMU_IMG" convert -f raw -O vmdk -o subformat=$sub src.raw c-$sub.vmdk
    same_raw vmdk c-$sub.vmdk
    same_map vmdk c-$sub.vmdk
    rm -f ours.raw
    run qbi convert -f vmdk -O raw c-$sub.vmdk ours.raw
    same_content ours.raw src.raw
done

# Extents in several files (3 GiB: two 2 GiB extents), data across the seam.
for sub in twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    run "$QEMU_IMG" create -q -f vmdk -o subformat=$sub big-$sub.vmdk 3G
    qio_fmt vmdk big-$sub.vmdk "write -P 0x55 2147385344 192k" "write -P 0x56 3221221376 4k"
    same_map vmdk big-$sub.vmdk
    same_info vmdk big-$sub.vmdk
    run qbi read -f vmdk -P 0x55 big-$sub.vmdk $((2 * 1024 * 1024 * 1024 - 98304)) 196608
    run qbi read -f vmdk -P 0x56 big-$sub.vmdk $((3 * 1024 * 1024 * 1024 - 4096)) 4096
    run qbi read -f vmdk -P 0 big-$sub.vmdk 1G 64k
done

# Probing: the sparse magic, and a descriptor file (which starts with "# Disk").
run qbi info q0.vmdk
grep -q "^file format: vmdk$" run.out || fail "q0.vmdk was not probed as vmdk"
run qbi info q2.vmdk
grep -q "^file format: vmdk$" run.out || fail "the descriptor q2.vmdk was not probed as vmdk"
echo "320: OK"
