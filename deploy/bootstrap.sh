#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs every build, test and run dependency of vigil from Debian 12
# packages. Idempotent: packages already present are left alone. Run as root
# (or with sudo available). Exits non-zero with a one-line reason on failure.
set -eu

PKGS="meson ninja-build pkg-config gcc clang llvm
libnng-dev libmbedtls-dev nng-utils openssl libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
liblmdb-dev lmdb-utils libevent-dev libcmocka-dev libjansson-dev libinih-dev
libxxhash-dev libzstd-dev uthash-dev libsystemd-dev systemd libxgboost-dev libssl-dev
python3 python3-protobuf curl procps shellcheck pandoc
libmbedtls-dev libjs-chart.js python3-selenium
libnats-dev nats-server
slurmctld slurmd slurm-client munge python3-yaml"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ] && command -v chromium >/dev/null 2>&1 \
	&& command -v chromedriver >/dev/null 2>&1; then
	echo "bootstrap: all dependencies present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "bootstrap: need root or sudo to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || { echo "bootstrap: apt-get update failed" >&2; exit 1; }
if [ -n "$missing" ]; then
	echo "bootstrap: installing:$missing"
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null \
		|| { echo "bootstrap: apt-get install failed for:$missing" >&2; exit 1; }
fi
# Headless Chromium renders the replay report in one test, and chromedriver
# drives vigil-console's web UI in another; best effort (the tests skip with
# a message when no browser can start).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
	$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
		|| echo "bootstrap: chromium/chromium-driver not installed (the browser tests will be skipped)"
fi
echo "bootstrap: done"
