#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 240-hostile-headers.sh: qed, qcow and cow images with one header field (or
# one table entry) patched to a hostile value: sizes past the end of the
# file, unaligned or out-of-range table offsets, invalid cluster, table and
# sector sizes, bitmaps shorter than the image, names without an end,
# unknown versions and features. Every one is refused cleanly: the tool
# exits with an error message naming the file (an invalid image, or a
# feature that is not supported), never with a crash, and a bad table entry
# fails the read that reaches it without hiding the rest of the image.

source "$SRCDIR/tests/interop/common.sh"

# patch FILE OFFSET BYTE...: overwrite bytes (given in hex) at OFFSET.
patch() {
    local file=$1 off=$2 hex=""
    shift 2
    for b in "$@"; do
        hex+="\\x$b"
    done
    printf "$hex" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none ||
        fail "could not patch $file"
}

# refused FMT NAME KIND FILE: `info` fails with a message; KIND "invalid"
# wants the invalid-image error, "unsupported" the not-supported one.
refused() {
    local fmt=$1 name=$2 kind=$3 file=$4
    run_fails qbi info -f "$fmt" "$file"
    grep -q "$file" "$TEST_DIR/run.err" || fail "$name: the message does not name $file: $(cat "$TEST_DIR/run.err")"
    case $kind in
        invalid) grep -qi "invalid\|corrupt\|malformed" "$TEST_DIR/run.err" ||
                     fail "$name: not reported as an invalid image: $(cat "$TEST_DIR/run.err")" ;;
        unsupported) grep -qi "not supported\|unsupported" "$TEST_DIR/run.err" ||
                     fail "$name: not reported as unsupported: $(cat "$TEST_DIR/run.err")" ;;
    esac
    run_fails qbi read -f "$fmt" "$file" 0 512
}

# ---- qed (little-endian header) ----
run qbi create -f qed good.qed 8M
n=0
qed_case() {
    local name=$1 kind=$2 off=$3
    shift 3
    cp good.qed bad.qed
    patch bad.qed "$off" "$@"
    refused qed "qed $name" "$kind" bad.qed
    n=$((n + 1))
}
qed_case "cluster size 3000" invalid 4 b8 0b 00 00
qed_case "cluster size 128 MiB" invalid 4 00 00 00 08
qed_case "table size 0" invalid 8 00 00 00 00
qed_case "table size 3" invalid 8 03 00 00 00
qed_case "header size 2^32-1" invalid 12 ff ff ff ff
qed_case "unknown feature 0x10" unsupported 16 10
qed_case "L1 offset unaligned" invalid 40 10 00 01 00 00 00 00 00
qed_case "L1 offset past the end" invalid 40 00 00 00 00 01 00 00 00
qed_case "L1 offset near 2^64" invalid 40 00 00 ff ff ff ff ff ff
qed_case "image size unaligned" invalid 48 e9 03 00 00 00 00 00 00
qed_case "image size 2^62" invalid 48 00 00 00 00 00 00 00 40
cp good.qed bad.qed
patch bad.qed 16 01
patch bad.qed 56 f0 ff 00 00 00 01 00 00
refused qed "qed backing name outside the header" invalid bad.qed
n=$((n + 1))
head -c 40 good.qed >bad.qed
refused qed "qed truncated header" invalid bad.qed
n=$((n + 1))
# An L2 entry past the end of the file: the image opens, the read through
# it fails, the rest still reads.
cp good.qed bad.qed
run qbi write -P 0x11 bad.qed 0 64k
run qbi write -P 0x22 bad.qed 1M 64k
l2=$(od -An -tu8 -j $((0x10000)) -N8 bad.qed | tr -d ' ')
[ "$l2" -gt 0 ] || fail "bad.qed has no L2 table"
patch bad.qed $((l2 + 2 * 8)) 00 00 ff 7f 00 00 00 00
run qbi info bad.qed
run_fails qbi read bad.qed 128k 4k
run qbi read -P 0x11 bad.qed 0 64k
run qbi read -P 0x22 bad.qed 1M 64k
echo "qed: $((n + 1)) hostile images refused cleanly"

# ---- qcow (big-endian header) ----
run qbi create -f qcow good.qcow 8M
n=0
qcow_case() {
    local name=$1 kind=$2 off=$3
    shift 3
    cp good.qcow bad.qcow
    patch bad.qcow "$off" "$@"
    refused qcow "qcow $name" "$kind" bad.qcow
    n=$((n + 1))
}
qcow_case "version 2" unsupported 4 00 00 00 02
qcow_case "size 0" invalid 24 00 00 00 00 00 00 00 00
qcow_case "size 2^63" invalid 24 80 00 00 00 00 00 00 00
qcow_case "size whose L1 is past the end" invalid 24 00 00 01 00 00 00 00 00
qcow_case "cluster bits 30" invalid 32 1e
qcow_case "L2 bits 3" invalid 33 03
qcow_case "AES encryption" unsupported 39 01
qcow_case "encryption method 7" invalid 39 07
qcow_case "L1 offset unaligned" invalid 47 33
qcow_case "L1 offset past the end" invalid 40 00 00 00 00 00 10 00 00
qcow_case "backing name past the end" invalid 8 00 00 00 00 00 01 00 00
cp good.qcow bad.qcow
patch bad.qcow 8 00 00 00 00 00 00 00 30
patch bad.qcow 16 00 00 13 88
refused qcow "qcow backing name too long" invalid bad.qcow
n=$((n + 1))
head -c 40 good.qcow >bad.qcow
refused qcow "qcow truncated header" invalid bad.qcow
n=$((n + 1))
# An L2 table past the end of the file.
cp good.qcow bad.qcow
patch bad.qcow 48 00 00 00 00 10 00 00 00
run qbi info bad.qcow
run_fails qbi read bad.qcow 0 4k
run qbi read -P 0 bad.qcow 2M 1M
echo "qcow: $((n + 1)) hostile images refused cleanly"

# ---- cow (big-endian v3 header) ----
head -c 1M /dev/urandom >base.raw
run qbi create -f cow -u -b base.raw good.cow 0
n=0
cow_case() {
    local name=$1 kind=$2 off=$3
    shift 3
    cp good.cow bad.cow
    patch bad.cow "$off" "$@"
    refused cow "cow $name" "$kind" bad.cow
    n=$((n + 1))
}
cow_case "version 9" unsupported 4 00 00 00 09
cow_case "sector size 0" invalid 20 00 00 00 00
cow_case "sector size 1000" invalid 20 00 00 03 e8
cow_case "alignment 0" invalid 24 00 00 00 00
cow_case "alignment 2^31" invalid 24 80 00 00 00
cow_case "size past the bitmap" invalid 12 00 00 10 00
cow_case "cow_format 1" unsupported 31 01
cp good.cow bad.cow
head -c 4096 /dev/zero | tr '\0' a | dd of=bad.cow bs=1 seek=32 conv=notrunc status=none
refused cow "cow name without an end" invalid bad.cow
n=$((n + 1))
head -c 8200 good.cow >bad.cow
refused cow "cow bitmap cut short" invalid bad.cow
n=$((n + 1))
head -c 2000 good.cow >bad.cow
refused cow "cow truncated header" invalid bad.cow
n=$((n + 1))
echo "cow: $n hostile images refused cleanly"
