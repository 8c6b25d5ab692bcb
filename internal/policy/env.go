package policy

import (
	"errors"
	"fmt"
	"strings"
)

// expand replaces ${VAR} and ${VAR:-default} in a scalar value and turns $$
// into $. Any other $ stays as it is, so a secret that happens to contain one
// survives unless it contains "${" or "$$".
//
// It runs on the parsed value, never on the file text: a variable holding
// "a: b" or "- x" stays one string and cannot change the document.
//
// Errors name variables but never quote the value: the value may be a secret.
// An unset variable without a default is an error in every field, not only in
// required ones: an empty base_url falls back to the real cloud and an empty
// pattern matches everything, so a forgotten export must not pass silently.
// "${VAR:-}" says "empty is fine" explicitly.
func expand(value string, lookupEnv func(string) (string, bool)) (string, error) {
	if !strings.Contains(value, "$") {
		return value, nil
	}
	var b strings.Builder
	var unset []string
	rest := value
	for {
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, "$$"):
			b.WriteByte('$')
			rest = rest[2:]
		case strings.HasPrefix(rest, "${"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", errors.New("unterminated ${ (write $$ for a literal $)")
			}
			ref := rest[2:end]
			rest = rest[end+1:]
			name, def, hasDefault := strings.Cut(ref, ":-")
			if !validVarName(name) {
				return "", errors.New("invalid ${...} reference: a variable name is letters, digits and _ (write $$ for a literal $)")
			}
			if strings.Contains(def, "${") {
				return "", fmt.Errorf("${%s:-...}: a default cannot contain another ${...}", name)
			}
			v, ok := lookupEnv(name)
			switch {
			case ok && (v != "" || !hasDefault):
				b.WriteString(v)
			case hasDefault:
				b.WriteString(def)
			default:
				unset = append(unset, name)
			}
		default:
			b.WriteByte('$')
			rest = rest[1:]
		}
	}
	switch len(unset) {
	case 0:
		return b.String(), nil
	case 1:
		return "", fmt.Errorf("environment variable %s is not set (write ${%s:-} if empty is meant)", unset[0], unset[0])
	default:
		return "", fmt.Errorf("environment variables %s are not set", strings.Join(unset, ", "))
	}
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
