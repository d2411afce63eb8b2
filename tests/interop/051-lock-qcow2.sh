#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 051-lock-qcow2.sh: image locking between QEMU 7.2 and libqblock on a qcow2
# image, both directions. As in 050-lock-raw.sh, each holder must lock the
# bytes QEMU locks for its role, and every probe must end the same way
# whether QEMU's tools or qblock-img run it, and as QEMU 7.2 was observed to
# behave. What a format with metadata changes (block/perm.c):
#  - its node shares neither write nor resize, read-only or not, so a qcow2
#    open of an image another process writes is refused, and so is any
#    writer (raw too) of an image someone holds as qcow2;
#  - info (no data permissions) is refused under a qcow2 writer, not under
#    a qcow2 reader; info -U always works;
#  - create is refused under any qcow2 holder.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/lock-common.sh"
require_qemu_io
require_qemu_img
require_proc_locks
build_lockholder

size=1M
img=$TEST_DIR/img.qcow2

# fresh_image: a new empty qcow2 image. The raw write probe writes zeros
# over its last 512 bytes, which an empty image keeps zero (checked here),
# so that a write QEMU allows does not damage it.
fresh_image() {
    rm -f "$img"
    "$QEMU_IMG" create -q -f qcow2 "$img" $size || fail "qemu-img create"
    tail_off=$(($(stat -c %s "$img") - 512))
    qio_ok "$img" "read -P 0 $tail_off 512"
}

probe_qemu() {
    case $1 in
    write-raw)   outcome "$QEMU_IO" -f raw -c "write -P 0 $tail_off 512" "$img" ;;
    read-raw)    outcome "$QEMU_IO" -r -f raw -c 'read 0 512' "$img" ;;
    write-qcow2) outcome "$QEMU_IO" -f qcow2 -c 'write -P 0x5a 0 512' "$img" ;;
    read-qcow2)  outcome "$QEMU_IO" -r -f qcow2 -c 'read 0 512' "$img" ;;
    info)        outcome "$QEMU_IMG" info -f qcow2 "$img" ;;
    info-U)      outcome "$QEMU_IMG" info -U -f qcow2 "$img" ;;
    create)      outcome "$QEMU_IMG" create -q -f qcow2 "$img" $size ;;
    esac
}
probe_qblock() {
    case $1 in
    write-raw)   outcome "$QBLOCK_IMG" write -q -f raw -P 0 "$img" "$tail_off" 512 ;;
    read-raw)    outcome "$QBLOCK_IMG" read -q -f raw "$img" 0 512 ;;
    write-qcow2) outcome "$QBLOCK_IMG" write -q -f qcow2 -P 0x5a "$img" 0 512 ;;
    read-qcow2)  outcome "$QBLOCK_IMG" read -q -f qcow2 "$img" 0 512 ;;
    info)        outcome "$QBLOCK_IMG" info -f qcow2 "$img" ;;
    info-U)      outcome "$QBLOCK_IMG" info -U -f qcow2 "$img" ;;
    create)      outcome "$QBLOCK_IMG" create -q -f qcow2 "$img" $size ;;
    esac
}
probes=(write-raw read-raw write-qcow2 read-qcow2 info info-U create)

# check_probes EXPECTED...: every probe by QEMU, then by qblock-img. A QEMU
# outcome that differs from the observation fails at once (the oracle
# changed); qblock-img mismatches are collected in $mismatches so that one
# run shows all of them.
mismatches=()
check_probes() {
    local want=("$@") i got
    for i in "${!probes[@]}"; do
        got=$(probe_qemu "${probes[$i]}")
        if [ "$got" != "${want[$i]}" ]; then
            sed 's/^/    (stderr) /' "$TEST_DIR/probe.err" >&2
            fail "QEMU ${probes[$i]}: '$got', want '${want[$i]}' (QEMU itself no longer" \
                 "behaves as 7.2 was observed to)"
        fi
        got=$(probe_qblock "${probes[$i]}")
        if [ "$got" != "${want[$i]}" ]; then
            sed 's/^/    (stderr) /' "$TEST_DIR/probe.err" >&2
            note "  MISMATCH ${probes[$i]}: qblock-img '$got', QEMU '${want[$i]}'"
            mismatches+=("$holder: ${probes[$i]}: qblock-img '$got', QEMU '${want[$i]}'")
        else
            note "  ${probes[$i]}: $got (both)"
        fi
    done
}

# The image must still be a valid qcow2 image after a round of probes.
check_image() {
    "$QEMU_IMG" check -q -f qcow2 "$img" || fail "the qcow2 image was damaged"
}

rw_row=(locked ok locked locked locked ok locked)
ro_row=(locked ok locked ok ok ok locked)

holder="no holder"; note "$holder"
fresh_image
check_probes ok ok ok ok ok ok ok
[ -z "$(lock_bytes "$img")" ] || fail "locks left behind by the probes: $(lock_bytes "$img")"
check_image

# ---- QEMU holds the image ----

holder="qemu-io -f qcow2 (read-write) holds the image"; note "$holder"
fresh_image
start_holder qemu-rw "$img" "100 101 103 201 203" "$QEMU_IO" -f qcow2 -c 'sleep 3600000' "$img"
check_probes "${rw_row[@]}"
stop_holder "$img"
check_image

holder="qemu-io -r -f qcow2 holds the image"; note "$holder"
fresh_image
start_holder qemu-ro "$img" "100 201 203" "$QEMU_IO" -r -f qcow2 -c 'sleep 3600000' "$img"
check_probes "${ro_row[@]}"
stop_holder "$img"
check_image

holder="qemu-io -U -r -f qcow2 holds the image (forbids nothing)"; note "$holder"
fresh_image
start_holder qemu-U "$img" "100" "$QEMU_IO" -U -r -f qcow2 -c 'sleep 3600000' "$img"
check_probes ok ok ok ok ok ok ok
stop_holder "$img"
check_image

if [ -n "${QEMU_NBD:-}" ] && [ -x "$QEMU_NBD" ]; then
    holder="qemu-nbd -f qcow2 holds the image"; note "$holder"
    fresh_image
    start_holder qemu-nbd "$img" "100 101 103 201 203" \
        "$QEMU_NBD" -f qcow2 -k "$TEST_DIR/nbd.sock" "$img"
    check_probes "${rw_row[@]}"
    stop_holder "$img"
    check_image
else
    note "qemu-nbd not available (QEMU_NBD empty): its case is not run"
fi

# ---- libqblock holds the image ----

holder="libqblock (qcow2, read-write) holds the image"; note "$holder"
fresh_image
start_holder qb-rw "$img" "100 101 103 201 203" "$LOCKHOLDER" -w -f qcow2 "$img"
check_probes "${rw_row[@]}"
stop_holder "$img"
check_image

holder="libqblock (qcow2, read-only) holds the image"; note "$holder"
fresh_image
start_holder qb-ro "$img" "100 201 203" "$LOCKHOLDER" -f qcow2 "$img"
check_probes "${ro_row[@]}"
stop_holder "$img"
check_image

holder="libqblock (probed format, read-write) holds the image"; note "$holder"
fresh_image
start_holder qb-probe "$img" "100 101 103 201 203" "$LOCKHOLDER" -w "$img"
rc=0
"$LOCKHOLDER" -f qcow2 "$img" >/dev/null 2>"$TEST_DIR/lh.err" || rc=$?
[ $rc -eq 3 ] || fail "a second libqblock qcow2 open: exit $rc, want 3 (locked)"
grep -q 'Failed to get shared "write" lock' "$TEST_DIR/lh.err" ||
    fail "no lock message: $(cat "$TEST_DIR/lh.err")"
stop_holder "$img"
check_image

if [ ${#mismatches[@]} -gt 0 ]; then
    printf '    %s\n' "${mismatches[@]}" >&2
    fail "${#mismatches[@]} probe(s) end differently with qblock-img than with QEMU"
fi
echo "051-lock-qcow2: all lock cases behave as with QEMU 7.2" >&2
exit 0
