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

// ClassifyProbe maps a probe report to the contract's outcome table (docs/CONTRACT.md). afterGrace is whether the
// propagation grace after the storage submit has passed.
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
	case denied(udk) && denied(write) && denied(list):
		return terminal(problem(StatusRoleNotSufficient, HintNoRole, fmt.Sprintf(
			"Role is not sufficient: the service principal %s has no data access to storage account %q. Grant it Storage Blob Data Contributor on the storage account; check that the role went to this principal and not another one.",
			spObjectID, t.Account)))
	case denied(write) && passed(CheckListRead):
		return terminal(problem(StatusRoleNotSufficient, HintReaderRole,
			"Role is not sufficient: the service principal can read but not write. Reader is not enough: grant Storage Blob Data Contributor on the storage account."))
	case denied(udk) && passed(CheckWrite) && passed(CheckListRead):
		return terminal(problem(StatusRoleNotSufficient, HintContainerScope,
			"Role is not sufficient: the role is granted at container scope, which is too narrow (user delegation keys need a role on the storage account). Grant Storage Blob Data Contributor at the storage account scope."))
	case denied(first):
		return terminal(problem(StatusRoleNotSufficient, HintNoRole, fmt.Sprintf(
			"Role is not sufficient for storage account %q: grant Storage Blob Data Contributor on the storage account to the service principal %s.",
			t.Account, spObjectID)))
	case missing(first):
		return terminal(problem(StatusContainerNotFound, "", fmt.Sprintf(
			"Container not found or not readable: %q in storage account %q (Azure answers 404 both for a missing container and for no read access).",
			t.Container, t.Account)))
	}
	return unexpected(first)
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
