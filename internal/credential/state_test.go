package credential

import (
	"errors"
	"strings"
	"testing"
)

var allStates = []State{StateDraft, StateSPPending, StateSPVerified, StateAccessPending, StateVerified, StateUnverifiedSaved}

// TestTransitionTable checks every (state, event) pair: the allowed ones lead where
// the state machine (doc.go) says, every other one is refused with the state named.
func TestTransitionTable(t *testing.T) {
	allowed := map[Event]map[State]State{
		EventSubmitTenant:    {StateDraft: StateSPPending, StateSPPending: StateSPPending},
		EventSPFound:         {StateSPPending: StateSPVerified},
		EventSPTimedOut:      {StateSPPending: StateDraft},
		EventTenantNotFound:  {StateSPPending: StateDraft},
		EventSubmitStorage:   {StateSPVerified: StateAccessPending, StateAccessPending: StateAccessPending, StateUnverifiedSaved: StateAccessPending},
		EventAccessConfirmed: {StateAccessPending: StateVerified},
		EventAccessFailed:    {StateAccessPending: StateSPVerified},
		EventSaveUnverified:  {StateAccessPending: StateUnverifiedSaved},
		EventSASIssued:       {StateUnverifiedSaved: StateVerified},
	}
	if len(allowed) != len(transitions) {
		t.Fatalf("test covers %d events, table has %d", len(allowed), len(transitions))
	}
	for ev, from := range allowed {
		for _, s := range allStates {
			got, err := Next(s, ev)
			want, ok := from[s]
			if ok {
				if err != nil || got != want {
					t.Errorf("Next(%s, %s) = %s, %v; want %s", s, ev, got, err, want)
				}
				continue
			}
			var te *TransitionError
			if !errors.As(err, &te) {
				t.Errorf("Next(%s, %s) = %s, %v; want a TransitionError", s, ev, got, err)
				continue
			}
			if got != s {
				t.Errorf("refused Next(%s, %s) changed the state to %s", s, ev, got)
			}
			if !errors.Is(err, ErrConflict) {
				t.Errorf("TransitionError does not match ErrConflict")
			}
			if msg := err.Error(); !strings.Contains(msg, `"`+string(s)+`"`) {
				t.Errorf("message %q does not name the state %s", msg, s)
			}
		}
	}
}

func TestTransitionErrorMessage(t *testing.T) {
	_, err := Next(StateVerified, EventSubmitTenant)
	want := `cannot submit the tenant: credential is in state "verified"; allowed only in state draft, sp_pending`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestUnknownEventIsRefused(t *testing.T) {
	if _, err := Next(StateDraft, Event("bogus")); err == nil {
		t.Fatal("an unknown event was accepted")
	}
}

func TestStateHelpers(t *testing.T) {
	for _, s := range allStates {
		if !s.Known() {
			t.Errorf("%s not known", s)
		}
		usable := s == StateVerified || s == StateUnverifiedSaved
		if s.Usable() != usable {
			t.Errorf("%s.Usable() = %v", s, s.Usable())
		}
	}
	if State("gone").Known() {
		t.Error("unknown state reported known")
	}
}
