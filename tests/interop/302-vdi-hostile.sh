#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 302-vdi-hostile.sh: VDI headers with one bad field each. Where qemu-img
# 7.2 refuses the image, qblock-img refuses it too, cleanly (a message, exit
# 1, no crash); fields QEMU does not check but that would make the block
# map unsafe are refused by libqblock alone; fields QEMU ignores are
# accepted and read as QEMU reads them.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# poke FILE OFFSET LE32|LE64 VALUE: overwrite a little-endian field.
poke() {
    local file=$1 off=$(($2)) width=$3 v=$(($4)) bytes="" i
    local n=4
    [ "$width" = LE64 ] && n=8
    for ((i = 0; i < n; i++)); do
        bytes+=$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 )))
    done
    printf "$bytes" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none ||
        fail "could not patch $file"
}

run "$QEMU_IMG" create -q -f vdi base.vdi 8M
run "$QEMU_IO" -f vdi -c "write -P 0x44 0 2M" base.vdi

# offset width value: refused by both.
both=(
    "0x44 LE32 0x00010000"     # version 1.0
    "0x44 LE32 0x00010002"     # version 1.2
    "0x154 LE32 0x201"         # unaligned block map
    "0x158 LE32 0x401"         # unaligned data area
    "0x168 LE32 4096"          # sector size
    "0x178 LE32 0x200000"      # block size 2 MiB
    "0x178 LE32 0"             # block size 0
    "0x180 LE32 0x7fffffff"    # too many blocks
    "0x180 LE32 4"             # the map covers 4 MiB of 8
    "0x170 LE64 0x900000"      # disk size past the map
    "0x170 LE64 0xffffffffffff0000"
    "0x1a8 LE32 1"             # link UUID
    "0x1b8 LE32 1"             # parent UUID
)
for p in "${both[@]}"; do
    set -- $p
    cp base.vdi bad.vdi
    poke bad.vdi $1 $2 $3
    run_status 1 "$QEMU_IMG" info -f vdi bad.vdi
    run_fails qbi info -f vdi bad.vdi
    grep -q "bad.vdi" run.err || fail "the message does not name the image: $(cat run.err)"
    run_fails qbi read -f vdi bad.vdi 0 512
done

# Refused by libqblock only: a map past the end of the file or overlapping
# the data area or the header (QEMU would read data as map entries or
# write map entries into data).
for p in "0x180 LE32 0x1fffff00" "0x154 LE32 0x7ffffe00" "0x158 LE32 0x200" "0x154 LE32 0"; do
    set -- $p
    cp base.vdi bad.vdi
    poke bad.vdi $1 $2 $3
    run_fails qbi info -f vdi bad.vdi
done
# block_extra: VirtualBox and QEMU would read such images differently; refused as unsupported.
cp base.vdi bad.vdi
poke bad.vdi 0x17c LE32 512
run_fails qbi info -f vdi bad.vdi
grep -q "block_extra" run.err || fail "no block_extra message: $(cat run.err)"

# Accepted as QEMU accepts them: the image type, the header size, an odd
# disk size (rounded up to a sector), map entries past the file.
for p in "0x4c LE32 4" "0x48 LE32 0x190" "0x170 LE64 8388508" "0x204 LE32 7"; do
    set -- $p
    cp base.vdi ok.vdi
    poke ok.vdi $1 $2 $3
    rm -f ours.raw ref.raw
    run qbi convert -f vdi -O raw ok.vdi ours.raw
    run "$QEMU_IMG" convert -f vdi -O raw ok.vdi ref.raw
    same_content ours.raw ref.raw
done

# Truncated files.
for n in 0 100 511; do
    head -c $n base.vdi >short.vdi
    run_fails qbi info -f vdi short.vdi
done
echo "302: OK"
