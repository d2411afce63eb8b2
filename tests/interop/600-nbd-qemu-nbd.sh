#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 600-nbd-qemu-nbd.sh: libqblock as a client of a real qemu-nbd: seeded
# random unaligned I/O (one thread through a file name URI, eight threads on
# one state through a QB_PROT_NBD location) ends with the served file equal
# to a shadow copy; every URI form qemu-img takes reaches the export (Unix
# socket and TCP); map equals nbdinfo --map and qemu-img map; convert, read,
# write, compare and check run on NBD names; a read-only export, an unknown
# export and creating an image on NBD are refused cleanly.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io
source "$SRCDIR/tests/interop/nbd-common.sh"
build_helper STRESS qbstress

size=16M
run "$QEMU_IMG" create -q -f raw disk.raw $size
qio_ok disk.raw "write -P 0x11 0 3M" "write -P 0x22 5M 1M" "write -P 0x33 9000000 777777"
cp disk.raw mirror.raw
start_qemu_nbd q -f raw -x disk disk.raw
URI="nbd+unix:///disk?socket=$(sock q)"

# One thread through the file-name form, then eight threads on one state.
run "$STRESS" -s 600 -n 800 -m 200000 -F 40 -d 10 -r 300 -f raw "$URI" mirror.raw
run "$QEMU_IMG" compare -q -f raw -F raw "$URI" mirror.raw
echo "qbstress over qemu-nbd: reads matched, qemu-img compare equal"
run "$QBNBD" -U "$(sock q)" -e disk -f raw threads 8 150 mirror2.raw
cat run.out
run "$QEMU_IMG" compare -q -f raw -F raw "$URI" mirror2.raw

# Every name form reaches the same export (virtual size and one pattern read).
run qbi write -q -f raw -P 0x11 "$URI" 1M 4096
start_qemu_nbd_tcp t -f raw -x disk disk.raw
for name in "$URI" "nbd:unix:$(sock q):exportname=disk" "nbd://127.0.0.1:$NBD_PORT/disk" \
            "nbd:127.0.0.1:$NBD_PORT:exportname=disk" "nbd+tcp://localhost:$NBD_PORT/disk"; do
    run qbi info -f raw "$name"
    grep -q "^virtual size: 16 MiB (16777216 bytes)$" run.out || fail "info on $name: $(cat run.out)"
    run qbi read -q -f raw -P 0x11 "$name" 1M 4096
done
stop_server t
echo "five name forms (Unix socket and TCP): info and reads as expected"

# Allocation: a sparse file's holes and data, as nbdinfo and qemu-img see them.
stop_server q
sparse_file disk.raw $size
qio_ok disk.raw "write -P 0x44 1M 64k" "write -P 0x45 7M 3M" "write -P 0 12M 1M"
start_qemu_nbd q -f raw -x disk disk.raw
same_map_as_nbdinfo "qemu-nbd sparse file" "$URI"
run qbi map -f raw --output=json "$URI"
mv run.out ours.json
"$QEMU_IMG" map -f raw --output=json "$URI" >theirs.json || fail "qemu-img map over NBD"
same_output "map vs qemu-img map" theirs.json ours.json
echo "map over NBD: equal to nbdinfo --map and to qemu-img map"

# The tool's commands on NBD names.
run qbi convert -O qcow2 "$URI" copy.qcow2
run "$QEMU_IMG" compare -q copy.qcow2 disk.raw
run qbi compare -f raw "$URI" copy.qcow2
run "$QEMU_IMG" create -q -f qcow2 src.qcow2 $size
"$QEMU_IO" -f qcow2 -c "write -P 0x66 2M 1M" src.qcow2 >/dev/null || fail "qemu-io src.qcow2"
run qbi convert -n -f qcow2 -O raw src.qcow2 "$URI"
run "$QEMU_IMG" compare -q -f raw -F qcow2 "$URI" src.qcow2
run qbi write -q -f raw -P 0x77 "$URI" 100 5000
run qbi read -q -f raw -P 0x77 "$URI" 100 5000
echo "convert from and into NBD, compare, read and write on NBD names: ok"

# Refusals.
stop_server q
start_qemu_nbd q -f raw -x disk -r disk.raw
run_status 1 "$QBNBD" -U "$(sock q)" -e disk -f raw open rw
grep -q "^failed: QB_ERR_READ_ONLY: .*read-only" run.out || fail "read-only export: $(cat run.out)"
run "$QBNBD" -U "$(sock q)" -e disk -f raw read 0 4096
run_fails qbi write -f raw -P 1 "$URI" 0 512
grep -q "read-only" run.err || fail "write on a read-only export: $(cat run.err)"
run_status 1 "$QBNBD" -U "$(sock q)" -e nosuch -f raw open
grep -q "^failed: .*no such export" run.out || fail "unknown export: $(cat run.out)"
run_fails qbi create -f qcow2 "$URI" 1M
grep -q "cannot be created on NBD" run.err || fail "create on NBD: $(cat run.err)"
stop_server q
run_status 1 "$QBNBD" -U "$(sock q)" -f raw open
grep -q "^failed: QB_ERR_IO: .*cannot connect" run.out || fail "no server: $(cat run.out)"
echo "read-only export, unknown export, create on NBD and no server: refused cleanly"
