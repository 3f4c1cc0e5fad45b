#!/bin/sh
# Removes the kerberos_cache_access extension: unregisters it from
# osqueryd, runs its --cleanup-audit, removes the binary and the state
# directory. The .pkg installs this next to the binary, in
# /opt/kerberos_cache_access/. Same options as install.sh --uninstall.
exec "$(dirname "$0")/install.sh" --uninstall "$@"
