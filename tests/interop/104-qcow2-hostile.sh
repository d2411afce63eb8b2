#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 104-qcow2-hostile.sh: qcow2 images with one header field, extension or
# table entry patched to a hostile value (every open-time limit QEMU 7.2
# enforces, unknown features, encryption, external data files, huge
# counts and offsets). `qblock-img info` refuses each cleanly, with a
# message naming the file, as `qemu-img info` refuses it; never a crash or
# a huge allocation. Damage inside the tables fails the read that reaches
# it (as qemu-io's read fails) while the rest of the image stays readable.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# patch FILE OFFSET HEXBYTES: overwrite bytes at OFFSET ("0000000400" style).
patch() {
    local file=$1 off=$2 hex=$3 esc=""
    while [ -n "$hex" ]; do
        esc+="\\x${hex:0:2}"
        hex=${hex:2}
    done
    printf "$esc" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none ||
        fail "could not patch $file"
}

# About 2 GB of address space: a runaway allocation fails here. Sanitizer
# runtimes and valgrind need far more address space for themselves, so
# under them the cap is left out (the plain run enforces it).
case "${TEST_CFLAGS:-}${TEST_WRAPPER:-}" in
    *sanitize*|*valgrind*) ;;
    *) ulimit -v 2000000 2>/dev/null || true ;;
esac

run "$QEMU_IMG" create -q -f qcow2 good.qcow2 64M
"$QEMU_IO" -f qcow2 -c 'write -P 0x11 0 128k' -c 'write -P 0x22 1M 64k' good.qcow2 >/dev/null ||
    fail "qemu-io"

# bad NAME KIND(invalid|unsupported) OFFSET HEX [OFFSET HEX]...
bad() {
    local name=$1 kind=$2
    shift 2
    cp good.qcow2 bad.qcow2
    while [ $# -gt 0 ]; do
        patch bad.qcow2 "$1" "$2"
        shift 2
    done
    # Features QEMU has and this driver lacks are refused by us alone.
    if [ "$kind" != unsupported ] && "$QEMU_IMG" info bad.qcow2 >/dev/null 2>&1; then
        fail "$name: qemu-img accepts the image, so the case tests nothing"
    fi
    run_fails qbi info -f qcow2 bad.qcow2
    grep -q "bad.qcow2" run.err || fail "$name: the message does not name the file: $(cat run.err)"
    if [ "$kind" = unsupported ]; then
        grep -qi "not supported\|unsupported\|unknown" run.err ||
            fail "$name: not reported as unsupported: $(cat run.err)"
    fi
    run_fails qbi read -f qcow2 bad.qcow2 0 512
    echo "refused ($kind): $name"
}

bad "version 4" unsupported 4 00000004
bad "cluster_bits 8" invalid 20 00000008
bad "cluster_bits 22" invalid 20 00000016
bad "header_length 100" invalid 100 00000064
bad "header_length past the cluster" invalid 100 00020000
bad "backing file offset past the cluster" invalid 8 0000000000010008 16 00000004
bad "backing file name of 1024 bytes" invalid 8 0000000000000400 16 00000400
bad "unknown incompatible feature 20" unsupported 72 0000000000100000
bad "external data file" unsupported 72 0000000000000004
bad "refcount_order 7" invalid 96 00000007
bad "encryption method 3" invalid 32 00000003
bad "AES encryption" unsupported 32 00000001
bad "no refcount table" invalid 56 00000000
bad "refcount table of 4G clusters" invalid 56 ffffffff
bad "refcount table unaligned" invalid 48 0000000000010200
bad "4G snapshots" invalid 60 ffffffff
bad "snapshot table unaligned" invalid 60 00000001 64 0000000000000200
bad "L1 of 4G entries" invalid 36 ffffffff
bad "L1 too small" invalid 36 00000000
bad "L1 unaligned" invalid 40 0000000000030100
bad "virtual size 2^62" invalid 24 4000000000000000
bad "extension longer than the area" invalid 116 00100000
bad "compression type 5" unsupported 72 0000000000000008 104 05
bad "extended L2 with 4k clusters" invalid 20 0000000c 72 0000000000000010

# An unknown feature the image's feature table names is reported by that name.
cp good.qcow2 named.qcow2
patch named.qcow2 $((0x78 + 7 * 48)) 0021
patch named.qcow2 $((0x78 + 7 * 48 + 2)) 66616e63792077696467657473000000000000
patch named.qcow2 72 0000000200000000
run_fails qbi info -f qcow2 named.qcow2
grep -q "fancy widgets" run.err || fail "the feature table's name is not in: $(cat run.err)"
echo "refused (unsupported): a named unknown feature, by its name"

# The corrupt bit: read-only use works, read-write is refused.
cp good.qcow2 corrupt.qcow2
patch corrupt.qcow2 72 0000000000000002
run qbi read -f qcow2 -P 0x11 corrupt.qcow2 0 4096
run_fails qbi write -f qcow2 -P 0x33 corrupt.qcow2 0 4096
echo "corrupt bit: read-only open allowed, read-write refused"

# Damage inside the tables: only the reads that reach it fail.
l2=$(( $(od -An -tu8 --endian=big -j $((0x30000)) -N8 good.qcow2) & 0x00fffffffffffe00 ))
table_case() {
    local name=$1 entry=$2 hex=$3
    cp good.qcow2 tab.qcow2
    patch tab.qcow2 $((l2 + 8 * entry)) "$hex"
    if "$QEMU_IO" -r -f qcow2 -c "read 0 64k" tab.qcow2 2>&1 | grep -q "^read 65536"; then
        fail "$name: qemu-io reads it, so the case tests nothing"
    fi
    run_fails qbi read -f qcow2 tab.qcow2 0 4096
    run qbi read -f qcow2 -P 0x22 tab.qcow2 1M 64k
    echo "read refused, rest readable: $name"
}
table_case "unaligned data offset" 0 8000000000050200
table_case "compressed garbage" 0 4000000000000100
