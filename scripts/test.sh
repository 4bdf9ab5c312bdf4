#!/usr/bin/env bash
# test.sh (`make test`): installs what is missing, starts a throw-away Azurite on
# 10100-10102 (HTTPS, oauth basic) with its data in a fresh directory under .local/, runs
# `go vet` and `go test` against it, stops Azurite and removes the data. Exits with go
# test's status (or vet's, when only vet failed).
#
#   GOTEST_FLAGS  flags for go test (default: -race -count=1)
#   PKGS          packages (default: ./...)
#   FUZZTIME      per fuzz target after the tests (default: 10000x executions; 0 skips them)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AZCREDS_ROOT"
install_traps

GOTEST_FLAGS=${GOTEST_FLAGS:--race -count=1}
# -trimpath everywhere, as `make package` builds: vet, the end-to-end tests' builds of the
# binaries and the package test then share one compilation of every dependency
# (msgraph-sdk-go takes minutes), and no build path of this machine lands in a binary.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
# Everything that does not run under the race detector (which needs cgo) builds with
# CGO_ENABLED=0, as the package for Azure is built: the cgo setting is part of every
# compilation's key, and one setting means msgraph-sdk-go is compiled once, not twice.
PKGS=${PKGS:-./...}

run_step deps "$AZCREDS_ROOT/scripts/deps.sh"

azcreds_stack test
mkdir -p "$AZCREDS_LOCAL"
# Data of runs that could not clean up (killed with KILL) carry a dead pid: remove them.
for old in "$AZCREDS_LOCAL"/test-*; do
	[[ -d "$old" ]] || continue
	pid=${old##*/test-}
	pid=${pid%%-*}
	kill -0 "$pid" 2>/dev/null || rm -rf "$old"
done
data=$(mktemp -d "$AZCREDS_LOCAL/test-$$-XXXXXX")
AZCREDS_CLEANUPS+=("rm -rf '$data'")
start_azurite "$data/azurite" "$AZCREDS_LOG_DIR/azurite-test.log"
azcreds_test_env

# The first run compiles the Azure SDKs (msgraph-sdk-go alone takes minutes on 2 cores);
# later runs reuse Go's build cache.
vet_rc=0
start=$SECONDS
say "go vet $PKGS"
# shellcheck disable=SC2086 # PKGS and GOTEST_FLAGS are word lists
CGO_ENABLED=0 run_step "go vet" go vet $PKGS || vet_rc=$?
say "go vet: $((SECONDS - start)) s"

# go vet ran above: the test runs skip their own vet pass. Under -race, the two packages
# that link msgraph-sdk-go (internal/azure/graph, a thin adapter with no concurrency of its
# own, and the main package, which has no tests but is built) go without the race
# detector: instrumenting msgraph-sdk-go would compile it a second time, minutes on 2
# cores, for code the race detector cannot improve. Every other package runs with -race.
msgraph_pkgs='^github.com/activeloopai/azcreds(/internal/azure/graph)?$'
# shellcheck disable=SC2086
all_pkgs=$(go list $PKGS)
race_pkgs=$all_pkgs
plain_pkgs=
if [[ " $GOTEST_FLAGS " == *" -race "* ]]; then
	race_pkgs=$(grep -Ev "$msgraph_pkgs" <<<"$all_pkgs" || true)
	plain_pkgs=$(grep -E "$msgraph_pkgs" <<<"$all_pkgs" | tr '\n' ' ' || true)
fi
test_rc=0
start=$SECONDS
if [[ -n "$race_pkgs" ]]; then
	say "go test -vet=off $GOTEST_FLAGS $PKGS${plain_pkgs:+, except $plain_pkgs}"
	# shellcheck disable=SC2086
	run_step "go test" go test -vet=off $GOTEST_FLAGS $race_pkgs || test_rc=$?
fi
if [[ -n "$plain_pkgs" ]]; then
	say "go test -vet=off ${GOTEST_FLAGS//-race/} $plain_pkgs"
	# shellcheck disable=SC2086
	CGO_ENABLED=0 run_step "go test" go test -vet=off ${GOTEST_FLAGS//-race/} $plain_pkgs || test_rc=$?
fi
say "go test: $((SECONDS - start)) s"

if ((test_rc != 0)); then
	say "go test failed (status $test_rc)"
	exit "$test_rc"
fi
# Every fuzz target of PKGS for 10,000 executions, one to three seconds each
# (scripts/fuzz.sh; `make fuzz` for longer); their seeds and corpora ran above as tests. A
# count, not a duration: Go 1.26's fuzz coordinator can fail a target with "context
# deadline exceeded" and no input when a duration runs out under load (go.dev/issue/75804),
# and a count has no deadline. A targeted run (-run) or FUZZTIME=0 skips it.
if [[ " $GOTEST_FLAGS " != *" -run"* && "${FUZZTIME:-10000x}" != 0 ]]; then
	PKGS="$PKGS" FUZZTIME=${FUZZTIME:-10000x} run_step fuzz "$AZCREDS_ROOT/scripts/fuzz.sh" || exit 1
fi
if ((vet_rc != 0)); then
	say "go vet failed (status $vet_rc)"
	exit "$vet_rc"
fi
say "vet and tests passed"
