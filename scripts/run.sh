#!/usr/bin/env bash
# run.sh (`make run`): the whole product on this machine. Installs what is missing, builds
# bin/localazure and bin/handler, starts Azurite on 10000-10002 (data in .local/azurite), the
# local Entra ID/Graph stand-in on 127.0.0.1:7443 and `bin/handler serve` on 127.0.0.1:7071,
# prints a demo API token and a curl line, and keeps running until Ctrl-C, which stops all
# three. If one of them exits, the others are stopped too.
#
#   run.sh --stack-only   (`make stack`) Azurite and the stand-in only, no handler
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$AZCREDS_ROOT"
install_traps

stack_only=false
case "${1:-}" in
"") ;;
--stack-only) stack_only=true ;;
*) die "usage: $0 [--stack-only]" ;;
esac

azcreds_stack run
# Fail before installing or building anything when a port is taken.
for port in "$AZURITE_BLOB_PORT" "$AZURITE_QUEUE_PORT" "$AZURITE_TABLE_PORT"; do
	require_free_port "$port" "Azurite"
done
require_free_port "${AZCREDS_LOCALAZURE_ADDR##*:}" "Entra/Graph stand-in"
require_free_port "${AZCREDS_STORAGE_FRONT_ADDR##*:}" "storage front"
$stack_only || require_free_port "${AZCREDS_HANDLER_ADDR##*:}" "handler"
[[ -d cmd/localazure ]] || die "cmd/localazure does not exist yet: the local Entra/Graph stand-in is needed"

run_step deps "$AZCREDS_ROOT/scripts/deps.sh"

build() {
	local start=$SECONDS
	say "go build -o $1 $2"
	run_step "go build $2" go build -o "$1" "$2" || die "go build $2 failed"
	say "go build $2: done in $((SECONDS - start)) s"
}
build bin/localazure ./cmd/localazure
if ! $stack_only; then
	say "(the first build of bin/handler compiles msgraph-sdk-go: about 5 min on 2 cores)"
	build bin/handler .
fi

mkdir -p "$AZCREDS_LOG_DIR"
start_azurite "$AZCREDS_LOCAL/azurite" "$AZCREDS_LOG_DIR/azurite.log"

localazure_log="$AZCREDS_LOG_DIR/localazure.log"
: >"$localazure_log"
say "starting the Entra/Graph stand-in on $AZCREDS_LOCALAZURE_URL (log: ${localazure_log#"$AZCREDS_ROOT"/})"
start_group localazure "$localazure_log" bin/localazure \
	-addr "$AZCREDS_LOCALAZURE_ADDR" -cert "$AZCREDS_CERT_FILE" -key "$AZCREDS_CERT_KEY_FILE" \
	-home-tenant "$AZCREDS_LOCAL_HOME_TENANT_ID" \
	-mi-client-id "$AZCREDS_LOCAL_MI_CLIENT_ID" -mi-object-id "$AZCREDS_LOCAL_MI_OBJECT_ID" \
	-tenants "$AZCREDS_LOCAL_TENANTS" \
	-azurite-blob "$AZURITE_BLOB_URL" -accounts "$AZURITE_ACCOUNTS" \
	-storage-addr "$AZCREDS_STORAGE_FRONT_ADDR" -platform-storage "$AZCREDS_DEV_ACCOUNT"
wait_until "the Entra/Graph stand-in" "$STARTED_PID" "$localazure_log" 30 \
	http_answers "$AZCREDS_LOCALAZURE_URL/" "$AZCREDS_CERT_FILE"

if ! $stack_only; then
	azcreds_handler_env
	say "starting bin/handler serve on $AZCREDS_HANDLER_URL"
	start_group handler - bin/handler serve
	wait_until "bin/handler serve" "$STARTED_PID" - 30 http_answers "$AZCREDS_HANDLER_URL/"
	token=$(bin/handler token --org "$AZCREDS_DEMO_ORG") || die "bin/handler token failed"
fi

rel() { printf '%s' "${1#"$AZCREDS_ROOT"/}"; }
cat <<INFO

The local stack is up; Ctrl-C stops everything.

  Azurite          blob $AZURITE_BLOB_URL  queue $AZURITE_QUEUE_URL  table $AZURITE_TABLE_URL
                   accounts $AZCREDS_DEV_ACCOUNT (platform), $AZCREDS_CUSTOMER_ACCOUNT_1 and $AZCREDS_CUSTOMER_ACCOUNT_2 (customers); log $(rel "$AZCREDS_LOG_DIR/azurite.log")
  Entra/Graph      $AZCREDS_LOCALAZURE_URL  home tenant $AZCREDS_LOCAL_HOME_TENANT_ID; log $(rel "$localazure_log")
  control          $AZCREDS_LOCALAZURE_CONTROL_URL  (plays the customer: install an SP, grant a role)
  storage front    https://<account>.blob.localhost:${AZCREDS_STORAGE_FRONT_ADDR##*:} -> $AZCREDS_STORAGE_FRONT_ADDR  (RBAC in front of Azurite's customer accounts)
  customer tenants $AZCREDS_LOCAL_CUSTOMER_TENANT_1  $AZCREDS_LOCAL_CUSTOMER_TENANT_2
  TLS              curl --cacert $(rel "$AZCREDS_CERT_FILE")
INFO
if ! $stack_only; then
	cat <<INFO
  API              $AZCREDS_HANDLER_URL

Demo API token for org $AZCREDS_DEMO_ORG, then a first call:

export TOKEN='$token'
curl -s -H "Authorization: Bearer \$TOKEN" -H "X-Activeloop-Org-Id: $AZCREDS_DEMO_ORG" $AZCREDS_HANDLER_URL/organizations/$AZCREDS_DEMO_ORG/credentials

INFO
fi

# Keep running until Ctrl-C (the trap stops everything) or until one of the processes ends.
sleeper=
AZCREDS_CLEANUPS+=('[[ -z "$sleeper" ]] || kill "$sleeper" 2>/dev/null')
while :; do
	for i in "${!AZCREDS_GROUPS[@]}"; do
		pid=${AZCREDS_GROUPS[$i]}
		if ! kill -0 "$pid" 2>/dev/null; then
			rc=0
			wait "$pid" 2>/dev/null || rc=$?
			name=${AZCREDS_GROUP_NAMES[$i]}
			forget_group "$pid"
			case $name in
			azurite) show_log "$AZCREDS_LOG_DIR/azurite.log" ;;
			localazure) show_log "$localazure_log" ;;
			esac
			die "$name exited (status $rc); stopping the rest"
		fi
	done
	sleep 1 &
	sleeper=$!
	wait "$sleeper" || true
	sleeper=
done
