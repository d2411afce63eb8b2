#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 322-vmdk-stream.sh: streamOptimized VMDK images written by libqblock
# (`convert`, front to back, deflate-compressed grains with markers): qemu-img
# reads them as the source, checks them clean and maps them the same way,
# vmdkinfo/vmdkmount read them; stored grains cannot be rewritten (as in
# QEMU), QEMU can append grains we then read, and a size that ends inside a
# grain works.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# --- helpers shared by the 3xx scripts (each script carries its own copy) ---

# same_raw FMT IMG: qblock-img and qemu-img convert IMG to the same raw bytes.
same_raw() {
    rm -f ours.raw ref.raw
    run qbi convert -f "$1" -O raw "$2" ours.raw
    run "$QEMU_IMG" convert -f "$1" -O raw "$2" ref.raw
    same_content ours.raw ref.raw
}

# same_map FMT IMG: `map --output=json` prints what qemu-img prints.
same_map() {
    run "$QEMU_IMG" map -f "$1" --output=json "$2"
    mv run.out qemu-map.json
    run qbi map -f "$1" --output=json "$2"
    same_output "map of $2" qemu-map.json run.out
}

# same_info FMT IMG: the sizes `info --output=json` reports agree.
same_info() {
    run "$QEMU_IMG" info -f "$1" --output=json "$2"
    grep '"virtual-size"\|"cluster-size"\|"format"\|"backing-filename"' run.out |
        grep -v '^            ' >qemu-info.txt
    run qbi info -f "$1" --output=json "$2"
    grep '"virtual-size"\|"cluster-size"\|"format"\|"backing-filename"' run.out |
        grep -v '^            ' >ours-info.txt
    same_output "info of $2" qemu-info.txt ours-info.txt
}

# random_writes FMT IMG MIRROR SEED COUNT MAXLEN: COUNT writes of 1..MAXLEN
# bytes at any byte offset (one in eight writes zeros), drawn from bash's
# RANDOM seeded with SEED, through qblock-img into IMG; the same writes go
# into the raw MIRROR through one qemu-io run.
random_writes() {
    local fmt=$1 img=$2 mirror=$3 count=$5 maxlen=$6 size off len pat i rc
    local -a qargs=()
    size=$(stat -c %s "$mirror")
    RANDOM=$4
    for ((i = 0; i < count; i++)); do
        off=$(( (RANDOM * 32768 + RANDOM) % size ))
        len=$(( 1 + (RANDOM * 32768 + RANDOM) % maxlen ))
        if (( off + len > size )); then
            len=$(( size - off ))
        fi
        pat=$(( RANDOM % 255 + 1 ))
        rc=0
        if (( RANDOM % 8 == 0 )); then
            qbi write -q -f "$fmt" -z "$img" $off $len || rc=$?
            qargs+=(-c "write -z $off $len")
        else
            qbi write -q -f "$fmt" -P $pat "$img" $off $len || rc=$?
            qargs+=(-c "write -P $pat $off $len")
        fi
        check_status 0 $rc "qblock-img write #$i ($off, $len) on $img"
    done
    "$QEMU_IO" -f raw "${qargs[@]}" "$mirror" >qemu-io.log 2>&1 ||
        fail "qemu-io could not write the mirror"
    ! grep -q "failed\|error" qemu-io.log || fail "qemu-io reported a problem on the mirror"
}

# Sources: patterns, zeros, random bytes, and a size ending inside a grain.
run "$QEMU_IMG" create -q -f raw a.raw 24M
run "$QEMU_IO" -f raw -c "write -P 0x11 0 1M" -c "write -P 0x12 3M 4k" \
    -c "write -P 0x13 5000 77777" -c "write -P 0 8M 1M" -c "write -P 0x14 25100288 64k" a.raw
head -c 3M /dev/urandom | dd of=a.raw bs=1M seek=12 conv=notrunc status=none
run "$QEMU_IMG" create -q -f raw b.raw 3146752          # 3 MiB + 1 KiB
run "$QEMU_IO" -f raw -c "write -P 0x21 3M 1k" -c "write -P 0x22 0 100k" b.raw
head -c 1M /dev/urandom >c.raw

for src in a b c; do
    run qbi convert -f raw -O vmdk -o subformat=streamOptimized $src.raw $src.vmdk
    run "$QEMU_IMG" check -f vmdk $src.vmdk
    run "$QEMU_IMG" compare -f vmdk -F raw $src.vmdk $src.raw
    run qbi compare -f vmdk -F raw $src.vmdk $src.raw
    same_raw vmdk $src.vmdk
    same_map vmdk $src.vmdk
    same_info vmdk $src.vmdk
    head -c 4 $src.vmdk | grep -q KDMV || fail "$src.vmdk is not a sparse extent"
    if command -v vmdkinfo >/dev/null; then
        run vmdkinfo $src.vmdk
        grep -q "Stream optimized" run.out || fail "vmdkinfo does not see a stream: $(cat run.out)"
    fi
done
# Compression happened: the random megabyte aside, the image is far smaller than its data.
[ $(stat -c %s a.vmdk) -lt $((3 * 1024 * 1024 + 600 * 1024)) ] || fail "a.vmdk is not compressed"

# Stored grains cannot be written again, as with QEMU; new grains can be appended.
run_fails qbi write -q -f vmdk -P 0x31 a.vmdk 0 64k
"$QEMU_IO" -f vmdk -c "write -P 0x31 0 64k" a.vmdk >qio.out 2>&1
grep -q "write failed" qio.out || fail "qemu-io rewrote a stored grain?"
run qbi write -q -f vmdk -P 0x41 a.vmdk 20M 128k
run "$QEMU_IO" -f vmdk -c "write -P 0x42 21M 64k" a.vmdk
run "$QEMU_IO" -f raw -c "write -P 0x41 20M 128k" -c "write -P 0x42 21M 64k" a.raw
run "$QEMU_IMG" check -f vmdk a.vmdk
run "$QEMU_IMG" compare -f vmdk -F raw a.vmdk a.raw
same_raw vmdk a.vmdk

# A stream QEMU converted, read by us (and then extended by us).
run "$QEMU_IMG" convert -f raw -O vmdk -o subformat=streamOptimized b.raw q.vmdk
same_raw vmdk q.vmdk
run qbi write -q -f vmdk -P 0x51 q.vmdk 1M 64k
run "$QEMU_IO" -f raw -c "write -P 0x51 1M 64k" b.raw
run "$QEMU_IMG" compare -f vmdk -F raw q.vmdk b.raw

# vmdkmount (FUSE) reads the stream as the source bytes, where FUSE works.
if command -v vmdkmount >/dev/null && [ -e /dev/fuse ]; then
    mkdir -p mnt
    vmdkmount c.vmdk mnt >vmdkmount.log 2>&1 &
    for _ in $(seq 50); do
        [ -e mnt/vmdk1 ] && break
        sleep 0.1
    done
    if [ -e mnt/vmdk1 ]; then
        rc=0
        cmp mnt/vmdk1 c.raw >&2 || rc=$?
        umount mnt || fusermount -u mnt 2>/dev/null
        wait
        [ $rc -eq 0 ] || fail "vmdkmount reads c.vmdk differently from c.raw"
    else
        note "vmdkmount did not mount (FUSE unusable here): that part is not checked"
        kill %1 2>/dev/null
        wait
    fi
fi
echo "322: OK"
