#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 505-hostile-compressed.sh: compressed clusters and grains whose data
# inflates past the cluster, inflates short of it, is junk, or whose
# compressed size or offset runs past the end of the file: qcow2 with zlib
# and zstd, qcow, VMDK streamOptimized. Each read either returns what
# qemu-io 7.2 returns or fails cleanly (exit 1, the errno's message), never
# returning bytes from beyond the cluster; where libqblock is stricter or
# more lenient than QEMU the comment says so and why.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/hostile-common.sh"
require_qemu_io
cap_memory

# deflate_raw BYTES FILL: a raw deflate stream (qcow2, qcow) of BYTES bytes of FILL.
deflate_raw() {
    python3 -c 'import sys, zlib
c = zlib.compressobj(9, zlib.DEFLATED, -12)
sys.stdout.buffer.write(c.compress(bytes([int(sys.argv[2], 0)]) * int(sys.argv[1])) + c.flush())' "$@"
}

# put FILE OFFSET DATAFILE: DATAFILE's bytes written into FILE at OFFSET.
put() {
    dd if="$3" of="$1" bs=1 seek="$(($2))" conv=notrunc status=none || fail "dd $1"
}

# reads NAME FILE OFFSET: qblock-img's verdict on reading 4 KiB of 0x09 at OFFSET.
reads() {
    echo "-- $1"
    says "$4" read -P 9 "$2" "$3" 4k
}

echo "== qcow2 (zlib), a 4 KiB cluster compressed at 0x5000"
run "$QEMU_IMG" create -q -f qcow2 -o cluster_size=4096 z.qcow2 64k
"$QEMU_IO" -f qcow2 -c 'write -c -P 9 0 4k' z.qcow2 >/dev/null || fail "qemu-io"
[ "$(peek z.qcow2 0x4000 '>Q')" = $(((1 << 62) | 0x5000)) ] || fail "unexpected layout"
# qemu-io 7.2: reads it (the sectors past the end read as zeros after the stream's end).
cp z.qcow2 zsize.qcow2
poke zsize.qcow2 0x4000 '>Q' $(((1 << 62) | (15 << 58) | 0x5000))
reads "16 sectors of compressed data, most past the end" zsize.qcow2 0 0
# qemu-io 7.2: "read failed: Input/output error".
cp z.qcow2 zfar.qcow2
poke zfar.qcow2 0x4000 '>Q' $(((1 << 62) | 0x10000000))
reads "compressed data 256 MiB past the end" zfar.qcow2 0 1
# qemu-io 7.2: reads the first 4 KiB (a full cluster ends a raw deflate
# stream in QEMU too: the sector padding after a stream is not checked).
cp z.qcow2 zbig.qcow2
deflate_raw 8192 9 >big.raw
put zbig.qcow2 0x5000 big.raw
reads "a stream of 8 KiB" zbig.qcow2 0 0
# qemu-io 7.2: "read failed: Input/output error" for these two.
cp z.qcow2 zshort.qcow2
deflate_raw 1024 9 >short.raw
put zshort.qcow2 0x5000 short.raw
reads "a stream of 1 KiB" zshort.qcow2 0 1
cp z.qcow2 zjunk.qcow2
head -c 21 /dev/zero | tr '\0' '\377' >junk.raw
put zjunk.qcow2 0x5000 junk.raw
reads "junk" zjunk.qcow2 0 1

echo "== qcow2 (zstd): frames taken from clusters of 8 KiB and 512 bytes"
run "$QEMU_IMG" create -q -f qcow2 -o cluster_size=4096,compression_type=zstd s.qcow2 64k
"$QEMU_IO" -f qcow2 -c 'write -c -P 9 0 4k' s.qcow2 >/dev/null || fail "qemu-io"
for cs in 8192 512; do
    run "$QEMU_IMG" create -q -f qcow2 -o cluster_size=$cs,compression_type=zstd f$cs.qcow2 64k
    "$QEMU_IO" -f qcow2 -c "write -c -P 9 0 $cs" f$cs.qcow2 >/dev/null || fail "qemu-io"
    python3 -c 'import struct, sys
f = open(sys.argv[1], "rb")
cb = int(sys.argv[2]).bit_length() - 1
f.seek(40); l1 = struct.unpack(">Q", f.read(8))[0]
f.seek(l1); l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2); e = struct.unpack(">Q", f.read(8))[0]
shift = 62 - (cb - 8)
off = e & ((1 << shift) - 1)
f.seek(off); sys.stdout.buffer.write(f.read(512 - off % 512))' f$cs.qcow2 $cs >frame$cs ||
        fail "could not take the frame"
done
# qemu-io 7.2: "read failed: Input/output error" for both: a frame that
# has more to give once the cluster is full, and one that ends short of it.
cp s.qcow2 sbig.qcow2
put sbig.qcow2 0x5000 frame8192
reads "a frame of 8 KiB" sbig.qcow2 0 1
cp s.qcow2 sshort.qcow2
put sshort.qcow2 0x5000 frame512
reads "a frame of 512 bytes" sshort.qcow2 0 1

echo "== qcow, a 4 KiB cluster compressed at 0x2000 (21 bytes)"
run "$QEMU_IMG" create -q -f qcow q.qcow 64k
"$QEMU_IO" -f qcow -c 'write -c -P 9 0 4k' q.qcow >/dev/null || fail "qemu-io"
[ "$(peek q.qcow 0x1000 '>q')" = $(((1 << 63) | (21 << 51) | 0x2000)) ] || fail "unexpected layout"
# qemu-io 7.2 reads this one (zeros past the end); qcow's compressed size
# is exact, in bytes, so libqblock refuses a size past the end as corrupt.
cp q.qcow qsize.qcow
poke qsize.qcow 0x1000 '>q' $(((1 << 63) | (4095 << 51) | 0x2000))
reads "4095 bytes of compressed data, most past the end" qsize.qcow 0 1
# qemu-io 7.2: "read failed: Input/output error".
cp q.qcow qfar.qcow
poke qfar.qcow 0x1000 '>q' $(((1 << 63) | (21 << 51) | 0x10000000))
reads "compressed data 256 MiB past the end" qfar.qcow 0 1
# qemu-io 7.2: reads the first 4 KiB, as ours.
cp q.qcow qbig.qcow
put qbig.qcow 0x2000 big.raw
reads "a stream of 8 KiB" qbig.qcow 0 0
# qemu-io 7.2: "read failed: Input/output error".
cp q.qcow qshort.qcow
put qshort.qcow 0x2000 short.raw
reads "a stream of 1 KiB" qshort.qcow 0 1

echo "== vmdk streamOptimized, grain 0 (64 KiB) behind its marker at 0x10000"
head -c 65536 /dev/zero >r.raw
"$QEMU_IO" -f raw -c 'write -P 9 0 4k' r.raw >/dev/null || fail "qemu-io"
run "$QEMU_IMG" convert -O vmdk -o subformat=streamOptimized r.raw v.vmdk
[ "$(peek v.vmdk 0x10000 '<Q')" = 0 ] || fail "unexpected layout"
# marker FILE SIZE [DATAFILE]: grain 0's marker says SIZE bytes; DATAFILE follows.
marker() {
    poke "$1" 0x10000 '<Q' 0 0x10008 '<I' "$2"
    [ -z "${3:-}" ] || put "$1" 0x1000c "$3"
}
zlib_of() {
    python3 -c 'import sys, zlib
n, fill, total = (int(a, 0) for a in sys.argv[1:])
sys.stdout.buffer.write(zlib.compress(bytes([fill]) * n + bytes(total - n)))' "$@"
}
# qemu-io 7.2: "read failed: Invalid argument" (a size past its buffer).
cp v.vmdk vhuge.vmdk
marker vhuge.vmdk 0x7fffffff
reads "a marker of 2 GiB" vhuge.vmdk 0 1
# qemu-io 7.2 reads this one (zeros past the end, and the stream ends
# first); libqblock refuses a grain whose size runs past the end.
cp v.vmdk vsize.vmdk
marker vsize.vmdk 0xfff8
reads "a marker running past the end" vsize.vmdk 0 1
# qemu-io 7.2: "read failed: Invalid argument" (uncompress overflows).
cp v.vmdk vbig.vmdk
zlib_of 4096 9 131072 >vbig.z
marker vbig.vmdk "$(stat -c %s vbig.z)" vbig.z
reads "a stream of 128 KiB" vbig.vmdk 0 1
# qemu-io 7.2 reads the 4 KiB the stream holds and fails past them
# ("Invalid argument"); libqblock reads the rest of the grain as zeros.
cp v.vmdk vshort.vmdk
zlib_of 4096 9 4096 >vshort.z
marker vshort.vmdk "$(stat -c %s vshort.z)" vshort.z
reads "a stream of 4 KiB" vshort.vmdk 0 0
says 0 read -P 0 vshort.vmdk 32k 4k
# qemu-io 7.2: "read failed: Invalid argument".
cp v.vmdk vjunk.vmdk
head -c 90 /dev/zero | tr '\0' '\377' >vjunk.z
marker vjunk.vmdk 90 vjunk.z
reads "junk" vjunk.vmdk 0 1
