#!/usr/bin/env bash
# walkthrough.sh (`make walkthrough`): with `make run` up in another terminal, plays one
# whole onboarding against it: the wizard's requests to the API, the customer's steps
# through the stand-in's control endpoints, each step printed with its time.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$AZCREDS_ROOT"
azcreds_stack run
azcreds_handler_env
if ! curl -fsS -o /dev/null "$AZCREDS_HANDLER_URL/"; then
	echo "walkthrough: nothing answers on $AZCREDS_HANDLER_URL: start 'make run' first" >&2
	exit 1
fi
[[ -x bin/handler ]] || go build -o bin/handler .
exec bin/handler walkthrough --api "$AZCREDS_HANDLER_URL" --control "$AZCREDS_LOCALAZURE_CONTROL_URL" \
	--org "$AZCREDS_DEMO_ORG" --tenant "$AZCREDS_LOCAL_CUSTOMER_TENANT_1" --account "$AZCREDS_CUSTOMER_ACCOUNT_1" "$@"
