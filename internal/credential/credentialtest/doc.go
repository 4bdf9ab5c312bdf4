// Package credentialtest holds in-memory implementations of the credential domain's ports
// for tests: a store that keeps what the Table store keeps the way it keeps it (ETags,
// write ids, tombstones, workspaces and pins, per-organization limits, events, health),
// a scheduler that records, a directory, a finder, a prober, a signer and a container
// creator, on one settable clock (internal/clocktest). Each fake is stateful, and has
// failure knobs where tests need them (Inject).
//
// TestStore is the contract every store passes: internal/store runs it against Table
// Storage on Azurite, and this package against its own Store, so the two cannot drift.
//
// Like the domain, it links no Azure SDK.
package credentialtest
