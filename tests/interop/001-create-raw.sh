#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 001-create-raw.sh: `qblock-img create -f raw` prints qemu-img's
# "Formatting" line and makes files that qemu-img info sees with the size
# asked for (suffixes, odd byte counts rounded up to a sector as qemu-img
# does), and whose preallocation modes give the allocation qemu-img's own
# images get.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img

# json_field FILE KEY: one numeric field of qemu-img info --output=json.
json_field() {
    "$QEMU_IMG" info -f raw --output=json "$1" | sed -n "s/^ *\"$2\": \([0-9]*\),\{0,1\}$/\1/p"
}

echo "== sizes"
for spec in "0:0" "512:512" "100:512" "1k:1024" "1M:1048576" "1.5M:1572864" \
            "1G:1073741824" "2T:2199023255552" "0x100000:1048576" "+5:512"; do
    size=${spec%%:*}
    want=${spec#*:}
    run qbi create -f raw "img-$size" "$size"
    cat "$TEST_DIR/run.out"
    got=$(json_field "img-$size" virtual-size)
    [ "$got" = "$want" ] || fail "create $size: qemu-img sees virtual-size '$got', not $want"
    # The file itself has exactly that many bytes, all reading as zeros.
    [ "$(stat -c %s "img-$size")" = "$want" ] || fail "create $size: file size $(stat -c %s "img-$size")"
done
# A few of them are read back in full by qemu-img: an empty, zero-filled image.
for size in 512 1k 1M; do
    head -c "$(stat -c %s "img-$size")" /dev/zero >zeros
    run "$QEMU_IMG" compare -f raw -F raw "img-$size" zeros
done

echo "== the same line as qemu-img"
for args in "-f raw" "" "-f raw -o preallocation=off" "-f raw -o preallocation=full" \
            "-f raw -o preallocation=falloc" "-f raw -o size=3M"; do
    # shellcheck disable=SC2086
    if [ "$args" = "-f raw -o size=3M" ]; then
        run qbi create $args ours.img
        cp "$TEST_DIR/run.out" ours.txt
        run "$QEMU_IMG" create $args ours.img
    else
        run qbi create $args ours.img 2M
        cp "$TEST_DIR/run.out" ours.txt
        run "$QEMU_IMG" create $args ours.img 2M
    fi
    same_output "create $args" "$TEST_DIR/run.out" ours.txt
    cat ours.txt
done

echo "== quiet"
run qbi create -q -f raw quiet.img 1M
[ -s "$TEST_DIR/run.out" ] && fail "create -q printed: $(cat "$TEST_DIR/run.out")"
[ "$(json_field quiet.img virtual-size)" = 1048576 ] || fail "create -q made a wrong size"

echo "== an existing file is overwritten"
head -c 3M /dev/urandom >exists.img
run qbi create -q -f raw exists.img 1M
[ "$(stat -c %s exists.img)" = 1048576 ] || fail "the old file was not truncated"
head -c 1M /dev/zero >zeros
run "$QEMU_IMG" compare -f raw -F raw exists.img zeros

echo "== preallocation"
# full: every byte is written, so qemu-img map shows one data run, as it
# does for qemu-img's own full image.
run qbi create -q -f raw -o preallocation=full full.img 4M
run "$QEMU_IMG" create -q -f raw -o preallocation=full qfull.img 4M
"$QEMU_IMG" map -f raw --output=json full.img >map-ours.txt
"$QEMU_IMG" map -f raw --output=json qfull.img >map-qemu.txt
same_output "map of preallocation=full" map-qemu.txt map-ours.txt
cat map-ours.txt
[ "$(disk_usage full.img)" -ge 4194304 ] || fail "preallocation=full left holes"
# falloc: the blocks are reserved (disk usage), yet they read as zeros.
run qbi create -q -f raw -o preallocation=falloc falloc.img 4M
[ "$(disk_usage falloc.img)" -ge 4194304 ] || fail "preallocation=falloc did not reserve the blocks"
head -c 4M /dev/zero >zeros
run "$QEMU_IMG" compare -f raw -F raw falloc.img zeros
# off (the default): no data at all is allocated past what qemu-img's own
# image has (qemu-img writes at most its first 4 KiB).
run qbi create -q -f raw -o preallocation=off off.img 64M
[ "$(disk_usage off.img)" -le 4096 ] || fail "preallocation=off allocated $(disk_usage off.img) bytes"
"$QEMU_IMG" info -f raw off.img | grep '^virtual size:'
echo "done"
