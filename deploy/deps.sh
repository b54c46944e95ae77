#!/usr/bin/env bash
# deploy/deps.sh - install what tracesift's build, tests and local broker need
#
# usage: deploy/deps.sh [--quiet] [--no-compose]
# Debian's packages, then Docker Compose v2 (for the check of deploy/compose.yaml,
# tests/integration/t7000-deploy.sh) built once from the Go module proxy into
# ~/.cache/tracesift; --no-compose (make demo, make bench) leaves that out.  Does nothing when everything is there; uses sudo only when
# not root.
set -eu

packages=(
	build-essential pkg-config
	librdkafka-dev libcjson-dev libcurl4-openssl-dev libzstd-dev zstd
	openjdk-17-jre-headless maven kcat
	python3 python3-pytest python3-jsonschema python3-venv python3-pip
	jq procps coreutils valgrind
	systemd
)

# Docker Compose, built from its Go module (github.com/docker/compose/v2) as its
# own Makefile builds it; no Docker engine is needed for 'config'.
compose_version=v2.40.3
compose_module=github.com/docker/compose/v2
# The Go its go.mod asks for; an older go (1.21 or later) fetches it from the
# module proxy itself (GOTOOLCHAIN=auto), Debian's go 1.19 is helped to.
compose_go=go1.24.9
cache=${TRACESIFT_CACHE:-$HOME/.cache/tracesift}
compose_dir=$cache/compose-$compose_version
compose_bin=$compose_dir/docker-compose

quiet=0 want_compose=1
for arg in "$@"; do
	case $arg in
	--quiet) quiet=1 ;;
	--no-compose) want_compose=0 ;;
	*) echo "% ERROR: usage: deploy/deps.sh [--quiet] [--no-compose]" >&2; exit 2 ;;
	esac
done

say() { [ "$quiet" = 1 ] || echo "deps: $*"; }
die() {
	echo "% ERROR: $*" >&2
	exit 1
}

sudo=()
if [ "$(id -u)" != 0 ]; then
	sudo=(sudo)
fi

apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: $*"
	if [ ${#sudo[@]} -gt 0 ] && ! command -v sudo >/dev/null 2>&1; then
		die "not root and no sudo; install: $*"
	fi
	echo "deps: installing $*"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Debian's packages ---------------------------------------------------------

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	apt_install "${missing[@]}"
fi

# --- Docker Compose v2 ---------------------------------------------------------

compose_ok() { [ "$("$compose_bin" version --short 2>/dev/null)" = "${compose_version#v}" ]; }

# go1.X.Y of a go binary, as a sortable number (1.24.9 -> 1024009), or nothing.
go_number() {
	local v
	v=$("$1" env GOVERSION 2>/dev/null) || return 0
	v=${v#go}
	v=${v%%[!0-9.]*}
	awk -F. '{ printf "%d\n", $1 * 1000000 + $2 * 1000 + $3 }' <<<"$v"
}

# A go that can build compose: one of 1.21 or later (it fetches compose_go
# itself), else Debian's 1.19, which only downloads compose_go's toolchain
# module from the proxy (the module the go command itself would fetch).
find_go() {
	local g n
	for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
		[ -n "$g" ] && [ -x "$g" ] || continue
		n=$(go_number "$g")
		if [ -n "$n" ] && [ "$n" -ge 1021000 ]; then
			echo "$g"
			return 0
		fi
	done
	[ -x /usr/lib/go-1.19/bin/go ] || apt_install golang-1.19-go >&2
	local arch dir
	arch=$(dpkg --print-architecture)
	dir=$(GOPATH="$work/gopath" GOMODCACHE="$work/mod" /usr/lib/go-1.19/bin/go \
		mod download -json "golang.org/toolchain@v0.0.1-$compose_go.linux-$arch" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || return 1
	[ -n "$dir" ] || return 1
	# module files are read-only and lose their modes: copy, and make the tools runnable
	cp -r "$dir" "$work/goroot"
	chmod -R u+w "$work/goroot"
	chmod u+x "$work/goroot/bin/"* "$work/goroot/pkg/tool/"*/*
	echo "$work/goroot/bin/go"
}

build_compose() {
	local go src start log
	start=$(date +%s)
	work=$(mktemp -d "${TMPDIR:-/tmp}/tracesift-compose.XXXXXX")
	trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
	echo "deps: building docker compose $compose_version from the Go module proxy (once, about 3 minutes)"
	mkdir -p "$compose_dir"
	log=$compose_dir/build.log
	: >"$log"
	go=$(find_go 2>>"$log") || die "no Go to build docker compose with (log: $log)"
	export GOPATH=$work/gopath GOMODCACHE=$work/mod GOCACHE=$work/cache GOTOOLCHAIN=auto
	export CGO_ENABLED=0
	src=$("$go" mod download -json "$compose_module@$compose_version" 2>>"$log" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$src" ] || die "cannot download $compose_module@$compose_version (log: $log)"
	# Built in a copy, as its own main module: its go.mod's exclude directives
	# keep 'go install module@version' from building it.
	cp -r "$src" "$work/src"
	chmod -R u+w "$work/src"
	if ! (cd "$work/src" && GOFLAGS=-buildvcs=false "$go" build -trimpath \
		-ldflags "-s -w -X $compose_module/internal.Version=$compose_version" \
		-o "$compose_bin.tmp" ./cmd) >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		die "building docker compose failed (log: $log)"
	fi
	mv -f "$compose_bin.tmp" "$compose_bin"
	compose_ok || die "'$compose_bin' does not say it is $compose_version"
	echo "deps: docker compose $compose_version in $compose_bin ($(($(date +%s) - start)) s)"
}

# A machine that cannot build it still gets the rest of 'make test':
# t7000-deploy then fails and says why.
if [ "$want_compose" = 1 ] && ! compose_ok; then
	(build_compose) || echo "% warning: no docker compose $compose_version: the check of deploy/compose.yaml (t7000) will fail" >&2
fi

say "all installed"
