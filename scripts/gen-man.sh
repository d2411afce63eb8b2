#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# gen-man.sh: build the manual pages from the sources that already document
# libqblock, so that the pages cannot drift from them:
#   gen-man.sh lib SRCDIR       libqblock(3): docs/libqblock.3.in (overview,
#                               threads, errors, ownership) followed by every
#                               documented function of include/libqblock/
#                               libqblock.h, its comment and prototype
#   gen-man.sh tool SRCDIR TOOL qblock-img(1): docs/qblock-img.1.in followed by
#                               the tool's own --help text (commands, options)
# The page goes to standard output.
set -eu

mode=$1
srcdir=$2

# troff-safe text: backslashes doubled, lines starting with . or ' guarded.
escape() {
    sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

case $mode in
lib)
    cat "$srcdir/docs/libqblock.3.in"
    echo '.SH FUNCTIONS'
    echo 'Each entry is the documentation comment of include/libqblock/libqblock.h.'
    awk '
        # troff-safe text: backslashes written as \e, a leading . or quote guarded.
        function esc(t) {
            gsub(/\\/, "\\e", t)
            if (t ~ /^[.\047]/) t = "\\&" t
            return t
        }
        function flush_entry(   i) {
            if (nproto == 0) { ncom = 0; return }
            printf ".SS %s\n.nf\n", names
            for (i = 1; i <= nproto; i++) printf "%s\n", esc(proto[i])
            printf ".fi\n"
            for (i = 1; i <= ncom; i++) {
                if (com[i] == "") printf ".PP\n"; else printf "%s\n", esc(com[i])
            }
            ncom = 0; nproto = 0; names = ""
        }
        /^\/\*\*/ {
            flush_entry(); incom = 1
            line = $0; sub(/^\/\*\* ?/, "", line); sub(/ *\*\/ *$/, "", line)
            if (line != "") com[++ncom] = line
            if ($0 ~ /\*\/ *$/) { incom = 0; inproto = 1 }
            next
        }
        incom {
            if ($0 ~ /^ *\*\/ *$/) { incom = 0; inproto = 1; next }
            line = $0; sub(/^ *\* ?/, "", line); sub(/ *\*\/ *$/, "", line)
            com[++ncom] = line
            if ($0 ~ /\*\/ *$/) { incom = 0; inproto = 1 }
            next
        }
        inproto && /LIBQBLOCK_EXPORT/ { cur = $0; collecting = 1 }
        inproto && collecting && !/LIBQBLOCK_EXPORT/ { cur = cur " " $0 }
        inproto && collecting && /\);/ {
            gsub(/LIBQBLOCK_EXPORT /, "", cur); gsub(/  +/, " ", cur)
            proto[++nproto] = cur; collecting = 0
            n = cur; sub(/\(.*/, "", n); sub(/.*[ *]/, "", n)
            names = names (names == "" ? "" : ", ") n
            next
        }
        inproto && !collecting && /^ *$/ { if (nproto > 0) { inproto = 0; flush_entry() } }
        END { flush_entry() }
    ' "$srcdir/include/libqblock/libqblock.h"
    ;;
tool)
    tool=$3
    cat "$srcdir/docs/qblock-img.1.in"
    echo '.SH COMMANDS AND OPTIONS'
    echo 'The text below is what'
    echo '.B qblock-img --help'
    echo 'prints.'
    echo '.PP'
    echo '.nf'
    "$tool" --help | sed -n '/^Command syntax:/,$p' | escape
    echo '.fi'
    ;;
*)
    echo "usage: gen-man.sh lib SRCDIR | tool SRCDIR TOOL" >&2
    exit 2
    ;;
esac
