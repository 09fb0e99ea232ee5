#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the build into a DESTDIR image and build consumer-<lib>.c of this
# folder for every LIB the build has, with nothing but `pkg-config
# exitless-<lib>`, shared and static, then run them: the proof that a VMM
# can consume the installed libraries.
# usage: run.sh BUILD_DIR CONSUMER_DIR plain|sanitized LIB...
set -eu
build=$1; src=$2; mode=$3; shift 3
if [ "$mode" = sanitized ]; then
	echo "consumer test skipped in sanitizer builds (it links without them)"
	exit 77
fi
command -v pkg-config >/dev/null || { echo "pkg-config missing"; exit 1; }
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet
pcdir=$(dirname "$(find "$dest" -name 'exitless-idlepoll.pc' | head -n 1)")
libdir=$(dirname "$(find "$dest" -name 'libexitless-idlepoll.so' | head -n 1)")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$dest"
# The image first; the system's own .pc files for Requires.private of
# third-party libraries (liburing, numa) that static linking needs.
syspc=$(pkg-config --variable pc_path pkg-config 2>/dev/null || true)
export PKG_CONFIG_LIBDIR="$pcdir${syspc:+:$syspc}"
cc=${CC:-cc}
n=0
for lib in "$@"; do
	c="$src/consumer-$lib.c"
	mod="exitless-$lib"
	pkg-config --exists "$mod" || { echo "$mod.pc not installed"; exit 1; }
	echo "== $mod: $(pkg-config --cflags --libs "$mod")"
	$cc -std=c11 -Wall -Wextra -Werror -o "$dest/$lib-shared" "$c" \
		$(pkg-config --cflags --libs "$mod")
	LD_LIBRARY_PATH="$libdir" "$dest/$lib-shared"
	$cc -std=c11 -Wall -Wextra -Werror -o "$dest/$lib-static" "$c" \
		$(pkg-config --static --cflags "$mod") \
		-Wl,-Bstatic $(pkg-config --static --libs-only-l "$mod" | tr ' ' '\n' | grep exitless | tr '\n' ' ') \
		-Wl,-Bdynamic $(pkg-config --static --libs-only-L "$mod") \
		$(pkg-config --static --libs-only-l "$mod" | tr ' ' '\n' | grep -v exitless | tr '\n' ' ')
	"$dest/$lib-static"
	n=$((n + 1))
done
echo "$n consumers built from the installed image and run, shared and static"
