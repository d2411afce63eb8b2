#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 018-info-json.sh: `qblock-img info` prints what qemu-img info 7.2 prints,
# byte for byte, in both output forms and with --backing-chain, for a corpus
# of every format that qemu-img makes with varied options (qcow2 versions,
# cluster sizes, refcount widths, lazy refcounts, extended L2, zstd,
# persistent bitmaps; qed tables; qcow; vdi static and dynamic; vpc fixed,
# dynamic and force_size; vmdk's five subformats, compat6 and a backing
# file; chains of three mixing formats), read by both tools from the same
# files. Where qemu-img has no format-specific section (qed, qcow, vdi, vpc,
# cow), libqblock adds its own to the human output only: that section must
# be there, hold the facts the headers record, and the rest must match.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img

mkq() { run "$QEMU_IMG" create -q "$@"; }

# name, and the -f argument both tools get ("" probes).
corpus=()
add() { corpus+=("$1:$2"); }

mkq -f qcow2 -o compat=0.10 q2-v2.qcow2 64M;                           add q2-v2.qcow2 ""
mkq -f qcow2 -o compat=0.10,cluster_size=4k,refcount_bits=16 q2-v2-4k.qcow2 3G
add q2-v2-4k.qcow2 qcow2
mkq -f qcow2 q2-v3.qcow2 1G;                                           add q2-v3.qcow2 ""
mkq -f qcow2 -o cluster_size=2M,lazy_refcounts=on q2-2m-lazy.qcow2 5G; add q2-2m-lazy.qcow2 ""
mkq -f qcow2 -o refcount_bits=1 q2-rc1.qcow2 16M;                      add q2-rc1.qcow2 ""
mkq -f qcow2 -o refcount_bits=64,cluster_size=512 q2-rc64.qcow2 4M;    add q2-rc64.qcow2 ""
mkq -f qcow2 -o extended_l2=on,cluster_size=128k q2-ext.qcow2 300M;    add q2-ext.qcow2 ""
mkq -f qcow2 -o preallocation=metadata q2-prealloc.qcow2 8M;           add q2-prealloc.qcow2 ""
if "$QEMU_IMG" create -q -f qcow2 -o compression_type=zstd q2-zstd.qcow2 32M 2>/dev/null; then
    add q2-zstd.qcow2 ""
else
    note "qemu-img cannot make zstd qcow2 images: that case is left out"
fi
mkq -f qcow2 q2-bitmaps.qcow2 64M
run "$QEMU_IMG" bitmap --add q2-bitmaps.qcow2 b0
run "$QEMU_IMG" bitmap --add -g 128k --disable q2-bitmaps.qcow2 'second bitmap'
run "$QEMU_IMG" bitmap --add -g 4M q2-bitmaps.qcow2 z
add q2-bitmaps.qcow2 ""
# The same with every bitmap marked in use (a writer that died): walk the
# header extensions to the bitmap directory and set bit 0 of each entry's flags.
be() { od -An -tu1 -j "$2" -N "$3" "$1" | awk '{ for (i = 1; i <= NF; i++) v = v * 256 + $i } END { print v }'; }
cp q2-bitmaps.qcow2 q2-inuse.qcow2
ext=$(be q2-inuse.qcow2 100 4)
while [ "$(be q2-inuse.qcow2 $ext 4)" != 595929205 ]; do   # 0x23852875
    [ "$(be q2-inuse.qcow2 $ext 4)" = 0 ] && fail "q2-inuse.qcow2: no bitmaps extension"
    ext=$((ext + 8 + ($(be q2-inuse.qcow2 $((ext + 4)) 4) + 7) / 8 * 8))
done
entry=$(be q2-inuse.qcow2 $((ext + 24)) 8)
for i in 1 2 3; do
    flags=$(be q2-inuse.qcow2 $((entry + 15)) 1)
    printf "\\$(printf %03o $((flags | 1)))" |
        dd of=q2-inuse.qcow2 bs=1 seek=$((entry + 15)) conv=notrunc status=none
    entry=$((entry + (24 + $(be q2-inuse.qcow2 $((entry + 20)) 4) +
                      $(be q2-inuse.qcow2 $((entry + 18)) 2) + 7) / 8 * 8))
done
add q2-inuse.qcow2 ""
# The corrupt bit (incompatible feature bit 1, in the header's byte 79).
mkq -f qcow2 q2-corrupt.qcow2 16M
printf '\002' | dd of=q2-corrupt.qcow2 bs=1 seek=79 conv=notrunc status=none
add q2-corrupt.qcow2 ""

mkq -f qed qed-default.qed 100M;                                       add qed-default.qed ""
mkq -f qed -o table_size=8,cluster_size=128k qed-t8.qed 1G;            add qed-t8.qed ""
mkq -f qcow qcow-default.qcow 100M;                                    add qcow-default.qcow ""
mkq -f vdi -o static=on vdi-static.vdi 5M;                             add vdi-static.vdi ""
mkq -f vdi vdi-dynamic.vdi 100M;                                       add vdi-dynamic.vdi ""
mkq -f vpc -o subformat=fixed vpc-fixed.vpc 10M;                       add vpc-fixed.vpc vpc
mkq -f vpc -o subformat=dynamic vpc-dynamic.vpc 100M;                  add vpc-dynamic.vpc ""
mkq -f vpc -o force_size=on vpc-force.vpc 100M;                        add vpc-force.vpc ""
for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat \
           streamOptimized; do
    mkq -f vmdk -o subformat=$sub vmdk-$sub.vmdk 3G;                   add vmdk-$sub.vmdk ""
done
mkq -f vmdk -o compat6=on vmdk-compat6.vmdk 1G;                        add vmdk-compat6.vmdk ""
mkq -f vmdk -b vmdk-compat6.vmdk -F vmdk vmdk-child.vmdk;              add vmdk-child.vmdk ""

# Chains of three, mixing formats, some with data in every layer.
mkq -f vmdk -o subformat=twoGbMaxExtentSparse c1-base.vmdk 2200M
mkq -f qed -b c1-base.vmdk -F vmdk c1-mid.qed
mkq -f qcow2 -b c1-mid.qed -F qed c1-top.qcow2;                        add c1-top.qcow2 ""
truncate -s 64M c2-base.raw
mkq -f qcow -b c2-base.raw -F raw c2-mid.qcow
mkq -f qcow2 -o compat=0.10 -b c2-mid.qcow -F qcow c2-top.qcow2;       add c2-top.qcow2 ""
mkq -f vpc c3-base.vpc 64M
mkq -f qcow2 -b c3-base.vpc -F vpc c3-mid.qcow2
mkq -f qed -b c3-mid.qcow2 -F qcow2 c3-top.qed;                        add c3-top.qed ""
"$QEMU_IO" -c "write -P 0x11 0 64k" -f qcow2 c1-top.qcow2 >/dev/null ||
    fail "qemu-io could not write c1-top.qcow2"
"$QEMU_IO" -c "write -P 0x22 1M 64k" -f qed c1-mid.qed >/dev/null ||
    fail "qemu-io could not write c1-mid.qed"

# Those qemu-img has no format-specific information for.
no_qemu_section() {
    case "$1" in
    *.qed|*.qcow|*.vdi|*.vpc|*.cow) return 0 ;;
    *) return 1 ;;
    esac
}

# compare NAME FMT PATH ARGS...: qemu-img and qblock-img print the same.
compare() {
    local name=$1 fmt=$2 img=$3 fargs=()
    shift 3
    [ -n "$fmt" ] && fargs=(-f "$fmt")
    run "$QEMU_IMG" info "${fargs[@]}" "$@" "$img"
    mv "$TEST_DIR/run.out" qemu.txt
    run qbi info "${fargs[@]}" "$@" "$img"
    mv "$TEST_DIR/run.out" ours.txt
    if [[ " $* " != *" --output=json "* ]]; then
        # libqblock's own section, where qemu-img has none, ends each image's text.
        awk '/^Format specific information:$/ { skip = 1; next }
             /^image: / { skip = 0 } !skip' ours.txt >ours-cut.txt
        if no_qemu_section "$name" && [[ " $* " != *" --backing-chain "* ]]; then
            grep -q '^Format specific information:$' ours.txt ||
                fail "info $img: no 'Format specific information' section"
            mv ours-cut.txt ours.txt
        elif [[ " $* " == *" --backing-chain "* ]]; then
            # A chain mixes formats with and without qemu's section: compare
            # image by image, each image's own section decided by its format.
            split_chain qemu.txt qemu-part
            split_chain ours.txt ours-part
            local i=0
            while [ -e "qemu-part.$i" ] || [ -e "ours-part.$i" ]; do
                local f
                f=$(sed -n 's/^file format: //p' "ours-part.$i")
                case "$f" in
                qcow2|vmdk|raw) ;;
                *) grep -q '^Format specific information:$' "ours-part.$i" ||
                       fail "info --backing-chain $img: image $i ($f) has no specific section"
                   sed -i '/^Format specific information:$/,$d' "ours-part.$i" ;;
                esac
                same_output "info $* $img, image $i" "qemu-part.$i" "ours-part.$i"
                i=$((i + 1))
            done
            return
        fi
    fi
    same_output "info ${fargs[*]} $* $img" qemu.txt ours.txt
}

# split_chain FILE PREFIX: the human --backing-chain text, one file per image
# (the blank line between images dropped).
split_chain() {
    rm -f "$2".*
    awk -v p="$2" '/^image: / { n++ } n { f = p "." (n - 1); if ($0 != "" ) print >> f }' "$1"
}

for entry in "${corpus[@]}"; do
    img=${entry%%:*}
    fmt=${entry#*:}
    compare "$img" "$fmt" "$img"
    compare "$img" "$fmt" "$img" --output=json
    compare "$img" "$fmt" "$img" --output=json --backing-chain
    compare "$img" "$fmt" "$img" --backing-chain
done

# Paths with folders and absolute paths show up in vmdk extents and backing names.
mkdir -p sub/dir
cp vmdk-twoGbMaxExtentFlat*.vmdk vmdk-monolithicSparse.vmdk sub/dir/
compare sub/dir/vmdk-twoGbMaxExtentFlat.vmdk "" sub/dir/vmdk-twoGbMaxExtentFlat.vmdk --output=json
compare vmdk-twoGbMaxExtentFlat.vmdk "" "$TEST_DIR/vmdk-twoGbMaxExtentFlat.vmdk"
compare sub/dir/vmdk-monolithicSparse.vmdk "" "$TEST_DIR/sub/dir/vmdk-monolithicSparse.vmdk" \
    --output=json
compare c1-top.qcow2 "" "$TEST_DIR/c1-top.qcow2" --output=json --backing-chain

# libqblock's own facts, checked against the headers' bytes.
hdr_u32be() { od -An -tu1 -j "$2" -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'; }
hdr_u32le() { od -An -tu4 --endian=little -j "$2" -N4 "$1" | tr -d ' '; }
section() { qbi info "$@" | sed -n '/^Format specific information:$/,$p'; }

section qed-t8.qed >sec.txt
grep -qx '    cluster size: 131072' sec.txt && grep -qx '    table size: 8' sec.txt &&
    grep -qx '    need check: false' sec.txt || { cat sec.txt >&2; fail "qed-t8.qed facts"; }
section c1-mid.qed >sec.txt
grep -qx '    backing file: c1-base.vmdk' sec.txt || { cat sec.txt >&2; fail "c1-mid.qed backing"; }
section qcow-default.qcow >sec.txt
grep -qx "    cluster bits: $(od -An -tu1 -j32 -N1 qcow-default.qcow | tr -d ' ')" sec.txt &&
    grep -qx "    l2 bits: $(od -An -tu1 -j33 -N1 qcow-default.qcow | tr -d ' ')" sec.txt &&
    grep -qx '    encryption: none' sec.txt || { cat sec.txt >&2; fail "qcow facts"; }
for v in vdi-static:static:5 vdi-dynamic:dynamic:0; do
    IFS=: read -r n type alloc <<<"$v"
    section $n.vdi >sec.txt
    grep -qx "    image type: $type" sec.txt &&
        grep -qx "    blocks allocated: $alloc" sec.txt &&
        grep -qx "    blocks total: $(hdr_u32le $n.vdi $((0x180)))" sec.txt &&
        grep -qx "    uuid: $(od -An -tx1 -j $((0x188)) -N16 $n.vdi | tr -d ' \n' |
                 sed 's/\(.\{8\}\)\(.\{4\}\)\(.\{4\}\)\(.\{4\}\)/\1-\2-\3-\4-/')" sec.txt ||
        { cat sec.txt >&2; fail "$n.vdi facts"; }
done
size=$(stat -c %s vpc-fixed.vpc)
section -f vpc vpc-fixed.vpc >sec.txt
grep -qx '    subformat: fixed' sec.txt && grep -qx '    creator app: qemu' sec.txt &&
    grep -qx "    geometry (c/h/s): $(od -An -tu1 -j $((size - 512 + 56)) -N4 vpc-fixed.vpc |
              awk '{ print $1 * 256 + $2 "/" $3 "/" $4 }')" sec.txt &&
    grep -qx '    size from: geometry' sec.txt || { cat sec.txt >&2; fail "vpc-fixed facts"; }
section vpc-force.vpc >sec.txt
grep -qx '    subformat: dynamic' sec.txt && grep -qx '    creator app: qem2' sec.txt &&
    grep -qx '    block size: 2097152' sec.txt &&
    grep -qx '    size from: footer' sec.txt || { cat sec.txt >&2; fail "vpc-force facts"; }

# cow: qemu-img 7.2 has no cow driver, so UML's tools make the image and the
# facts are checked against its header (version 3: mtime at byte 8).
if command -v uml_mkcow >/dev/null; then
    truncate -s 4M cow-base.raw
    run uml_mkcow -f uml.cow cow-base.raw
    section uml.cow >sec.txt
    grep -qx "    version: $(hdr_u32be uml.cow 4)" sec.txt &&
        grep -qx "    backing file: $TEST_DIR/cow-base.raw" sec.txt &&
        grep -qx "    backing file mtime: $(hdr_u32be uml.cow 8)" sec.txt &&
        grep -qx "    backing file mtime: $(stat -c %Y cow-base.raw)" sec.txt &&
        grep -qx '    sector size: 512' sec.txt || { cat sec.txt >&2; fail "uml.cow facts"; }
    # The JSON has no format-specific object for cow (qemu-img has none for any such format).
    qbi info --output=json uml.cow | grep -q format-specific && fail "cow JSON has format-specific"
else
    note "uml_mkcow is not installed: the cow case is left out"
fi
echo "018: ${#corpus[@]} images compared"
