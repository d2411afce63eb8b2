#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 050-lock-raw.sh: image locking between QEMU 7.2 and libqblock on raw
# images, both directions. A holder keeps the image open in the background
# (qemu-io 'sleep', qemu-nbd, or libqblock through tests/interop/lockholder.c);
# it must lock exactly the bytes QEMU locks for that role (block/perm.c), and
# each probe (write, read, a qcow2 open, info, create) must end the same way
# whether QEMU's tools or qblock-img run it, and as QEMU 7.2 was observed to
# behave:
#  - raw shares write: a second writer of a raw image is allowed, by QEMU
#    and by us, whoever holds it;
#  - a qcow2 open (read-only too) of a raw image someone writes is refused
#    with 'Failed to get shared "write" lock' before the format is looked at;
#  - qemu-nbd does not share resize, so create (which truncates) is refused
#    with 'Failed to get "resize" lock'.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/lock-common.sh"
require_qemu_io
require_qemu_img
require_proc_locks
build_lockholder

size=1M
img=$TEST_DIR/img.raw
"$QEMU_IMG" create -q -f raw "$img" $size || fail "qemu-img create"

# probe_qemu/probe_qblock PROBE: one operation done by QEMU's tools / ours.
probe_qemu() {
    case $1 in
    write)  outcome "$QEMU_IO" -f raw -c 'write -P 0 0 512' "$img" ;;
    read)   outcome "$QEMU_IO" -r -f raw -c 'read 0 512' "$img" ;;
    qcow2)  outcome "$QEMU_IO" -r -f qcow2 -c 'read 0 512' "$img" ;;
    info)   outcome "$QEMU_IMG" info -f raw "$img" ;;
    create) outcome "$QEMU_IMG" create -q -f raw "$img" $size ;;
    esac
}
probe_qblock() {
    case $1 in
    write)  outcome "$QBLOCK_IMG" write -q -f raw -P 0 "$img" 0 512 ;;
    read)   outcome "$QBLOCK_IMG" read -q -f raw "$img" 0 512 ;;
    qcow2)  outcome "$QBLOCK_IMG" read -q -f qcow2 "$img" 0 512 ;;
    info)   outcome "$QBLOCK_IMG" info -f raw "$img" ;;
    create) outcome "$QBLOCK_IMG" create -q -f raw "$img" $size ;;
    esac
}
probes=(write read qcow2 info create)

# check_probes WHO EXPECTED...: run every probe with WHO's tools ("qemu",
# "qblock" or "both"); EXPECTED gives each probe's outcome in order.
check_probes() {
    local who=$1 i got
    shift
    local want=("$@")
    for i in "${!probes[@]}"; do
        if [ "$who" = qemu ] || [ "$who" = both ]; then
            got=$(probe_qemu "${probes[$i]}")
            if [ "$got" != "${want[$i]}" ]; then
                sed 's/^/    (stderr) /' "$TEST_DIR/probe.err" >&2
                fail "QEMU ${probes[$i]}: '$got', want '${want[$i]}' (QEMU itself no longer" \
                     "behaves as 7.2 was observed to)"
            fi
            note "  qemu   ${probes[$i]}: $got"
        fi
        if [ "$who" = qblock ] || [ "$who" = both ]; then
            got=$(probe_qblock "${probes[$i]}")
            if [ "$got" != "${want[$i]}" ]; then
                sed 's/^/    (stderr) /' "$TEST_DIR/probe.err" >&2
                fail "qblock-img ${probes[$i]}: '$got', want '${want[$i]}'"
            fi
            note "  qblock ${probes[$i]}: $got"
        fi
    done
}

# Nothing holds the image: everything but the qcow2 open (not a qcow2 image) works.
note "no holder"
check_probes both ok ok failed ok ok
[ -z "$(lock_bytes "$img")" ] || fail "locks left behind by the probes: $(lock_bytes "$img")"

# ---- QEMU holds the image, probes by QEMU and by qblock-img ----

note "qemu-io -f raw (read-write) holds the image"
start_holder qemu-rw "$img" "100 101" "$QEMU_IO" -f raw -c 'sleep 3600000' "$img"
check_probes both ok ok locked ok ok
stop_holder "$img"

note "qemu-io -r -f raw holds the image"
start_holder qemu-ro "$img" "100" "$QEMU_IO" -r -f raw -c 'sleep 3600000' "$img"
check_probes both ok ok failed ok ok
stop_holder "$img"

if [ -n "${QEMU_NBD:-}" ] && [ -x "$QEMU_NBD" ]; then
    note "qemu-nbd -f raw holds the image"
    start_holder qemu-nbd "$img" "100 101 203" \
        "$QEMU_NBD" -f raw -k "$TEST_DIR/nbd.sock" "$img"
    check_probes both ok ok locked ok locked
    # A refused create must not have emptied or resized the image.
    [ "$(stat -c %s "$img")" = 1048576 ] || fail "a refused create changed the image's size"
    stop_holder "$img"
else
    note "qemu-nbd not available (QEMU_NBD empty): its case is not run"
fi

# ---- libqblock holds the image, probes by QEMU (and by us) ----

note "libqblock (raw, read-write) holds the image"
start_holder qb-rw "$img" "100 101" "$LOCKHOLDER" -w -f raw "$img"
check_probes both ok ok locked ok ok
stop_holder "$img"

note "libqblock (raw, read-only) holds the image"
start_holder qb-ro "$img" "100" "$LOCKHOLDER" -f raw "$img"
check_probes both ok ok failed ok ok
stop_holder "$img"

# A libqblock open refused for a lock says so with its own exit status.
note "qemu-io -f qcow2 holds a qcow2 image; libqblock opens it as raw"
qimg=$TEST_DIR/img.qcow2
"$QEMU_IMG" create -q -f qcow2 "$qimg" $size || fail "qemu-img create qcow2"
start_holder qemu-qcow2 "$qimg" "100 101 103 201 203" \
    "$QEMU_IO" -f qcow2 -c 'sleep 3600000' "$qimg"
rc=0
"$LOCKHOLDER" -w -f raw "$qimg" >/dev/null 2>"$TEST_DIR/lh.err" || rc=$?
[ $rc -eq 3 ] || fail "lockholder -w -f raw on a held qcow2 image: exit $rc, want 3 (locked)"
grep -q 'Failed to get "write" lock' "$TEST_DIR/lh.err" ||
    fail "no lock message: $(cat "$TEST_DIR/lh.err")"
expect_outcome "qblock-img write -f raw of the held qcow2" locked \
    "$QBLOCK_IMG" write -q -f raw -P 0 "$qimg" 0 512
expect_outcome "qblock-img read -f raw of the held qcow2" ok \
    "$QBLOCK_IMG" read -q -f raw "$qimg" 0 512
stop_holder "$qimg"
"$QEMU_IMG" check -q "$qimg" || fail "the qcow2 image was damaged"

echo "050-lock-raw: all lock cases behave as with QEMU 7.2" >&2
exit 0
