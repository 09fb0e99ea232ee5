# SPDX-License-Identifier: MIT
# Shared by scripts/demo and scripts/test: make sure the Debian packages are
# there (installing them when root), then configure and build $BUILD_DIR.
# Sourced, not run.

EXITLESS_PACKAGES="meson ninja-build gcc pkg-config liburing-dev libnuma-dev check linux-libc-dev python3 binutils git xz-utils"
# The Linux suite (tests/linux): QEMU, the guest kernel's headers (kbuild
# needs make), a static busybox and cpio for the initramfs. The kernel image
# itself is fetched by the test with `apt-get download`, not installed
# (installing it runs update-initramfs two or three times for nothing).
EXITLESS_PACKAGES="$EXITLESS_PACKAGES qemu-system-x86 linux-headers-amd64 busybox-static cpio make"
# the protocol model (tests/model), the ABI baseline check (scripts/abi-check.sh)
EXITLESS_PACKAGES="$EXITLESS_PACKAGES spin abigail-tools"
# the Rust route (docs/embedding.md): the ABI header stays bindgen-clean
EXITLESS_PACKAGES="$EXITLESS_PACKAGES bindgen"

exitless_missing_packages() {
	missing=""
	for p in $EXITLESS_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	echo "$missing"
}

exitless_install_packages() {
	missing=$(exitless_missing_packages)
	[ -z "$missing" ] && return 0
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "scripts: not a Debian system; install:$missing" >&2
		return 1
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "Missing Debian packages:$missing" >&2
		echo "Run as root:  apt-get update && apt-get install -y$missing" >&2
		return 1
	fi
	echo "Installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -q $missing >/dev/null
}

# exitless_build DIR [meson options...]
exitless_build() {
	dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" || return 1
	fi
	meson compile -C "$dir" || return 1
}
