#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 107-qcow2-crash-dirty.sh: what a crash leaves, and how an image marked
# dirty or carrying foreign header data is treated.
#  - With lazy refcounts a writer on the public API killed (SIGKILL) in the
#    middle of random writes leaves the dirty bit set; libqblock
#    reads such an image read-only as it is, and a read-write open rebuilds
#    the refcounts and clears the bit (QEMU's rule): check is clean after.
#  - An image QEMU left dirty (qemu-io killed) is repaired the same way.
#  - Unknown header extensions survive a read-write open byte for byte,
#    unknown autoclear bits are cleared; an image with a persistent bitmap
#    gets its bitmaps bit cleared, which QEMU answers with its warning and
#    leaked bitmap clusters only.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

build_helper STRESS qbstress

# check_status_of FILE: qemu-img check's exit status (0 clean, 3 leaks, 2 corrupt).
check_status_of() {
    local rc=0
    "$QEMU_IMG" check "$1" >check.out 2>&1 || rc=$?
    echo $rc
}

# wait_busy FILE BYTES: wait (10 s at most) until FILE has grown past BYTES,
# so that a writer is surely in the middle of its work when it is killed,
# however loaded the machine is.
wait_busy() {
    local i
    for i in $(seq 1 100); do
        [ "$(stat -c %s "$1")" -gt "$2" ] && return 0
        sleep 0.1
    done
    fail "the writer on $1 made no progress"
}

# The writer killed at random points on every layout, with its flushed
# writes checked, is 401-crash-all.sh; this script keeps what is special
# to qcow2's dirty bit and foreign header data.
run "$QEMU_IMG" create -q -f raw base.raw 16M
qio_ok base.raw "write -P 0x3c 0 16M"

# Lazy refcounts: killed while dirty, then repaired by a read-write open.
rm -f lazy.qcow2 mirror.raw
run qbi create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 16M
run "$QEMU_IMG" convert -O raw lazy.qcow2 mirror.raw
"$STRESS" -s 9 -n 100000 -m 200000 -F 20 lazy.qcow2 mirror.raw >/dev/null 2>&1 &
pid=$!
wait_busy lazy.qcow2 2000000
sleep 0.3
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
dirty=$(od -An -tu1 -j 79 -N1 lazy.qcow2 | tr -d ' ')
[ $((dirty & 1)) = 1 ] || fail "lazy refcounts: the dirty bit is not set after the kill"
run qbi info lazy.qcow2                      # read-only use of a dirty image works
run qbi read -q lazy.qcow2 0 1M
cp lazy.qcow2 lazy-q.qcow2
run qbi write -q -P 0x5e lazy.qcow2 64k 4k   # read-write: rebuilt, then clean
dirty=$(od -An -tu1 -j 79 -N1 lazy.qcow2 | tr -d ' ')
[ $((dirty & 1)) = 0 ] || fail "lazy refcounts: the dirty bit is still set"
[ "$(check_status_of lazy.qcow2)" = 0 ] || { cat check.out >&2; fail "lazy refcounts: check"; }
"$QEMU_IO" -f qcow2 -c 'write -P 0x5e 64k 4k' lazy-q.qcow2 >/dev/null 2>&1 ||
    fail "qemu-io on the dirty copy"
"$QEMU_IMG" compare -q lazy.qcow2 lazy-q.qcow2 || fail "lazy refcounts: repaired contents differ from QEMU's"
echo "lazy refcounts: dirty after a kill, rebuilt by a read-write open, same data as QEMU's repair"

# An image QEMU itself left dirty.
rm -f qd.qcow2
run "$QEMU_IMG" create -q -f qcow2 -o lazy_refcounts=on qd.qcow2 16M
"$QEMU_IO" -f qcow2 -c 'write -P 0x44 0 1M' -c 'write -P 0x45 5M 300k' -c flush -c 'sigraise 9' \
    qd.qcow2 >/dev/null 2>&1
dirty=$(od -An -tu1 -j 79 -N1 qd.qcow2 | tr -d ' ')
[ $((dirty & 1)) = 1 ] || fail "qemu-io did not leave the image dirty"
run qbi read -q -P 0x45 qd.qcow2 5M 300k
run qbi write -q -P 0x46 qd.qcow2 8M 64k
[ "$(check_status_of qd.qcow2)" = 0 ] || { cat check.out >&2; fail "QEMU's dirty image: check"; }
run qbi read -q -P 0x44 qd.qcow2 0 1M
echo "dirty image from QEMU: rebuilt on a read-write open, data intact"

# Unknown header extension and autoclear bit.
rm -f ext.qcow2
run "$QEMU_IMG" create -q -f qcow2 -b base.raw -F raw ext.qcow2 16M
# Move the end marker and the name (at 0x208/0x210) behind a new extension.
name_len=$(od -An -tu4 --endian=big -j 16 -N4 ext.qcow2 | tr -d ' ')
dd if=ext.qcow2 of=name.bin bs=1 skip=$((0x210)) count="$name_len" status=none
printf '\x12\x34\x56\x78\x00\x00\x00\x0dhello, qcow2!\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' |
    dd of=ext.qcow2 bs=1 seek=$((0x208)) conv=notrunc status=none
dd if=name.bin of=ext.qcow2 bs=1 seek=$((0x228)) conv=notrunc status=none
printf '\x00\x00\x00\x00\x00\x00\x02\x28' | dd of=ext.qcow2 bs=1 seek=8 conv=notrunc status=none
printf '\x00\x00\x00\x00\x00\x00\x00\x20' | dd of=ext.qcow2 bs=1 seek=88 conv=notrunc status=none
run "$QEMU_IMG" info ext.qcow2
dd if=ext.qcow2 of=before.bin bs=1 count=$((0x300)) status=none
run qbi write -q -P 0x71 ext.qcow2 1M 64k
dd if=ext.qcow2 of=after.bin bs=1 count=$((0x300)) status=none
[ "$(od -An -tu8 --endian=big -j 88 -N8 ext.qcow2 | tr -d ' ')" = 0 ] ||
    fail "the unknown autoclear bit was not cleared"
cmp -n 88 before.bin after.bin >&2 || fail "header bytes before the autoclear field changed"
cmp -i 96 before.bin after.bin >&2 || fail "the extensions or the backing name changed"
[ "$(check_status_of ext.qcow2)" = 0 ] || { cat check.out >&2; fail "extension image: check"; }
run qbi read -q -P 0x3c ext.qcow2 0 64k
echo "unknown extension kept byte for byte, unknown autoclear bit cleared"

# A persistent bitmap: its consistency bit goes, QEMU then reports leaks only.
rm -f bm.qcow2
run "$QEMU_IMG" create -q -f qcow2 bm.qcow2 16M
run "$QEMU_IMG" bitmap --add bm.qcow2 b0
"$QEMU_IO" -f qcow2 -c 'write -P 1 0 1M' bm.qcow2 >/dev/null || fail "qemu-io on bm.qcow2"
run qbi read -q -P 1 bm.qcow2 0 1M
[ "$(check_status_of bm.qcow2)" = 0 ] || fail "bitmap image: check before the write"
run qbi write -q -P 2 bm.qcow2 2M 64k
rc=$(check_status_of bm.qcow2)
{ [ "$rc" = 0 ] || [ "$rc" = 3 ]; } && ! grep -q ERROR check.out ||
    { cat check.out >&2; fail "bitmap image: check after the write exited $rc"; }
run "$QEMU_IMG" check -q -r leaks bm.qcow2
[ "$(check_status_of bm.qcow2)" = 0 ] || fail "bitmap image: not clean after -r leaks"
echo "persistent bitmap: marked inconsistent, leaks at worst"
