#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 301-vdi-we-write.sh: VDI images that libqblock creates have qemu-img's
# header and block map (all but the random UUIDs); after hundreds of seeded
# random writes of any size and alignment (some of zeros), mirrored into a
# raw file by qemu-io, they pass `qemu-img check`, `qemu-img compare` equals
# the mirror, and `map`/`info` agree with qemu-img's. QEMU then writes into
# our image and we into QEMU's, and both still agree.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/img-common.sh"
require_qemu_img
require_qemu_io

# Shared helpers of the 3xx scripts (same_raw, same_map, same_info,
# random_writes) are in img-common.sh; this script's own follow.

# same_header OURS QEMUS: equal bytes but for the image and snapshot UUIDs.
same_header() {
    local a=$1 b=$2
    [ "$(stat -c %s "$a")" = "$(stat -c %s "$b")" ] ||
        fail "$a is $(stat -c %s "$a") bytes, qemu-img's $b $(stat -c %s "$b")"
    cmp -l "$a" "$b" | awk '$1 <= 392 || $1 > 424 { bad = 1 } END { exit bad }' ||
        fail "$a and $b differ outside the UUIDs: $(cmp -l "$a" "$b" | head -5)"
}

for spec in "64M static=off" "16M static=on" "10000 static=off" "0 static=on"; do
    set -- $spec
    run qbi create -q -f vdi -o "$2" ours.vdi "$1"
    run "$QEMU_IMG" create -q -f vdi -o "$2" qemu.vdi "$1"
    if [ "$2" = static=on ]; then
        # The data area is a hole: compare the header and map only.
        head -c 4096 ours.vdi >ours.head
        head -c 4096 qemu.vdi >qemu.head
        same_header ours.head qemu.head
        [ "$(stat -c %s ours.vdi)" = "$(stat -c %s qemu.vdi)" ] || fail "static sizes differ"
    else
        same_header ours.vdi qemu.vdi
    fi
    run "$QEMU_IMG" check -f vdi ours.vdi
done

# Random writes on a dynamic image and a static one.
run qbi create -q -f vdi dyn.vdi 64M
sparse_file dyn.raw 64M
random_writes vdi dyn.vdi dyn.raw 3001 300 300000
run qbi create -q -f vdi -o static=on sta.vdi 16M
sparse_file sta.raw 16M
random_writes vdi sta.vdi sta.raw 3002 150 100000

for img in dyn sta; do
    run "$QEMU_IMG" check -f vdi $img.vdi
    run "$QEMU_IMG" compare -f vdi -F raw $img.vdi $img.raw
    run qbi compare -f vdi -F raw $img.vdi $img.raw
    same_raw vdi $img.vdi
    same_map vdi $img.vdi
    same_info vdi $img.vdi
done

# Cross writes: QEMU into ours, ours into QEMU's.
run "$QEMU_IO" -f vdi -c "write -P 0x5a 7M 3M" -c "write -P 0x5b 12345 6789" dyn.vdi
run "$QEMU_IO" -f raw -c "write -P 0x5a 7M 3M" -c "write -P 0x5b 12345 6789" dyn.raw
run "$QEMU_IMG" create -q -f vdi qemu.vdi 64M
run "$QEMU_IO" -f vdi -c "write -P 0x31 1M 5M" qemu.vdi
sparse_file qemu.raw 64M
run "$QEMU_IO" -f raw -c "write -P 0x31 1M 5M" qemu.raw
random_writes vdi qemu.vdi qemu.raw 3003 60 2000000
for img in dyn qemu; do
    run "$QEMU_IMG" check -f vdi $img.vdi
    run "$QEMU_IMG" compare -f vdi -F raw $img.vdi $img.raw
    run qbi compare -f vdi -F raw $img.vdi $img.raw
done

# A write past the end is refused and changes nothing.
run_fails qbi write -q -f vdi -P 1 dyn.vdi 64M 1
run "$QEMU_IMG" compare -f vdi -F raw dyn.vdi dyn.raw

# Caller-supplied UUIDs: stored in VirtualBox's layout (first three fields
# little-endian) at 0x188 (image) and 0x198 (modification); the same
# options give the same bytes; a bad UUID is refused and makes no file.
uuids="image_uuid=01234567-89ab-cdef-0123-456789abcdef,modification_uuid=fedcba98-7654-3210-8899-aabbccddeeff"
run qbi create -q -f vdi -o "$uuids" u1.vdi 8M
run qbi create -q -f vdi -o "$uuids" u2.vdi 8M
same_content u1.vdi u2.vdi
got=$(od -An -tx1 -j $((0x188)) -N 32 u1.vdi | tr -d ' \n')
[ "$got" = "67452301ab89efcd0123456789abcdef98badcfe547610328899aabbccddeeff" ] ||
    fail "UUID bytes in the header: $got"
run "$QEMU_IMG" check -f vdi u1.vdi
run qbi create -q -f vdi u3.vdi 8M
cmp -s u1.vdi u3.vdi && fail "an image without UUID options has the caller's UUIDs"
run_fails qbi create -q -f vdi -o image_uuid=0123-not-a-uuid bad.vdi 8M
grep -q "UUID" run.err || fail "bad UUID: $(cat run.err)"
[ ! -e bad.vdi ] || fail "a refused create left bad.vdi behind"
echo "301: OK"
