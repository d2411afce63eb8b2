#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 323-vmdk-backing.sh: VMDK backing chains through parentFileNameHint and
# CID/parentCID, mixed both ways: overlays libqblock creates on QEMU's bases
# and QEMU's overlays on ours, three deep, with copy-on-write of partial
# grains; content, `map` and `info` agree with qemu-img's, and a changed
# parent (new CID) makes both refuse the reads that reach it.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/img-common.sh"
require_qemu_img
require_qemu_io

# Shared helpers of the 3xx scripts (same_raw, same_map, same_info,
# random_writes) are in img-common.sh; this script's own follow.

# qio_fmt FMT FILE CMD...: qemu-io on an image of format FMT; must succeed.
qio_fmt() {
    local fmt=$1 file=$2 c out rc=0
    local -a args=()
    shift 2
    for c in "$@"; do
        args+=(-c "$c")
    done
    out=$("$QEMU_IO" -f "$fmt" "${args[@]}" "$file" 2>&1) || rc=$?
    if [ $rc -ne 0 ] || printf '%s\n' "$out" | grep -q "failed\|error"; then
        printf '%s\n' "$out" | sed 's/^/    (qemu-io) /' >&2
        fail "qemu-io reported a problem on $file"
    fi
}

# cid FILE: the CID a descriptor (embedded or not) records.
cid() {
    head -c 12000 "$1" | tr -d '\0' | sed -n 's/^CID=\([0-9a-f]*\).*/\1/p' | head -1
}
parent_cid() {
    head -c 12000 "$1" | tr -d '\0' | sed -n 's/^parentCID=\([0-9a-f]*\).*/\1/p' | head -1
}

# QEMU's base, our overlay.
run "$QEMU_IMG" create -q -f vmdk base.vmdk 32M
qio_fmt vmdk base.vmdk "write -P 0x11 0 32M"
run qbi create -q -f vmdk -b base.vmdk -F vmdk top.vmdk
[ "$(parent_cid top.vmdk)" = "$(cid base.vmdk)" ] || fail "top.vmdk's parentCID is not base's CID"
head -c 12000 top.vmdk | tr -d '\0' | grep -q '^parentFileNameHint="base.vmdk"$' ||
    fail "no parentFileNameHint in top.vmdk"
run "$QEMU_IMG" convert -f vmdk -O raw base.vmdk top.raw
random_writes vmdk top.vmdk top.raw 3301 150 200000
run "$QEMU_IMG" check -f vmdk top.vmdk
run "$QEMU_IMG" compare -f vmdk -F raw top.vmdk top.raw
same_raw vmdk top.vmdk
same_map vmdk top.vmdk
same_info vmdk top.vmdk

# Our base, QEMU's overlay, then our overlay of that (twoGbMaxExtentSparse): three deep.
run qbi create -q -f vmdk b2.vmdk 16M
run qbi write -q -f vmdk -P 0x21 b2.vmdk 0 16M
run "$QEMU_IMG" create -q -f vmdk -b b2.vmdk -F vmdk mid.vmdk
qio_fmt vmdk mid.vmdk "write -P 0x22 1M 4096" "write -P 0x23 5000 3000" "write -z 8M 64k"
run qbi create -q -f vmdk -o subformat=twoGbMaxExtentSparse -b mid.vmdk -F vmdk t3.vmdk
run qbi write -q -f vmdk -P 0x24 t3.vmdk 1050624 1024
run qbi write -q -f vmdk -z t3.vmdk 12M 4096
for img in mid t3; do
    same_raw vmdk $img.vmdk
    same_map vmdk $img.vmdk
    same_info vmdk $img.vmdk
    run "$QEMU_IMG" check -f vmdk $img.vmdk
done
run qbi read -f vmdk -P 0x22 t3.vmdk 1M 2048
run qbi read -f vmdk -P 0x24 t3.vmdk $((1048576 + 2048)) 1024
run qbi read -f vmdk -P 0x22 t3.vmdk $((1048576 + 3072)) 1024
run qbi read -f vmdk -P 0 t3.vmdk 8M 64k
run qbi read -f vmdk -P 0x21 t3.vmdk 9M 64k

# Changing a parent renews its CID: reads reaching it now fail for both tools.
run qbi write -q -f vmdk -P 0x31 base.vmdk 31M 512
[ "$(parent_cid top.vmdk)" != "$(cid base.vmdk)" ] || fail "base.vmdk's CID did not change"
run qbi info top.vmdk
# A range top.vmdk does not hold, so that reading it reaches base.vmdk.
run "$QEMU_IMG" map -f vmdk --output=json -U top.vmdk
off=$(sed -n 's/.*"start": \([0-9]*\), .*"depth": 1,.*/\1/p' run.out | head -1)
[ -n "$off" ] || fail "top.vmdk holds every grain: nothing reaches the parent"
run_fails qbi read -f vmdk top.vmdk "$off" 512
"$QEMU_IO" -f vmdk -c "read $off 512" top.vmdk >qio.out 2>&1
grep -q "read failed" qio.out || fail "qemu-io read through a changed parent"
# What top.vmdk holds itself still reads.
run qbi read -f vmdk top.vmdk 0 0

# Parents must be vmdk images, and flat images cannot have one.
run "$QEMU_IMG" create -q -f raw r.raw 1M
run_fails qbi create -q -f vmdk -b r.raw -F raw bad.vmdk
run_fails qbi create -q -f vmdk -b r.raw bad.vmdk
run_fails qbi create -q -f vmdk -o subformat=monolithicFlat -b b2.vmdk -F vmdk bad.vmdk
echo "323: OK"
