#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 502-hostile-budgets.sh: images that attack the library's memory: a vmdk
# descriptor of most of a megabyte, and a VDI whose header claims 32 TiB,
# so that its block map (read whole at open) would be 128 MiB. Under the
# default open policy each is refused with the limit named, before any
# allocation; raising the limit (or qblock-img, which keeps qemu-img's
# behaviour) opens the descriptor. The driver's own hard cap on
# descriptors still refuses a larger one for everybody.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/hostile-common.sh"

# putle FILE OFFSET NBYTES(4|8) VALUE: a little-endian field.
putle() {
    python3 -c 'import struct, sys
p, off, n, v = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3]), int(sys.argv[4], 0)
with open(p, "r+b") as f:
    f.seek(off)
    f.write(struct.pack("<I" if n == 4 else "<Q", v))' "$@" || fail "could not patch $1"
}

echo "== a vmdk descriptor of 900 KiB"
"$QEMU_IMG" create -q -f vmdk -o subformat=monolithicFlat big.vmdk 1M || fail "qemu-img create"
# qemu-img writes its random CID without leading zeros: fix it, so the size is the same every run.
sed -i 's/^CID=.*/CID=12345678/' big.vmdk
line=$(printf '#%.0s' $(seq 1 127))
for _ in $(seq 1 7200); do echo "$line"; done >>big.vmdk
echo "descriptor bytes: $(stat -c %s big.vmdk)"
pol -f vmdk big.vmdk
pol -f vmdk -D 0xffffffffffffffff big.vmdk
run qbi read -f vmdk big.vmdk 0 512

echo "== a vmdk descriptor over the driver's cap"
for _ in $(seq 1 1200); do echo "$line"; done >>big.vmdk
pol -f vmdk -D 0xffffffffffffffff big.vmdk
run_fails qbi info -f vmdk big.vmdk

echo "== a VDI header claiming 32 Ti of 1 MiB blocks"
"$QEMU_IMG" create -q -f vdi small.vdi 1M || fail "qemu-img create"
putle small.vdi 0x170 8 0x200000000000      # disk size: 32 TiB
putle small.vdi 0x180 4 0x02000000          # blocks in image: 32 Mi
putle small.vdi 0x158 4 0x08000200          # data after a 128 MiB block map
truncate -s $((0x08000200)) small.vdi
pol -f vdi small.vdi
pol -f vdi -m 0x1000000 small.vdi
