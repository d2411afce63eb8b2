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
# run (second, for formats other than qcow2 and qed, so that a dozen runs
# reach each variant) starts a fresh image of the next variant; before that,
# `qblock-img check -r leaks` must leave the last image clean for QEMU.
# A third of the runs open the image write-through, where every completed
# write must survive, not only the flushed ones. Every run's seed decides
# its operations, flush and reopen intervals, cache mode and kill delay.
#
# Environment: QB_CRASH_RUNS=N runs N times per format (default 100 for
# qcow2, qed, vdi and vmdk, the formats whose issues ask for a crash test
# like qcow2's, 12 for every other format; 1000 is the long mode);
# QB_CRASH_SEED=S replays the runs of base seed S (printed at the start and
# with the command that replays it on every failure; the kill lands after
# the same operation, but not always at the same instant inside it);
# QB_CRASH_FORMATS="qcow2 vdi" limits the formats. Run number R of format
# number F (in the default list) has the seed S + F * 1000000 + R.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
build_helper STRESS qbstress

base_seed=${QB_CRASH_SEED:-$(( ($(date +%s) % 100000) * 1000 + $$ % 1000 ))}
note "401: base seed $base_seed (QB_CRASH_SEED=$base_seed replays this run)"
all_formats="qcow2 qed qcow cow vdi vpc vmdk"
formats=${QB_CRASH_FORMATS:-$all_formats}
size=$((2 * 1024 * 1024))
head -c $size /dev/urandom >base.raw
run "$QEMU_IMG" convert -f raw -O vmdk base.raw base.vmdk
head -c $((size * 3 / 4 - 4096)) base.raw >short.raw   # a backing file shorter than the image
start=a.raw
result=b.raw
have_moo=no
command -v uml_moo >/dev/null 2>&1 && have_moo=yes

# variants FMT: one line per variant: OPTS BACKING ("-" for none; raw,
# short (a shorter raw file), cow (raw named without a format) or vmdk).
variants() {
    case $1 in
        qcow2) printf '%s\n' "- -" "compat=0.10 -" "extended_l2=on -" "cluster_size=512 -" \
                   "- raw" "cluster_size=2M -" "compat=0.10,cluster_size=4k raw" \
                   "extended_l2=on,cluster_size=16k raw" "- short" ;;
        qed)   printf '%s\n' "- -" "cluster_size=16k raw" "cluster_size=4k -" "- short" ;;
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

# run_status_in "WANT..." CMD...: run CMD, whose exit status must be one of WANT.
run_status_in() {
    local want=$1 rc=0
    shift
    "$@" >run.out 2>run.err || rc=$?
    if ! [[ " $want " == *" $rc "* ]]; then
        sed 's/^/    /' run.out run.err >&2
        check_status "${want%% *}" $rc "$@"
    fi
}

# crash_run FMT OPTS BACKING SEED FRESH: one killed writer and its checks.
crash_run() {
    local fmt=$1 opts=$2 backing=$3 seed=$4 fresh=$5 img=img.$1 bargs=() sargs=() rc
    local flush kill reopen wt=() what n replay
    what="$fmt${opts:+ $opts}${backing:+ over $backing}, seed $seed"
    replay="replay: QB_CRASH_SEED=$base_seed QB_CRASH_FORMATS=$fmt QB_CRASH_RUNS=$((r + 1))"
    if [ "$fresh" = yes ]; then
        rm -f img.* img-*
        case $backing in
            raw) bargs=(-b base.raw -F raw) ;;
            short) bargs=(-b short.raw -F raw) ;;
            cow) bargs=(-u -b base.raw) ;;
            vmdk) bargs=(-b base.vmdk -F vmdk) ;;
        esac
        run qbi create -q -f "$fmt" ${opts:+-o "$opts"} "${bargs[@]}" "$img" $size
        to_raw "$fmt" "$img" "$start"
    else
        # The last run's result is this one's start (two names, swapped: no copy).
        local t=$start
        start=$result
        result=$t
    fi
    case $backing in
        short) sargs=(-b short.raw) ;;
        ?*) sargs=(-b base.raw) ;;
    esac
    RANDOM=$seed
    flush=$((2 + RANDOM % 12))
    if [ $((RANDOM % 8)) = 0 ]; then
        kill=(-K $((RANDOM % 3000)))                  # within the open and its repair
    else
        # 0 to 2 ms into one of the first 80 operations: measured in
        # operations, so that a loaded machine still gets past its flushes.
        kill=(-k $((1 + RANDOM % 80)) -K $((RANDOM % 2000)))
    fi
    [ $((RANDOM % 3)) = 0 ] && wt=(-w)
    reopen=$((10 + RANDOM % 60))   # closes and opens inside the window of the kill
    rc=0
    { "$STRESS" -s "$seed" -n 10000000 -m 65536 -F $flush -d 5 -r $reopen "${wt[@]}" -f "$fmt" \
        "${sargs[@]}" -L crash.log "${kill[@]}" -M "$img" "$start" 2>writer.err; } 2>/dev/null || rc=$?
    if [ $rc -ne 137 ]; then
        sed 's/^/    (writer) /' writer.err >&2
        fail "$what: the writer exited $rc instead of being killed ($replay)"
    fi
    case $fmt in
        qcow2|qed|vdi|vmdk)
            rc=0
            "$QEMU_IMG" check -f "$fmt" "$img" >check.out 2>&1 || rc=$?
            if { [ $rc -ne 0 ] && [ $rc -ne 3 ]; } || grep -q "ERROR" check.out; then
                sed 's/^/    (qemu-img check) /' check.out >&2
                fail "$what: qemu-img check exited $rc after the kill ($replay)"
            fi
            ;;
    esac
    to_raw "$fmt" "$img" "$result"
    "$STRESS" -C crash.log ${sargs[@]+"${sargs[@]}"} "$start" "$result" >verify.out 2>&1 || {
        sed 's/^/    /' verify.out >&2
        fail "$what: the killed image does not hold what its flushes made durable ($replay)"
    }
    runs_done=$((runs_done + 1))
    read -r n _ <verify.out
    durable_ops=$((durable_ops + n))
}

# repair FMT: at the end of a chain, `qblock-img check -r leaks` (a
# read-write open, which also runs a format's own repair, then the leak
# repair) leaves an image that `qemu-img check` finds clean, with the
# same contents; a QED image no longer asks for a check. QED has no
# reference counts to repair leaks with (QEMU leaves them too, and exits
# 3 for them after -r leaks as well): there only corruption is an error.
repair() {
    local fmt=$1 img=img.$1 rc=0 want=0
    [ "$fmt" = qed ] && want="0 3"
    run_status_in "$want" qbi check -r leaks -f "$fmt" "$img"
    "$QEMU_IMG" check -f "$fmt" "$img" >check.out 2>&1 || rc=$?
    if ! [[ " $want " == *" $rc "* ]] || grep -q "ERROR" check.out ||
        { [ $rc = 0 ] && ! grep -q "^No errors were found on the image.$" check.out; }; then
        sed 's/^/    (qemu-img check) /' check.out >&2
        fail "$fmt: qemu-img check exited $rc after qblock-img check -r leaks (base seed $base_seed)"
    fi
    if [ "$fmt" = qed ] && [ $(( $(od -An -tu1 -j16 -N1 "$img") & 2 )) -ne 0 ]; then
        fail "qed: the image still asks for a check after a read-write open"
    fi
    "$QEMU_IMG" compare -q -f "$fmt" -F raw "$img" "$result" ||
        fail "$fmt: the leak repair changed the image's contents"
}

# The checker must be able to fail: a writer that finished (its close made
# every operation durable) is checked once as written, then with one
# written byte put back to what it was before.
run qbi create -q -f qcow2 self.qcow2 $size
truncate -s $size self-start.raw
run "$STRESS" -s 1 -n 300 -m 65536 -F 7 -d 5 -L self.log -M self.qcow2 self-start.raw
to_raw qcow2 self.qcow2 self-result.raw
run "$STRESS" -C self.log self-start.raw self-result.raw
off=$(cmp self-start.raw self-result.raw | sed -n 's/.* byte \([0-9]*\),.*/\1/p')
[ -n "$off" ] || fail "the self-test writer wrote nothing"
dd if=self-start.raw of=self-result.raw bs=1 skip=$((off - 1)) seek=$((off - 1)) count=1 \
    conv=notrunc status=none
"$STRESS" -C self.log self-start.raw self-result.raw >verify.out 2>&1 &&
    fail "qbstress -C accepted an image that lost a durable write"
grep -q "durable operations leave" verify.out || { cat verify.out >&2; fail "qbstress -C failed oddly"; }

for fmt in $formats; do
    fnum=$(( $(echo " $all_formats " | sed "s/ $fmt .*//" | wc -w) + 1 ))
    [ "$fmt" = cow ] && [ $have_moo = no ] && { note "cow: uml_moo is not installed, not run"; continue; }
    case $fmt in
        qcow2|qed|vdi|vmdk) n=${QB_CRASH_RUNS:-100} chain=5 ;;
        *) n=${QB_CRASH_RUNS:-12} chain=2 ;;
    esac
    mapfile -t vars < <(variants "$fmt")
    runs_done=0
    durable_ops=0
    start_s=$SECONDS
    for r in $(seq 0 $((n - 1))); do
        v=${vars[$(( (r / chain) % ${#vars[@]} ))]}
        opts=${v% *}
        backing=${v#* }
        [ "$opts" = - ] && opts=
        [ "$backing" = - ] && backing=
        fresh=no
        [ $((r % chain)) = 0 ] && fresh=yes
        crash_run "$fmt" "$opts" "$backing" $((base_seed + fnum * 1000000 + r)) $fresh
        # Only these two repair images (VDI and VMDK checks cannot, as in QEMU).
        case $fmt in
            qcow2|qed)
                if [ $((r % chain)) = $((chain - 1)) ] || [ "$r" = $((n - 1)) ]; then
                    repair "$fmt"
                fi
                ;;
        esac
    done
    note "$fmt: $runs_done kills in $((SECONDS - start_s)) s, $durable_ops flushed operations checked"
    echo "$fmt: every killed writer left a consistent image with its flushed writes"
done
