#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 013-raw-unaligned-size.sh: a raw file whose length is not a multiple of
# 512 bytes is seen as qemu-img sees it: a virtual size rounded up to the
# next sector, whose tail past the end of the file reads as zeros; info,
# map, read and convert agree with qemu-img and qemu-io.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

head -c 1000 /dev/urandom >tiny.raw
head -c 5000 /dev/urandom >tail-hole.raw
truncate -s 100000 tail-hole.raw
head -c 1048577 /dev/urandom >just-over.raw

for img in tiny.raw tail-hole.raw just-over.raw; do
    for out in json human; do
        run "$QEMU_IMG" info -f raw --output=$out "$img"
        mv "$TEST_DIR/run.out" qemu.txt
        run qbi info -f raw --output=$out "$img"
        same_output "info --output=$out $img" qemu.txt "$TEST_DIR/run.out"
        run "$QEMU_IMG" map -f raw --output=$out "$img"
        mv "$TEST_DIR/run.out" qemu.txt
        run qbi map -f raw --output=$out "$img"
        same_output "map --output=$out $img" qemu.txt "$TEST_DIR/run.out"
    done
    size=$(stat -c %s "$img")
    vsize=$(( (size + 511) / 512 * 512 ))
    # The rounded-up tail reads as zeros through both tools.
    qio_ok "$img" "read -P 0 $size $((vsize - size))"
    run qbi read -f raw -P 0 "$img" "$size" $((vsize - size))
    # convert gives what qemu-img convert gives: the bytes, then zeros.
    run qbi convert -f raw -O raw "$img" ours.raw
    run "$QEMU_IMG" convert -f raw -O raw "$img" qemu.raw
    same_content qemu.raw ours.raw
    run qbi compare -f raw -F raw "$img" qemu.raw
    echo "$img: $size bytes, virtual size $vsize"
done
