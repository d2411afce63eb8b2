#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 300-vdi-qemu-images.sh: VDI images that qemu-img 7.2 creates with every
# create option (dynamic, static, odd and empty sizes) and that qemu-io
# fills with data, zeros and unaligned writes read through libqblock exactly
# as `qemu-img convert -O raw` reads them; `map` and `info` agree with
# qemu-img's, and `read -P` sees the patterns.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/img-common.sh"
require_qemu_img
require_qemu_io

# Shared helpers of the 3xx scripts (same_raw, same_map, same_info,
# random_writes) are in img-common.sh; this script's own follow.

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
