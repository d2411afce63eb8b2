#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# campaign.sh: a long fuzzing run. Each target runs until it has executed
# RUNS inputs (libFuzzer's -runs), JOBS targets at a time, each growing its
# corpus in FUZZ_DIR/corpus/<target> from the seeds and regression inputs.
# At the end it prints one line per target: executions, seconds, executions
# per second, and the result. A crash, leak or timeout stops that target and
# leaves its input as FUZZ_DIR/crash-<target>-*; the script then exits 1.
#
#   make fuzz-campaign [FUZZ_RUNS=1000000] [FUZZ_JOBS=2] [FUZZ_MAX_LEN=131072]
#                      [FUZZ_TARGETS="qcow2 qed"]
#
# MAX_LEN caps the length of mutated inputs. The seeds' headers and tables
# lie within the first 128 KiB; past that an input mostly adds data
# clusters, which cost time on every run (copies, reads, checks) and add
# little coverage. 0 lets libFuzzer choose (the largest seed).

set -u
FUZZ_DIR=${1:?usage: campaign.sh FUZZ_DIR SRCDIR RUNS JOBS MAX_LEN TARGET...}
SRCDIR=$2
RUNS=$3
JOBS=$4
MAX_LEN=$5
shift 5

log_dir=$FUZZ_DIR/campaign
mkdir -p "$log_dir"

run_one() {
    t=$1
    mkdir -p "$FUZZ_DIR/corpus/$t"
    regs=
    test -d "$SRCDIR/tests/fuzz/regressions/$t" && regs=$SRCDIR/tests/fuzz/regressions/$t
    start=$(date +%s)
    # shellcheck disable=SC2086
    "./$FUZZ_DIR/fuzz-$t" -runs="$RUNS" -max_len="$MAX_LEN" -rss_limit_mb=2048 -timeout=60 \
        -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/crash-$t-" \
        "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/seeds/$t" $regs >"$log_dir/$t.log" 2>&1
    rc=$?
    end=$(date +%s)
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log_dir/$t.log" | tail -1)
    secs=$((end - start))
    [ "$secs" -gt 0 ] || secs=1
    if [ "$rc" -eq 0 ]; then
        result=clean
    else
        result="FAILED (exit $rc; see $log_dir/$t.log)"
    fi
    printf '%-10s %10s %7s %8s  %s\n' "$t" "${n:-?}" "$secs" "$(( ${n:-0} / secs ))" "$result" \
        >"$log_dir/$t.result"
    [ "$rc" -eq 0 ]
}

# JOBS lanes side by side; each takes the next target nobody has claimed
# (mkdir is atomic), so a long target does not hold up a lane's others.
rm -rf "$log_dir"/claim-* "$log_dir"/*.result
lane=0
pids=
while [ "$lane" -lt "$JOBS" ]; do
    (
        status=0
        for t in "$@"; do
            if mkdir "$log_dir/claim-$t" 2>/dev/null; then
                run_one "$t" || status=1
            fi
        done
        exit $status
    ) &
    pids="$pids $!"
    lane=$((lane + 1))
done
status=0
for p in $pids; do
    wait "$p" || status=1
done

printf '%-10s %10s %7s %8s  %s\n' target executions seconds 'exec/s' result
for t in "$@"; do
    cat "$log_dir/$t.result" 2>/dev/null || printf '%-10s (no result)\n' "$t"
done
exit $status
