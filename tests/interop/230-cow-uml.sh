#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 230-cow-uml.sh: User-Mode-Linux cow files and the UML tools (Debian's
# uml-utilities). A file uml_mkcow makes reads through libqblock as its
# backing file, and after seeded random writes through libqblock's public
# API as the writer's model; uml_moo merges it into exactly the model's
# bytes. A file libqblock makes is byte for byte what uml_mkcow makes, and
# after random writes uml_moo (also its in-place -d mode) merges it into
# exactly the model. One backing file has a size that is not a whole number
# of sectors.

source "$SRCDIR/tests/interop/common.sh"
for tool in uml_mkcow uml_moo; do
    command -v $tool >/dev/null 2>&1 || skip "$tool is not installed (uml-utilities)"
done

# build_writer: set QBWRITER to the writer program, tests/helpers/qbwriter.c
# (seeded random writes through the public API checked against a model kept
# outside libqblock; its opening comment gives the commands). `make check`
# builds it; after a plain `make` (or an edit since), compile it here.
build_writer() {
    local cc=${CC:-cc} san= src=$SRCDIR/tests/helpers/qbwriter.c
    QBWRITER=$BUILDDIR/tests/helpers/qbwriter
    [ -x "$QBWRITER" ] && [ "$QBWRITER" -nt "$src" ] && return 0
    command -v "${cc%% *}" >/dev/null 2>&1 || skip "no C compiler ($cc) to build the writer program"
    san=$(sed -n 's/^CONFIG_SANITIZERS = *//p' "$BUILDDIR/config-host.mak" 2>/dev/null)
    QBWRITER=$TEST_DIR/qbwriter
    # shellcheck disable=SC2086
    $cc -std=gnu11 -O2 -Wall -Wextra ${san:+-fsanitize=$san} -I"$SRCDIR/include" \
        -o "$QBWRITER" "$src" -L"$BUILDDIR" -lqblock || fail "could not build the writer program"
}

# writer ARGS...: run qbwriter, which must succeed (its progress lines dropped).
writer() {
    "$QBWRITER" "$@" >/dev/null || fail "qbwriter $* failed"
}

# same_disk REF GOT: GOT (a conversion, rounded up to whole sectors as
# qemu-img rounds sizes) holds REF's bytes followed by nothing but zeros.
same_disk() {
    local n
    n=$(stat -c %s "$1")
    cmp -n "$n" "$1" "$2" >&2 || fail "$1 and $2 differ"
    [ "$(stat -c %s "$2")" -lt $((n + 512)) ] || fail "$2 is too long"
    tail -c +$((n + 1)) "$2" | cmp -s - <(head -c $(( $(stat -c %s "$2") - n )) /dev/zero) ||
        fail "$2 has data past the end of $1"
}

# merged_as_model MERGED MODEL: uml_moo copies whole sectors only, so a
# backing file's partial last sector is not in its output.
merged_as_model() {
    local n
    n=$(( $(stat -c %s "$2") / 512 * 512 ))
    head -c $n "$2" >"$TEST_DIR/model-sectors.raw"
    same_content "$TEST_DIR/model-sectors.raw" "$1"
}

build_writer

for size in 8388608 3000000; do
    rm -f base.raw u.cow l.cow fresh.cow merged.raw model.raw
    head -c $size /dev/urandom >base.raw

    # Read a uml_mkcow file, then write it and let uml_moo merge it.
    run uml_mkcow u.cow base.raw
    run qbi info u.cow
    grep -q "^file format: cow$" "$TEST_DIR/run.out" || fail "u.cow is not probed as cow"
    run qbi convert -O raw u.cow got.raw
    same_disk base.raw got.raw
    QBW_WRITEBACK=1 writer write u.cow base.raw 21 1500 40000 0 model.raw
    run qbi convert -O raw u.cow got.raw
    same_disk model.raw got.raw
    run uml_moo u.cow merged.raw
    merged_as_model merged.raw model.raw
    echo "$size bytes: a uml_mkcow file reads as its backing file, and after 1500 writes uml_moo merges the model"

    # The file libqblock creates is the file uml_mkcow creates.
    run uml_mkcow fresh.cow base.raw
    run qbi create -f cow -u -b base.raw l.cow 0
    same_content fresh.cow l.cow
    writer write l.cow base.raw 22 300 40000 10 model.raw
    rm -f merged.raw
    run uml_moo l.cow merged.raw
    merged_as_model merged.raw model.raw
    # In-place merge into (a copy of) the backing file.
    cp -p base.raw base-copy.raw
    rm -f c.cow
    run qbi create -f cow -u -b base-copy.raw c.cow 0
    writer write c.cow base-copy.raw 23 300 40000 0 model-c.raw
    run uml_moo -d c.cow
    same_content model-c.raw base-copy.raw
    echo "$size bytes: libqblock's cow file equals uml_mkcow's, and uml_moo merges the model after 300 writes"
done
