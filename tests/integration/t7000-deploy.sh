#!/usr/bin/env bash
# tests/integration/t7000-deploy.sh - deploy/ files: compose config, systemd units, and flags the programs know
#
# - `docker compose config` accepts deploy/compose.yaml (Docker Compose v2, no
#   engine needed: the docker CLI with the plugin, else the plugin binary that
#   deploy/deps.sh builds into ~/.cache/tracesift);
# - `systemd-analyze verify` has nothing to say about any unit (with ExecStart
#   pointed at this tree's bin/, since the units name /usr/local/bin);
# - every flag a unit's ExecStart or a compose service's command gives a program
#   appears in that program's --help, and every config file they name exists in
#   deploy/ or is the evaluator's (so the files cannot drift from the programs);
# - the compose topics service creates what deploy/kafka/topics.sh lists.
. "$(dirname "$0")/../lib.sh"
t_workdir t7000   # sets $work

deploy=$TS_TOP/deploy
compose_version=$(sed -n 's/^compose_version=//p' "$deploy/deps.sh")
cache=${TRACESIFT_CACHE:-$HOME/.cache/tracesift}

# `docker compose` as the issue names it: the docker CLI with the compose plugin
# (a private DOCKER_CONFIG holding a link to the cached plugin when the CLI has
# none), or the plugin binary itself when there is no docker CLI.
compose() {
	if docker compose version >/dev/null 2>&1; then
		docker compose "$@"
	elif command -v docker >/dev/null 2>&1; then
		mkdir -p "$work/docker/cli-plugins"
		ln -sf "$cache/compose-$compose_version/docker-compose" "$work/docker/cli-plugins/docker-compose"
		DOCKER_CONFIG=$work/docker docker compose "$@"
	else
		"$cache/compose-$compose_version/docker-compose" "$@"
	fi
}

compose_config() {
	local out
	if ! out=$(compose -f "$deploy/compose.yaml" config -q 2>&1); then
		t_fail "docker compose config: $out"
		return
	fi
	[ -z "$out" ] || {
		t_fail "docker compose config said: $out"
		return
	}
	compose -f "$deploy/compose.yaml" config --format json >"$work/compose.json" 2>"$work/err" || {
		t_fail "docker compose config --format json: $(cat "$work/err")"
		return
	}
	local v
	v=$(compose version --short 2>&1)
	echo "# docker compose $v"
	[ "$v" = "${compose_version#v}" ] || [ -n "${TS_COMPOSE_ANY:-}" ] || {
		t_fail "docker compose is $v, deploy/deps.sh installs $compose_version"
		return
	}
	t_ok
}

# The units with ExecStart in this tree's bin/ (systemd-analyze checks that the
# command exists); the template as instance 1.
units_here() {
	mkdir -p "$work/units"
	local u name
	for u in "$deploy"/systemd/*.service; do
		name=$(basename "$u")
		[ "$name" = tracesift-sampler@.service ] && name=tracesift-sampler@1.service
		sed "s#/usr/local/bin/#$TS_BIN/#" "$u" >"$work/units/$name"
	done
}

systemd_verify() {
	if ! command -v systemd-analyze >/dev/null 2>&1; then
		echo "# systemd-analyze not found (deploy/deps.sh installs systemd): not checked"
		t_ok
		return
	fi
	units_here
	local u out bad=0
	for u in "$work"/units/*.service; do
		case $u in
		*evaluator*)
			if [ ! -x "$TS_BIN/tracesift-evaluator" ]; then
				echo "# $(basename "$u"): bin/tracesift-evaluator not built yet: verified with a stand-in"
				printf '#!/bin/sh\nexit 0\n' >"$work/tracesift-evaluator"
				chmod +x "$work/tracesift-evaluator"
				sed -i "s#$TS_BIN/tracesift-evaluator#$work/tracesift-evaluator#" "$u"
			fi
			;;
		esac
		# any message at all is a finding: verify exits 0 on unknown keys and bad values
		if ! out=$(cd "$work/units" && systemd-analyze verify "./$(basename "$u")" 2>&1) || [ -n "$out" ]; then
			echo "# $(basename "$u"): $out"
			bad=1
		fi
	done
	if [ "$bad" = 0 ]; then t_ok; else t_fail "systemd-analyze verify found problems"; fi
}

# "PROGRAM ARG..." lines: every command the units and the compose file run.
commands() {
	local u
	for u in "$deploy"/systemd/*.service; do
		sed -n 's#^ExecStart=[-@:+!]*/usr/local/bin/##p' "$u"
	done
	python3 - "$work/compose.json" <<-'EOF'
		import json, shlex, sys
		c = json.load(open(sys.argv[1]))
		for name, s in c["services"].items():
		    cmd = s.get("command") or []
		    if cmd and cmd[0].startswith("tracesift-"):
		        print(shlex.join(cmd))
		    hc = (s.get("healthcheck") or {}).get("test") or []
		    if hc[:1] == ["CMD"] and hc[1].startswith("tracesift-"):
		        print(shlex.join(hc[1:]))
	EOF
}

flags_exist() {
	[ -s "$work/compose.json" ] || {
		t_fail "no compose config to read (see compose_config)"
		return
	}
	local line prog arg bad=0 n=0 help
	while read -r line; do
		# shellcheck disable=SC2086
		set -- $line
		prog=$1
		shift
		if [ ! -x "$TS_BIN/$prog" ]; then
			if [ "$prog" = tracesift-evaluator ]; then
				echo "# $prog not built yet: its flags ($*) not checked"
				continue
			fi
			echo "# $prog: no such program in bin/"
			bad=1
			continue
		fi
		help=$("$TS_BIN/$prog" --help 2>&1)
		for arg in "$@"; do
			case $arg in
			-*)
				n=$((n + 1))
				if ! grep -qE -- "(^|[[ ])$arg([] =,]|$)" <<<"$help"; then
					echo "# $prog: '$arg' is not in its --help"
					bad=1
				fi
				;;
			esac
		done
	done < <(commands)
	echo "# $n flags checked"
	[ "$n" -gt 5 ] || bad=1
	if [ "$bad" = 0 ]; then t_ok; else t_fail "flags the deploy files use that the programs do not have"; fi
}

# Every -c FILE of a unit is /etc/tracesift/NAME.conf with deploy/NAME.conf in
# the tree, and the compose file mounts the same files; the examples load.
configs_exist() {
	local f name bad=0
	for f in $(sed -n 's#^ExecStart=.* -c \(/etc/tracesift/[^ ]*\).*#\1#p' "$deploy"/systemd/*.service | sort -u); do
		name=$(basename "$f")
		if [ ! -f "$deploy/$name" ]; then
			echo "# $f: no deploy/$name"
			bad=1
		fi
		grep -q "target: $f\$\|:$f:ro\"\?\$" "$deploy/compose.yaml" || {
			echo "# $f is not mounted in compose.yaml"
			bad=1
		}
	done
	# the example configs themselves load
	"$TS_BIN/tracesift-sink" -c "$deploy/sink.conf" --help >/dev/null 2>&1 || {
		echo "# deploy/sink.conf does not load"
		bad=1
	}
	# the evaluator's, with the rubric file it names (mounted beside it in compose)
	if ! out=$("$TS_BIN/tracesift-evaluator" -c "$deploy/evaluator.conf" check 2>&1); then
		echo "# deploy/evaluator.conf does not load: $out"
		bad=1
	fi
	grep -q "target: /etc/tracesift/style-rubric.txt" "$deploy/compose.yaml" || {
		echo "# deploy/style-rubric.txt is not mounted in compose.yaml"
		bad=1
	}
	if [ "$bad" = 0 ]; then t_ok; else t_fail "configs"; fi
}

# The topics service runs topics.sh itself; check that it does, and that the
# list it works from is the one docs/deploy.md documents.
compose_topics() {
	local entry
	entry=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["services"]["topics"]["entrypoint"]))' \
		"$work/compose.json" 2>&1)
	case $entry in
	*/tracesift/kafka/topics.sh*--kafka-topics*) ;;
	*)
		t_fail "topics service does not run topics.sh: $entry"
		return
		;;
	esac
	local name parts bad=0
	while read -r name parts _; do
		grep -q "^| \`$name\` | $parts |" "$TS_TOP/docs/deploy.md" || {
			echo "# docs/deploy.md has no row '| \`$name\` | $parts |'"
			bad=1
		}
	done < <("$deploy/kafka/topics.sh" --list)
	if [ "$bad" = 0 ]; then t_ok; else t_fail "topics"; fi
}

t_run compose_config
t_run systemd_verify
t_run flags_exist
t_run configs_exist
t_run compose_topics
t_exit
