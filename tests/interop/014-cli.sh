#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# 014-cli.sh: the global options and help of qblock-img: --help, -h, help,
# --version, -V and "<command> --help" print to stdout and exit 0; the help
# lists every command; a missing command is an error; writing to an image
# whose raw format was only probed warns as qemu-img does, and -f raw does
# not.

source "$SRCDIR/tests/interop/common.sh"

for args in "--help" "-h" "help" "info --help" "create -h" "map --help" "convert -h" \
            "compare -h" "bench -h" "read -h" "write -h" "discard -h"; do
    # shellcheck disable=SC2086
    run qbi $args
    grep -q '^usage: qblock-img ' "$TEST_DIR/run.out" || fail "'$args' printed no usage line"
    [ -s "$TEST_DIR/run.err" ] && fail "'$args' wrote to stderr"
done
for cmd in bench compare convert create discard help info map read write; do
    grep -q "^  $cmd\( \|$\)" "$TEST_DIR/run.out" || fail "the help does not list '$cmd'"
done
echo "help: ok"

for args in "--version" "-V"; do
    # shellcheck disable=SC2086
    run qbi $args
    grep -q '^qblock-img version [0-9]' "$TEST_DIR/run.out" || fail "'$args' printed no version"
done
echo "version: ok"

run_fails qbi
grep -q 'Not enough arguments' "$TEST_DIR/run.err" || fail "no 'Not enough arguments'"
run_fails qbi nosuchcommand
grep -q "Command not found: nosuchcommand" "$TEST_DIR/run.err" || fail "no 'Command not found'"
echo "errors: ok"

sparse_file probed.raw 1M
run qbi write -P 0x5a probed.raw 4096 512
grep -q "^WARNING: Image format was not specified for 'probed.raw' and probing guessed raw" \
    "$TEST_DIR/run.err" || fail "no warning for a write to a probed raw image"
run qbi write -f raw -P 0x5a probed.raw 4096 512
[ -s "$TEST_DIR/run.err" ] && fail "a warning although -f raw was given: $(cat "$TEST_DIR/run.err")"
run qbi read -P 0x5a probed.raw 4096 512
[ -s "$TEST_DIR/run.err" ] && fail "a warning for a read: $(cat "$TEST_DIR/run.err")"
echo "probe warning: ok"
