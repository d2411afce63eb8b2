#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 005-we-write-qemu-reads.sh: patterns that `qblock-img write` puts into a
# raw image at unaligned offsets and lengths (and aligned ones, and over
# each other) give the same image as a reference written with dd: `qemu-img
# compare -f raw -F raw` says so, `qemu-io read -P` verifies every run, and
# the wrong pattern is caught by qemu-io too.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

size=$((24 * 1024 * 1024))
run qbi create -q -f raw ours.raw $size
sparse_file ref.raw $size

# offset length pattern, later writes overwriting parts of earlier ones
writes=(
    "0 4096 0xaa"
    "1 1 0x10"
    "511 2 0x11"
    "1023 1025 0x12"
    "4097 8191 0x13"
    "65536 65536 0x14"
    "100000 200000 0x15"
    "150000 1000 0x16"
    "1048575 3145729 0x17"
    "2097152 512 0x18"
    "8388607 1 0x19"
    "10000001 4999999 0x1a"
    "25165823 1 0x1b"
    "25165312 511 0x1c"
)
for w in "${writes[@]}"; do
    read -r off len pat <<<"$w"
    run qbi write -f raw -P "$pat" ours.raw "$off" "$len"
    filter_timing <"$TEST_DIR/run.out"
    ref_write ref.raw "$off" "$len" $((pat))
done

run "$QEMU_IMG" compare -f raw -F raw ours.raw ref.raw
cat "$TEST_DIR/run.out"
same_content ours.raw ref.raw

# qemu-io verifies the runs that survived untouched...
qio_ok ours.raw "read -P 0x10 1 1" "read -P 0x11 511 2" "read -P 0x12 1023 1025" \
    "read -P 0x13 4097 8191" "read -P 0x14 65536 34464" "read -P 0x15 100000 50000" \
    "read -P 0x16 150000 1000" "read -P 0x15 151000 149000" "read -P 0x17 1048575 1048577" \
    "read -P 0x18 2097152 512" "read -P 0x17 2097664 2096640" "read -P 0x19 8388607 1" \
    "read -P 0x1a 10000001 4999999" "read -P 0x1c 25165312 511" "read -P 0x1b 25165823 1" \
    "read -P 0 4194304 4194303" "read -P 0 15000000 10165312" "read -P 0xaa 0 1" "read -P 0xaa 2 509"
# ...and notices a wrong one.
out=$(qio ours.raw "read -P 0x17 1048574 2" 2>&1)
printf '%s\n' "$out" | grep -q "Pattern verification failed" ||
    fail "qemu-io did not notice a wrong pattern: $out"

# write without -P uses qemu-io's default pattern, 0xcd; -z writes zeros.
run qbi write -f raw ours.raw 3M 5000
ref_write ref.raw 3145728 5000 205
run qbi write -f raw -z ours.raw 3145828 100
ref_write ref.raw 3145828 100 0
qio_ok ours.raw "read -P 0xcd 3145728 100" "read -P 0 3145828 100" "read -P 0xcd 3145928 4800"
same_content ours.raw ref.raw
run "$QEMU_IMG" compare -f raw -F raw ours.raw ref.raw

# Sizes with suffixes, and a write that ends exactly at the end of the image.
run qbi write -f raw -P 0x2e ours.raw 23M 1M
ref_write ref.raw $((23 * 1024 * 1024)) $((1024 * 1024)) 46
same_content ours.raw ref.raw
qio_ok ours.raw "read -P 0x2e 23M 1M"
echo "done"
