package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/activeloopai/azcreds/internal/credential"
)

// Table service error codes this package acts on.
// https://learn.microsoft.com/rest/api/storageservices/table-service-error-codes
const (
	codeEntityAlreadyExists         = string(aztables.EntityAlreadyExists)
	codeUpdateConditionNotSatisfied = string(aztables.UpdateConditionNotSatisfied)
	codeResourceNotFound            = string(aztables.ResourceNotFound)
	codeTableAlreadyExists          = string(aztables.TableAlreadyExists)
)

// tableError is a failed Table operation reduced to what decides the outcome.
type tableError struct {
	Status int
	Code   string
}

// classify extracts the status and error code of a Table call. An entity group
// transaction that fails answers 202 with the failing operation's own response inside the
// multipart body; that inner response decides.
func classify(err error) (tableError, bool) {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return tableError{}, false
	}
	te := tableError{Status: re.StatusCode, Code: re.ErrorCode}
	if re.StatusCode == http.StatusAccepted && re.RawResponse != nil && re.RawResponse.Body != nil {
		if body, rerr := io.ReadAll(re.RawResponse.Body); rerr == nil {
			re.RawResponse.Body = io.NopCloser(bytes.NewReader(body))
			if inner, ok := innerBatchError(body); ok {
				te = inner
			}
		}
	}
	return te, true
}

// innerBatchError finds the first failed inner response of a batch body: its status line
// and the odata.error code of its JSON body.
func innerBatchError(body []byte) (tableError, bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var te tableError
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if te.Status == 0 {
			if rest, ok := strings.CutPrefix(line, "HTTP/1.1 "); ok {
				var status int
				if _, err := fmt.Sscanf(rest, "%d", &status); err == nil && status >= 400 {
					te.Status = status
				}
			}
			continue
		}
		if strings.HasPrefix(line, "{") {
			var payload struct {
				ODataError struct {
					Code string `json:"code"`
				} `json:"odata.error"`
			}
			if json.Unmarshal([]byte(line), &payload) == nil {
				te.Code = payload.ODataError.Code
			}
			return te, true
		}
	}
	return te, te.Status != 0
}

// translate maps a Table error to the domain's errors; what matters survives with %w.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	te, ok := classify(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, unavailable(err, te))
	}
	switch {
	case te.Code == codeUpdateConditionNotSatisfied || te.Status == http.StatusPreconditionFailed:
		return fmt.Errorf("%s: %w", what, &credential.ConflictError{
			Message: "the credential was changed by another request; read it again and retry"})
	case te.Code == codeEntityAlreadyExists || te.Status == http.StatusConflict:
		return fmt.Errorf("%s: %w", what, errAlreadyExists)
	case te.Code == codeResourceNotFound || te.Status == http.StatusNotFound:
		return fmt.Errorf("%s: %w", what, credential.ErrNotFound)
	case te.Status == http.StatusTooManyRequests || te.Status >= 500:
		return fmt.Errorf("%s: %w", what, unavailable(err, te))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unavailable is a Table call worth trying again later (throttled, a server error, no
// answer), as the domain's ProviderError of Azure Storage with the request id the service
// gave it, if any.
func unavailable(err error, te tableError) error {
	pe := &credential.ProviderError{Kind: credential.ErrUnavailable, Service: credential.ServiceStorage,
		Code: te.Code, Status: te.Status, Err: err}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		pe.RequestID = re.RawResponse.Header.Get("x-ms-request-id")
	}
	return pe
}

// errAlreadyExists is an insert that met an existing entity; callers say which one.
var errAlreadyExists = errors.New("entity already exists")
