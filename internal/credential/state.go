package credential

import (
	"context"
	"fmt"
	"time"
)

// State is where a credential is in onboarding, spelled as stored and as the API shows it.
type State string

// The states of the state machine (doc.go).
const (
	StateDraft           State = "draft"
	StateSPPending       State = "sp_pending"
	StateSPVerified      State = "sp_verified"
	StateAccessPending   State = "access_pending"
	StateVerified        State = "verified"
	StateUnverifiedSaved State = "unverified_saved"
)

// Event is the cause of a transition; it is recorded in the credential's event log.
type Event string

// The events that move a credential. Only the transition table maps them to states.
const (
	EventSubmitTenant    Event = "submit_tenant"
	EventSPFound         Event = "sp_found"
	EventSPTimedOut      Event = "sp_timed_out"
	EventTenantNotFound  Event = "tenant_not_found"
	EventSubmitStorage   Event = "submit_storage"
	EventAccessConfirmed Event = "access_confirmed"
	EventAccessFailed    Event = "access_failed"
	EventSaveUnverified  Event = "save_unverified"
	EventSASIssued       Event = "sas_issued"
)

type transition struct {
	from   []State
	to     State
	action string // how a refusal names the request
}

// transitions is the one table that assigns states. Nothing else sets Credential.State.
var transitions = map[Event]transition{
	EventSubmitTenant:    {from: []State{StateDraft, StateSPPending}, to: StateSPPending, action: "submit the tenant"},
	EventSPFound:         {from: []State{StateSPPending}, to: StateSPVerified, action: "record the service principal"},
	EventSPTimedOut:      {from: []State{StateSPPending}, to: StateDraft, action: "end the service principal poll"},
	EventTenantNotFound:  {from: []State{StateSPPending}, to: StateDraft, action: "end the service principal poll"},
	EventSubmitStorage:   {from: []State{StateSPVerified, StateAccessPending, StateUnverifiedSaved}, to: StateAccessPending, action: "submit storage details"},
	EventAccessConfirmed: {from: []State{StateAccessPending}, to: StateVerified, action: "record verified access"},
	EventAccessFailed:    {from: []State{StateAccessPending}, to: StateSPVerified, action: "record failed access"},
	EventSaveUnverified:  {from: []State{StateAccessPending}, to: StateUnverifiedSaved, action: "save unverified"},
	EventSASIssued:       {from: []State{StateUnverifiedSaved}, to: StateVerified, action: "promote after SAS issuance"},
}

// Next returns the state that ev leads to from s, or a *TransitionError naming the state
// and the states the event is allowed in.
func Next(s State, ev Event) (State, error) {
	t, ok := transitions[ev]
	if !ok {
		return s, &TransitionError{Action: string(ev), State: s}
	}
	for _, f := range t.from {
		if f == s {
			return t.to, nil
		}
	}
	return s, &TransitionError{Action: t.action, State: s, Allowed: t.from}
}

// Known reports whether s is one of the defined states.
func (s State) Known() bool {
	switch s {
	case StateDraft, StateSPPending, StateSPVerified, StateAccessPending, StateVerified, StateUnverifiedSaved:
		return true
	}
	return false
}

// Usable reports whether a credential in s can be an org default or serve SAS requests.
func (s State) Usable() bool { return s == StateVerified || s == StateUnverifiedSaved }

// transitioner writes transitions: it moves a credential by the table and writes the row
// with its event in one conditional write. The job types share it; nothing else writes
// a credential's state after its creation.
type transitioner struct {
	store Store
	now   func() time.Time
}

// apply moves c by ev, applies change, and writes it with its event, conditional on the
// ETag c was read with. A window-starting event bumps the generation. The event records
// the actor ctx carries (none for a background job).
func (t transitioner) apply(ctx context.Context, c *Credential, ev Event, requestID string, change func(*Credential)) error {
	to, err := Next(c.State, ev)
	if err != nil {
		return err
	}
	now := t.now().UTC()
	rec := EventRecord{Time: now, From: c.State, To: to, Cause: ev, RequestID: requestID, Actor: ActorOf(ctx)}
	c.State = to
	c.UpdatedAt = now
	if ev == EventSubmitTenant || ev == EventSubmitStorage {
		c.Generation++
		c.LastError = Problem{}
	}
	if to == StateVerified && c.VerifiedAt.IsZero() {
		c.VerifiedAt = now
	}
	if change != nil {
		change(c)
	}
	rec.Generation = c.Generation
	if err := t.store.Update(ctx, c, &rec); err != nil {
		return fmt.Errorf("%s for credential %s: %w", ev, c.ID, err)
	}
	return nil
}
