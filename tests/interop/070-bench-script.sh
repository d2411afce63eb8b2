#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 070-bench-script.sh: bench/run --quick -n 1 runs every row through both
# tools and prints a well-formed table: a header, a rule, one line per row
# with seven cells, a figure (or, for our tool only, "unsupported") in each
# time, ratio and memory cell, the rows of issue 9's bench matrix, then the
# 1-against-4-threads table of bench/threads. Only the shape is checked,
# never a time.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io
[ -x /usr/bin/time ] || skip "GNU time is not installed (Debian package time)"
command -v python3 >/dev/null || skip "python3 is not installed"

# bench/threads is built with the tests (make build-tests).
THREADS_BIN=$BUILDDIR/bench/threads
[ -x "$THREADS_BIN" ] || fail "no $THREADS_BIN: run make build-tests"

python3 "$SRCDIR/bench/run" --quick -n 1 --scratch "$TEST_DIR/scratch" \
    --qblock-img "$QBLOCK_IMG" --qemu-img "$QEMU_IMG" --qemu-io "$QEMU_IO" \
    --threads-bin "$THREADS_BIN" >table.txt 2>bench.log ||
    { cat bench.log >&2; fail "bench/run failed"; }

python3 - table.txt <<'PY' || fail "malformed table: $(cat table.txt)"
import re, sys

lines = open(sys.argv[1]).read().splitlines()
# The side-by-side table ends at its "medians" line; the threads table follows.
end = next(i for i, l in enumerate(lines) if l.startswith("medians of 1 run(s)"))
table = [l for l in lines[:end] if l.startswith("|")]
cells = [[c.strip() for c in l.strip("|").split("|")] for l in table]
assert cells[0][:6] == ["row", "qemu-img s", "qblock-img s", "ratio", "qemu RSS KiB",
                        "our RSS KiB"], cells[0]
assert all(set(c) <= {"-"} for c in cells[1]), table[1]
rows = cells[2:]
num = re.compile(r"^[0-9]+(\.[0-9]+)?$")
names = set()
unsupported = 0
for r in rows:
    assert len(r) == 7, r
    names.add(r[0])
    # qemu-img's figures are always there.
    assert num.match(r[1]) and num.match(r[4]) and int(r[4]) > 0, r
    if r[2] == "unsupported":
        # Only all together, and only with the reason in the note.
        assert r[3] == r[5] == "unsupported" and r[6], r
        unsupported += 1
    else:
        assert num.match(r[2]) and num.match(r[3]) and num.match(r[5]) and int(r[5]) > 0, r
assert len(names) == len(rows), "duplicate row names"
# Both formats' bench rows, queue depth, convert, map, check and info.
for want in ("qcow2 write 4k seq", "raw write 4k seq", "qcow2 read 64k", "raw read 64k",
             "-d 64", "convert raw -> qcow2", "convert qcow2 -> raw", "map 1T", "check 1T",
             "info 20-deep"):
    assert any(want in n for n in names), "no row for " + want
assert len(rows) >= 20, len(rows)
# A figure per tool everywhere except, at most, compression.
assert unsupported <= 1, unsupported
# Issue 9's matrix: every size, pattern, depth and cache mode, on fresh and
# full images, for both formats (one name per combination).
for fmt in ("qcow2", "raw"):
    for img in ("fresh", "full"):
        for rw in ("read", "write"):
            for size in ("4k", "64k"):
                for pat in ("seq", "strided"):
                    n = sum(1 for x in names
                            if x.startswith("%s %s %s %s %s -d " % (fmt, img, rw, size, pat)))
                    # Combinations the older rows cover have other names.
                    assert n >= 1 or (img, rw) in (("fresh", "write"), ("full", "read")), \
                        (fmt, img, rw, size, pat, n)
# The threads table: a header, a rule, then 1 and 4 threads with figures.
rest = [[c.strip() for c in l.strip("|").split("|")] for l in lines[end:] if l.startswith("|")]
assert rest and rest[0] == ["threads", "MiB/s", "ratio to 1 thread", "CPU us/request"], rest
assert [r[0] for r in rest[2:]] == ["1", "4"], rest
for r in rest[2:]:
    assert all(num.match(c) for c in r[1:]) and float(r[1]) > 0, r
PY
echo "table has $(grep -c '^|' table.txt) lines" >&2
