package policy

import _ "embed"

//go:embed config.schema.json
var schema []byte

// Schema returns config.schema.json, the JSON Schema (2020-12) of the config
// file, for `reaper schema` and editors. The copy at the repository root is
// the same file (a test keeps them equal); the schema agreement test keeps
// it in step with the decoder.
func Schema() []byte { return append([]byte(nil), schema...) }
