# The two commands that matter: `make run` (the whole product on this machine) and
# `make test` (vet and tests against a throw-away Azurite). Each installs what is missing,
# starts what it needs and stops all of it when it ends. scripts/dev.sh installs Azurite's
# Node modules and hands over to cmd/devstack, which does the rest.

SHELL := bash
.DEFAULT_GOAL := help

# Flags and packages for `make test`, e.g. `make test PKGS=./internal/store/...`;
# AZCREDS_TEST_PORT_BASE=10400 moves its Azurite off 10100-10102 (to run two at once);
# AZCREDS_RUN_PORT_BASE=12000 moves `make run` (and `make walkthrough`) off their fixed
# ports, AZCREDS_LOAD_PORT_BASE `make load` and `make compare` off 10200-10213.
GOTEST_FLAGS ?= -race -count=1
PKGS ?= ./...
export GOTEST_FLAGS PKGS AZCREDS_TEST_PORT_BASE AZCREDS_RUN_PORT_BASE AZCREDS_LOAD_PORT_BASE FUZZTIME
export LOAD_N LOAD_CONCURRENCY LOAD_CONNS LOAD_CREDS_CONNS LOAD_DURATION LOAD_PROPAGATION LOAD_COUNT LOAD_JSON LOAD_PROFILE
# `make compare REF=<git ref>`: the ref to compare this tree with (default: the merge base of
# HEAD and COMPARE_BASE, default main); COMPARE_RUNS runs of each, alternating.
export REF COMPARE_BASE COMPARE_RUNS

.PHONY: help deps test test-short soak fuzz load compare run stack build functions clean walkthrough

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install what is missing: node_modules (npm ci), TLS certificate, API token keys, Go modules
	@scripts/dev.sh deps

test: ## gofmt, go mod tidy -diff, go vet, go test -race against a throw-away Azurite on 10100-10102, fuzzing
	@scripts/dev.sh test

test-short: ## like test, with -short
	@GOTEST_FLAGS='$(GOTEST_FLAGS) -short' scripts/dev.sh test

soak: ## the four TestSoak* end-to-end tests at once, at the counts docs/RELIABILITY.md reports (faults, kills, restarts, lost messages)
	@AZCREDS_SOAK=1 GOTEST_FLAGS='-count=1 -v -timeout 85m -parallel 4 -run ^TestSoak' PKGS=./internal/e2e scripts/dev.sh test

fuzz: ## every fuzz target for FUZZTIME each (default 1m); make test runs each for 10,000 executions
	@scripts/dev.sh fuzz

load: ## load figures of docs/PERFORMANCE.md against a fresh local stack (1,000 onboardings; /creds at 1, 16, 64 and GET credential at 64 connections, 60 s each)
	@scripts/dev.sh load

compare: ## make load against REF's build and this tree's, each on a fresh stack, and the ratios (docs/PERFORMANCE.md)
	@scripts/dev.sh compare

run: ## Azurite + Entra/Graph stand-in + bin/handler serve on 127.0.0.1:7071; Ctrl-C stops all
	@scripts/dev.sh run

stack: ## Azurite (10000-10002) + Entra/Graph stand-in (7443) only; Ctrl-C stops both
	@scripts/dev.sh run -stack-only

build: ## bin/handler
	go build -o bin/handler .

functions: ## write functions/*/function.json from the route, job and timer tables (a test fails while they differ)
	go run ./cmd/functions

clean: ## remove bin/, dist/ and .local/ (certificates, keys, Azurite data, logs)
	rm -rf bin dist .local

walkthrough: ## with `make run` up: one whole onboarding, the customer's steps played through the stand-in
	@scripts/dev.sh walkthrough

# Deployment to Azure (README, "Deploy to Azure"). `make package` needs only Go; `make deploy`
# needs the Azure CLI, signed in, and RESOURCE_GROUP, AUTH_ISSUER, AUTH_AUDIENCE and
# AUTH_JWKS_URL (LOCATION to create the group); scripts/deploy.sh explains every variable.
RESOURCE_GROUP ?=
LOCATION ?=
APP_NAME ?= azcreds
AUTH_ISSUER ?=
AUTH_AUDIENCE ?=
AUTH_JWKS_URL ?=
GRANT_GRAPH_PERMISSION ?= true
ZIP ?= dist/azcreds.zip
SKIP_INFRA ?=
WHAT_IF ?=

.PHONY: package deploy

package: ## dist/azcreds.zip for Azure: linux/amd64 handler (mode 0755), host.json, functions/* at its root
	go run ./cmd/package -out dist

deploy: ## az: Bicep (infra/bicep) into RESOURCE_GROUP, then dist/azcreds.zip onto the function app
	@RESOURCE_GROUP='$(RESOURCE_GROUP)' LOCATION='$(LOCATION)' APP_NAME='$(APP_NAME)' \
		AUTH_ISSUER='$(AUTH_ISSUER)' AUTH_AUDIENCE='$(AUTH_AUDIENCE)' AUTH_JWKS_URL='$(AUTH_JWKS_URL)' \
		GRANT_GRAPH_PERMISSION='$(GRANT_GRAPH_PERMISSION)' ZIP='$(ZIP)' SKIP_INFRA='$(SKIP_INFRA)' \
		WHAT_IF='$(WHAT_IF)' scripts/deploy.sh
