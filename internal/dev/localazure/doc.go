// Package localazure is a local stand-in for Microsoft Entra ID and the slice of Microsoft
// Graph that azcreds calls, plus control endpoints that play the customer's side of the
// onboarding (the `az` commands a customer would run).
//
// Azure ships emulators for Storage (Azurite) but none for Entra ID or Graph, so the local
// stack runs this server in their place. The real SDK clients (azidentity, msgraph-sdk-go)
// talk to it unchanged: it serves the OpenID configuration and token endpoints that MSAL
// calls, the App Service managed identity endpoint that ManagedIdentityCredential calls,
// and the Graph routes for app registrations, federated identity credentials and service
// principal lookup. Failures answer with the shapes and codes Entra and Graph use
// (AADSTS numbers, OData error codes), so the code under test classifies them exactly as
// it would in Azure.
//
// Customers' workload identities are played too: managed identities in customer tenants,
// the identity endpoint of their workloads, and the Entra v2.0 tokens they get there for
// the platform API (an app of the home tenant, Config.APIAppID), refused with AADSTS500011
// until the customer installs the API's service principal in their tenant.
//
// The customer's side (creating tenants, installing a service principal, registering a
// storage account, granting or revoking a data-plane role with a propagation delay,
// creating a container on Azurite, creating a managed identity or playing its workload,
// injecting faults) is served under /control/ and is
// also available as Go methods on Server. See README.md in this directory for the
// control endpoints.
//
// Azurite checks no permissions, so StorageFront returns a handler that stands in front of
// it for customer storage accounts (<account>.blob.localhost) and answers the stand-in's
// principals as Azure Storage would: bearer tokens verified, effective roles (with their
// propagation delay) per operation, a firewall switch per account, SAS and shared key
// requests passed through.
//
// State lives in memory behind one mutex: the server stands in for a directory, not for
// storage. The package imports no Azure SDK so that it stays cheap to build.
package localazure
