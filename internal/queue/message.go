package queue

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/activeloopai/azcreds/internal/credential"
)

// message is the JSON body of a queue message.
type message struct {
	Kind         string    `json:"kind"`
	OrgID        string    `json:"org_id"`
	CredentialID string    `json:"credential_id"`
	Generation   int64     `json:"generation"`
	Deadline     time.Time `json:"deadline,omitzero"`
	Attempt      int       `json:"attempt,omitempty"`
	AppObjectID  string    `json:"app_object_id,omitempty"`
	IssuedAt     time.Time `json:"issued_at,omitzero"`
}

// Encode renders a job as a queue message body: base64 of its JSON.
func Encode(job credential.Job) (string, error) {
	b, err := json.Marshal(message{Kind: string(job.Kind), OrgID: job.OrgID, CredentialID: job.CredentialID,
		Generation: job.Generation, Deadline: job.Deadline.UTC(), Attempt: job.Attempt, AppObjectID: job.AppObjectID,
		IssuedAt: job.IssuedAt.UTC()})
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// ErrMalformed is a message that can never be processed; it is dropped, not retried.
var ErrMalformed = errors.New("malformed queue message")

// DecodeJSON reads a job from the JSON of a message (already base64-decoded).
func DecodeJSON(b []byte) (credential.Job, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return credential.Job{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	job := credential.Job{Kind: credential.JobKind(m.Kind), OrgID: m.OrgID, CredentialID: m.CredentialID,
		Generation: m.Generation, Deadline: m.Deadline, Attempt: m.Attempt, AppObjectID: m.AppObjectID,
		IssuedAt: m.IssuedAt}
	if _, ok := Of(job.Kind); !ok || job.OrgID == "" || job.CredentialID == "" {
		return credential.Job{}, fmt.Errorf("%w: missing kind, org or credential", ErrMalformed)
	}
	if job.Kind == credential.JobHealthProbe && job.IssuedAt.IsZero() {
		return credential.Job{}, fmt.Errorf("%w: health probe without issued_at", ErrMalformed)
	}
	if err := checkFields(job); err != nil {
		return credential.Job{}, err
	}
	return job, nil
}

// Decode reads a job from a raw queue message body (base64 of JSON).
func Decode(body string) (credential.Job, error) {
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return credential.Job{}, fmt.Errorf("%w: not base64: %v", ErrMalformed, err)
	}
	return DecodeJSON(b)
}
