package e2e

import (
	"os"
	"testing"
	"time"
)

// Soak tests (TestSoak*) run a short version under `make test` and the counts that
// docs/RELIABILITY.md reports under `make soak`, which sets AZCREDS_SOAK=1.
const envSoak = "AZCREDS_SOAK"

// soaking reports whether this run is `make soak`.
func soaking() bool { return os.Getenv(envSoak) == "1" }

// soakCount is short under `make test` and full under `make soak`; it logs which, so a
// test's output says what it covered.
func soakCount(t testing.TB, what string, short, full int) int {
	t.Helper()
	n := short
	if soaking() {
		n = full
	}
	t.Logf("%s: %d (make test runs %d, make soak %d)", what, n, short, full)
	return n
}

// The soaks' background work: several handler processes on one set of tables and queues,
// as Flex Consumption runs several instances when it scales out (each runs every
// function here, a harsher case than per-function scaling), and a reconciler every few
// seconds, so a lost chain moves again within seconds.
const (
	soakInstances = 3
	soakReconcile = 5 * time.Second
)
