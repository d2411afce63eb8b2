#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 008-errors.sh: every way of calling qblock-img wrongly (missing files, bad
# sizes, bad options and option values, unknown commands and formats,
# out-of-range requests, bad patterns) ends with a non-zero status, a
# "qblock-img: ..." message on stderr and no crash, and with the status
# qemu-img gives where qemu-img has the same command. Standard output (the
# golden output) lists the statuses.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img

sparse_file img.raw 1M
mkdir -p folder

# expect_error STATUS ARGS...: qblock-img ARGS fails with STATUS, cleanly.
expect_error() {
    local want=$1 rc=0
    shift
    qbi "$@" >out.txt 2>err.txt || rc=$?
    [ $rc -gt 128 ] && fail "crashed (signal $((rc - 128))): qblock-img $*"
    [ $rc -eq "$want" ] || { cat err.txt >&2; fail "exit status $rc, not $want: qblock-img $*"; }
    grep -q "^qblock-img: \|^$(basename "$QBLOCK_IMG"): " err.txt ||
        { cat err.txt >&2; fail "no error message: qblock-img $*"; }
    echo "$rc: $*"
}

# like_qemu ARGS...: qblock-img fails cleanly with the status qemu-img gives.
like_qemu() {
    local rc=0
    "$QEMU_IMG" "$@" >/dev/null 2>&1 || rc=$?
    [ $rc -ne 0 ] || fail "qemu-img $* succeeded; the test expects an error"
    expect_error $rc "$@"
}

echo "== no command, unknown command, bad global option"
expect_error 1
expect_error 1 frobnicate img.raw
expect_error 1 --frobnicate
expect_error 1 -Z info img.raw

echo "== missing files"
like_qemu info missing.raw
like_qemu info -f raw missing.raw
like_qemu map missing.raw
like_qemu convert -O raw missing.raw out.raw
like_qemu compare missing.raw img.raw
like_qemu compare img.raw missing.raw
like_qemu bench -c 1 missing.raw
expect_error 1 read missing.raw 0 1
expect_error 1 write missing.raw 0 1
expect_error 1 discard missing.raw 0 1
[ -e missing.raw ] && fail "a command made the missing file"
like_qemu info folder
like_qemu create -f raw nosuchfolder/x.raw 1M

echo "== bad sizes"
for size in 1x -- 1.5 1.5b 1MB .5M 1e3 "" 99999999999999999999 8E 16E 0x; do
    if [ "$size" = -- ]; then
        like_qemu create -f raw x.raw -- -5
    else
        like_qemu create -f raw x.raw "$size"
    fi
done
like_qemu create -f raw x.raw
like_qemu create -f raw -o size=1M x.raw 1M
like_qemu map --start-offset=abc img.raw
like_qemu map --max-length=-1 img.raw
expect_error 1 read img.raw 1x 1
expect_error 1 read img.raw 0 8E
expect_error 1 write img.raw -- -1 1

echo "== bad options and option values"
for cmd in create info map convert compare bench read write discard; do
    expect_error 1 "$cmd" -Z img.raw
done
like_qemu create -f raw -o foo=bar x.raw 1M
like_qemu create -f raw -o preallocation=bad x.raw 1M
like_qemu create -f raw -o size=1M, x.raw
like_qemu create -f raw -b img.raw x.raw 1M
like_qemu create -f nosuchformat x.raw 1M
like_qemu create -f
like_qemu info --output=xml img.raw
like_qemu info --output
like_qemu info img.raw img.raw
like_qemu info -f nosuchformat img.raw
like_qemu map --output=yaml img.raw
like_qemu convert -O nosuchformat img.raw out.raw
like_qemu convert -O raw -o foo=bar img.raw out.raw
like_qemu convert img.raw
cp img.raw target.raw
# A target that is also a source would be truncated before being read.
head -c 64k /dev/urandom >data.raw
cp data.raw data.bak
like_qemu convert -O raw data.raw data.raw
ln -f data.raw data-link.raw
expect_error 1 convert -O raw data.raw data-link.raw
same_content data.raw data.bak
like_qemu convert -n -o preallocation=full -O raw img.raw target.raw
like_qemu convert -t nosuchmode img.raw out.raw
like_qemu compare img.raw
like_qemu compare -T nosuchmode img.raw img.raw
like_qemu bench -c x img.raw
like_qemu bench -c -1 img.raw
like_qemu bench -d x img.raw
like_qemu bench -s x img.raw
like_qemu bench -s 3G img.raw
like_qemu bench -S x img.raw
like_qemu bench -o x img.raw
like_qemu bench --pattern=300 img.raw
like_qemu bench -t nosuchmode img.raw
like_qemu bench -i nosuchaio img.raw
like_qemu bench -c 1 --flush-interval=2 img.raw
like_qemu bench -c 1 -w -d 4 --flush-interval=2 img.raw
expect_error 1 bench -d 0 img.raw
for pattern in 0x1234 256 -1 abc ""; do
    expect_error 1 read -P "$pattern" img.raw 0 1
    expect_error 1 write -P "$pattern" img.raw 0 1
done
expect_error 1 write -z -P 1 img.raw 0 1
expect_error 1 read img.raw 0
expect_error 1 write img.raw 0 1 2

echo "== out of range requests"
expect_error 1 read -f raw img.raw 1M 1
expect_error 1 read -f raw img.raw 0 1048577
expect_error 1 read -f raw img.raw 1E 1
expect_error 1 write -f raw img.raw 1048575 2
expect_error 1 write -f raw img.raw 2M 1
expect_error 1 discard -f raw img.raw 1M 512
like_qemu bench -c 1 -f raw -o 2M img.raw
like_qemu bench -c 1 -f raw -s 2M img.raw
like_qemu bench -c 2 -w -f raw -s 1M -S 512k img.raw
# Nothing was written by the failed requests.
head -c 1M /dev/zero >zeros.raw
run "$QEMU_IMG" compare -f raw -F raw img.raw zeros.raw
echo "done"
