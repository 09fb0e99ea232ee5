#!/bin/sh
# SPDX-License-Identifier: MIT
# Compile each ABI header alone, the way a freestanding guest kernel would:
# C99 and C11, -pedantic, -ffreestanding, no libc, every warning an error.
set -eu
cc=$1; stamp=$2; shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for hdr in "$@"; do
	name=$(basename "$hdr" .h)
	printf '#include "%s"\n' "$(realpath "$hdr")" > "$tmp/$name.c"
	for std in c99 c11; do
		"$cc" -std=$std -pedantic -ffreestanding -nostdlib -Wall -Wextra \
			-Werror -fsyntax-only "$tmp/$name.c"
	done
done
touch "$stamp"
