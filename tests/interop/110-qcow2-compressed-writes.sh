#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 110-qcow2-compressed-writes.sh: compressed clusters written by libqblock
# (`qblock-img convert -c`, `qblock-img write -c`, qb_write_compressed)
# against QEMU 7.2:
#  - convert -c of the same source, for each layout (v2/v3, cluster sizes,
#    zstd, extended L2, 1-bit refcounts), gives the same file, byte for
#    byte, as `qemu-img convert -c` (so the same map and packing), passes
#    `qemu-img check`, and is smaller than the uncompressed conversion;
#  - compressed clusters are then rewritten both ways: QEMU writes over ours
#    (copy-on-write of compressed clusters), we write normally and
#    compressed over QEMU's, clean with no leaks after each round and
#    equal to a raw mirror of the same writes;
#  - -c where the target has no compressed clusters fails as qemu-img does;
#    misaligned `write -c` fails cleanly and changes nothing.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# A 24 MiB source: compressible text, a zero run, random (incompressible)
# data, a hole, and an unaligned tail of text.
run "$QEMU_IMG" create -q -f raw src.raw 24M
yes "libqblock compressed cluster test line" | head -c 6M >text.bin
dd if=text.bin of=src.raw conv=notrunc status=none || fail "dd text"
qio_ok src.raw "write -P 0 6M 1M" "write -P 0x5a 12M 1M"
head -c 3M /dev/urandom | dd of=src.raw bs=1M seek=8 conv=notrunc status=none || fail "dd random"
head -c 1500000 text.bin | dd of=src.raw bs=1 seek=$((20 * 1048576 + 4096)) conv=notrunc \
    status=none || fail "dd tail"

layout() {
    local name=$1 opts=$2
    rm -f ours.qcow2 theirs.qcow2 plain.qcow2
    run qbi convert -c -O qcow2 ${opts:+-o "$opts"} src.raw ours.qcow2
    run "$QEMU_IMG" convert -c -O qcow2 ${opts:+-o "$opts"} src.raw theirs.qcow2
    run qbi convert -O qcow2 ${opts:+-o "$opts"} src.raw plain.qcow2
    "$QEMU_IMG" compare -q src.raw ours.qcow2 || fail "$name: contents differ from the source"
    "$QEMU_IMG" check -q ours.qcow2 || fail "$name: qemu-img check"
    "$QEMU_IMG" map --output=json theirs.qcow2 >theirs.json
    "$QEMU_IMG" map --output=json ours.qcow2 >ours.json
    same_output "$name: map" theirs.json ours.json
    grep -q '"offset"' ours.json || fail "$name: no data cluster at all in the map"
    # Same packing, same metadata layout, same sector padding at the end.
    cmp ours.qcow2 theirs.qcow2 >&2 || fail "$name: not the same bytes as qemu-img's output"
    [ "$(stat -c %s ours.qcow2)" -lt "$(stat -c %s plain.qcow2)" ] ||
        fail "$name: compressed output is not smaller than the uncompressed one"
    # Read back by libqblock too, through the raw output of convert.
    run qbi convert -O raw ours.qcow2 back.raw
    same_content src.raw back.raw
    echo "as QEMU: $name"
}

layout "v3 64k" ""
layout "v2" "compat=0.10"
layout "512-byte clusters" "cluster_size=512"
layout "2M clusters" "cluster_size=2M"
layout "zstd" "compression_type=zstd"
layout "extended L2" "extended_l2=on"
layout "1-bit refcounts" "refcount_bits=1"

# Rewrites in both directions, mirrored into a raw copy with qemu-io.
# QEMU writes compressed data only into unallocated clusters (14M lies in
# the source's hole); libqblock also replaces allocated ones (2M).
rewrite_round() {
    local who=$1 img=$2
    cp src.raw mirror.raw
    if [ "$who" = qemu ]; then
        "$QEMU_IO" -f qcow2 -c "write -P 0x11 100k 70k" -c "write -z 1M 64k" \
            -c "write -c -P 0x22 14M 128k" -c "discard 3M 64k" "$img" >io.out ||
            fail "qemu-io rewrite of $img"
        grep -q "failed" io.out && fail "qemu-io rewrite of $img: $(cat io.out)"
    else
        run qbi write -q -f qcow2 -P 0x11 "$img" 100k 70k
        run qbi write -q -f qcow2 -z "$img" 1M 64k
        run qbi write -q -f qcow2 -c -P 0x22 "$img" 14M 128k
        run qbi discard -q -f qcow2 "$img" 3M 64k
        run qbi write -q -f qcow2 -c -P 0x23 "$img" 2M 128k
        qio_ok mirror.raw "write -P 0x23 2M 128k"
    fi
    qio_ok mirror.raw "write -P 0x11 100k 70k" "write -z 1M 64k" "write -P 0x22 14M 128k" \
        "write -z 3M 64k"
    "$QEMU_IMG" check -q "$img" || fail "$who rewrote $img: qemu-img check"
    "$QEMU_IMG" compare -q -f raw -F qcow2 mirror.raw "$img" ||
        fail "$who rewrote $img: contents differ from the mirror"
    echo "$who rewrote compressed clusters: clean"
}

rm -f ours.qcow2 theirs.qcow2
run qbi convert -c -O qcow2 src.raw ours.qcow2
run "$QEMU_IMG" convert -c -O qcow2 src.raw theirs.qcow2
rewrite_round qemu ours.qcow2
rewrite_round libqblock theirs.qcow2

# Compressed clusters packed into one host cluster, then all but one
# overwritten: the host cluster stays in use until the last one goes.
rm -f pack.qcow2
run qbi create -q -f qcow2 pack.qcow2 1M
run qbi write -q -f qcow2 -c -P 0x33 pack.qcow2 0 1M
run qbi write -q -f qcow2 -P 0x44 pack.qcow2 0 960k
"$QEMU_IMG" check -q pack.qcow2 || fail "packed clusters: qemu-img check after overwrite"
run qbi write -q -f qcow2 -c -P 0x55 pack.qcow2 0 512k
"$QEMU_IMG" check -q pack.qcow2 || fail "packed clusters: qemu-img check after rewrite"
"$QEMU_IO" -f qcow2 -c "read -P 0x55 0 512k" -c "read -P 0x44 512k 448k" \
    -c "read -P 0x33 960k 64k" pack.qcow2 | grep -q "fail\|error" && fail "packed clusters: contents"
echo "packed compressed clusters: clean"

# Refusals, as qemu-img words them, leaving no image behind.
for f in raw qed vdi vpc; do
    rm -f "no.$f"
    run_fails qbi convert -c -O "$f" src.raw "no.$f"
    grep -q "Compression not supported for this file format" run.err ||
        fail "-c -O $f: unexpected message: $(cat run.err)"
    [ ! -e "no.$f" ] || fail "-c -O $f left an image behind"
done
echo "convert -c refused for raw qed vdi vpc"
run qbi convert -c -O vmdk src.raw ok.vmdk
"$QEMU_IMG" compare -q src.raw ok.vmdk || fail "convert -c -O vmdk: contents"
echo "convert -c -O vmdk: accepted"

cp ours.qcow2 before.qcow2
run_fails qbi write -f qcow2 -c ours.qcow2 512 64k
grep -q "multiples of the cluster size (65536)" run.err || fail "misaligned write -c: $(cat run.err)"
cmp -s ours.qcow2 before.qcow2 || fail "a refused write -c changed the image"
run_fails qbi write -f raw -c src.raw 0 64k
grep -q "cannot store compressed data" run.err || fail "write -c on raw: $(cat run.err)"
echo "write -c refusals: clean"
