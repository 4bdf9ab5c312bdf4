package queue

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/activeloopai/azcreds/internal/credential"
)

// maxIDLength bounds the ids of a message: organization ids are at most 128 characters,
// credential and app object ids are GUIDs.
const maxIDLength = 256

// checkFields refuses a job that no delivery could ever process: ids that cannot be a
// Table row key or a Graph path segment, negative counters, or a deadline that Encode
// could not write back (its next poll). Such a message can only be damaged or forged;
// refused as malformed it is dropped at once instead of failing on every delivery until
// the host poisons it.
func checkFields(job credential.Job) error {
	for _, f := range []struct{ name, id string }{
		{"org_id", job.OrgID}, {"credential_id", job.CredentialID}, {"app_object_id", job.AppObjectID},
	} {
		if !storableID(f.id) {
			return fmt.Errorf("%w: %s is not a storable id", ErrMalformed, f.name)
		}
	}
	if job.Generation < 0 || job.Attempt < 0 {
		return fmt.Errorf("%w: negative generation or attempt", ErrMalformed)
	}
	// Encode writes times in UTC, and JSON times have years 0 to 9999 only.
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"deadline", job.Deadline}, {"issued_at", job.IssuedAt}} {
		if y := f.t.UTC().Year(); y < 0 || y > 9999 {
			return fmt.Errorf("%w: %s out of range", ErrMalformed, f.name)
		}
	}
	return nil
}

// storableID reports whether id (empty when an optional id is absent) is bounded and free
// of what Table keys forbid (/ \ # ? and control characters) and of U+FFFD, which is what
// JSON decoding makes of invalid UTF-8.
func storableID(id string) bool {
	return len(id) <= maxIDLength && !strings.ContainsAny(id, "/\\#?\uFFFD") && !strings.ContainsFunc(id, unicode.IsControl)
}
