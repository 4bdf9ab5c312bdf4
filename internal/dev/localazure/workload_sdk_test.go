package localazure_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/auth"
	"github.com/activeloopai/azcreds/internal/dev/localazure"
	"github.com/activeloopai/azcreds/internal/dev/localazure/localazuretest"
)

const (
	sdkHomeTenant = "11111111-1111-1111-1111-111111111111"
	sdkCustTenant = "22222222-2222-2222-2222-222222222222"
	sdkAPIAppID   = "bf01b0aa-723e-4500-96ee-1bc388018396"
)

// startWithAPI serves a stand-in that knows the platform API's app, and the verifier the
// handler builds for the local stack from it: the stand-in is the authority, its keys the
// tenant-independent v2.0 keys under it.
func startWithAPI(t *testing.T) (*localazuretest.StandIn, *auth.EntraVerifier) {
	t.Helper()
	si := localazuretest.Start(t, localazure.Config{
		HomeTenantID:    sdkHomeTenant,
		ManagedIdentity: localazure.ManagedIdentity{ObjectID: uuid.NewString()},
		Tenants:         []string{sdkCustTenant},
		APIAppID:        sdkAPIAppID,
	}, nil)
	v, err := auth.NewEntraVerifier(auth.EntraConfig{
		Audience:        sdkAPIAppID,
		IssuerAuthority: si.HTTPS.URL + "/",
		KeysURL:         si.HTTPS.URL + "/common/discovery/v2.0/keys",
		HTTPClient:      si.HTTPS.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return si, v
}

// TestWorkloadSignsInWithManagedIdentityCredential: a customer's workload gets its token
// for the platform API with azidentity's own ManagedIdentityCredential, as the SDK does in
// Azure, and the handler's verifier accepts it. Before the customer installs the API in
// their tenant, the credential reports Entra's AADSTS500011.
func TestWorkloadSignsInWithManagedIdentityCredential(t *testing.T) {
	si, v := startWithAPI(t)
	// A fresh client id: MSAL keeps one managed identity token cache per process.
	mi, _, err := si.Server.CreateManagedIdentity(sdkCustTenant, localazure.UserAssignedIdentity{Name: "lake-job"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("IDENTITY_ENDPOINT", si.HTTPS.URL+localazure.WorkloadIdentityPath(sdkCustTenant))
	t.Setenv("IDENTITY_HEADER", localazure.DefaultIdentityHeader)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID:            azidentity.ClientID(mi.ClientID),
		ClientOptions: azcore.ClientOptions{Transport: si.HTTPS.Client()},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	scope := policy.TokenRequestOptions{Scopes: []string{sdkAPIAppID + "/.default"}}

	_, getErr := cred.GetToken(ctx, scope)
	var failed *azidentity.AuthenticationFailedError
	if !errors.As(getErr, &failed) || failed.RawResponse == nil {
		t.Fatalf("GetToken before the API is installed: %v, want an AuthenticationFailedError with the response", getErr)
	}
	// azidentity has read the body into its message, which is all the workload sees.
	msg := getErr.Error()
	if failed.RawResponse.StatusCode != http.StatusBadRequest || !strings.Contains(msg, `"error": "invalid_resource"`) ||
		!strings.Contains(msg, `"AADSTS500011: The resource principal named `+sdkAPIAppID+` was not found in the tenant named`) {
		t.Fatalf("GetToken before the API is installed: %v", getErr)
	}

	if _, _, err := si.Server.InstallServicePrincipal(sdkCustTenant, sdkAPIAppID); err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, scope)
	if err != nil {
		t.Fatalf("GetToken after az ad sp create: %v", err)
	}
	w, err := v.Verify(ctx, tok.Token)
	if err != nil {
		t.Fatalf("the handler's verifier refuses the workload's token: %v", err)
	}
	if w != (auth.Workload{TenantID: sdkCustTenant, ClientID: mi.ClientID, ObjectID: mi.PrincipalID}) {
		t.Errorf("workload %+v, identity %+v", w, mi)
	}
}

// TestMintedTokensAgainstTheVerifier: each deviation the control endpoint offers is
// refused by the handler's verifier for the reason it stands for, and the plain token
// passes, so end-to-end tests can rely on them.
func TestMintedTokensAgainstTheVerifier(t *testing.T) {
	si, v := startWithAPI(t)
	mi, _, err := si.Server.CreateManagedIdentity(sdkCustTenant, localazure.UserAssignedIdentity{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := si.Server.InstallServicePrincipal(sdkCustTenant, sdkAPIAppID); err != nil {
		t.Fatal(err)
	}
	mint := func(body string) string {
		t.Helper()
		resp, err := si.HTTPS.Client().Post(si.HTTPS.URL+"/control/tenants/"+sdkCustTenant+"/managedIdentities/"+mi.ClientID+"/token",
			"application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("mint %s: %d %v", body, resp.StatusCode, err)
		}
		return out.AccessToken
	}
	ctx := context.Background()
	if w, err := v.Verify(ctx, mint(`{}`)); err != nil || w.ClientID != mi.ClientID || w.TenantID != sdkCustTenant {
		t.Fatalf("plain token: %+v, %v", w, err)
	}
	for _, tt := range []struct{ body, cause string }{
		{`{"version":"1.0"}`, "v1.0 token"},
		{`{"expired":true}`, "token expired"},
		{`{"audience":"https://storage.azure.com"}`, "wrong audience"},
		{`{"audience":"00000000-0000-0000-0000-000000000001"}`, "wrong audience"},
		{`{"unknown_key":true}`, "no key for the token's kid"},
	} {
		_, err := v.Verify(ctx, mint(tt.body))
		if !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(auth.Cause(err), tt.cause) {
			t.Errorf("%s: %v, want a refusal naming %q", tt.body, err, tt.cause)
		}
	}
	// Another tenant's token for the same client id verifies (Entra vouches for it); it is
	// the registry that tells the two apart, by tenant and client id.
	w, err := v.Verify(ctx, mint(`{"tenant_id":"33333333-3333-3333-3333-333333333333"}`))
	if err != nil || w.Key() != (auth.WorkloadKey{TenantID: "33333333-3333-3333-3333-333333333333", ClientID: mi.ClientID}) {
		t.Errorf("another tenant's token: %+v, %v", w, err)
	}
}
