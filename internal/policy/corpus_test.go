package policy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/broken/*.want from the decoder's output")

// corpusEnv is the environment every corpus file is parsed with. SECRET's
// value must never appear in a problem.
var corpusEnv = map[string]string{
	"SECRET":     "Hunter2Corpus",
	"BAD_REGEXP": "(Hunter2Corpus",
}

// TestBrokenConfigCorpus parses every testdata/broken/NAME.yaml and compares
// its problems with NAME.want, one "FILE:LINE: field: message" a line (paths
// relative to testdata/broken). go test -run TestBrokenConfigCorpus -update
// rewrites the .want files; review the diff.
func TestBrokenConfigCorpus(t *testing.T) {
	const dir = "testdata/broken"
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 60, "the corpus holds at least 60 broken configs")
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			cfg, err := Parse(file, data, env(corpusEnv))
			require.Nil(t, cfg, "a broken config parsed")
			var ps Problems
			require.True(t, errors.As(err, &ps), "error is %T, want Problems", err)
			got := strings.ReplaceAll(ps.Error(), dir+string(filepath.Separator), "") + "\n"
			require.NotContains(t, got, "Hunter2", "a secret is in a problem")
			want := filepath.Join(dir, name+".want")
			if *update {
				require.NoError(t, os.WriteFile(want, []byte(got), 0o644))
				return
			}
			w, err := os.ReadFile(want)
			require.NoError(t, err, "every broken config has its .want beside it")
			require.Equal(t, string(w), got)
		})
	}
}
