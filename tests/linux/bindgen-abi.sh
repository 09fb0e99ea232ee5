#!/bin/sh
# SPDX-License-Identifier: MIT
# pvtimer_abi.h must stay bindgen-clean for Rust VMMs (docs/embedding.md):
# bindgen translates it with no warning, every struct keeps its C size, and
# where rustc is installed the generated layout tests compile and pass.
# usage: bindgen-abi.sh SOURCE_ROOT BUILD_DIR        (77: no bindgen)
set -eu
root=$1; out=$2/bindgen-abi
if ! command -v bindgen >/dev/null 2>&1; then
	echo "SKIP: bindgen not installed (apt-get install bindgen)"
	exit 77
fi
rm -rf "$out"
mkdir -p "$out"
bindgen "$root/libpvtimer/include/exitless/pvtimer_abi.h" \
	--allowlist-type 'pvtimer_abi_.*' --allowlist-var 'PVTIMER_.*' \
	-o "$out/pvtimer_abi.rs" 2> "$out/stderr"
if [ -s "$out/stderr" ]; then
	echo "FAIL: bindgen complained:"
	cat "$out/stderr"
	exit 1
fi
for s in pvtimer_abi_header:256 pvtimer_abi_slot:128 pvtimer_abi_pending:64; do
	name=${s%%:*}; size=${s##*:}
	grep -q "pub struct $name " "$out/pvtimer_abi.rs" || {
		echo "FAIL: no struct $name in the bindings"; exit 1; }
	grep -A1 "size_of::<$name>()," "$out/pvtimer_abi.rs" | grep -q "^ *${size}usize" || {
		echo "FAIL: $name is not $size bytes in the bindings"; exit 1; }
done
grep -q "PVTIMER_F_TSC_CALIBRATE" "$out/pvtimer_abi.rs" || {
	echo "FAIL: feature bits missing from the bindings"; exit 1; }
if command -v rustc >/dev/null 2>&1; then
	rustc --edition 2018 --test -o "$out/layout-tests" "$out/pvtimer_abi.rs" \
		-A non_camel_case_types -A non_upper_case_globals -A dead_code
	"$out/layout-tests"
else
	echo "note: no rustc, layout tests not compiled"
fi
echo "ok: pvtimer_abi.h is bindgen-clean ($(bindgen --version))"
