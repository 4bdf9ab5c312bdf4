package stack

import (
	"context"
	"testing"

	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/dev/localazure/localazuretest"
)

// TestCreateWorkloadIdentity: the stack's start creates the demo workload identity with its
// fixed ids in the first customer tenant, and may do so again.
func TestCreateWorkloadIdentity(t *testing.T) {
	si := localazuretest.Start(t, localazure.Config{HomeTenantID: HomeTenantID, ManagedIdentity: localazure.ManagedIdentity{
		ClientID: ManagedIdentityClientID, ObjectID: ManagedIdentityObjectID}, Tenants: CustomerTenants(), APIAppID: APIAppID}, nil)
	for range 2 {
		if err := CreateWorkloadIdentity(context.Background(), si.HTTPS.Client(), si.HTTPS.URL+"/control"); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := si.Server.ManagedIdentities(CustomerTenant1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0].Name != WorkloadIdentityName || ids[0].ClientID != WorkloadIdentityClientID || ids[0].PrincipalID != WorkloadIdentityPrincipalID {
		t.Errorf("identities of %s: %+v", CustomerTenant1, ids)
	}
	if err := CreateWorkloadIdentity(context.Background(), si.HTTPS.Client(), si.HTTPS.URL+"/nowhere"); err == nil {
		t.Error("no error from a control URL that does not exist")
	}
}

func TestWorkloadIdentityPath(t *testing.T) {
	if got, want := workloadIdentityPath(CustomerTenant1), localazure.WorkloadIdentityPath(CustomerTenant1); got != want {
		t.Errorf("the demo's identity endpoint %s, the stand-in's %s", got, want)
	}
}
