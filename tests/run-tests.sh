#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-tests.sh: run libqblock's unit test binaries and interop scripts,
# print one line per test and a closing "N passed, N failed, N skipped"
# line, and exit 1 when anything failed.

set -u

usage() {
    cat <<'EOF'
Usage: tests/run-tests.sh [OPTION]... [SELECTOR]...

Runs, in this order:
  unit/*      every tests/unit/check_* binary (Check); each individual check
              counts; a binary that crashes or prints no Check summary
              counts as one failure
  interop/*   every tests/interop/NNN-name.sh script, run by bash from the
              top of the source tree in a fresh TEST_DIR; exit 0 passes,
              77 skips, anything else fails; when NNN-name.out exists the
              script's standard output must equal it

SELECTORs (default: $TESTS, else everything):
  unit | interop | all            a whole group
  anything else                   tests whose name contains it (a glob
                                  pattern also works), e.g. 001 or check_raw

Options:
  -t SECONDS   time limit per test [$TEST_TIMEOUT, else 300]
  -j N         run N tests at once [$TEST_JOBS, else 1]; reports are still
               printed in the order above, each when it and those before it
               have finished
  -k           keep every scratch folder (they are printed)
  -v           print the output of passing tests too
  -l           list the selected tests and exit
  -h           this text

Environment:
  SRCDIR, BUILDDIR   source tree and build folder [the tree holding this
                     script; the current folder when it holds libqblock.so]
  QBLOCK_IMG         the tool under test [$BUILDDIR/tools/qblock-img]
  QEMU_IMG, QEMU_IO, QEMU_NBD
                     the peer tools [found in PATH; empty when absent]
  TEST_WRAPPER       a command prefix for unit binaries and qblock-img, e.g.
                     "valgrind --error-exitcode=1"; under valgrind every log
                     of a script's qblock-img runs is checked for errors
  CC, CXX            passed on to the scripts (the Makefile sets them)
  TEST_CFLAGS, TEST_LDFLAGS
                     flags a script must add when it compiles a program
                     against the built library [the build's sanitizer flags,
                     from config-host.mak]
EOF
}

timeout_s=${TEST_TIMEOUT:-300}
jobs=${TEST_JOBS:-1}
keep=no
verbose=no
list_only=no
while getopts "t:j:kvlh" opt; do
    case $opt in
        t) timeout_s=$OPTARG ;;
        j) jobs=$OPTARG ;;
        k) keep=yes ;;
        v) verbose=yes ;;
        l) list_only=yes ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
case $jobs in
    ''|*[!0-9]*|0) echo "run-tests.sh: the number of jobs must be a positive number, not '$jobs'" >&2; exit 2 ;;
esac

case $timeout_s in
    ''|*[!0-9]*) echo "run-tests.sh: the time limit must be a number of seconds, not '$timeout_s'" >&2; exit 2 ;;
esac

if [ $# -gt 0 ]; then
    selectors=("$@")
else
    # TESTS is a blank-separated list; word splitting is what is wanted.
    # shellcheck disable=SC2206
    selectors=(${TESTS:-})
fi
[ ${#selectors[@]} -gt 0 ] || selectors=(all)

SRCDIR=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SRCDIR=$(cd "$SRCDIR" && pwd) || exit 2
if [ -z "${BUILDDIR:-}" ]; then
    if [ -e ./libqblock.so.1 ] || [ -e ./config-host.mak ]; then
        BUILDDIR=$PWD
    else
        BUILDDIR=$SRCDIR
    fi
fi
BUILDDIR=$(cd "$BUILDDIR" && pwd) || exit 2

find_tool() {
    command -v "$1" 2>/dev/null || true
}
QBLOCK_IMG_REAL=${QBLOCK_IMG:-$BUILDDIR/tools/qblock-img}
QEMU_IMG=${QEMU_IMG-$(find_tool qemu-img)}
QEMU_IO=${QEMU_IO-$(find_tool qemu-io)}
QEMU_NBD=${QEMU_NBD-$(find_tool qemu-nbd)}
TEST_WRAPPER=${TEST_WRAPPER:-}
LD_LIBRARY_PATH=$BUILDDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# A sanitized build (configure --enable-sanitizers) reports into per-test
# log files, which the runner checks: a report fails the test even when the
# process that hit it was expected to fail, or its status was ignored.
sanitized=no
if [ -f "$BUILDDIR/config-host.mak" ] && grep -q '^CONFIG_SANITIZERS = .' "$BUILDDIR/config-host.mak"; then
    sanitized=yes
fi
# TEST_CFLAGS and TEST_LDFLAGS: flags that every program a test compiles
# and links against this build's libqblock.so must add (the sanitizer
# flags in a sanitized build, since its library needs the sanitizer
# runtime loaded first; empty otherwise).
mak_value() {
    [ -f "$BUILDDIR/config-host.mak" ] || return 0
    sed -n "s/^$1 = //p" "$BUILDDIR/config-host.mak"
}
TEST_CFLAGS=${TEST_CFLAGS-$(mak_value SAN_CFLAGS)}
TEST_LDFLAGS=${TEST_LDFLAGS-$(mak_value SAN_LDFLAGS)}
export TEST_CFLAGS TEST_LDFLAGS
export SRCDIR BUILDDIR QEMU_IMG QEMU_IO QEMU_NBD TEST_WRAPPER LD_LIBRARY_PATH

# ------------------------------------------------------------------
# Selection

selected() {
    local name=$1 sel
    for sel in "${selectors[@]}"; do
        case $sel in
            all) return 0 ;;
            unit|interop)
                [[ $name == "$sel"/* ]] && return 0 ;;
            *)
                # Unquoted on purpose: a selector may be a glob pattern.
                # shellcheck disable=SC2053
                [[ $name == *$sel* ]] && return 0 ;;
        esac
    done
    return 1
}

tests=()
add_test() {
    selected "$1" && tests+=("$1")
}

shopt -s nullglob
for bin in "$BUILDDIR"/tests/unit/check_*; do
    case $bin in *.c|*.o|*.d|*.h) continue ;; esac
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
        continue
    fi
    add_test "unit/$(basename "$bin")"
done
for script in "$SRCDIR"/tests/interop/[0-9][0-9][0-9]-*.sh; do
    add_test "interop/$(basename "$script" .sh)"
done
shopt -u nullglob

if [ ${#tests[@]} -eq 0 ] && [ "${selectors[*]}" != all ]; then
    echo "run-tests.sh: warning: no test matches '${selectors[*]}'" >&2
fi

if [ "$list_only" = yes ]; then
    [ ${#tests[@]} -eq 0 ] || printf '%s\n' "${tests[@]}"
    exit 0
fi

# ------------------------------------------------------------------
# Scratch space, reporting

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qblock-tests.XXXXXX") || exit 2
cleanup() {
    if [ "$keep" = yes ]; then
        echo "Scratch folders kept under $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'echo "run-tests.sh: interrupted" >&2; kill $(jobs -p) 2>/dev/null; exit 130' INT TERM

n_pass=0
n_fail=0
n_skip=0

# show FILE LABEL: print a file indented, at most the last 200 lines.
show() {
    local file=$1 label=$2 lines
    [ -s "$file" ] || return 0
    lines=$(wc -l <"$file")
    echo "    --- $label${lines:+ ($lines lines)} ---"
    if [ "$lines" -gt 200 ]; then
        echo "    [... first $((lines - 200)) lines left out ...]"
    fi
    tail -n 200 "$file" | sed 's/^/    | /'
}

exit_text() {
    case $1 in
        124|137) echo "timed out after ${timeout_s}s" ;;
        *) if [ "$1" -gt 128 ]; then
               echo "killed by signal $(($1 - 128))"
           else
               echo "exit status $1"
           fi ;;
    esac
}

# run_limited CMD...: run with the time limit, killing stragglers.
run_limited() {
    timeout -k 10 "$timeout_s" "$@"
}

# san_setup DIR: in a sanitized build, send sanitizer reports to files in
# DIR (call it in the subshell that runs the test).
san_setup() {
    [ "$sanitized" = yes ] || return 0
    mkdir -p "$1"
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$1/asan"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$1/ubsan"
    export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$1/tsan"
}

# san_reports DIR: list the sanitizer reports written to DIR, if any.
san_reports() {
    [ -d "$1" ] || return 0
    find "$1" -type f -size +0 | sort
}

# show_san_reports DIR: print each report.
show_san_reports() {
    local log
    while IFS= read -r log; do
        show "$log" "sanitizer report $(basename "$log")"
    done < <(san_reports "$1")
}

plural() {
    if [ "$1" -eq 1 ]; then echo "$1 $2"; else echo "$1 ${2}s"; fi
}

# took START: the seconds since START (an $EPOCHREALTIME), as "12.3 s".
took() {
    local now=$EPOCHREALTIME
    awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f s", b - a }'
}

# ------------------------------------------------------------------
# unit/*: Check binaries

run_unit() {
    local name=$1 bin=$BUILDDIR/tests/$1 out tdir rc checks=0 fails=0 errs=0 nsum=0
    local line c f e start=$EPOCHREALTIME
    tdir=$(mktemp -d "$WORK/${name#unit/}.XXXXXX")
    out=$tdir.log
    # shellcheck disable=SC2086
    (cd "$BUILDDIR" && san_setup "$tdir.san" && TEST_DIR=$tdir run_limited $TEST_WRAPPER "$bin") \
        </dev/null >"$out" 2>&1
    rc=$?
    local san time
    time=$(took "$start")
    san=$(san_reports "$tdir.san")
    # Check prints "NN%: Checks: N, Failures: F, Errors: E" per suite runner.
    while IFS= read -r line; do
        if [[ $line =~ [0-9]+%:\ Checks:\ ([0-9]+),\ Failures:\ ([0-9]+),\ Errors:\ ([0-9]+) ]]; then
            c=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]} e=${BASH_REMATCH[3]}
            checks=$((checks + c)); fails=$((fails + f)); errs=$((errs + e))
            nsum=$((nsum + 1))
        fi
    done <"$out"

    if [ $nsum -eq 0 ]; then
        echo "FAIL $name (no Check summary; $(exit_text $rc); $time)"
        n_fail=$((n_fail + 1))
        show "$out" output
        show_san_reports "$tdir.san"
        return
    fi
    local bad=$((fails + errs))
    n_pass=$((n_pass + checks - bad))
    n_fail=$((n_fail + bad))
    if [ $bad -eq 0 ] && [ $rc -eq 0 ] && [ -z "$san" ]; then
        echo "PASS $name ($(plural $checks check), $time)"
        [ "$verbose" = yes ] && show "$out" output
    elif [ $bad -eq 0 ]; then
        # Every check passed but the process failed afterwards (a leak, a
        # sanitizer or valgrind report, a crash at exit): one more failure.
        n_fail=$((n_fail + 1))
        if [ -n "$san" ]; then
            echo "FAIL $name ($(plural $checks check) passed, but a sanitizer reported errors; $time)"
        else
            echo "FAIL $name ($(plural $checks check) passed, but $(exit_text $rc); $time)"
        fi
        show "$out" output
        show_san_reports "$tdir.san"
    else
        echo "FAIL $name ($(plural $fails failure), $(plural $errs error) in $(plural $checks check); $(exit_text $rc); $time)"
        show "$out" output
        show_san_reports "$tdir.san"
    fi
}

# ------------------------------------------------------------------
# interop/*: numbered shell scripts

# With a wrapper, QBLOCK_IMG points at a small script that runs the real
# tool under it, so that scripts may quote "$QBLOCK_IMG" as usual. Under
# valgrind each run logs to its own file; the logs are checked after the
# script, since a script may expect (and hide) a failing exit status.
qblock_img_for_tests=$QBLOCK_IMG_REAL
vg_wrapped=no
if [ -n "$TEST_WRAPPER" ]; then
    mkdir -p "$WORK/wrap"
    read -r -a wrapper_words <<<"$TEST_WRAPPER"
    if [ "$(basename "${wrapper_words[0]}")" = valgrind ]; then
        vg_wrapped=yes
        # shellcheck disable=SC2016
        printf '#!/bin/sh\nexec %s --log-file="$QBLOCK_VG_LOGDIR/vg.%%p.log" %q "$@"\n' \
            "$TEST_WRAPPER" "$QBLOCK_IMG_REAL" >"$WORK/wrap/qblock-img"
    else
        printf '#!/bin/sh\nexec %s %q "$@"\n' "$TEST_WRAPPER" "$QBLOCK_IMG_REAL" >"$WORK/wrap/qblock-img"
    fi
    chmod +x "$WORK/wrap/qblock-img"
    qblock_img_for_tests=$WORK/wrap/qblock-img
fi

run_interop() {
    local name=$1 base=${1#interop/} script golden tdir rc out err reason start=$EPOCHREALTIME time
    script=$SRCDIR/tests/interop/$base.sh
    golden=$SRCDIR/tests/interop/$base.out
    tdir=$(mktemp -d "$WORK/$base.XXXXXX")
    out=$tdir.stdout
    err=$tdir.stderr
    mkdir -p "$tdir.vg"
    (cd "$SRCDIR" && san_setup "$tdir.san" && TEST_DIR=$tdir QBLOCK_IMG=$qblock_img_for_tests \
        QBLOCK_VG_LOGDIR=$tdir.vg run_limited bash "$script") </dev/null >"$out" 2>"$err"
    rc=$?
    time=$(took "$start")

    if [ $rc -eq 77 ]; then
        reason=$(grep -h -m1 'SKIP' "$out" "$err" 2>/dev/null | head -n1)
        echo "SKIP $name${reason:+: ${reason#*SKIP: }}"
        n_skip=$((n_skip + 1))
        return
    fi

    local why=
    if [ $rc -ne 0 ]; then
        why=$(exit_text $rc)
    elif [ -f "$golden" ] && ! diff -u "$golden" "$out" >"$tdir.diff" 2>&1; then
        why="output differs from $base.out"
    fi
    if [ -z "$why" ] && [ "$vg_wrapped" = yes ] && \
            grep -l 'ERROR SUMMARY: [1-9]' "$tdir.vg"/vg.*.log >"$tdir.vgbad" 2>/dev/null; then
        why="valgrind reported errors"
    fi
    if [ -z "$why" ] && [ -n "$(san_reports "$tdir.san")" ]; then
        why="a sanitizer reported errors"
    fi

    if [ -z "$why" ]; then
        echo "PASS $name ($time)"
        n_pass=$((n_pass + 1))
        if [ "$verbose" = yes ]; then
            show "$out" stdout
            show "$err" stderr
        fi
        return
    fi
    echo "FAIL $name ($why; $time)"
    n_fail=$((n_fail + 1))
    if [ -s "$tdir.diff" ]; then
        show "$tdir.diff" "diff -u $base.out actual"
    else
        show "$out" stdout
    fi
    show "$err" stderr
    show_san_reports "$tdir.san"
    if [ -s "$tdir.vgbad" ]; then
        local log
        while IFS= read -r log; do
            show "$log" "valgrind $(basename "$log")"
        done <"$tdir.vgbad"
    fi
}

# ------------------------------------------------------------------

# run_one INDEX: run test INDEX with its own counters (a subshell); its
# report goes to $WORK/report.INDEX and its counts, once it is over, to
# $WORK/counts.INDEX.
run_one() {
    local t=${tests[$1]}
    n_pass=0 n_fail=0 n_skip=0
    case $t in
        unit/*) run_unit "$t" ;;
        interop/*) run_interop "$t" ;;
    esac
    echo "$n_pass $n_fail $n_skip" >"$WORK/counts.$1.tmp" && mv "$WORK/counts.$1.tmp" "$WORK/counts.$1"
}

# flush_reports [final]: print, in order, every report whose test and all
# tests before it are over; with "final", count a test that left no counts
# (its subshell died) as failed.
next_report=0
flush_reports() {
    local p f s
    while [ $next_report -lt ${#tests[@]} ]; do
        if [ ! -f "$WORK/counts.$next_report" ]; then
            [ "${1:-}" = final ] || return 0
            cat "$WORK/report.$next_report" 2>/dev/null
            echo "FAIL ${tests[$next_report]} (the test runner lost track of it)"
            n_fail=$((n_fail + 1))
        else
            cat "$WORK/report.$next_report"
            read -r p f s <"$WORK/counts.$next_report"
            n_pass=$((n_pass + p)); n_fail=$((n_fail + f)); n_skip=$((n_skip + s))
        fi
        next_report=$((next_report + 1))
    done
}

running=0
for i in ${tests[@]+"${!tests[@]}"}; do
    while [ $running -ge "$jobs" ]; do
        wait -n
        running=$((running - 1))
        flush_reports
    done
    run_one "$i" >"$WORK/report.$i" 2>&1 &
    running=$((running + 1))
done
wait
flush_reports final

echo "$n_pass passed, $n_fail failed, $n_skip skipped"
[ $n_fail -eq 0 ]
