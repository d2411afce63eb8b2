#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 201-qed-random-writes.sh: QED images that libqblock creates (default and
# other cluster and table sizes, an odd size, a raw backing file, and a chain
# qed over qcow over raw made entirely by qblock-img) take thousands of
# seeded random writes of any offset and length through the public API;
# `qemu-img check` then finds no errors and no leaks, `qemu-img compare`
# finds the image equal to the writer's model (the start contents with every
# write applied, kept outside libqblock), and `qblock-img map --output=json`
# equals `qemu-img map --output=json`.
#
# QEMU 7.2's check reports spurious leaks on 4 KiB-cluster images once the
# file passes 4094 clusters (its own images included), so the 4 KiB case
# stays below 16 MiB.

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

# qed_clean IMG: qemu-img check finds no errors and no leaks (exit 0).
qed_clean() {
    local rc=0
    "$QEMU_IMG" check -f qed "$1" >"$TEST_DIR/check.out" 2>&1 || rc=$?
    if [ $rc -ne 0 ] || ! grep -q "^No errors were found on the image.$" "$TEST_DIR/check.out"; then
        sed 's/^/    (qemu-img check) /' "$TEST_DIR/check.out" >&2
        fail "qemu-img check $1 exited $rc"
    fi
}

# same_as_model FMT IMG MODEL: qemu-img reads IMG as the model says.
same_as_model() {
    run "$QEMU_IMG" compare -f "$1" -F raw "$2" "$3"
}

# same_map IMG: qblock-img map --output=json equals qemu-img's.
same_map() {
    "$QEMU_IMG" map --output=json "$1" >"$TEST_DIR/ref.map" 2>&1 || fail "qemu-img map $1"
    run qbi map --output=json "$1"
    same_output "$1: map" "$TEST_DIR/ref.map" "$TEST_DIR/run.out"
}

# random_case NAME OPTS SIZE SEED COUNT MAXLEN FLUSH_EVERY WRITEBACK
random_case() {
    local name=$1 opts=$2 size=$3 seed=$4 count=$5 maxlen=$6 flush=$7 wb=$8
    rm -f img.qed start.raw model.raw
    run qbi create -f qed -o "$opts" img.qed "$size"
    run "$QEMU_IMG" create -f raw start.raw "$size"
    if [ "$wb" = wb ]; then
        QBW_WRITEBACK=1 writer write img.qed start.raw "$seed" "$count" "$maxlen" "$flush" model.raw
    else
        writer write img.qed start.raw "$seed" "$count" "$maxlen" "$flush" model.raw
    fi
    qed_clean img.qed
    same_as_model qed img.qed model.raw
    same_map img.qed
    echo "$name: $count writes, qemu-img check clean, contents and map as expected"
}

build_writer

random_case "defaults" "cluster_size=65536" 64M 1 3000 131072 0 wb
random_case "4k clusters, 2-cluster tables" "cluster_size=4k,table_size=2" 12M 2 3000 16384 0 wb
random_case "1M clusters, 16-cluster tables, write-through" "cluster_size=1M,table_size=16" 64M 3 300 300000 50 wt
random_case "odd size" "cluster_size=16k,table_size=4" 10000000 4 2000 65536 0 wb

# A raw backing file shorter than the image: partial writes copy its data.
rm -f base.raw
run "$QEMU_IMG" create -f raw base.raw 40M
head -c 41943040 /dev/urandom >base.raw
cp base.raw start.raw
truncate -s 48M start.raw
run qbi create -f qed -o cluster_size=16k -b base.raw -F raw ov.qed 48M
[ "$(od -An -tx1 -j16 -N1 ov.qed | tr -d ' ')" = 05 ] || fail "ov.qed: features are not 0x5"
QBW_WRITEBACK=1 writer write ov.qed start.raw 5 1000 100000 0 model.raw
qed_clean ov.qed
same_as_model qed ov.qed model.raw
same_map ov.qed
echo "qed over raw: 1000 writes, qemu-img check clean, contents and map as expected"

# qed over qcow over raw, every layer made and written by libqblock.
rm -f mid.qcow top.qed
run qbi create -f qcow -b base.raw -F raw mid.qcow 48M
QBW_WRITEBACK=1 writer write mid.qcow start.raw 6 400 70000 0 model-mid.raw
run qbi create -f qed -b mid.qcow -F qcow top.qed 48M
QBW_WRITEBACK=1 writer write top.qed model-mid.raw 7 1000 70000 0 model-top.raw
qed_clean top.qed
same_as_model qcow mid.qcow model-mid.raw
same_as_model qed top.qed model-top.raw
same_map top.qed
echo "qed over qcow over raw: 400 + 1000 writes, qemu-img check clean, contents and map as expected"
