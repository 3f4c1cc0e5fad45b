#!/usr/bin/env bash
# Builds the universal (arm64 + x86_64) macOS extension and its .pkg, and
# checks both. On Linux it links with zig (cargo-zigbuild, from PyPI) against
# the framework stubs in packaging/macos/stubs; on a Mac it uses Xcode's
# toolchain. See README.md, "Building for macOS".
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/build-macos.sh [--out DIR] [--no-pkg] [signing options]

Writes DIR/kerberos_cache_access.ext (universal, minos 11.0) and
DIR/kerberos_cache_access-VERSION.pkg (DIR default: dist/), after checking
the architectures, minimum macOS, linked libraries, symbol bindings and
code-signature hashes (scripts/macos/verify.py).

Signing: by default the arm64 slice carries the linker's ad-hoc signature,
which is all arm64 macOS needs to run it (zig leaves the x86_64 slice
unsigned, which Intel macOS accepts). For a Developer ID signature:
  on Linux (rcodesign, from `cargo install apple-codesign`):
    --p12 FILE --p12-password-file FILE             Developer ID Application
    --installer-p12 FILE --installer-password-file FILE   Developer ID Installer (.pkg)
    --notary-api-key FILE     notarize and staple the .pkg (App Store Connect
                              API key JSON from `rcodesign encode-app-store-connect-api-key`)
  on a Mac (codesign, productsign, notarytool):
    --identity "Developer ID Application: NAME (TEAMID)"
    --installer-identity "Developer ID Installer: NAME (TEAMID)"
    --notary-profile NAME     a `xcrun notarytool store-credentials` profile

Exit status: 0 built and verified; 1 failed; 2 the link needs framework
symbols the stubs lack (run scripts/gen-macos-stubs.sh); 3 the Linux
toolchain (Rust targets, zig, cargo-zigbuild) could not be installed.
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/dist
make_pkg=1
p12='' p12_pw='' inst_p12='' inst_pw='' api_key='' identity='' inst_identity='' profile=''
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift ;;
	--no-pkg) make_pkg=0 ;;
	--p12) p12=$2; shift ;;
	--p12-password-file) p12_pw=$2; shift ;;
	--installer-p12) inst_p12=$2; shift ;;
	--installer-password-file) inst_pw=$2; shift ;;
	--notary-api-key) api_key=$2; shift ;;
	--identity) identity=$2; shift ;;
	--installer-identity) inst_identity=$2; shift ;;
	--notary-profile) profile=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "build-macos.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
	esac
	shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

name=kerberos_cache_access
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
ext=$out/$name.ext
pkg=$out/$name-$version.pkg
log=$root/target/macos-build.log
mkdir -p "$root/target"
start=$(date +%s)
host=$(uname -s)

loud() {
	echo "################################################################" >&2
	printf '%s\n' "$@" >&2
	echo "################################################################" >&2
}

if [ "$host" = Darwin ]; then
	export MACOSX_DEPLOYMENT_TARGET=11.0
	export RUSTFLAGS="-C link-arg=-Wl,-dead_strip_dylibs"
	for t in aarch64-apple-darwin x86_64-apple-darwin; do
		rustup target add "$t" >/dev/null
		(cd "$root" && cargo build --release --locked --target "$t" --bin "$name")
	done
	lipo -create -output "$ext" \
		"$root/target/aarch64-apple-darwin/release/$name" \
		"$root/target/x86_64-apple-darwin/release/$name"
	stubs_arg=()
else
	# shellcheck source=lib/macos-toolchain.sh
	. "$root/scripts/lib/macos-toolchain.sh"
	if ! kca_linux_toolchain; then
		loud "build-macos.sh: the macOS toolchain (Rust darwin targets, zig, cargo-zigbuild)" \
			"could not be installed; nothing was built."
		exit 3
	fi
	kca_use_stubs
	# Cargo does not know the stubs are link inputs: after they change, make
	# it relink (touching the binary's root rebuilds only that crate).
	stubs_sum=$(find "$KCA_STUBS" -name '*.tbd' -type f | LC_ALL=C sort | xargs cat | cksum)
	stamp=$root/target/macos-stubs.sum
	if [ "$(cat "$stamp" 2>/dev/null)" != "$stubs_sum" ]; then
		touch "$root/src/main.rs"
	fi
	echo "== cargo zigbuild --release --target universal2-apple-darwin (log: $log)"
	if ! (cd "$root" && cargo zigbuild --release --locked --target universal2-apple-darwin --bin "$name") >"$log" 2>&1; then
		missing=$(kca_undefined_symbols "$log")
		if [ -n "$missing" ]; then
			loud "build-macos.sh: the macOS link needs framework symbols that" \
				"packaging/macos/stubs does not list (a dependency changed):" \
				"$(printf '    %s\n' $missing)" \
				"Run scripts/gen-macos-stubs.sh, review the diff, commit it."
			exit 2
		fi
		tail -n 40 "$log" >&2
		echo "build-macos.sh: the macOS build failed; full log: $log" >&2
		exit 1
	fi
	grep -E '^(warning: unused|error)' "$log" >&2 || true
	printf '%s\n' "$stubs_sum" >"$stamp"
	cp "$root/target/universal2-apple-darwin/release/$name" "$ext"
	stubs_arg=(--stubs "$KCA_STUBS")
fi
chmod 0755 "$ext"
built=$(date +%s)

# Signing. The linker already signed ad hoc; these replace that signature.
if [ -n "$identity" ]; then
	codesign --force --options runtime --timestamp --sign "$identity" "$ext"
	codesign --verify --strict --verbose=2 "$ext"
elif [ -n "$p12" ]; then
	command -v rcodesign >/dev/null || { echo "build-macos.sh: --p12 needs rcodesign (cargo install apple-codesign)" >&2; exit 1; }
	rcodesign sign --p12-file "$p12" ${p12_pw:+--p12-password-file "$p12_pw"} \
		--code-signature-flags runtime --for-notarization "$ext"
fi

echo "== verify $ext"
signed=arm64
[ -z "$identity$p12" ] || signed=all
python3 "$root/scripts/macos/verify.py" binary "$ext" --minos 11.0 --signed "$signed" "${stubs_arg[@]}"

if [ "$host" = Darwin ]; then
	# Binds every lazily bound framework symbol at launch: a stub symbol in
	# the wrong framework fails here instead of at first use.
	echo "== smoke test: DYLD_BIND_AT_LAUNCH=1 $ext --help"
	DYLD_BIND_AT_LAUNCH=1 "$ext" --help >/dev/null
	if arch -x86_64 /usr/bin/true 2>/dev/null; then
		DYLD_BIND_AT_LAUNCH=1 arch -x86_64 "$ext" --help >/dev/null
	fi
fi

if [ "$make_pkg" = 1 ]; then
	echo "== pkg"
	(cd "$root/tools/pkg" && cargo build --locked --quiet --target-dir "$root/target/tools")
	"$root/target/tools/debug/kca-pkg" --out "$pkg" --version "$version" \
		--install-location "/opt/$name" \
		--file "$name.ext=$ext" \
		--file "install.sh=$root/scripts/install.sh" \
		--file "uninstall.sh=$root/scripts/uninstall.sh" \
		--postinstall "$root/packaging/macos/postinstall"
	if [ -n "$inst_identity" ]; then
		productsign --sign "$inst_identity" "$pkg" "$pkg.signed"
		mv -f "$pkg.signed" "$pkg"
	elif [ -n "$inst_p12" ]; then
		rcodesign sign --p12-file "$inst_p12" ${inst_pw:+--p12-password-file "$inst_pw"} "$pkg" "$pkg.signed"
		mv -f "$pkg.signed" "$pkg"
	fi
	if [ -n "$profile" ]; then
		xcrun notarytool submit "$pkg" --keychain-profile "$profile" --wait
		xcrun stapler staple "$pkg"
	elif [ -n "$api_key" ]; then
		rcodesign notary-submit --api-key-file "$api_key" --staple "$pkg"
	fi
	echo "== verify $pkg"
	python3 "$root/scripts/macos/verify.py" pkg "$pkg" --binary "$ext"
fi

end=$(date +%s)
echo "== built in $((built - start)) s, total $((end - start)) s"
for f in "$ext" ${make_pkg:+$([ "$make_pkg" = 1 ] && echo "$pkg")}; do
	[ -f "$f" ] || continue
	if command -v sha256sum >/dev/null; then sum=$(sha256sum "$f"); else sum=$(shasum -a 256 "$f"); fi
	sum=${sum%% *}
	printf '%10d  %s  %s\n' "$(wc -c <"$f")" "$sum" "$f"
done
