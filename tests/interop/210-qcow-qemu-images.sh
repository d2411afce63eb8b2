#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 210-qcow-qemu-images.sh: qcow (version 1) images that qemu-img 7.2 creates
# (without a backing file: 4 KiB clusters; with one: 512-byte clusters; odd
# and large sizes; compressed clusters from `qemu-img convert -c`) and that
# qemu-io fills with patterns, read through libqblock byte for byte as
# `qemu-img convert -O raw` reads them, with `qblock-img map --output=json`
# equal to `qemu-img map --output=json` and `info` reporting the same facts.
# Also chains: qcow over qed over raw, qcow over qcow. AES images (which
# need a key this library will not take) are refused as not supported.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

qio_fmt() {
    local fmt=$1 file=$2 c args=() out
    shift 2
    for c in "$@"; do
        args+=(-c "$c")
    done
    out=$("$QEMU_IO" -f "$fmt" "${args[@]}" "$file" 2>&1) ||
        fail "qemu-io on $file failed: $out"
    if printf '%s\n' "$out" | grep -q "failed\|error"; then
        printf '%s\n' "$out" | sed 's/^/    (qemu-io) /' >&2
        fail "qemu-io reported a problem on $file"
    fi
}

same_as_qemu() {
    local name=$1 img=$2
    run "$QEMU_IMG" convert -O raw "$img" "$TEST_DIR/ref.raw"
    run qbi convert -O raw "$img" "$TEST_DIR/got.raw"
    cmp "$TEST_DIR/ref.raw" "$TEST_DIR/got.raw" >&2 || fail "$name: contents differ from qemu-img's"
    "$QEMU_IMG" map --output=json "$img" >"$TEST_DIR/ref.map" 2>&1 || fail "$name: qemu-img map"
    run qbi map --output=json "$img"
    same_output "$name: map" "$TEST_DIR/ref.map" "$TEST_DIR/run.out"
    "$QEMU_IMG" info --output=json "$img" |
        grep -E '"(virtual-size|cluster-size|backing-filename|format)"' >"$TEST_DIR/ref.info"
    run qbi info --output=json "$img"
    grep -E '"(virtual-size|cluster-size|backing-filename|format)"' "$TEST_DIR/run.out" \
        >"$TEST_DIR/got.info"
    same_output "$name: info" "$TEST_DIR/ref.info" "$TEST_DIR/got.info"
    echo "$name: same contents, map and info as qemu-img"
}

fill_image() {
    qio_fmt qcow "$1" \
        "write -P 0x11 0 512" \
        "write -P 0x22 1000 3000" \
        "write -P 0x33 65000 140000" \
        "write -P 0x44 3M 1M" \
        "write -z 3200k 128k" \
        "write -P 0x55 5400k 4k" \
        "write -P 0x66 8388096 512"
}

run "$QEMU_IMG" create -f qcow plain.qcow 8M
fill_image plain.qcow
same_as_qemu "qcow 4k clusters" plain.qcow

run "$QEMU_IMG" create -f qcow odd.qcow 8389000
fill_image odd.qcow
same_as_qemu "qcow odd size" odd.qcow

# qemu-img map walks qcow one cluster at a time: 20G keeps it to seconds.
run "$QEMU_IMG" create -f qcow big.qcow 20G
qio_fmt qcow big.qcow "write -P 0x12 0 64k" "write -P 0x13 10G 1M" "write -P 0x14 21474832384 4k"
"$QEMU_IMG" map --output=json big.qcow >ref.map 2>&1 || fail "qemu-img map big.qcow"
run qbi map --output=json big.qcow
same_output "qcow 20G: map" ref.map "$TEST_DIR/run.out"
run qbi read -P 0x12 big.qcow 0 64k
run qbi read -P 0x13 big.qcow 10G 1M
run qbi read -P 0x14 big.qcow 21474832384 4k
run qbi read -P 0 big.qcow 15G 1M
echo "qcow 20G: same map as qemu-img, patterns read back"

# Compressed clusters (and ones that did not compress), then normal writes on top.
head -c 300000 "$QEMU_IMG" >src.raw
head -c 200000 /dev/urandom >>src.raw
truncate -s 4M src.raw
qio_fmt raw src.raw "write -P 0x77 1M 1M" "write -P 0x78 3M 12345"
# qemu-img 7.2 exits 1 without a message after writing a compressed qcow
# (its end-of-stream marker is not supported by the qcow driver); the image
# itself is complete, which the compare below makes sure of.
rc=0
"$QEMU_IMG" convert -c -f raw -O qcow src.raw comp.qcow >/dev/null 2>&1 || rc=$?
[ $rc -le 1 ] || fail "qemu-img convert -c exited $rc"
run "$QEMU_IMG" compare -f qcow -F raw comp.qcow src.raw
"$QEMU_IMG" map --output=json comp.qcow | grep '"data": true}' >/dev/null ||
    fail "comp.qcow has no compressed clusters"
same_as_qemu "qcow compressed" comp.qcow
qio_fmt qcow comp.qcow "write -P 0x79 100000 9000" "write -P 0x7a 2M 4k"
same_as_qemu "qcow compressed, then rewritten in part" comp.qcow

# Backing files: raw (512-byte clusters), qed (the format is probed: qcow records none).
run "$QEMU_IMG" create -f raw base.raw 6M
qio_fmt raw base.raw "write -P 0xa1 0 6M" "write -P 0xa2 1M 77777"
run "$QEMU_IMG" create -f qcow -b base.raw -F raw ov.qcow 8M
fill_image ov.qcow
same_as_qemu "qcow over raw" ov.qcow

run "$QEMU_IMG" create -f qed -b base.raw -F raw mid.qed 8M
qio_fmt qed mid.qed "write -P 0xc1 2M 300k" "write -z 5M 128k"
run "$QEMU_IMG" create -f qcow -b mid.qed -F qed top.qcow 8M
qio_fmt qcow top.qcow "write -P 0xd1 2100k 4k" "write -P 0xd2 0 1536"
same_as_qemu "qcow over qed over raw" top.qcow

run "$QEMU_IMG" create -f qcow -b ov.qcow -F qcow top2.qcow 8M
qio_fmt qcow top2.qcow "write -P 0xe1 7M 8k"
same_as_qemu "qcow over qcow over raw" top2.qcow

# An AES-encrypted image (crypt_method 1, set by hand) is refused, not misread.
cp plain.qcow aes.qcow
printf '\x00\x00\x00\x01' | dd of=aes.qcow bs=1 seek=36 conv=notrunc status=none
run_fails qbi info aes.qcow
grep -qi "not supported\|AES\|encrypt" "$TEST_DIR/run.err" ||
    fail "aes.qcow: the message does not say why: $(cat "$TEST_DIR/run.err")"
echo "qcow with AES encryption: refused as not supported"
