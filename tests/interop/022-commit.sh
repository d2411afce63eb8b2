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

# chain FMT: make_chain's chain in both twins.
chain() {
    make_chain $1
    local f=$1
    twins
    twin_copy base.$f mid.$f top.$f
}

for f in qcow2 qed qcow; do
    chain $f
    both "$f commit" msg commit -f $f top.$f
    for l in top mid base; do same_result $f $l.$f; done
    [ $f = qcow ] || same_alloc $f top.$f

    # -d and -b take the same path in every format: qcow2 covers them.
    [ $f = qcow2 ] || continue
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
