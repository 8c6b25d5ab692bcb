package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sqlBlock is a fenced ```sql block of README.md.
type sqlBlock struct {
	line int // of the opening fence
	text string
}

func readmeText(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	return string(data)
}

func readmeSQL(t *testing.T) []sqlBlock {
	t.Helper()
	data := readmeText(t)
	var (
		blocks []sqlBlock
		cur    *sqlBlock
	)
	for i, l := range strings.Split(data, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(l) == "```sql":
			cur = &sqlBlock{line: i + 1}
		case cur != nil && strings.TrimSpace(l) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	require.Nil(t, cur, "README.md: unterminated ```sql block")
	return blocks
}

// readmeBlock returns the README's sql block whose first line starts with the comment prefix.
func readmeBlock(t *testing.T, prefix string) sqlBlock {
	t.Helper()
	for _, b := range readmeSQL(t) {
		if strings.HasPrefix(b.text, prefix) {
			return b
		}
	}
	t.Fatalf("README.md has no ```sql block starting with %q", prefix)
	return sqlBlock{}
}
