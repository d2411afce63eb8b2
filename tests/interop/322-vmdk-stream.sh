#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 322-vmdk-stream.sh: streamOptimized VMDK images written by libqblock
# (`convert`, front to back, deflate-compressed grains with markers): qemu-img
# reads them as the source, checks them clean and maps them the same way,
# vmdkinfo/vmdkmount read them; stored grains cannot be rewritten (as in
# QEMU), QEMU can append grains we then read, and a size that ends inside a
# grain works.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/img-common.sh"
require_qemu_img
require_qemu_io

# Shared helpers of the 3xx scripts (same_raw, same_map, same_info,
# random_writes) are in img-common.sh; this script's own follow.

# Sources: patterns, zeros, random bytes, and a size ending inside a grain.
run "$QEMU_IMG" create -q -f raw a.raw 24M
run "$QEMU_IO" -f raw -c "write -P 0x11 0 1M" -c "write -P 0x12 3M 4k" \
    -c "write -P 0x13 5000 77777" -c "write -P 0 8M 1M" -c "write -P 0x14 25100288 64k" a.raw
head -c 3M /dev/urandom | dd of=a.raw bs=1M seek=12 conv=notrunc status=none
run "$QEMU_IMG" create -q -f raw b.raw 3146752          # 3 MiB + 1 KiB
run "$QEMU_IO" -f raw -c "write -P 0x21 3M 1k" -c "write -P 0x22 0 100k" b.raw
head -c 1M /dev/urandom >c.raw

for src in a b c; do
    run qbi convert -f raw -O vmdk -o subformat=streamOptimized $src.raw $src.vmdk
    run "$QEMU_IMG" check -f vmdk $src.vmdk
    run "$QEMU_IMG" compare -f vmdk -F raw $src.vmdk $src.raw
    run qbi compare -f vmdk -F raw $src.vmdk $src.raw
    same_raw vmdk $src.vmdk
    same_map vmdk $src.vmdk
    same_info vmdk $src.vmdk
    head -c 4 $src.vmdk | grep -q KDMV || fail "$src.vmdk is not a sparse extent"
    if command -v vmdkinfo >/dev/null; then
        run vmdkinfo $src.vmdk
        grep -q "Stream optimized" run.out || fail "vmdkinfo does not see a stream: $(cat run.out)"
    fi
done
# Compression happened: the random megabyte aside, the image is far smaller than its data.
[ $(stat -c %s a.vmdk) -lt $((3 * 1024 * 1024 + 600 * 1024)) ] || fail "a.vmdk is not compressed"

# Stored grains cannot be written again, as with QEMU; new grains can be appended.
run_fails qbi write -q -f vmdk -P 0x31 a.vmdk 0 64k
"$QEMU_IO" -f vmdk -c "write -P 0x31 0 64k" a.vmdk >qio.out 2>&1
grep -q "write failed" qio.out || fail "qemu-io rewrote a stored grain?"
run qbi write -q -f vmdk -P 0x41 a.vmdk 20M 128k
run "$QEMU_IO" -f vmdk -c "write -P 0x42 21M 64k" a.vmdk
run "$QEMU_IO" -f raw -c "write -P 0x41 20M 128k" -c "write -P 0x42 21M 64k" a.raw
run "$QEMU_IMG" check -f vmdk a.vmdk
run "$QEMU_IMG" compare -f vmdk -F raw a.vmdk a.raw
same_raw vmdk a.vmdk

# A stream QEMU converted, read by us (and then extended by us).
run "$QEMU_IMG" convert -f raw -O vmdk -o subformat=streamOptimized b.raw q.vmdk
same_raw vmdk q.vmdk
run qbi write -q -f vmdk -P 0x51 q.vmdk 1M 64k
run "$QEMU_IO" -f raw -c "write -P 0x51 1M 64k" b.raw
run "$QEMU_IMG" compare -f vmdk -F raw q.vmdk b.raw

# vmdkmount (FUSE) reads the stream as the source bytes, where FUSE works.
if command -v vmdkmount >/dev/null && [ -e /dev/fuse ]; then
    mkdir -p mnt
    vmdkmount c.vmdk mnt >vmdkmount.log 2>&1 &
    for _ in $(seq 50); do
        [ -e mnt/vmdk1 ] && break
        sleep 0.1
    done
    if [ -e mnt/vmdk1 ]; then
        rc=0
        cmp mnt/vmdk1 c.raw >&2 || rc=$?
        umount mnt || fusermount -u mnt 2>/dev/null
        wait
        [ $rc -eq 0 ] || fail "vmdkmount reads c.vmdk differently from c.raw"
    else
        note "vmdkmount did not mount (FUSE unusable here): that part is not checked"
        kill %1 2>/dev/null
        wait
    fi
fi
echo "322: OK"
