#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 501-hostile-chains.sh: images that attack the open path through what they
# name: a raw file that only probing would guess, self-referencing and
# mutually referencing backing chains, a chain deeper than the default
# limit, and backing files that are a device, a /proc file, a link out of
# the image's folder, or a ".." name. The library's default policy refuses
# each with the exact error (tests/helpers/qbpolicy opens through the
# public API); the opt-out lets the legitimate ones open; qblock-img,
# which behaves like qemu-img, refuses the loops as qemu-img does.

source "$SRCDIR/tests/interop/common.sh"
source "$SRCDIR/tests/interop/hostile-common.sh"

mk() {
    "$QEMU_IMG" create -q "$@" >/dev/null 2>&1 || fail "qemu-img create $*"
}

# rename_backing FILE OLD NEW: rewrite the recorded backing name in place
# (same length): qemu-img refuses to create a self-reference directly.
rename_backing() {
    python3 -c 'import sys
p, a, b = sys.argv[1:]
d = open(p, "rb").read()
assert len(a) == len(b) and d.count(a.encode()) == 1
open(p, "wb").write(d.replace(a.encode(), b.encode()))' "$@" || fail "could not patch $1"
}

echo "== a raw file is not guessed"
mk -f raw plain.img 1M
pol plain.img
pol -f raw plain.img
pol -r plain.img

echo "== a self-referencing chain"
mk -f qcow2 -u -o backing_file=SELF.qcow2,backing_fmt=qcow2 self.qcow2 1M
rename_backing self.qcow2 SELF.qcow2 self.qcow2
pol self.qcow2
run_fails qbi info --backing-chain self.qcow2
run_status 1 "$QEMU_IMG" info --backing-chain self.qcow2

echo "== mutually referencing images"
mk -f qcow2 -u -o backing_file=b.qcow2,backing_fmt=qcow2 a.qcow2 1M
mk -f qcow2 -u -o backing_file=A.qcow2,backing_fmt=qcow2 b.qcow2 1M
rename_backing b.qcow2 A.qcow2 a.qcow2
pol a.qcow2
run_fails qbi read a.qcow2 0 512

echo "== a chain of 17 backing files"
mk -f qcow2 l0.qcow2 1M
for i in $(seq 1 17); do
    mk -f qcow2 -o "backing_file=l$((i - 1)).qcow2,backing_fmt=qcow2" "l$i.qcow2"
done
pol l17.qcow2
pol -d 17 l17.qcow2
pol l16.qcow2
run qbi read l17.qcow2 0 512

echo "== a device as backing file"
mk -f qcow2 -u -o backing_file=/dev/zero,backing_fmt=raw dev.qcow2 1M
pol dev.qcow2
pol -A /dev dev.qcow2
pol -a dev.qcow2

echo "== a /proc file behind a link in the image's folder"
ln -s /proc/self/environ environ.raw
mk -f qcow2 -u -o backing_file=environ.raw,backing_fmt=raw proc.qcow2 1M
pol proc.qcow2

echo "== a backing file above the image's folder"
mkdir -p inner outside
mk -f raw outside/base.raw 1M
mk -f qcow2 -u -o backing_file=../outside/base.raw,backing_fmt=raw inner/up.qcow2 1M
pol inner/up.qcow2
pol -A outside inner/up.qcow2
run qbi read inner/up.qcow2 0 512

echo "== a network location as backing file"
# Without a policy that allows any path, an image cannot make the library
# connect to a server: nothing listens on port 9 (discard), and the policy
# refuses before any connection is tried.
mk -f qcow2 -u -o backing_file=nbd://127.0.0.1:9/x,backing_fmt=raw net.qcow2 1M
pol net.qcow2
mk -f qcow2 -u -o "backing_file=nbd:unix:$PWD/no.sock,backing_fmt=raw" sock.qcow2 1M
pol sock.qcow2
