// Package stack is the local stack, defined once: the fixed ids (tenants, the managed
// identity, storage accounts and keys, the demo organization), the ports, the generated
// TLS certificate and token keys, and the processes (Azurite, the Entra/Graph stand-in, the
// storage fault proxy, the handler) with the settings each one is started with.
//
// cmd/devstack runs it for `make run`, `make load`, `make walkthrough` and `make test`, and
// internal/e2e starts its own stacks with it. Every process runs in a process group of its
// own, so that stopping it stops what it started too; on Linux each one also gets SIGTERM
// when the process that started it dies ([Command]), and a [Watchdog] stops whole groups
// when the launcher is killed with SIGKILL.
package stack
