// Package credential is the domain of managed Azure credentials: the states a credential
// moves through during onboarding, the one transition table that moves it, the validation
// of what users type into the wizard, and one type per job, each on the ports it uses:
//
//   - Onboarding (onboarding.go): the wizard's commands (create, tenant, storage, save
//     unverified, org default, delete) and the reads of credentials and their events.
//   - Jobs (jobs.go): the background jobs: the service principal poll, the access probe,
//     the app clean-up of a delete and the guard of a create; Runner runs any job.
//   - Issuance (issuance.go): workspaces, where their storage resolves, the pin at the
//     first table, and SAS issuance.
//   - HealthMonitor (health.go): the health sweep and re-probe of verified credentials.
//   - WorkloadIdentities (workloads.go): an organization's registry of customers' Azure
//     managed identities that may call the API with their own Entra tokens, and the cached
//     lookup that admits such a token to an organization.
//
// Every event a request writes (transitions, registrations, removals) records its Actor,
// which the HTTP adapter puts into the request's context (actor.go): a platform user or a
// workload identity. The background jobs act for no one.
//
// Onboarding and Jobs share the transition writer (state.go) and the windows' scheduling
// (windows.go); Onboarding and Issuance share an instance's ResolutionCache.
//
// It imports no Azure SDK. It declares every interface it consumes in ports.go, and
// adapters in other packages implement them.
//
// The state machine:
//
//	draft -[POST /tenant]-> sp_pending -[SP found]-> sp_verified
//	  ^                        |                        |
//	  +------(10 min timeout)--+                        | POST /storage
//	  +------(unknown tenant)--+                        v
//	                                             access_pending
//	                                               |-[read+write confirmed]-> verified
//	                                               |-[terminal error]-> sp_verified
//	                                               +-[5 min timeout]-> access_pending, probe timed_out
//	                                                     +-[POST /save-unverified]-> unverified_saved
//	unverified_saved -[first successful SAS issuance on /creds]-> verified
//
// Resubmitting the tenant (from draft or sp_pending) or the storage details (from
// sp_verified, access_pending or unverified_saved) restarts that window. Every window has a
// generation number; a background message carrying an older generation changes nothing.
//
// Data placement: a workspace's first table pins it to what it resolved to (its link, the
// org default's credential, or the environment default), and nothing moves it afterwards.
// Deleting a credential leaves a tombstone: unlocked workspaces linked to it fall back,
// locked ones get a CredentialDeletedError until re-pointed to a credential with the same
// base path (issuance.go). The delete's clean-up job clears the unlocked links and
// deletes the app registration (jobs.go).
package credential
