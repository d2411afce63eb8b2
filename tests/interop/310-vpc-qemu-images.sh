#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 310-vpc-qemu-images.sh: VHD images that qemu-img 7.2 creates (dynamic and
# fixed, force_size, sizes from empty to 127 GiB) and fills with qemu-io
# read through libqblock exactly as `qemu-img convert -O raw` reads them,
# with the same virtual size (the CHS rounding of formats.md §7.3) and the
# same map. Footers patched the way Hyper-V, Disk2vhd, XenServer and blktap
# write them (creator application, current_size) are sized as QEMU sizes
# them, and fixed images are probed as raw, as by QEMU.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/img-common.sh"
require_qemu_img
require_qemu_io

# Shared helpers of the 3xx scripts (same_raw, same_map, same_info,
# random_writes) are in img-common.sh; this script's own follow.

# poke_be FILE OFFSET NBYTES VALUE: overwrite a big-endian field.
poke_be() {
    local file=$1 off=$(($2)) n=$3 v=$(($4)) bytes="" i
    for ((i = n - 1; i >= 0; i--)); do
        bytes+=$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 )))
    done
    printf "$bytes" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none ||
        fail "could not patch $file"
}

# poke_str FILE OFFSET TEXT: overwrite bytes with TEXT (printf escapes allowed).
poke_str() {
    printf "$3" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none ||
        fail "could not patch $1"
}

# fix_footer FILE OFFSET: recompute the checksum of the footer at OFFSET.
fix_footer() {
    local sum
    sum=$(od -An -v -tu1 -j $(($2)) -N 512 "$1" |
          awk '{ for (i = 1; i <= NF; i++) { n++; if (n < 65 || n > 68) s += $i } }
               END { printf "%.0f", (4294967295 - s) % 4294967296 }')
    poke_be "$1" $(($2 + 64)) 4 "$sum"
}

# footer_offsets FILE: where the footers of a VHD are (0 too when dynamic).
footer_offsets() {
    local size
    size=$(stat -c %s "$1")
    if [ "$(head -c 8 "$1" | tr -d '\0')" = conectix ]; then
        echo 0
    fi
    echo $((size - 512))
}

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
for sub in dynamic fixed; do
    for spec in "8M off" "64M off" "10000 off" "1M off" "0 off" "8M on" "10000 on"; do
        set -- $spec
        img=q$n.vhd
        n=$((n + 1))
        run "$QEMU_IMG" create -q -f vpc -o subformat=$sub,force_size=$2 "$img" "$1"
        case $1 in
        8M) qio_fmt vpc "$img" "write -P 0xaa 0 1M" "write -P 0xbb 3M 4k" \
                "write -P 0xcc 5000 77777" "write -z 2M 64k" "write -P 0xdd 7M 1M" ;;
        64M) qio_fmt vpc "$img" "write -P 0x11 2M 2M" "write -P 0x12 62M 1M" \
                "write -P 0x13 33333 4444" ;;
        10000) qio_fmt vpc "$img" "write -P 0x21 0 4096" ;;
        1M) qio_fmt vpc "$img" "write -P 0x31 1M 4096" ;;
        esac
        if [ $sub = fixed ] && [ "$1" = 0 ]; then
            # An empty fixed image is only a footer: qemu-img 7.2 creates it but
            # then takes that footer for a dynamic image's copy and fails.
            run_status 1 "$QEMU_IMG" info -f vpc "$img"
            run qbi info -f vpc "$img"
            grep -q "virtual size: 0 B (0 bytes)" run.out || fail "empty fixed image misread"
            continue
        fi
        same_raw vpc "$img"
        same_map vpc "$img"
        same_info vpc "$img"
    done
done

# Large sizes: the CHS size, and data at the far end (no whole-image copy).
for spec in "127G dynamic" "200G dynamic" "1G fixed"; do
    set -- $spec
    run "$QEMU_IMG" create -q -f vpc -o subformat=$2 big.vhd "$1"
    qio_fmt vpc big.vhd "write -P 0x77 1073676288 65536"
    same_info vpc big.vhd
    same_map vpc big.vhd
    run qbi read -f vpc -P 0x77 big.vhd 1073676288 65536
done

# Fixed images have no magic at 0: probed as raw, like qemu-img does.
run "$QEMU_IMG" info q7.vhd
grep -q "^file format: raw" run.out || fail "qemu-img probed q7.vhd as vpc?"
run qbi info q7.vhd
grep -q "^file format: raw" run.out || fail "qblock-img did not probe the fixed q7.vhd as raw"
run qbi info q0.vhd
grep -q "^file format: vpc" run.out || fail "qblock-img did not probe the dynamic q0.vhd as vpc"

# Creator applications and current_size: QEMU 7.2's size rule.
run "$QEMU_IMG" create -q -f vpc src.vhd 8M
qio_fmt vpc src.vhd "write -P 0x66 0 8M"
run "$QEMU_IMG" create -q -f vpc -o subformat=fixed srcf.vhd 8M
qio_fmt vpc srcf.vhd "write -P 0x67 0 8M"
for creator in 'win ' 'qem2' 'd2v ' 'd2v\x00' 'CTXS' 'tap\x00' 'vpc ' 'qemu'; do
    for src in src.vhd srcf.vhd; do
        cp $src cr.vhd
        for off in $(footer_offsets cr.vhd); do
            poke_str cr.vhd $((off + 28)) "$creator"
            poke_be cr.vhd $((off + 48)) 8 $((7 * 1024 * 1024 + 1000))
            fix_footer cr.vhd $off
        done
        same_info vpc cr.vhd
        same_raw vpc cr.vhd
    done
done
# The maximal geometry makes current_size count too.
cp src.vhd cr.vhd
for off in $(footer_offsets cr.vhd); do
    poke_be cr.vhd $((off + 56)) 2 65535
    poke_be cr.vhd $((off + 58)) 1 16
    poke_be cr.vhd $((off + 59)) 1 255
    poke_be cr.vhd $((off + 48)) 8 $((6 * 1024 * 1024))
    fix_footer cr.vhd $off
done
same_info vpc cr.vhd
same_raw vpc cr.vhd
# Only the footer copy at offset 0 of a dynamic image counts.
cp src.vhd cr.vhd
off=$(( $(stat -c %s cr.vhd) - 512 ))
poke_str cr.vhd $((off + 28)) 'win '
poke_be cr.vhd $((off + 48)) 8 $((7 * 1024 * 1024))
fix_footer cr.vhd $off
same_info vpc cr.vhd
# Differencing disks (type 4) read as dynamic ones, the parent ignored, as in QEMU.
cp src.vhd cr.vhd
for off in $(footer_offsets cr.vhd); do
    poke_be cr.vhd $((off + 60)) 4 4
    fix_footer cr.vhd $off
done
same_info vpc cr.vhd
same_raw vpc cr.vhd
echo "310: OK"
