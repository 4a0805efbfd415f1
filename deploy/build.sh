#!/bin/sh
# SPDX-License-Identifier: MIT
# Configures (or reconfigures) and builds vigil with meson.
# usage: deploy/build.sh [BUILDDIR [MESON_OPTION...]]   (default BUILDDIR: build)
# Example: deploy/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false
# A release build (--buildtype=release) is link-time optimised (-Db_lto=true)
# unless a b_lto option is given: offline replay is ~5% faster with it
# (docs/BENCHMARKS.md, issue 7).
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
[ $# -gt 0 ] && shift
release=no
lto=no
prev=
for a in "$@"; do
	case "$prev$a" in
	--buildtype=release | "--buildtype release" | -Dbuildtype=release | "-D buildtype=release")
		release=yes ;;
	-Db_lto=* | "-D b_lto="*) lto=yes ;;
	esac
	case "$a" in
	--buildtype | -D) prev="$a " ;;
	*) prev= ;;
	esac
done
if [ $release = yes ] && [ $lto = no ]; then
	set -- "$@" -Db_lto=true
fi
if [ -f "$dir/build.ninja" ]; then
	meson setup --reconfigure "$dir" "$@" >/dev/null
else
	meson setup "$dir" "$@" >/dev/null
fi
echo "build: compiling in $dir"
ninja -C "$dir"
