package localazure

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// ContainerCreator creates a blob container in a customer's storage account, which the
// control endpoint uses to play `az storage container create`. It reports created false
// when the container already exists.
type ContainerCreator interface {
	CreateContainer(ctx context.Context, account, container string) (created bool, err error)
}

// ParseAccounts parses Azurite's AZURITE_ACCOUNTS format, "name:key[:key2];name2:key",
// into each account's first key, base64-decoded.
func ParseAccounts(s string) (map[string][]byte, error) {
	keys := map[string][]byte{}
	for _, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ":")
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("account entry %q: want name:key", parts[0])
		}
		key, err := base64.StdEncoding.DecodeString(parts[1])
		if err != nil {
			return nil, fmt.Errorf("account %s: key is not base64: %w", parts[0], err)
		}
		keys[parts[0]] = key
	}
	return keys, nil
}

// SharedKeyBlob creates containers on a blob endpoint (Azurite) with SharedKey-signed REST
// calls, path-style: {Endpoint}/{account}/{container}. It needs no Azure SDK: signing is
// an HMAC-SHA256 over the canonical request, per
// https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key.
type SharedKeyBlob struct {
	// Endpoint is the blob service base URL without an account, e.g. https://127.0.0.1:10000.
	Endpoint string
	// Keys holds each account's decoded key (see ParseAccounts).
	Keys map[string][]byte
	// Client sends the requests; http.DefaultClient when nil.
	Client *http.Client
	// Now is the clock for x-ms-date; time.Now when nil.
	Now func() time.Time
}

var _ ContainerCreator = (*SharedKeyBlob)(nil)

const blobAPIVersion = "2023-11-03"

// CreateContainer creates container in account. An existing container is not an error.
func (b *SharedKeyBlob) CreateContainer(ctx context.Context, account, container string) (bool, error) {
	key, ok := b.Keys[account]
	if !ok {
		return false, notFound("AccountNotConfigured", "no key for storage account %q (see -accounts)", account)
	}
	u := strings.TrimSuffix(b.Endpoint, "/") + "/" + url.PathEscape(account) + "/" + url.PathEscape(container) + "?restype=container"
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, http.NoBody)
	if err != nil {
		return false, fmt.Errorf("create container %s/%s: %w", account, container, err)
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	req.Header.Set("x-ms-date", now().UTC().Format(http.TimeFormat))
	req.Header.Set("x-ms-version", blobAPIVersion)
	req.ContentLength = 0
	req.Header.Set("Authorization", "SharedKey "+account+":"+sharedKeySignature(req, account, key))

	client := b.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("create container %s/%s: %w", account, container, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusCreated:
		return true, nil
	case resp.StatusCode == http.StatusConflict && storageErrorCode(resp, body) == "ContainerAlreadyExists":
		return false, nil
	}
	return false, &Error{Status: http.StatusBadGateway, Code: storageErrorCode(resp, body),
		Message: fmt.Sprintf("blob endpoint answered %d to creating container %s/%s", resp.StatusCode, account, container)}
}

// storageErrorCode is the storage error code of a failed response: the x-ms-error-code
// header, or the <Code> of the XML body.
func storageErrorCode(resp *http.Response, body []byte) string {
	if c := resp.Header.Get("x-ms-error-code"); c != "" {
		return c
	}
	var e struct {
		Code string `xml:"Code"`
	}
	if xml.Unmarshal(body, &e) == nil && e.Code != "" {
		return e.Code
	}
	return http.StatusText(resp.StatusCode)
}

// sharedKeySignature signs req for the Blob service's SharedKey scheme.
func sharedKeySignature(req *http.Request, account string, key []byte) string {
	h := req.Header
	length := ""
	if req.ContentLength > 0 {
		length = fmt.Sprint(req.ContentLength)
	}
	var sb strings.Builder
	for _, v := range []string{
		req.Method,
		h.Get("Content-Encoding"), h.Get("Content-Language"), length, h.Get("Content-MD5"),
		h.Get("Content-Type"), h.Get("Date"), h.Get("If-Modified-Since"), h.Get("If-Match"),
		h.Get("If-None-Match"), h.Get("If-Unmodified-Since"), h.Get("Range"),
	} {
		sb.WriteString(v)
		sb.WriteByte('\n')
	}
	// Canonicalized headers: x-ms-*, lower-cased, sorted.
	var names []string
	for name := range h {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-ms-") {
			names = append(names, lower)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		sb.WriteString(name + ":" + strings.TrimSpace(h.Get(name)) + "\n")
	}
	// Canonicalized resource: /account/path, then the query parameters sorted.
	sb.WriteString("/" + account + req.URL.EscapedPath())
	q := req.URL.Query()
	params := make([]string, 0, len(q))
	for p := range q {
		params = append(params, p)
	}
	sort.Strings(params)
	for _, p := range params {
		vals := q[p]
		sort.Strings(vals)
		sb.WriteString("\n" + strings.ToLower(p) + ":" + strings.Join(vals, ","))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(sb.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
