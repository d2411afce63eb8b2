#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 024-dd.sh: `qblock-img dd` does what `qemu-img dd` 7.2 does: the same
# output image (format, size and bytes, compared with qemu-img compare and
# cmp for raw) for bs, count and skip, including 7.2's reading of skip with
# count (count ends the input count blocks from its start, so skip=2
# count=3 copies one block, not three as dd(1) would), and the same exit
# codes and messages for bad operands.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/chain-common.sh"
require_qemu_img
require_qemu_io

rm -f src.raw src.qcow2
"$QEMU_IMG" create -q -f raw src.raw 9000
"$QEMU_IO" -f raw -c "write -P 7 0 5000" -c "write -P 9 5000 4000" src.raw >/dev/null
"$QEMU_IMG" convert -f raw -O qcow2 src.raw src.qcow2
twins
twin_copy src.raw src.qcow2

# dd_case NAME OUTFMT ARGS...: both tools make out.img; same result.
dd_case() {
    local name=$1 ofmt=$2
    shift 2
    rm -f q/out.img o/out.img
    both "$name" msg dd -O "$ofmt" "$@" of=out.img
    [ -e q/out.img ] || return 0
    run "$QEMU_IMG" compare -f "$ofmt" -F "$ofmt" q/out.img o/out.img
    if [ "$ofmt" = raw ]; then
        cmp -s q/out.img o/out.img || fail "raw outputs differ: $name"
        echo "   $(stat -c %s q/out.img) bytes"
    fi
}

dd_case "whole" raw if=src.raw
dd_case "bs=3000" raw if=src.raw bs=3000
dd_case "skip and count" raw if=src.raw bs=1000 count=3 skip=2
dd_case "count" qcow2 if=src.raw bs=4k count=1
dd_case "qcow2 input" raw -f qcow2 if=src.qcow2 bs=1k skip=1
dd_case "skip past the end" raw if=src.raw skip=100
dd_case "bs larger than the input" vmdk if=src.raw bs=1M
dd_case "unknown operand" raw if=src.raw foo=1
dd_case "bs=0" raw if=src.raw bs=0
dd_case "bad count" raw if=src.raw count=-1
dd_case "bad skip" raw if=src.raw skip=x
both "no output" msg dd if=src.raw
both "no input" msg dd of=out.img
both "missing input" rc dd if=nothere.raw of=out.img
exit 0
