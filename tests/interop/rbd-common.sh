# SPDX-License-Identifier: LGPL-2.1-or-later
# rbd-common.sh: start and stop a real single-node Ceph cluster (one monitor,
# one OSD on a memstore) for the interop scripts 620-629 (sourced after
# common.sh, not run).
#
# Everything the cluster keeps (configuration, keyrings, monitor store, run
# folder, logs) lives in a private folder under TEST_DIR; the monitor listens
# on a free loopback port and authentication is off, so the cluster touches
# nothing outside that folder. Both daemons are killed and the folder is
# removed when the script exits. A cluster that does not come up fails the
# script: it never passes untested.

require_tool ceph-mon ceph-mon
require_tool ceph-osd ceph-osd
require_tool ceph ceph-common
require_tool rbd ceph-common
require_tool monmaptool ceph-base

CEPH_DIR=$TEST_DIR/ceph
CEPH_PIDS=()

ceph_cleanup() {
    local p
    for p in "${CEPH_PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$CEPH_DIR"
}
trap ceph_cleanup EXIT

# free_port: a loopback TCP port nothing listens on now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ceph_wait_pid NAME: the daemon NAME wrote its pid file.
ceph_wait_pid() {
    local _
    for _ in $(seq 100); do
        if [ -s "$CEPH_DIR/run/$1.pid" ]; then
            CEPH_PIDS+=("$(cat "$CEPH_DIR/run/$1.pid")")
            return 0
        fi
        sleep 0.1
    done
    fail "ceph daemon $1 did not start (log: $(tail -5 "$CEPH_DIR"/log/*"$1"*.log 2>/dev/null))"
}

# ceph_cli CMD...: a Ceph command-line client (ceph, rbd) against the test
# cluster, bounded by `timeout 60` so that a broken cluster fails the script
# instead of hanging it. A client that sends its first request to the
# monitor before it has received the monitor map sends a zero fsid, and the
# monitor refuses the request (its log says "on fsid 00000000-..."): about
# one call in ten on a loaded machine. Such a refusal, and only that, is
# retried (the monitor did nothing); any other failure is the result.
ceph_cli() {
    local zero="fsid 00000000-0000-0000-0000-000000000000" before rc _
    for _ in 1 2 3 4 5; do
        before=$(grep -c "$zero" "$CEPH_DIR/log/mon.a.log")
        rc=0
        timeout 60 "$@" || rc=$?
        [ $rc -eq 0 ] && return 0
        sleep 0.5   # the monitor's log is written by a thread of its own
        [ "$(grep -c "$zero" "$CEPH_DIR/log/mon.a.log")" != "$before" ] || return $rc
        note "retrying '$*': the monitor refused a request with a zero fsid"
    done
    return $rc
}

# cephq ARGS...: the ceph CLI against the test cluster (see ceph_cli).
cephq() {
    ceph_cli ceph --connect-timeout 30 "$@"
}

# start_ceph: bring up the cluster, with a pool "rbd" ready for images, and
# export CEPH_CONF so that every client (rbd, qemu-img, libqblock) finds it.
start_ceph() {
    local port fsid osd_uuid
    mkdir -p "$CEPH_DIR"/run "$CEPH_DIR"/log "$CEPH_DIR"/mon-a "$CEPH_DIR"/osd-0
    port=$(free_port) || fail "no free port"
    fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
    osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
    cat >"$CEPH_DIR/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$port
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
osd crush chooseleaf type = 0
run dir = $CEPH_DIR/run
log file = $CEPH_DIR/log/\$name.log
admin socket = $CEPH_DIR/run/\$name.asok
pid file = $CEPH_DIR/run/\$name.pid
ms bind ipv4 = true
ms bind ipv6 = false
client mount timeout = 30
[client]
admin socket =
pid file =
[mon.a]
mon data = $CEPH_DIR/mon-a
public addr = 127.0.0.1
[osd.0]
osd data = $CEPH_DIR/osd-0
osd objectstore = memstore
memstore device bytes = 1073741824
osd journal size = 0
osd crush update on start = false
osd class update on start = false
CONF
    export CEPH_CONF=$CEPH_DIR/ceph.conf
    monmaptool --create --add a "v1:127.0.0.1:$port" --fsid "$fsid" "$CEPH_DIR/monmap" \
        >"$CEPH_DIR/log/monmaptool.out" 2>&1 || fail "monmaptool: $(cat "$CEPH_DIR/log/monmaptool.out")"
    ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$CEPH_DIR/monmap" \
        >"$CEPH_DIR/log/mkfs.out" 2>&1 || fail "ceph-mon --mkfs: $(cat "$CEPH_DIR/log/mkfs.out")"
    ceph-mon -c "$CEPH_CONF" -i a >>"$CEPH_DIR/log/mkfs.out" 2>&1 || fail "ceph-mon did not start"
    ceph_wait_pid mon.a
    # The OSD's own uuid, given to both, so that the monitor knows the OSD that registers.
    cephq osd create "$osd_uuid" >/dev/null || fail "ceph osd create"
    # The OSD is placed in the CRUSH map here rather than by itself at start:
    # its own placement is a monitor command sent as soon as it has
    # authenticated, which can be before it has the monitor map (the race
    # ceph_cli retries), and then the monitor refuses it ("wrong fsid" in
    # the OSD's log) and the OSD exits. The two "update on start" options
    # above keep it from sending those commands.
    cephq osd crush add osd.0 1.0 root=default >"$CEPH_DIR/log/crush.out" 2>&1 \
        || fail "ceph osd crush add: $(cat "$CEPH_DIR/log/crush.out")"
    ceph-osd -c "$CEPH_CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$CEPH_DIR/log/mkfs.out" 2>&1 \
        || fail "ceph-osd --mkfs: $(tail -5 "$CEPH_DIR/log/mkfs.out")"
    ceph-osd -c "$CEPH_CONF" -i 0 >>"$CEPH_DIR/log/mkfs.out" 2>&1 \
        || fail "ceph-osd did not start: $(grep -h -- ' -1 ' "$CEPH_DIR/log/osd.0.log" | tail -3)"
    ceph_wait_pid osd.0
    cephq osd pool create rbd 8 >"$CEPH_DIR/log/pool.out" 2>&1 \
        || fail "ceph osd pool create rbd: $(cat "$CEPH_DIR/log/pool.out")"
    ceph_cli rbd pool init rbd || fail "rbd pool init"
    # The pool takes writes once its placement groups are active (there is
    # no manager to ask, so an object write that completes says so).
    echo probe >"$CEPH_DIR/probe"
    timeout 60 rados -p rbd put probe "$CEPH_DIR/probe" || fail "the pool rbd takes no writes"
    timeout 60 rados -p rbd rm probe || fail "rados rm"
}
