// Package integration runs the domain, and the API on it, in-process over real Table and
// Queue storage on Azurite: the tests whose subject is storage itself. They are the races
// of the wizard's requests against the pollers (real ETags and queues), the faults of a
// fault proxy in front of Azurite, and the counts of storage calls per step and per
// request. The domain's and the API's behaviour tests run on in-memory ports instead
// (internal/credential/credentialtest), in seconds and without Azurite.
//
// It has no code but its tests.
package integration
