#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 105-qcow2-chains.sh: backing chains of three images with mixed formats
# under a qcow2 top (raw <- qcow2 <- qcow2, vmdk <- qed <- qcow2,
# qcow2 v2 <- qcow <- qcow2, and one made entirely by qblock-img: raw <-
# qed <- qcow2), each layer holding data of its own and the lower layers
# shorter than the top. libqblock reads the top as QEMU does (contents and
# map, depth included), then takes random writes through the public API:
# the top passes `qemu-img check` and equals the writer's mirror, and the
# lower layers are not changed by a single byte.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

build_helper STRESS qbstress

norm_map() {
    sed -E 's/"depth": [0-9]+, "present": false/"depth": 0, "present": false/'
}

qio() { "$QEMU_IO" -f "$1" -c "$2" -c "$3" "$4" >/dev/null || fail "qemu-io $4"; }

# chain NAME: the three files base, mid, top.qcow2 exist; check and stress them.
chain() {
    local name=$1 base=$2 mid=$3
    run "$QEMU_IMG" convert -O raw top.qcow2 ref.raw
    run qbi convert -O raw top.qcow2 out.raw
    cmp ref.raw out.raw >&2 || fail "$name: libqblock reads the chain differently"
    run qbi map --output=json top.qcow2
    norm_map <run.out >ours.json
    "$QEMU_IMG" map --output=json top.qcow2 | norm_map >theirs.json
    same_output "$name: map" theirs.json ours.json
    cp "$base" base.before
    cp "$mid" mid.before
    cp ref.raw mirror.raw
    run "$STRESS" -s 5 -n 1000 -m 500000 -F 40 -d 5 -r 300 top.qcow2 mirror.raw
    "$QEMU_IMG" check top.qcow2 >check.out 2>&1 || { cat check.out >&2; fail "$name: check"; }
    "$QEMU_IMG" compare -q top.qcow2 mirror.raw || fail "$name: the top differs from the mirror"
    cmp "$base" base.before >&2 || fail "$name: the base changed"
    cmp "$mid" mid.before >&2 || fail "$name: the middle layer changed"
    echo "$name: read as QEMU reads it; 1000 writes into the top, lower layers untouched"
}

rm -f ./*.raw ./*.qcow2
run "$QEMU_IMG" create -q -f raw base.raw 12M
qio raw 'write -P 0x11 0 12M' 'write -P 0x12 5M 1M' base.raw
run "$QEMU_IMG" create -q -f qcow2 -b base.raw -F raw mid.qcow2 16M
qio qcow2 'write -P 0x21 3M 2M' 'write -z 8M 1M' mid.qcow2
run "$QEMU_IMG" create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 20M
qio qcow2 'write -P 0x31 0 512k' 'write -c -P 0x32 10M 1M' top.qcow2
chain "raw <- qcow2 <- qcow2" base.raw mid.qcow2

rm -f ./*.raw ./*.qcow2
run "$QEMU_IMG" create -q -f vmdk base.vmdk 10M
qio vmdk 'write -P 0x41 0 6M' 'write -P 0x42 8M 512k' base.vmdk
run "$QEMU_IMG" create -q -f qed -b base.vmdk -F vmdk mid.qed 14M
qio qed 'write -P 0x51 2M 3M' 'write -P 0x52 12M 1M' mid.qed
run "$QEMU_IMG" create -q -f qcow2 -b mid.qed -F qed top.qcow2 20M
qio qcow2 'write -P 0x61 1M 1M' 'write -z 4M 1M' top.qcow2
chain "vmdk <- qed <- qcow2" base.vmdk mid.qed

rm -f ./*.raw ./*.qcow2 ./*.qcow
run "$QEMU_IMG" create -q -f qcow2 -o compat=0.10 base.qcow2 8M
qio qcow2 'write -c -P 0x72 1M 1M' 'write -P 0x71 2M 6M' base.qcow2
run "$QEMU_IMG" create -q -f qcow -b base.qcow2 -F qcow2 mid.qcow 12M
qio qcow 'write -P 0x81 6M 2M' 'write -P 0x82 10M 64k' mid.qcow
run "$QEMU_IMG" create -q -f qcow2 -b mid.qcow -F qcow top.qcow2 16M
qio qcow2 'write -P 0x91 7M 64k' 'write -P 0x92 15M 1M' top.qcow2
chain "qcow2 v2 <- qcow <- qcow2" base.qcow2 mid.qcow

rm -f ./*.raw ./*.qcow2 ./*.qed
run qbi create -q -f raw base.raw 9M
run qbi write -q -f raw -P 0xa1 base.raw 0 9M
run qbi create -q -f qed -b base.raw -F raw mid.qed 13M
run qbi write -q -f qed -P 0xb1 mid.qed 4M 4M
run qbi create -q -f qcow2 -b mid.qed -F qed top.qcow2 18M
run qbi write -q -P 0xc1 top.qcow2 6M 100k
chain "made by qblock-img: raw <- qed <- qcow2" base.raw mid.qed
