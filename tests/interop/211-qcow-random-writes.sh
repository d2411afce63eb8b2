#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 211-qcow-random-writes.sh: qcow (version 1) images that libqblock creates
# (without a backing file, over a raw backing file) and one that qemu-img
# filled with compressed clusters take thousands of seeded random writes of
# any offset and length through the public API; `qemu-img compare` then
# finds each equal to the writer's model (the start contents with every
# write applied, kept outside libqblock), and `qblock-img map --output=json`
# equals `qemu-img map --output=json`. qemu-img has no check for qcow.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img

# build_writer: set QBWRITER to the writer program, tests/helpers/qbwriter.c
# (seeded random writes through the public API checked against a model kept
# outside libqblock; its opening comment gives the commands). `make check`
# builds it; after a plain `make` (or an edit since), compile it here.
build_writer() {
    local cc=${CC:-cc} san= src=$SRCDIR/tests/helpers/qbwriter.c
    QBWRITER=$BUILDDIR/tests/helpers/qbwriter
    [ -x "$QBWRITER" ] && [ "$QBWRITER" -nt "$src" ] && return 0
    command -v "${cc%% *}" >/dev/null 2>&1 || skip "no C compiler ($cc) to build the writer program"
    san=$(sed -n 's/^CONFIG_SANITIZERS = *//p' "$BUILDDIR/config-host.mak" 2>/dev/null)
    QBWRITER=$TEST_DIR/qbwriter
    # shellcheck disable=SC2086
    $cc -std=gnu11 -O2 -Wall -Wextra ${san:+-fsanitize=$san} -I"$SRCDIR/include" \
        -o "$QBWRITER" "$src" -L"$BUILDDIR" -lqblock || fail "could not build the writer program"
}

# writer ARGS...: run qbwriter, which must succeed (its progress lines dropped).
writer() {
    "$QBWRITER" "$@" >/dev/null || fail "qbwriter $* failed"
}

same_map() {
    "$QEMU_IMG" map --output=json "$1" >"$TEST_DIR/ref.map" 2>&1 || fail "qemu-img map $1"
    run qbi map --output=json "$1"
    same_output "$1: map" "$TEST_DIR/ref.map" "$TEST_DIR/run.out"
}

build_writer

# No backing file: 4 KiB clusters, 512-entry tables.
run qbi create -f qcow plain.qcow 64M
run "$QEMU_IMG" create -f raw start.raw 64M
QBW_WRITEBACK=1 writer write plain.qcow start.raw 11 3000 131072 0 model.raw
run "$QEMU_IMG" compare -f qcow -F raw plain.qcow model.raw
same_map plain.qcow
echo "qcow: 3000 writes, contents and map as expected"

# The same in write-through mode, with flushes, over an odd size.
run qbi create -f qcow odd.qcow 10000000
run "$QEMU_IMG" create -f raw start.raw 10000384
writer write odd.qcow start.raw 12 300 65536 25 model.raw
run "$QEMU_IMG" compare -f qcow -F raw odd.qcow model.raw
same_map odd.qcow
echo "qcow odd size, write-through: 300 writes, contents and map as expected"

# A raw backing file shorter than the image: 512-byte clusters, copy-on-write.
head -c $((20 * 1024 * 1024)) /dev/urandom >base.raw
cp base.raw start.raw
truncate -s 24M start.raw
run qbi create -f qcow -b base.raw -F raw ov.qcow 24M
QBW_WRITEBACK=1 writer write ov.qcow start.raw 13 1000 100000 0 model.raw
run "$QEMU_IMG" compare -f qcow -F raw ov.qcow model.raw
same_map ov.qcow
echo "qcow over raw: 1000 writes, contents and map as expected"

# Compressed clusters written by qemu-img, then rewritten in part by libqblock.
head -c 2000000 "$QEMU_IMG" >src.raw
truncate -s 8M src.raw
rc=0
"$QEMU_IMG" convert -c -f raw -O qcow src.raw comp.qcow >/dev/null 2>&1 || rc=$?
[ $rc -le 1 ] || fail "qemu-img convert -c exited $rc"   # 7.2 exits 1 after a complete image
run "$QEMU_IMG" compare -f qcow -F raw comp.qcow src.raw
QBW_WRITEBACK=1 writer write comp.qcow src.raw 14 1500 20000 0 model.raw
run "$QEMU_IMG" compare -f qcow -F raw comp.qcow model.raw
same_map comp.qcow
echo "qcow with compressed clusters: 1500 writes, contents and map as expected"
