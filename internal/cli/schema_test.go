package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/policy"
)

func TestSchemaPrintsTheConfigSchema(t *testing.T) {
	r := reaper(t, "schema")
	require.Equal(t, 0, r.code, r)
	require.Equal(t, string(policy.Schema()), r.stdout)
	var s map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s))
	require.Contains(t, s["$schema"], "2020-12")
}
