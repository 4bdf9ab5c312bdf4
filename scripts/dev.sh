#!/usr/bin/env bash
# dev.sh COMMAND [ARGS]: what the Makefile's local targets run (make run, test, load,
# walkthrough, ...). It installs Azurite's Node modules with `npm ci` when they are missing
# or older than package-lock.json, builds bin/devstack and hands over to it: cmd/devstack
# does everything else, and stops everything it started when it ends.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in go node npm; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "error: $tool is not installed (the local stack needs Go, Node.js/npm and git)" >&2
		exit 1
	}
done

if [[ ! -x node_modules/.bin/azurite || ! -f node_modules/.package-lock.json ||
	package-lock.json -nt node_modules/.package-lock.json || package.json -nt node_modules/.package-lock.json ]]; then
	echo "==> npm ci (Azurite, from package-lock.json)" >&2
	start=$SECONDS
	# In the background, so that a TERM to this script reaches npm too (it rolls back).
	npm ci --no-audit --no-fund --loglevel=error --progress=false </dev/null &
	npm=$!
	trap 'kill -TERM "$npm" 2>/dev/null; wait "$npm"; exit 143' TERM HUP
	wait "$npm"
	trap - TERM HUP
	touch node_modules/.package-lock.json
	echo "==> npm ci: done in $((SECONDS - start)) s" >&2
fi

# Built as everything else is (static, -trimpath), so the compilations are shared.
CGO_ENABLED=0 go build -trimpath -o bin/devstack ./cmd/devstack
exec bin/devstack "$@"
