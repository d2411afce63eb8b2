#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 016-check.sh: `qblock-img check` gives the same stdout, the same exit code
# and the same qemu-img-style messages as `qemu-img check` on the same
# images (qcow2, qed, vdi, vmdk clean, leaked and corrupted; raw for the
# "does not support checks" exit 63), in human and JSON output, and its
# repairs leave images that qemu-img finds clean.
#
# A known difference that cannot be removed: qemu's drivers print one
# diagnostic line per damaged cluster on stderr ("Leaked cluster 5
# refcount=2 reference=1", "ERROR ...", "Repairing ..."); libqblock's
# drivers print nothing, so those lines are filtered out of qemu-img's
# stderr before the comparison. Everything else on stderr must match once
# the program names are replaced.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io
command -v python3 >/dev/null || skip "python3 is not installed"

# damage FILE FORMAT KIND: make a leak or a corruption with direct writes.
damage() {
    python3 - "$@" <<'EOF' || fail "cannot damage $1"
import struct, sys
fn, fmt, kind = sys.argv[1], sys.argv[2], sys.argv[3]
f = open(fn, 'r+b')
def rd(off, fmtc):
    f.seek(off)
    return struct.unpack(fmtc, f.read(struct.calcsize(fmtc)))[0]
def wr(off, fmtc, v):
    f.seek(off)
    f.write(struct.pack(fmtc, v))
if fmt == 'qcow2':
    # The refcount of the cluster holding the first data cluster (5 in a fresh
    # image with one write): one more is a leak, zero is a corruption.
    rb = rd(rd(48, '>Q'), '>Q')
    v = rd(rb + 10, '>H')
    wr(rb + 10, '>H', v + 1 if kind == 'leak' else 0)
elif fmt == 'qed':
    if kind == 'leak':
        # A cluster past everything the tables reference.
        cs = rd(4, '<I')
        f.seek(0, 2)
        f.write(b'\0' * cs)
    else:
        # The second L1 entry pointing inside the header cluster.
        l1 = rd(40, '<Q')
        wr(l1 + 8, '<Q', 512)
elif fmt == 'vdi':
    # The second block map entry pointing at the first entry's block.
    bmap = rd(0x154, '<I')
    wr(bmap + 4, '<I', rd(bmap, '<I'))
elif fmt == 'vmdk':
    # The first grain table entry pointing far beyond the end of the file.
    gd = rd(56, '<Q') * 512
    gt = rd(gd, '<I') * 512
    wr(gt, '<I', 0x7fffff00)
f.close()
EOF
}

# compare_check CASE ARGS...: runs both tools on copies of the image in
# $img, prints qemu-img's stdout and exit code, and fails on any difference.
compare_check() {
    local name=$1
    shift
    cp "$img" q.img
    cp "$img" o.img
    "$QEMU_IMG" check "$@" q.img >q.out 2>q.err
    local rq=$?
    "$QBLOCK_IMG" check "$@" o.img >o.out 2>o.err
    local ro=$?
    check_status "$rq" "$ro" qblock-img check "$@" "($name)"
    sed -i 's/q\.img/IMG/g' q.out q.err
    sed -i 's/o\.img/IMG/g' o.out o.err
    grep -v -e '^Leaked cluster' -e '^ERROR' -e '^Repairing' -e '^Rebuilding' \
        -e '^Warning: ' q.err | sed 's/qemu-img/TOOL/g' >q.err2
    sed 's/qblock-img/TOOL/g' o.err >o.err2
    echo "== $name: check $* -> $rq"
    cat q.out
    cmp -s q.out o.out || { diff q.out o.out >&2; fail "stdout differs: $name check $*"; }
    cmp -s q.err2 o.err2 || { diff q.err2 o.err2 >&2; fail "stderr differs: $name check $*"; }
    if [ $# -gt 0 ] && [ "$1" = "-r" ]; then
        # What our repair left must satisfy qemu-img exactly as its own repair does.
        "$QEMU_IMG" check q.img >/dev/null 2>&1
        local pq=$?
        "$QEMU_IMG" check o.img >/dev/null 2>&1
        local po=$?
        echo "   qemu-img check after the repair -> $pq"
        [ "$pq" = "$po" ] || fail "after $name check $*: qemu-img check gives $po on ours, $pq on qemu's"
    fi
}

"$QEMU_IMG" create -q -f raw base.raw 1M || fail "create raw"
img=base.raw
compare_check raw-clean -f raw
compare_check raw-clean -f raw --output=json

for fmt in qcow2 qed vdi vmdk; do
    for kind in clean leak corrupt; do
        if [ "$kind" = leak ] && { [ "$fmt" = vdi ] || [ "$fmt" = vmdk ]; }; then
            continue    # these formats have no notion of leaked clusters
        fi
        img=$fmt-$kind.img
        "$QEMU_IMG" create -q -f $fmt "$img" 4M || fail "create $fmt"
        "$QEMU_IO" -f $fmt -c "write -P 0x5a 0 64k" -c "write -P 0xa5 1M 64k" "$img" >/dev/null ||
            fail "qemu-io write $fmt"
        [ "$kind" = clean ] || damage "$img" $fmt $kind
        compare_check "$fmt-$kind" -f $fmt
        compare_check "$fmt-$kind" -f $fmt --output=json
        compare_check "$fmt-$kind" -f $fmt -q
        if [ "$fmt" = qcow2 ] || [ "$fmt" = qed ]; then
            compare_check "$fmt-$kind" -f $fmt -r leaks
            compare_check "$fmt-$kind" -f $fmt -r all --output=json
        fi
    done
done

# Usage errors, with their exit codes.
img=qcow2-clean.img
compare_check usage -f qcow2 -r bogus
compare_check usage -f qcow2 --output=xml
compare_check usage -f qcow2 -U -r leaks
exit 0
