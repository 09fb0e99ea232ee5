#!/bin/sh
# SPDX-License-Identifier: MIT
# Build tests/linux/kbuild_headers.c as an out-of-tree module against the
# installed kernel headers: the pvtimer headers must compile under kbuild
# (-nostdinc, __KERNEL__). The one thing the kernel lacks is the C99 limit
# UINT64_MAX; the module supplies it from examples/linux/compat/xl_limits.h.
# usage: kbuild-headers.sh SOURCE_ROOT BUILD_DIR      (77: no headers)
set -eu
root=$1; out=$2/kbuild-headers
kdir=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort | tail -n 1)
if [ -z "$kdir" ] || [ ! -f "$kdir/Makefile" ]; then
	echo "SKIP: no linux-headers-*-amd64"
	exit 77
fi
rm -rf "$out"
mkdir -p "$out"
cp "$root/tests/linux/kbuild_headers.c" "$out/pvtimer_headers.c"
cat > "$out/Kbuild" <<KB
obj-m := pvtimer_headers.o
ccflags-y := -I$root/libpvtimer/include -Werror \
	-include $root/examples/linux/compat/xl_limits.h
KB
make -s -C "$kdir" M="$out" modules 2>&1 | grep -v "Skipping BTF" || true
if [ ! -f "$out/pvtimer_headers.ko" ]; then
	echo "FAIL: the pvtimer headers do not build under kbuild ($kdir)"
	exit 1
fi
echo "ok: pvtimer_abi.h, pvtimer_geometry.h, pvtimer_rule.h, pvtimer_guest.h build under kbuild ($(basename "$kdir"))"
