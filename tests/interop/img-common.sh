# SPDX-License-Identifier: LGPL-2.1-or-later
# img-common.sh: helpers the format interop scripts (3xx) share, sourced
# after common.sh: compare libqblock's view of an image with qemu-img's
# (contents, map, info) and mirror random writes into a raw file.

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
