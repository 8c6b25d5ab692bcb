package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestTheRootSchemaIsTheEmbeddedOne(t *testing.T) {
	root, err := os.ReadFile("../../config.schema.json")
	require.NoError(t, err)
	require.Equal(t, string(Schema()), string(root), "config.schema.json at the root must equal internal/policy/config.schema.json: copy it over")
}

// compileSchema compiles the embedded schema with a 2020-12 validator.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	require.NoError(t, c.AddResource("config.schema.json", doc))
	sch, err := c.Compile("config.schema.json")
	require.NoError(t, err)
	return sch
}

// yamlToJSON turns a YAML config into the JSON value a schema validator
// reads, as an editor's YAML language server does.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal(data, &v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return out
}

func TestSchemaKeysAreTheDecodersKeys(t *testing.T) {
	var s map[string]any
	require.NoError(t, json.Unmarshal(Schema(), &s))
	defs := s["$defs"].(map[string]any)
	props := func(node map[string]any) []string {
		p, ok := node["properties"].(map[string]any)
		require.True(t, ok, "no properties in %v", node)
		require.Equal(t, false, node["additionalProperties"], "every mapping of the schema closes additionalProperties, as the decoder refuses unknown keys")
		var keys []string
		for k, v := range p {
			keys = append(keys, k)
			require.NotEmpty(t, v.(map[string]any)["description"], "%s has no description", k)
		}
		sort.Strings(keys)
		return keys
	}
	sorted := func(keys []string) []string {
		out := slices.Clone(keys)
		sort.Strings(out)
		return out
	}
	top := s
	sub := func(m map[string]any, key string) map[string]any {
		return m["properties"].(map[string]any)[key].(map[string]any)
	}
	policyDef := defs["policy"].(map[string]any)
	for _, tt := range []struct {
		where string
		node  map[string]any
		keys  []string
	}{
		{"top level", top, topKeys},
		{"database", sub(top, "database"), databaseKeys},
		{"http", sub(top, "http"), httpKeys},
		{"notify", sub(top, "notify"), notifyKeys},
		{"limits", sub(top, "limits"), limitKeys},
		{"keep", sub(top, "keep"), keepKeys},
		{"accounts[]", defs["account"].(map[string]any), accountKeys},
		{"policies[]", policyDef, policyKeys},
		{"policies[].select", sub(policyDef, "select"), selectorKeys},
		{"policies[].keep", sub(policyDef, "keep"), keepKeys},
	} {
		require.Equal(t, sorted(tt.keys), props(tt.node), "%s: the schema's keys differ from the decoder's", tt.where)
	}
}

func TestSchemaDefaultsAreTheDecodersDefaults(t *testing.T) {
	var s map[string]any
	require.NoError(t, json.Unmarshal(Schema(), &s))
	limits := s["properties"].(map[string]any)["limits"].(map[string]any)["properties"].(map[string]any)
	// The defaults written in the schema, decoded, are the decoder's defaults.
	var b bytes.Buffer
	b.WriteString(account + "limits:\n")
	for _, k := range limitKeys {
		v, ok := limits[k].(map[string]any)["default"]
		require.True(t, ok, "limits.%s has no default", k)
		j, err := json.Marshal(v)
		require.NoError(t, err)
		b.WriteString("  " + k + ": " + string(j) + "\n")
	}
	cfg := parse(t, b.String(), nil)
	require.Equal(t, defaultLimits(), cfg.Limits)
	notify := s["properties"].(map[string]any)["notify"].(map[string]any)["properties"].(map[string]any)
	require.Equal(t, defaultQuotaWarn, notify["quota_warn"].(map[string]any)["default"])
	require.Equal(t, defaultStateDir, s["properties"].(map[string]any)["state_dir"].(map[string]any)["default"])
}

func TestValidConfigsValidateAgainstTheSchema(t *testing.T) {
	sch := compileSchema(t)
	dir := t.TempDir()
	cert, key := certPair(t)
	writeFile(t, dir, "cert.pem", cert)
	writeFile(t, dir, "key.pem", key)
	writeFile(t, dir, "secret", "s\n")
	configs := map[string]string{
		"minimal":     account,
		"new keys":    account + "token_key: ${KEY}\nhttp:\n  listen: 127.0.0.1:9464\nnotify:\n  webhook_url: ${HOOK}\n  quota_warn: 0.8\nlimits:\n  max_retry_wait: 30s\n  max_listed: 200\n  allow_above_documented_rate: true\n  requests_per_minute: 600\n",
		"certificate": accountWith("    client_certificate_file: cert.pem\n    client_key_file: key.pem\n"),
		"secret file": accountWith("    client_secret_file: secret\n"),
		"policies":    withPolicy("    older_than: 0s\n    grace: 1d12h\n    max_selected_fraction: 0.5\n    select: {domain: '.*'}\n    keep: {domains: ['^golden'], customer_ids: [" + ciID + "]}\n"),
		"at bounds":   account + "limits:\n  concurrency: 75\n  poll_interval: 100ms\n  poll_max: 1h\n  drain_timeout: 10m\n",
	}
	for _, tt := range acceptedAtBounds {
		configs["at the bounds: "+tt.name] = tt.src
	}
	example, err := os.ReadFile("../../config.example.yaml")
	require.NoError(t, err)
	configs["config.example.yaml"] = string(example)
	demo, err := os.ReadFile("../cli/demo.yaml")
	require.NoError(t, err)
	configs["internal/cli/demo.yaml"] = string(demo)

	vars := map[string]string{"PC_CLIENT_SECRET": "s", "KEY": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", "HOOK": "https://hooks.example.com/x",
		"DEMO_STATE_DIR": dir, "DEMO_CLIENT_SECRET": "s", "DEMO_URL": "http://127.0.0.1:1"}
	for name, src := range configs {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "reaper.yaml"), []byte(src), env(vars))
			require.NoError(t, err, "the decoder accepts it")
			require.NoError(t, sch.Validate(yamlToJSON(t, []byte(src))), "the schema accepts it")
		})
	}
}

func TestTheSchemaRefusesWhatTheDecoderRefuses(t *testing.T) {
	sch := compileSchema(t)
	for name, src := range map[string]string{
		"an unknown key":                  account + "bogus: 1\n",
		"a misspelt limit":                account + "limits:\n  poll_intervall: 5s\n",
		"concurrency above a sandbox":     account + "limits:\n  concurrency: 76\n",
		"a duration without unit":         account + "limits:\n  poll_max: 60\n",
		"a policy without older_than":     withPolicy("    select: {domain: '^ci-'}\n"),
		"an empty select":                 withPolicy("    older_than: 1d\n    select: {}\n"),
		"two credential forms":            account + "    client_certificate_file: c.pem\n    client_key_file: k.pem\n",
		"a secret and a secret file":      account + "    client_secret_file: s\n",
		"no credential":                   accountWith(""),
		"a tenant that is not a GUID":     strings.Replace(account, "11111111-1111-1111-1111-111111111111", "contoso", 1),
		"a quota warning above one":       account + "notify:\n  quota_warn: 90\n",
		"a cloud that does not exist":     account + "    cloud: azure\n",
		"a rate above the absolute bound": account + "limits:\n  requests_per_minute: 100000\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("reaper.yaml", []byte(src), env(nil))
			require.Error(t, err, "the decoder refuses it")
			require.Error(t, sch.Validate(yamlToJSON(t, []byte(src))), "the schema refuses it")
		})
	}
}
