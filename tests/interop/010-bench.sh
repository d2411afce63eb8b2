#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 010-bench.sh: `qblock-img bench` takes qemu-img bench's options and
# defaults, prints its lines, and issues the same requests: a write run
# leaves exactly the bytes (and holes) that `qemu-img bench -w` leaves on a
# copy of the same image, including the wrap-around of offsets past the
# end, and with many overlapping unaligned writes in flight at once; read
# runs succeed with every cache mode, and a request outside the image fails
# the run as it does with qemu-img.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img

sparse_file base.raw 8M

# check_lines OURS QEMU: the "Sending ..." (and flush) lines are the same for
# both tools, and ours ends with the "Run completed" line.
check_lines() {
    local ours=$1 qemu=$2
    head -n1 "$qemu" >qemu-first.txt
    head -n1 "$ours" >ours-first.txt
    same_output "bench header" qemu-first.txt ours-first.txt
    if grep -q '^Sending flush' "$qemu"; then
        grep '^Sending flush' "$qemu" >qemu-flush.txt
        grep '^Sending flush' "$ours" >ours-flush.txt
        same_output "bench flush line" qemu-flush.txt ours-flush.txt
    fi
    tail -n1 "$ours" | grep -qx 'Run completed in [0-9]*\.[0-9][0-9][0-9] seconds\.' ||
        fail "odd last line: $(tail -n1 "$ours")"
    head -n1 "$ours"
}

# Write runs: options -> the same image as qemu-img's.
runs=(
    "-c 100"
    "-c 300 -s 512 -S 1536 --pattern=0x5a"
    "-c 10 -s 64k -S 1M -o 3M --pattern=7"
    "-c 7 -s 4k -S 3M -o 5M --pattern=0xee"
    "-c 5 -s 4k -S 17M -o 1M --pattern=0x11"
    "-c 50 -d 4 -s 8k --pattern=0x22 --flush-interval=10"
    "-c 50 -d 1 -s 8k --pattern=0x23 --flush-interval=5 --no-drain"
    "-c 20 -d 1 -t none -s 4k --pattern=0x24"
    "-c 20 -d 1 -t writethrough -s 4k -S 8k --pattern=0x25"
    "-c 20 -d 2 -t directsync -s 4k --pattern=0x26"
    "-c 20 -d 2 -t unsafe -s 4k --pattern=0x27"
    # Overlapping unaligned writes from 16 threads at once: a lost
    # read-modify-write would leave zeros where qemu-img leaves the pattern.
    "-c 11000 -d 16 -s 1000 -S 700 --pattern=0x33"
)
for opts in "${runs[@]}"; do
    cp --sparse=always base.raw ours.raw
    cp --sparse=always base.raw qemu.raw
    # shellcheck disable=SC2086
    run "$QEMU_IMG" bench -f raw -w $opts qemu.raw
    mv "$TEST_DIR/run.out" qemu.txt
    # shellcheck disable=SC2086
    run qbi bench -f raw -w $opts ours.raw
    mv "$TEST_DIR/run.out" ours.txt
    check_lines ours.txt qemu.txt
    same_content qemu.raw ours.raw
    "$QEMU_IMG" map -f raw --output=json qemu.raw >qemu-map.txt
    "$QEMU_IMG" map -f raw --output=json ours.raw >ours-map.txt
    same_output "bench -w $opts: map" qemu-map.txt ours-map.txt
done

# Read runs (defaults: 75000 requests of 4 KiB, 64 in parallel).
head -c 8M /dev/urandom >data.raw
for opts in "" "-c 1000 -d 1" "-c 500 -s 16k -S 12k -o 1k" "-c 100 -t none" "-c 100 -n -t none" \
            "-c 100 -i threads" "-c 0" "-c 3 -s 0" "-c 10 -S 0"; do
    # shellcheck disable=SC2086
    run "$QEMU_IMG" bench -f raw $opts data.raw
    mv "$TEST_DIR/run.out" qemu.txt
    # shellcheck disable=SC2086
    run qbi bench -f raw $opts data.raw
    mv "$TEST_DIR/run.out" ours.txt
    check_lines ours.txt qemu.txt
done
# qemu-img bench prints its lines even with -q.
run qbi bench -q -c 10 data.raw
grep -q '^Sending 10 read requests' "$TEST_DIR/run.out" || fail "bench -q printed nothing"

# A request past the end fails the run, with qemu-img's status.
run_status 1 "$QEMU_IMG" bench -f raw -c 4 -s 4M -S 3M -d 1 data.raw
run_fails qbi bench -f raw -c 4 -s 4M -S 3M -d 1 data.raw
grep -q "Failed request" "$TEST_DIR/run.err" || fail "no 'Failed request' message"
run "$QEMU_IMG" bench -f raw -c 2 -s 4M -S 3M -d 1 data.raw
run qbi bench -f raw -c 2 -s 4M -S 3M -d 1 data.raw
echo "done"
