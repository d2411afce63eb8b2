# SPDX-License-Identifier: LGPL-2.1-or-later
# chain-common.sh: helpers of the rebase, commit, amend and dd scripts (021-024), sourced after
# common.sh: run qemu-img and qblock-img on twin copies of the same files and compare the results.

# twins: start the folders q/ (for qemu-img) and o/ (for qblock-img) afresh, empty.
twins() {
    rm -rf q o
    mkdir q o
}

# twin_copy FILE...: copy files made in the scratch folder into both twins.
twin_copy() {
    local f
    for f in "$@"; do
        cp "$f" q/ && cp "$f" o/ || fail "cannot copy $f"
    done
}

# both NAME WHAT CMD ARGS...: `qemu-img CMD ARGS` in q/ and `qblock-img CMD
# ARGS` in o/; the exit codes and stdouts must be equal, and with WHAT=msg
# stderr too (tool names replaced); WHAT=rc compares exit codes and stdout only.
# Prints the case, qemu-img's exit code and its (filtered) output.
both() {
    local name=$1 what=$2 rq=0 ro=0
    shift 2
    (cd q && "$QEMU_IMG" "$@") >q.out 2>q.err || rq=$?
    (cd o && "$QBLOCK_IMG" "$@") >o.out 2>o.err || ro=$?
    check_status "$rq" "$ro" qblock-img "$@" "($name)"
    echo "== $name: $* -> $rq"
    # Progress lines (-p) are drawn with carriage returns; only the last state counts.
    sed 's/.*\r//' q.out >q.out2
    sed 's/.*\r//' o.out >o.out2
    cmp -s q.out2 o.out2 || { diff q.out2 o.out2 >&2; fail "stdout differs: $name"; }
    cat q.out2
    if [ "$what" = msg ]; then
        sed 's/qemu-img/TOOL/g' q.err >q.err2
        sed 's/qblock-img/TOOL/g' o.err >o.err2
        cmp -s q.err2 o.err2 || { diff q.err2 o.err2 >&2; fail "stderr differs: $name"; }
        cat q.err2
    fi
}

# same_result FMT FILE: the twins' FILE read the same through their chains,
# pass qemu-img check, and name the same backing file and format.
same_result() {
    local fmt=$1 f=$2
    run "$QEMU_IMG" compare -f "$fmt" -F "$fmt" "q/$f" "o/$f"
    if [ "$fmt" = qcow2 ] || [ "$fmt" = qed ]; then
        run "$QEMU_IMG" check -f "$fmt" "o/$f"
    fi
    (cd q && "$QEMU_IMG" info -f "$fmt" "$f") | grep '^backing file\|^virtual size' >q.info
    (cd o && "$QEMU_IMG" info -f "$fmt" "$f") | grep '^backing file\|^virtual size' >o.info
    same_output "info of $f" q.info o.info
}

# same_alloc FMT FILE: qemu-img map of the twins' FILE agrees on every run
# (start, length, depth, data/zero), host offsets aside.
same_alloc() {
    (cd q && "$QEMU_IMG" map -f "$1" --output=json "$2") | sed 's/, "offset": [0-9]*//' >q.map
    (cd o && "$QEMU_IMG" map -f "$1" --output=json "$2") | sed 's/, "offset": [0-9]*//' >o.map
    same_output "map of $2" q.map o.map
    echo "   $2: $(grep -c '"depth": 0' q.map) runs of its own"
}

# make_chain FMT: base <- mid <- top in the scratch folder, with overlapping
# data in every layer (base: 1 at 0-1M and 4 at 3M-3.5M; mid: 2 at
# 512k-1.5M; top: 3 at 1M-1M+64k and 2M-2M+4k).
make_chain() {
    local f=$1
    rm -f base.$f mid.$f top.$f
    "$QEMU_IMG" create -q -f "$f" base.$f 4M
    "$QEMU_IO" -f "$f" -c "write -P 1 0 1M" -c "write -P 4 3M 512k" base.$f >/dev/null
    "$QEMU_IMG" create -q -f "$f" -b base.$f -F "$f" mid.$f
    "$QEMU_IO" -f "$f" -c "write -P 2 512k 1M" mid.$f >/dev/null
    "$QEMU_IMG" create -q -f "$f" -b mid.$f -F "$f" top.$f
    "$QEMU_IO" -f "$f" -c "write -P 3 1M 64k" -c "write -P 3 2M 4k" top.$f >/dev/null
}
