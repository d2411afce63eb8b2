#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 521-oom.sh: out-of-memory injection. For every format, a workload
# (create, open, write, read back, flush, map, check, a qcow2 snapshot,
# close) runs once per N with the library's Nth allocation failing
# (tests/helpers/qboom; the library must come from `make check-oom`, an
# ASan build with tests/oom/oom-wrap.c): no run may crash, leak
# (LeakSanitizer), fail anywhere but at the injected failure or with an
# error other than QB_ERR_MEM_ERR, or leave an image `qemu-img check`
# finds errors in. Skipped in other builds, unless QB_OOM_REQUIRED=1.
#
# Environment: QB_FAULT_FULL=1 runs every N; by default N = 1..60, then
# every 3rd until a run completes without an injected failure.
# QB_OOM_FORMATS="qcow2 vdi" limits the formats.

source "$SRCDIR/tests/interop/common.sh"
build_helper OOM qboom

formats=${QB_OOM_FORMATS:-"qcow2 qed qcow vmdk vdi vpc cow raw"}
args=(-a 60 -k 3)
[ "${QB_FAULT_FULL:-0}" = 1 ] && args=(-a 1 -k 1)
status=0
for fmt in $formats; do
    mkdir -p "$fmt"
    rc=0
    "$OOM" "${args[@]}" ${QEMU_IMG:+-q "$QEMU_IMG"} "$fmt" "$TEST_DIR/$fmt" >oom.out 2>oom.err || rc=$?
    if [ $rc = 77 ]; then
        [ "${QB_OOM_REQUIRED:-0}" = 1 ] && fail "the library has no allocation hook, but QB_OOM_REQUIRED=1"
        skip "the library has no allocation hook (make check-oom runs this test)"
    fi
    note "$(cat oom.out)"
    if [ $rc != 0 ]; then
        sed 's/^/    /' oom.err | head -n 60 >&2
        status=1
        note "FAIL: $fmt: qboom exited $rc"
    else
        echo "$fmt: every injected allocation failure was handled"
    fi
done
exit $status
