#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 030-convert-all-pairs.sh: `qblock-img convert` between every pair of
# writable formats (raw, qcow2, qcow, qed, vmdk monolithicSparse and
# streamOptimized, vdi, vpc, cow). Each source holds data, written zeros and
# holes, written by qemu-io into that format (streamOptimized and cow, which
# qemu-io cannot write in place, are converted from the raw one). Every
# result passes `qemu-img check` where QEMU has a check for the format, and
# `qemu-img compare` finds it equal to the raw reference (cow results, which
# QEMU cannot read, are merged by uml_moo first). `-c` output (qcow2 and
# streamOptimized vmdk) is smaller than plain output of the same data and
# compares equal too.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io
require_tool uml_moo uml-utilities

# 4080 KiB: a size vpc keeps exactly (a whole CHS geometry), so every result has it.
SIZE=4177920

# The writes every source gets: data that crosses cluster boundaries, data
# at both ends, zeros written as data, a zero-write request and holes.
WRITES=(
    "write -P 0x11 0 64k" "write -P 0x22 1000k 200k" "write -P 0 1536k 64k"
    "write -z 2m 128k" "write -P 0x33 3m 4k" "write -P 0x44 4016k 64k"
)

# qemu_fmt NAME: qemu-img's format name for one of our format names.
qemu_fmt() {
    case $1 in
        vmdk-stream) echo vmdk ;;
        *) echo "$1" ;;
    esac
}

# create_opts NAME: the create options that make format NAME.
create_opts() {
    case $1 in
        vmdk-stream) echo "-o subformat=streamOptimized" ;;
        cow) echo "-o backing_file=zero.raw" ;;
        *) echo "" ;;
    esac
}

# check_image NAME FILE: qemu-img check, where QEMU has one for the format.
check_image() {
    local rc=0 f
    f=$(qemu_fmt "$1")
    [ "$1" = cow ] || [ "$1" = raw ] && return 0
    "$QEMU_IMG" check -f "$f" "$2" >check.out 2>&1 || rc=$?
    if [ $rc -eq 63 ]; then
        return 0    # "This image format does not support checks" (qcow, vpc)
    fi
    [ $rc -eq 0 ] || { cat check.out >&2; fail "qemu-img check of $2 ($1): exit status $rc"; }
}

# equal_to_ref NAME FILE: QEMU reads FILE as the reference's bytes.
equal_to_ref() {
    local rc=0 file=$2 f
    f=$(qemu_fmt "$1")
    if [ "$1" = cow ]; then
        rm -f merged.raw
        uml_moo "$file" merged.raw >/dev/null 2>&1 || fail "uml_moo could not merge $file"
        file=merged.raw
        f=raw
    fi
    "$QEMU_IMG" compare -f raw -F "$f" ref.raw "$file" >cmp.out 2>&1 || rc=$?
    [ $rc -eq 0 ] || { cat cmp.out >&2; fail "qemu-img compare ref.raw $2 ($1): exit status $rc"; }
}

FORMATS=(raw qcow2 qcow qed vmdk vmdk-stream vdi vpc cow)

sparse_file zero.raw $SIZE
sparse_file ref.raw $SIZE
qio_ok ref.raw "${WRITES[@]}"

# The sources, one per format.
for fmt in "${FORMATS[@]}"; do
    case $fmt in
        raw) cp --sparse=always ref.raw src.raw ;;
        vmdk-stream|cow)
            # shellcheck disable=SC2046
            run qbi convert -O "$(qemu_fmt $fmt)" $(create_opts $fmt) ref.raw "src.$fmt" ;;
        *)
            run "$QEMU_IMG" create -q -f "$fmt" "src.$fmt" $SIZE
            args=()
            for w in "${WRITES[@]}"; do
                args+=(-c "$w")
            done
            out=$("$QEMU_IO" -f "$fmt" "${args[@]}" "src.$fmt" 2>&1) ||
                fail "qemu-io could not write src.$fmt"
            printf '%s\n' "$out" | grep -q "failed\|error" && fail "qemu-io on src.$fmt: $out"
            ;;
    esac
    equal_to_ref "$fmt" "src.$fmt"
done

n=0
for src in "${FORMATS[@]}"; do
    for dst in "${FORMATS[@]}"; do
        out="out-$src.$dst"
        rm -f "$out"
        # shellcheck disable=SC2046
        run qbi convert -f "$(qemu_fmt $src)" -O "$(qemu_fmt $dst)" $(create_opts $dst) \
            "src.$src" "$out"
        check_image "$dst" "$out"
        equal_to_ref "$dst" "$out"
        n=$((n + 1))
    done
    echo "from $src: converted to every format, checked and compared equal"
done
[ $n -eq 81 ] || fail "only $n conversions ran"

# Compressed output: smaller than plain output of the same data, and equal.
for src in qcow2 vmdk raw; do
    run qbi convert -f "$(qemu_fmt $src)" -O qcow2 "src.$src" plain.qcow2
    run qbi convert -c -f "$(qemu_fmt $src)" -O qcow2 "src.$src" comp.qcow2
    run qbi convert -f "$(qemu_fmt $src)" -O vmdk "src.$src" plain.vmdk
    run qbi convert -c -f "$(qemu_fmt $src)" -O vmdk -o subformat=streamOptimized \
        "src.$src" comp.vmdk
    for pair in "qcow2 plain.qcow2 comp.qcow2" "vmdk plain.vmdk comp.vmdk"; do
        read -r f plain comp <<<"$pair"
        check_image "$f" "$comp"
        equal_to_ref "$f" "$comp"
        [ "$(stat -c %s "$comp")" -lt "$(stat -c %s "$plain")" ] ||
            fail "-c from $src: $comp ($(stat -c %s "$comp") bytes) is not smaller than $plain ($(stat -c %s "$plain"))"
    done
    "$QEMU_IMG" check -f qcow2 comp.qcow2 | grep -q "compressed clusters" ||
        fail "-c from $src: qemu-img check finds no compressed clusters in comp.qcow2"
done
echo "-c: qcow2 and streamOptimized vmdk output is smaller than plain output and reads back equal"
