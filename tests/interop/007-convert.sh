#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 007-convert.sh: `qblock-img convert` raw -> raw keeps the contents and the
# holes: its output has the bytes of the source and the same qemu-img map
# as `qemu-img convert`'s output of the same source (zero runs of -S bytes
# left as holes, -S 0 fully allocating); -n writes into an existing file
# (holding garbage) correctly; several sources are concatenated as qemu-img
# does; -p prints qemu-img's progress lines.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# 64 KiB-aligned zero runs, so the file system's block size cannot matter.
sparse_file src.raw 20M
qio_ok src.raw "write -P 0x61 0 64k" "write -P 0x62 1M 2M" "write -P 0 4M 1M" \
    "write -P 0x63 5M 64k" "write -P 0 5184k 128k" "write -P 0x64 5312k 64k" \
    "write -P 0x65 19M 1M"

maps_equal() {
    "$QEMU_IMG" map -f raw --output=json "$1" >map-ours.txt
    "$QEMU_IMG" map -f raw --output=json "$2" >map-qemu.txt
    same_output "qemu-img map of $1 and $2" map-qemu.txt map-ours.txt
}

echo "== default: sparse, zero runs of 4 KiB and more left out"
run qbi convert -f raw -O raw src.raw out.raw
[ -s "$TEST_DIR/run.out" ] && fail "convert printed: $(cat "$TEST_DIR/run.out")"
run "$QEMU_IMG" convert -f raw -O raw src.raw qemu-out.raw
same_content src.raw out.raw
maps_equal out.raw qemu-out.raw
cat map-ours.txt
run "$QEMU_IMG" compare -f raw -F raw src.raw out.raw
[ "$(disk_usage out.raw)" -lt "$(disk_usage src.raw)" ] ||
    fail "the written zeros of the source were copied as data"

echo "== -S 0: fully allocated"
run qbi convert -S 0 -f raw -O raw src.raw full.raw
same_content src.raw full.raw
[ "$(disk_usage full.raw)" -ge $((20 * 1024 * 1024)) ] || fail "-S 0 left holes"
"$QEMU_IMG" map -f raw --output=json full.raw

echo "== -S 256k: shorter zero runs are written"
run qbi convert -S 256k -O raw src.raw s256.raw
run "$QEMU_IMG" convert -S 256k -O raw src.raw qemu-s256.raw
same_content src.raw s256.raw
maps_equal s256.raw qemu-s256.raw
for sparse in 8k 1M 512; do
    run qbi convert -S $sparse -O raw src.raw s.raw
    run "$QEMU_IMG" convert -S $sparse -O raw src.raw qemu-s.raw
    same_content src.raw s.raw
    maps_equal s.raw qemu-s.raw
    rm -f s.raw qemu-s.raw
done
# The 128 KiB run of zeros at 5184k is now data, the 1 MiB one at 4M not.
qbi map -f raw --output=json s256.raw

echo "== -n: into an existing file full of garbage"
head -c 20M /dev/urandom >existing.raw
run qbi convert -n -f raw -O raw src.raw existing.raw
same_content src.raw existing.raw
head -c 24M /dev/urandom >larger.raw
cp larger.raw larger-before.raw
run qbi convert -n src.raw larger.raw
cmp -n $((20 * 1024 * 1024)) src.raw larger.raw >&2 || fail "-n: the first 20M differ"
cmp -i $((20 * 1024 * 1024)) larger.raw larger-before.raw >&2 || fail "-n: bytes past the source changed"
sparse_file smaller.raw 19M
run_fails qbi convert -n src.raw smaller.raw
grep -q "output file is smaller than input file" "$TEST_DIR/run.err" || fail "-n: wrong message for a small target"

echo "== several sources are concatenated"
sparse_file part2.raw 3M
qio_ok part2.raw "write -P 0x71 1M 64k"
head -c 1536 /dev/urandom >part3.raw
run qbi convert -O raw src.raw part2.raw src.raw cat.raw
run "$QEMU_IMG" convert -O raw src.raw part2.raw src.raw qemu-cat.raw
same_content qemu-cat.raw cat.raw
maps_equal cat.raw qemu-cat.raw
cat src.raw part2.raw src.raw | cmp - cat.raw >&2 || fail "concatenation differs from cat"

echo "== an empty source"
sparse_file empty.raw 0
run qbi convert -O raw empty.raw empty-out.raw
[ "$(stat -c %s empty-out.raw)" = 0 ] || fail "empty source gave a non-empty target"

echo "== -p progress"
run qbi convert -p -O raw src.raw progress.raw
same_content src.raw progress.raw
# qemu-img's shape: "    (P/100%)\r" lines from 0.00 to 100.00, then a newline.
tr '\r' '\n' <"$TEST_DIR/run.out" | grep -v '^$' >progress.txt
grep -qvx '    ([0-9]\{1,3\}\.[0-9][0-9]/100%)' progress.txt && fail "odd progress line: $(cat progress.txt)"
head -n1 progress.txt
tail -n1 progress.txt
[ "$(tail -c1 "$TEST_DIR/run.out" | od -An -c | tr -d ' ')" = '\n' ] || fail "progress does not end with a newline"
run qbi convert -p -q -O raw src.raw quiet.raw
[ -s "$TEST_DIR/run.out" ] && fail "convert -p -q printed progress"

echo "== bad -S values are refused as qemu-img refuses them"
for bad in 100 513 32M x -1; do
    run_status 1 "$QEMU_IMG" convert -S "$bad" -O raw src.raw bad.raw
    run_fails qbi convert -S "$bad" -O raw src.raw bad.raw
done

# The target's default cache mode is qemu-img convert's, unsafe: no sync
# at all; -t writeback syncs. Checked with strace when it is installed
# (diagnostics on stderr only, so the golden output is the same without).
# Not under valgrind or a sanitizer: LeakSanitizer cannot run under ptrace.
case "${TEST_CFLAGS:-}${TEST_WRAPPER:-}" in
    *sanitize*|*valgrind*) traced=no ;;
    *) traced=yes ;;
esac
if command -v strace >/dev/null && [ $traced = yes ]; then
    syncs() {
        rm -f sync.qcow2
        strace -f -qq -e trace=fsync,fdatasync,sync_file_range -o strace.txt \
            "$QBLOCK_IMG" convert "$@" -O qcow2 src.raw sync.qcow2 || fail "convert $*"
        grep -c 'sync' strace.txt || true
    }
    [ "$(syncs)" = 0 ] || fail "convert synced the target without -t"
    [ "$(syncs -t writeback)" -gt 0 ] || fail "convert -t writeback never synced"
    note "convert: no sync by default, syncs with -t writeback"
fi
echo "done"
