package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestSecretRedactsItselfEverywhere(t *testing.T) {
	const value = "Hunter2Secret"
	a := Account{Name: "a", ClientSecret: value}
	db := Database{URL: "postgres://reaper:" + value + "@db/reaper"}

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", a.ClientSecret, "account", a, "db", db)
	j, err := json.Marshal(struct {
		A  Account
		DB Database
	}{a, db})
	require.NoError(t, err)
	y, err := yaml.Marshal(map[string]any{"a": a, "db": db})
	require.NoError(t, err)
	text, err := a.ClientSecret.MarshalText()
	require.NoError(t, err)

	outputs := map[string]string{
		"%v":       fmt.Sprintf("%v", a.ClientSecret),
		"%s":       fmt.Sprintf("%s", a.ClientSecret),
		"%q":       fmt.Sprintf("%q", a.ClientSecret),
		"%x":       fmt.Sprintf("%x", a.ClientSecret),
		"%#v":      fmt.Sprintf("%#v", a.ClientSecret),
		"%+v":      fmt.Sprintf("%+v %+v", a, db),
		"%#v of a": fmt.Sprintf("%#v %#v", a, db),
		"slog":     logs.String(),
		"json":     string(j),
		"yaml":     string(y),
		"text":     string(text),
	}
	for name, out := range outputs {
		require.NotContains(t, out, value, name)
	}
	require.Equal(t, "[redacted]", a.ClientSecret.String())
	require.Contains(t, string(j), `"ClientSecret":"[redacted]"`)
	require.Equal(t, value, a.ClientSecret.Reveal())
}

func TestAnEmptySecretPrintsEmpty(t *testing.T) {
	var s Secret
	require.Equal(t, "", s.String())
	require.Equal(t, "", s.LogValue().String())
	j, err := json.Marshal(s)
	require.NoError(t, err)
	require.Equal(t, `""`, string(j))
}

func TestDatabaseRedactedHidesThePassword(t *testing.T) {
	tests := []struct{ name, url, want string }{
		{"no url", "", ""},
		{"a password in the user info", "postgres://reaper:Hunter2@db:5432/reaper?sslmode=require", "postgres://reaper:xxxxx@db:5432/reaper?sslmode=require"},
		{"a password in the query", "postgresql://db/reaper?password=Hunter2&user=reaper", "postgresql://db/reaper?password=xxxxx&user=reaper"},
		{"no password", "postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/postgres"},
		{"an unparsable url", "postgres://reaper:Hunter2@[db", "[redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Database{URL: Secret(tt.url)}
			require.Equal(t, tt.want, d.Redacted())
		})
	}
}
