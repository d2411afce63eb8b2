#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 503-hostile-tables.sh: images whose tables, all inside the file, are as
# large as the format lets them be, so that opening them would make the
# library keep tens or hundreds of MiB in memory: a qcow2 L1 table and
# refcount table at QEMU's limits (and one past them), a VHD BAT of 32 Mi
# entries, a sparse VMDK grain directory for 512 TiB, a QED L1 of 64 MiB.
# Under the open policy's metadata budget each is refused with
# QB_ERR_LIMIT naming the table and the budget, before the table is read
# (the whole script runs under a 2 GB address-space cap); the budget adds
# up the tables of one image; qblock-img, which keeps qemu-img's
# behaviour, opens what qemu-img opens. QED keeps its tables in a page
# cache, so its L1 size costs nothing and opens under any budget.
# (502 covers the VDI block map and vmdk descriptors; 104 the sizes past
# QEMU's limits.)

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/hostile-common.sh"
cap_memory

echo "== qcow2: an active L1 table of 4 Mi entries (32 MiB, QEMU's limit)"
# qemu-img 7.2 info: opens it (virtual size: 2 PiB).
run "$QEMU_IMG" create -q -f qcow2 l1.qcow2 1M
poke l1.qcow2 24 '>Q' $((1 << 51)) 36 '>I' $((4 << 20)) 40 '>Q' 0x100000
truncate -s $((0x100000 + (32 << 20))) l1.qcow2
pol -f qcow2 l1.qcow2
pol -f qcow2 -m 0x1000000 l1.qcow2
run qbi info l1.qcow2
grep '^virtual size' run.out

echo "== qcow2: one entry more"
# qemu-img 7.2 info: "Could not open 'l1b.qcow2': Active L1 table too large".
cp l1.qcow2 l1b.qcow2
poke l1b.qcow2 36 '>I' $(((4 << 20) + 1))
truncate -s $((0x100000 + (33 << 20))) l1b.qcow2
pol -f qcow2 l1b.qcow2
refused info l1b.qcow2

echo "== qcow2: a refcount table of 128 clusters (8 MiB, QEMU's limit)"
# qemu-img 7.2 info: opens it (check then finds the table's extra
# clusters unaccounted for).
run "$QEMU_IMG" create -q -f qcow2 rt.qcow2 1M
poke rt.qcow2 56 '>I' 128
truncate -s $((0x30000 + (8 << 20))) rt.qcow2
pol -f qcow2 rt.qcow2
pol -f qcow2 -m 0x400000 rt.qcow2
run qbi info rt.qcow2

echo "== qcow2: both tables at their limits share one budget of 36 MiB"
# Each alone fits in 36 MiB; together (40 MiB) they do not.
run "$QEMU_IMG" create -q -f qcow2 both.qcow2 1M
poke both.qcow2 24 '>Q' $((1 << 51)) 36 '>I' $((4 << 20)) 40 '>Q' 0x100000 56 '>I' 128
truncate -s $((0x100000 + (32 << 20))) both.qcow2
pol -f qcow2 -m 0x2400000 l1.qcow2
pol -f qcow2 -m 0x2400000 rt.qcow2
pol -f qcow2 -m 0x2400000 both.qcow2

echo "== qcow2: a refcount table of 129 clusters"
# qemu-img 7.2 info: "Could not open 'rt.qcow2': Reference count table too large".
poke rt.qcow2 56 '>I' 129
truncate -s $((0x30000 + (9 << 20))) rt.qcow2
pol -f qcow2 rt.qcow2
refused info rt.qcow2

echo "== vpc: a BAT of 32 Mi entries (128 MiB)"
# qemu-img 7.2 info: reads the whole BAT, then "Could not open 'v.vhd':
# block-vpc: free_data_block_offset points after the end of file. The
# image has been truncated." (the zeroed entries name blocks at 0).
run "$QEMU_IMG" create -q -f vpc v.vhd 1M
poke v.vhd $((512 + 28)) '>I' $((32 << 20))
truncate -s $((0x600 + (128 << 20) + 512)) v.vhd
pol -f vpc v.vhd
pol -f vpc -m 0x10000000 v.vhd
refused info v.vhd

echo "== vmdk: a sparse extent of 512 TiB (a 128 MiB grain directory)"
# qemu-img 7.2 info: opens it (virtual size: 512 TiB); so does qblock-img.
run "$QEMU_IMG" create -q -f vmdk s.vmdk 1M
poke s.vmdk 12 '<Q' $((1 << 40))
gd=$(peek s.vmdk 56 '<Q')
truncate -s $((gd * 512 + (128 << 20) + 0x10000)) s.vmdk
pol -f vmdk s.vmdk
run qbi info s.vmdk
grep '^virtual size' run.out

echo "== qed: an L1 table of 16 clusters of 1 MiB (16 MiB)"
# qemu-img 7.2 info: opens it; libqblock reads tables through a page cache.
run "$QEMU_IMG" create -q -f qed -o cluster_size=1M,table_size=16 q.qed 1T
pol -f qed q.qed
pol -f qed -m 0x100000 q.qed
