#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 506-hostile-extensions.sh: qcow2 header extensions longer than the
# header's cluster, or of 4 GiB, or of names longer than their limit; an
# extension area with no end marker; a backing file name written over
# the extension area; and sparse VMDK extents whose embedded descriptor
# claims a megabyte or 1 TiB. Each is refused with the error named (the
# library's QB_ERR_* code where the policy helper shows it) or opened as
# qemu-img 7.2 opens it. (104 covers an extension longer than a 64 KiB
# cluster's area; 502 descriptor files of most of a megabyte.)

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/hostile-common.sh"
cap_memory

# A v3 image with 4 KiB clusters: the header is 112 bytes, the extension
# area runs from 112 to the end of the first cluster and holds only the
# end marker.
run "$QEMU_IMG" create -q -f qcow2 -o cluster_size=4096 e.qcow2 1M
[ "$(peek e.qcow2 100 '>I')" = 112 ] && [ "$(peek e.qcow2 112 '>Q')" = 0 ] ||
    fail "unexpected header layout"

# ext NAME OFFSET FORMAT VALUE...: a patched copy, as qblock-img info and
# the library (under the default policy) see it.
ext() {
    local name=$1
    shift
    cp e.qcow2 "$name.qcow2"
    poke "$name.qcow2" "$@"
    echo "-- $name"
    pol -f qcow2 "$name.qcow2"
}

echo "== qcow2 header extensions"
# qemu-img 7.2: "Could not open 'past.qcow2': Header extension too large".
ext past 112 '>I' 0x12345678 116 '>I' 3977
refused info past.qcow2
# qemu-img 7.2 opens these two: the extension ends at the cluster's end
# (3976 bytes), and 3969 bytes padded to 3976.
ext exact 112 '>I' 0x12345678 116 '>I' 3976
ext padded 112 '>I' 0x12345678 116 '>I' 3969
# qemu-img 7.2: "Header extension too large" (a feature table of 4 GiB).
ext ftab 112 '>I' 0x6803f857 116 '>I' 0xffffffff
refused info ftab.qcow2
# qemu-img 7.2: "ERROR: ext_backing_format: len=2000 too large (>=16)".
ext bfmt 112 '>I' 0xe2792aca 116 '>I' 2000 120 s qcow2
refused info bfmt.qcow2
# qemu-img 7.2: "bitmaps_ext: Invalid extension length" (8 bytes, not 24).
ext bitmaps 72 '>Q' 0 80 '>Q' 0 88 '>Q' 1 112 '>I' 0x23852875 116 '>I' 8
echo "-- noend"
cp e.qcow2 noend.qcow2
python3 -c 'import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(112)
    f.write(struct.pack(">II", 0x1234, 0) * ((4096 - 112) // 8))' noend.qcow2 || fail "patch"
# qemu-img 7.2 opens it: 498 empty unknown extensions, no end marker.
pol -f qcow2 noend.qcow2
# qemu-img 7.2 opens it and reports the backing file "ABCDEFGHIJKLMNOP":
# the extension area ends where the backing file name begins (the library
# then fails to find that backing file, as it should).
ext overlap 8 '>Q' 112 16 '>I' 16 112 s ABCDEFGHIJKLMNOP
run qbi info overlap.qcow2
grep '^backing file:' run.out

echo "== vmdk: a sparse extent's embedded descriptor of 2048 sectors"
# qemu-img 7.2 info opens it (virtual size: 1 MiB); so does qblock-img.
run "$QEMU_IMG" create -q -f vmdk sp.vmdk 1M
[ "$(peek sp.vmdk 28 '<Q')" = 1 ] || fail "unexpected vmdk layout"
cp sp.vmdk d1.vmdk
poke d1.vmdk 36 '<Q' 2048
truncate -s 4M d1.vmdk
pol -f vmdk d1.vmdk
pol -f vmdk -D 0x100000 d1.vmdk
run qbi info d1.vmdk

echo "== vmdk: an embedded descriptor of 2^31 sectors in a 2 MiB file"
# qemu-img 7.2 info opens it; libqblock reads no more of the descriptor
# than its cap of a MiB (less a sector), which the policy then refuses.
cp sp.vmdk d2.vmdk
poke d2.vmdk 36 '<Q' 0x7fffffff
truncate -s 2M d2.vmdk
pol -f vmdk d2.vmdk
pol -f vmdk -D 0xffffffffffffffff d2.vmdk
