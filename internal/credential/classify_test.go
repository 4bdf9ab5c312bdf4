package credential

import (
	"net/http"
	"strings"
	"testing"
)

func pass(name string) CheckResult { return CheckResult{Name: name, Result: ResultPass} }
func skip(name string) CheckResult { return CheckResult{Name: name, Result: ResultSkip} }
func failed(name string, status int, code string) CheckResult {
	return CheckResult{Name: name, Result: ResultFail, Status: status, Code: code, RequestID: "req-" + name}
}

const (
	apm = "AuthorizationPermissionMismatch"
	af  = "AuthorizationFailure"
)

// TestClassifyProbe covers every row of the contract's probe-outcome table (docs/CONTRACT.md), before and after
// the propagation grace.
func TestClassifyProbe(t *testing.T) {
	target := ProbeTarget{Account: "bloblake", Container: "lakedata"}
	allDenied := ProbeReport{Checks: []CheckResult{failed(CheckUserDelegationKey, 403, apm), failed(CheckWrite, 403, apm), failed(CheckListRead, 403, apm), skip(CheckDelete)}}
	reader := ProbeReport{Checks: []CheckResult{pass(CheckUserDelegationKey), failed(CheckWrite, 403, apm), pass(CheckListRead), skip(CheckDelete)}}
	containerScope := ProbeReport{Checks: []CheckResult{failed(CheckUserDelegationKey, 403, apm), pass(CheckWrite), pass(CheckListRead), pass(CheckDelete)}}
	noContainer := ProbeReport{Checks: []CheckResult{pass(CheckUserDelegationKey), failed(CheckWrite, 404, "ContainerNotFound"), failed(CheckListRead, 404, "ContainerNotFound"), skip(CheckDelete)}}
	firewall := ProbeReport{Checks: []CheckResult{failed(CheckUserDelegationKey, 403, af), failed(CheckWrite, 403, af), failed(CheckListRead, 403, af), skip(CheckDelete)}}
	serverBusy := ProbeReport{Checks: []CheckResult{pass(CheckUserDelegationKey), failed(CheckWrite, 503, "ServerBusy"), pass(CheckListRead), skip(CheckDelete)}}
	cases := []struct {
		name       string
		report     ProbeReport
		afterGrace bool
		status     Status
		event      Event
		again      bool
		hint       string
		provider   string
	}{
		{"every check passes", ProbeReport{Checks: []CheckResult{pass(CheckUserDelegationKey), pass(CheckWrite), pass(CheckListRead), pass(CheckDelete)}}, false, StatusConnected, EventAccessConfirmed, false, "", ""},
		{"403 within grace", allDenied, false, StatusWaitingForRolePropagation, "", true, "", apm},
		{"404 within grace", noContainer, false, StatusWaitingForRolePropagation, "", true, "", "ContainerNotFound"},
		{"firewall within grace", firewall, false, StatusWaitingForRolePropagation, "", true, "", af},
		{"reader within grace", reader, false, StatusWaitingForRolePropagation, "", true, "", apm},
		{"403 on every check after grace", allDenied, true, StatusRoleNotSufficient, EventAccessFailed, false, HintNoRole, apm},
		{"reader after grace", reader, true, StatusRoleNotSufficient, EventAccessFailed, false, HintReaderRole, apm},
		{"container scope after grace", containerScope, true, StatusRoleNotSufficient, EventAccessFailed, false, HintContainerScope, apm},
		{"container missing after grace", noContainer, true, StatusContainerNotFound, EventAccessFailed, false, "", "ContainerNotFound"},
		{"account does not resolve", ProbeReport{AccountNotFound: true, Checks: []CheckResult{failed(CheckUserDelegationKey, 0, "")}}, false, StatusStorageAccountNotFound, EventAccessFailed, false, "", ""},
		{"firewall after grace", firewall, true, StatusNetworkBlocked, EventAccessFailed, false, HintAllowNetwork, af},
		{"anything else", serverBusy, true, StatusUnexpectedError, "", true, "", "ServerBusy"},
		{"anything else within grace", serverBusy, false, StatusUnexpectedError, "", true, "", "ServerBusy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := ClassifyProbe(c.report, target, "sp-1", c.afterGrace)
			if v.Status != c.status || v.Event != c.event || v.Again != c.again || v.Problem.Hint != c.hint || v.Problem.ProviderError != c.provider {
				t.Fatalf("got %+v\nwant status %s event %q again %v hint %q provider %q", v, c.status, c.event, c.again, c.hint, c.provider)
			}
			if c.status != StatusConnected && v.Problem.Message == "" {
				t.Fatal("no user-facing message")
			}
			if c.status != StatusConnected && c.status != StatusStorageAccountNotFound && v.Problem.RequestID == "" {
				t.Fatal("no provider request id")
			}
			if v.Event != "" {
				if to, err := Next(StateAccessPending, v.Event); err != nil || (to != StateVerified && to != StateSPVerified) {
					t.Fatalf("event %s leads to %s, %v", v.Event, to, err)
				}
			}
		})
	}
}

// TestClassifyAccessProbe covers every row of the contract's probe-outcome table for the
// onboarding's window: the same as ClassifyProbe but for 403 on every check after the
// grace, which waits (no role visible yet) instead of ending the window.
func TestClassifyAccessProbe(t *testing.T) {
	target := ProbeTarget{Account: "bloblake", Container: "lakedata"}
	allDenied := ProbeReport{Checks: []CheckResult{failed(CheckUserDelegationKey, 403, apm), failed(CheckWrite, 403, apm), failed(CheckListRead, 403, apm), skip(CheckDelete)}}
	reader := ProbeReport{Checks: []CheckResult{pass(CheckUserDelegationKey), failed(CheckWrite, 403, apm), pass(CheckListRead), skip(CheckDelete)}}
	containerScope := ProbeReport{Checks: []CheckResult{failed(CheckUserDelegationKey, 403, apm), pass(CheckWrite), pass(CheckListRead), pass(CheckDelete)}}
	noContainer := ProbeReport{Checks: []CheckResult{pass(CheckUserDelegationKey), failed(CheckWrite, 404, "ContainerNotFound"), failed(CheckListRead, 404, "ContainerNotFound"), skip(CheckDelete)}}
	firewall := ProbeReport{Checks: []CheckResult{failed(CheckUserDelegationKey, 403, af), failed(CheckWrite, 403, af), failed(CheckListRead, 403, af), skip(CheckDelete)}}
	serverBusy := ProbeReport{Checks: []CheckResult{pass(CheckUserDelegationKey), failed(CheckWrite, 503, "ServerBusy"), pass(CheckListRead), skip(CheckDelete)}}
	cases := []struct {
		name       string
		report     ProbeReport
		afterGrace bool
		status     Status
		event      Event
		again      bool
		hint       string
		code       string
		provider   string
	}{
		{"every check passes", ProbeReport{Checks: []CheckResult{pass(CheckUserDelegationKey), pass(CheckWrite), pass(CheckListRead), pass(CheckDelete)}}, true, StatusConnected, EventAccessConfirmed, false, "", "", ""},
		{"403 within grace", allDenied, false, StatusWaitingForRolePropagation, "", true, "", "waiting_for_role_propagation", apm},
		{"404 within grace", noContainer, false, StatusWaitingForRolePropagation, "", true, "", "waiting_for_role_propagation", "ContainerNotFound"},
		{"403 on every check after grace: no role visible yet", allDenied, true, StatusWaitingForRolePropagation, "", true, HintNoRole, "role_not_sufficient", apm},
		{"reader after grace", reader, true, StatusRoleNotSufficient, EventAccessFailed, false, HintReaderRole, "role_not_sufficient", apm},
		{"container scope after grace", containerScope, true, StatusRoleNotSufficient, EventAccessFailed, false, HintContainerScope, "role_not_sufficient", apm},
		{"container missing after grace", noContainer, true, StatusContainerNotFound, EventAccessFailed, false, "", "container_not_found", "ContainerNotFound"},
		{"account does not resolve", ProbeReport{AccountNotFound: true, Checks: []CheckResult{failed(CheckUserDelegationKey, 0, "")}}, false, StatusStorageAccountNotFound, EventAccessFailed, false, "", "storage_account_not_found", ""},
		{"firewall after grace", firewall, true, StatusNetworkBlocked, EventAccessFailed, false, HintAllowNetwork, "network_blocked", af},
		{"anything else", serverBusy, true, StatusUnexpectedError, "", true, "", "unexpected_error", "ServerBusy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := ClassifyAccessProbe(c.report, target, "sp-1", c.afterGrace)
			if v.Status != c.status || v.Event != c.event || v.Again != c.again || v.Problem.Hint != c.hint ||
				v.Problem.Code != c.code || v.Problem.ProviderError != c.provider {
				t.Fatalf("got %+v\nwant status %s event %q again %v hint %q code %q provider %q", v, c.status, c.event, c.again, c.hint, c.code, c.provider)
			}
			if c.status != StatusConnected && v.Problem.Message == "" {
				t.Fatal("no user-facing message")
			}
			if v.Event != "" {
				if to, err := Next(StateAccessPending, v.Event); err != nil || (to != StateVerified && to != StateSPVerified) {
					t.Fatalf("event %s leads to %s, %v", v.Event, to, err)
				}
			}
		})
	}
	v := ClassifyAccessProbe(allDenied, target, "2c7e9f1a-3b4d-4e5f-8a6b-7c8d9e0f1a2b", true)
	for _, want := range []string{"Waiting for role propagation", "bloblake",
		"az role assignment list --assignee 2c7e9f1a-3b4d-4e5f-8a6b-7c8d9e0f1a2b --all --query '[].{role:roleDefinitionName, scope:scope}' -o table"} {
		if !strings.Contains(v.Problem.Message, want) {
			t.Errorf("no-role message %q does not say %q", v.Problem.Message, want)
		}
	}
}

func TestUnexpectedMessageCarriesRequestID(t *testing.T) {
	v := ClassifyProbe(ProbeReport{Checks: []CheckResult{failed(CheckWrite, http.StatusInternalServerError, "InternalError")}}, ProbeTarget{}, "", true)
	if !strings.HasPrefix(v.Problem.Message, UnexpectedStorageMessage) || !strings.Contains(v.Problem.Message, "req-write") {
		t.Fatalf("message %q", v.Problem.Message)
	}
}

func TestDeniedBeforeAsksForFreshToken(t *testing.T) {
	if deniedBefore([]Check{{Name: CheckWrite, Result: ResultFail, ProviderCode: "ContainerNotFound"}}) {
		t.Error("a 404 asked for a fresh token")
	}
	if !deniedBefore([]Check{{Name: CheckWrite, Result: ResultFail, ProviderCode: apm}}) {
		t.Error("a 403 did not ask for a fresh token")
	}
}
