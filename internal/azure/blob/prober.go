// Package blob reaches a customer's Azure Blob Storage as a credential's service principal
// (azblob): the access probe that tells whether the customer's role grant works, and the
// Signer that issues one-hour user delegation SAS tokens from cached delegation keys
// (sas.go), for customer accounts and for the platform's own (the environment default).
//
// Every call signs in through a CredentialSource (the identity chain: managed identity ->
// federated assertion -> the customer's tenant) and reaches the account at
// EndpointTemplate's URL, https://<account>.blob.core.windows.net/ in Azure. Storage errors
// are reported by their HTTP status, storage error code and request id, taken from
// *azcore.ResponseError; a name that does not resolve (*net.DNSError) means the account
// does not exist; a storage token Entra refused is reported by its AADSTS code, status and
// trace id (identity.ProviderError). The domain (internal/credential) turns the report into
// an outcome.
package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/google/uuid"

	"github.com/activeloopai/azcreds/internal/azure/identity"
	"github.com/activeloopai/azcreds/internal/credential"
)

// DefaultEndpointTemplate is the blob endpoint of an account in Azure's public cloud; %s is
// the account name.
const DefaultEndpointTemplate = "https://%s.blob.core.windows.net/"

// Defaults of Options.
const (
	// DefaultAttemptTimeout bounds one probe attempt, all four checks together. The queue
	// waits between attempts; an attempt itself must be quick.
	DefaultAttemptTimeout = 20 * time.Second
	// probeDir is the directory under the customer's prefix that holds probe blobs.
	probeDir = ".azcreds-probe"
	// udkValidity is how long the probe's user delegation key is valid: it signs nothing.
	udkValidity = 10 * time.Minute
	// udkBackdate starts the key a little in the past, for clock skew.
	udkBackdate = time.Minute
)

// CredentialSource gives the credential of a credential's app in the customer's tenant.
// fresh asks for a token that is not from a cache: after a 403, a cached token could hide
// a role that has arrived since. internal/azure/identity.Chain implements it.
type CredentialSource interface {
	For(tenantID, appID string, fresh bool) (azcore.TokenCredential, error)
}

// Options configure a Prober. The zero value probes Azure's public cloud.
type Options struct {
	// EndpointTemplate is the account's blob endpoint with %s for the account name;
	// DefaultEndpointTemplate when empty. Locally: https://%s.blob.localhost:10443/.
	EndpointTemplate string
	// Transport sends the requests (a local dialer in the local stack, a test server's
	// client in tests); azcore's default when nil.
	Transport policy.Transporter
	// Now is the clock for the user delegation key's validity; time.Now when nil.
	Now func() time.Time
	// AttemptTimeout bounds one probe attempt; DefaultAttemptTimeout when zero.
	AttemptTimeout time.Duration
	// Logger receives one line per failed check with the error's text, which the report
	// cannot carry. Discarded when nil.
	Logger *slog.Logger
}

// Prober runs the access probe with azblob.
type Prober struct {
	creds    CredentialSource
	template string
	client   service.ClientOptions
	now      func() time.Time
	timeout  time.Duration
	log      *slog.Logger
}

var _ credential.Prober = (*Prober)(nil)

// NewProber validates opts and returns a Prober that signs in through creds.
func NewProber(creds CredentialSource, opts Options) (*Prober, error) {
	if creds == nil {
		return nil, errors.New("blob prober: no credential source")
	}
	p := &Prober{creds: creds, template: opts.EndpointTemplate, now: opts.Now, timeout: opts.AttemptTimeout, log: opts.Logger}
	if p.template == "" {
		p.template = DefaultEndpointTemplate
	}
	if err := ValidateEndpointTemplate(p.template); err != nil {
		return nil, err
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.timeout <= 0 {
		p.timeout = DefaultAttemptTimeout
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	// Few and short: an attempt is bounded, and the queue does the waiting.
	p.client = clientOptions(opts.Transport, 8*time.Second)
	return p, nil
}

// clientOptions are the storage client options of the prober and the signer: at most two
// quick retries, only of what a retry can fix (shouldRetry), each try bounded by tryTimeout.
func clientOptions(transport policy.Transporter, tryTimeout time.Duration) service.ClientOptions {
	return service.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: transport,
		Retry: policy.RetryOptions{
			MaxRetries:    2,
			TryTimeout:    tryTimeout,
			RetryDelay:    200 * time.Millisecond,
			MaxRetryDelay: 2 * time.Second,
			ShouldRetry:   shouldRetry,
		},
	}}
}

// ValidateEndpointTemplate checks that template is an https URL with one %s for the
// account name.
func ValidateEndpointTemplate(template string) error {
	if strings.Count(template, "%s") != 1 || strings.Count(template, "%") != 1 {
		return fmt.Errorf("blob endpoint template %q: want exactly one %%s (the account name) and no other %%", template)
	}
	u, err := url.Parse(fmt.Sprintf(template, "account"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("blob endpoint template %q: want an https URL such as %s", template, DefaultEndpointTemplate)
	}
	return nil
}

// shouldRetry retries transient failures only: throttling, server errors and transport
// errors, but not a name that does not resolve (the account does not exist) and never an
// authorization failure (403) or a missing resource (404), which the next attempt, minutes
// later, checks again.
func shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		return !isAccountNotFound(err)
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// isAccountNotFound reports whether err is the resolver saying the account's host does not
// exist, which is how Azure reports a storage account name nobody owns.
func isAccountNotFound(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) && dns.IsNotFound
}

// EndpointURL is the account's blob endpoint.
func (p *Prober) EndpointURL(account string) string { return fmt.Sprintf(p.template, account) }

// probeBlobName is a new probe blob's name under prefix: <prefix>/.azcreds-probe/<uuid>.
func probeBlobName(prefix string) string {
	return listPrefix(prefix) + probeDir + "/" + uuid.NewString()
}

// listPrefix is the prefix to list: the customer's prefix as a directory, or "" for the
// whole container.
func listPrefix(prefix string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return ""
	}
	return prefix + "/"
}

// Probe runs one attempt of the access probe as the credential's service principal:
//
//  1. user_delegation_key: Get User Delegation Key (needs a data role at account scope);
//  2. write: upload a small probe blob under the prefix;
//  3. list_read: list the prefix and, when the write succeeded, download the probe blob
//     (when it failed the list alone decides: a Reader can list);
//  4. delete: delete the probe blob (skipped when nothing was written; already gone, as
//     after a retry of a delete whose answer was lost, passes).
//
// Each check is pass, fail (with the HTTP status, storage error code and request id) or
// skip. A failure that is no storage answer (the account's name does not resolve, no
// token, a timeout) ends the attempt: the remaining checks are skipped, and a name that
// does not resolve sets AccountNotFound. A refused token fails its check with Entra's
// status, code ("AADSTS700016" once the customer removed the service principal) and trace
// id.
func (p *Prober) Probe(ctx context.Context, t credential.ProbeTarget) credential.ProbeReport {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	r := &run{p: p, target: t, log: p.log.With("tenant_id", t.TenantID, "app_id", t.AppID, "account", t.Account, "container", t.Container)}
	cred, err := p.creds.For(t.TenantID, t.AppID, t.FreshToken)
	if err == nil {
		r.svc, err = service.NewClient(p.EndpointURL(t.Account), cred, &p.client)
	}
	if err != nil {
		r.check(credential.CheckUserDelegationKey, fmt.Errorf("storage client: %w", err))
		return r.finish()
	}
	r.probe(ctx)
	return r.finish()
}

// run is one probe attempt.
type run struct {
	p       *Prober
	target  credential.ProbeTarget
	log     *slog.Logger
	svc     *service.Client
	report  credential.ProbeReport
	stopped bool // a failure that is no storage answer: skip the rest
}

func (r *run) probe(ctx context.Context) {
	now := r.p.now().UTC()
	start, expiry := now.Add(-udkBackdate).Format(time.RFC3339), now.Add(udkValidity).Format(time.RFC3339)
	r.run(credential.CheckUserDelegationKey, func() error {
		_, err := r.svc.GetUserDelegationCredential(ctx, service.KeyInfo{Start: &start, Expiry: &expiry}, nil)
		return err
	})

	cc := r.svc.NewContainerClient(r.target.Container)
	name := probeBlobName(r.target.Prefix)
	content := []byte("azcreds access probe " + now.Format(time.RFC3339) + "\n")
	blob := cc.NewBlockBlobClient(name)
	written := r.run(credential.CheckWrite, func() error {
		_, err := blob.Upload(ctx, streaming.NopCloser(bytes.NewReader(content)), nil)
		return err
	})

	r.run(credential.CheckListRead, func() error {
		prefix := listPrefix(r.target.Prefix)
		one := int32(1)
		if _, err := cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, MaxResults: &one}).NextPage(ctx); err != nil {
			return fmt.Errorf("list %q: %w", prefix, err)
		}
		if !written {
			return nil
		}
		resp, err := blob.DownloadStream(ctx, nil)
		if err != nil {
			return fmt.Errorf("download %s: %w", name, err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(content))+1))
		if err != nil {
			return fmt.Errorf("download %s: %w", name, err)
		}
		if !bytes.Equal(got, content) {
			return fmt.Errorf("download %s: %w", name, errContentMismatch)
		}
		return nil
	})

	if !written {
		r.skip(credential.CheckDelete)
		return
	}
	r.run(credential.CheckDelete, func() error {
		_, err := blob.Delete(ctx, nil)
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			// The blob is gone, which is what the check wants: a delete whose answer was
			// lost landed, and the storage client's retry found nothing left to delete.
			return nil
		}
		return err
	})
}

// errContentMismatch: the probe blob read back is not what was written.
var errContentMismatch = errors.New("probe blob content differs from what was written")

// run runs one check unless the attempt has stopped, records it and reports whether it
// passed.
func (r *run) run(name string, call func() error) bool {
	if r.stopped {
		r.skip(name)
		return false
	}
	return r.check(name, call())
}

// check records the outcome err of check name.
func (r *run) check(name string, err error) bool {
	c := credential.CheckResult{Name: name, Result: credential.ResultPass}
	if err == nil {
		r.report.Checks = append(r.report.Checks, c)
		return true
	}
	c.Result = credential.ResultFail
	var re *azcore.ResponseError
	pe, refused := providerError(err)
	switch {
	case errors.As(err, &re):
		c.Status, c.Code = re.StatusCode, re.ErrorCode
		if re.RawResponse != nil {
			c.RequestID = re.RawResponse.Header.Get("x-ms-request-id")
		}
	case isAccountNotFound(err):
		r.report.AccountNotFound = true
		r.stopped = true
	case refused:
		// No credential or no storage token: the provider's code, status and request id
		// (Entra's trace id).
		c.Status, c.Code, c.RequestID = pe.Status, pe.Code, pe.RequestID
		r.stopped = true
	default:
		r.stopped = true
	}
	r.report.Checks = append(r.report.Checks, c)
	r.log.Info("access probe check failed", "check", name, "status", c.Status, "code", c.Code,
		"request_id", c.RequestID, "error", err.Error())
	return false
}

// providerError is what the provider said when the credential could not sign in: the
// credential source's own classification, or Entra's refusal of the storage token, which
// azcore's bearer token policy passes on as azidentity reported it.
func providerError(err error) (*credential.ProviderError, bool) {
	var pe *credential.ProviderError
	if errors.As(err, &pe) {
		return pe, true
	}
	return identity.ProviderError(err)
}

func (r *run) skip(name string) {
	r.report.Checks = append(r.report.Checks, credential.CheckResult{Name: name, Result: credential.ResultSkip})
}

// finish skips the checks that did not run.
func (r *run) finish() credential.ProbeReport {
	done := map[string]bool{}
	for _, c := range r.report.Checks {
		done[c.Name] = true
	}
	for _, name := range []string{credential.CheckUserDelegationKey, credential.CheckWrite, credential.CheckListRead, credential.CheckDelete} {
		if !done[name] {
			r.skip(name)
		}
	}
	return r.report
}
