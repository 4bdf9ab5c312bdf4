package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// submitETags submits an entity group transaction like submit and returns the ETag each
// action's row has after it, in the order of actions ("" for a delete), read from the
// transaction's answer: the SDK discards them, and reading a row back to learn its ETag
// would cost a round trip. ok is false when the answer could not be read that way (the
// transaction still succeeded): the caller reads the row instead.
func (s *Store) submitETags(ctx context.Context, what string, actions ...aztables.TransactionAction) (etags []string, ok bool, err error) {
	var resp *http.Response
	_, err = s.table.SubmitTransaction(policy.WithCaptureResponse(ctx, &resp), actions, nil)
	if err = translate(err, what); err != nil {
		return nil, false, err
	}
	if resp == nil {
		return nil, false, nil
	}
	body, err := runtime.Payload(resp)
	if err != nil {
		return nil, false, nil
	}
	etags, perr := batchETags(resp.Header.Get("Content-Type"), body)
	if perr != nil || len(etags) != len(actions) {
		return nil, false, nil
	}
	return etags, true, nil
}

// batchETags reads the ETag header of every operation's response in the answer of an
// entity group transaction (a multipart/mixed batch holding one changeset of
// application/http responses, in the order of the request's operations).
func batchETags(contentType string, body []byte) ([]string, error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return nil, errors.New("batch answer: no boundary")
	}
	outer := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	changeset, err := outer.NextPart()
	if err != nil {
		return nil, err
	}
	_, params, err = mime.ParseMediaType(changeset.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return nil, errors.New("batch answer: no changeset boundary")
	}
	inner := multipart.NewReader(changeset, params["boundary"])
	var etags []string
	for {
		part, err := inner.NextPart()
		if errors.Is(err, io.EOF) {
			return etags, nil
		}
		if err != nil {
			return nil, err
		}
		r, err := http.ReadResponse(bufio.NewReader(part), nil)
		if err != nil {
			return nil, err
		}
		_ = r.Body.Close()
		if r.StatusCode >= 300 {
			return nil, errors.New("batch answer: an operation failed")
		}
		etags = append(etags, r.Header.Get("ETag"))
	}
}
