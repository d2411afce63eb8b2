#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 500-fuzz-regressions.sh: replays, with the gcc-built tests/fuzz/fuzz-replay
# (the fuzz targets' workload without libFuzzer), every regression input
# under tests/fuzz/regressions/<target>/ (inputs that once crashed, leaked
# or hung a driver), then every seed tests/fuzz/make-seeds.sh makes, each of
# which must also open (so the workload is known to reach the drivers).

. "$SRCDIR/tests/interop/common.sh"

replay=${BUILDDIR:-$SRCDIR}/tests/fuzz/fuzz-replay
[ -x "$replay" ] || fail "$replay was not built (make build-tests builds it)"

targets="qcow2 qcow qed vmdk vmdk-desc vdi vpc cow raw probe"
regs=0
for t in $targets; do
    d=$SRCDIR/tests/fuzz/regressions/$t
    [ -d "$d" ] || continue
    out=$("$replay" "$t" "$d") || fail "replaying $d failed: $out"
    out=${out##*: }
    regs=$((regs + ${out% inputs}))
done
note "regression inputs replayed: $regs"

require_qemu_img
require_qemu_io
# cow seeds come from uml_mkcow: required under CI like every oracle tool.
if ! command -v uml_mkcow >/dev/null 2>&1 && [ "${CI:-}" = true ]; then
    fail "uml_mkcow is not installed (Debian package uml-utilities)"
fi
sh "$SRCDIR/tests/fuzz/make-seeds.sh" "$TEST_DIR/seeds" >&2 || fail "make-seeds.sh failed"
for t in $targets; do
    n=$(find "$TEST_DIR/seeds/$t" -type f | wc -l)
    # A target without seeds would replay nothing and prove nothing.
    if [ "$t" != cow ] || command -v uml_mkcow >/dev/null 2>&1; then
        [ "$n" -gt 0 ] || fail "no seeds for $t"
    fi
    [ "$n" -gt 0 ] || continue
    "$replay" -o "$t" "$TEST_DIR/seeds/$t" >/dev/null || fail "seeds of $t do not replay clean"
done
echo "fuzz regressions and seeds replay clean"
