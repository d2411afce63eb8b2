# SPDX-License-Identifier: LGPL-2.1-or-later
# common.sh: shell helpers shared by the interop scripts (sourced, not run).
#
# The runner (tests/run-tests.sh) sets QBLOCK_IMG, QEMU_IMG, QEMU_IO (empty
# when absent), TEST_DIR (a fresh scratch folder), SRCDIR and LD_LIBRARY_PATH.
# A script sources this file, calls the require_* helpers it needs, and uses
# the helpers below; any failure ends the script with a message on stderr.
#
# Conventions: diagnostics go to stderr, so that a script's stdout can be a
# golden output (NNN-name.out); every command run here is checked for a crash
# (an exit status above 128 is a signal) as well as for its expected status.

set -u

: "${TEST_DIR:?TEST_DIR must be set by the test runner}"
: "${QBLOCK_IMG:?QBLOCK_IMG must be set by the test runner}"
QEMU_IMG=${QEMU_IMG:-}
QEMU_IO=${QEMU_IO:-}

# Every file the scripts make lives in the scratch folder.
cd "$TEST_DIR" || exit 1

# skip REASON: end the script as skipped (exit 77), loudly.
skip() {
    echo "SKIP: $*"
    echo "SKIP: $*" >&2
    exit 77
}

# fail MESSAGE: end the script as failed.
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# note MESSAGE: a diagnostic on stderr (not part of the golden output).
note() {
    echo "$*" >&2
}

# require_tool NAME [PACKAGE]: a peer tool a script needs as its oracle.
# Missing, it skips the script on a developer's machine, but fails it
# under CI (CI=true), where scripts/install-deps must have installed it.
require_tool() {
    if ! command -v "$1" >/dev/null 2>&1; then
        if [ "${CI:-}" = true ]; then
            fail "$1 is not installed${2:+ (Debian package $2)}; scripts/install-deps should have installed it"
        fi
        skip "$1 is not installed${2:+ (Debian package $2)}"
    fi
}

require_qemu_img() {
    if [ -z "$QEMU_IMG" ] || ! [ -x "$QEMU_IMG" ]; then
        skip "qemu-img is not installed (QEMU_IMG is empty)"
    fi
}

require_qemu_io() {
    if [ -z "$QEMU_IO" ] || ! [ -x "$QEMU_IO" ]; then
        skip "qemu-io is not installed (QEMU_IO is empty)"
    fi
}

# check_status WANT GOT CMD...: fail unless the exit status is WANT; a
# status above 128 is always reported as a crash.
check_status() {
    local want=$1 got=$2
    shift 2
    if [ "$got" -gt 128 ]; then
        fail "crashed (signal $((got - 128))): $*"
    fi
    if [ "$got" -ne "$want" ]; then
        fail "exit status $got instead of $want: $*"
    fi
}

# run CMD...: run a command that must succeed; its stdout and stderr are kept
# in $TEST_DIR/run.out and run.err (and stderr is echoed to ours).
run() {
    local rc=0
    "$@" >"$TEST_DIR/run.out" 2>"$TEST_DIR/run.err" || rc=$?
    if [ -s "$TEST_DIR/run.err" ]; then
        sed 's/^/    (stderr) /' "$TEST_DIR/run.err" >&2
    fi
    if [ $rc -ne 0 ]; then
        sed 's/^/    (stdout) /' "$TEST_DIR/run.out" >&2
    fi
    check_status 0 $rc "$@"
}

# run_status WANT CMD...: like run, but the command must exit with WANT.
run_status() {
    local want=$1 rc=0
    shift
    "$@" >"$TEST_DIR/run.out" 2>"$TEST_DIR/run.err" || rc=$?
    check_status "$want" $rc "$@"
}

# run_fails CMD...: the command must fail cleanly: a status from 1 to 127
# and a message on stderr that starts with the tool's name.
run_fails() {
    local rc=0 prog
    "$@" >"$TEST_DIR/run.out" 2>"$TEST_DIR/run.err" || rc=$?
    if [ $rc -gt 128 ]; then
        fail "crashed (signal $((rc - 128))): $*"
    fi
    if [ $rc -eq 0 ]; then
        fail "succeeded but should have failed: $*"
    fi
    prog=$(basename "$QBLOCK_IMG")
    if ! grep -q "^$prog: \|^qblock-img: " "$TEST_DIR/run.err"; then
        sed 's/^/    (stderr) /' "$TEST_DIR/run.err" >&2
        fail "no '$prog: ...' error message on stderr: $*"
    fi
}

# qbi ARGS...: the tool under test.
qbi() {
    "$QBLOCK_IMG" "$@"
}

# qio FILE CMD...: qemu-io on a raw FILE with each CMD given with -c.
qio() {
    local file=$1 c args=()
    shift
    for c in "$@"; do
        args+=(-c "$c")
    done
    "$QEMU_IO" -f raw "${args[@]}" "$file"
}

# qio_ok FILE CMD...: qemu-io must succeed, and must not report a failed
# request or pattern check (qemu-io's exit status alone does not tell).
qio_ok() {
    local out rc=0
    out=$(qio "$@" 2>&1) || rc=$?
    if [ $rc -ne 0 ] || printf '%s\n' "$out" | grep -q "failed\|error"; then
        printf '%s\n' "$out" | sed 's/^/    (qemu-io) /' >&2
        fail "qemu-io reported a problem: $*"
    fi
}

# filter_timing: drop the timing line of qemu-io style summaries, whose
# figures change from run to run.
filter_timing() {
    sed -e '/ ops; .* sec (/d'
}

# filter_json_actual_size: drop "actual-size" from qemu-img info JSON, since
# it depends on the host file system.
filter_json_actual_size() {
    sed -e '/"actual-size":/d'
}

# ref_write FILE OFFSET LENGTH BYTE: write LENGTH copies of BYTE (0..255) at
# OFFSET of FILE with dd alone, as an independent reference.
ref_write() {
    local file=$1 off=$2 len=$3 byte=$4 oct
    oct=$(printf '%03o' "$byte")
    head -c "$len" /dev/zero | tr '\0' "\\$oct" |
        dd of="$file" bs=65536 seek="$off" oflag=seek_bytes conv=notrunc status=none iflag=fullblock ||
        fail "dd could not write the reference $file"
}

# sparse_file FILE SIZE: a fresh all-hole file.
sparse_file() {
    rm -f "$1"
    truncate -s "$2" "$1" || fail "truncate $1"
}

# same_output NAME A B: fail (showing the diff) unless files A and B are equal.
same_output() {
    if ! diff -u "$2" "$3" >"$TEST_DIR/diff.txt"; then
        sed 's/^/    /' "$TEST_DIR/diff.txt" >&2
        fail "$1: outputs differ ($2 vs $3)"
    fi
}

# same_content A B: the files hold the same bytes.
same_content() {
    cmp "$1" "$2" >&2 || fail "$1 and $2 differ"
}

# disk_usage FILE: bytes allocated on the host.
disk_usage() {
    echo $(( $(stat -c '%b * %B' "$1") ))
}

# build_helper VAR NAME: set VAR to the program tests/helpers/NAME.c built
# against this build's library. `make build-tests` builds it into
# $BUILDDIR/tests/helpers; after a plain `make` (or an edit of the source
# since), it is compiled here into the scratch folder. No compiler: skip.
build_helper() {
    local var=$1 name=$2 cc=${CC:-cc} src=$SRCDIR/tests/helpers/$2.c
    local bin=$BUILDDIR/tests/helpers/$2
    if ! [ -x "$bin" ] || ! [ "$bin" -nt "$src" ]; then
        command -v "${cc%% *}" >/dev/null 2>&1 || skip "no C compiler ($cc) to build $name"
        bin=$TEST_DIR/$name
        # shellcheck disable=SC2086
        $cc -std=gnu11 -O2 -Wall -Wextra ${TEST_CFLAGS:-} -I"$SRCDIR/include" -o "$bin" "$src" \
            -L"$BUILDDIR" -lqblock ${TEST_LDFLAGS:-} || fail "could not build tests/helpers/$name.c"
    fi
    printf -v "$var" '%s' "$bin"
}
