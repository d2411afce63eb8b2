#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 504-hostile-past-eof.sh: qcow2 images whose refcount table, L1 table, L2
# table, snapshot table or refcount block lies past the end of the file,
# and a VHD whose BAT does. Opening and reading behave as in qemu-img 7.2
# (what lies past the end reads as zeros); a write that would put
# metadata over the header marks the image corrupt and fails, as QEMU's
# overlap check does; check reports the damage, and a repair grows the file
# only for a refcount block a little past the end: one 16 Mi clusters out
# (the fuzzer's slow input: a terabyte file and 16 Mi refcounts compared)
# is a corruption the rebuild repairs, the file keeping its size. (302,
# 325 and 240 cover the VDI map, VMDK tables and qed/qcow tables.)

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/hostile-common.sh"
cap_memory

run "$QEMU_IMG" create -q -f qcow2 g.qcow2 1M
"$QEMU_IO" -f qcow2 -c 'write -P 7 0 64k' g.qcow2 >/dev/null || fail "qemu-io"
# Layout: header, refcount table 0x10000, refcount block 0x20000, L1
# 0x30000, L2 0x40000, data 0x50000.

# past NAME WHAT OFFSET FORMAT VALUE...: a copy of g.qcow2 patched; info,
# a read of the data, a write elsewhere, the corrupt bit and check after it.
past() {
    local name=$1
    echo "== qcow2: $2"
    shift 2
    cp g.qcow2 "$name.qcow2"
    poke "$name.qcow2" "$@"
    says 0 info "$name.qcow2"
    run qbi read -P "${READ_PATTERN:-7}" "$name.qcow2" 0 64k
    says "${WRITE_STATUS:-0}" write -P 1 "$name.qcow2" 64k 512
    echo "incompatible features: $(peek "$name.qcow2" 72 '>Q')"
    says "${CHECK_STATUS:-0}" check "$name.qcow2"
}

# qemu-img 7.2: info opens it; qemu-io reads the data; its write marks the
# image corrupt ("Preventing invalid write on metadata (overlaps with
# qcow2_header)") and fails with an I/O error.
WRITE_STATUS=1 CHECK_STATUS=2 past rt "refcount table past the end" 48 '>Q' 0x10000000

# qemu-img 7.2: info opens it; reads zeros (the L1 reads as empty); the
# write succeeds, writing its L1 entry at 256 MiB; check: 2 leaked clusters.
READ_PATTERN=0 CHECK_STATUS=2 past l1 "L1 table past the end" 40 '>Q' 0x10000000

# qemu-img 7.2: info opens it; reads zeros; the write copies the L2 table,
# fails to free the old one ("qcow2_free_clusters failed: Invalid
# argument": it has no refcount) and reports success; check: leaks only.
# libqblock treats the missing refcount as corruption: the write fails and
# the image is marked corrupt.
READ_PATTERN=0 WRITE_STATUS=1 CHECK_STATUS=3 past l2 "L2 table past the end" 0x30000 '>Q' 0x10000000

# qemu-img 7.2: as ours; check: "snapshot table entry 0 is incomplete",
# "counting reference for region exceeding the end of the file".
CHECK_STATUS=2 past sn "snapshot table past the end" 60 '>I' 1 64 '>Q' 0x10000000

echo "== qcow2: a refcount block 16 clusters past the end, repaired"
# qemu-img 7.2 check -r all grows the file to hold it, to the same 1507328 bytes.
cp g.qcow2 rb.qcow2
poke rb.qcow2 $((0x10000 + 8)) '>Q' $((0x60000 + 16 * 0x10000))
says 2 check rb.qcow2
says 0 check -r all rb.qcow2
echo "file size: $(stat -c %s rb.qcow2)"
run "$QEMU_IMG" check -q rb.qcow2

echo "== qcow2: a refcount block and a data cluster 16 Mi clusters past the end"
# qemu-img 7.2 check -r all grows the file to 1 TiB (sparse) to hold the
# block and then finds no errors; libqblock rebuilds the refcount structure
# instead and reports the data cluster past the end that remains.
far=$(((6 + (1 << 24) - 2) << 16))
cp g.qcow2 far.qcow2
poke far.qcow2 $((0x10000 + 8)) '>Q' $far 0x40000 '>q' $(((1 << 63) | far))
says 2 check far.qcow2
says 2 check -r all far.qcow2
echo "file size: $(stat -c %s far.qcow2)"
"$QEMU_IMG" check far.qcow2 >qc.out 2>&1
echo "qemu-img check: exit $? $(grep -c ERROR qc.out) errors"

echo "== vpc: a BAT past the end of the file"
# qemu-img 7.2: "Could not open 'v.vhd': block-vpc: free_data_block_offset
# points after the end of file. The image has been truncated."
run "$QEMU_IMG" create -q -f vpc v.vhd 1M
poke v.vhd $((512 + 16)) '>Q' 0x100000
refused info v.vhd
pol -f vpc v.vhd
