#!/usr/bin/env bash
# load.sh (`make load`): the load figures of docs/PERFORMANCE.md on a fresh local stack.
#
# Starts, on its own ports (base AZCREDS_LOAD_PORT_BASE, default 10200: Azurite on
# base..base+2, the counting proxy on base+3..base+5, the stand-in on base+10, its storage
# front on base+11, the handler on base+12) so it never meets `make run` or `make test`:
#   Azurite (fresh data directory, removed at the end),
#   bin/faultproxy in front of all three Azurite services at zero fault rates, counting
#     every storage transaction: the handler's tables and queues, and the customer blob
#     traffic of the access probe (the stand-in's storage front forwards through it),
#   the Entra/Graph stand-in (role propagation LOAD_PROPAGATION, default 1 s),
#   bin/handler serve with the product's default windows and intervals, and the
#     per-organization limits set to what the scenarios need (below),
# then runs `loadtest onboard`: scenario 1 (LOAD_N onboardings at once, default 1000) and
# scenario 2 (POST /creds and GET credential, LOAD_CONNS connections for LOAD_DURATION
# each, defaults 64 and 60s), and prints the figures. Everything it started is stopped
# when it ends.
#
#   make load                      the figures as documented
#   make load LOAD_N=100           a smaller run
#   make load LOAD_COUNT=0         the handler reaches Azurite directly: no proxy between
#                                  them, no storage counts (its latency without the proxy's)
#   LOAD_JSON=file make load       also write the figures as JSON to file
#
# The logs of the last run stay in .local/logs/load/.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AZCREDS_ROOT"
install_traps

LOAD_N=${LOAD_N:-1000}
LOAD_CONCURRENCY=${LOAD_CONCURRENCY:-16}
LOAD_CONNS=${LOAD_CONNS:-64}
LOAD_DURATION=${LOAD_DURATION:-60s}
LOAD_PROPAGATION=${LOAD_PROPAGATION:-1s}
LOAD_COUNT=${LOAD_COUNT:-1}
base=${AZCREDS_LOAD_PORT_BASE:-10200}
[[ "$base" =~ ^[0-9]+$ ]] && ((base >= 1024 && base <= 65000)) || die "AZCREDS_LOAD_PORT_BASE=$base: want a port from 1024 to 65000"

# The Azurite ports and endpoints of this stack (azcreds_stack derives them from a base).
AZCREDS_TEST_PORT_BASE=$base azcreds_stack test
AZCREDS_STACK=load
proxy_blob=127.0.0.1:$((base + 3))
proxy_queue=127.0.0.1:$((base + 4))
proxy_table=127.0.0.1:$((base + 5))
AZCREDS_LOCALAZURE_ADDR=127.0.0.1:$((base + 10))
AZCREDS_LOCALAZURE_URL="https://$AZCREDS_LOCALAZURE_ADDR"
AZCREDS_LOCALAZURE_CONTROL_URL="$AZCREDS_LOCALAZURE_URL/control"
AZCREDS_STORAGE_FRONT_ADDR=127.0.0.1:$((base + 11))
AZCREDS_HANDLER_ADDR=127.0.0.1:$((base + 12))
AZCREDS_HANDLER_URL="http://$AZCREDS_HANDLER_ADDR"
load_org=load-org
AZCREDS_LOAD_SUBSCRIPTION=0b1f6471-1bf0-4dda-aec3-cb9272f09590

for port in "$AZURITE_BLOB_PORT" "$AZURITE_QUEUE_PORT" "$AZURITE_TABLE_PORT" \
	"${proxy_blob##*:}" "${proxy_queue##*:}" "${proxy_table##*:}" \
	"${AZCREDS_LOCALAZURE_ADDR##*:}" "${AZCREDS_STORAGE_FRONT_ADDR##*:}" "${AZCREDS_HANDLER_ADDR##*:}"; do
	require_free_port "$port" "make load (AZCREDS_LOAD_PORT_BASE=$base)"
done

run_step deps "$AZCREDS_ROOT/scripts/deps.sh"

mkdir -p "$AZCREDS_LOCAL"
data=$(mktemp -d "$AZCREDS_LOCAL/load-$$-XXXXXX")
AZCREDS_CLEANUPS+=("rm -rf '$data'")
logs="$AZCREDS_LOG_DIR/load"
bin="$data/bin"
rm -rf "$logs"
mkdir -p "$logs" "$bin"

# Built as `make test` builds (static, -trimpath), so the compilations are shared. The first
# build of the handler compiles msgraph-sdk-go: minutes on 2 cores.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
for b in handler:. localazure:./cmd/localazure faultproxy:./cmd/faultproxy loadtest:./cmd/loadtest; do
	start=$SECONDS
	say "go build ${b#*:}"
	CGO_ENABLED=0 run_step "go build ${b#*:}" go build -o "$bin/${b%%:*}" "${b#*:}" || die "go build ${b#*:} failed"
	say "go build ${b#*:}: $((SECONDS - start)) s"
done

start_azurite "$data/azurite" "$logs/azurite.log"

storage_blob=$AZURITE_BLOB_URL storage_queue=$AZURITE_QUEUE_URL storage_table=$AZURITE_TABLE_URL
count_args=()
if [[ "$LOAD_COUNT" != 0 ]]; then
	say "starting the counting storage proxy on $proxy_blob (blob), $proxy_queue (queue), $proxy_table (table)"
	start_group faultproxy "$logs/faultproxy.log" "$bin/faultproxy" \
		-cert "$AZCREDS_CERT_FILE" -key "$AZCREDS_CERT_KEY_FILE" \
		-blob-addr "$proxy_blob" -queue-addr "$proxy_queue" -table-addr "$proxy_table" \
		-azurite-blob "$AZURITE_BLOB_URL" -azurite-queue "$AZURITE_QUEUE_URL" -azurite-table "$AZURITE_TABLE_URL"
	wait_until faultproxy "$STARTED_PID" "$logs/faultproxy.log" 30 \
		ports_open "${proxy_blob##*:}" "${proxy_queue##*:}" "${proxy_table##*:}"
	storage_blob=https://$proxy_blob storage_queue=https://$proxy_queue storage_table=https://$proxy_table
	count_args=(-storage-stats "https://$proxy_table/_faultproxy/stats")
fi

say "starting the Entra/Graph stand-in on $AZCREDS_LOCALAZURE_URL (role propagation $LOAD_PROPAGATION)"
start_group localazure "$logs/localazure.log" "$bin/localazure" \
	-addr "$AZCREDS_LOCALAZURE_ADDR" -cert "$AZCREDS_CERT_FILE" -key "$AZCREDS_CERT_KEY_FILE" \
	-home-tenant "$AZCREDS_LOCAL_HOME_TENANT_ID" \
	-mi-client-id "$AZCREDS_LOCAL_MI_CLIENT_ID" -mi-object-id "$AZCREDS_LOCAL_MI_OBJECT_ID" \
	-tenants "$AZCREDS_LOCAL_TENANTS" -propagation "$LOAD_PROPAGATION" \
	-azurite-blob "$storage_blob" -accounts "$AZURITE_ACCOUNTS" \
	-storage-addr "$AZCREDS_STORAGE_FRONT_ADDR" -platform-storage "$AZCREDS_DEV_ACCOUNT"
wait_until "the Entra/Graph stand-in" "$STARTED_PID" "$logs/localazure.log" 30 \
	http_answers "$AZCREDS_LOCALAZURE_URL/" "$AZCREDS_CERT_FILE"
curl -sf --max-time 10 --cacert "$AZCREDS_CERT_FILE" -H 'Content-Type: application/json' \
	-d "{\"name\":\"$AZCREDS_CUSTOMER_ACCOUNT_1\",\"subscription_id\":\"$AZCREDS_LOAD_SUBSCRIPTION\",\"resource_group\":\"lake-rg\"}" \
	"$AZCREDS_LOCALAZURE_CONTROL_URL/storageAccounts" >/dev/null || die "registering $AZCREDS_CUSTOMER_ACCOUNT_1 with the stand-in failed"

azcreds_handler_env
# The handler's own storage (tables, queues) goes through the counting proxy.
AzureWebJobsStorage="DefaultEndpointsProtocol=https;AccountName=$AZCREDS_DEV_ACCOUNT;AccountKey=$AZCREDS_DEV_ACCOUNT_KEY;BlobEndpoint=$storage_blob/$AZCREDS_DEV_ACCOUNT;QueueEndpoint=$storage_queue/$AZCREDS_DEV_ACCOUNT;TableEndpoint=$storage_table/$AZCREDS_DEV_ACCOUNT;"
export AzureWebJobsStorage
# The limits the scenarios need: scenario 1 creates LOAD_N credentials in one organization,
# all at once (a burst of LOAD_N); scenario 2 registers one workspace.
export AZCREDS_MAX_CREDENTIALS=$LOAD_N AZCREDS_MAX_WORKSPACES=1 AZCREDS_CREATE_RATE="$LOAD_N/1m"
say "limits: $AZCREDS_MAX_CREDENTIALS credentials, $AZCREDS_MAX_WORKSPACES workspace, create rate $AZCREDS_CREATE_RATE (burst $LOAD_N)"
say "starting bin/handler serve on $AZCREDS_HANDLER_URL (log: $logs/handler.log)"
start_group handler "$logs/handler.log" "$bin/handler" serve -settings "$data/none.json"
handler_pid=$STARTED_PID
wait_until "bin/handler serve" "$handler_pid" "$logs/handler.log" 30 http_answers "$AZCREDS_HANDLER_URL/"
# The figures read /proc/<pid> of the handler itself, not of a shell around it.
[[ "$(cat "/proc/$handler_pid/comm" 2>/dev/null)" == handler ]] || die "process $handler_pid is not the handler"
AZCREDS_LOADTEST_TOKEN=$("$bin/handler" token --org "$load_org") || die "bin/handler token failed"
export AZCREDS_LOADTEST_TOKEN

say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
say "loadtest onboard -n $LOAD_N -c $LOAD_CONCURRENCY; then $LOAD_CONNS connections for $LOAD_DURATION each"
args=(-api "$AZCREDS_HANDLER_URL" -org "$load_org" -control "$AZCREDS_LOCALAZURE_CONTROL_URL"
	-cacert "$AZCREDS_CERT_FILE" -tenant "$AZCREDS_LOCAL_CUSTOMER_TENANT_1"
	-subscription "$AZCREDS_LOAD_SUBSCRIPTION" -resource-group lake-rg -account "$AZCREDS_CUSTOMER_ACCOUNT_1"
	-n "$LOAD_N" -c "$LOAD_CONCURRENCY" -pid "$handler_pid"
	${count_args[@]+"${count_args[@]}"}
	-steady-c "$LOAD_CONNS" -steady-d "$LOAD_DURATION")
rc=0
if [[ -n "${LOAD_JSON:-}" ]]; then
	run_step loadtest "$bin/loadtest" onboard "${args[@]}" -json >"$LOAD_JSON" || rc=$?
else
	run_step loadtest "$bin/loadtest" onboard "${args[@]}" || rc=$?
fi
say "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
if ((rc != 0)); then
	show_log "$logs/handler.log"
	die "loadtest failed (status $rc)"
fi
say "load run passed"
