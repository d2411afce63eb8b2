#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 002-info.sh: `qblock-img info` prints exactly what `qemu-img info -f raw`
# prints, in both output forms, for raw images of many sizes and
# allocations (both tools stat the same file, so even the disk size must
# agree); the JSON of a fixed image, less its actual-size, is the golden
# output.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# Images of sizes that exercise qemu-img's size formatting (units, three
# significant digits, the switch to the next unit at 1000).
sparse_file zero.img 0
sparse_file s512.img 512
sparse_file s1536.img 1536
sparse_file s1000448.img 1000448
sparse_file s1047552.img 1047552
sparse_file s1048064.img 1048064
sparse_file s1022976.img 1022976
sparse_file s10g.img 10G
sparse_file s1p17t.img 1288490188800
sparse_file s1t.img 1T
head -c 3M /dev/urandom >full.img
sparse_file mixed.img 8M
qio_ok mixed.img "write -P 0x11 0 64k" "write -P 0x22 1M 512k" "write -P 0x33 7M 4k"

for img in zero.img s512.img s1536.img s1000448.img s1047552.img s1048064.img s1022976.img \
           s10g.img s1p17t.img s1t.img full.img mixed.img; do
    for out in human json; do
        run "$QEMU_IMG" info -f raw --output=$out "$img"
        mv "$TEST_DIR/run.out" qemu.txt
        run qbi info -f raw --output=$out "$img"
        same_output "info --output=$out $img" qemu.txt "$TEST_DIR/run.out"
        # Without -f the format is probed, with the same result.
        run qbi info --output=$out "$img"
        same_output "info --output=$out $img (probed)" qemu.txt "$TEST_DIR/run.out"
    done
done

# The same through a path with folders, and the default output form.
mkdir -p sub/dir
cp mixed.img sub/dir/
run "$QEMU_IMG" info -f raw sub/dir/mixed.img
mv "$TEST_DIR/run.out" qemu.txt
run qbi info sub/dir/mixed.img
same_output "info sub/dir/mixed.img" qemu.txt "$TEST_DIR/run.out"
run "$QEMU_IMG" info -f raw "$TEST_DIR/mixed.img"
mv "$TEST_DIR/run.out" qemu.txt
run qbi info -U "$TEST_DIR/mixed.img"
same_output "info (absolute path, -U)" qemu.txt "$TEST_DIR/run.out"

# Golden output: the JSON of a fixed image, without the host-dependent field.
qbi info --output=json mixed.img | filter_json_actual_size
qbi info --output=json s1p17t.img | filter_json_actual_size
qbi info s1p17t.img | grep -v '^disk size:'
