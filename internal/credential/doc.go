// Package credential is the domain of managed Azure credentials: the states a credential
// moves through during onboarding, the one transition table that moves it, the validation
// of what users type into the wizard, and the Service that ties them to storage, the home
// tenant's directory and the background pollers.
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
// base path (issue.go). The delete's clean-up job clears the unlocked links and deletes
// the app registration (verify.go).
package credential
