package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// InstallAPI installs the platform API's service principal in tenantID through the
// stand-in's control endpoint, as the customer's `az ad sp create --id <APIAppID>` does:
// until then the tenant's managed identities get no token for the API (AADSTS500011).
// Doing it again changes nothing.
func InstallAPI(ctx context.Context, client *http.Client, controlURL, tenantID string) error {
	body, err := json.Marshal(map[string]string{"appId": APIAppID})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, controlURL+"/tenants/"+url.PathEscape(tenantID)+"/servicePrincipals",
		bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("install the platform API in %s: %w", tenantID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("install the platform API in %s: %s %s", tenantID, resp.Status, msg)
	}
	return nil
}

// WorkloadDemo is the demo workload identity's way end to end on a running stack, as the
// three shell commands `make run` prints: register the identity with the organization
// (with a platform user's token in $TOKEN), get a token as the workload from its identity
// endpoint (into $WI_TOKEN), and call /creds with it. The customer's one step in their
// tenant, installing the platform API (InstallAPI), must be done first.
type WorkloadDemo struct {
	HandlerURL string // http://127.0.0.1:7071
	StandInURL string // https://127.0.0.1:7443
	CertFile   string // the stand-in's certificate, as curl --cacert finds it
	Org        string
}

// Commands are the three commands, for bash (curl and sed only).
func (w WorkloadDemo) Commands() []string {
	register := fmt.Sprintf(`{"display_name":%q,"client_id":%q,"tenant_id":%q}`, WorkloadIdentityName, WorkloadIdentityClientID, CustomerTenant1)
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {APIAppID}, "client_id": {WorkloadIdentityClientID}}
	return []string{
		strings.Join([]string{
			`curl -s -H "Authorization: Bearer $TOKEN" -H "X-Activeloop-Org-Id: ` + w.Org + `" -H "Content-Type: application/json"`,
			`  -d '` + register + `'`,
			`  ` + w.HandlerURL + `/organizations/` + w.Org + `/workload-identities`,
		}, " \\\n"),
		strings.Join([]string{
			`export WI_TOKEN=$(curl -s --cacert ` + w.CertFile + ` -H "X-IDENTITY-HEADER: ` + IdentityHeader + `"`,
			`  "` + w.StandInURL + workloadIdentityPath(CustomerTenant1) + "?" + q.Encode() + `"`,
			`  | sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')`,
		}, " \\\n"),
		strings.Join([]string{
			`curl -s -X POST -H "Authorization: Bearer $WI_TOKEN" -H "X-Activeloop-Org-Id: ` + w.Org + `"`,
			`  ` + w.HandlerURL + `/api/org/lake-ws/ds/events/creds`,
		}, " \\\n"),
	}
}

// workloadIdentityPath is the stand-in's identity endpoint for workloads of tenantID,
// localazure.WorkloadIdentityPath (which this package cannot import: the stand-in's tests
// import it); TestWorkloadIdentityPath holds the two equal.
func workloadIdentityPath(tenantID string) string { return "/msi/tenants/" + tenantID + "/token" }
