package credential

import (
	"context"
	"log/slog"
	"time"
)

// SASLifetime is how long an issued SAS is valid; SASClockSkew is how far back it starts,
// for clocks that run behind.
const (
	SASLifetime  = time.Hour
	SASClockSkew = 5 * time.Minute
)

// SignerIdentity is who signs a SAS: a credential's service principal in the customer's
// tenant, or the platform's own managed identity (the environment default).
type SignerIdentity struct {
	TenantID string
	AppID    string
	Platform bool // the backend's managed identity; TenantID and AppID are empty
}

// SASRequest asks for a user delegation SAS on one container.
type SASRequest struct {
	Identity  SignerIdentity
	Account   string
	Container string
	Start     time.Time
	Expiry    time.Time
}

// SAS is a signed container SAS.
type SAS struct {
	AccountURL string // e.g. https://bloblake.blob.core.windows.net
	Token      Secret // the query string, without '?'
}

// Signer issues user delegation SAS tokens: read, add, create, write, delete and list on
// one container, signed with a user delegation key of the identity. Failures wrap a
// *ProviderError with the storage code (or ErrUnavailable).
type Signer interface {
	ContainerSAS(ctx context.Context, r SASRequest) (SAS, error)
}

// Secret is a value that must never reach a log: its LogValue and String are REDACTED.
type Secret string

// String hides the secret from fmt's %v and %s.
func (Secret) String() string { return "REDACTED" }

// Reveal returns the secret itself, for the one place that hands it to its owner.
func (s Secret) Reveal() string { return string(s) }

// LogValue hides the secret from log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON hides the secret from encoding/json (slog's JSON handler uses it for
// nested values, not LogValue).
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// MarshalText hides the secret from text encoders.
func (Secret) MarshalText() ([]byte, error) { return []byte("REDACTED"), nil }
