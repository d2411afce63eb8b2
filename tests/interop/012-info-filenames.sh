#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 012-info-filenames.sh: file names that JSON must escape (quotes,
# backslashes, tabs, control characters, non-ASCII UTF-8, invalid UTF-8)
# come out of `qblock-img info --output=json` exactly as qemu-img writes
# them, and the human output and map work on such names too.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img

names=(
    'plain.raw'
    'with space.raw'
    'quote"in.raw'
    'back\slash.raw'
    "$(printf 'tab\there.raw')"
    "$(printf 'ctl\001\037\177.raw')"
    "$(printf 'caf\303\251-\342\202\254-\360\237\230\200.raw')"
    "$(printf 'bad\377utf8\300\200.raw')"
    'comma,name.raw'
    "$(printf 'new\nline.raw')"
    "$(printf 'bs\bff\fcr\r.raw')"
    "$(printf 'u\302\200\302\237\357\267\260\364\217\277\275.raw')"
    "$(printf 'trunc\342\202x\342x\360\237\230.raw')"
    "$(printf 'surrogate\355\240\200-big\364\220\200\200.raw')"
    "$(printf 'overlong\340\200\200\301\277\360\200\200\200.raw')"
    "$(printf 'nonchar\357\277\277\357\277\276\357\267\220\360\237\277\277.raw')"
    "$(printf 'long\370\210\200\200\200\374\200\200\200\200\200\376\200.raw')"
    "$(printf 'stray\200\200\303.raw')"
)
mkdir -p 'a folder'
for name in "${names[@]}"; do
    for path in "$name" "a folder/$name"; do
        sparse_file "$path" 1M
        for out in json human; do
            run "$QEMU_IMG" info -f raw --output=$out "$path"
            mv "$TEST_DIR/run.out" qemu.txt
            run qbi info -f raw --output=$out "$path"
            same_output "info --output=$out on '$path'" qemu.txt "$TEST_DIR/run.out"
        done
        run "$QEMU_IMG" map -f raw "$path"
        mv "$TEST_DIR/run.out" qemu.txt
        run qbi map -f raw "$path"
        same_output "map on '$path'" qemu.txt "$TEST_DIR/run.out"
    done
    qbi info --output=json "$name" | grep '"filename"'
done
