package policy

import (
	"encoding/json"
	"log/slog"
)

const redacted = "[redacted]"

// Secret holds a credential read from the config (a client secret, a database
// URL that may carry a password). Every way the standard library has of
// printing or encoding a value shows "[redacted]" instead; only Reveal gives
// the value, so a place that sends it somewhere is easy to find by grep.
//
// An empty Secret prints as "", so "not set" stays visible in logs.
type Secret string

// Reveal returns the secret itself. Call it only where the value leaves the
// process for the party that needs it (the token endpoint, the database driver).
func (s Secret) Reveal() string { return string(s) }

func (s Secret) mask() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer for %v, %s, %q and %+v of structs holding a Secret.
func (s Secret) String() string { return s.mask() }

// GoString implements fmt.GoStringer for %#v.
func (s Secret) GoString() string { return `policy.Secret("` + s.mask() + `")` }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.mask()) }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.mask()), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.mask()) }

// MarshalYAML implements yaml.Marshaler (gopkg.in/yaml.v3).
func (s Secret) MarshalYAML() (any, error) { return s.mask(), nil }
