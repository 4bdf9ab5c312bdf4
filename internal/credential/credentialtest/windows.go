package credentialtest

import (
	"cmp"
	"context"
	"slices"

	"github.com/activeloopai/azcreds/internal/credential"
)

// windowRow is one row of the open-window index.
type windowRow struct {
	w    credential.OpenWindow
	etag string
}

func windowKey(orgID, id string) string { return orgID + ":" + id }

// OpenWindow writes w's row, replacing the credential's row if it has one.
func (s *Store) OpenWindow(ctx context.Context, w credential.OpenWindow) error {
	end, err := s.begin("OpenWindow")
	if err != nil {
		return err
	}
	defer end()
	w.ETag = ""
	w.OpenedAt = w.OpenedAt.UTC()
	s.windows[windowKey(w.OrgID, w.CredentialID)] = &windowRow{w: w, etag: s.etag()}
	return nil
}

// OpenWindows calls fn with every row of the index, in key order.
func (s *Store) OpenWindows(ctx context.Context, fn func(credential.OpenWindow) error) error {
	end, err := s.begin("OpenWindows")
	if err != nil {
		return err
	}
	rows := make([]credential.OpenWindow, 0, len(s.windows))
	for _, r := range s.windows {
		w := r.w
		w.ETag = r.etag
		rows = append(rows, w)
	}
	end()
	slices.SortFunc(rows, func(a, b credential.OpenWindow) int {
		return cmp.Compare(windowKey(a.OrgID, a.CredentialID), windowKey(b.OrgID, b.CredentialID))
	})
	for _, w := range rows {
		if err := fn(w); err != nil {
			return err
		}
	}
	return nil
}

// NoteFailure records f on the credential's row, if it has one.
func (s *Store) NoteFailure(ctx context.Context, orgID, id string, f credential.JobFailure) error {
	end, err := s.begin("NoteFailure")
	if err != nil {
		return err
	}
	defer end()
	r := s.windows[windowKey(orgID, id)]
	if r == nil {
		return nil
	}
	f.At = f.At.UTC()
	r.w.Failure = f
	r.etag = s.etag()
	return nil
}

// CloseWindow removes w's row if it is unchanged since it was read (any row without an ETag).
func (s *Store) CloseWindow(ctx context.Context, w credential.OpenWindow) error {
	end, err := s.begin("CloseWindow")
	if err != nil {
		return err
	}
	defer end()
	key := windowKey(w.OrgID, w.CredentialID)
	if r := s.windows[key]; r != nil && (w.ETag == "" || r.etag == w.ETag) {
		delete(s.windows, key)
	}
	return nil
}
