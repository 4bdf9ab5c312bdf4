package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/activeloopai/azcreds/internal/dev/testenv"
	"github.com/activeloopai/azcreds/internal/dev/walkthrough"
	"github.com/activeloopai/azcreds/internal/queue"
)

// Patterns of secret material in general, besides the exact values a run knows.
var (
	// jwtPattern is any JWT segment that starts with a JSON object: API tokens, the
	// stand-in's access tokens and the managed identity's client assertions alike.
	jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}`)
	// sasSigPattern is a SAS signature parameter, plain or URL-encoded.
	sasSigPattern = regexp.MustCompile(`(?i)(^|[?&\s"'])sig(=|%3D)`)
	// keyPattern is base64 of a 32-byte key (a user delegation key value), standing alone.
	keyPattern = regexp.MustCompile(`(^|[^A-Za-z0-9+/])[A-Za-z0-9+/]{43}=($|[^A-Za-z0-9+/=])`)
	// sharedKeyPattern is an account key in a connection string or a SharedKey header.
	sharedKeyPattern = regexp.MustCompile(`AccountKey=|SharedKey [a-z0-9]+:`)
)

// TestNoSecretsAtRest runs one whole onboarding through the real binaries (create,
// service principal, tenant, storage, verified, a SAS from the credential and one from
// the environment default, a refused forged token, delete and the app's clean-up), then
// reads the handler's and the stand-in's logs, every row of the handler's table and the
// messages left in its queues, and looks for every secret the run handled: the API tokens
// used, any JWT at all, the SAS tokens and any SAS signature, the Azurite account keys,
// the user delegation key values behind each SAS, and any 32-byte base64 key.
func TestNoSecretsAtRest(t *testing.T) {
	env := testenv.Azurite(t)
	si := startStandIn(t, env, time.Second)
	h := startHandler(t, env, si, defaultSettings())
	ctx := context.Background()

	o := newOnboarding(t, h, si, "custacct1", true)
	o.toSPVerified()
	o.grant(walkthrough.RoleContributor, o.accountScope())
	time.Sleep(1500 * time.Millisecond) // the role's propagation, so the probe passes at once
	o.submitStorage()
	if c := o.wait(30*time.Second, walkthrough.InState("verified", "sp_verified")); c.State != "verified" {
		t.Fatalf("%s/%s: %s", c.State, c.Status(), c.LastError)
	}
	if err := o.api.RegisterWorkspace(ctx, "ws1", ""); err != nil {
		t.Fatal(err)
	}
	fromCred, err := o.api.Creds(ctx, "ws1", "events")
	if err != nil {
		t.Fatal(err)
	}
	useSAS(t, sasContainer(t, si, fromCred.ContainerURL, fromCred.SASToken), fromCred.PathPrefix)
	fromEnv, err := o.api.Creds(ctx, "ws-unlinked", "t") // no link, no org default: the platform's
	if err != nil {
		t.Fatal(err)
	}
	if fromCred.Source != "workspace" || fromEnv.Source != "environment_default" {
		t.Fatalf("sources %s and %s", fromCred.Source, fromEnv.Source)
	}

	// A forged token (trusted issuer and audience, another key) is refused and logged as
	// a refusal: the log line must not carry it.
	forgerMinter, _ := keyPair(t)
	forged, err := forgerMinter.Mint("e2e", []string{o.api.Org}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forgedAPI := *o.api
	forgedAPI.Token = forged
	if _, err := forgedAPI.Get(ctx, o.cred.ID); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("forged token: %v", err)
	}

	issued := standInToken(t, si)

	// Every exact secret of the run: the tokens, both SAS, their signatures and the user
	// delegation keys that signed them.
	exact := map[string][]string{
		"API token":        tokenParts(o.api.Token),
		"forged API token": tokenParts(forged),
	}
	for _, c := range []walkthrough.Creds{fromCred, fromEnv} {
		q, err := url.ParseQuery(c.SASToken)
		if err != nil {
			t.Fatal(err)
		}
		exact["SAS token"] = append(exact["SAS token"], c.SASToken)
		exact["SAS signature"] = append(exact["SAS signature"], q.Get("sig"), url.QueryEscape(q.Get("sig")))
		exact["user delegation key"] = append(exact["user delegation key"], delegationKeyOf(t, env, q))
	}
	for name, key := range env.Accounts {
		exact["account key of "+name] = []string{key, url.QueryEscape(key)}
	}

	// The general patterns must match what they are meant to catch, or the scan proves
	// nothing: a token the stand-in issues, the API token, a SAS, a delegation key.
	for what, v := range map[string]string{"a stand-in access token": issued, "the API token": o.api.Token} {
		if !jwtPattern.MatchString(v) {
			t.Errorf("the JWT pattern misses %s", what)
		}
	}
	if !sasSigPattern.MatchString("?" + fromCred.SASToken) {
		t.Error("the SAS pattern misses a SAS")
	}
	for _, k := range exact["user delegation key"] {
		if !keyPattern.MatchString(" " + k + " ") {
			t.Errorf("the key pattern misses a delegation key of %d characters", len(k))
		}
	}

	table := handlerTable(t, h)
	scanAtRest(t, env, h, si, table, "verified, SAS issued", exact) // the row holds every field now

	if err := o.api.Delete(ctx, o.cred.ID); err != nil {
		t.Fatal(err)
	}
	waitAppGone(t, si, o.cred.Azure.AppID, 30*time.Second)
	h.proc.stop() // every line written
	si.proc.stop()
	scanAtRest(t, env, h, si, table, "after delete", exact)
}

// scanAtRest reads the handler's and the stand-in's logs, every row of the handler's
// table and the messages in its queues, and fails for any match of the general patterns
// and any of the exact values.
func scanAtRest(t *testing.T, env testenv.Env, h *handler, si *standIn, table, when string, exact map[string][]string) {
	t.Helper()
	sources := map[string]string{}
	for _, p := range []*process{h.proc, si.proc} {
		b, err := os.ReadFile(p.log)
		if err != nil {
			t.Fatal(err)
		}
		sources[p.name+" log ("+when+")"] = string(b)
	}
	sources["table "+table+" ("+when+")"] = tableText(t, env, table)
	sources["queues ("+when+")"] = queueText(t, env, h.queuePrefix)
	if !strings.Contains(sources["handler log ("+when+")"], `"msg"`) {
		t.Fatalf("the handler log holds no log lines: the scan would prove nothing")
	}
	patterns := map[string]*regexp.Regexp{
		"a JWT": jwtPattern, "a SAS signature": sasSigPattern, "a 32-byte base64 key": keyPattern, "an account key": sharedKeyPattern,
	}
	for source, text := range sources {
		for what, re := range patterns {
			if m := re.FindString(text); m != "" {
				t.Errorf("%s contains %s: %q", source, what, excerpt(text, m))
			}
		}
		for what, values := range exact {
			for _, v := range values {
				if len(v) >= 8 && strings.Contains(text, v) {
					t.Errorf("%s contains the %s", source, what)
				}
			}
		}
	}
}

// excerpt is a few characters around the match, cut short so a failure does not print a
// whole secret either.
func excerpt(text, match string) string {
	i := strings.Index(text, match)
	from, to := max(i-60, 0), min(i+12, len(text))
	return text[from:to] + "..."
}

func tokenParts(tok string) []string { return append(strings.Split(tok, "."), tok) }

// handlerTable is the name of the table the handler stores its rows in.
func handlerTable(t *testing.T, h *handler) string {
	t.Helper()
	for _, kv := range h.env(h.instances[0].addr) {
		if v, ok := strings.CutPrefix(kv, "AZCREDS_TABLE_NAME="); ok {
			return v
		}
	}
	t.Fatal("the handler has no AZCREDS_TABLE_NAME")
	return ""
}

// tableText is every entity of the table as JSON, one a line.
func tableText(t *testing.T, env testenv.Env, table string) string {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rows := 0
	pager := svc.NewClient(table).NewListEntitiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", table, err)
		}
		for _, e := range page.Entities {
			b.Write(e)
			b.WriteByte('\n')
			rows++
		}
	}
	if rows == 0 {
		t.Fatalf("table %s is empty: the scan would prove nothing", table)
	}
	return b.String()
}

// queueText is the messages waiting in the handler's queues (their names after prefix) and
// their poison queues, base64-decoded.
func queueText(t *testing.T, env testenv.Env, prefix string) string {
	t.Helper()
	svc, err := azqueue.NewServiceClientFromConnectionString(env.ConnString, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	n := int32(32)
	for _, jq := range queue.JobQueues {
		for _, q := range []string{prefix + jq.Queue, prefix + jq.Queue + queue.PoisonSuffix} {
			resp, err := svc.NewQueueClient(q).PeekMessages(context.Background(), &azqueue.PeekMessagesOptions{NumberOfMessages: &n})
			if err != nil {
				continue // a queue that was never created holds nothing
			}
			for _, m := range resp.Messages {
				if m.MessageText == nil {
					continue
				}
				// Jobs are base64 JSON as the Functions trigger expects, which any JSON
				// pattern would match: scan what they say.
				if raw, err := base64.StdEncoding.DecodeString(*m.MessageText); err == nil {
					b.Write(raw)
				} else {
					b.WriteString(*m.MessageText)
				}
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// delegationKeyOf returns the value of the user delegation key that signed the SAS q.
// Azurite derives a key's value from the principal, tenant, start and expiry alone, so
// asking it for the key with the SAS's skoid, sktid, skt and ske yields the very value the
// handler was given. Azurite does not check a bearer token's signature, so a hand-made
// token for that principal is enough to ask.
func delegationKeyOf(t *testing.T, env testenv.Env, q url.Values) string {
	t.Helper()
	oid, tid, start, expiry := q.Get("skoid"), q.Get("sktid"), q.Get("skt"), q.Get("ske")
	if oid == "" || tid == "" || start == "" || expiry == "" {
		t.Fatalf("the SAS is not a user delegation SAS: skoid=%q sktid=%q skt=%q ske=%q", oid, tid, start, expiry)
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now()
	token := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(map[string]any{
		"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/" + tid + "/", "oid": oid, "tid": tid,
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}) + ".c2lnbmF0dXJl"
	body := fmt.Sprintf("<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>%s</Start><Expiry>%s</Expiry></KeyInfo>", start, expiry)
	req, err := http.NewRequest(http.MethodPost, env.BlobEndpoint+"/"+testenv.DevAccount+"/?restype=service&comp=userdelegationkey",
		bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-ms-version", "2025-01-05")
	req.Header.Set("Content-Type", "application/xml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get user delegation key: %d %s", resp.StatusCode, data)
	}
	var key struct {
		Value string `xml:"Value"`
	}
	if err := xml.Unmarshal(data, &key); err != nil || key.Value == "" {
		t.Fatalf("user delegation key %s: %v", data, err)
	}
	return key.Value
}

// standInToken is an access token the stand-in issues, as the handler's managed identity
// gets them, to prove the JWT pattern matches the stand-in's tokens.
func standInToken(t *testing.T, si *standIn) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, si.url+"/msi/token?api-version=2019-08-01&resource="+
		url.QueryEscape("https://storage.azure.com")+"&client_id="+miClientID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-IDENTITY-HEADER", "local")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("stand-in token: %v (was the stand-in stopped?)", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("stand-in token: %d %v", resp.StatusCode, err)
	}
	return out.AccessToken
}

// waitAppGone waits until the stand-in no longer lists the app registration.
func waitAppGone(t *testing.T, si *standIn, appID string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(si.url + "/control/applications")
		if err != nil {
			t.Fatal(err)
		}
		var apps []struct {
			AppID string `json:"appId"`
		}
		err = json.NewDecoder(resp.Body).Decode(&apps)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, a := range apps {
			found = found || a.AppID == appID
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("app %s still registered %s after the delete", appID, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
