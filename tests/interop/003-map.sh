#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 003-map.sh: `qblock-img map` prints exactly what `qemu-img map -f raw`
# prints, in JSON and in human form, on sparse raw files of several layouts
# (holes and data runs, a file ending in a hole, ending in data, an empty
# file, a fully allocated one, zeros written as data), also with
# --start-offset and --max-length; the JSON of a fixed layout is the golden
# output.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# Every layout is made of 64 KiB-aligned runs, so that the file system's
# block size (up to 64 KiB) cannot change where runs start and end.
sparse_file holes.img 16M
qio_ok holes.img "write -P 0xaa 0 64k" "write -P 0xbb 1M 1M" "write -P 0 4M 64k" \
    "write -P 0xcc 6M 192k" "write -P 0xdd 9M 64k" "write -P 0xee 12M 2M"
sparse_file ends-in-data.img 4M
qio_ok ends-in-data.img "write -P 0x01 1M 64k" "write -P 0x02 3M 1M"
sparse_file ends-in-hole.img 4M
qio_ok ends-in-hole.img "write -P 0x01 0 1M" "write -P 0x02 2M 64k"
sparse_file empty.img 0
sparse_file all-hole.img 3M
head -c 2M /dev/urandom >full.img
head -c 5M /dev/zero >zero-data.img
sparse_file one-run.img 8M
qio_ok one-run.img "write -P 0x5a 2M 64k"

layouts="holes.img ends-in-data.img ends-in-hole.img empty.img all-hole.img full.img zero-data.img one-run.img"
ranges=("" "--start-offset=0" "--start-offset=1M" "--start-offset=100" "--max-length=1M"
        "--start-offset=64k --max-length=2M" "--start-offset=1M --max-length=1"
        "--start-offset=3M --max-length=10000000" "--start-offset=100M" "--max-length=0"
        "--start-offset=1M --max-length=0")

for img in $layouts; do
    for range in "${ranges[@]}"; do
        for out in json human; do
            # shellcheck disable=SC2086
            run "$QEMU_IMG" map -f raw --output=$out $range "$img"
            mv "$TEST_DIR/run.out" qemu.txt
            # shellcheck disable=SC2086
            run qbi map -f raw --output=$out $range "$img"
            same_output "map --output=$out $range $img" qemu.txt "$TEST_DIR/run.out"
        done
    done
    # The format is probed when -f is left out; human is the default form.
    run "$QEMU_IMG" map -f raw "$img"
    mv "$TEST_DIR/run.out" qemu.txt
    run qbi map "$img"
    same_output "map $img (probed)" qemu.txt "$TEST_DIR/run.out"
done

# Golden output: a fixed layout in both forms.
qbi map --output=json -f raw holes.img
qbi map -f raw holes.img
qbi map --output=json -f raw --start-offset=1M --max-length=5M holes.img
qbi map --output=json -f raw empty.img
