#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 202-qed-crash.sh: a writer on libqblock's public API (write-through, a
# flush every 8 writes) is killed with SIGKILL at a random moment, 20 times,
# alternately on a QED image without and with a raw backing file. After each
# kill `qemu-img check` must find no corruption (leaked clusters are
# allowed: they are what an interrupted allocation leaves), and the image,
# opened read-only, must hold every write the writer had completed, plus
# possibly part of the one in flight, and nothing else. The next round opens
# the image read-write again, which checks and repairs it first.

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

build_writer

size=$((16 * 1024 * 1024))
maxlen=65536
run qbi create -f qed -o cluster_size=16k plain.qed $size
run "$QEMU_IMG" create -f raw plain.model $size
head -c $((12 * 1024 * 1024)) /dev/urandom >base.raw
run qbi create -f qed -o cluster_size=64k -b base.raw -F raw over.qed $size
cp base.raw over.model
truncate -s $size over.model

kills=0
dirty=0
for round in $(seq 1 20); do
    if [ $((round % 2)) -eq 1 ]; then img=plain; else img=over; fi
    seed=$((1000 + round))
    # The shell's own "Killed" notice is kept off stderr while the writer runs.
    exec 3>&2 2>/dev/null
    "$QBWRITER" write $img.qed $img.model $seed 1000000 $maxlen 8 >progress.txt 2>writer.err &
    pid=$!
    # 50 to 450 ms: past the open, somewhere in the writes.
    sleep "0.$(printf '%03d' $((50 + RANDOM % 400)))"
    kill -KILL $pid
    rc=0
    wait $pid || rc=$?
    exec 2>&3 3>&-
    [ $rc -eq 137 ] || { cat writer.err >&2; fail "round $round: the writer exited $rc before the kill"; }
    kills=$((kills + 1))
    done_n=$(tail -n 1 progress.txt | sed -n 's/^done \([0-9]*\)$/\1/p')
    done_n=${done_n:-0}
    if [ "$(( $(od -An -tu1 -j16 -N1 $img.qed) & 2 ))" -ne 0 ]; then
        dirty=$((dirty + 1))
    fi

    rc=0
    "$QEMU_IMG" check -f qed $img.qed >check.out 2>&1 || rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
        sed 's/^/    (qemu-img check) /' check.out >&2
        fail "round $round ($img, killed after $done_n writes): qemu-img check exited $rc"
    fi
    grep -q "errors were found\|ERROR" check.out && ! grep -q "^No errors" check.out &&
        fail "round $round: qemu-img check reports errors"
    "$QBWRITER" verify $img.qed $img.model $seed "$done_n" $maxlen ||
        fail "round $round ($img): the image lost completed writes (killed after $done_n writes)"
    note "round $round: $img killed after $done_n writes, qemu-img check exit $rc"
    # What the image holds now is the next round's starting point.
    run "$QEMU_IMG" convert -f qed -O raw $img.qed $img.model
done

# A final read-write open repairs what needs it and leaves the image clean.
for img in plain over; do
    run qbi write -P 0x5a $img.qed 0 512
    rc=0
    "$QEMU_IMG" check -f qed $img.qed >check.out 2>&1 || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "$img.qed: qemu-img check exited $rc after the last repair"
    [ "$(( $(od -An -tu1 -j16 -N1 $img.qed) & 2 ))" -eq 0 ] || fail "$img.qed still needs a check"
done
note "$dirty of $kills kills left the need-check flag set"
echo "20 kills: qemu-img check found no corruption and every completed write was there"
