package store

import (
	"testing"

	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
	"github.com/activeloopai/azcreds/internal/dev/faultproxy"
)

// TestStoreContract holds the Table store to the contract of the domain's store, the one
// the in-memory store of the domain's tests passes too. Its answers are lost, where the
// contract asks, as a 503 ServerBusy after Azurite did the work.
func TestStoreContract(t *testing.T) {
	credentialtest.TestStore(t, func(t *testing.T, l credentialtest.Limits) credentialtest.StoreUnderTest {
		return underContract(t, l, faultproxy.FaultLostBusy)
	})
}

// TestStoreWriteIDsDroppedAnswers: the contract's lost answers again, lost as a dropped
// connection.
func TestStoreWriteIDsDroppedAnswers(t *testing.T) {
	credentialtest.TestStoreWriteIDs(t, func(t *testing.T, l credentialtest.Limits) credentialtest.StoreUnderTest {
		return underContract(t, l, faultproxy.FaultLostDrop)
	})
}

// underContract is a store on a fresh table behind a fault proxy that loses an answer
// with fault when the contract asks; every answer it was asked to lose must be lost.
func underContract(t *testing.T, l credentialtest.Limits, fault faultproxy.Fault) credentialtest.StoreUnderTest {
	t.Helper()
	s, p := newProxiedStore(t)
	s.limits = Limits{Credentials: l.Credentials, Workspaces: l.Workspaces, WorkloadIdentities: l.WorkloadIdentities}
	var asked int64
	t.Cleanup(func() {
		f := p.Stats().Services[faultproxy.ServiceTable].Faults
		if lost := f.LostBusy + f.LostDropped; lost != asked {
			t.Errorf("%d answers lost, %d asked for", lost, asked)
		}
	})
	opOf := func(call string) string {
		if call == credentialtest.CallUpdate {
			return "PUT entity"
		}
		return "POST batch" // every write that is an entity group transaction
	}
	return credentialtest.StoreUnderTest{Store: s,
		LoseAnswer: func(call string) {
			lose(t, p, opOf(call), fault)
			asked++
		},
		LoseAnswerThen: func(call string, meanwhile func()) {
			if err := p.InjectThen(faultproxy.ServiceTable, opOf(call), fault, meanwhile); err != nil {
				t.Fatal(err)
			}
			asked++
		}}
}
