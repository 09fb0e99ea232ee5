#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the libidlepoll core the way a guest kernel would: -ffreestanding,
# -nostdlib, no FP/SIMD registers (x86: -mgeneral-regs-only), then link the
# objects together and require that nothing is left undefined: no libc, no
# memset/memcpy the compiler slipped in, no libgcc helpers.
# usage: compile-core.sh CC STAMP INCLUDE_DIR SRC...
set -eu
cc=$1; stamp=$2; inc=$3; shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags="-std=gnu11 -O2 -ffreestanding -nostdlib -fno-builtin -Wall -Wextra -Werror
       -fno-tree-loop-distribute-patterns -fno-stack-protector"
case "$(uname -m)" in
x86_64|i?86) flags="$flags -mgeneral-regs-only -mno-red-zone" ;;
esac
objs=
for src in "$@"; do
	obj="$tmp/$(basename "$src" .c).o"
	# shellcheck disable=SC2086
	"$cc" $flags -I"$inc" -c "$src" -o "$obj"
	objs="$objs $obj"
done
# shellcheck disable=SC2086
ld -r -o "$tmp/all.o" $objs
undef=$(nm -u "$tmp/all.o")
if [ -n "$undef" ]; then
	echo "freestanding core needs external symbols:"
	echo "$undef"
	exit 1
fi
echo "core: $(echo "$@" | wc -w) files, no undefined symbols"
touch "$stamp"
