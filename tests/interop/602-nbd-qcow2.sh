#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 602-nbd-qcow2.sh: a qcow2 file exported raw by qemu-nbd (`qemu-nbd -f raw`)
# is read and written as qcow2 through libqblock: seeded random writes,
# discards and reopens over NBD, then, with the server stopped, qemu-img
# check finds the file clean and qemu-img compare finds it equal to the
# mirror; map of the qcow2 over NBD equals qemu-img's, and convert writes a
# qcow2 that lives on an NBD export.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io
source "$SRCDIR/tests/interop/nbd-common.sh"
build_helper STRESS qbstress

run "$QEMU_IMG" create -q -f qcow2 img.qcow2 16M
"$QEMU_IO" -f qcow2 -c 'write -P 0x31 0 2M' -c 'write -P 0x32 9M 1M' img.qcow2 >/dev/null ||
    fail "qemu-io img.qcow2"
run "$QEMU_IMG" convert -O raw img.qcow2 mirror.raw
# An export cannot grow (a write past its end is ENOSPC, as on a block
# device), so the file gets room for the clusters the writes allocate.
truncate -s 40M img.qcow2
start_qemu_nbd q -f raw -x img img.qcow2
URI="nbd+unix:///img?socket=$(sock q)"

run qbi info "$URI"
grep -q "^file format: qcow2$" run.out || fail "the export does not probe as qcow2: $(cat run.out)"
run "$STRESS" -s 602 -n 600 -m 200000 -F 40 -d 10 -r 200 -f qcow2 "$URI" mirror.raw
run qbi check -f qcow2 "$URI"
run qbi map -f qcow2 --output=json "$URI"
mv run.out ours.json
"$QEMU_IMG" map -f qcow2 --output=json "$URI" >theirs.json || fail "qemu-img map over NBD"
same_output "qcow2 map over NBD" theirs.json ours.json
stop_server q
"$QEMU_IMG" check img.qcow2 >check.out 2>&1 || { cat check.out >&2; fail "qemu-img check"; }
grep -q "No errors were found on the image." check.out || fail "qemu-img check not clean"
run "$QEMU_IMG" compare -q -f qcow2 -F raw img.qcow2 mirror.raw
echo "qcow2 over qemu-nbd: random I/O matched, check clean, compare equal, map as qemu-img's"

# convert into a qcow2 that sits on an export (created beforehand, as with -n).
run "$QEMU_IMG" create -q -f raw src.raw 8M
qio_ok src.raw "write -P 0x71 1M 3M" "write -P 0x72 6M 512k"
run "$QEMU_IMG" create -q -f qcow2 target.qcow2 8M
truncate -s 12M target.qcow2
start_qemu_nbd t -f raw -x t target.qcow2
run qbi convert -n -f raw -O qcow2 src.raw "nbd+unix:///t?socket=$(sock t)"
run qbi compare -f raw -F qcow2 src.raw "nbd+unix:///t?socket=$(sock t)"
stop_server t
"$QEMU_IMG" check target.qcow2 >check.out 2>&1 || { cat check.out >&2; fail "qemu-img check target"; }
run "$QEMU_IMG" compare -q -f raw -F qcow2 src.raw target.qcow2
echo "convert into a qcow2 on NBD: qemu-img check clean, compare equal"

# Without room, the first cluster allocation past the export's end fails
# cleanly (ENOSPC), and the image stays consistent.
run "$QEMU_IMG" create -q -f qcow2 full.qcow2 8M
start_qemu_nbd f -f raw -x f full.qcow2
run_fails qbi write -f qcow2 -P 0x12 "nbd+unix:///f?socket=$(sock f)" 0 64k
grep -q "No space left on device" run.err || fail "write past the export's end: $(cat run.err)"
stop_server f
"$QEMU_IMG" check full.qcow2 >check.out 2>&1 || { cat check.out >&2; fail "qemu-img check full"; }
echo "a qcow2 with no room on its export: the write fails with ENOSPC, check clean"
