#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 019-create-options.sh: `qblock-img create -o help` lists each format's
# create options with qemu-img 7.2's names, types, order and layout (the
# help texts are our own words, so they are not compared); unknown options
# fail with qemu-img's message and status; and `write -z [-u]` makes the
# zero clusters qemu-io's does on qcow2 and qed, and reads of zeros on
# every format.

source "$SRCDIR/tests/interop/common.sh"
require_qemu_img
require_qemu_io

# names FILE: the "name=<type>" column of a -o help listing.
names() {
    awk '/^  / { i = index($0, " - "); s = substr($0, 3, i - 3); sub(/ +$/, "", s); print s }' "$1"
}

# frame FILE: every line that is not an option (headings, blank lines, notes).
frame() {
    grep -v '^  ' "$1" || true
}

# layout FILE: fail unless each option line is "  " + the name column padded
# to 22 + " - " + text, as qemu-img prints it.
layout() {
    local line left want
    while IFS= read -r line; do
        case "$line" in "  "*) ;; *) continue ;; esac
        left=${line:2}
        left=${left%% - *}
        left=${left%"${left##*[! ]}"}
        want=$(printf '  %-22s - ' "$left")
        [ "${line:0:${#want}}" = "$want" ] || fail "layout of '$line' in $1"
    done <"$1"
}

# Options qemu-img lists that libqblock deliberately lacks (encryption, which
# it refuses), and the ones it adds (vdi's cluster_size, which qemu-img hides
# unless built for it, and vdi's caller-chosen UUIDs); everything else must
# match name for name.
declare -A missing=(
    [qcow2]="encrypt.cipher-alg=<str> encrypt.cipher-mode=<str> encrypt.hash-alg=<str> encrypt.iter-time=<num> encrypt.ivgen-alg=<str> encrypt.ivgen-hash-alg=<str> encrypt.key-secret=<str>"
    [qcow]="encrypt.format=<str> encrypt.key-secret=<str>"
)
declare -A extra=(
    [vdi]="cluster_size=<size> image_uuid=<str> modification_uuid=<str>"
)

for fmt in raw qcow2 qcow qed vmdk vdi vpc; do
    run "$QEMU_IMG" create -f "$fmt" -o help
    mv run.out qemu-help.txt
    run qbi create -f "$fmt" -o help
    mv run.out ours-help.txt
    layout ours-help.txt
    frame qemu-help.txt >qemu-frame.txt
    frame ours-help.txt >ours-frame.txt
    same_output "$fmt -o help headings" qemu-frame.txt ours-frame.txt
    names qemu-help.txt >qemu-names.txt
    names ours-help.txt >ours-names.txt
    # The expected list: qemu-img's, less what we lack, plus what we add, in
    # qemu-img's (byte-wise sorted) order.
    {
        grep -vxF -f <(printf '%s\n' ${missing[$fmt]:-} "") qemu-names.txt
        if [ -n "${extra[$fmt]:-}" ]; then
            printf '%s\n' ${extra[$fmt]}
        fi
    } | LC_ALL=C sort >want-names.txt
    same_output "$fmt -o help options" want-names.txt ours-names.txt
    # qemu-img's own order is byte-wise sorted; ours must be in that order too.
    LC_ALL=C sort -c ours-names.txt || fail "$fmt: options are not in qemu-img's order"
    for n in ${missing[$fmt]:-}; do
        grep -qxF "$n" qemu-names.txt || fail "$fmt: qemu-img no longer lists $n"
    done
    echo "$fmt: $(wc -l <ours-names.txt) options as qemu-img lists them"

    # "-o ?" is the same request.
    run qbi create -f "$fmt" -o '?'
    same_output "$fmt -o ?" ours-help.txt run.out
done

# Without -f the format is raw, as in qemu-img.
run "$QEMU_IMG" create -o help
names run.out >qemu-names.txt
run qbi create -f raw -o help
mv run.out ours-help.txt
run qbi create -o help
same_output "create -o help is raw's" ours-help.txt run.out
names run.out >ours-names.txt
same_output "create -o help (raw)" qemu-names.txt ours-names.txt

# With a file name qemu-img adds the protocol's options under one heading;
# raw's preallocation is one of them.
run "$QEMU_IMG" create -f raw -o help x.img
head -n 1 run.out >qemu-head.txt
run qbi create -f raw -o help x.img
head -n 1 run.out >ours-head.txt
same_output "heading with a file name" qemu-head.txt ours-head.txt
names run.out >ours-names.txt
grep -qx 'preallocation=<str>' ours-names.txt || fail "no preallocation with a file name"
[ ! -e x.img ] || fail "-o help created x.img"

# cow, which qemu-img 7.2 does not know: our listing, names and types only.
run qbi create -f cow -o help
names run.out
frame run.out

# Unknown options, a backing file the format cannot have, an unknown format:
# qemu-img's message (after the program name) and exit status.
cases=(
    "-f qcow2 -o bogus=1 e.img 1M"
    "-f raw -o cluster_size=64k e.img 1M"
    "-f vpc -o backing_file=b.img e.img 1M"
    "-f vdi -b b.img -F raw e.img 1M"
    "-f qed -o table_size=4,nope=2 e.img 1M"
    "-f nosuch -o help"
)
for c in "${cases[@]}"; do
    rc_q=0
    rc_o=0
    # shellcheck disable=SC2086
    "$QEMU_IMG" create $c >/dev/null 2>qemu-err.txt || rc_q=$?
    # shellcheck disable=SC2086
    qbi create $c >/dev/null 2>ours-err.txt || rc_o=$?
    [ $rc_o -eq $rc_q ] || fail "create $c: status $rc_o, qemu-img $rc_q"
    sed 's/^[^:]*: //' qemu-err.txt >qemu-msg.txt
    sed 's/^[^:]*: //' ours-err.txt >ours-msg.txt
    same_output "create $c" qemu-msg.txt ours-msg.txt
    echo "create $c: status $rc_o, $(cat ours-msg.txt)"
done

# ---- write -z and -u ----

run_fails qbi write -u -f raw e.img 0 512
grep -q -- '-u requires -z' run.err || fail "write -u without -z: $(cat run.err)"

# qcow2 (v3 and v2) and qed: the same writes through qemu-io and qblock-img
# leave the same map, zero clusters and freed clusters included. (qcow2 with
# extended_l2 is left out: libqblock zeroes a partial cluster with data where
# qemu sets subcluster zero bits, so the maps differ though the data agree.)
zero_cases=(
    "qcow2 compat=1.1"
    "qcow2 compat=0.10"
    "qed cluster_size=65536"
)
for zc in "${zero_cases[@]}"; do
    read -r fmt opts <<<"$zc"
    for u in "" "-u"; do
        for who in qemu ours; do
            rm -f "$who.$fmt"
            run "$QEMU_IMG" create -q -f "$fmt" -o "$opts" "$who.$fmt" 2M
        done
        ops=("-P 0x51 0 256k" "-z $u 64k 128k" "-z $u 512k 128k" "-z $u 1000 3000"
             "-P 0x52 1M 64k" "-z $u 1M 32k" "-z $u 1984k 64k")
        for op in "${ops[@]}"; do
            # shellcheck disable=SC2086
            "$QEMU_IO" -f "$fmt" -c "write $op" qemu.$fmt >/dev/null 2>&1 ||
                fail "qemu-io write $op"
            read -r -a words <<<"$op"
            if [ "${words[0]}" = "-P" ]; then
                run qbi write -q -f "$fmt" -P "${words[1]}" "ours.$fmt" "${words[2]}" "${words[3]}"
            else
                # shellcheck disable=SC2086
                run qbi write -q -f "$fmt" ${words[*]:0:$((${#words[@]} - 2))} "ours.$fmt" \
                    "${words[-2]}" "${words[-1]}"
            fi
        done
        run "$QEMU_IMG" map -f "$fmt" --output=json qemu.$fmt
        mv run.out map-qemu.json
        run "$QEMU_IMG" map -f "$fmt" --output=json ours.$fmt
        same_output "$fmt $opts write -z $u map" map-qemu.json run.out
        run "$QEMU_IMG" check -q -f "$fmt" ours.$fmt
        run "$QEMU_IMG" compare -q -f "$fmt" -F "$fmt" qemu.$fmt ours.$fmt
        echo "$fmt $opts write -z $u: $(grep -c '"zero": true' map-qemu.json) zero runs, same map"
    done
done

# Every format qemu-img reads: zeros over data, aligned or not, with and
# without -u, read back as zeros and nothing else changes.
for fmt in raw qcow2 qcow qed vmdk vdi vpc; do
    for u in "" "-u"; do
        rm -f "z.$fmt" ref.raw
        if [ "$fmt" = vpc ]; then vo=(-o force_size=on); else vo=(); fi
        run qbi create -q -f "$fmt" "${vo[@]}" "z.$fmt" 1M
        run qbi write -q -f "$fmt" -P 0x77 "z.$fmt" 0 1M
        sparse_file ref.raw 1M
        ref_write ref.raw 0 1048576 119
        for r in "0 65536" "100 1000" "204807 133120" "716800 1"; do
            read -r off len <<<"$r"
            # shellcheck disable=SC2086
            run qbi write -q -f "$fmt" -z $u "z.$fmt" "$off" "$len"
            ref_write ref.raw "$off" "$len" 0
        done
        run "$QEMU_IMG" compare -q -f "$fmt" -F raw "z.$fmt" ref.raw
    done
    echo "$fmt: write -z reads back as zeros"
done
