#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 037-format-docs.sh: every format has its page docs/formats/<fmt>.md, the
# README links to each, and each page's capability and create-option tables
# (between the "fmtcaps begin" and "fmtcaps end" markers) are exactly what
# tests/helpers/fmtcaps prints from qb_fmt_get_caps and
# qb_fmt_get_create_options in this build, so the pages cannot drift from
# the drivers. Regenerate a table with: tests/helpers/fmtcaps FMT.

source "$SRCDIR/tests/interop/common.sh"
build_helper FMTCAPS fmtcaps

n=0
for fmt in qcow2 qcow qed vmdk vdi vpc raw cow rbd sheepdog; do
    page=$SRCDIR/docs/formats/$fmt.md
    [ -f "$page" ] || fail "no page docs/formats/$fmt.md"
    grep -q "(docs/formats/$fmt.md)\|docs/formats/$fmt.md" "$SRCDIR/README" ||
        fail "the README does not link docs/formats/$fmt.md"
    [ "$(grep -c '^<!-- fmtcaps begin -->$' "$page")" = 1 ] &&
        [ "$(grep -c '^<!-- fmtcaps end -->$' "$page")" = 1 ] ||
        fail "$fmt.md: want one 'fmtcaps begin' and one 'fmtcaps end' marker"
    sed -n '/^<!-- fmtcaps begin -->$/,/^<!-- fmtcaps end -->$/p' "$page" | sed '1d;$d' >doc.txt
    "$FMTCAPS" $fmt >caps.txt || fail "fmtcaps $fmt failed"
    same_output "docs/formats/$fmt.md tables (regenerate with tests/helpers/fmtcaps $fmt)" \
        caps.txt doc.txt
    n=$((n + 1))
done
# Every page under docs/formats is one of the above (no stale page).
for page in "$SRCDIR"/docs/formats/*.md; do
    case $(basename "$page" .md) in
    qcow2|qcow|qed|vmdk|vdi|vpc|raw|cow|rbd|sheepdog) ;;
    *) fail "docs/formats/$(basename "$page") is not a format this test knows" ;;
    esac
done
echo "037: $n pages match the drivers"
