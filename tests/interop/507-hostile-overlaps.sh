#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 507-hostile-overlaps.sh: qcow2 images whose metadata overlaps: an L2
# table that is also the refcount block, an L1 table over the header, a
# refcount table over the L1 table, and data clusters that are the L1
# table, the refcount table or their own L2 table. A write through them
# must not overwrite the other metadata: it fails and marks the image
# corrupt, as QEMU 7.2's overlap checks do, and the file differs from
# before only in the corrupt bit (and, where a cluster was allocated
# first, its refcount): the very bytes qemu-io's write changes.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/hostile-common.sh"
require_qemu_io

run "$QEMU_IMG" create -q -f qcow2 g.qcow2 1M
"$QEMU_IO" -f qcow2 -c 'write -P 7 0 64k' g.qcow2 >/dev/null || fail "qemu-io"
# Layout: header, refcount table 0x10000, refcount block 0x20000, L1
# 0x30000, L2 0x40000, data 0x50000.
[ "$(peek g.qcow2 0x30000 '>q')" = $(((1 << 63) | 0x40000)) ] || fail "unexpected layout"

# changed A B: the offsets (hex) of the bytes that differ within A's length.
changed() {
    cmp -l "$1" "$2" 2>/dev/null | awk '{ printf " %x", $1 - 1 }'
}

# overlap NAME GUESTOFF OFFSET FORMAT VALUE...: a patched copy written at
# GUESTOFF by qblock-img and by qemu-io; both must change the same bytes.
overlap() {
    local name=$1 at=$2
    shift 2
    echo "== $name"
    cp g.qcow2 "$name.orig"
    poke "$name.orig" "$@"
    cp "$name.orig" "$name.qcow2"
    cp "$name.orig" "q$name.qcow2"
    says 1 write -P 1 "$name.qcow2" "$at" 4k
    echo "incompatible features: $(peek "$name.qcow2" 72 '>Q')"
    echo "bytes changed:$(changed "$name.orig" "$name.qcow2")"
    "$QEMU_IO" -f qcow2 -c "write -P 1 $at 4k" "q$name.qcow2" >/dev/null 2>&1
    [ "$(changed "$name.orig" "$name.qcow2")" = "$(changed "$name.orig" "q$name.qcow2")" ] ||
        fail "$name: qemu-io changed other bytes:$(changed "$name.orig" "q$name.qcow2")"
}

# qemu-io 7.2: "Marking image as corrupt: Preventing invalid write on
# metadata (overlaps with active L2 table)", with and without COPIED.
overlap l2-is-refblock 0 0x30000 '>q' $(((1 << 63) | 0x20000))
overlap l2-is-refblock-shared 0 0x30000 '>q' 0x20000
# qemu-io 7.2: "... (overlaps with qcow2_header)"; the magic stays.
overlap l1-on-header 0 40 '>Q' 0
# qemu-io 7.2: fails with an I/O error and changes nothing (the refcounts
# it would write are the L1 table).
overlap reftable-is-l1 512k 48 '>Q' 0x30000
# qemu-io 7.2: "... (overlaps with active L1 table)", "(overlaps with
# refcount table)", "(overlaps with active L2 table)".
overlap data-is-l1 0 0x40000 '>q' $(((1 << 63) | 0x30000))
overlap data-is-reftable 0 0x40000 '>q' $(((1 << 63) | 0x10000))
overlap data-is-own-l2 0 0x40000 '>q' $(((1 << 63) | 0x40000))
