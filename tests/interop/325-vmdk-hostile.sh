#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 325-vmdk-hostile.sh: sparse VMDK headers and tables with one bad field
# each, truncated files and junk. Where qemu-img 7.2 refuses the image,
# qblock-img refuses it too, cleanly (a message naming the image, exit 1,
# no crash); where QEMU reads the image anyway, qblock-img reads the same
# bytes or, for tables past the end of the file, refuses cleanly.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# poke FILE OFFSET NBYTES VALUE: overwrite a little-endian field.
poke() {
    local file=$1 off=$(($2)) n=$3 v=$(($4)) bytes="" i
    for ((i = 0; i < n; i++)); do
        bytes+=$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 )))
    done
    printf "$bytes" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none ||
        fail "could not patch $file"
}

run "$QEMU_IMG" create -q -f vmdk base.vmdk 64M
run "$QEMU_IO" -f vmdk -c "write -P 0x44 0 200k" -c "write -P 0x45 40M 64k" base.vmdk

refused() {
    run_status 1 "$QEMU_IMG" info -f vmdk "$1"
    run_fails qbi info -f vmdk "$1"
    grep -q "$1" run.err || fail "the message does not name $1: $(cat run.err)"
}

for p in "4 4 4"                      `# version 4` \
         "0x2c 4 1024"                `# 1024 entries per grain table` \
         "0x2c 4 0"                   `# none` \
         "0x14 8 0"                   `# grain size 0` \
         "0x14 8 0x400000"            `# grains of 2 GiB` \
         "0x40 8 0x100000"            `# overhead past the end of the file` \
         "0x38 8 0xffffffffffffffff"  `# directory at the end, no footer` ; do
    set -- $p
    cp base.vmdk bad.vmdk
    poke bad.vmdk $1 $2 $3
    refused bad.vmdk
done

# Refused by libqblock only: tables past the end of the file or of any
# addressable size (QEMU reads zeros from there, or fails later).
for p in "0x38 8 0x10000000000" "0x38 8 0x7fffffffffffffff" "0xc 8 0x4000000000000000"; do
    set -- $p
    cp base.vmdk bad.vmdk
    poke bad.vmdk $1 $2 $3
    run_fails qbi info -f vmdk bad.vmdk
done
# A grain table past the end: opening works, reading through it fails cleanly.
cp base.vmdk bad.vmdk
poke bad.vmdk $((30 * 512)) 4 0x7fffffff
run_fails qbi read -f vmdk bad.vmdk 0 512

# Accepted as QEMU accepts them, and read the same: a descriptor past the
# end of the file, a redundant directory past it, a grain past it (zeros),
# version 3 without compression (read-only).
for p in "0x1c 8 0x4000000000000" "0x24 8 0x4000000000000" "0x30 8 0x10000000000" \
         "$((31 * 512 + 4)) 4 0x100000" "4 4 3"; do
    set -- $p
    cp base.vmdk ok.vmdk
    poke ok.vmdk $1 $2 $3
    rm -f ours.raw ref.raw
    run qbi convert -f vmdk -O raw ok.vmdk ours.raw
    run "$QEMU_IMG" convert -f vmdk -O raw ok.vmdk ref.raw
    same_content ours.raw ref.raw
done

# Truncated files and junk named as vmdk.
for n in 0 3 100 511 4096; do
    head -c $n base.vmdk >short.vmdk
    run_fails qbi info -f vmdk short.vmdk
done
head -c 64k /dev/urandom >junk.vmdk
run_fails qbi info -f vmdk junk.vmdk
printf 'version=1\nCID=1\ncreateType="monolithicFlat"\nRW 99999999999999999999 FLAT "x" 0\n' >big.vmdk
run_fails qbi info -f vmdk big.vmdk
printf 'version=1\nCID=1\ncreateType="fullDevice"\nRW 1 FLAT "x" 0\n' >dev.vmdk
run_fails qbi info -f vmdk dev.vmdk
grep -q "Unsupported image type 'fullDevice'" run.err || fail "no reason given: $(cat run.err)"
echo "325: OK"
