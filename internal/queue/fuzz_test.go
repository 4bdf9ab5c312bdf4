package queue

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecode feeds arbitrary bytes to the decoder, both as the JSON of a message and as
// a stored body (base64 of it). The two must agree; a refusal is always ErrMalformed (the
// message is dropped, never retried); an accepted job has a kind, an organization and a
// credential, ids Table storage can store, and encodes to a message that decodes to the same job.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"kind":"sp_poll","org_id":"org-a","credential_id":"c1","generation":3,"deadline":"2026-11-23T12:10:00Z","attempt":2}`,
		`{"kind":"access_probe","org_id":"org-a","credential_id":"c1","generation":4,"deadline":"2026-11-23T12:05:00+02:00"}`,
		`{"kind":"app_cleanup","org_id":"org-a","credential_id":"c1","app_object_id":"obj"}`,
		`{"kind":"app_cleanup","org_id":"org-a","credential_id":"c1"}`,
		`{"kind":"sp_poll","org_id":"o","credential_id":"c","generation":-1}`,
		`{"kind":"sp_poll","org_id":"o/x","credential_id":"c#1"}`,
		`{"kind":"sp_poll","org_id":"o","credential_id":"c","deadline":"0000-01-01T00:30:00+01:00"}`,
		`{"kind":"health_probe","org_id":"o","credential_id":"c","issued_at":"0000-01-01T00:30:00+01:00"}`,
		`{"kind":"health_probe","org_id":"o","credential_id":"c","issued_at":"2026-11-23T12:00:00Z"}`,
		`{"kind":"sp_poll","org_id":"o","credential_id":"c","generation":1e3}`,
		`{"kind":"sp_poll","org_id":"o","credential_id":"c"} trailing`,
		`{"kind":"bogus","org_id":"o","credential_id":"c"}`,
		`[]`, `null`, `"string"`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		job, err := DecodeJSON(b)
		viaBody, bodyErr := Decode(base64.StdEncoding.EncodeToString(b))
		// Times compare by instant: two parses of one offset that is not a whole hour give
		// two zones, each its own pointer.
		if (err == nil) != (bodyErr == nil) || !cmp.Equal(job, viaBody, cmp.Comparer(time.Time.Equal)) {
			t.Fatalf("%q: DecodeJSON gave %+v, %v; Decode of its base64 gave %+v, %v", b, job, err, viaBody, bodyErr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%q: error %v is not ErrMalformed", b, err)
			}
			return
		}
		if _, ok := Of(job.Kind); !ok {
			t.Fatalf("%q: accepted kind %q, which has no queue", b, job.Kind)
		}
		for name, key := range map[string]string{"org_id": job.OrgID, "credential_id": job.CredentialID} {
			checkKey(t, b, name, key, true)
		}
		checkKey(t, b, "app_object_id", job.AppObjectID, false)
		if job.Generation < 0 || job.Attempt < 0 {
			t.Fatalf("%q: accepted generation %d, attempt %d", b, job.Generation, job.Attempt)
		}
		body, err := Encode(job)
		if err != nil {
			t.Fatalf("%q: accepted job %+v does not encode: %v", b, job, err)
		}
		again, err := Decode(body)
		if err != nil {
			t.Fatalf("%q: re-encoded job %+v does not decode: %v", b, job, err)
		}
		if diff := cmp.Diff(job, again, cmp.Comparer(time.Time.Equal)); diff != "" {
			t.Fatalf("%q: re-encoded job came back changed (-decoded +again):\n%s", b, diff)
		}
	})
}

// maxKeyBytes is Table storage's limit for a row key.
const maxKeyBytes = 1024

// checkKey holds a decoded id to what a Table row key (and a log line) can carry.
func checkKey(t *testing.T, msg []byte, name, v string, required bool) {
	t.Helper()
	if v == "" {
		if required {
			t.Fatalf("%q: accepted without %s", msg, name)
		}
		return
	}
	if len(v) > maxKeyBytes || strings.ContainsAny(v, `/\#?`) || strings.ContainsFunc(v, unicode.IsControl) ||
		strings.ContainsRune(v, unicode.ReplacementChar) {
		t.Fatalf("%q: accepted %s %q", msg, name, v)
	}
}

// TestDecodeRefusesUnstorable: ids a Table key cannot hold, negative counters and times
// Encode cannot write back are malformed, so the message is dropped at once instead of
// failing on every delivery until it is poisoned.
func TestDecodeRefusesUnstorable(t *testing.T) {
	for _, m := range []string{
		`{"kind":"sp_poll","org_id":"a/b","credential_id":"c"}`,
		`{"kind":"sp_poll","org_id":"o","credential_id":"c#1"}`,
		`{"kind":"sp_poll","org_id":"o","credential_id":"c?x"}`,
		`{"kind":"sp_poll","org_id":"o\\u0000","credential_id":"c"}`,
		"{\"kind\":\"sp_poll\",\"org_id\":\"o\xff\",\"credential_id\":\"c\"}",
		`{"kind":"app_cleanup","org_id":"o","credential_id":"c","app_object_id":"..\\\\x"}`,
		`{"kind":"sp_poll","org_id":"` + strings.Repeat("o", 257) + `","credential_id":"c"}`,
		`{"kind":"sp_poll","org_id":"o","credential_id":"c","generation":-1}`,
		`{"kind":"sp_poll","org_id":"o","credential_id":"c","attempt":-1}`,
		`{"kind":"sp_poll","org_id":"o","credential_id":"c","deadline":"0000-01-01T00:30:00+01:00"}`,
	} {
		if job, err := DecodeJSON([]byte(m)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeJSON(%s) = %+v, %v; want ErrMalformed", m, job, err)
		}
	}
}
