#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 009-io-output.sh: `qblock-img read/write/discard` print what qemu-io's
# read/write/discard commands print for the same requests (the hex dump of
# read -v, the summary line, the pattern failure line), less the timing
# line; the timing line has qemu-io's shape.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_io

sparse_file img.raw 4M
qio_ok img.raw "write -P 0x41 0 100" "write -P 0x7e 100 20" "write -P 0x00 120 8" \
    "write -P 0xff 128 64" "write -P 0x0a 1M 70000" "write -P 0x20 4194000 304"
# Every byte value once, at 2 MiB, to check which ones the dump shows as text.
for i in $(seq 0 255); do
    printf "\\$(printf %03o "$i")"
done >allbytes.bin
[ "$(stat -c %s allbytes.bin)" = 256 ] || fail "could not make the 256 byte values"
dd if=allbytes.bin of=img.raw bs=256 seek=8192 conv=notrunc status=none
cp img.raw qemu.raw

# Requests whose dumps and summaries are compared: "offset length".
reads=("2M 256" "0 256" "90 50" "65530 20" "1048570 100" "4193990 314" "3 1" "0 0" "4194304 0")
for r in "${reads[@]}"; do
    read -r off len <<<"$r"
    run qbi read -f raw -v img.raw "$off" "$len"
    filter_timing <"$TEST_DIR/run.out" >ours.txt
    qio qemu.raw "read -v $off $len" | filter_timing >qemu.txt
    same_output "read -v $off $len" qemu.txt ours.txt
done
cat ours.txt

# A pattern failure is reported the same way (and before the summary).
run_status 1 qbi read -f raw -P 0x41 img.raw 50 100
filter_timing <"$TEST_DIR/run.out" >ours.txt
qio qemu.raw "read -P 0x41 50 100" | filter_timing >qemu.txt
same_output "read -P 0x41 50 100" qemu.txt ours.txt
cat ours.txt

# The summaries of write and discard, with sizes printed as qemu-io prints them.
for r in "0 1" "0 512" "1000 1023" "0 1024" "0 1536" "4096 65536" "0 1126400" "0 4M"; do
    read -r off len <<<"$r"
    run qbi write -f raw -P 0x55 img.raw "$off" "$len"
    filter_timing <"$TEST_DIR/run.out" >ours.txt
    qio qemu.raw "write -P 0x55 $off $len" | filter_timing >qemu.txt
    same_output "write $off $len" qemu.txt ours.txt
done
same_content qemu.raw img.raw
run qbi discard -f raw img.raw 1M 64k
filter_timing <"$TEST_DIR/run.out" >ours.txt
qio qemu.raw "discard 1M 64k" | filter_timing >qemu.txt
same_output "discard 1M 64k" qemu.txt ours.txt

# The timing line: "<size>, 1 ops; SS.ss sec (<rate>/sec and <n> ops/sec)".
run qbi read -f raw img.raw 0 1536
sed -n 2p "$TEST_DIR/run.out" |
    grep -qx '1\.500 KiB, 1 ops; [0-9:]*[0-9][0-9]\.[0-9][0-9] sec ([0-9.]* [KMGTPE]*i*B*\(ytes\)*/sec and [0-9]*\.[0-9]\{4\} ops/sec)' ||
    fail "odd timing line: $(sed -n 2p "$TEST_DIR/run.out")"
echo "done"
