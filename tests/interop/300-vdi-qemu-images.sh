#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 300-vdi-qemu-images.sh: VDI images that qemu-img 7.2 creates with every
# create option (dynamic, static, odd and empty sizes) and that qemu-io
# fills with data, zeros and unaligned writes read through libqblock exactly
# as `qemu-img convert -O raw` reads them; `map` and `info` agree with
# qemu-img's, and `read -P` sees the patterns.

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

# qio_fmt FMT FILE CMD...: qemu-io on an image of format FMT; must succeed.
qio_fmt() {
    local fmt=$1 file=$2 c out rc=0
    local -a args=()
    shift 2
    for c in "$@"; do
        args+=(-c "$c")
    done
    out=$("$QEMU_IO" -f "$fmt" "${args[@]}" "$file" 2>&1) || rc=$?
    if [ $rc -ne 0 ] || printf '%s\n' "$out" | grep -q "failed\|error"; then
        printf '%s\n' "$out" | sed 's/^/    (qemu-io) /' >&2
        fail "qemu-io reported a problem on $file"
    fi
}

n=0
for opts in "static=off" "static=on"; do
    for size in 64M 10000 3M 0; do
        img=q$n.vdi
        n=$((n + 1))
        run "$QEMU_IMG" create -f vdi -o "$opts" "$img" "$size"
        case $size in
        64M)
            qio_fmt vdi "$img" "write -P 0xaa 0 1M" "write -P 0xbb 3M 4k" \
                "write -P 0xcc 5000 77777" "write -z 10M 1M" "write -P 0xdd 63M 1M" \
                "write -P 0xee 20M 3M" "write -z 21M 4096"
            ;;
        10000)
            qio_fmt vdi "$img" "write -P 0x11 512 4096" "write -P 0x12 9728 512"
            ;;
        3M)
            qio_fmt vdi "$img" "write -P 0x21 2M 1M"
            ;;
        esac
        same_raw vdi "$img"
        same_map vdi "$img"
        same_info vdi "$img"
    done
done

# Patterns read back through the tool, and a mismatch is noticed.
run qbi read -f vdi -P 0xcc q0.vdi 5000 77777
run qbi read -f vdi -P 0xee q0.vdi 22M 1M
run qbi read -f vdi -P 0 q0.vdi 21M 4096
run_status 1 qbi read -f vdi -P 0xaa q0.vdi 1M 512

# The format is probed from the signature at 0x40.
run qbi info q0.vdi
grep -q "^file format: vdi$" run.out || fail "q0.vdi was not probed as vdi"
echo "300: OK"
