# shellcheck shell=bash
# Shared by build-macos.sh and gen-macos-stubs.sh: the tools that link a
# macOS binary on Linux (zig and cargo-zigbuild from PyPI, in a private venv
# that is reused between runs) and the flags that point the link at our
# framework stubs. Sourced, not run.

KCA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KCA_STUBS="$KCA_ROOT/packaging/macos/stubs"
KCA_TARGETS=(aarch64-apple-darwin x86_64-apple-darwin)
# Pinned to the versions the stubs and checks were made with; override to try
# newer ones.
KCA_ZIGLANG=${KCA_ZIGLANG:-ziglang==0.17.1}
KCA_ZIGBUILD=${KCA_ZIGBUILD:-cargo-zigbuild==0.24.1}
KCA_TOOLS=${KCA_MACOS_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/kerberos_cache_access/macos-tools}
# zig stamps minos 15.0 unless told; 11.0 is the oldest macOS we support.
export MACOSX_DEPLOYMENT_TARGET=11.0

kca_log() { printf '%s\n' "$*" >&2; }

# Installs (or reuses) the Rust targets, zig and cargo-zigbuild; puts the
# venv on PATH. Returns non-zero, with the reason on stderr, when something
# cannot be fetched: the caller decides whether that is fatal.
kca_linux_toolchain() {
	local t
	for t in "${KCA_TARGETS[@]}"; do
		if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
			rustup target add "$t" >&2 || {
				kca_log "could not add the Rust target $t"
				return 1
			}
		fi
	done
	local want="$KCA_ZIGLANG $KCA_ZIGBUILD"
	if [ ! -x "$KCA_TOOLS/bin/cargo-zigbuild" ] || [ "$(cat "$KCA_TOOLS/.pins" 2>/dev/null)" != "$want" ]; then
		kca_log "installing $want into $KCA_TOOLS"
		rm -rf "$KCA_TOOLS"
		# shellcheck disable=SC2086 # two package specs
		if ! { python3 -m venv "$KCA_TOOLS" >&2 &&
			"$KCA_TOOLS/bin/pip" install --quiet $want >&2; }; then
			rm -rf "$KCA_TOOLS"
			kca_log "could not install $want from PyPI"
			return 1
		fi
		printf '%s' "$want" >"$KCA_TOOLS/.pins"
	fi
	export PATH="$KCA_TOOLS/bin:$PATH"
}

# Points the darwin targets' links at the stubs in $1 (default: the
# committed ones). Per-target variables, so host builds (build scripts, the
# .pkg helper) keep their own flags.
kca_use_stubs() {
	local stubs=${1:-$KCA_STUBS}
	local flags="-L native=$stubs -C link-arg=-F$stubs -C link-arg=-Wl,-dead_strip_dylibs"
	export CARGO_TARGET_AARCH64_APPLE_DARWIN_RUSTFLAGS="$flags"
	export CARGO_TARGET_X86_64_APPLE_DARWIN_RUSTFLAGS="$flags"
}

# The symbols a failed link could not find, one per line, from its log.
kca_undefined_symbols() {
	grep -o 'undefined symbol: [_$A-Za-z0-9.]*' "$1" | sed 's/^undefined symbol: //' | sort -u
}
