#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# demo.sh: a short guided tour of qblock-img on raw images in a scratch
# folder: create, write and verify patterns, inspect, map, convert and
# compare. `make demo` runs it with the in-tree tool; any failure stops it
# with a non-zero status.
#
# Environment: QBLOCK_IMG (the tool; default: qblock-img from PATH).

set -eu
set -o pipefail

QBLOCK_IMG=${QBLOCK_IMG:-qblock-img}
if ! command -v "$QBLOCK_IMG" >/dev/null 2>&1; then
    echo "demo.sh: cannot find the tool '$QBLOCK_IMG' (set QBLOCK_IMG)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/qblock-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

step=0
# say TEXT: narrate the next step.
say() {
    step=$((step + 1))
    echo
    echo "### $step. $*"
}

# show CMD...: print a command, then run it; a failure ends the demo.
show() {
    echo "\$ qblock-img ${*:2}"
    "$@"
}

# expect_status WANT CMD...: run a command that must exit with WANT.
expect_status() {
    local want=$1 rc=0
    shift
    echo "\$ qblock-img ${*:2}"
    "$@" || rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "demo.sh: expected exit status $want, got $rc" >&2
        exit 1
    fi
    echo "(exit status $rc, as expected)"
}

q=$QBLOCK_IMG

say "Create a 64 MiB raw image (sparse: no data is allocated yet)"
show "$q" create -f raw disk.raw 64M

say "Write patterns at a few offsets, aligned or not"
show "$q" write -f raw -P 0xaa disk.raw 0 1M
show "$q" write -f raw -P 0x55 disk.raw 10M 3M
show "$q" write -f raw -P 0x0f disk.raw 40000123 4567

say "Read them back, checking every byte against the pattern"
show "$q" read -f raw -P 0xaa disk.raw 0 1M
show "$q" read -f raw -P 0x55 disk.raw 10M 3M
show "$q" read -f raw -P 0x0f disk.raw 40000123 4567
echo "A range that does not hold the pattern is reported, with exit status 1:"
expect_status 1 "$q" read -f raw -P 0x55 disk.raw 9M 2M

say "Look at a few bytes in hexadecimal"
show "$q" read -f raw -v disk.raw 40000118 16

say "Inspect the image, for people and for programs"
show "$q" info disk.raw
show "$q" info --output=json disk.raw

say "Map the sparse image: which ranges hold data and which are holes"
show "$q" map -f raw disk.raw
show "$q" map -f raw --output=json disk.raw

say "Copy it with convert: holes stay holes, zeros are not written"
show "$q" convert -p -f raw -O raw disk.raw copy.raw
show "$q" map -f raw copy.raw

say "Compare the copy with the original"
show "$q" compare -f raw -F raw disk.raw copy.raw

say "Change one byte of the copy; compare now tells where (exit status 1)"
show "$q" write -f raw -P 0x01 copy.raw 20000000 1
expect_status 1 "$q" compare -f raw -F raw disk.raw copy.raw

say "A quick benchmark: 2000 reads of 4 KiB"
show "$q" bench -f raw -c 2000 -d 4 disk.raw

echo
echo "The demo completed successfully."
