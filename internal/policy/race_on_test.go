//go:build race

package policy

// The race detector changes escape analysis, so allocation counts only hold without it.
const raceEnabled = true
