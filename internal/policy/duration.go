package policy

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Duration is a non-negative span of time written the way people write ages:
// Go's units (ns, us, µs, ms, s, m, h) plus d (24h) and w (7d), combined freely:
// "72h", "7d", "1d12h", "2w", "90m", "1.5d".
//
// time.ParseDuration alone is not enough: "7d" is the natural way to write an
// age, and a config that rejected it would invite "168h" typos.
type Duration time.Duration

// ParseDuration parses s as a Duration. Negative durations are rejected: no
// setting of the reaper means anything with one, and a stray "-" in older_than
// must not turn into "everything is old enough".
func ParseDuration(s string) (Duration, error) {
	d, why := parseDuration(s)
	if why != "" {
		return 0, fmt.Errorf("invalid duration %q: %s", s, why)
	}
	return d, nil
}

// parseDuration returns why s is not a duration without quoting s, so the
// config decoder can decide whether the value may be shown.
func parseDuration(s string) (Duration, string) {
	if s == "" {
		return 0, "empty (write e.g. 5s, 90m, 72h, 7d)"
	}
	if s[0] == '-' {
		return 0, "negative durations are not allowed"
	}
	rest := strings.TrimPrefix(s, "+")
	if rest == "0" {
		return 0, ""
	}
	const units = "use ns, us, ms, s, m, h, d or w"
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		num := rest[:i]
		if num == "" || num == "." {
			return 0, "expected a number before each unit"
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		var part time.Duration
		switch unit {
		case "":
			return 0, "missing unit after a number (" + units + ")"
		case "d", "w":
			// Days and weeks are hours scaled up; time.ParseDuration keeps the
			// fractional and overflow handling exact for the hour count.
			h, err := time.ParseDuration(num + "h")
			if err != nil {
				return 0, "out of range"
			}
			factor := time.Duration(24)
			if unit == "w" {
				factor = 24 * 7
			}
			if h > math.MaxInt64/factor {
				return 0, "out of range"
			}
			part = h * factor
		case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
			p, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, "out of range"
			}
			part = p
		default:
			return 0, "unknown unit (" + units + ")"
		}
		if total > math.MaxInt64-part {
			return 0, "out of range"
		}
		total += part
	}
	return Duration(total), ""
}

// String formats d so that ParseDuration reads it back: whole days as "d",
// then hours, minutes and seconds ("3d", "1d12h", "1h30m", "5s").
func (d Duration) String() string {
	var buf [32]byte
	return string(appendDuration(buf[:0], time.Duration(d)))
}

// MarshalText writes the String form, so a Duration survives JSON and YAML round trips.
func (d Duration) MarshalText() ([]byte, error) { return appendDuration(nil, time.Duration(d)), nil }

// UnmarshalText parses the ParseDuration form.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// appendDuration appends the String form of d to b without allocating, so
// Decide can put ages into its Reason for free.
func appendDuration(b []byte, d time.Duration) []byte {
	if d == 0 {
		return append(b, "0s"...)
	}
	if d < 0 {
		b = append(b, '-')
		if d == math.MinInt64 {
			d = math.MaxInt64
		} else {
			d = -d
		}
	}
	if d%time.Second != 0 {
		// Sub-second precision only shows up in hand-written tests; the
		// standard form is exact and allocating here is fine.
		return append(b, d.String()...)
	}
	units := [...]struct {
		size time.Duration
		name byte
	}{{24 * time.Hour, 'd'}, {time.Hour, 'h'}, {time.Minute, 'm'}, {time.Second, 's'}}
	for _, u := range units {
		if n := d / u.size; n > 0 {
			b = appendInt(b, int64(n))
			b = append(b, u.name)
			d -= n * u.size
		}
	}
	return b
}

// appendAge appends an age rounded down to a unit a person reads at a glance:
// hours once it is over a day, minutes once over an hour.
func appendAge(b []byte, d time.Duration) []byte {
	switch {
	case d >= 24*time.Hour:
		d = d.Truncate(time.Hour)
	case d >= time.Hour:
		d = d.Truncate(time.Minute)
	case d > 0:
		d = d.Truncate(time.Second)
	}
	return appendDuration(b, d)
}

func appendInt(b []byte, n int64) []byte {
	var digits [20]byte
	i := len(digits)
	for {
		i--
		digits[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, digits[i:]...)
}
