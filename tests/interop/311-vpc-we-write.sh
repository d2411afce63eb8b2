#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 311-vpc-we-write.sh: VHD images that libqblock creates carry the size and
# CHS geometry qemu-img 7.2 gives (for sizes from 0 to 2040 GiB, dynamic,
# fixed and force_size), the same dynamic header and file size; after
# hundreds of seeded random writes mirrored by qemu-io they compare equal
# to the mirror with `qemu-img compare`, `map` agrees with qemu-img's,
# libyal's vhdiinfo accepts them with the same size, and (where FUSE works)
# vhdimount reads back the mirror's bytes.

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

# footer_fields FILE: size, geometry and type from the footer, and the
# dynamic header's fields (not the timestamps, UUID or checksums).
footer_fields() {
    local end=$(( $(stat -c %s "$1") - 512 ))
    od -An -v -tx1 -j $((end + 40)) -N 24 "$1" | tr -d ' \n'
    echo
    od -An -v -tx1 -j $((end + 8)) -N 16 "$1" | tr -d ' \n'
    echo
    if [ "$(head -c 8 "$1" | tr -d '\0')" = conectix ]; then
        od -An -v -tx1 -j 512 -N 36 "$1" | tr -d ' \n'
        echo
    fi
    stat -c %s "$1"
}

for spec in "0" "512" "1000" "1M" "1536K" "8M" "10M" "31M" "63M" "64M" "100M" "127M" \
            "255M" "256M" "504M" "505M" "1G" "1023M" "2G" "4G" "16G" "31G" "32G" "33G" \
            "63G" "100G" "127G" "127.4G" "127.5G" "128G" "200G" "2040G" \
            "1M fixed" "8M fixed" "10000 fixed" "64M fixed" "8M force" "10000 force" \
            "3G force" "1M fixed,force"; do
    set -- $spec
    o="subformat=dynamic"
    case ${2:-} in
    fixed) o="subformat=fixed" ;;
    force) o="force_size=on" ;;
    fixed,force) o="subformat=fixed,force_size=on" ;;
    esac
    rm -f ours.vhd qemu.vhd
    run qbi create -q -f vpc -o "$o" ours.vhd "$1"
    run "$QEMU_IMG" create -q -f vpc -o "$o" qemu.vhd "$1"
    footer_fields ours.vhd >ours.txt
    footer_fields qemu.vhd >qemu.txt
    same_output "footer of a $1 ($o) image" qemu.txt ours.txt
done
run_fails qbi create -q -f vpc ours.vhd 2041G
run_status 1 "$QEMU_IMG" create -q -f vpc qemu.vhd 2041G

# Random writes on a dynamic and a fixed image.
run qbi create -q -f vpc dyn.vhd 64M
run qbi create -q -f vpc -o subformat=fixed fix.vhd 20M
for img in dyn fix; do
    run qbi info -f vpc --output=json $img.vhd
    size=$(sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p' run.out)
    sparse_file $img.raw "$size"
done
random_writes vpc dyn.vhd dyn.raw 3101 300 400000
random_writes vpc fix.vhd fix.raw 3102 150 100000
run "$QEMU_IO" -f vpc -c "write -P 0x5a 60M 3M" dyn.vhd
run "$QEMU_IO" -f raw -c "write -P 0x5a 60M 3M" dyn.raw
random_writes vpc dyn.vhd dyn.raw 3103 40 3000000

for img in dyn fix; do
    run "$QEMU_IMG" compare -f vpc -F raw $img.vhd $img.raw
    run qbi compare -f vpc -F raw $img.vhd $img.raw
    same_raw vpc $img.vhd
    same_map vpc $img.vhd
    same_info vpc $img.vhd
    # libyal's reader: the same media size (original_size = current_size = CHS size).
    if command -v vhdiinfo >/dev/null; then
        run vhdiinfo $img.vhd
        grep -q "Media size.*($(stat -c %s $img.raw) bytes)" run.out ||
            fail "vhdiinfo does not see $(stat -c %s $img.raw) bytes in $img.vhd: $(cat run.out)"
    fi
done

# vhdimount (FUSE) reads our image back as the mirror's bytes, where FUSE works.
if command -v vhdimount >/dev/null && [ -e /dev/fuse ]; then
    mkdir -p mnt
    vhdimount dyn.vhd mnt >vhdimount.log 2>&1 &
    for _ in $(seq 50); do
        [ -e mnt/vhdi1 ] && break
        sleep 0.1
    done
    if [ -e mnt/vhdi1 ]; then
        rc=0
        cmp mnt/vhdi1 dyn.raw >&2 || rc=$?
        umount mnt || fusermount -u mnt 2>/dev/null
        wait
        [ $rc -eq 0 ] || fail "vhdimount reads dyn.vhd differently from the mirror"
    else
        note "vhdimount did not mount (FUSE unusable here): that part is not checked"
        kill %1 2>/dev/null
        wait
    fi
else
    note "no vhdimount or /dev/fuse: the FUSE read-back is not checked"
fi
echo "311: OK"
