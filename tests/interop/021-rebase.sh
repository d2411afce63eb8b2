#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 021-rebase.sh: `qblock-img rebase` does what `qemu-img rebase` does on twin
# copies of the same chains: safe mode onto another image, onto a file
# deeper in the chain, flattening with -b "", unsafe mode; same exit codes,
# stdout and messages, and afterwards the same content (qemu-img compare,
# also against the content before), a clean qemu-img check and the same
# backing file and format in qemu-img info, and the same allocation in
# qemu-img map (only the sectors that differ are copied).

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/chain-common.sh"
require_qemu_img
require_qemu_io

# chain FMT: make_chain's chain and an unrelated new image, in both twins.
chain() {
    local f=$1
    make_chain $f
    rm -f new.$f
    "$QEMU_IMG" create -q -f "$f" new.$f 4M
    "$QEMU_IO" -f "$f" -c "write -P 1 0 256k" -c "write -P 9 3M 64k" new.$f >/dev/null
    "$QEMU_IMG" convert -f "$f" -O raw top.$f before.raw
    twins
    twin_copy base.$f mid.$f top.$f new.$f
}

# kept FMT: the rebased top still reads what it read before.
kept() {
    run "$QEMU_IMG" compare -f "$1" -F raw "o/top.$1" before.raw
}

for f in qcow2 qed; do
    chain $f
    both "$f safe onto new" msg rebase -f $f -b new.$f -F $f top.$f
    same_result $f top.$f
    same_alloc $f top.$f
    kept $f
    both "$f safe flatten" msg rebase -f $f -b "" top.$f
    same_result $f top.$f
    kept $f

    chain $f
    both "$f safe onto base" msg rebase -f $f -b base.$f -F $f top.$f
    same_result $f top.$f
    same_alloc $f top.$f
    kept $f

    chain $f
    both "$f unsafe" msg rebase -f $f -u -b new.$f -F $f top.$f
    same_result $f top.$f
    both "$f unsafe flatten" msg rebase -f $f -u -b "" top.$f
    same_result $f top.$f
done

# qemu-img 7.2 cannot rebase qcow and vmdk images; neither can qblock-img.
for f in qcow vmdk; do
    chain $f
    both "$f safe" msg rebase -f $f -b new.$f -F $f top.$f
    both "$f unsafe" msg rebase -f $f -u -b new.$f -F $f top.$f
done

chain qcow2
both "no -b" msg rebase top.qcow2
both "no -F" msg rebase -b new.qcow2 top.qcow2
both "no -F, unsafe" msg rebase -u -b new.qcow2 top.qcow2
both "missing new backing" msg rebase -b nothere.qcow2 -F qcow2 top.qcow2
both "missing image" rc rebase -b new.qcow2 -F qcow2 nothere.qcow2
both "missing, unsafe" msg rebase -u -b nothere.qcow2 -F qcow2 top.qcow2
(cd q && "$QEMU_IMG" info -f qcow2 top.qcow2) | grep '^backing file' >q.info
(cd o && "$QEMU_IMG" info -f qcow2 top.qcow2) | grep '^backing file' >o.info
same_output "info after an unsafe rebase onto a missing file" q.info o.info
both "bad option" msg rebase -Z -b new.qcow2 top.qcow2
exit 0
