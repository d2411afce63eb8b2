#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 603-nbd-faults.sh: a server that dies or stops answering fails requests,
# never hangs them: qemu-nbd killed in the middle of a stream of requests
# gives QB_ERR_IO; a server frozen (SIGSTOP) gives QB_ERR_TIMEOUT once the
# location's timeout passed. nbdkit's error filter turns into the matching
# errors (EIO is QB_ERR_IO, ENOSPC keeps its errno), and its delay filter
# shows a slow reply within the timeout succeeding and one beyond it
# timing out. How long each failure took is printed on stderr only.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/nbd-common.sh"

truncate -s 16M disk.raw

# loop_until_failure NAME SIGNAL TIMEOUT_MS: run the helper's loop, send
# SIGNAL to the server once requests flow, and wait for the helper to fail.
loop_until_failure() {
    local name=$1 sig=$2 timeout=$3 pid t0 t1 i
    start_qemu_nbd "$name" -f raw -x d disk.raw
    "$QBNBD" -U "$(sock "$name")" -e d -f raw -t "$timeout" loop >loop.out 2>loop.err &
    pid=$!
    for i in $(seq 100); do
        grep -q ready loop.out && break
        sleep 0.1
    done
    grep -q ready loop.out || fail "$name: no request went through"
    t0=$(date +%s%N)
    kill "-$sig" "$(server_pid "$name")"
    wait "$pid" || { cat loop.err >&2; fail "$name: the helper failed"; }
    t1=$(date +%s%N)
    note "$name: SIG$sig -> failure after $(( (t1 - t0) / 1000000 )) ms (timeout ${timeout} ms); $(grep failed loop.out)"
    sed -E 's/ after [0-9]+ ms//' loop.out | grep failed
}
echo "killed: $(loop_until_failure killed KILL 30000)"
echo "frozen: $(loop_until_failure frozen STOP 1500)"
kill -CONT "$(server_pid frozen)"

# Server errors.
start_nbdkit err --filter=error memory 1M error-pread=EIO error-pread-rate=100% \
    error-pwrite=ENOSPC error-pwrite-rate=100%
run_status 1 "$QBNBD" -U "$(sock err)" -f raw read 0 4096
echo "EIO on read: $(cut -d: -f1-2 run.out)"
run_status 1 "$QBNBD" -U "$(sock err)" -f raw write 512 100
grep -q "No space left on device" run.out || fail "ENOSPC on write: $(cat run.out)"
echo "ENOSPC on write: $(cut -d: -f1-2 run.out), errno kept"
run_fails qbi read -f raw "nbd+unix:///?socket=$(sock err)" 0 512
grep -q "Input/output error" run.err || fail "tool read: $(cat run.err)"

# Slow replies: 2 s for each read.
start_nbdkit slow --filter=delay memory 1M rdelay=2
run "$QBNBD" -U "$(sock slow)" -f raw -t 6000 read 0 4096
echo "2 s reply, 6 s timeout: $(cat run.out)"
t0=$(date +%s%N)
run_status 1 "$QBNBD" -U "$(sock slow)" -f raw -t 700 read 0 4096
note "2 s reply, 0.7 s timeout: failed after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
echo "2 s reply, 0.7 s timeout: $(cut -d: -f1-2 run.out)"
