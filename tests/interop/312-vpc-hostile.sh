#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 312-vpc-hostile.sh: VHD footers and dynamic headers with one bad field
# each. Where qemu-img 7.2 refuses the image (a bad footer checksum is
# fatal there), qblock-img refuses it too, cleanly (a message naming the
# image, exit 1, no crash); fields QEMU ignores are accepted and read as QEMU
# reads them.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io


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

run "$QEMU_IMG" create -q -f vpc dyn.vhd 8M
run "$QEMU_IO" -f vpc -c "write -P 0x44 0 3M" dyn.vhd
run "$QEMU_IMG" create -q -f vpc -o subformat=fixed fix.vhd 8M
end_dyn=$(( $(stat -c %s dyn.vhd) - 512 ))
end_fix=$(( $(stat -c %s fix.vhd) - 512 ))

# refused IMAGE: both tools refuse it; ours says why, naming the file.
refused() {
    run_status 1 "$QEMU_IMG" info -f vpc "$1"
    run_fails qbi info -f vpc "$1"
    grep -q "$1" run.err || fail "the message does not name $1: $(cat run.err)"
    run_fails qbi read -f vpc "$1" 0 512
}

# Footer checksums (the copy at 0 of a dynamic image, the end of a fixed one).
cp dyn.vhd bad.vhd; poke_be bad.vhd 64 4 0x01020304; refused bad.vhd
cp fix.vhd bad.vhd; poke_be bad.vhd $((end_fix + 64)) 4 0x01020304; refused bad.vhd
# No cookie at 0 nor at the end; a trailing footer that is not of a fixed disk.
cp dyn.vhd bad.vhd; poke_str bad.vhd 0 conectiy; refused bad.vhd
cp fix.vhd bad.vhd; poke_be bad.vhd $((end_fix + 60)) 4 3; fix_footer bad.vhd $end_fix
refused bad.vhd
# The dynamic header: where it is, its cookie, block size, table entries, BAT.
cp dyn.vhd bad.vhd; poke_be bad.vhd 16 8 0x7fffffffffff0000; fix_footer bad.vhd 0
refused bad.vhd
cp dyn.vhd bad.vhd; poke_str bad.vhd 512 cxsparsf; refused bad.vhd
for bs in 3000 256 0; do
    cp dyn.vhd bad.vhd; poke_be bad.vhd $((512 + 32)) 4 $bs; refused bad.vhd
done
for n in 0x7fffffff 0x40000000 4 0; do
    cp dyn.vhd bad.vhd; poke_be bad.vhd $((512 + 28)) 4 $n; refused bad.vhd
done
cp dyn.vhd bad.vhd; poke_be bad.vhd $((512 + 16)) 8 0x100000; refused bad.vhd
cp dyn.vhd bad.vhd; poke_be bad.vhd 0x600 4 0x100000; refused bad.vhd
# Sizes past 2040 GiB through a creator whose current_size counts.
cp dyn.vhd bad.vhd
poke_str bad.vhd 28 'win '; poke_be bad.vhd 48 8 $((1 << 50)); fix_footer bad.vhd 0
refused bad.vhd
# Files too short for a footer.
for n in 0 100 511; do
    head -c $n dyn.vhd >short.vhd
    run_fails qbi info -f vpc short.vhd
done

# Accepted as QEMU accepts them: the dynamic header checksum, the version,
# features, a duplicated BAT entry, and unknown disk types (read as dynamic).
accepted() {
    rm -f ours.raw ref.raw
    run qbi convert -f vpc -O raw "$1" ours.raw
    run "$QEMU_IMG" convert -f vpc -O raw "$1" ref.raw
    same_content ours.raw ref.raw
}
cp dyn.vhd ok.vhd; poke_be ok.vhd $((512 + 36)) 4 0x1234; accepted ok.vhd
cp dyn.vhd ok.vhd; poke_be ok.vhd 12 4 0x20000; fix_footer ok.vhd 0; accepted ok.vhd
cp dyn.vhd ok.vhd; poke_be ok.vhd 0x604 4 4; accepted ok.vhd
cp dyn.vhd ok.vhd; poke_be ok.vhd 60 4 5; fix_footer ok.vhd 0; accepted ok.vhd
# A bad checksum on the trailing footer of a dynamic image is never read.
cp dyn.vhd ok.vhd; poke_be ok.vhd $((end_dyn + 64)) 4 7; accepted ok.vhd
echo "312: OK"
