#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 080-aio-glib-example.sh: examples/aio-glib reads a whole image with
# asynchronous requests from a GLib main loop; the SHA-256 it prints must be
# that of the image's content as qemu-img converts it to raw, for a qcow2
# image written by qemu-io (allocated clusters, holes, unaligned edges) and
# for a raw image not a multiple of the example's 256 KiB chunk.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

BUILDDIR=${BUILDDIR:-$SRCDIR}
example=$BUILDDIR/examples/aio-glib
[ -x "$example" ] || fail "$example was not built (make build-tests builds it)"

"$QEMU_IMG" create -q -f qcow2 img.qcow2 9M || fail "qemu-img create"
"$QEMU_IO" -f qcow2 -c 'write -P 0x11 0 300k' -c 'write -P 0x22 1000001 77777' \
    -c 'write -P 0x33 8M 1M' img.qcow2 >/dev/null || fail "qemu-io writes"
sparse_file img.raw 1234567
ref_write img.raw 5 300000 0x5a

# qcow2 is probed; raw must be named (the default open policy does not guess it).
for img in img.qcow2 img.raw; do
    fmt=
    [ "$img" = img.raw ] && fmt=raw
    rc=0
    "$example" "$img" $fmt >ours.txt 2>err.txt || rc=$?
    if [ $rc -eq 77 ]; then
        [ "${CI:-}" = true ] && fail "examples/aio-glib was built without GLib"
        skip "examples/aio-glib was built without GLib (Debian package libglib2.0-dev)"
    fi
    check_status 0 $rc "$example" "$img" $fmt
    "$QEMU_IMG" convert -O raw "$img" ref.raw || fail "qemu-img convert $img"
    echo "$(sha256sum <ref.raw | cut -d' ' -f1)  $(stat -c %s ref.raw)" >want.txt
    same_output "checksum of $img" want.txt ours.txt
    echo "$img: same content"
done
