#!/bin/sh
# Regenerates the Thrift bindings of osquery's extension interface,
# crates/osquery-rust-ng/src/_osquery/osquery.rs, from osquery's IDL beside
# them (crates/osquery-rust-ng/osquery.thrift). One copy serves both the
# fork's server and our client to osqueryd (`osquery_rust_ng::thrift`).
# The output is committed, so builds and CI never need the generator; run
# this only after editing the IDL. Needs the Apache Thrift compiler 0.17 or
# newer (Debian/Ubuntu: apt-get install thrift-compiler, which is 0.17): its
# output builds against the thrift 0.25 runtime we depend on.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
idl="$root/crates/osquery-rust-ng/osquery.thrift"
out="$root/crates/osquery-rust-ng/src/_osquery/osquery.rs"

version=$(thrift --version | awk '{print $3}')
minor=$(echo "$version" | awk -F. '{print $2}')
case "$version" in
0.*) [ "${minor:-0}" -ge 17 ] 2>/dev/null || {
	echo "gen-thrift.sh: need thrift-compiler >= 0.17, found: $version" >&2
	exit 1
} ;;
*)
	echo "gen-thrift.sh: untested thrift-compiler $version (known good: 0.17 to 0.25)" >&2
	exit 1
	;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
thrift --gen rs -out "$tmp" "$idl"

# Keep the generator's header; add lint allowances after its own inner
# attributes so the module passes `clippy -D warnings` wherever it is included.
awk '
	/^#!\[cfg_attr\(rustfmt, rustfmt_skip\)\]/ {
		print
		print "// Lint allowances added by scripts/gen-thrift.sh (generated code)."
		print "#![allow(clippy::all, clippy::pedantic, clippy::unwrap_used, clippy::expect_used, clippy::unwrap_in_result, dead_code, missing_docs, non_camel_case_types, unused_qualifications)]"
		next
	}
	{ print }
' "$tmp/osquery.rs" >"$out"

grep -q '^#!\[allow(clippy::all' "$out" || {
	echo "gen-thrift.sh: generator output changed; could not place lint allowances" >&2
	exit 1
}
echo "wrote $out"
