#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 006-compare.sh: `qblock-img compare` gives the exit status (0 identical, 1
# different, 2 error) and prints the lines `qemu-img compare` gives on the
# same pairs of raw images: equal ones, a difference at an unaligned byte
# (reported at its sector), images of different sizes whose extra area is
# or is not zero, strict mode (-s) on allocation and size, quiet mode (-q),
# missing files and wrong formats.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

sparse_file base.raw 8M
qio_ok base.raw "write -P 0x42 0 64k" "write -P 0x43 1M 1M" "write -P 0 5M 64k"
cp --sparse=always base.raw same.raw
# The same bytes, with the written zeros left as a hole: equal, but not strictly.
sparse_file sparse.raw 8M
qio_ok sparse.raw "write -P 0x42 0 64k" "write -P 0x43 1M 1M"
cp --sparse=always base.raw diff-unaligned.raw
qio_ok diff-unaligned.raw "write -P 0x44 1500000 1"
cp --sparse=always base.raw diff-in-hole.raw
qio_ok diff-in-hole.raw "write -P 0x45 7340033 3"
cp --sparse=always base.raw diff-first.raw
qio_ok diff-first.raw "write -P 0x46 0 1"
cp --sparse=always base.raw bigger-zero.raw
truncate -s 9M bigger-zero.raw
cp --sparse=always base.raw bigger-data.raw
truncate -s 9M bigger-data.raw
qio_ok bigger-data.raw "write -P 0x47 8389000 1"
cp --sparse=always base.raw bigger-written-zero.raw
truncate -s 9M bigger-written-zero.raw
qio_ok bigger-written-zero.raw "write -P 0 8M 64k"
sparse_file empty.raw 0
sparse_file small.raw 4k

pairs=(
    "base.raw same.raw" "base.raw sparse.raw" "sparse.raw base.raw"
    "base.raw diff-unaligned.raw" "diff-unaligned.raw base.raw" "base.raw diff-in-hole.raw"
    "base.raw diff-first.raw" "base.raw bigger-zero.raw" "bigger-zero.raw base.raw"
    "base.raw bigger-data.raw" "bigger-data.raw base.raw" "base.raw bigger-written-zero.raw"
    "empty.raw empty.raw" "empty.raw small.raw" "small.raw base.raw"
    "base.raw missing.raw" "missing.raw base.raw"
)
flag_sets=("" "-s" "-q" "-s -q" "-f raw -F raw" "-f raw -F raw -s")

for pair in "${pairs[@]}"; do
    for flags in "${flag_sets[@]}"; do
        rc_qemu=0
        rc_ours=0
        # shellcheck disable=SC2086
        "$QEMU_IMG" compare $flags $pair >qemu.txt 2>/dev/null || rc_qemu=$?
        # shellcheck disable=SC2086
        qbi compare $flags $pair >ours.txt 2>ours.err || rc_ours=$?
        [ $rc_ours -gt 128 ] && fail "compare $flags $pair crashed"
        [ $rc_ours -eq $rc_qemu ] ||
            fail "compare $flags $pair: exit status $rc_ours, qemu-img gives $rc_qemu"
        same_output "compare $flags $pair" qemu.txt ours.txt
        if [ $rc_ours -eq 2 ]; then
            grep -q "^qblock-img: \|^$(basename "$QBLOCK_IMG"): " ours.err ||
                fail "compare $flags $pair: no error message"
        fi
        echo "$rc_ours [$flags] $pair: $(cat ours.txt)"
    done
done

# A format that does not match the file is an error (2), for either image.
run_status 2 qbi compare -f qcow2 base.raw same.raw
run_status 2 qbi compare -F qcow2 base.raw same.raw
run_status 2 qbi compare -f nosuchformat base.raw same.raw
# Usage errors are 1, as with qemu-img.
run_status 1 qbi compare base.raw
run_status 1 qbi compare base.raw same.raw third.raw
run_status 1 qbi compare -Z base.raw same.raw
echo "done"
