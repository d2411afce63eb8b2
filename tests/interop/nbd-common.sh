# SPDX-License-Identifier: LGPL-2.1-or-later
# nbd-common.sh: start and stop real NBD servers (qemu-nbd, nbdkit) for the
# interop scripts 600-619 (sourced after common.sh, not run).
#
# Servers listen on Unix sockets in a short private folder (socket paths are
# limited to 107 bytes, and TEST_DIR can be long) or on a free loopback TCP
# port; every server a script starts is killed when the script exits. A
# server that does not start fails the script: it never passes untested.

require_tool qemu-nbd qemu-utils
require_tool nbdkit nbdkit
require_tool nbdinfo libnbd-bin
build_helper QBNBD qbnbd

SOCK_DIR=$(mktemp -d /tmp/qbnbd.XXXXXX) || fail "mktemp"
NBD_PIDS=()

# Servers started inside a $(...) subshell are not in NBD_PIDS: their pid
# files are, so every server whose command line names SOCK_DIR is stopped.
nbd_cleanup() {
    local p f
    for f in "$SOCK_DIR"/*.pid; do
        [ -s "$f" ] && NBD_PIDS+=("$(cat "$f")")
    done
    for p in "${NBD_PIDS[@]}"; do
        grep -qF "$SOCK_DIR" "/proc/$p/cmdline" 2>/dev/null || continue
        kill -CONT "$p" 2>/dev/null
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$SOCK_DIR"
}
trap nbd_cleanup EXIT

# server_pid NAME: the pid of server NAME.
server_pid() {
    cat "$SOCK_DIR/$1.pid"
}

# sock NAME: the Unix socket of server NAME.
sock() {
    echo "$SOCK_DIR/$1.sock"
}

# wait_pidfile NAME: the server wrote its pid file (both servers do so once they listen).
wait_pidfile() {
    local i
    for i in $(seq 50); do
        if [ -s "$SOCK_DIR/$1.pid" ]; then
            NBD_PIDS+=("$(server_pid "$1")")
            return 0
        fi
        sleep 0.1
    done
    fail "server $1 did not start"
}

# start_qemu_nbd NAME QEMU-NBD-ARGS...: qemu-nbd on socket $(sock NAME),
# serving many clients one after another until stopped.
start_qemu_nbd() {
    local name=$1
    shift
    rm -f "$SOCK_DIR/$name.pid" "$SOCK_DIR/$name.sock"
    qemu-nbd --fork --persistent --pid-file="$SOCK_DIR/$name.pid" -k "$(sock "$name")" "$@" \
        2>"$TEST_DIR/$name.err" || { cat "$TEST_DIR/$name.err" >&2; fail "qemu-nbd $name did not start"; }
    wait_pidfile "$name"
}

# start_nbdkit NAME NBDKIT-ARGS...: nbdkit on socket $(sock NAME).
start_nbdkit() {
    local name=$1
    shift
    rm -f "$SOCK_DIR/$name.pid" "$SOCK_DIR/$name.sock"
    nbdkit -U "$(sock "$name")" -P "$SOCK_DIR/$name.pid" "$@" 2>"$TEST_DIR/$name.err" ||
        { cat "$TEST_DIR/$name.err" >&2; fail "nbdkit $name did not start"; }
    wait_pidfile "$name"
}

# free_port: a loopback TCP port nobody listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_qemu_nbd_tcp NAME QEMU-NBD-ARGS...: qemu-nbd on 127.0.0.1, port in
# $NBD_PORT; another free port is tried when one was taken in between.
start_qemu_nbd_tcp() {
    local name=$1 try
    shift
    for try in 1 2 3 4 5; do
        NBD_PORT=$(free_port) || fail "no free port"
        rm -f "$SOCK_DIR/$name.pid"
        if qemu-nbd --fork --persistent --pid-file="$SOCK_DIR/$name.pid" -b 127.0.0.1 \
            -p "$NBD_PORT" "$@" 2>"$TEST_DIR/$name.err"; then
            wait_pidfile "$name"
            return 0
        fi
    done
    cat "$TEST_DIR/$name.err" >&2
    fail "qemu-nbd $name did not start on a TCP port"
}

# stop_server NAME: stop server NAME and wait until it is gone (its writes flushed).
stop_server() {
    local pid i
    pid=$(server_pid "$1")
    kill "$pid" 2>/dev/null
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null
}

# extents_of KIND: map JSON on stdin, either qemu-img's (KIND map) or
# `nbdinfo --map --json`'s (KIND nbdinfo), as "offset length type" lines
# with nbdinfo's types (0 data, 1 hole, 2 zero, 3 hole+zero), neighbours
# of one type merged.
extents_of() {
    python3 -c '
import json, sys
out = []
for e in json.load(sys.stdin):
    if sys.argv[1] == "map":
        off, ln, t = e["start"], e["length"], (0 if e["data"] else 1) | (2 if e["zero"] else 0)
    else:
        off, ln, t = e["offset"], e["length"], e["type"]
    if out and out[-1][2] == t and out[-1][0] + out[-1][1] == off:
        out[-1][1] += ln
    else:
        out.append([off, ln, t])
for o in out:
    print(*o)
' "$1"
}

# same_map_as_nbdinfo NAME URI: `qblock-img map -f raw` over URI reports the
# extents nbdinfo --map reports for it.
same_map_as_nbdinfo() {
    run qbi map -f raw --output=json "$2"
    extents_of map <run.out >ours.ext
    nbdinfo --map --json "$2" >nbdinfo.json 2>nbdinfo.err || { cat nbdinfo.err >&2; fail "$1: nbdinfo --map"; }
    extents_of nbdinfo <nbdinfo.json >theirs.ext
    same_output "$1: map vs nbdinfo --map" theirs.ext ours.ext
    [ "$(wc -l <ours.ext)" -gt 1 ] || fail "$1: the map has a single extent; the test proves nothing"
}
