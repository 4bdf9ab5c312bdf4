package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
	"github.com/activeloopai/azcreds/internal/localdial"
)

// sasContainer is a container client that holds nothing but a SAS: no key, no token.
func sasContainer(t *testing.T, si *standIn, containerURL, sas string) *container.Client {
	t.Helper()
	d, err := localdial.New(si.frontAddr, []string{testenv.DevAccount, "custacct1", "custacct2"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := container.NewClientWithNoCredential(containerURL+"?"+sas, &container.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: d.Client(nil), Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// useSAS writes, lists, reads and deletes a blob under prefix with the SAS alone.
func useSAS(t *testing.T, c *container.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	name := prefix + "part-0.bin"
	data := []byte("table bytes")
	if _, err := c.NewBlockBlobClient(name).UploadBuffer(ctx, data, nil); err != nil {
		t.Fatalf("upload with the SAS: %v", err)
	}
	pager := c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	page, err := pager.NextPage(ctx)
	if err != nil || len(page.Segment.BlobItems) != 1 || *page.Segment.BlobItems[0].Name != name {
		t.Fatalf("list with the SAS: %v %+v", err, page.Segment)
	}
	resp, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		t.Fatalf("read with the SAS: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read %q", got)
	}
	if _, err := c.NewBlobClient(name).Delete(ctx, nil); err != nil {
		t.Fatalf("delete with the SAS: %v", err)
	}
}

func checkSASShape(t *testing.T, c walkthrough.Creds) {
	t.Helper()
	q, err := url.ParseQuery(c.SASToken)
	if err != nil {
		t.Fatal(err)
	}
	expiry, err := time.Parse(time.RFC3339, q.Get("se"))
	if err != nil {
		t.Fatalf("se %q: %v", q.Get("se"), err)
	}
	if d := time.Until(expiry); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("the SAS expires in %s, want one hour", d)
	}
	if !c.ExpiresAt.Equal(expiry) {
		t.Errorf("expires_at %s, the SAS says %s", c.ExpiresAt, expiry)
	}
	// It starts five minutes back for clock skew (docs/CONTRACT.md), from the same instant.
	start, err := time.Parse(time.RFC3339, q.Get("st"))
	if err != nil {
		t.Fatalf("st %q: %v", q.Get("st"), err)
	}
	if d := expiry.Sub(start); d != time.Hour+5*time.Minute {
		t.Errorf("the SAS runs from %s to %s (%s), want five minutes back and one hour ahead", start, expiry, d)
	}
	if q.Get("sp") != "racwdl" || q.Get("spr") != "https" || q.Get("sr") != "c" || q.Get("skoid") == "" {
		t.Errorf("SAS fields sp=%s spr=%s sr=%s skoid=%s: want a user delegation container SAS racwdl over https",
			q.Get("sp"), q.Get("spr"), q.Get("sr"), q.Get("skoid"))
	}
}

func wantRefused(t *testing.T, err error, what string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("%s: want 403, got %v", what, err)
	}
	if !bloberror.HasCode(err, bloberror.AuthorizationFailure, bloberror.AuthorizationPermissionMismatch, bloberror.AuthenticationFailed) {
		t.Fatalf("%s: code %s", what, re.ErrorCode)
	}
}

// sasScenarios are the /creds paths of TestWizard.
func sasScenarios(t *testing.T, h *handler, si *standIn) {
	t.Run("SAS from a verified credential", func(t *testing.T) {
		t.Parallel()
		o := newOnboarding(t, h, si, "custacct1", true)
		o.toSPVerified()
		o.grant(walkthrough.RoleContributor, o.accountScope())
		time.Sleep(2500 * time.Millisecond) // the role's propagation, so the probe passes at once
		o.submitStorage()
		if c := o.wait(20*time.Second, walkthrough.InState("verified", "sp_verified")); c.State != "verified" {
			t.Fatalf("%s/%s: %s", c.State, c.Status(), c.LastError)
		}
		ctx := context.Background()
		if err := o.api.RegisterWorkspace(ctx, "ws1", ""); err != nil { // the one verified credential: linked
			t.Fatal(err)
		}
		creds, err := o.api.Creds(ctx, "ws1", "events")
		if err != nil {
			t.Fatal(err)
		}
		if creds.Source != "workspace" || creds.CredentialID == nil || *creds.CredentialID != o.cred.ID ||
			creds.Container != o.container || creds.PathPrefix != "tables/"+o.api.Org+"/ws1/events/" {
			t.Fatalf("creds %+v", creds)
		}
		checkSASShape(t, creds)
		c := sasContainer(t, si, creds.ContainerURL, creds.SASToken)
		useSAS(t, c, creds.PathPrefix)

		// Another container of the same account, and another account: refused.
		other := testenv.UniqueName(t, "other")
		if err := si.customer.CreateContainer(ctx, "custacct1", other); err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(creds.ContainerURL, "/"+creds.Container)
		_, err = sasContainer(t, si, base+"/"+other, creds.SASToken).NewBlockBlobClient("x").UploadBuffer(ctx, []byte("x"), nil)
		wantRefused(t, err, "another container")
		otherAccount := strings.Replace(base, "custacct1", "custacct2", 1)
		_, err = sasContainer(t, si, otherAccount+"/"+creds.Container, creds.SASToken).NewBlockBlobClient("x").UploadBuffer(ctx, []byte("x"), nil)
		if err == nil {
			t.Fatal("the SAS worked on another account")
		}
	})

	t.Run("SAS from the environment default", func(t *testing.T) {
		t.Parallel()
		api := h.api(t)                     // an organization with no credential at all
		time.Sleep(2500 * time.Millisecond) // the managed identity's role on platform storage propagates
		creds, err := api.Creds(context.Background(), "ws", "t")
		if err != nil {
			t.Fatal(err)
		}
		if creds.Source != "environment_default" || creds.CredentialID != nil || creds.Container != orgContainer(api.Org) ||
			!strings.Contains(creds.AccountURL, testenv.DevAccount) {
			t.Fatalf("creds %+v", creds)
		}
		checkSASShape(t, creds)
		useSAS(t, sasContainer(t, si, creds.ContainerURL, creds.SASToken), creds.PathPrefix)
	})
}
