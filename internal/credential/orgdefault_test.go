package credential_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/activeloopai/azcreds/internal/credential"
	"github.com/activeloopai/azcreds/internal/credential/credentialtest"
)

// TestClearOrgDefault: clearing leaves no default (twice is fine); an unlocked workspace
// falls back to the environment default, a workspace pinned to the default keeps its
// credential, and the instance's cached resolutions of the organization are dropped.
func TestClearOrgDefault(t *testing.T) {
	f := newFixture(t, credential.Config{ResolutionCacheTTL: time.Minute,
		EnvironmentDefault: credential.EnvironmentDefault{Account: "platformacct"}}, nil)
	ctx := context.Background()
	if err := f.Domain.Onboarding.ClearOrgDefault(ctx, "org"); err != nil {
		t.Fatalf("clear without a default: %v", err)
	}
	c := f.Verified()
	if _, err := f.Domain.Onboarding.SetOrgDefault(ctx, "org", c.ID); err != nil {
		t.Fatal(err)
	}
	// A workspace the first /creds records has no link: its first table pins it to the default.
	if is, err := f.Domain.Issuance.IssueSAS(ctx, "org", "pinned", "t1", "r"); err != nil || is.Source != credential.SourceOrgDefault {
		t.Fatalf("first table: %+v, %v", is, err)
	}
	if _, err := f.Domain.Issuance.IssueSAS(ctx, "org", "pinned", "t1", "r"); err != nil { // cached now
		t.Fatal(err)
	}
	if err := f.Domain.Onboarding.ClearOrgDefault(ctx, "org"); err != nil {
		t.Fatal(err)
	}
	if err := f.Domain.Onboarding.ClearOrgDefault(ctx, "org"); err != nil {
		t.Fatalf("clearing again: %v", err)
	}
	if got, err := f.Domain.Onboarding.Get(ctx, "org", c.ID); err != nil || got.IsOrgDefault {
		t.Fatalf("the credential is still the default (%v)", err)
	}
	pinned, err := f.Domain.Issuance.IssueSAS(ctx, "org", "pinned", "t2", "r")
	if err != nil || pinned.Credential == nil || pinned.Credential.ID != c.ID {
		t.Fatalf("pinned workspace after the clear: %+v, %v; want its pinned credential", pinned, err)
	}
	free, err := f.Domain.Issuance.IssueSAS(ctx, "org", "free", "t", "r")
	if err != nil || free.Source != credential.SourceEnvironmentDefault {
		t.Fatalf("unlocked workspace after the clear: %+v, %v; want the environment default", free, err)
	}
}

// TestClearOrgDefaultRace: a default set again between the read and the delete is read
// again and cleared; a store that keeps failing is an error, never a silent success.
func TestClearOrgDefaultRace(t *testing.T) {
	f := newFixture(t, credential.Config{}, nil)
	ctx := context.Background()
	a, b := f.Verified(), f.Verified()
	if _, err := f.Domain.Onboarding.SetOrgDefault(ctx, "org", a.ID); err != nil {
		t.Fatal(err)
	}
	once := false
	f.fake.Store.After("OrgDefault", func() {
		if !once {
			once = true
			f.fake.Store.PutOrgDefault("org", b.ID) // another request sets b after the read
		}
	})
	if err := f.Domain.Onboarding.ClearOrgDefault(ctx, "org"); err != nil {
		t.Fatal(err)
	}
	if def, _ := f.fake.Store.OrgDefault(ctx, "org"); def != "" {
		t.Fatalf("default %q left after the clear", def)
	}
	f.fake.Store.PutOrgDefault("org", a.ID)
	f.fake.Store.Inject("ClearOrgDefault", credentialtest.Fault{Times: -1, Err: credential.ErrUnavailable})
	if err := f.Domain.Onboarding.ClearOrgDefault(ctx, "org"); !errors.Is(err, credential.ErrUnavailable) {
		t.Fatalf("clear with the store down: %v", err)
	}
}

// TestCreateRegistersTheRedirectURIAndTheCloudsTrust: the app registration lists the
// admin consent redirect URI, and its federated credential the cloud's issuer and
// token-exchange audience.
func TestCreateRegistersTheRedirectURIAndTheCloudsTrust(t *testing.T) {
	cloud := credential.Cloud{LoginEndpoint: "https://login.microsoftonline.us/", TokenIssuerAuthority: "https://login.microsoftonline.us/",
		TokenExchangeAudience: "api://AzureADTokenExchangeUSGov", Portal: "https://portal.azure.us"}
	const redirect = "https://azcreds.example.us/wizard/"
	f := newFixture(t, credential.Config{Cloud: cloud, AdminConsentRedirectURI: redirect}, nil)
	c := f.Create("gov")
	spec, ok := f.fake.Directory.Spec(c.App.ObjectID)
	want := credential.AppSpec{DisplayName: "deeplake-gov", UniqueName: credential.UniqueAppName(c.ID), RedirectURIs: []string{redirect}}
	if diff := cmp.Diff(want, spec); !ok || diff != "" {
		t.Errorf("app spec (-want +got):\n%s", diff)
	}
	fics := f.fake.Directory.FederatedCredentials()[c.App.ObjectID]
	if len(fics) != 1 || fics[0].Issuer != "https://login.microsoftonline.us/"+"home/v2.0" ||
		!cmp.Equal(fics[0].Audiences, []string{"api://AzureADTokenExchangeUSGov"}) {
		t.Errorf("federated credentials %+v", fics)
	}
	if c.Links.AdminConsentURL == "" || c.Links.PortalURL != "" {
		t.Errorf("links of a new credential: %+v", c.Links)
	}
}
