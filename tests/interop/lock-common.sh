# SPDX-License-Identifier: LGPL-2.1-or-later
# lock-common.sh: helpers of the image-locking interop scripts (05x-lock-*.sh),
# sourced after common.sh: background holders that are always killed, the
# lock bytes of a file as /proc/locks shows them, and probes whose outcome
# ("ok", "locked" or "failed") is compared between QEMU's tools and ours.

# The holders started so far; the EXIT trap kills whatever is still running.
LOCK_HOLDER_PIDS=()

lock_cleanup() {
    local pid
    for pid in "${LOCK_HOLDER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${LOCK_HOLDER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    LOCK_HOLDER_PIDS=()
}
trap lock_cleanup EXIT

require_proc_locks() {
    [ -r /proc/locks ] || skip "/proc/locks is not readable: cannot see which bytes are locked"
}

# lock_bytes FILE: the bytes of FILE anyone holds a lock on, ascending, one
# line ("100 101 201"), empty when none. Matched by inode number only: the
# device column of /proc/locks does not always equal st_dev (btrfs).
lock_bytes() {
    local ino
    ino=$(stat -c %i "$1") || fail "stat $1"
    awk -v ino="$ino" '
        $2 != "->" {
            n = split($6, f, ":")
            if (f[n] == ino && $7 ~ /^[0-9]+$/ && $8 ~ /^[0-9]+$/)
                for (b = $7; b <= $8; b++) print b
        }' /proc/locks | sort -n | uniq | tr '\n' ' ' | sed 's/ $//'
}

# start_holder NAME FILE BYTES CMD...: run CMD in the background and wait (up
# to 20 s) until exactly BYTES are locked on FILE; its pid goes to
# $HOLDER_PID. Fails if the holder dies or locks other bytes.
start_holder() {
    local name=$1 file=$2 want=$3 got="" i
    shift 3
    "$@" >"$TEST_DIR/holder-$name.out" 2>"$TEST_DIR/holder-$name.err" </dev/null &
    HOLDER_PID=$!
    LOCK_HOLDER_PIDS+=("$HOLDER_PID")
    for ((i = 0; i < 200; i++)); do
        got=$(lock_bytes "$file")
        if [ "$got" = "$want" ]; then
            note "holder $name (pid $HOLDER_PID) locks bytes: $got"
            return 0
        fi
        if ! kill -0 "$HOLDER_PID" 2>/dev/null; then
            sed 's/^/    (holder) /' "$TEST_DIR/holder-$name.err" >&2
            fail "holder $name exited before it held $file: $*"
        fi
        sleep 0.1
    done
    sed 's/^/    (holder) /' "$TEST_DIR/holder-$name.err" >&2
    fail "holder $name: locked bytes of $file are '$got', want '$want': $*"
}

# stop_holder FILE: end the last holder and check that its locks went with it.
stop_holder() {
    local file=$1 i got
    kill "$HOLDER_PID" 2>/dev/null
    wait "$HOLDER_PID" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        got=$(lock_bytes "$file")
        [ -z "$got" ] && return 0
        sleep 0.1
    done
    fail "locks left on $file after its holder ended: $got"
}

# outcome CMD...: run a probe and print "ok", "locked" (it failed with a
# lock-conflict message naming a permission, QEMU's wording and ours) or
# "failed" (any other failure). A crash fails the script.
outcome() {
    local rc=0
    "$@" >"$TEST_DIR/probe.out" 2>"$TEST_DIR/probe.err" </dev/null || rc=$?
    if [ $rc -gt 128 ]; then
        sed 's/^/    (stderr) /' "$TEST_DIR/probe.err" >&2
        fail "crashed (signal $((rc - 128))): $*"
    fi
    if [ $rc -eq 0 ]; then
        echo ok
    elif grep -Eq 'Failed to get (shared )?"(consistent read|write|write unchanged|resize)" lock' \
            "$TEST_DIR/probe.err"; then
        echo locked
    else
        echo failed
    fi
}

# expect_outcome WHAT WANT CMD...: the probe must end as WANT.
expect_outcome() {
    local what=$1 want=$2 got
    shift 2
    got=$(outcome "$@")
    if [ "$got" != "$want" ]; then
        sed 's/^/    (stderr) /' "$TEST_DIR/probe.err" >&2
        fail "$what: '$got', want '$want': $*"
    fi
    note "  $what: $got"
}

# build_lockholder: compile tests/interop/lockholder.c against the built
# library into $TEST_DIR/lockholder (public API only).
build_lockholder() {
    local cc=${CC:-cc} builddir=${BUILDDIR:-$SRCDIR}
    command -v "${cc%% *}" >/dev/null 2>&1 || skip "no C compiler ($cc) to build the lock holder"
    [ -e "$builddir/libqblock.so" ] || fail "$builddir/libqblock.so was not built"
    $cc -std=gnu11 -Wall -Wextra -I"$SRCDIR/include" -o "$TEST_DIR/lockholder" \
        "$SRCDIR/tests/interop/lockholder.c" -L"$builddir" -lqblock ||
        fail "could not build tests/interop/lockholder.c"
    LOCKHOLDER=$TEST_DIR/lockholder
}
