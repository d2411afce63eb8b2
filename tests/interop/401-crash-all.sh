#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 401-crash-all.sh: for every writable format, a writer on the public API
# (tests/helpers/qbstress in crash mode: random writes and discards, a
# flush every few operations, reopens) is killed with SIGKILL at a random
# moment, many times. After each kill:
#  - `qemu-img check` finds no corruption (leaked clusters are allowed: they
#    are what an interrupted allocation leaves) where QEMU checks the format;
#  - the image, read by QEMU (`qemu-img convert -O raw`; cow, which QEMU
#    cannot read, is merged by uml_moo), holds every write acknowledged
#    before the writer's last successful flush, and in every other byte only
#    data some unflushed operation may have left (qbstress -C says exactly
#    what is accepted and why that is sound).
# Runs are chained: the next run opens the killed image read-write (so a
# format's repair on open is exercised, and killed too), and every fifth
# run starts a fresh image of the next variant of the format. Every run's
# seed decides its operations, flush interval, cache mode and kill delay.
#
# Environment: QB_CRASH_RUNS=N runs N times per format (default 100 for
# qcow2 and qed, 12 for every other format; 1000 is the long mode);
# QB_CRASH_SEED=S replays a run of seed S (printed on every failure) or a
# whole sequence starting there; QB_CRASH_FORMATS="qcow2 vdi" limits the
# formats.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
build_helper STRESS qbstress

base_seed=${QB_CRASH_SEED:-$(( (($(date +%s) % 100000) * 1000 + $$ % 1000) ))}
note "401: base seed $base_seed (QB_CRASH_SEED=$base_seed replays this run)"
formats=${QB_CRASH_FORMATS:-"qcow2 qed qcow cow vdi vpc vmdk"}
size=$((4 * 1024 * 1024))
head -c $size /dev/urandom >base.raw
run "$QEMU_IMG" convert -f raw -O vmdk base.raw base.vmdk
have_moo=no
command -v uml_moo >/dev/null 2>&1 && have_moo=yes

# variants FMT: one line per variant: OPTS BACKING ("-" for none).
variants() {
    case $1 in
        qcow2) printf '%s\n' "- -" "compat=0.10 -" "extended_l2=on -" "cluster_size=512 -" \
                   "- raw" "cluster_size=2M -" "compat=0.10,cluster_size=4k raw" \
                   "extended_l2=on,cluster_size=16k raw" ;;
        qed)   printf '%s\n' "- -" "cluster_size=16k raw" "cluster_size=4k -" "- raw" ;;
        qcow)  printf '%s\n' "- -" "- raw" ;;
        cow)   printf '%s\n' "- cow" ;;
        vdi)   printf '%s\n' "- -" "static=on -" ;;
        vpc)   printf '%s\n' "subformat=dynamic -" "subformat=fixed -" ;;
        vmdk)  printf '%s\n' "subformat=monolithicSparse -" "subformat=twoGbMaxExtentSparse -" \
                   "- vmdk" "subformat=monolithicFlat -" "subformat=twoGbMaxExtentFlat -" ;;
    esac
}

# to_raw FMT IMG OUT: the image's contents as QEMU (or, for cow, uml_moo) reads them.
to_raw() {
    rm -f "$3"
    if [ "$1" = cow ]; then
        run uml_moo "$2" "$3"
    else
        run "$QEMU_IMG" convert -f "$1" -O raw "$2" "$3"
    fi
}

# crash_run FMT OPTS BACKING SEED FRESH: one killed writer and its checks.
crash_run() {
    local fmt=$1 opts=$2 backing=$3 seed=$4 fresh=$5 img=img.$1 bargs=() sargs=() rc
    local flush delay wt=() what
    what="$fmt${opts:+ $opts}${backing:+ over $backing}, seed $seed"
    if [ "$fresh" = yes ]; then
        rm -f img.* img-*
        case $backing in
            raw) bargs=(-b base.raw -F raw) ;;
            cow) bargs=(-u -b base.raw) ;;
            vmdk) bargs=(-b base.vmdk -F vmdk) ;;
        esac
        run qbi create -q -f "$fmt" ${opts:+-o "$opts"} "${bargs[@]}" "$img" $size
        to_raw "$fmt" "$img" start.raw
    else
        mv result.raw start.raw
    fi
    [ -n "$backing" ] && sargs=(-b base.raw)
    cp start.raw mirror.raw
    RANDOM=$seed
    flush=$((2 + RANDOM % 24))
    if [ $((RANDOM % 8)) = 0 ]; then
        delay=$((RANDOM % 3000))             # within the open and its repair
    else
        delay=$((3000 + RANDOM * 2 % 60000))   # 3 to 63 ms into the work
    fi
    [ $((RANDOM % 3)) = 0 ] && wt=(-w)
    rc=0
    { "$STRESS" -s "$seed" -n 10000000 -m 131072 -F $flush -d 5 -r 150 "${wt[@]}" -f "$fmt" \
        "${sargs[@]}" -L crash.log -K $delay "$img" mirror.raw 2>writer.err; } 2>/dev/null || rc=$?
    if [ $rc -ne 137 ]; then
        sed 's/^/    (writer) /' writer.err >&2
        fail "$what: the writer exited $rc instead of being killed"
    fi
    case $fmt in
        qcow2|qed|vdi|vmdk)
            rc=0
            "$QEMU_IMG" check -f "$fmt" "$img" >check.out 2>&1 || rc=$?
            if { [ $rc -ne 0 ] && [ $rc -ne 3 ]; } || grep -q "ERROR" check.out; then
                sed 's/^/    (qemu-img check) /' check.out >&2
                fail "$what: qemu-img check exited $rc after the kill"
            fi
            ;;
    esac
    to_raw "$fmt" "$img" result.raw
    "$STRESS" -C crash.log ${sargs[@]+"${sargs[@]}"} start.raw result.raw >verify.out 2>&1 || {
        sed 's/^/    /' verify.out >&2
        fail "$what: the killed image does not hold what its flushes made durable"
    }
    runs_done=$((runs_done + 1))
}

total=0
for fmt in $formats; do
    [ "$fmt" = cow ] && [ $have_moo = no ] && { note "cow: uml_moo is not installed, not run"; continue; }
    case $fmt in
        qcow2|qed) n=${QB_CRASH_RUNS:-100} ;;
        *) n=${QB_CRASH_RUNS:-12} ;;
    esac
    mapfile -t vars < <(variants "$fmt")
    runs_done=0
    start_s=$SECONDS
    for r in $(seq 0 $((n - 1))); do
        v=${vars[$(( (r / 5) % ${#vars[@]} ))]}
        opts=${v% *}
        backing=${v#* }
        [ "$opts" = - ] && opts=
        [ "$backing" = - ] && backing=
        fresh=no
        [ $((r % 5)) = 0 ] && fresh=yes
        crash_run "$fmt" "$opts" "$backing" $((base_seed + total + r)) $fresh
    done
    total=$((total + n))
    note "$fmt: $runs_done kills in $((SECONDS - start_s)) s"
    echo "$fmt: every killed writer left a consistent image with its flushed writes"
done
