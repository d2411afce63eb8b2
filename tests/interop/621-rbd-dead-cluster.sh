#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 621-rbd-dead-cluster.sh: a Ceph cluster that dies under a stream of
# requests makes libqblock fail with QB_ERR_TIMEOUT within the configured
# timeouts, never hang: the OSD (and before it the monitor) is SIGKILLed
# while a QB_PROT_RBD client writes and reads, and then opening the image
# fails within client_mount_timeout. The timeouts come from a Ceph
# configuration file (which beats libqblock's defaults) and from a
# location's :key=value (which beats the file).

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/rbd-common.sh"
build_helper QBRBD qbrbd
if ! grep -q "^#define CONFIG_RBD 1" "$BUILDDIR/config-host.h"; then
    [ "${CI:-}" = true ] && fail "built without librbd (scripts/install-deps installs librbd-dev)"
    skip "built without librbd"
fi
start_ceph

# ended_failing WHAT RC FILE...: WHAT, run under `timeout 120`, failed (status
# 1) by itself rather than being stopped by the bound (a hang) or crashing.
ended_failing() {
    local what=$1 rc=$2
    shift 2
    [ "$rc" -eq 124 ] && fail "$what hung (still waiting after 120 s)"
    [ "$rc" -eq 1 ] || fail "$what exited $rc: $(cat "$@")"
}

# since START: the seconds since START (date +%s.%N), for the log.
since() {
    python3 -c "import time; print('%.1f' % (time.time() - $1))"
}
mon_pid=${CEPH_PIDS[0]}
osd_pid=${CEPH_PIDS[1]}

# Short timeouts in a configuration file of our own: 3 s for requests, and
# librados' check for expired requests every second instead of every 5 s.
sed 's/^client mount timeout = .*/client mount timeout = 5\nrados osd op timeout = 3\nrados mon op timeout = 3\nobjecter tick interval = 1/' \
    "$CEPH_CONF" >short.conf
grep -q "^rados osd op timeout = 3$" short.conf || fail "short.conf: $(cat short.conf)"

run qbi create -f rbd rbd:rbd/dead 4M

# A stream of 64 KiB writes and read-backs, bounded by `timeout 120` so that
# a hang fails the test instead of stopping it.
timeout 120 "$QBRBD" -c "$TEST_DIR/short.conf" rbd dead stream 100000000 >stream.out 2>stream.err &
stream_pid=$!
for _ in $(seq 300); do
    grep -q "^streaming$" stream.out && break
    kill -0 "$stream_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "^streaming$" stream.out || fail "the stream did not start: $(cat stream.out stream.err)"

# The monitor dies first: requests go to the OSD, which still serves them.
kill -9 "$mon_pid"
sleep 2
kill -0 "$stream_pid" 2>/dev/null || fail "the stream stopped when the monitor died: $(cat stream.out stream.err)"
echo "monitor killed: requests to the live OSD go on"

# Then the OSD: the request in flight must time out (3 s), not hang.
kill -9 "$osd_pid"
killed=$(date +%s.%N)
rc=0
wait "$stream_pid" || rc=$?
ended_failing "the stream after the OSD was killed" $rc stream.out stream.err
grep -q "^failed: QB_ERR_TIMEOUT: qb_[a-z]*: 'rbd:rbd/dead.*': the Ceph cluster did not answer in 3 s" stream.out \
    || fail "not a timeout naming the image and 3 s: $(cat stream.out stream.err)"
echo "OSD killed mid-stream: QB_ERR_TIMEOUT naming the image and the file's 3 s"
note "stream ($(since "$killed") s after the kill): $(tr '\n' ' ' <stream.out)"

# With the whole cluster dead, opening the image fails within the mount
# timeout that the location gives (2 s, over the file's 5 s).
rc=0
started=$(date +%s.%N)
timeout 120 "$QBLOCK_IMG" info -f raw "rbd:rbd/dead:conf=$TEST_DIR/short.conf:client_mount_timeout=2" \
    >info.out 2>info.err || rc=$?
ended_failing "qblock-img info on a dead cluster" $rc info.out info.err
grep -q "cannot connect to the Ceph cluster: it did not answer in 2 s (client_mount_timeout)" info.err \
    || fail "qblock-img info on a dead cluster: $(cat info.err)"
echo "qblock-img info with the cluster dead: fails within the location's 2 s"
note "info ($(since "$started") s): $(cat info.err)"
