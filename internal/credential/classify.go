package credential

import (
	"fmt"
	"net/http"
)

// Storage error codes the probe acts on.
// https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes
const (
	codeAuthorizationPermissionMismatch = "AuthorizationPermissionMismatch"
	codeAuthorizationFailure            = "AuthorizationFailure"
	codeContainerNotFound               = "ContainerNotFound"
)

// Hints say which of the ways a role can be "not sufficient" the probe saw.
const (
	HintNoRole         = "no_role"
	HintReaderRole     = "reader_role"
	HintContainerScope = "container_scope"
	HintAllowNetwork   = "allow_platform_network"
)

// Verdict is what one probe attempt means for the credential.
type Verdict struct {
	Status  Status
	Event   Event // "" while the state stays access_pending
	Again   bool  // probe again (until the deadline)
	Problem Problem
}

// UnexpectedStorageMessage is the seed's text for an error the backend does not classify.
const UnexpectedStorageMessage = "Azure Storage operation failed with an unexpected error"

// ClassifyAccessProbe maps one attempt of the onboarding's access probe to the contract's
// outcome table (docs/CONTRACT.md). afterGrace is whether the propagation grace after the storage submit has
// passed. It is ClassifyProbe with one difference: after the grace, 403 on every check is
// not terminal. It means no role is visible yet, which Azure cannot tell apart from a grant
// still on its way to the data plane (a role assignment can take up to 10 minutes), so the
// probe keeps waiting until the deadline, with hint no_role and the check the customer can
// run. Only partial access (Reader, container scope) proves the principal is seen and ends
// the window early.
func ClassifyAccessProbe(r ProbeReport, t ProbeTarget, spObjectID string, afterGrace bool) Verdict {
	v := ClassifyProbe(r, t, spObjectID, afterGrace)
	if !afterGrace || v.Status != StatusRoleNotSufficient || v.Problem.Hint != HintNoRole {
		return v
	}
	v.Status, v.Event, v.Again = StatusWaitingForRolePropagation, "", true
	v.Problem.Message = fmt.Sprintf("Waiting for role propagation: no role is visible yet for the service principal %s on storage account %q. "+
		"A new role assignment can take up to 10 minutes to reach the storage data plane; we keep checking until the deadline. "+
		"Check that Storage Blob Data Contributor was granted to this service principal on the storage account: %s",
		spObjectID, t.Account, RoleCheckCommand(spObjectID))
	return v
}

// ClassifyProbe maps a probe report to what it shows about the service principal's access.
// afterGrace is whether 403 and 404 can no longer be a grant on its way (the propagation
// grace after the storage submit has passed; always, for a verified credential's health).
// 403 on every check is role_not_sufficient with hint no_role: for a verified credential
// the role it was verified with is gone. The onboarding's window reads that one outcome
// differently (ClassifyAccessProbe).
func ClassifyProbe(r ProbeReport, t ProbeTarget, spObjectID string, afterGrace bool) Verdict {
	var failed []CheckResult
	by := map[string]CheckResult{}
	for _, c := range r.Checks {
		by[c.Name] = c
		if c.Result == ResultFail {
			failed = append(failed, c)
		}
	}
	if r.AccountNotFound {
		return Verdict{Status: StatusStorageAccountNotFound, Event: EventAccessFailed, Problem: Problem{
			Code: string(StatusStorageAccountNotFound),
			Message: fmt.Sprintf("Storage account not found: %q does not exist, or DNS for %s.blob.core.windows.net is not resolving. Check the spelling and submit again.",
				t.Account, t.Account)}}
	}
	if len(failed) == 0 && len(r.Checks) > 0 {
		return Verdict{Status: StatusConnected, Event: EventAccessConfirmed}
	}
	if len(failed) == 0 {
		return unexpected(CheckResult{})
	}
	first := failed[0]
	problem := func(s Status, hint, msg string) Problem {
		return Problem{Code: string(s), Hint: hint, Message: msg, ProviderError: first.Code, RequestID: first.RequestID}
	}
	denied := func(c CheckResult) bool {
		return c.Result == ResultFail && c.Status == http.StatusForbidden &&
			(c.Code == codeAuthorizationPermissionMismatch || c.Code == codeAuthorizationFailure)
	}
	missing := func(c CheckResult) bool { return c.Result == ResultFail && c.Status == http.StatusNotFound }
	passed := func(name string) bool { return by[name].Result == ResultPass }

	propagating := false
	for _, c := range failed {
		if denied(c) || missing(c) {
			propagating = true
		}
	}
	if propagating && !afterGrace {
		return Verdict{Status: StatusWaitingForRolePropagation, Again: true, Problem: problem(StatusWaitingForRolePropagation, "",
			"Waiting for role propagation: Azure RBAC takes 30 to 90 seconds to reach the storage data plane. Still checking.")}
	}
	for _, c := range failed {
		if c.Code == codeContainerNotFound {
			return terminal(problem(StatusContainerNotFound, "", fmt.Sprintf(
				"Container not found or not readable: %q does not exist in storage account %q, or the service principal has no read access to it (Azure answers 404 for both).",
				t.Container, t.Account)))
		}
	}
	for _, c := range failed {
		if c.Status == http.StatusForbidden && c.Code == codeAuthorizationFailure {
			return terminal(problem(StatusNetworkBlocked, HintAllowNetwork, fmt.Sprintf(
				"Storage account %q refused the request by its network rules (firewall). Allow the platform's network on the account's Networking page, then submit again.",
				t.Account)))
		}
	}
	udk, write, list := by[CheckUserDelegationKey], by[CheckWrite], by[CheckListRead]
	switch {
	case !anyPassed(r.Checks) && denied(udk) && denied(write) && denied(list):
		return terminal(problem(StatusRoleNotSufficient, HintNoRole, fmt.Sprintf(
			"Role is not sufficient: the service principal %s has no data access to storage account %q. Grant it Storage Blob Data Contributor on the storage account; check that the role went to this principal and not another one: %s",
			spObjectID, t.Account, RoleCheckCommand(spObjectID))))
	case denied(write) && passed(CheckListRead):
		return terminal(problem(StatusRoleNotSufficient, HintReaderRole,
			"Role is not sufficient: the service principal can read but not write. Reader is not enough: grant Storage Blob Data Contributor on the storage account."))
	case denied(udk) && passed(CheckWrite) && passed(CheckListRead):
		return terminal(problem(StatusRoleNotSufficient, HintContainerScope,
			"Role is not sufficient: the role is granted at container scope, which is too narrow (user delegation keys need a role on the storage account). Grant Storage Blob Data Contributor at the storage account scope."))
	case denied(first):
		// Denied somewhere, allowed elsewhere: the principal is seen, and its role falls short.
		return terminal(problem(StatusRoleNotSufficient, "", fmt.Sprintf(
			"Role is not sufficient for storage account %q: grant Storage Blob Data Contributor on the storage account to the service principal %s.",
			t.Account, spObjectID)))
	case missing(first):
		return terminal(problem(StatusContainerNotFound, "", fmt.Sprintf(
			"Container not found or not readable: %q in storage account %q (Azure answers 404 both for a missing container and for no read access).",
			t.Container, t.Account)))
	}
	return unexpected(first)
}

// anyPassed reports whether some check passed.
func anyPassed(checks []CheckResult) bool {
	for _, c := range checks {
		if c.Result == ResultPass {
			return true
		}
	}
	return false
}

func terminal(p Problem) Verdict {
	return Verdict{Status: Status(p.Code), Event: EventAccessFailed, Problem: p}
}

func unexpected(c CheckResult) Verdict {
	msg := UnexpectedStorageMessage
	if c.RequestID != "" {
		msg += " (request id " + c.RequestID + ")"
	}
	return Verdict{Status: StatusUnexpectedError, Again: true, Problem: Problem{
		Code: string(StatusUnexpectedError), Message: msg, ProviderError: c.Code, RequestID: c.RequestID}}
}
