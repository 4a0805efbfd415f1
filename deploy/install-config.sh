#!/bin/sh
# SPDX-License-Identifier: MIT
# deploy/install-config.sh - run by `meson install` (deploy/meson.build):
# installs vigil's configuration into ETCDIR (under $DESTDIR when set)
# without ever replacing a file that is already there, so a reinstall keeps
# the operator's edits. Files before --rules go to ETCDIR, the rule files
# after it to ETCDIR/rules. Modes 0644 (no secrets in them; the admin token
# and TLS keys are the operator's own files, docs/security.md); the
# ownership and modes systemd needs come from tmpfiles.d/vigil.conf, so a
# directory that exists is left as it is (a reinstall must not make
# /etc/vigil/rules 0755 again: the console's deploys would be refused).
# usage: install-config.sh ETCDIR FILE... --rules FILE...
set -eu
[ $# -ge 1 ] || { echo "install-config.sh: usage: install-config.sh ETCDIR FILE... --rules FILE..." >&2; exit 2; }
etc="${DESTDIR:-}$1"
shift
dir="$etc"
[ -d "$etc" ] || install -d -m 0755 "$etc"
for f in "$@"; do
	if [ "$f" = --rules ]; then
		dir="$etc/rules"
		[ -d "$dir" ] || install -d -m 0755 "$dir"
		continue
	fi
	t="$dir/$(basename "$f")"
	if [ -e "$t" ]; then
		echo "Keeping existing $t (the new default is in the docdir's examples/)" >&2
	else
		install -m 0644 "$f" "$t"
		echo "Installing $f to $dir" >&2
	fi
done
