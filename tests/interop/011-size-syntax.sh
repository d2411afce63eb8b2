#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 011-size-syntax.sh: sizes are read as qemu-img reads them: for each size
# string, `qblock-img create` and `qemu-img create` agree on success or
# failure and print the same "Formatting" line (the normalised byte count),
# and the files they make have the same length. Sizes too large for any
# file are checked through `map --start-offset`, which prints the number
# it read, beside `qemu-img map`.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img

sizes=(0 1 511 512 513 00 012 +5 " 1M" 1b 1B 1.0b 1k 1K 1m 1M 1g 1G 1t 1T
       1.5k 1.1k 1.9k 1.5M 1.M 1.0000001k 2.25G 0x0 0x200 0x100000 0XABCDE
       "" x 1x 1.5 1.5b .5M 1MB 1Mi 1e3 "1 M" "1k " 1kk 0x 0x1g1 k 1.5.5k
       18446744073709551615 18446744073709551616 8E 16E 99999999999999999999)

for size in "${sizes[@]}"; do
    rc_qemu=0
    rc_ours=0
    rm -f qemu.raw ours.raw
    "$QEMU_IMG" create -f raw qemu.raw "$size" >qemu.txt 2>/dev/null || rc_qemu=$?
    qbi create -f raw ours.raw "$size" >ours.txt 2>ours.err || rc_ours=$?
    [ $rc_ours -gt 128 ] && fail "create '$size' crashed"
    sed -i 's/ours\.raw/FILE/' ours.txt
    sed -i 's/qemu\.raw/FILE/' qemu.txt
    same_output "create '$size'" qemu.txt ours.txt
    if [ $rc_qemu -eq 0 ] || [ -e qemu.raw ]; then
        # qemu-img may accept a size its raw driver then refuses (too large);
        # the status then comes from the library, not from the parser.
        if [ -e qemu.raw ] && [ $rc_qemu -eq 0 ]; then
            [ $rc_ours -eq 0 ] || fail "create '$size': qemu-img succeeds, we fail: $(cat ours.err)"
            [ "$(stat -c %s qemu.raw)" = "$(stat -c %s ours.raw)" ] ||
                fail "create '$size': file sizes $(stat -c %s qemu.raw) and $(stat -c %s ours.raw)"
        fi
    else
        [ $rc_ours -eq $rc_qemu ] || fail "create '$size': status $rc_ours, qemu-img gives $rc_qemu"
        grep -q '^qblock-img: \|^[^:]*: Invalid image size' ours.err || fail "create '$size': no message"
    fi
    echo "[$size] $rc_ours $(cat ours.txt)"
done

sparse_file empty.raw 0
for size in "${sizes[@]}" 1p 1e 1P 1E 8191P 7.99E 8191.99P 9223372036854775807 9223372036854775808; do
    rc_qemu=0
    rc_ours=0
    "$QEMU_IMG" map -f raw --output=json --start-offset="$size" empty.raw >qemu.txt 2>/dev/null || rc_qemu=$?
    qbi map -f raw --output=json --start-offset="$size" empty.raw >ours.txt 2>ours.err || rc_ours=$?
    [ $rc_ours -gt 128 ] && fail "map --start-offset='$size' crashed"
    [ $rc_ours -eq $rc_qemu ] || fail "map --start-offset='$size': status $rc_ours, qemu-img gives $rc_qemu"
    same_output "map --start-offset='$size'" qemu.txt ours.txt
    echo "[$size] $rc_ours $(cat ours.txt)"
done
