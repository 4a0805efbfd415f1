#!/bin/sh
# SPDX-License-Identifier: MIT
# Configures (or reconfigures) and builds vigil with meson.
# usage: deploy/build.sh [BUILDDIR [MESON_OPTION...]]   (default BUILDDIR: build)
# Example: deploy/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
[ $# -gt 0 ] && shift
if [ -f "$dir/build.ninja" ]; then
	meson setup --reconfigure "$dir" "$@" >/dev/null
else
	meson setup "$dir" "$@" >/dev/null
fi
echo "build: compiling in $dir"
ninja -C "$dir"
