#!/usr/bin/env bash
# deploy.sh (`make deploy`): deploys azcreds to Azure with the Azure CLI. Nothing here runs
# in tests except the check for az.
#
#   1. the infrastructure: az deployment group create with infra/bicep/main.bicep and
#      main.bicepparam (idempotent: an unchanged template changes nothing);
#   2. the code: the package (dist/azcreds.zip from `make package`, or ZIP=...) onto the
#      Flex Consumption app with az functionapp deployment source config-zip. A copy of
#      each zip deployed is kept in dist/releases/ for a rollback.
#
# Make variables (or environment):
#   RESOURCE_GROUP  resource group (required); created in LOCATION when missing
#   LOCATION        region for a new resource group (e.g. westeurope)
#   AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_URL  the API token issuer, audience and JWKS URL (required)
#   APP_NAME        deployment name prefix (default azcreds)
#   GRANT_GRAPH_PERMISSION  true (default): grant Graph Application.ReadWrite.OwnedBy in the
#                   deployment (needs Privileged Role Administrator); false: an admin grants it
#   ZIP             package to deploy (default dist/azcreds.zip); a dist/releases/ zip to roll back
#   SKIP_INFRA=1    only deploy the package (the infrastructure is already there)
#   WHAT_IF=1       show what the Bicep deployment would change, deploy nothing
#   UPLOAD_WAIT     seconds to keep retrying a refused upload (default 720: Azure documents up
#                   to 10 minutes before a new role assignment takes effect)
#   UPLOAD_ATTEMPT_TIMEOUT  seconds one upload may take, its status wait included (default 600)
#   UPLOAD_RETRY_INTERVAL   seconds between two uploads (default 30)
set -euo pipefail

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}
say() { printf '==> %s\n' "$*" >&2; }

# Only builtins until az is known to be there.
command -v az >/dev/null 2>&1 ||
	die "the Azure CLI (az) is not installed; install it (https://learn.microsoft.com/cli/azure/install-azure-cli), run az login, then make deploy again"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

RESOURCE_GROUP=${RESOURCE_GROUP:-}
LOCATION=${LOCATION:-}
APP_NAME=${APP_NAME:-azcreds}
ZIP=${ZIP:-dist/azcreds.zip}
SKIP_INFRA=${SKIP_INFRA:-}
WHAT_IF=${WHAT_IF:-}
GRANT_GRAPH_PERMISSION=${GRANT_GRAPH_PERMISSION:-true}
export APP_NAME GRANT_GRAPH_PERMISSION AUTH_ISSUER="${AUTH_ISSUER:-}" AUTH_AUDIENCE="${AUTH_AUDIENCE:-}" AUTH_JWKS_URL="${AUTH_JWKS_URL:-}"
deployment="$APP_NAME"
template=infra/bicep/main.bicep
params=infra/bicep/main.bicepparam

[[ -n "$RESOURCE_GROUP" ]] || die "set RESOURCE_GROUP (make deploy RESOURCE_GROUP=my-rg LOCATION=westeurope AUTH_ISSUER=... AUTH_AUDIENCE=... AUTH_JWKS_URL=https://...)"
case "$GRANT_GRAPH_PERMISSION" in
true | false) ;;
*) die "GRANT_GRAPH_PERMISSION must be true or false, got '$GRANT_GRAPH_PERMISSION'" ;;
esac
if [[ -z "$SKIP_INFRA" ]]; then
	[[ -n "$AUTH_ISSUER" ]] || die "set AUTH_ISSUER: the iss of the platform's API tokens"
	[[ -n "$AUTH_AUDIENCE" ]] || die "set AUTH_AUDIENCE: the aud of the platform's API tokens"
	[[ "$AUTH_JWKS_URL" == https://?* ]] || die "set AUTH_JWKS_URL to the https URL of the platform's JWKS (the local key file settings are never used in Azure)"
fi
[[ -n "$WHAT_IF" && -n "$SKIP_INFRA" ]] && die "WHAT_IF previews the infrastructure; it makes no sense with SKIP_INFRA"
if [[ -z "$WHAT_IF" ]]; then
	[[ -f "$ZIP" ]] || die "no package at $ZIP: run make package first (or pass ZIP=dist/releases/<file>.zip to roll back)"
fi

az account show --query id -o tsv >/dev/null 2>&1 || die "the Azure CLI is not signed in: run az login (and az account set --subscription ...)"
say "subscription $(az account show --query name -o tsv), tenant $(az account show --query tenantId -o tsv)"

if [[ -z "$SKIP_INFRA" ]]; then
	if [[ "$(az group exists --name "$RESOURCE_GROUP")" != true ]]; then
		[[ -n "$LOCATION" ]] || die "resource group $RESOURCE_GROUP does not exist: set LOCATION to create it"
		[[ -n "$WHAT_IF" ]] && die "resource group $RESOURCE_GROUP does not exist yet; what-if needs it"
		say "az group create $RESOURCE_GROUP in $LOCATION"
		az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none
	fi
	if [[ -n "$WHAT_IF" ]]; then
		say "az deployment group what-if ($template)"
		az deployment group what-if --resource-group "$RESOURCE_GROUP" --name "$deployment" \
			--template-file "$template" --parameters "$params"
		exit 0
	fi
	# The Microsoft Graph Bicep extension needs Bicep 0.36.1 or later.
	az bicep upgrade --only-show-errors >/dev/null 2>&1 || az bicep install --only-show-errors >/dev/null 2>&1 || true
	say "az deployment group create $deployment ($template, $params)"
	az deployment group create --resource-group "$RESOURCE_GROUP" --name "$deployment" \
		--template-file "$template" --parameters "$params" --output none
fi

output() {
	az deployment group show --resource-group "$RESOURCE_GROUP" --name "$deployment" \
		--query "properties.outputs.$1.value" --output tsv
}
app=$(output functionAppName) || die "no deployment $deployment in $RESOURCE_GROUP: deploy without SKIP_INFRA first"
[[ -n "$app" ]] || die "deployment $deployment has no functionAppName output"

mkdir -p dist/releases
release="dist/releases/azcreds-$(date -u +%Y%m%dT%H%M%SZ)-$(git rev-parse --short HEAD 2>/dev/null || echo unknown).zip"
if [[ "$(cd "$(dirname "$ZIP")" && pwd)" != "$root/dist/releases" ]]; then
	cp "$ZIP" "$release"
	say "kept a copy for rollback: $release"
fi

# A role assignment made minutes ago may not let the app write its deployment container
# yet: Azure documents up to 10 minutes before a new assignment takes effect, and the upload
# fails with 403 meanwhile. Try again every 30 s for up to UPLOAD_WAIT (default 12 min). Each
# attempt is bounded too: config-zip polls the host's status after the upload and can wait
# without end when the host never starts.
UPLOAD_WAIT=${UPLOAD_WAIT:-720}
UPLOAD_ATTEMPT_TIMEOUT=${UPLOAD_ATTEMPT_TIMEOUT:-600}
UPLOAD_RETRY_INTERVAL=${UPLOAD_RETRY_INTERVAL:-30}
for v in UPLOAD_WAIT UPLOAD_ATTEMPT_TIMEOUT UPLOAD_RETRY_INTERVAL; do
	[[ "${!v}" =~ ^[0-9]+$ ]] || die "$v is a number of seconds, got '${!v}'"
done
say "az functionapp deployment source config-zip $app ($ZIP)"
deadline=$((SECONDS + UPLOAD_WAIT))
attempt=1
until timeout "$UPLOAD_ATTEMPT_TIMEOUT" az functionapp deployment source config-zip --resource-group "$RESOURCE_GROUP" \
	--name "$app" --src "$ZIP" --timeout "$UPLOAD_ATTEMPT_TIMEOUT" --output none; do
	rc=$?
	((rc == 124)) && die "the upload did not finish within ${UPLOAD_ATTEMPT_TIMEOUT} s (the host may not start: check the function app's log stream)"
	((SECONDS + UPLOAD_RETRY_INTERVAL < deadline)) || die "the package upload kept failing for ${UPLOAD_WAIT} s (attempt $attempt); see the errors above"
	say "upload failed (attempt $attempt; new role assignments take up to 10 minutes to apply); trying again in ${UPLOAD_RETRY_INTERVAL} s"
	sleep "$UPLOAD_RETRY_INTERVAL"
	attempt=$((attempt + 1))
done

say "deployed"
printf 'endpoint:                    %s\n' "$(output endpoint)"
printf 'managed identity client id:  %s\n' "$(output managedIdentityClientId)"
printf 'managed identity object id:  %s\n' "$(output managedIdentityObjectId)"
if [[ "$GRANT_GRAPH_PERMISSION" == false ]]; then
	printf '\nThe identity still needs Microsoft Graph Application.ReadWrite.OwnedBy: a Privileged Role\n'
	printf 'Administrator grants it (README, "Deploy to Azure"); until then creating a credential fails.\n'
fi
