#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 520-io-faults.sh: for every writable format, one seeded workload
# (tests/helpers/qbstress: random writes, discards, read-backs, flushes and
# reopens) is run once with the fault-injection protocol only counting the
# requests that reach the file protocol (reads, writes, flushes), and then
# once per fault point with that request failed (block/faulty.c; the
# LIBQBLOCK_FAULT_INJECT syntax is in include/block/fault.h): reads and
# flushes with EIO, writes in turn with EIO, ENOSPC and a torn write (the
# whole sectors of its first half stored, then EIO). The writer runs in
# qbstress's error mode: on a failed operation it closes the image, and a
# close that succeeds must have made every earlier operation durable. After
# each run:
#  - the injected error reached the caller: the writer failed (a fault that
#    was injected into a run that then succeeded is a silent success);
#  - `qemu-img check` finds no error (leaks are allowed) where QEMU checks
#    the format;
#  - the image, reopened without faults by libqblock (`qblock-img convert
#    -O raw`), holds every write acknowledged before the last successful
#    flush (or successful close), and elsewhere only bytes some unflushed
#    operation may have left (qbstress -C).
#
# The writer's flushes are counted and failed but not passed down to
# fdatasync (LIBQBLOCK_FAULT_NOSYNC=1): the image is only looked at after
# the writer ended, when the page cache holds what it wrote.
#
# Environment: QB_FAULT_FULL=1 runs every fault point; by default the first
# 2 of each kind and 3 more spread over the rest are run (about 110 runs,
# some 20 s on an idle machine; the full mode runs about 2500).
# QB_FAULT_FORMATS="qcow2 vdi" limits the formats.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
build_helper STRESS qbstress

formats=${QB_FAULT_FORMATS:-"qcow2 qed qcow vmdk vdi vpc cow raw"}
full=${QB_FAULT_FULL:-0}
size=$((1024 * 1024))
head -c $size /dev/urandom >base.raw

# One workload for every run: its seed, operations, flush and reopen intervals.
workload=(-s 520 -n 60 -m 65536 -F 6 -d 5 -r 25 -E)

# template FMT: the image every run of FMT starts from (tmpl.FMT), and its contents (start.raw).
template() {
    local bargs=()
    rm -f tmpl.* start.raw
    [ "$1" = cow ] && bargs=(-u -b base.raw)
    run qbi create -q -f "$1" "${bargs[@]}" "tmpl.$1" $size
    run qbi convert -O raw "tmpl.$1" start.raw
}

# writer FMT SPEC: the workload on a fresh copy of the template (img.FMT)
# with LIBQBLOCK_FAULT_INJECT=SPEC; sets rc, its exit status.
writer() {
    rm -f img.* fault.log
    cp --sparse=always "tmpl.$1" "img.$1"
    rc=0
    LIBQBLOCK_FAULT_INJECT=$2 LIBQBLOCK_FAULT_LOG=$TEST_DIR/fault.log LIBQBLOCK_FAULT_NOSYNC=1 \
        "$STRESS" "${workload[@]}" -f "$1" -L w.log -M "img.$1" start.raw \
        >writer.out 2>writer.err || rc=$?
    [ $rc -gt 128 ] && { cat writer.err >&2; fail "$1 $2: the writer crashed (signal $((rc - 128)))"; }
    return 0
}

# points N: the fault points run of the N requests of one kind.
points() {
    local n=$1 step=$(( ($1 + 2) / 3 ))
    for i in $(seq 1 "$n"); do
        if [ "$full" = 1 ] || [ "$i" -le 2 ] || [ $((i % step)) = 0 ]; then
            echo "$i"
        fi
    done
}

# qed_close_cleanup FMT KIND:N:...: true when FMT is qed and the failed
# request was the last of its kind before the image was closed (the log's
# next line is the close's count, and it ends at N). QED's close flushes
# the data (that flush is the caller's qb_close result) and then clears
# its need-check flag with a header write and a flush; when those fail,
# the flag stays set on disk and the next open checks the image, so
# nothing the caller must hear of was lost.
qed_close_cleanup() {
    local kinds=${2%%:*}s n=${2#*:}
    n=${n%%:*}
    [ "$kinds" = flushs ] && kinds=flushes
    [ "$1" = qed ] || return 1
    sed -n '/fault injected/{n;p;q}' fault.log | grep -q "$kinds $n "
}

# verify FMT SPEC: the checks after a faulted run.
verify() {
    local fmt=$1 what="$1 with $2" crc=0
    if ! grep -q "fault injected" fault.log; then
        fail "$what: no fault was injected (the workload's I/O is not deterministic?)"
    fi
    if [ $rc = 0 ] && ! qed_close_cleanup "$fmt" "$2"; then
        sed 's/^/    /' fault.log >&2
        fail "$what: the writer succeeded although a request failed (silent success)"
    fi
    case $fmt in
        qcow2|qed|vdi|vmdk)
            "$QEMU_IMG" check -f "$fmt" "img.$fmt" >check.out 2>&1 || crc=$?
            if { [ $crc -ne 0 ] && [ $crc -ne 3 ]; } || grep -q "ERROR" check.out; then
                sed 's/^/    (writer) /' writer.err >&2
                sed 's/^/    (qemu-img check) /' check.out >&2
                fail "$what: qemu-img check exited $crc"
            fi
            ;;
    esac
    rm -f result.raw
    run qbi convert -O raw "img.$fmt" result.raw
    "$STRESS" -C w.log start.raw result.raw >verify.out 2>&1 || {
        sed 's/^/    (writer) /' writer.err >&2
        sed 's/^/    /' verify.out >&2
        fail "$what: the image does not hold what was made durable"
    }
}

total=0
for fmt in $formats; do
    template "$fmt"
    writer "$fmt" count
    [ $rc = 0 ] || { cat writer.err >&2; fail "$fmt: the workload fails without faults"; }
    read -r reads writes flushes < <(sed -n 's/.*fault counts: reads \([0-9]*\) writes \([0-9]*\) flushes \([0-9]*\).*/\1 \2 \3/p' fault.log | tail -n 1)
    [ -n "$flushes" ] && [ "$writes" -gt 0 ] || fail "$fmt: no request counts in the log"
    runs=0
    for n in $(points "$reads"); do
        writer "$fmt" "read:$n:eio"; verify "$fmt" "read:$n:eio"; runs=$((runs + 1))
    done
    for n in $(points "$writes"); do
        if [ "$full" = 1 ]; then
            whats="eio enospc torn"
        else
            whats=$(echo "eio enospc torn" | cut -d' ' -f$((n % 3 + 1)))
        fi
        for w in $whats; do
            writer "$fmt" "write:$n:$w"; verify "$fmt" "write:$n:$w"; runs=$((runs + 1))
        done
    done
    for n in $(points "$flushes"); do
        writer "$fmt" "flush:$n:eio"; verify "$fmt" "flush:$n:eio"; runs=$((runs + 1))
    done
    total=$((total + runs))
    note "$fmt: $reads reads, $writes writes, $flushes flushes; $runs faulted runs"
    echo "$fmt: every injected I/O error reached the caller and left a consistent image"
done
note "520: $total faulted runs"
