#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 109-qcow2-snapshot-tool.sh: `qblock-img snapshot` against `qemu-img
# snapshot` 7.2, both ways. Snapshots taken by either tool are listed and
# applied by the other with the content restored byte for byte, deleted by
# either, and `qemu-img check` is clean (no leak) after every step; the -l
# table and info's snapshot list (human and JSON) equal qemu-img's on the
# same image, including VM state sizes, VM clocks and icounts hand-patched
# into the table (nothing here can run a VM to save its state: no
# qemu-system, and qemu-io cannot); errors and exit statuses equal
# qemu-img's. Golden output: the tables, with dates patched to fixed values.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# Both tools print dates in local time: make it the same, fixed zone.
export TZ=UTC

# clean_check IMG WHAT: qemu-img check finds nothing at all (status 0: no leak either).
clean_check() {
    local rc=0
    "$QEMU_IMG" check "$1" >check.out 2>&1 || rc=$?
    if [ $rc -ne 0 ] || ! grep -q "No errors were found on the image." check.out; then
        sed 's/^/    /' check.out >&2
        fail "$2: qemu-img check is not clean (status $rc)"
    fi
}

# same_as_raw IMG RAW WHAT: IMG reads (through qemu-img) exactly as RAW.
same_as_raw() {
    "$QEMU_IMG" compare -q -f qcow2 -F raw "$1" "$2" || fail "$3: $1 does not read as $2"
}

# both_say WHAT ARGS...: qblock-img and qemu-img print the same (stdout and
# stderr, the tool's name aside) and exit with the same status.
ours_name=$(basename "$QBLOCK_IMG")
both_say() {
    local what=$1 qrc=0 orc=0 qerr oerr
    shift
    "$QEMU_IMG" "$@" >q.out 2>q.err || qrc=$?
    qbi "$@" >o.out 2>o.err || orc=$?
    [ $orc -gt 128 ] && fail "$what: qblock-img crashed: $*"
    [ $orc -eq $qrc ] || { cat o.err >&2; fail "$what: status $orc, qemu-img's $qrc: $*"; }
    qerr=$(<q.err) oerr=$(<o.err)
    if [ "${qerr//qemu-img/qblock-img}" != "${oerr//$ours_name/qblock-img}" ]; then
        diff -u q.err o.err >&2
        fail "$what: stderr of $* differs"
    fi
    [ "$(<q.out)" = "$(<o.out)" ] || same_output "$what: stdout of $*" q.out o.out
    echo "$what: status $orc"
}

# strip_format_specific: drop the "format-specific" part of info's output
# (human or JSON), which this test does not cover.
strip_format_specific() {
    awk '
        skip_json && $0 ~ ("^" ind "},?$") { skip_json = 0; next }
        skip_json { next }
        /"format-specific": \{/ { ind = $0; sub(/".*/, "", ind); skip_json = 1; next }
        /^Format specific information:$/ { skip_human = 1; next }
        skip_human && /^ / { next }
        { skip_human = 0; print }
    '
}

# same_info IMG: qblock-img info equals qemu-img info, human and JSON, chain or not.
same_info() {
    local o
    for o in "" "--output=json" "--backing-chain --output=json"; do
        # shellcheck disable=SC2086
        run "$QEMU_IMG" info $o "$1"
        strip_format_specific <run.out >qinfo.txt
        # shellcheck disable=SC2086
        run qbi info $o "$1"
        strip_format_specific <run.out >oinfo.txt
        same_output "info $o of $1" qinfo.txt oinfo.txt
    done
}

# same_list IMG: the -l tables are equal.
same_list() {
    run "$QEMU_IMG" snapshot -l "$1"
    mv run.out qlist.txt
    run qbi snapshot -l "$1"
    same_output "snapshot -l of $1" qlist.txt run.out
}

# be FILE OFFSET BYTES: the big-endian number at OFFSET.
be() {
    echo $((16#$(od -An -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n')))
}

# put_be FILE OFFSET BYTES VALUE: store VALUE big-endian at OFFSET.
put_be() {
    local hex
    hex=$(printf "%0$(($3 * 2))x" "$4")
    hex=${hex: -$(($3 * 2))}
    # shellcheck disable=SC2059
    printf "$(sed 's/../\\x&/g' <<<"$hex")" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none || fail "cannot patch $1"
}

# entries FILE: the file offset of each snapshot table entry.
entries() {
    local off n i extra idl namel
    off=$(be "$1" 64 8)
    n=$(be "$1" 60 4)
    for ((i = 0; i < n; i++)); do
        echo "$off"
        idl=$(be "$1" $((off + 12)) 2)
        namel=$(be "$1" $((off + 14)) 2)
        extra=$(be "$1" $((off + 36)) 4)
        off=$(( (off + 40 + extra + idl + namel + 7) / 8 * 8 ))
    done
}

# fix_dates FILE: every entry's date becomes 2020-01-0N 12:34:56.N.
fix_dates() {
    local e i=1
    for e in $(entries "$1"); do
        put_be "$1" $((e + 16)) 4 $((1577882096 + i * 86400))
        put_be "$1" $((e + 20)) 4 $((i * 1000))
        i=$((i + 1))
    done
}

# snapshot_round CASE OPTS: snapshots made by each tool, used by the other.
snapshot_round() {
    local name=$1 opts=$2
    rm -f img.qcow2 ./*.raw
    run "$QEMU_IMG" create -q -f qcow2 -o "$opts" img.qcow2 8M
    "$QEMU_IO" -f qcow2 -c 'write -P 0x11 0 1M' -c 'write -c -P 0x12 2M 2M' \
        -c 'write -z 3M 64k' -c 'write -P 0x13 7M 4k' img.qcow2 >/dev/null || fail "$name: qemu-io"
    run "$QEMU_IMG" convert -O raw img.qcow2 ours1.raw

    # Ours takes one, qemu-img lists and applies it.
    run qbi snapshot -c ours1 img.qcow2
    [ -s run.out ] && fail "$name: snapshot -c printed something"
    clean_check img.qcow2 "$name: after qblock-img snapshot -c"
    "$QEMU_IO" -f qcow2 -c 'write -P 0x21 512k 1M' -c 'write -P 0x22 5M 64k' img.qcow2 \
        >/dev/null || fail "$name: qemu-io"
    run "$QEMU_IMG" convert -O raw img.qcow2 theirs1.raw
    # qemu-img takes one, ours lists and applies it.
    run "$QEMU_IMG" snapshot -c theirs1 img.qcow2
    clean_check img.qcow2 "$name: after qemu-img snapshot -c"
    "$QEMU_IO" -f qcow2 -c 'write -P 0x31 0 64k' -c 'write -P 0x32 6M 1M' img.qcow2 \
        >/dev/null || fail "$name: qemu-io"
    run qbi snapshot -q -c "" img.qcow2
    clean_check img.qcow2 "$name: after an empty name"
    run "$QEMU_IMG" convert -O raw img.qcow2 empty.raw

    same_list img.qcow2
    [ "$name" = "$info_case" ] && same_info img.qcow2
    grep -q "^1 *ours1 " qlist.txt || fail "$name: qemu-img does not list ours1 as id 1"

    run "$QEMU_IMG" snapshot -a ours1 img.qcow2
    same_as_raw img.qcow2 ours1.raw "$name: qemu-img -a ours1"
    clean_check img.qcow2 "$name: after qemu-img -a ours1"
    run qbi snapshot -a theirs1 img.qcow2
    same_as_raw img.qcow2 theirs1.raw "$name: qblock-img -a theirs1"
    clean_check img.qcow2 "$name: after qblock-img -a theirs1"
    run qbi snapshot -a 1 img.qcow2
    same_as_raw img.qcow2 ours1.raw "$name: qblock-img -a 1"
    clean_check img.qcow2 "$name: after qblock-img -a 1"
    run qbi snapshot -a 3 img.qcow2
    same_as_raw img.qcow2 empty.raw "$name: qblock-img -a 3"
    clean_check img.qcow2 "$name: after qblock-img -a 3"

    # Deletions by either tool (qemu-img -d takes a name, never an id).
    run qbi snapshot -d theirs1 img.qcow2
    clean_check img.qcow2 "$name: after qblock-img -d theirs1"
    run "$QEMU_IMG" snapshot -d ours1 img.qcow2
    clean_check img.qcow2 "$name: after qemu-img -d ours1"
    same_as_raw img.qcow2 empty.raw "$name: current content after the deletions"
    fix_dates img.qcow2
    same_list img.qcow2
    cat qlist.txt
    run qbi snapshot -d "" img.qcow2
    clean_check img.qcow2 "$name: after qblock-img -d ''"
    same_list img.qcow2
    [ -s qlist.txt ] && fail "$name: the list is not empty at the end"
    same_as_raw img.qcow2 empty.raw "$name: current content at the end"
    echo "$name: round trip done, check clean at every step"
}

echo "== round trips"
# info is compared in one case (and on the images below): it does not depend on the layout.
info_case="v3, 4k clusters"
snapshot_round "v2, 64k clusters" "compat=0.10"
snapshot_round "v3, 4k clusters" "compat=1.1,cluster_size=4096"
snapshot_round "v3, 2M clusters" "compat=1.1,cluster_size=2M"

echo "== VM state, VM clock and icount (patched into the table)"
rm -f vm.qcow2
run "$QEMU_IMG" create -q -f qcow2 vm.qcow2 4M
run "$QEMU_IMG" snapshot -c qemu-made vm.qcow2
run qbi snapshot -c ours vm.qcow2
run qbi snapshot -c "a rather long snapshot name that pushes the columns" vm.qcow2
run qbi create -q -f qcow2 -b vm.qcow2 -F qcow2 top.qcow2
run qbi snapshot -c top-snap top.qcow2
fix_dates vm.qcow2
fix_dates top.qcow2
e=($(entries vm.qcow2))
# Entry 1: 1.5 MiB of VM state (both size fields), clock 1:02:03.456, icount 12345.
put_be vm.qcow2 $((e[0] + 24)) 8 3723456789000
put_be vm.qcow2 $((e[0] + 32)) 4 1572864
put_be vm.qcow2 $((e[0] + 40)) 8 1572864
put_be vm.qcow2 $((e[0] + 56)) 8 12345
# Entry 2: 5 GiB of VM state (over 32 bits: the 32-bit field is saturated
# only in the extra data's 64-bit field), 100 hours of VM clock.
put_be vm.qcow2 $((e[1] + 24)) 8 360000001000000
put_be vm.qcow2 $((e[1] + 32)) 4 $((0xffffffff))
put_be vm.qcow2 $((e[1] + 40)) 8 5368709120
same_list vm.qcow2
cat qlist.txt
same_info vm.qcow2
same_info top.qcow2
run qbi info --output=json vm.qcow2
grep -q '"vm-state-size": 5368709120' run.out || fail "the 64-bit VM state size is not shown"

echo "== errors, as qemu-img gives them"
rm -f e.qcow2 e.raw
run "$QEMU_IMG" create -q -f qcow2 e.qcow2 1M
run "$QEMU_IMG" snapshot -c s e.qcow2
cp e.qcow2 e-before.qcow2
both_say "unknown snapshot" snapshot -a nope e.qcow2
both_say "unknown snapshot" snapshot -d nope e.qcow2
both_say "unknown id" snapshot -d 2 e.qcow2
both_say "delete by id" snapshot -d 1 e.qcow2
cmp -s e.qcow2 e-before.qcow2 || fail "a failed command changed the image"
both_say "no action" snapshot e.qcow2
both_say "two actions" snapshot -l -c x e.qcow2
both_say "same action twice" snapshot -c x -c y e.qcow2
both_say "no file" snapshot -l
both_say "two files" snapshot -l e.qcow2 e.qcow2
both_say "missing argument" snapshot -c
both_say "bad option" snapshot -x e.qcow2
both_say "force-share with -c" snapshot -U -c x e.qcow2
both_say "force-share with -l" snapshot -U -l e.qcow2
both_say "quiet list" snapshot -q -l e.qcow2
run_fails qbi snapshot -l missing.qcow2
rc=0; "$QEMU_IMG" snapshot -l missing.qcow2 2>/dev/null || rc=$?
[ $rc -eq 1 ] || fail "qemu-img snapshot -l of a missing file: status $rc"
echo "missing file: status 1"
# A long name is cut to 255 bytes, silently, as qemu-img cuts it.
long=$(printf 'n%.0s' {1..300})
cp e-before.qcow2 e.qcow2
run "$QEMU_IMG" snapshot -c "$long" e.qcow2
run qbi snapshot -c "$long" e.qcow2
same_list e.qcow2
[ "$(grep -c " ${long:0:255} " qlist.txt)" = 2 ] || fail "long names are not cut to 255 bytes"
echo "long name: cut to 255 bytes"

# Formats without snapshots (the probed-raw warning included).
run "$QEMU_IMG" create -q -f raw e.raw 1M
# Every driver without snapshots answers alike in qemu-img; three of them are enough.
for f in vmdk qcow; do
    run "$QEMU_IMG" create -q -f $f e.$f 1M
done
for f in raw vmdk qcow; do
    for a in -l "-c x" "-a x" "-d x"; do
        # shellcheck disable=SC2086
        both_say "$f" snapshot $a e.$f
    done
done

# A file this user cannot write: opening it fails as with qemu-img.
cp e-before.qcow2 ro.qcow2
chmod 444 ro.qcow2
as_user=()
if [ "$(id -u)" = 0 ]; then
    if command -v setpriv >/dev/null; then
        chmod 755 "$TEST_DIR"
        as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    fi
fi
if [ "$(id -u)" != 0 ] || [ ${#as_user[@]} -gt 0 ]; then
    for a in "-c x" "-a s" "-d s" "-l"; do
        qrc=0; orc=0
        # shellcheck disable=SC2086
        "${as_user[@]}" "$QEMU_IMG" snapshot $a ro.qcow2 >q.out 2>q.err || qrc=$?
        # shellcheck disable=SC2086
        "${as_user[@]}" env LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}" "$QBLOCK_IMG" snapshot $a \
            ro.qcow2 >o.out 2>o.err || orc=$?
        [ $orc -eq $qrc ] || { cat o.err >&2; fail "read-only file, $a: status $orc, qemu-img's $qrc"; }
        same_output "read-only file, $a: stdout" q.out o.out
        if [ $qrc -ne 0 ]; then
            grep -q "^qblock-img: Could not open 'ro.qcow2': .*Permission denied" o.err ||
                { cat o.err >&2; fail "read-only file, $a: not the expected message"; }
        fi
        echo "read-only file, $a: status $orc"
    done
    cmp -s ro.qcow2 e-before.qcow2 || fail "the read-only file changed"
else
    # Nothing makes a file read-only for root without setpriv: say so, not pass.
    skip "read-only file: running as root without setpriv (every other case passed)"
fi
