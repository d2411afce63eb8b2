#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 015-discard.sh: `qblock-img discard` on a raw image releases the whole
# sectors inside each range (they read as zeros, the host blocks become
# holes exactly where `qemu-io discard` makes them) and leaves the partial
# sectors at unaligned edges alone, as libqblock's qb_discard documents
# (qemu-io zeroes those edge bytes too, so its result is not the reference
# for them).

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

head -c 4M /dev/urandom >ours.raw
cp ours.raw qemu.raw
cp ours.raw ref.raw

# offset length
ranges=("0 65536" "100000 300000" "1048576 1" "1048577 511" "2097152 4096" "3000000 1000" "3145728 1048576" "65536 0")
for r in "${ranges[@]}"; do
    read -r off len <<<"$r"
    run qbi discard -f raw ours.raw "$off" "$len"
    filter_timing <"$TEST_DIR/run.out"
    qio_ok qemu.raw "discard $off $len"
    # The reference: zeros over the sectors that lie wholly inside the range.
    start=$off
    bytes=$len
    first=$(( (start + 511) / 512 * 512 ))
    end=$(( (start + bytes) / 512 * 512 ))
    if [ $end -gt $first ]; then
        ref_write ref.raw $first $((end - first)) 0
    fi
done

same_content ref.raw ours.raw
"$QEMU_IMG" map -f raw --output=json ours.raw >map-ours.txt
"$QEMU_IMG" map -f raw --output=json qemu.raw >map-qemu.txt
same_output "map after discard" map-qemu.txt map-ours.txt
# What is left is the image's own data: qemu-img agrees with the reference.
run "$QEMU_IMG" compare -f raw -F raw ours.raw ref.raw
cat "$TEST_DIR/run.out"
