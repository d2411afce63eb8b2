#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 023-amend.sh: `qblock-img amend` does what `qemu-img amend` does on twin
# copies of the same qcow2 images: compat downgrade (with zero clusters,
# with and without a backing file) and upgrade, lazy_refcounts, size; the
# refusals (unknown and create-only options, lazy refcounts on 0.10,
# refcount_bits=8 and extended L2 on downgrade, other formats); same exit
# codes, stdout and messages, and afterwards byte-identical files where
# qemu-img's layout is followed, else the same content, compat and a clean check.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/chain-common.sh"
require_qemu_img
require_qemu_io

# compat FILE: the compat and lazy refcounts lines of qemu-img info on the twins agree.
same_compat() {
    (cd q && "$QEMU_IMG" info -f qcow2 "$1") | grep 'compat:\|lazy refcounts:' >q.info
    (cd o && "$QEMU_IMG" info -f qcow2 "$1") | grep 'compat:\|lazy refcounts:' >o.info
    same_output "compat of $1" q.info o.info
    sed 's/^ */   /' q.info
}

"$QEMU_IMG" create -q -f qcow2 base.qcow2 2M
"$QEMU_IO" -c "write -P 1 0 2M" base.qcow2 >/dev/null
for b in none backed; do
    rm -f a.qcow2
    if [ $b = none ]; then
        "$QEMU_IMG" create -q -f qcow2 a.qcow2 2M
    else
        "$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 a.qcow2
    fi
    "$QEMU_IO" -c "write -z 0 64k" -c "write -P 5 64k 64k" -c "write -z 1M 128k" a.qcow2 >/dev/null
    twins
    twin_copy base.qcow2 a.qcow2
    both "$b: downgrade" msg amend -o compat=0.10 a.qcow2
    same_result qcow2 a.qcow2
    same_compat a.qcow2
    [ $b = none ] && { cmp -s q/a.qcow2 o/a.qcow2 || fail "downgraded files differ"; }
    both "$b: lazy refcounts on 0.10" msg amend -o lazy_refcounts=on a.qcow2
    both "$b: upgrade with lazy refcounts" msg amend -o compat=1.1,lazy_refcounts=on a.qcow2
    same_result qcow2 a.qcow2
    same_compat a.qcow2
    [ $b = none ] && { cmp -s q/a.qcow2 o/a.qcow2 || fail "upgraded files differ"; }
    both "$b: downgrade drops lazy refcounts" msg amend -o compat=0.10 a.qcow2
    same_result qcow2 a.qcow2
    same_compat a.qcow2
done

rm -f a.qcow2 b.qcow2 c.qcow2 r.raw q.qed
"$QEMU_IMG" create -q -f qcow2 a.qcow2 1M
"$QEMU_IMG" create -q -f qcow2 -o refcount_bits=8 b.qcow2 1M
"$QEMU_IMG" create -q -f qcow2 -o extended_l2=on c.qcow2 1M
"$QEMU_IMG" create -q -f raw r.raw 1M
"$QEMU_IMG" create -q -f qed q.qed 1M
twins
twin_copy a.qcow2 b.qcow2 c.qcow2 r.raw q.qed
both "lazy refcounts off" msg amend -o lazy_refcounts=off a.qcow2
same_compat a.qcow2
both "grow" msg amend -o size=3M a.qcow2
same_result qcow2 a.qcow2
both "unknown option" msg amend -o foo=bar a.qcow2
both "create-only option" msg amend -o cluster_size=4k a.qcow2
both "unknown compat" msg amend -o compat=2 a.qcow2
both "no options" msg amend a.qcow2
both "help" msg amend -o help a.qcow2
both "refcount_bits=8 downgrade" msg amend -o compat=0.10 b.qcow2
both "extended L2 downgrade" msg amend -o compat=0.10 c.qcow2
both "qed" msg amend -f qed -o compat=1.1 q.qed
both "raw" msg amend -f raw -o compat=1.1 r.raw
both "missing image" rc amend -o compat=1.1 nothere.qcow2
for f in a b c; do same_result qcow2 $f.qcow2; done
exit 0
