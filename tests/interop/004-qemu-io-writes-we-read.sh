#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 004-qemu-io-writes-we-read.sh: patterns that qemu-io writes into a raw
# image at assorted offsets (aligned, unaligned, across sector and block
# edges, at the very end) read back through `qblock-img read -P` (which
# must also catch a wrong pattern, exit 1 and say so as qemu-io does), and
# `qblock-img convert` copies the image to a file equal byte for byte.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_io

size=$((32 * 1024 * 1024))
sparse_file img.raw $size

# offset length pattern
writes=(
    "0 512 0x01"
    "512 1 0x02"
    "1000 3000 0x03"
    "4095 2 0x04"
    "65535 65537 0x05"
    "1048576 1048576 0x06"
    "3145727 1 0x07"
    "5000000 777777 0x08"
    "16777215 1048578 0x09"
    "33553920 511 0x0a"
    "33554431 1 0x0b"
)
cmds=()
for w in "${writes[@]}"; do
    read -r off len pat <<<"$w"
    cmds+=("write -P $pat $off $len")
done
qio_ok img.raw "${cmds[@]}"

for w in "${writes[@]}"; do
    read -r off len pat <<<"$w"
    run qbi read -f raw -P "$pat" img.raw "$off" "$len"
    filter_timing <"$TEST_DIR/run.out"
    # The byte before and after each run belongs to a neighbour or a hole,
    # so a range one byte wider must fail the check.
    if [ "$off" -gt 0 ]; then
        run_status 1 qbi read -f raw -P "$pat" img.raw $((off - 1)) $((len + 1))
        grep -qx "Pattern verification failed at offset $((off - 1)), $((len + 1)) bytes" \
            "$TEST_DIR/run.out" || fail "no pattern failure reported for $((off - 1))+$((len + 1))"
    fi
    if [ $((off + len)) -lt $size ]; then
        run_status 1 qbi read -f raw -P "$pat" img.raw "$off" $((len + 1))
    fi
done

# The holes read as zeros through the tool too.
run qbi read -q -P 0 img.raw 20M 8M
[ -s "$TEST_DIR/run.out" ] && fail "read -q printed something"

# convert makes an identical file, whole and through the probed format too.
run qbi convert -f raw -O raw img.raw copy1.raw
same_content img.raw copy1.raw
run qbi convert img.raw copy2.raw
same_content img.raw copy2.raw
echo "done"
