#!/bin/sh
# Builds the Linux .deb: the same files, places and registration as
# scripts/install.sh (its maintainer scripts call the installed copy of it),
# written with dpkg-deb so no cargo plugin is needed.
#
#   scripts/build-deb.sh [--binary FILE] [--out DIR] [--arch ARCH]
#
# Without --binary it runs `cargo build --release --locked` first.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
binary=
out=$root/dist
arch=
while [ $# -gt 0 ]; do
	case "$1" in
	--binary) binary=$2; shift ;;
	--out) out=$2; shift ;;
	--arch) arch=$2; shift ;;
	-h | --help) sed -n '2,8p' "$0"; exit 0 ;;
	*) echo "build-deb.sh: unknown argument $1" >&2; exit 1 ;;
	esac
	shift
done
command -v dpkg-deb >/dev/null || { echo "build-deb.sh: needs dpkg-deb (Debian/Ubuntu: apt-get install dpkg)" >&2; exit 1; }
if [ -z "$binary" ]; then
	(cd "$root" && cargo build --release --locked --bin kerberos_cache_access)
	binary=$root/target/release/kerberos_cache_access
fi
[ -f "$binary" ] || { echo "build-deb.sh: no binary at $binary" >&2; exit 1; }
[ -n "$arch" ] || arch=$(dpkg --print-architecture)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dir=$stage/opt/kerberos_cache_access
mkdir -p "$dir" "$stage/DEBIAN"
install -m 0755 "$binary" "$dir/kerberos_cache_access.ext"
install -m 0755 "$root/scripts/install.sh" "$root/scripts/uninstall.sh" "$dir/"
for s in postinst prerm postrm; do
	install -m 0755 "$root/packaging/deb/$s" "$stage/DEBIAN/$s"
done
chmod 0755 "$stage" "$stage/opt" "$dir"
cat >"$stage/DEBIAN/control" <<EOF
Package: kerberos-cache-access
Version: $version
Architecture: $arch
Maintainer: kerberos-cache-access maintainers <noreply@invalid>
Section: admin
Priority: optional
Enhances: osquery
Installed-Size: $(du -sk "$stage/opt" | cut -f1)
Description: osquery extension detecting Kerberos credential-cache dumping
 Installs kerberos_cache_access.ext in /opt/kerberos_cache_access and
 registers it in /etc/osquery/extensions.load, so osqueryd autoloads it.
EOF
mkdir -p "$out"
deb=$out/kerberos-cache-access_${version}_$arch.deb
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >/dev/null
echo "$deb"
