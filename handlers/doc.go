// Package handlers is the HTTP adapter of the credential API: it authenticates the
// caller, decodes bodies, calls the domain and writes JSON. It imports no Azure SDK.
//
// Its files follow the domain's job types, each behind a small interface of its own:
// onboarding.go (the credential endpoints, Onboarding), issuance.go (the workspace and
// SAS endpoints, Issuance), workloads.go (the registry of workload identities,
// WorkloadIdentities), functions.go (the Functions host's queue and timer invocations:
// JobRunner, HealthSweeper); api.go holds the routes and authentication: a platform
// user's token, or a workload identity's Entra token admitted by the registry
// (WorkloadLookup). The caller becomes the request's actor, which its events and its log
// line record.
//
// Handlers return errors; one adapter (serve) maps them to a status and a public message,
// logs the private cause, recovers panics, and stamps every response with X-Request-Id.
//
// It is the Functions host's adapter too: Invoker serves the queue and timer functions of
// internal/queue's tables, and HostFunctions renders the function.json of every function,
// HTTP ones from the route table, which `make functions` writes to functions/.
package handlers
