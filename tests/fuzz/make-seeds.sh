#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# make-seeds.sh: builds the seed corpora of the fuzz targets (one folder per
# target under OUTDIR) from small images made by qemu-img, qemu-io and
# uml_mkcow with varied options, so that no image blob needs committing.
# Usage: make-seeds.sh OUTDIR. Tools that are missing only mean fewer seeds.

set -eu
out=${1:?usage: make-seeds.sh OUTDIR}
QEMU_IMG=${QEMU_IMG:-qemu-img}
QEMU_IO=${QEMU_IO:-qemu-io}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$out"
for t in qcow2 qcow qed vmdk vmdk-desc vdi vpc cow raw probe; do
    mkdir -p "$out/$t"
done
n=0

# seed TARGET FMT OPTIONS SIZE [qemu-io commands...]: one image, some data written.
seed() {
    t=$1 fmt=$2 opts=$3 size=$4
    shift 4
    n=$((n + 1))
    f=$tmp/img
    rm -f "$tmp"/img*
    # The backing file some seeds name; the fuzz target cannot reach it (only the image itself).
    $QEMU_IMG create -q -f raw "$tmp/img-base" 256k >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    if ! $QEMU_IMG create -q -f "$fmt" ${opts:+-o "$opts"} "$f" "$size" >/dev/null 2>&1; then
        return 0
    fi
    for c in "$@"; do
        $QEMU_IO -f "$fmt" -c "$c" "$f" >/dev/null 2>&1 || true
    done
    cp "$f" "$out/$t/$fmt-$n"
    # Every image also seeds the probing target.
    cp "$f" "$out/probe/$fmt-$n"
}

if command -v "$QEMU_IMG" >/dev/null 2>&1 && command -v "$QEMU_IO" >/dev/null 2>&1; then
    W1='write -P 0x11 0 4k'
    W2='write -P 0x22 64k 64k'
    W3='write -z 128k 64k'
    seed qcow2 qcow2 "cluster_size=512" 1M "$W1" "$W2" "$W3"
    seed qcow2 qcow2 "cluster_size=65536,compat=0.10" 1M "$W1" "$W2"
    seed qcow2 qcow2 "cluster_size=4096,refcount_bits=1" 256k "$W1" "$W3"
    seed qcow2 qcow2 "cluster_size=4096,refcount_bits=64,lazy_refcounts=on" 256k "$W1" "$W2"
    seed qcow2 qcow2 "cluster_size=16384,extended_l2=on" 256k "$W1" "$W2" "discard 64k 4k"
    seed qcow2 qcow2 "cluster_size=4096,backing_file=img-base,backing_fmt=raw" 256k "$W1"
    seed qcow2 qcow2 "cluster_size=4096,preallocation=metadata" 128k
    seed qcow2 qcow2 "cluster_size=4096,compression_type=zstd" 128k "$W1"
    # A compressed cluster and an internal snapshot.
    n=$((n + 1))
    rm -f "$tmp"/img*
    if $QEMU_IMG create -q -f qcow2 -o cluster_size=4096 "$tmp/img" 128k >/dev/null 2>&1; then
        $QEMU_IO -f qcow2 -c 'write -c -P 0x33 0 4k' -c 'write -P 0x44 8k 4k' "$tmp/img" >/dev/null 2>&1 || true
        $QEMU_IMG snapshot -c snap1 "$tmp/img" >/dev/null 2>&1 || true
        $QEMU_IO -f qcow2 -c 'write -P 0x55 8k 4k' "$tmp/img" >/dev/null 2>&1 || true
        cp "$tmp/img" "$out/qcow2/qcow2-$n"
        cp "$tmp/img" "$out/probe/qcow2-$n"
    fi
    seed qcow qcow "" 1M "$W1" "$W2"
    seed qcow qcow "backing_file=img-base,backing_fmt=raw" 256k "$W1"
    seed qed qed "cluster_size=4096,table_size=1" 1M "$W1" "$W2" "$W3"
    seed qed qed "backing_file=img-base,backing_fmt=raw" 256k "$W1"
    seed vdi vdi "" 2M "$W1" "$W2"
    seed vdi vdi "static=on" 1M "$W1"
    seed vpc vpc "subformat=dynamic" 2M "$W1" "$W2"
    seed vpc vpc "subformat=fixed" 1M "$W1"
    seed vpc vpc "subformat=dynamic,force_size=on" 1M "$W1"
    seed vmdk vmdk "subformat=monolithicSparse" 1M "$W1" "$W2"
    seed vmdk vmdk "subformat=streamOptimized" 1M "$W1" "$W2"
    seed vmdk vmdk "subformat=monolithicSparse,zeroed_grain=on" 1M "$W1" "$W3"
    seed raw raw "" 64k "$W1"
    # Descriptor-only vmdk: the descriptor, a NUL, then the extent's data
    # (the fuzz target serves it under every name qemu-img gives extents).
    for sub in monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat; do
        n=$((n + 1))
        rm -f "$tmp"/img*
        if $QEMU_IMG create -q -f vmdk -o subformat=$sub "$tmp/img.vmdk" 64k >/dev/null 2>&1; then
            $QEMU_IO -f vmdk -c "$W1" "$tmp/img.vmdk" >/dev/null 2>&1 || true
            ext=$(ls "$tmp"/img-* 2>/dev/null | head -1)
            # qemu-img pads the descriptor file with NULs: the text alone, then one NUL.
            { tr -d '\000' <"$tmp/img.vmdk"; printf '\0'; cat "$ext"; } >"$out/vmdk-desc/$sub-$n"
        fi
    done
fi

if command -v uml_mkcow >/dev/null 2>&1; then
    for size in 64k 1M; do
        n=$((n + 1))
        rm -f "$tmp"/img*
        $QEMU_IMG create -q -f raw "$tmp/img-base" "$size" >/dev/null 2>&1 || continue
        (cd "$tmp" && uml_mkcow -f img img-base >/dev/null 2>&1) || continue
        # uml_mkcow records the absolute name; the fuzz target serves "img-base" next to the image.
        # (version 3 header: the name field is 4096 bytes at offset 32).
        off=$(grep -boa "$tmp/img-base" "$tmp/img" | head -1 | cut -d: -f1)
        test -n "$off" || continue
        head -c 1024 /dev/zero | dd of="$tmp/img" bs=1 seek="$off" conv=notrunc 2>/dev/null
        printf img-base | dd of="$tmp/img" bs=1 seek="$off" conv=notrunc 2>/dev/null
        cp "$tmp/img" "$out/cow/cow-$n"
        cp "$tmp/img" "$out/probe/cow-$n"
    done
fi

echo "make-seeds: $(find "$out" -type f | wc -l) seeds in $out"
