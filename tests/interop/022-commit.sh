#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 022-commit.sh: `qblock-img commit` does what `qemu-img commit` does on twin
# copies of the same chains (plain, -d, -b a deeper base): same exit codes,
# stdout and messages; afterwards every layer reads the same as qemu-img's
# (qemu-img compare), passes qemu-img check, and a qcow2 top image is
# emptied (its map shows no data of its own) unless -d or -b kept it.
#
# Known difference, not compared: qemu-img also empties a qcow (v1) top
# image; qblock-img leaves its data, which then equals the base's.
# vmdk chains are left out: qemu-img 7.2 itself fails to read (compare)
# a vmdk overlay after its own commit ("Invalid argument").

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/chain-common.sh"
require_qemu_img
require_qemu_io

# chain FMT: base <- mid <- top with overlapping data in every layer.
chain() {
    local f=$1
    rm -f base.$f mid.$f top.$f
    "$QEMU_IMG" create -q -f "$f" base.$f 4M
    "$QEMU_IO" -f "$f" -c "write -P 1 0 1M" -c "write -P 4 3M 512k" base.$f >/dev/null
    "$QEMU_IMG" create -q -f "$f" -b base.$f -F "$f" mid.$f
    "$QEMU_IO" -f "$f" -c "write -P 2 512k 1M" mid.$f >/dev/null
    "$QEMU_IMG" create -q -f "$f" -b mid.$f -F "$f" top.$f
    "$QEMU_IO" -f "$f" -c "write -P 3 1M 64k" -c "write -P 3 2M 4k" top.$f >/dev/null
    twins
    twin_copy base.$f mid.$f top.$f
}

for f in qcow2 qed qcow; do
    chain $f
    both "$f commit" msg commit -f $f top.$f
    for l in top mid base; do same_result $f $l.$f; done
    [ $f = qcow ] || same_alloc $f top.$f

    chain $f
    both "$f commit -d" msg commit -f $f -d top.$f
    for l in top mid base; do same_result $f $l.$f; done
    same_alloc $f top.$f

    chain $f
    both "$f commit -b base" msg commit -f $f -b base.$f top.$f
    for l in top mid base; do same_result $f $l.$f; done
    same_alloc $f top.$f
    same_alloc $f mid.$f
done

chain qcow2
both "quiet" msg commit -q top.qcow2
both "no backing file" msg commit base.qcow2
both "base not in chain" msg commit -b nothere.qcow2 top.qcow2
both "base is the image" msg commit -b top.qcow2 top.qcow2
both "missing image" rc commit nothere.qcow2
both "no image" msg commit
exit 0
