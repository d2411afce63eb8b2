#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 212-qcow-libyal.sh: libyal's qcow tools, an implementation independent of
# QEMU, accept the qcow images libqblock writes: qcowinfo reports the
# version, size and backing file libqblock recorded, and the image mounted
# with qcowmount (read-only FUSE) holds the same bytes as qemu-img reads
# (qcowmount cannot follow a raw backing file, so the image mounted has none).

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
for tool in qcowinfo qcowmount umount; do
    command -v $tool >/dev/null 2>&1 || skip "$tool is not installed (libqcow-utils)"
done
[ -c /dev/fuse ] || skip "no /dev/fuse for qcowmount"

run qbi create -f qcow -b base.raw -F raw -u ov.qcow 24M
run qcowinfo ov.qcow
grep -q "Format version[[:space:]]*: 1$" "$TEST_DIR/run.out" || fail "qcowinfo: not version 1"
grep -q "Media size.*(25165824 bytes)" "$TEST_DIR/run.out" || fail "qcowinfo: wrong media size"
grep -q "Backing filename[[:space:]]*: base.raw$" "$TEST_DIR/run.out" || fail "qcowinfo: wrong backing file"
echo "qcowinfo: version 1, 24 MiB, backing file base.raw"

run qbi create -f qcow img.qcow 20M
for w in "0x11 0 512" "0x22 1000 3000" "0x33 65000 140000" "0x44 3M 1M" "0x55 20971008 512"; do
    read -r pat off len <<<"$w"
    run qbi write -P "$pat" img.qcow "$off" "$len"
done
run "$QEMU_IMG" convert -f qcow -O raw img.qcow ref.raw
mkdir mnt
qcowmount img.qcow mnt >mount.log 2>&1 &
for _ in $(seq 1 50); do
    [ -e mnt/qcow1 ] && break
    sleep 0.1
done
if ! [ -e mnt/qcow1 ]; then
    cat mount.log >&2
    skip "qcowmount could not mount (FUSE not usable here)"
fi
rc=0
cmp mnt/qcow1 ref.raw >&2 || rc=$?
umount mnt || fail "could not unmount mnt"
[ $rc -eq 0 ] || fail "qcowmount reads img.qcow differently from qemu-img"
echo "qcowmount: same contents as qemu-img reads"
