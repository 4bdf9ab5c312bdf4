// Package queue names the background work the Azure Functions host triggers, in two tables
// that every part of the binary reads: JobQueues (a job kind, its Storage queue, the
// queue-triggered function that runs it and that function's binding) and Timers (a
// timer-triggered function, its binding and the app setting of its schedule). The
// producer (internal/queue/azurequeue), the standalone consumer (internal/worker), the
// host's invocations (handlers.Invoker) and the generated functions/*/function.json all
// come from these rows, so adding a job kind is one row here and its runner in the domain.
//
// It also holds the jobs' wire format: JSON, base64-encoded as the queue trigger expects
// (its default messageEncoding). The package imports no Azure SDK, so the HTTP adapter can
// use it to decode the host's payloads.
package queue
