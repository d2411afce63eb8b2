#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 620-rbd-ceph.sh: libqblock as a client of a real single-node Ceph cluster:
# qblock-img create -f rbd makes the image librbd describes; seeded random
# unaligned I/O through libqblock ends equal to a shadow copy, as QEMU's own
# rbd driver reads it; map equals qemu-img map; a qcow2 converted into RBD
# and back is equal to it under qemu-img compare; resize grows and shrinks
# the RBD image; snapshots open read-only; bad locations are refused.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io
source "$SRCDIR/tests/interop/rbd-common.sh"
build_helper STRESS qbstress
build_helper QBRBD qbrbd
if ! grep -q "^#define CONFIG_RBD 1" "$BUILDDIR/config-host.h"; then
    [ "${CI:-}" = true ] && fail "built without librbd (scripts/install-deps installs librbd-dev)"
    skip "built without librbd"
fi
start_ceph

# create -f rbd: the size and the object size (cluster_size) are librbd's.
run qbi create -f rbd rbd:rbd/img1 16M -o cluster_size=1M
timeout 60 rbd info rbd/img1 >info.txt || fail "rbd info"
grep -q "size 16 MiB in 16 objects" info.txt || fail "rbd info: $(cat info.txt)"
grep -q "order 20 (1 MiB objects)" info.txt || fail "rbd info: $(cat info.txt)"
run qbi info rbd:rbd/img1
grep -q "^virtual size: 16 MiB (16777216 bytes)$" run.out || fail "info: $(cat run.out)"
run_fails qbi create -f rbd rbd:rbd/img1 16M
grep -q "File exists" run.err || fail "create over an existing image: $(cat run.err)"
run_fails qbi create -f rbd rbd:rbd/odd 16M -o cluster_size=3M
grep -q "power of two" run.err || fail "odd object size: $(cat run.err)"
echo "create -f rbd: size and object size as rbd info reports them"

# Seeded random unaligned I/O against a shadow copy, checked by QEMU's driver.
sparse_file mirror.raw 16M
run "$STRESS" -s 620 -n 300 -m 300000 -F 40 -d 10 -r 150 -f raw rbd:rbd/img1 mirror.raw
run "$QEMU_IMG" compare -q -f raw -F raw rbd:rbd/img1 mirror.raw
echo "qbstress over RBD: reads matched, qemu-img compare equal"

# Allocation at object granularity, as QEMU's rbd driver reports it.
run qbi create -f rbd rbd:rbd/sparse 32M -o cluster_size=64K
run "$QEMU_IO" -f raw -c "write -P 0x44 1M 64k" -c "write -P 0x45 7M 300k" -c "write -P 0x46 20000 1" rbd:rbd/sparse
run qbi map -f raw --output=json rbd:rbd/sparse
mv run.out ours.json
"$QEMU_IMG" map -f raw --output=json rbd:rbd/sparse >theirs.json || fail "qemu-img map over RBD"
same_output "map vs qemu-img map" theirs.json ours.json
grep -q '"data": true' ours.json || fail "map shows no data: $(cat ours.json)"
echo "map over RBD: equal to qemu-img map"

# qcow2 -> RBD -> qcow2, with qemu-img compare (QEMU's rbd driver) as the oracle.
run "$QEMU_IMG" create -q -f qcow2 src.qcow2 12M
run "$QEMU_IO" -f qcow2 -c "write -P 0x66 2M 1M" -c "write -P 0x67 5000 3333" -c "write -z 8M 1M" src.qcow2
run qbi convert -f qcow2 -O rbd src.qcow2 rbd:rbd/conv
run "$QEMU_IMG" compare -f raw -F qcow2 rbd:rbd/conv src.qcow2
run qbi convert -f raw -O qcow2 rbd:rbd/conv back.qcow2
run "$QEMU_IMG" compare -f qcow2 -F qcow2 back.qcow2 src.qcow2
run "$QEMU_IMG" check -q back.qcow2
run qbi convert -O raw src.qcow2 rbd:rbd/conv2
run qbi compare -f raw -F qcow2 rbd:rbd/conv2 src.qcow2
echo "convert qcow2 into RBD and back: equal under qemu-img compare"

# A qcow2 image stored inside an RBD image (any format over the protocol).
run qbi create -f qcow2 rbd:rbd/q2 8M
run qbi write -q -f qcow2 -P 0x21 rbd:rbd/q2 1000 70000
run "$QEMU_IO" -f qcow2 -c "read -P 0x21 1000 70000" rbd:rbd/q2
run "$QEMU_IMG" check -f qcow2 rbd:rbd/q2
echo "qcow2 inside an RBD image: written by libqblock, read and checked by QEMU"

# Resize: grow, then shrink, as librbd sees it.
run qbi resize -f raw rbd:rbd/img1 24M
timeout 60 rbd info rbd/img1 | grep -q "size 24 MiB" || fail "grow: $(rbd info rbd/img1)"
truncate -s 24M mirror.raw
run "$QEMU_IMG" compare -q -f raw -F raw rbd:rbd/img1 mirror.raw
run qbi resize -f raw --shrink rbd:rbd/img1 4M
timeout 60 rbd info rbd/img1 | grep -q "size 4 MiB" || fail "shrink: $(rbd info rbd/img1)"
truncate -s 4M mirror.raw
run "$QEMU_IMG" compare -q -f raw -F raw rbd:rbd/img1 mirror.raw
echo "resize: grown to 24M and shrunk to 4M, data kept"

# Snapshots: readable at the snapshot, read-only; the conf= and id= keys.
ceph_cli rbd snap create rbd/img1@s1 >/dev/null 2>&1 || fail "rbd snap create"
run qbi write -q -f raw -P 0x99 rbd:rbd/img1 0 4096
run "$QEMU_IMG" compare -q -f raw -F raw "rbd:rbd/img1@s1:conf=$CEPH_CONF:id=admin" mirror.raw
run_fails qbi write -f raw -P 1 rbd:rbd/img1@s1 0 512
run qbi read -q -f raw -P 0x99 "rbd:rbd/img1:conf=$CEPH_CONF" 0 4096
echo "snapshot: read as it was, writes refused; conf= and id= honoured"

# The public QB_PROT_RBD location: create (QB_FMT_RBD), write, read, snapshot.
run "$QBRBD" -c "$CEPH_CONF" -u admin rbd pub create 8388608 65536
timeout 60 rbd info rbd/pub | grep -q "order 16 (64 KiB objects)" || fail "QB_FMT_RBD object size"
run "$QBRBD" rbd pub write 12345 70000 0x3c
run "$QEMU_IO" -f raw -c "read -P 0x3c 12345 70000" -c "read -P 0 0 12345" rbd:rbd/pub
grep -q "^read 70000/70000" run.out || fail "qemu-io after QB_PROT_RBD write: $(cat run.out)"
ceph_cli rbd snap create rbd/pub@p1 >/dev/null 2>&1 || fail "rbd snap create"
run "$QBRBD" rbd pub write 12345 100 0x3d
run "$QBRBD" -s p1 rbd pub read 12345 70000 0x3c
run "$QBRBD" rbd pub read 12345 100 0x3d
run_status 1 "$QBRBD" -s p1 rbd pub write 0 1 1
grep -q "^failed: .*read-only" run.out || fail "write at a snapshot: $(cat run.out)"
run_status 1 "$QBRBD" rbd "" size
grep -q "^failed: QB_ERR_INVALID_PARAM: .*needs a pool and an image" run.out || fail "no image: $(cat run.out)"
echo "QB_PROT_RBD: create, write, read, snapshot through the public location"

# Refusals: an unknown image or pool, a malformed location, a bad conf file.
run_fails qbi info -f raw rbd:rbd/nosuch
grep -q "No such file or directory" run.err || fail "unknown image: $(cat run.err)"
run_fails qbi info -f raw rbd:nopool/img1
grep -q "cannot open the pool 'nopool'" run.err || fail "unknown pool: $(cat run.err)"
run_fails qbi info -f raw rbd:onlypool
grep -q "needs a pool and an image" run.err || fail "no image: $(cat run.err)"
run_fails qbi info -f raw "rbd:rbd/img1:conf=$TEST_DIR/no.conf"
grep -q "cannot read the Ceph configuration" run.err || fail "bad conf: $(cat run.err)"
echo "unknown image, unknown pool, malformed location, missing conf: refused cleanly"
