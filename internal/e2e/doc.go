// Package e2e holds the end-to-end tests: the real binaries (the handler and the local
// Entra/Graph stand-in with its RBAC front) against the test Azurite, driven over HTTP the
// way the wizard and a customer drive them. The tests build the binaries themselves, so
// the package links neither msgraph-sdk-go nor the stand-in.
package e2e
