#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 035-json-corpus.sh: for a corpus of images of every format that qemu-img
# 7.2 makes, with varied options and with data put
# in them by qemu-io (patterns, zero writes, discards, compressed clusters,
# internal snapshots, backing chains three deep), `qblock-img info`, `check`,
# `map` and `measure` with --output=json print what qemu-img prints, byte
# for byte, with the same exit status, and no filter at all (see README,
# "Differences from qemu-img", for what is not compared and why: cow, which
# qemu-img 7.2 cannot read). EXPLORE=1 lists every difference on stderr
# instead of failing at the first, for hunting them down.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io
command -v python3 >/dev/null || skip "python3 is not installed"

mkq() { run "$QEMU_IMG" create -q "$@"; }
# qw FMT IMG CMD...: qemu-io commands on IMG, which must all succeed.
qw() {
    local fmt=$1 img=$2 c args=()
    shift 2
    for c in "$@"; do args+=(-c "$c"); done
    "$QEMU_IO" -f "$fmt" "${args[@]}" "$img" >qio.log 2>&1 &&
        ! grep -q "failed\|error" qio.log || { cat qio.log >&2; fail "qemu-io on $img: $*"; }
}
# Several patterns, a zero write and a discard, at offsets that fit a 16M image.
DATA=("write -P 0x11 0 100k" "write -P 0x22 1M 64k" "write -z 2M 256k" "write -P 0x33 3M 1M"
      "discard 3M 64k" "write -P 0 5M 4k" "write -P 0x44 12345k 7k")

corpus=()
add() { corpus+=("$1:$2"); }    # name, and the -f given to both tools ("" probes)

# qcow2: versions, cluster sizes, refcount widths, lazy refcounts, extended L2, zstd.
mkq -f qcow2 -o compat=0.10 q2-v2.qcow2 16M;                         qw qcow2 q2-v2.qcow2 "${DATA[@]}"; add q2-v2.qcow2 ""
for cs in 512 4k 64k 2M; do
    mkq -f qcow2 -o cluster_size=$cs q2-$cs.qcow2 16M;               qw qcow2 q2-$cs.qcow2 "${DATA[@]}"; add q2-$cs.qcow2 ""
done
mkq -f qcow2 -o lazy_refcounts=on,refcount_bits=1 q2-lazy.qcow2 16M; qw qcow2 q2-lazy.qcow2 "${DATA[@]}"; add q2-lazy.qcow2 qcow2
mkq -f qcow2 -o refcount_bits=64,cluster_size=1k q2-rc64.qcow2 16M;  qw qcow2 q2-rc64.qcow2 "${DATA[@]}"; add q2-rc64.qcow2 ""
mkq -f qcow2 -o extended_l2=on q2-ext.qcow2 16M;                     qw qcow2 q2-ext.qcow2 "${DATA[@]}"; add q2-ext.qcow2 ""
mkq -f qcow2 -o compression_type=zstd q2-zstd.qcow2 16M
qw qcow2 q2-zstd.qcow2 "write -c -P 0x55 0 64k" "write -c -P 0x66 4M 128k" "write -P 7 8M 64k";   add q2-zstd.qcow2 ""
mkq -f qcow2 q2-zlib.qcow2 16M
qw qcow2 q2-zlib.qcow2 "write -c -P 0x55 0 64k" "write -c -z 1M 64k" "write -c -P 1 9M 192k";     add q2-zlib.qcow2 ""
# Preallocated metadata and data (the first is where holes inside data
# clusters are reported as zeros), and compressed images made by convert -c.
for pa in metadata falloc full; do
    mkq -f qcow2 -o preallocation=$pa,cluster_size=16k q2-pre-$pa.qcow2 4M
    qw qcow2 q2-pre-$pa.qcow2 "write -P 1 0 20k" "write -z 1M 64k" "discard 2M 32k"
    add q2-pre-$pa.qcow2 ""
done
mkq -f raw conv-src.raw 16M
qw raw conv-src.raw "write -P 0x61 0 3M" "write -P 0 4M 1M" "write -P 0x62 10M 17k"
run "$QEMU_IMG" convert -q -c -f raw -O qcow2 conv-src.raw q2-convc.qcow2;   add q2-convc.qcow2 ""
run "$QEMU_IMG" convert -q -c -f raw -O vmdk -o subformat=streamOptimized conv-src.raw vmdk-conv.vmdk
add vmdk-conv.vmdk ""
mkq -f vmdk -o zeroed_grain=on vmdk-zg.vmdk 16M
qw vmdk vmdk-zg.vmdk "write -z 0 1M" "write -P 1 2M 64k";               add vmdk-zg.vmdk ""
# Internal snapshots, one with VM state.
mkq -f qcow2 q2-snap.qcow2 16M
qw qcow2 q2-snap.qcow2 "write -P 1 0 1M"
run "$QEMU_IMG" snapshot -c first q2-snap.qcow2
qw qcow2 q2-snap.qcow2 "write -P 2 512k 1M" "discard 0 64k"
run "$QEMU_IMG" snapshot -c second q2-snap.qcow2
add q2-snap.qcow2 ""
# qemu-img cannot save VM state, so give the second snapshot 1 MiB of it in
# the snapshot table: the 32-bit vm_state_size at byte 32 of the entry and
# the 64-bit one at the start of its extra data (byte 40).
cp q2-snap.qcow2 q2-vmstate.qcow2
python3 - q2-vmstate.qcow2 <<'PY' || fail "cannot patch q2-vmstate.qcow2"
import struct, sys
f = open(sys.argv[1], 'r+b')
f.seek(60); nb, off = struct.unpack('>IQ', f.read(12))
assert nb == 2
for i in range(2):
    f.seek(off); e = f.read(40)
    idl, nl = struct.unpack('>HH', e[12:16])
    extra = struct.unpack('>I', e[36:40])[0]
    if i == 1:
        f.seek(off + 32); f.write(struct.pack('>I', 1 << 20))
        assert extra >= 8
        f.seek(off + 40); f.write(struct.pack('>Q', 1 << 20))
    off = (off + 40 + extra + idl + nl + 7) // 8 * 8
PY
add q2-vmstate.qcow2 ""
# Backing chains three deep: formats recorded and not, relative and absolute paths.
mkq -f qcow2 ch-base.qcow2 16M;                                      qw qcow2 ch-base.qcow2 "write -P 1 0 4M"
mkq -f qcow2 -b ch-base.qcow2 -F qcow2 ch-mid.qcow2;                qw qcow2 ch-mid.qcow2 "write -P 2 1M 1M" "write -z 3M 64k"
mkq -f qcow2 -b "$TEST_DIR/ch-mid.qcow2" -F qcow2 ch-top.qcow2;     qw qcow2 ch-top.qcow2 "write -P 3 1536k 64k" "discard 0 64k"
add ch-top.qcow2 ""
mkdir -p sub
mkq -f raw sub/nf-base.raw 16M
mkq -f qcow2 -o compat=0.10 -b nf-base.raw -F raw sub/nf-mid.qcow2
mkq -f qcow2 -o compat=0.10 -b nf-mid.qcow2 -F qcow2 sub/nf-top.qcow2
# qemu-img 7.2 no longer records a backing file without its format: drop
# the backing-format header extension (the first, at byte 72 of a version 2
# header) by ending the extension list there, so the format is probed.
[ "$(od -An -tx1 -j72 -N4 sub/nf-top.qcow2 | tr -d ' ')" = e2792aca ] ||
    fail "sub/nf-top.qcow2: no backing-format extension at byte 72"
printf '\0\0\0\0' | dd of=sub/nf-top.qcow2 bs=1 seek=72 conv=notrunc status=none
qw qcow2 sub/nf-top.qcow2 "write -P 5 64k 64k";                       add sub/nf-top.qcow2 ""
# qed with and without backing; qcow.
mkq -f qed qed.qed 16M;                                             qw qed qed.qed "${DATA[@]}"; add qed.qed ""
mkq -f qed -b qed.qed -F qed qed-top.qed;                           qw qed qed-top.qed "write -P 9 64k 64k"; add qed-top.qed ""
mkq -f qcow qcow.qcow 16M;                                          qw qcow qcow.qcow "${DATA[@]}"; add qcow.qcow ""
mkq -f qcow -b qcow.qcow -F qcow qcow-top.qcow;                     qw qcow qcow-top.qcow "write -P 8 8k 8k"; add qcow-top.qcow ""
# vmdk subformats, one with a backing file.
for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized; do
    mkq -f vmdk -o subformat=$sub vmdk-$sub.vmdk 16M
    if [ $sub = streamOptimized ]; then
        qw vmdk vmdk-$sub.vmdk "write -P 0x11 0 128k" "write -P 0x33 3M 1M"
    else
        qw vmdk vmdk-$sub.vmdk "${DATA[@]}"
    fi
    add vmdk-$sub.vmdk ""
done
mkq -f vmdk -b vmdk-monolithicSparse.vmdk -F vmdk vmdk-child.vmdk; qw vmdk vmdk-child.vmdk "write -P 9 2M 64k"; add vmdk-child.vmdk ""
# vdi, vpc, raw.
mkq -f vdi -o static=on vdi-static.vdi 16M;                         qw vdi vdi-static.vdi "${DATA[@]}"; add vdi-static.vdi ""
mkq -f vdi vdi-dyn.vdi 16M;                                         qw vdi vdi-dyn.vdi "${DATA[@]}"; add vdi-dyn.vdi ""
mkq -f vpc -o subformat=dynamic vpc-dyn.vpc 16M;                    qw vpc vpc-dyn.vpc "${DATA[@]}"; add vpc-dyn.vpc ""
mkq -f vpc -o subformat=fixed vpc-fixed.vpc 16M;                    qw vpc vpc-fixed.vpc "${DATA[@]}"; add vpc-fixed.vpc vpc
mkq -f vpc -o force_size=on vpc-force.vpc 16M;                      qw vpc vpc-force.vpc "${DATA[@]}"; add vpc-force.vpc ""
mkq -f raw raw.raw 16M;                                             qw raw raw.raw "${DATA[@]}"; add raw.raw raw
# A chain mixing formats: vmdk under qed under qcow2.
mkq -f vmdk mix-base.vmdk 16M;                                      qw vmdk mix-base.vmdk "write -P 1 0 2M"
mkq -f qed -b mix-base.vmdk -F vmdk mix-mid.qed;                    qw qed mix-mid.qed "write -P 2 1M 2M"
mkq -f qcow2 -b mix-mid.qed -F qed mix-top.qcow2;                   qw qcow2 mix-top.qcow2 "write -z 1536k 64k"
add mix-top.qcow2 ""
# (cow is not here: qemu 7.2 has no cow driver to compare with; see README.)

# both NAME ARGS...: run qemu-img and qblock-img with ARGS; same stdout and exit status.
ncmp=0
both() {
    local name=$1 rq=0 rl=0
    shift
    "$QEMU_IMG" "$@" >q.out 2>q.err || rq=$?
    qbi "$@" >l.out 2>l.err || rl=$?
    [ "$rl" -le 128 ] || fail "$name: qblock-img $*: crashed"
    if [ -n "${EXPLORE:-}" ]; then
        [ "$rq" = "$rl" ] || echo "STATUS $name: $*: $rl vs qemu $rq" >&2
        diff -u q.out l.out >&2 || echo "DIFF $name: $*" >&2
        return
    fi
    [ "$rq" = "$rl" ] || { cat q.err l.err >&2; fail "$name: qblock-img $*: exit status $rl, qemu-img's $rq"; }
    same_output "$name: $*" q.out l.out
    ncmp=$((ncmp + 1))
}

for entry in "${corpus[@]}"; do
    img=${entry%%:*}
    fmt=${entry#*:}
    fargs=()
    [ -n "$fmt" ] && fargs=(-f "$fmt")
    both "$img" info "${fargs[@]}" --output=json "$img"
    both "$img" info "${fargs[@]}" --output=json --backing-chain "$img"
    both "$img" check "${fargs[@]}" --output=json "$img"
    both "$img" map "${fargs[@]}" --output=json "$img"
    both "$img" map "${fargs[@]}" --output=json --start-offset=1000k --max-length=3M "$img"
    for t in qcow2 raw; do
        both "$img" measure --output=json "${fargs[@]}" -O $t "$img"
    done
done
for t in qcow2 raw qed qcow vmdk vdi vpc; do
    both "--size" measure --output=json -O $t --size 16M
done
echo "035: ${#corpus[@]} images, $ncmp comparisons"
