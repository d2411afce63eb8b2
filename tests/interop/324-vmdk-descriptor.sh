#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 324-vmdk-descriptor.sh: hand-written VMDK descriptor files, as other tools
# write them (CRLF line ends, comments, blank lines, spaces around '=',
# unknown keys, quoted file names with spaces, several FLAT extents with
# offsets, a sparse extent): libqblock reads them as QEMU does, rewrites only
# the CID on the first write (keeping every other byte), probes them by
# QEMU's rule, and (qblock-img lifting the open policy) follows extent names
# that leave the descriptor's folder as QEMU does.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

head -c 3M /dev/urandom >"data one.bin"
head -c 1M /dev/urandom >two.bin
run "$QEMU_IMG" create -q -f vmdk -o subformat=twoGbMaxExtentSparse sp.vmdk 2M
run "$QEMU_IO" -f vmdk -c "write -P 0x5c 64k 64k" sp.vmdk

printf '%s\r\n' '# Disk DescriptorFile' 'version=1' 'encoding="UTF-8"' 'CID=1234abcd' \
    'parentCID=ffffffff' 'isNativeSnapshot="no"' 'createType="monolithicFlat"' '' \
    '# Extent description' 'RW 4096 FLAT "data one.bin" 2048' 'RW 2048 FLAT "two.bin" 0' \
    'RW 4096 SPARSE "sp-s001.vmdk"' '' '# The Disk Data Base' '#DDB' '' \
    'ddb.adapterType = "lsilogic"' 'ddb.uuid = "60 00 C2 9a 7b"' 'ddb.longContentID = "x"' \
    >crlf.vmdk

# Both read the extents in order: 2 MiB of "data one.bin" from 1 MiB on, two.bin, sp's data.
rm -f ours.raw ref.raw
run qbi convert -f vmdk -O raw crlf.vmdk ours.raw
run "$QEMU_IMG" convert -f vmdk -O raw crlf.vmdk ref.raw
same_content ours.raw ref.raw
{ tail -c +1048577 "data one.bin" | head -c 2M; cat two.bin; } >expect.raw
"$QEMU_IMG" convert -f vmdk -O raw sp.vmdk sp.raw >/dev/null || fail "convert sp.vmdk"
cat sp.raw >>expect.raw
same_content ours.raw expect.raw
run "$QEMU_IMG" map -f vmdk --output=json crlf.vmdk
mv run.out qemu-map.json
run qbi map -f vmdk --output=json crlf.vmdk
same_output "map of crlf.vmdk" qemu-map.json run.out
run qbi info crlf.vmdk
grep -q "^file format: vmdk$" run.out || fail "crlf.vmdk was not probed as vmdk"

# A write renews the CID and changes nothing else in the descriptor.
cp crlf.vmdk before.txt
run qbi write -q -f vmdk -P 0x77 crlf.vmdk 2560k 4096     # two.bin at 512 KiB
grep -v '^CID=' before.txt >a.txt
grep -v '^CID=' crlf.vmdk >b.txt
same_output "descriptor after a write" a.txt b.txt
grep -q $'^CID=[0-9a-f]*\r$' crlf.vmdk || fail "the CID line lost its CRLF"
! grep -q '^CID=1234abcd' crlf.vmdk || fail "the CID was not renewed"
run qbi read -f raw -P 0x77 two.bin 512k 4096
run qbi read -f vmdk -P 0x77 crlf.vmdk 2560k 4096
"$QEMU_IO" -f vmdk -c "read -P 0x77 2560k 4096" crlf.vmdk >qio.out 2>&1
! grep -q "fail" qio.out || fail "qemu-io does not see our write"

# Probing: a blank line before "version=" is not a descriptor (QEMU's rule).
printf '\nversion=1\nCID=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "two.bin" 0\n' >blank.vmdk
run "$QEMU_IMG" info blank.vmdk
grep -q "^file format: raw" run.out || fail "qemu-img probed blank.vmdk as vmdk?"
run qbi info blank.vmdk
grep -q "^file format: raw" run.out || fail "blank.vmdk should probe as raw"
run qbi read -f vmdk -P 0x77 blank.vmdk 512k 4096     # yet it opens when named

# Extent names that leave the folder open as in QEMU: qblock-img lifts the
# library's open policy, which confines them by default (check_int_vmdk
# tests that side).
mkdir -p sub
ln -sf ../two.bin sub/link.bin
for name in "../two.bin" "$PWD/two.bin" "../sub/../two.bin" "link.bin"; do
    printf '%s\n' 'version=1' 'CID=1' 'parentCID=ffffffff' 'createType="monolithicFlat"' \
        "RW 2048 FLAT \"$name\" 0" 'ddb.adapterType = "ide"' >sub/esc.vmdk
    run "$QEMU_IO" -f vmdk -c "read -P 0x77 512k 4096" sub/esc.vmdk
    ! grep -q "fail" run.out || fail "qemu-io cannot read through extent '$name'"
    run qbi read -f vmdk -P 0x77 sub/esc.vmdk 512k 4096
done
# ... but names inside the folder, also in subfolders, are fine.
cp two.bin sub/inner.bin
printf 'version=1\nCID=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "sub/inner.bin" 0\n' >in.vmdk
run qbi read -f vmdk -P 0x77 in.vmdk 512k 4096
echo "324: OK"
