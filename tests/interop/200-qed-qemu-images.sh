#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 200-qed-qemu-images.sh: QED images that qemu-img 7.2 creates (every create
# option: cluster_size, table_size, backing_file with backing_fmt raw (the
# NO_PROBE bit) and qed, odd and large sizes) and that qemu-io fills with
# patterns, zero writes (zero clusters) and partial writes over a backing
# file, read through libqblock byte for byte as `qemu-img convert -O raw`
# reads them, with `qblock-img map --output=json` equal to
# `qemu-img map --output=json` and `info` reporting the same facts.
# Also chains mixing formats: qed over qcow over raw.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# qio_fmt FMT FILE CMD...: qemu-io on FILE as FMT; every command must work.
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

# same_as_qemu NAME IMG: libqblock reads IMG as qemu-img does (content, map, info).
same_as_qemu() {
    local name=$1 img=$2
    run "$QEMU_IMG" convert -O raw "$img" "$TEST_DIR/ref.raw"
    run qbi convert -O raw "$img" "$TEST_DIR/got.raw"
    cmp "$TEST_DIR/ref.raw" "$TEST_DIR/got.raw" >&2 || fail "$name: contents differ from qemu-img's"
    "$QEMU_IMG" map --output=json "$img" >"$TEST_DIR/ref.map" 2>&1 || fail "$name: qemu-img map"
    run qbi map --output=json "$img"
    same_output "$name: map" "$TEST_DIR/ref.map" "$TEST_DIR/run.out"
    # The facts info reports: size, cluster size, backing file, format.
    "$QEMU_IMG" info --output=json "$img" |
        grep -E '"(virtual-size|cluster-size|backing-filename|format)"' >"$TEST_DIR/ref.info"
    run qbi info --output=json "$img"
    grep -E '"(virtual-size|cluster-size|backing-filename|format)"' "$TEST_DIR/run.out" \
        >"$TEST_DIR/got.info"
    same_output "$name: info" "$TEST_DIR/ref.info" "$TEST_DIR/got.info"
    echo "$name: same contents, map and info as qemu-img"
}

# Patterns at assorted places: unaligned, across clusters, zero writes
# (whole clusters become zero clusters, entry 1), a partial zero write.
fill_image() {
    local img=$1 fmt=${2:-qed}
    qio_fmt "$fmt" "$img" \
        "write -P 0x11 0 512" \
        "write -P 0x22 1000 3000" \
        "write -P 0x33 65000 140000" \
        "write -P 0x44 3M 1M" \
        "write -z 3200k 128k" \
        "write -z 5M 1M" \
        "write -P 0x55 5400k 4k" \
        "write -z 7000000 5000" \
        "write -P 0x66 8388096 512"
}

# cluster_size,table_size variants (QEMU 7.2 cannot open table_size=1 images
# at all, its own included, so that one is exercised only in the unit tests).
for opts in "cluster_size=4k,table_size=2" "cluster_size=8k,table_size=16" \
            "cluster_size=65536,table_size=4" "cluster_size=1M,table_size=2" \
            "cluster_size=4M,table_size=2"; do
    rm -f o.qed
    run "$QEMU_IMG" create -f qed -o "$opts" o.qed 8M
    fill_image o.qed
    same_as_qemu "qed $opts" o.qed
done

# Defaults, an odd size (rounded up to 512), and a large sparse image.
run "$QEMU_IMG" create -f qed d.qed 8M
fill_image d.qed
same_as_qemu "qed defaults" d.qed
run "$QEMU_IMG" create -f qed odd.qed 8389000
fill_image odd.qed
qio_fmt qed odd.qed "write -P 0x77 8388608 392"
same_as_qemu "qed odd size" odd.qed
run "$QEMU_IMG" create -f qed big.qed 200G
qio_fmt qed big.qed "write -P 0x12 0 64k" "write -P 0x13 100G 1M" "write -z 150G 64M" \
    "write -P 0x14 214748360704 4k"
run "$QEMU_IMG" map --output=json big.qed
cp "$TEST_DIR/run.out" ref.map
run qbi map --output=json big.qed
same_output "qed 200G: map" ref.map "$TEST_DIR/run.out"
run qbi read -P 0x13 big.qed 100G 1M
run qbi read -P 0 big.qed 150G 64M
run qbi read -P 0x14 big.qed 214748360704 4k
echo "qed 200G: same map as qemu-img, patterns read back"

# Backing files: raw with -F raw (features 0x5), shorter than the overlay;
# partial writes copy the backing data around them.
run "$QEMU_IMG" create -f raw base.raw 6M
qio_fmt raw base.raw "write -P 0xa1 0 6M" "write -P 0xa2 1M 77777"
run "$QEMU_IMG" create -f qed -b base.raw -F raw ov.qed 8M
[ "$(od -An -tx1 -j16 -N1 ov.qed | tr -d ' ')" = 05 ] || fail "ov.qed: features are not 0x5"
fill_image ov.qed
same_as_qemu "qed over raw" ov.qed

# qed over qed over raw, every layer written.
run "$QEMU_IMG" create -f qed -b ov.qed -F qed top.qed 8M
qio_fmt qed top.qed "write -P 0xb1 100k 8k" "write -z 3M 64k" "write -P 0xb2 7M 1536"
same_as_qemu "qed over qed over raw" top.qed

# qed over qcow over raw: the qcow layer's format is probed (qed records none).
run "$QEMU_IMG" create -f qcow -b base.raw -F raw mid.qcow 8M
qio_fmt qcow mid.qcow "write -P 0xc1 2M 300k" "write -P 0xc2 6M 4k"
run "$QEMU_IMG" create -f qed -b mid.qcow -F qcow top2.qed 8M
qio_fmt qed top2.qed "write -P 0xd1 2100k 4k" "write -z 0 64k"
same_as_qemu "qed over qcow over raw" top2.qed

# An image that QEMU left needing a check (the flag set by hand, as after a
# crash) opens read-only without repair and reads the same.
cp d.qed dirty.qed
printf '\x02' | dd of=dirty.qed bs=1 seek=16 conv=notrunc status=none
run qbi info --output=json dirty.qed
grep -q '"dirty-flag": true' "$TEST_DIR/run.out" || fail "dirty.qed: the need-check flag is not reported"
run qbi convert -O raw dirty.qed got.raw
run "$QEMU_IMG" convert -O raw d.qed ref.raw
cmp ref.raw got.raw >&2 || fail "dirty.qed reads differently"
echo "qed with need-check: reported dirty, same contents"
