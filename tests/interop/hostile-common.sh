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
