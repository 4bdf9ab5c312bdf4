# shellcheck shell=bash
# env.sh: every fixed value of the local stack, defined once. Sourced by the other scripts
# (which run under `set -euo pipefail`); it only assigns variables and defines functions, so
# it is also safe to source from an interactive shell:
#
#   source scripts/env.sh && azcreds_stack run && azcreds_handler_env
#
# Everything here is local-only: the keys below open nothing but the Azurite on this machine.

AZCREDS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AZCREDS_LOCAL="$AZCREDS_ROOT/.local"

# TLS certificate shared by Azurite and the Entra/Graph stand-in (scripts/deps.sh makes it).
AZCREDS_CERT_FILE="$AZCREDS_LOCAL/certs/cert.pem"
AZCREDS_CERT_KEY_FILE="$AZCREDS_LOCAL/certs/key.pem"
# RSA key pair that signs and verifies local API tokens.
AZCREDS_AUTH_KEY_FILE="$AZCREDS_LOCAL/auth/key.pem"
AZCREDS_AUTH_PUB_FILE="$AZCREDS_LOCAL/auth/pub.pem"
AZCREDS_LOG_DIR="$AZCREDS_LOCAL/logs"

# Storage accounts served by Azurite. devstoreaccount1 carries Azurite's published well-known
# key; custacct1 and custacct2 play two customers' storage accounts.
AZCREDS_DEV_ACCOUNT=devstoreaccount1
AZCREDS_DEV_ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
AZCREDS_CUSTOMER_ACCOUNT_1=custacct1
AZCREDS_CUSTOMER_ACCOUNT_1_KEY='EfMsEHDCwa/V469LUE5la3kLYSIk+n/+CBIO5CuQPC/2IDOMBu+zY7NjYXMx1L8fsEOmNGfRA0yTCQxwfqtR8Q=='
AZCREDS_CUSTOMER_ACCOUNT_2=custacct2
AZCREDS_CUSTOMER_ACCOUNT_2_KEY='KgCDQqrP4BToH8acoveGQip8vkU8cww5pEq7dohTa0peJyq/TU9PMILtsPx5OC2HtAREsYu4U87QHBWQVd9/LA=='
AZURITE_ACCOUNTS="$AZCREDS_DEV_ACCOUNT:$AZCREDS_DEV_ACCOUNT_KEY;$AZCREDS_CUSTOMER_ACCOUNT_1:$AZCREDS_CUSTOMER_ACCOUNT_1_KEY;$AZCREDS_CUSTOMER_ACCOUNT_2:$AZCREDS_CUSTOMER_ACCOUNT_2_KEY"

# Directory objects of the local Entra stand-in: the platform's home tenant, its user-assigned
# managed identity, and two customer tenants (comma-separated for -tenants).
AZCREDS_LOCAL_HOME_TENANT_ID=605e483c-150c-4d9a-a6c4-b96a0c0b5565
AZCREDS_LOCAL_MI_CLIENT_ID=670699dd-22cd-4f34-96b7-648a96a6d4b1
AZCREDS_LOCAL_MI_OBJECT_ID=45ca475a-b96a-40e7-accf-c8a4bedbdf68
AZCREDS_LOCAL_CUSTOMER_TENANT_1=6069b94b-fef6-4670-9fb7-f7b155ce22d1
AZCREDS_LOCAL_CUSTOMER_TENANT_2=1b78be43-50bf-4fd3-8f25-7a03eb996648
AZCREDS_LOCAL_TENANTS="$AZCREDS_LOCAL_CUSTOMER_TENANT_1,$AZCREDS_LOCAL_CUSTOMER_TENANT_2"

# Fixed listen addresses of `make run`.
AZCREDS_LOCALAZURE_ADDR=127.0.0.1:7443
AZCREDS_LOCALAZURE_URL="https://$AZCREDS_LOCALAZURE_ADDR"
# Base of the stand-in's control endpoints (the customer's side: install an SP, grant a role).
AZCREDS_LOCALAZURE_CONTROL_URL="$AZCREDS_LOCALAZURE_URL/control"
# The stand-in's RBAC front for customer blob storage: <account>.blob.localhost connects here.
AZCREDS_STORAGE_FRONT_ADDR=127.0.0.1:10443
AZCREDS_HANDLER_ADDR=127.0.0.1:7071
AZCREDS_HANDLER_URL="http://$AZCREDS_HANDLER_ADDR"
AZCREDS_DEMO_ORG=demo-org

# azcreds_stack run|test sets the Azurite ports and endpoints of one stack. `make run` uses
# 10000-10002 and `make test` 10100-10102, so both can run at the same time; a second
# `make test` at once needs other ports: `make test AZCREDS_TEST_PORT_BASE=10400`.
azcreds_stack() {
	local base
	case "${1:-}" in
	run) base=10000 ;;
	test) base=${AZCREDS_TEST_PORT_BASE:-10100} ;;
	*)
		echo "azcreds_stack: want run or test, got '${1:-}'" >&2
		return 2
		;;
	esac
	AZCREDS_STACK="$1"
	AZURITE_BLOB_PORT=$base
	AZURITE_QUEUE_PORT=$((base + 1))
	AZURITE_TABLE_PORT=$((base + 2))
	AZURITE_BLOB_URL="https://127.0.0.1:$AZURITE_BLOB_PORT"
	AZURITE_QUEUE_URL="https://127.0.0.1:$AZURITE_QUEUE_PORT"
	AZURITE_TABLE_URL="https://127.0.0.1:$AZURITE_TABLE_PORT"
}

# azcreds_connection_string ACCOUNT KEY prints a path-style https connection string with
# explicit endpoints for the current stack (the Go SDKs refuse UseDevelopmentStorage=true).
azcreds_connection_string() {
	printf 'DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s;BlobEndpoint=%s/%s;QueueEndpoint=%s/%s;TableEndpoint=%s/%s;' \
		"$1" "$2" "$AZURITE_BLOB_URL" "$1" "$AZURITE_QUEUE_URL" "$1" "$AZURITE_TABLE_URL" "$1"
}

# azcreds_test_env exports what `go test` reads (internal/testenv) for the current stack.
azcreds_test_env() {
	export SSL_CERT_FILE="$AZCREDS_CERT_FILE"
	export AZCREDS_TEST_AZURITE_BLOB="$AZURITE_BLOB_URL"
	export AZCREDS_TEST_AZURITE_QUEUE="$AZURITE_QUEUE_URL"
	export AZCREDS_TEST_AZURITE_TABLE="$AZURITE_TABLE_URL"
	export AZCREDS_TEST_AZURITE_ACCOUNTS="$AZURITE_ACCOUNTS"
}

# azcreds_handler_env exports what the handler (`bin/handler serve` and `token`) reads; they
# override the Values of local.settings.json. AZCREDS_LOCAL_STACK=true is what lets the
# handler take the stand-in's endpoints and the local-only settings below; without it the
# handler is in Azure mode and refuses them (README, "Configuration").
azcreds_handler_env() {
	export AZCREDS_LOCAL_STACK=true
	export SSL_CERT_FILE="$AZCREDS_CERT_FILE"
	AzureWebJobsStorage="$(azcreds_connection_string "$AZCREDS_DEV_ACCOUNT" "$AZCREDS_DEV_ACCOUNT_KEY")"
	export AzureWebJobsStorage
	export AZCREDS_HOME_TENANT_ID="$AZCREDS_LOCAL_HOME_TENANT_ID"
	export AZCREDS_MANAGED_IDENTITY_CLIENT_ID="$AZCREDS_LOCAL_MI_CLIENT_ID"
	export AZCREDS_MANAGED_IDENTITY_OBJECT_ID="$AZCREDS_LOCAL_MI_OBJECT_ID"
	export AZCREDS_AUTHORITY_HOST="$AZCREDS_LOCALAZURE_URL/"
	export AZCREDS_GRAPH_BASE_URL="$AZCREDS_LOCALAZURE_URL/v1.0"
	export IDENTITY_ENDPOINT="$AZCREDS_LOCALAZURE_URL/msi/token"
	export IDENTITY_HEADER=local
	export AZCREDS_AUTH_ISSUER=azcreds-local
	export AZCREDS_AUTH_AUDIENCE=azcreds-api
	export AZCREDS_AUTH_PUBLIC_KEY_FILE="$AZCREDS_AUTH_PUB_FILE"
	export AZCREDS_AUTH_SIGNING_KEY_FILE="$AZCREDS_AUTH_KEY_FILE"
	export AZCREDS_LISTEN_ADDR="$AZCREDS_HANDLER_ADDR"
	export AZCREDS_BLOB_ENDPOINT_TEMPLATE="https://%s.blob.localhost:${AZCREDS_STORAGE_FRONT_ADDR##*:}/"
	export AZCREDS_LOCAL_BLOB_ADDR="$AZCREDS_STORAGE_FRONT_ADDR"
	export AZCREDS_LOCAL_BLOB_ACCOUNTS="$AZCREDS_DEV_ACCOUNT,$AZCREDS_CUSTOMER_ACCOUNT_1,$AZCREDS_CUSTOMER_ACCOUNT_2"
	# The environment default: the platform's own account, where the managed identity creates
	# one container per organization (org-<hash of the org id>) and signs its SAS.
	export AZCREDS_DEFAULT_STORAGE_ACCOUNT="$AZCREDS_DEV_ACCOUNT"
}
