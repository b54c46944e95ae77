#!/usr/bin/env bash
# deploy/deps.sh - install from Debian's packages what tracesift's build, tests and local broker need
#
# usage: deploy/deps.sh [--quiet]
# Does nothing when everything is there; uses sudo only when not root.
set -eu

packages=(
	build-essential pkg-config
	librdkafka-dev libcjson-dev libcurl4-openssl-dev libzstd-dev zstd
	openjdk-17-jre-headless maven kcat
	python3 python3-pytest python3-jsonschema python3-venv python3-pip
	jq procps coreutils valgrind
)

quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	[ "$quiet" = 1 ] || echo "deps: all installed"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "% ERROR: apt-get not found; install by hand: ${missing[*]}" >&2
	exit 1
fi

sudo=()
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "% ERROR: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
	sudo=(sudo)
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
