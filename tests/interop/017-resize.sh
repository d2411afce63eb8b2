#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 017-resize.sh: `qblock-img resize` does what `qemu-img resize` does on
# copies of the same image: same stdout, exit code and messages (with the
# program name replaced), the same virtual size afterwards as qemu-img info
# reports it, and the data written before the resize still there.
#
# Known differences, not compared here: when a format driver itself refuses
# a size, its message is libqblock's own wording (qcow2 or qed with a size
# that is not a multiple of 512, qed shrinking); only the exit code (1) is
# compared for those cases.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

vsize() {
    "$QEMU_IMG" info -f "$1" --output=json "$2" | sed -n 's/^ *"virtual-size": \([0-9]*\),$/\1/p' | head -n 1
}

# compare_resize FMT CASE MSG ARGS...: resize copies of $img with both tools;
# MSG is "msg" to compare stderr too, "rc" to compare only exit codes.
compare_resize() {
    local fmt=$1 name=$2 what=$3
    shift 3
    cp "$img" q.img
    cp "$img" o.img
    "$QEMU_IMG" resize -f "$fmt" q.img "$@" >q.out 2>q.err
    local rq=$?
    "$QBLOCK_IMG" resize -f "$fmt" o.img "$@" >o.out 2>o.err
    local ro=$?
    check_status "$rq" "$ro" qblock-img resize -f "$fmt" "$@" "($name)"
    echo "== $name: resize -f $fmt $* -> $rq"
    cat q.out
    cmp -s q.out o.out || { diff q.out o.out >&2; fail "stdout differs: $name"; }
    if [ "$what" = msg ]; then
        sed 's/qemu-img/TOOL/g; s/q\.img/IMG/g' q.err >q.err2
        sed 's/qblock-img/TOOL/g; s/o\.img/IMG/g' o.err >o.err2
        cmp -s q.err2 o.err2 || { diff q.err2 o.err2 >&2; fail "stderr differs: $name"; }
        cat q.err2
    fi
    local sq so
    sq=$(vsize "$fmt" q.img)
    so=$(vsize "$fmt" o.img)
    echo "   virtual size: $sq"
    [ -n "$sq" ] && [ "$sq" = "$so" ] || fail "$name: virtual size $so, qemu-img gives $sq"
    # raw sizes are not rounded: the files must match to the byte.
    if [ "$fmt" = raw ] && [ "$(stat -c %s q.img)" != "$(stat -c %s o.img)" ]; then
        fail "$name: raw file size $(stat -c %s o.img), qemu-img makes $(stat -c %s q.img)"
    fi
    if [ "$rq" = 0 ]; then
        # The data written before the resize, read back by qemu-io.
        "$QEMU_IO" -f "$fmt" -c "read -P 0x5a 0 64k" -c "read -P 0xa5 512k 64k" o.img >io.out ||
            fail "$name: qemu-io read failed"
        grep -q "^Pattern verification failed" io.out && fail "$name: data lost"
        # qemu-img info rounds a raw size up to 512; qemu-io reads only the file's bytes.
        local end=$so
        [ "$fmt" = raw ] && end=$(stat -c %s o.img)
        if [ "$end" -gt 1048576 ]; then
            # The new area reads as zeros.
            "$QEMU_IO" -f "$fmt" -c "read -P 0 1M $((end - 1048576))" o.img >io.out ||
                fail "$name: qemu-io read of the new area failed"
            grep -q "^Pattern verification failed" io.out && fail "$name: new area not zero"
        fi
    fi
    return 0
}

for fmt in raw qcow2 qed vdi vmdk; do
    img=base.$fmt
    "$QEMU_IMG" create -q -f $fmt "$img" 1M || fail "create $fmt"
    "$QEMU_IO" -f $fmt -c "write -P 0x5a 0 64k" -c "write -P 0xa5 512k 64k" "$img" >/dev/null ||
        fail "qemu-io write $fmt"
    case $fmt in
    raw|qcow2)
        compare_resize $fmt "$fmt-grow" msg 3M
        compare_resize $fmt "$fmt-grow-rel" msg +1M
        compare_resize $fmt "$fmt-same" msg 1M
        compare_resize $fmt "$fmt-shrink-refused" msg 768K
        compare_resize $fmt "$fmt-shrink-refused-rel" msg -256K
        compare_resize $fmt "$fmt-negative" msg -2M
        compare_resize $fmt "$fmt-shrink" msg --shrink 768K
        compare_resize $fmt "$fmt-quiet" msg -q 2M
        ;;
    qed)
        compare_resize $fmt "$fmt-grow" msg 3M
        compare_resize $fmt "$fmt-shrink" rc --shrink 768K
        ;;
    *)
        compare_resize $fmt "$fmt-unsupported" msg 3M
        ;;
    esac
done
img=base.raw
compare_resize raw raw-unaligned msg 1048577
img=base.qcow2
compare_resize qcow2 qcow2-unaligned rc 1048577
img=base.qed
compare_resize qed qed-unaligned rc 1048577
img=base.raw
compare_resize raw usage msg 1M 2M
compare_resize raw bad-size msg 12x
exit 0
