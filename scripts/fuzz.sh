#!/usr/bin/env bash
# fuzz.sh (`make fuzz`): finds every fuzz target of the module (`go test -list '^Fuzz'`
# in each package whose tests declare one) and fuzzes each for FUZZTIME, one at a time
# (a fuzzer already keeps every core busy). Prints one line per target with go's own
# figures (executions, new interesting inputs) and fails when any target found a
# failing input: go has then written it to <package>/testdata/fuzz/<Target>/, where it
# stays as a test case that `go test` runs from then on. Fix the code, keep the file.
#
#   FUZZTIME  how long each target runs (default 1m): anything -fuzztime takes (30s, 5000x)
#   PKGS      packages to search (default ./...)
#
# `make test` runs it for a few seconds per target after the tests. No target needs
# storage; when one does, it gets the Azurite environment that scripts/test.sh exports.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AZCREDS_ROOT"
install_traps

FUZZTIME=${FUZZTIME:-1m}
PKGS=${PKGS:-./...}
# As scripts/test.sh does: one compilation of every dependency shared with the tests.
if [[ " ${GOFLAGS:-} " != *" -trimpath "* ]]; then
	export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
fi
mkdir -p "$AZCREDS_LOG_DIR"

# Packages whose test files declare a fuzz target; `go test -list` then names them, as
# go sees them (a build tag or a typo in the signature would hide one from grep alone).
# shellcheck disable=SC2086 # PKGS is a word list
pkgs=$(go list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' $PKGS |
	while read -r pkg dir files; do
		for f in $files; do
			if grep -q '^func Fuzz[A-Za-z0-9_]*(' "$dir/$f"; then
				echo "$pkg"
				break
			fi
		done
	done)
targets=()
for pkg in $pkgs; do
	listed=$(go test -list '^Fuzz' -run '^$' "$pkg") || die "go test -list $pkg failed:"$'\n'"$listed"
	for name in $listed; do
		if [[ "$name" == Fuzz* ]]; then targets+=("$pkg $name"); fi
	done
done
if ((${#targets[@]} == 0)); then
	say "no fuzz targets in $PKGS"
	exit 0
fi

say "fuzzing ${#targets[@]} targets for $FUZZTIME each"
failed=()
start_all=$SECONDS
for t in "${targets[@]}"; do
	pkg=${t% *}
	name=${t#* }
	log="$AZCREDS_LOG_DIR/fuzz-$name.log"
	: >"$log"
	start=$SECONDS
	rc=0
	start_group "fuzz $name" "$log" go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"
	wait "$STARTED_PID" || rc=$?
	forget_group "$STARTED_PID"
	# go's last progress line: "fuzz: elapsed: 2s, execs: 12345 (6172/sec), new interesting: 3 (total: 40)"
	# (or, when FUZZTIME ran out first, how far it got running the corpus it had).
	figures=$(grep -E '^fuzz: elapsed: ' "$log" | tail -n 1 | sed -E 's/^fuzz: elapsed: [^,]*, //' || true)
	short=${pkg#github.com/activeloopai/azcreds}
	if ((rc == 0)); then
		say "$(printf '%-28s %-22s ok    %3d s  %s' "$name" "${short:-.}" $((SECONDS - start)) "$figures")"
	elif grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'testdata/fuzz/' "$log"; then
		# Go 1.26's coordinator can report the end of a duration FUZZTIME as a failure, with
		# no failing input (go.dev/issue/75804): nothing was found. A count (5000x) avoids it.
		say "$(printf '%-28s %-22s ok    %3d s  %s' "$name" "${short:-.}" $((SECONDS - start)) "$figures (ended by go's fuzztime race, go.dev/issue/75804; no input)")"
	else
		say "$(printf '%-28s %-22s FAIL  %3d s  %s' "$name" "${short:-.}" $((SECONDS - start)) "$figures")"
		show_log "$log"
		input=$(grep -oE 'testdata/fuzz/[^ ]+' "$log" | head -n 1 || true)
		if [[ -n "$input" ]]; then
			dir=$(go list -f '{{.Dir}}' "$pkg")
			say "$name: the failing input is ${dir#"$AZCREDS_ROOT"/}/$input; go test runs it as a test case from now on (go test -run '$name/${input##*/}' $pkg)"
		fi
		failed+=("$name")
	fi
done
say "fuzzing: $((SECONDS - start_all)) s for ${#targets[@]} targets (logs: ${AZCREDS_LOG_DIR#"$AZCREDS_ROOT"/}/fuzz-*.log)"
if ((${#failed[@]} > 0)); then
	say "fuzzing found failing inputs in: ${failed[*]}"
	exit 1
fi
