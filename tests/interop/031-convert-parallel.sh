#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 031-convert-parallel.sh: `qblock-img convert -m N [-W]` keeps N requests in
# flight and still writes every byte right: results for 1, 4 and 16 requests,
# in order and out of order, to raw and qcow2, compressed, and into an
# existing target full of other data (-n, where zeros must be written) pass
# `qemu-img check` and `qemu-img compare` equal to the source. Also -B (only
# the overlay's own clusters are copied, onto the given backing file),
# --target-is-zero, and the errors qemu-img gives for bad -m values and
# --target-is-zero without -n.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

MIB=$((1024 * 1024))
SIZE=$((40 * MIB))

# A source of 20 requests' worth: random data (incompressible, unlike a
# pattern, so that a misplaced chunk cannot compare equal by accident),
# a compressible run, written zeros and holes.
sparse_file src.raw $SIZE
for mb in 0 3 7 12 13 21 30 39; do
    head -c $MIB /dev/urandom |
        dd of=src.raw bs=$MIB seek=$mb conv=notrunc status=none || fail "dd"
done
qio_ok src.raw "write -P 0x5a 17m 1536k" "write -P 0 25m 1m" "write -P 0x77 36m 512"
run "$QEMU_IMG" convert -f raw -O qcow2 src.raw src.qcow2

# same_as_src FMT FILE: qemu-img check (qcow2) and compare against the source.
same_as_src() {
    local rc=0
    if [ "$1" = qcow2 ]; then
        "$QEMU_IMG" check -f qcow2 "$2" >check.out 2>&1 || rc=$?
        [ $rc -eq 0 ] || { cat check.out >&2; fail "qemu-img check $2: exit status $rc"; }
    fi
    "$QEMU_IMG" compare -f raw -F "$1" src.raw "$2" >cmp.out 2>&1 || rc=$?
    [ $rc -eq 0 ] || { cat cmp.out >&2; fail "qemu-img compare src.raw $2: exit status $rc"; }
}

for m in 1 4 16; do
    for w in "" "-W"; do
        for src in raw qcow2; do
            for dst in raw qcow2; do
                rm -f out.$dst
                # shellcheck disable=SC2086
                run qbi convert -m $m $w -f $src -O $dst src.$src out.$dst
                same_as_src $dst out.$dst
            done
        done
        echo "-m $m $w: raw and qcow2 to raw and qcow2 equal the source"
    done
done

# Compressed, with every request in flight (-W is overridden: in order).
run qbi convert -c -m 16 -W -O qcow2 src.raw comp.qcow2
same_as_src qcow2 comp.qcow2
echo "-c -m 16 -W: equal"

# -n into targets full of other data: zero ranges must be written there.
for dst in raw qcow2; do
    run "$QEMU_IMG" create -q -f $dst full.$dst $SIZE
    "$QEMU_IO" -f $dst -c "write -P 0xee 0 $SIZE" full.$dst >/dev/null || fail "qemu-io fill"
    run qbi convert -n -m 8 -W -O $dst src.qcow2 full.$dst
    same_as_src $dst full.$dst
done
echo "-n -m 8 -W: targets holding other data end up equal to the source"

# --target-is-zero: a fresh (zeroed) target is not zeroed again, and equal.
run "$QEMU_IMG" create -q -f qcow2 zeroed.qcow2 $SIZE
run qbi convert -n --target-is-zero -O qcow2 src.raw zeroed.qcow2
same_as_src qcow2 zeroed.qcow2
echo "--target-is-zero -n: equal"

# -B: only what the overlay allocates is copied; the rest comes from the base.
run "$QEMU_IMG" create -q -f qcow2 base.qcow2 $SIZE
"$QEMU_IO" -f qcow2 -c "write -P 0x31 0 8m" -c "write -P 0x32 20m 4m" base.qcow2 >/dev/null ||
    fail "qemu-io base"
run "$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 over.qcow2
"$QEMU_IO" -f qcow2 -c "write -P 0x41 1m 128k" -c "write -P 0x42 22m 64k" \
    -c "write -z 5m 64k" over.qcow2 >/dev/null || fail "qemu-io overlay"
run qbi convert -O qcow2 -B base.qcow2 -F qcow2 over.qcow2 rebased.qcow2
run "$QEMU_IMG" check rebased.qcow2
"$QEMU_IMG" info rebased.qcow2 | grep -q "^backing file: base.qcow2$" ||
    fail "-B: rebased.qcow2 does not name base.qcow2"
run "$QEMU_IMG" compare over.qcow2 rebased.qcow2
allocated() {
    "$QEMU_IMG" check "$1" | sed -n 's#^\([0-9]*\)/[0-9]* = .*allocated.*#\1#p'
}
[ "$(allocated rebased.qcow2)" = "$(allocated over.qcow2)" ] ||
    fail "-B: rebased.qcow2 allocates $(allocated rebased.qcow2) clusters, the overlay $(allocated over.qcow2)"
echo "-B: only the overlay's clusters are copied, and the result reads as the overlay"

# Errors, with qemu-img's exit statuses.
for bad in "-m 0" "-m 17" "-m x" "--target-is-zero"; do
    rc_qemu=0
    # shellcheck disable=SC2086
    "$QEMU_IMG" convert $bad -O raw src.raw bad.raw >/dev/null 2>&1 || rc_qemu=$?
    # shellcheck disable=SC2086
    run_fails qbi convert $bad -O raw src.raw bad.raw
    rc=0
    # shellcheck disable=SC2086
    qbi convert $bad -O raw src.raw bad.raw 2>/dev/null || rc=$?
    [ $rc -eq $rc_qemu ] || fail "convert $bad: exit status $rc, qemu-img gives $rc_qemu"
    echo "convert $bad: exit status $rc: $(sed 's/^[^:]*: //' run.err)"
done
