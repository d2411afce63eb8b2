#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 601-nbd-nbdkit.sh: libqblock against real nbdkit servers: random unaligned
# I/O on the memory and file plugins matches a shadow copy (one thread and
# eight threads on one connection); map equals nbdinfo --map; discard and
# zero writes go on the wire as TRIM and WRITE_ZEROES (with NO_HOLE unless
# unmapping is allowed) when the server offers them, and as nothing or
# plain writes when it does not (nbdkit's log filter shows what was sent).

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
source "$SRCDIR/tests/interop/nbd-common.sh"
build_helper STRESS qbstress

# The memory plugin: starts all zero.
start_nbdkit mem memory 16M
URI="nbd+unix:///?socket=$(sock mem)"
sparse_file mirror.raw 16M
run "$STRESS" -s 601 -n 800 -m 200000 -F 40 -d 10 -r 300 -f raw "$URI" mirror.raw
run "$QEMU_IMG" compare -q -f raw -F raw "$URI" mirror.raw
echo "memory plugin: qbstress reads matched, qemu-img compare equal"
run "$QBNBD" -U "$(sock mem)" -f raw threads 8 150 mirror2.raw
cat run.out
run "$QEMU_IMG" compare -q -f raw -F raw "$URI" mirror2.raw
stop_server mem

# Allocation as nbdinfo sees it: data, trimmed holes, zeroed ranges.
start_nbdkit mem memory 16M
run qbi write -q -f raw -P 0x21 "$URI" 0 3M
run qbi write -q -f raw -P 0x22 "$URI" 6M 2M
run qbi discard -q -f raw "$URI" 1M 512k
run qbi write -q -z -u -f raw "$URI" 6M 1M
same_map_as_nbdinfo "memory plugin" "$URI"
run qbi read -q -f raw -P 0 "$URI" 6M 1M
run qbi read -q -f raw -P 0x22 "$URI" 7M 1M
stop_server mem
echo "memory plugin: map equal to nbdinfo --map"

# The file plugin: the served file ends equal to the mirror.
run "$QEMU_IMG" create -q -f raw served.raw 8M
qio_ok served.raw "write -P 0x5e 1M 2M"
cp served.raw mirror.raw
start_nbdkit file file served.raw
run "$STRESS" -s 602 -n 600 -m 150000 -F 30 -d 10 -r 300 -f raw "nbd+unix:///?socket=$(sock file)" mirror.raw
stop_server file
same_content served.raw mirror.raw
echo "file plugin: qbstress reads matched, the served file equals the mirror"

# What goes on the wire. log_ops: the commands of the last connection.
log_ops() {
    sed -n -E 's/^.* connection=[0-9]+ (Trim|Zero|Write) id=[0-9]+ offset=(0x[0-9a-f]+) count=(0x[0-9a-f]+)( trim=([01]))?.*/\1 \2 \3 \5/p' "$1"
}
start_nbdkit log --filter=log memory 1M logfile="$TEST_DIR/ops.log"
URI="nbd+unix:///?socket=$(sock log)"
run qbi discard -q -f raw "$URI" 64k 64k
run qbi write -q -z -f raw "$URI" 128k 64k
run qbi write -q -z -u -f raw "$URI" 192k 64k
stop_server log
echo "offered: $(log_ops ops.log | tr '\n' ';')"

start_nbdkit nozero --filter=log --filter=nozero memory 1M logfile="$TEST_DIR/nozero.log"
URI="nbd+unix:///?socket=$(sock nozero)"
run qbi write -q -f raw -P 0x99 "$URI" 0 256k
run qbi write -q -z -f raw "$URI" 128k 64k
run qbi read -q -f raw -P 0 "$URI" 128k 64k
run qbi read -q -f raw -P 0x99 "$URI" 192k 64k
stop_server nozero
echo "no zero offered: $(log_ops nozero.log | tail -n 1)"

# An eval plugin that cannot trim: discard sends nothing and keeps the data.
truncate -s 1M evald.raw
start_nbdkit notrim --filter=log eval logfile="$TEST_DIR/notrim.log" \
    get_size='echo 1048576' can_write='exit 0' can_trim='exit 3' \
    pread="dd if=$TEST_DIR/evald.raw skip=\$4 count=\$3 iflag=skip_bytes,count_bytes status=none" \
    pwrite="dd of=$TEST_DIR/evald.raw seek=\$4 conv=notrunc oflag=seek_bytes status=none"
URI="nbd+unix:///?socket=$(sock notrim)"
run qbi write -q -f raw -P 0x42 "$URI" 0 64k
run qbi discard -q -f raw "$URI" 0 64k
run qbi read -q -f raw -P 0x42 "$URI" 0 64k
stop_server notrim
echo "no trim offered: $(log_ops notrim.log | tr '\n' ';')"

# A server with a 4 KiB minimum block size that rejects anything smaller:
# unaligned I/O is read-modify-written in whole blocks, from eight threads too.
start_nbdkit blk --filter=blocksize-policy memory 8M blocksize-minimum=4096 \
    blocksize-error-policy=error
URI="nbd+unix:///?socket=$(sock blk)"
sparse_file mirror.raw 8M
run "$STRESS" -s 603 -n 300 -m 100000 -F 40 -d 10 -r 100 -f raw "$URI" mirror.raw
run "$QBNBD" -U "$(sock blk)" -f raw threads 8 60 mirror2.raw
run "$QEMU_IMG" compare -q -f raw -F raw "$URI" mirror2.raw
same_map_as_nbdinfo "4 KiB blocks" "$URI"
stop_server blk
echo "4 KiB minimum block size: unaligned I/O matched, map equal to nbdinfo --map"
