# shellcheck shell=bash
# lib.sh: process bookkeeping for the scripts that start things (test.sh, run.sh).
#
# Every long-running child is started in its own process group (job control on for the
# `&`), so stopping it stops whatever it spawned too (go test's test binaries, go build's
# compilers). The EXIT trap stops every group still alive, newest first, on success, failure,
# Ctrl-C (INT), TERM and HUP alike. Sourced by scripts that run under `set -euo pipefail`.

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

AZCREDS_GROUPS=()     # process group ids started by start_group, oldest first
AZCREDS_GROUP_NAMES=()
AZCREDS_CLEANUPS=()   # commands run by the EXIT trap after the groups are stopped
AZCREDS_WATCHERS=()   # pids of the watch_group watchers

say() { printf '==> %s\n' "$*" >&2 || true; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# show_log FILE prints the end of a log file, indented, to stderr.
show_log() {
	if [[ -s "$1" ]]; then
		printf -- '--- last lines of %s ---\n' "${1#"$AZCREDS_ROOT"/}" >&2
		tail -n 40 "$1" | sed 's/^/    /' >&2
		printf -- '---\n' >&2
	fi
}

# start_group NAME LOGFILE CMD... starts CMD in a new process group whose id is its pid,
# with stdin from /dev/null and output appended to LOGFILE ("-" keeps the terminal).
# Sets STARTED_PID.
start_group() {
	local name=$1 logfile=$2
	shift 2
	set -m
	if [[ "$logfile" == - ]]; then
		"$@" </dev/null &
	else
		"$@" </dev/null >>"$logfile" 2>&1 &
	fi
	STARTED_PID=$!
	set +m
	AZCREDS_GROUPS+=("$STARTED_PID")
	AZCREDS_GROUP_NAMES+=("$name")
	watch_group "$STARTED_PID"
}

# watch_group PGID is the safety net for the one way out that skips the EXIT trap: this
# script being killed with KILL. A small watcher in the background TERMs the group as soon as
# this script is gone, and ends by itself once the group has ended.
watch_group() {
	local pgid=$1 parent=$$
	set -m # its own group too, so that stopping it takes its `sleep` along
	(
		trap '' INT HUP # it outlives a Ctrl-C of the script by at most a second, by design
		while kill -0 "$parent" 2>/dev/null; do
			kill -0 -- "-$pgid" 2>/dev/null || exit 0
			sleep 1
		done
		kill -TERM -- "-$pgid" 2>/dev/null
	) </dev/null >/dev/null 2>&1 &
	AZCREDS_WATCHERS+=("$!")
	set +m
}

# group_alive PGID succeeds while any process of the group is alive.
group_alive() { kill -0 -- "-$1" 2>/dev/null; }

# stop_group PGID [NAME] sends TERM to the whole group, waits up to 10 s, then KILLs what is
# left (npm, for one, takes half a minute to roll back an interrupted install).
stop_group() {
	local pgid=$1 name=${2:-process group $1} i
	group_alive "$pgid" || {
		wait "$pgid" 2>/dev/null || true
		return 0
	}
	kill -TERM -- "-$pgid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		group_alive "$pgid" || break
		sleep 0.1
	done
	if group_alive "$pgid"; then
		say "$name did not stop within 10 s of TERM; killing it"
		kill -KILL -- "-$pgid" 2>/dev/null || true
	fi
	wait "$pgid" 2>/dev/null || true
}

# run_step NAME CMD... runs CMD in its own process group with the terminal's output and
# waits for it; returns its exit status. A signal to this script interrupts the wait and the
# EXIT trap stops the group.
run_step() {
	local name=$1 rc=0
	shift
	start_group "$name" - "$@"
	wait "$STARTED_PID" || rc=$?
	forget_group "$STARTED_PID"
	return "$rc"
}

# forget_group PGID drops a group that has ended from the bookkeeping.
forget_group() {
	local i
	for i in "${!AZCREDS_GROUPS[@]}"; do
		if [[ "${AZCREDS_GROUPS[$i]}" == "$1" ]]; then
			unset 'AZCREDS_GROUPS[i]' 'AZCREDS_GROUP_NAMES[i]'
		fi
	done
}

# stop_all stops every group still known, newest first.
stop_all() {
	local i pids=(${AZCREDS_GROUPS[@]+"${!AZCREDS_GROUPS[@]}"})
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_group "${AZCREDS_GROUPS[${pids[$i]}]}" "${AZCREDS_GROUP_NAMES[${pids[$i]}]}"
	done
	AZCREDS_GROUPS=()
	AZCREDS_GROUP_NAMES=()
}

on_exit() {
	local rc=$? c
	# Neither a second Ctrl-C nor a closed pipe on stderr may cut the clean-up short.
	trap '' INT TERM HUP PIPE
	set +e
	if ((${#AZCREDS_GROUPS[@]} > 0)); then
		local names=() i
		for i in "${AZCREDS_GROUP_NAMES[@]}"; do names=("$i" "${names[@]+"${names[@]}"}"); done
		say "stopping ${names[*]}"
	fi
	stop_all
	for c in "${AZCREDS_WATCHERS[@]+"${AZCREDS_WATCHERS[@]}"}"; do
		kill -TERM -- "-$c" 2>/dev/null || true
		wait "$c" 2>/dev/null || true
	done
	for c in "${AZCREDS_CLEANUPS[@]+"${AZCREDS_CLEANUPS[@]}"}"; do
		eval "$c" || true
	done
	exit "$rc"
}

# install_traps makes every way out of the script go through on_exit.
install_traps() {
	trap on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	trap 'exit 141' PIPE # e.g. `make test | head`: without it the shell dies untrapped
}

# port_open PORT succeeds when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# require_free_port PORT WHAT fails when PORT is taken already.
require_free_port() {
	if port_open "$1"; then
		die "port $1 ($2) is already in use: is another 'make run', 'make test' or Azurite running? ('lsof -i :$1' names it)"
	fi
}

# wait_until NAME PID LOGFILE SECONDS CHECK... retries CHECK until it succeeds. It fails,
# showing LOGFILE, when SECONDS pass or the process PID has ended.
wait_until() {
	local name=$1 pid=$2 logfile=$3 seconds=$4 deadline
	shift 4
	deadline=$((SECONDS + seconds))
	until "$@"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			local rc=0
			wait "$pid" 2>/dev/null || rc=$?
			forget_group "$pid"
			show_log "$logfile"
			die "$name exited (status $rc) before it was ready"
		fi
		if ((SECONDS >= deadline)); then
			show_log "$logfile"
			die "$name was not ready after ${seconds} s"
		fi
		sleep 0.2
	done
}

# ports_open PORT... succeeds when all ports accept connections.
ports_open() {
	local p
	for p in "$@"; do port_open "$p" || return 1; done
}

# http_answers URL [CAFILE] succeeds on any HTTP answer (any status) from URL.
http_answers() {
	if command -v curl >/dev/null 2>&1; then
		curl -s -o /dev/null --max-time 2 ${2:+--cacert "$2"} "$1"
	else
		NODE_EXTRA_CA_CERTS="${2:-}" node -e '
			fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
				.then(() => process.exit(0), () => process.exit(1));' "$1"
	fi
}

# start_azurite DIR LOGFILE starts Azurite for the current stack (azcreds_stack) with its data
# in DIR and waits until blob, queue and table accept connections. Sets AZURITE_PID.
start_azurite() {
	local dir=$1 logfile=$2
	require_free_port "$AZURITE_BLOB_PORT" "Azurite blob"
	require_free_port "$AZURITE_QUEUE_PORT" "Azurite queue"
	require_free_port "$AZURITE_TABLE_PORT" "Azurite table"
	mkdir -p "$dir" "$(dirname "$logfile")"
	: >"$logfile"
	say "starting Azurite on https://127.0.0.1:$AZURITE_BLOB_PORT-$AZURITE_TABLE_PORT (log: ${logfile#"$AZCREDS_ROOT"/})"
	start_group azurite "$logfile" \
		env AZURITE_ACCOUNTS="$AZURITE_ACCOUNTS" "$AZCREDS_ROOT/node_modules/.bin/azurite" \
		--oauth basic --cert "$AZCREDS_CERT_FILE" --key "$AZCREDS_CERT_KEY_FILE" \
		--skipApiVersionCheck --disableTelemetry --silent \
		--location "$dir" \
		--blobHost 127.0.0.1 --blobPort "$AZURITE_BLOB_PORT" \
		--queueHost 127.0.0.1 --queuePort "$AZURITE_QUEUE_PORT" \
		--tableHost 127.0.0.1 --tablePort "$AZURITE_TABLE_PORT"
	AZURITE_PID=$STARTED_PID
	wait_until Azurite "$AZURITE_PID" "$logfile" 30 \
		ports_open "$AZURITE_BLOB_PORT" "$AZURITE_QUEUE_PORT" "$AZURITE_TABLE_PORT"
}
