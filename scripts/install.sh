#!/bin/sh
# Installs the kerberos_cache_access osquery extension where osqueryd
# autoloads it, on Linux and macOS, and undoes it with --uninstall. The
# .pkg and .deb run this same script from their maintainer scripts, so
# every route installs the same way. POSIX sh: Debian's dash and macOS's
# bash 3.2 both run it.
set -eu

NAME=kerberos_cache_access
DIR=/opt/$NAME
EXT=$DIR/$NAME.ext
PKG_ID=io.kerberos-cache-access.extension

usage() {
	cat <<EOF
Usage: install.sh [options] [BINARY]
       install.sh --uninstall [options]

Installs BINARY (default: ./$NAME.ext, else target/release/$NAME) as
  $EXT      root-owned, mode 0755, in a root-owned
                                 0755 directory without the sticky bit
adds that path, once, to osqueryd's autoload file
  Linux: /etc/osquery/extensions.load   macOS: /var/osquery/extensions.load
and restarts osqueryd if it is running. Copies of this script and
uninstall.sh go next to the binary.

--uninstall removes that line, restarts osqueryd, runs the binary's
--cleanup-audit (puts back any audit configuration it changed), removes
the binary, the scripts and the state directory
  Linux: /var/lib/$NAME   macOS: /var/db/$NAME

Options:
  --root DIR           act on the tree under DIR (a staging root, a test);
                       services are never restarted then
  --os linux|macos     the target system (default: this one)
  --packaged           a package (.pkg, .deb) owns the binary: only register
                       it, or with --uninstall only unregister and clean up
  --no-restart         do not restart osqueryd
  --keep-state         with --uninstall: keep the state directory
  --no-cleanup-audit   with --uninstall: do not run --cleanup-audit
  --dry-run            print the equivalent commands for a by-hand install
  -h, --help           this text
EOF
}

die() {
	echo "install.sh: $*" >&2
	exit 1
}
say() { echo "install.sh: $*"; }

root=/
os=
mode=install
packaged=0
restart=1
keep_state=0
cleanup=1
dry_run=0
binary=
while [ $# -gt 0 ]; do
	case "$1" in
	--root)
		[ $# -ge 2 ] || die "--root needs a directory"
		root=$2
		shift
		;;
	--os)
		[ $# -ge 2 ] || die "--os needs linux or macos"
		os=$2
		shift
		;;
	--uninstall) mode=uninstall ;;
	--packaged) packaged=1 ;;
	--no-restart) restart=0 ;;
	--keep-state) keep_state=1 ;;
	--no-cleanup-audit) cleanup=0 ;;
	--dry-run) dry_run=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	-*) die "unknown option $1 (see --help)" ;;
	*)
		[ -z "$binary" ] || die "one BINARY only"
		binary=$1
		;;
	esac
	shift
done

if [ -z "$os" ]; then
	case "$(uname -s)" in
	Linux) os=linux ;;
	Darwin) os=macos ;;
	*) die "unsupported system $(uname -s); pass --os linux or --os macos" ;;
	esac
fi
case "$os" in
linux)
	LOAD=/etc/osquery/extensions.load
	STATE=/var/lib/$NAME
	RESTART="systemctl try-restart osqueryd"
	;;
macos)
	LOAD=/var/osquery/extensions.load
	STATE=/var/db/$NAME
	RESTART="launchctl kickstart -k system/io.osquery.agent"
	;;
*) die "--os must be linux or macos, not $os" ;;
esac

if [ -z "$binary" ] && [ "$mode" = install ] && [ "$packaged" = 0 ]; then
	if [ -f "./$NAME.ext" ]; then
		binary=./$NAME.ext
	else
		binary=target/release/$NAME
	fi
fi

if [ "$dry_run" = 1 ]; then
	# The same steps as below, as commands a person can paste. README.md
	# quotes this output; tests/install.rs checks that it still does.
	[ "$mode" = install ] || die "--dry-run shows the install only"
	echo "sudo install -d -o root -g 0 -m 0755 $DIR"
	echo "sudo install -o root -g 0 -m 0755 $binary $EXT"
	echo "sudo mkdir -p $(dirname "$LOAD")"
	echo "grep -qxF $EXT $LOAD 2>/dev/null || echo $EXT | sudo tee -a $LOAD"
	echo "sudo $RESTART"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root (sudo): the extension must be root-owned for osqueryd to load it"
[ -d "$root" ] || die "--root $root is not a directory"
R=${root%/}
[ -z "$R" ] || restart=0

# "drwxr-xr-x" and the numeric owner of a path, without GNU/BSD stat
# differences.
perms() { ls -ldn "$1" | awk '{print $1}'; }
owner() { ls -ldn "$1" | awk '{print $3}'; }

# osqueryd's own autoload check (osquery/filesystem: safePermissions), as it
# applies it to an extensions.load entry: the name ends in .ext, the parent
# directory has no sticky bit, the file is a regular file owned by root (or
# osqueryd's user: root here), executable by its owner, not world-writable.
osquery_would_load() {
	f=$1
	case "$f" in *.ext) ;; *) return 1 ;; esac
	[ -f "$f" ] && [ ! -L "$f" ] || return 1
	p=$(perms "$(dirname "$f")")
	case "$p" in *[tT]) return 1 ;; esac
	p=$(perms "$f")
	[ "$(owner "$f")" = 0 ] || return 1
	case "$p" in ???[xs]*) ;; *) return 1 ;; esac
	case "$p" in ????????w?) return 1 ;; esac
	return 0
}

# Stricter than osqueryd, which checks only the sticky bit: the directory
# and every one above it must be root's and writable by root alone, or a
# local user could swap the file that osqueryd runs as root.
check_parents() {
	d=$(dirname "$1")
	[ ! -L "$R$d" ] || die "$R$d is a symbolic link; refusing to install through it"
	while :; do
		if [ -e "$R$d" ]; then
			p=$(ls -ldnL "$R$d" | awk '{print $1}')
			o=$(ls -ldnL "$R$d" | awk '{print $3}')
			[ "$o" = 0 ] || die "$R$d is owned by uid $o, not root; refusing to install below it"
			case "$p" in
			?????w???? | ????????w?) die "$R$d ($p) is writable by others than root; refusing to install below it" ;;
			*[tT]) die "$R$d ($p) has the sticky bit; osqueryd will not load extensions from it" ;;
			esac
		fi
		[ "$d" != / ] || break
		d=$(dirname "$d")
	done
}

restart_osqueryd() {
	[ "$restart" = 1 ] || return 0
	case "$os" in
	linux)
		if command -v systemctl >/dev/null 2>&1; then
			say "restarting osqueryd (if it runs)"
			systemctl try-restart osqueryd || say "warning: could not restart osqueryd"
			if systemctl is-active --quiet orbit 2>/dev/null; then
				say "fleetd (orbit) runs here: it reads its own extensions.load; see docs/deploy-macos.md (Fleet)"
			fi
		else
			say "restart osqueryd yourself (no systemctl here)"
		fi
		;;
	macos)
		if launchctl print system/io.osquery.agent >/dev/null 2>&1; then
			say "restarting osqueryd (io.osquery.agent)"
			launchctl kickstart -k system/io.osquery.agent || say "warning: could not restart osqueryd"
		fi
		if launchctl print system/com.fleetdm.orbit >/dev/null 2>&1; then
			# This may run under orbit itself (a Fleet software install), so
			# the restart is detached and delayed, as Fleet's guide does.
			say "restarting fleetd (com.fleetdm.orbit) in 10 s, detached"
			(sleep 10 && launchctl kickstart -k system/com.fleetdm.orbit) </dev/null >/dev/null 2>&1 &
		fi
		;;
	esac
}

register() {
	load=$R$LOAD
	if [ ! -d "$(dirname "$load")" ]; then
		mkdir -p "$(dirname "$load")"
		chmod 0755 "$(dirname "$load")"
	fi
	if [ -f "$load" ] && grep -qxF "$EXT" "$load"; then
		say "$LOAD already lists $EXT"
		return 0
	fi
	# Never glue our line onto a last line that has no newline.
	if [ -s "$load" ] && [ "$(tail -c 1 "$load" | od -An -c | tr -d ' ')" != '\n' ]; then
		echo >>"$load"
	fi
	echo "$EXT" >>"$load"
	chmod go-w "$load"
	say "added $EXT to $LOAD"
}

unregister() {
	load=$R$LOAD
	[ -f "$load" ] || return 0
	grep -qxF "$EXT" "$load" || return 0
	# Rewritten in place, so its owner, mode (and a symbolic link) stay.
	rest=$(grep -vxF "$EXT" "$load" || true)
	if [ -n "$rest" ]; then printf '%s\n' "$rest" >"$load"; else : >"$load"; fi
	say "removed $EXT from $LOAD"
}

# Runs "$@" for at most $1 seconds (no timeout(1) on macOS).
with_timeout() {
	secs=$1
	shift
	"$@" &
	pid=$!
	(sleep "$secs" && kill "$pid" 2>/dev/null) </dev/null >/dev/null 2>&1 &
	watchdog=$!
	status=0
	wait "$pid" || status=$?
	kill "$watchdog" 2>/dev/null || true
	return "$status"
}

if [ "$mode" = install ]; then
	check_parents "$EXT"
	if [ "$packaged" = 0 ]; then
		[ -f "$binary" ] || die "no binary at $binary (build it: cargo build --release)"
		mkdir -p "$R$DIR"
		chown 0:0 "$R$DIR"
		chmod 0755 "$R$DIR"
		# Replace atomically: a running copy keeps its old file.
		cp "$binary" "$R$EXT.new"
		chown 0:0 "$R$EXT.new"
		chmod 0755 "$R$EXT.new"
		mv -f "$R$EXT.new" "$R$EXT"
		here=$(cd "$(dirname "$0")" && pwd)
		if [ "$here" != "$R$DIR" ]; then
			for s in install.sh uninstall.sh; do
				[ -f "$here/$s" ] || continue
				cp "$here/$s" "$R$DIR/$s.new"
				chown 0:0 "$R$DIR/$s.new"
				chmod 0755 "$R$DIR/$s.new"
				mv -f "$R$DIR/$s.new" "$R$DIR/$s"
			done
		fi
		if [ "$os" = macos ] && [ -z "$R" ] && command -v xattr >/dev/null 2>&1; then
			xattr -d com.apple.quarantine "$EXT" 2>/dev/null || true
		fi
		say "installed $EXT"
	fi
	osquery_would_load "$R$EXT" ||
		die "$EXT ($(perms "$R$EXT" 2>/dev/null || echo missing)) would be refused by osqueryd's autoload check"
	say "$EXT passes osqueryd's autoload checks (root-owned, owner-executable, not world-writable, no sticky parent, .ext)"
	register
	restart_osqueryd
	exit 0
fi

# --uninstall: stop osqueryd from starting it, let the running copy exit
# (it restores the audit configuration on SIGTERM), then clean up after any
# copy that could not.
unregister
restart_osqueryd
if [ "$cleanup" = 1 ] && [ -x "$R$EXT" ]; then
	say "running $NAME.ext --cleanup-audit --state-dir $R$STATE"
	with_timeout 30 "$R$EXT" --cleanup-audit --state-dir "$R$STATE" ||
		say "warning: --cleanup-audit failed (see above); run it again once no instance runs"
fi
if [ "$packaged" = 0 ]; then
	rm -f "$R$EXT" "$R$DIR/install.sh" "$R$DIR/uninstall.sh"
	rmdir "$R$DIR" 2>/dev/null || true
	say "removed $EXT"
fi
if [ "$keep_state" = 0 ] && [ -e "$R$STATE" ]; then
	rm -rf -- "$R$STATE"
	say "removed $STATE"
fi
if [ "$os" = macos ] && [ -z "$R" ] && command -v pkgutil >/dev/null 2>&1; then
	pkgutil --forget "$PKG_ID" >/dev/null 2>&1 || true
fi
exit 0
