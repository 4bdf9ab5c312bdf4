package credential

import "log/slog"

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
