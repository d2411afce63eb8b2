# SPDX-License-Identifier: LGPL-2.1-or-later
# hostile-common.sh: what the hostile-image catalogue (interop 501-509)
# shares (sourced after common.sh): the open-policy helper program.

require_qemu_img
build_helper QBPOLICY qbpolicy

# pol ARGS...: tests/helpers/qbpolicy's verdict ("ok", or "error CODE:
# MESSAGE" with exit status 1), the scratch folder's name hidden.
pol() {
    local rc=0
    "$QBPOLICY" "$@" >pol.out 2>&1 || rc=$?
    check_status "$(grep -q '^ok$' pol.out && echo 0 || echo 1)" $rc "$QBPOLICY" "$@"
    sed "s|$TEST_DIR|TEST_DIR|g" pol.out
}

# poke FILE OFFSET FORMAT VALUE [OFFSET FORMAT VALUE]...: overwrite fields,
# each packed with Python's struct FORMAT ('>Q', '<I', ...); FORMAT 's'
# writes VALUE as text.
poke() {
    python3 -c 'import struct, sys
with open(sys.argv[1], "r+b") as f:
    for i in range(2, len(sys.argv), 3):
        off, fmt, v = int(sys.argv[i], 0), sys.argv[i + 1], sys.argv[i + 2]
        f.seek(off)
        f.write(v.encode() if fmt == "s" else struct.pack(fmt, int(v, 0)))' "$@" ||
        fail "could not patch $1"
}

# peek FILE OFFSET FORMAT: a field's value, unpacked with struct FORMAT.
peek() {
    python3 -c 'import struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2], 0))
    print(struct.unpack(sys.argv[3], f.read(struct.calcsize(sys.argv[3])))[0])' "$@" ||
        fail "could not read $1"
}

# says STATUS ARGS...: qblock-img ARGS must exit with STATUS (never crash);
# prints the status and the error messages, the scratch folder's name hidden.
says() {
    local want=$1 rc=0
    shift
    "$QBLOCK_IMG" "$@" >ref.out 2>ref.err || rc=$?
    check_status "$want" $rc qblock-img "$@"
    echo "qblock-img $1: exit $rc$(sed "s|$TEST_DIR|TEST_DIR|g; s/^/: /" ref.err | tr -d '\n')"
}

# refused ARGS...: qblock-img ARGS must fail cleanly (exit 1, a message).
refused() {
    says 1 "$@"
    [ -s ref.err ] || fail "no error message: qblock-img $*"
}

# cap_memory: about 2 GB of address space, so a runaway allocation fails
# (sanitizer runtimes and valgrind need far more for themselves, so under
# them the cap is left out; the plain run enforces it).
cap_memory() {
    case "${TEST_CFLAGS:-}${TEST_WRAPPER:-}" in
        *sanitize*|*valgrind*) ;;
        *) ulimit -v 2000000 2>/dev/null || true ;;
    esac
}
