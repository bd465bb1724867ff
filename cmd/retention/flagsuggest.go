package main

import (
	"flag"
	"fmt"
	"strings"
)

// explain rewrites a parse error of the flag package in the binary's own terms: flags are
// written with two dashes, and an unknown flag gets the nearest known one as a suggestion.
func (f *flagSet) explain(err error) string {
	msg := err.Error()
	const unknown = "flag provided but not defined: -"
	if name, ok := strings.CutPrefix(msg, unknown); ok {
		out := fmt.Sprintf("unknown flag --%s", name)
		if near := f.nearest(name); near != "" {
			out += fmt.Sprintf("; did you mean --%s?", near)
		}
		return out + fmt.Sprintf(" (retention %s --help lists the flags)", f.Name())
	}
	for _, prefix := range []string{"flag needs an argument: -", "for flag -"} {
		if i := strings.Index(msg, prefix); i >= 0 {
			msg = msg[:i+len(prefix)] + "-" + msg[i+len(prefix):]
		}
	}
	return msg
}

// nearest returns the defined flag closest to name: one it starts, or one within two edits;
// "" when none is close.
func (f *flagSet) nearest(name string) string {
	best, bestDist := "", 3
	f.VisitAll(func(fl *flag.Flag) {
		d := editDistance(name, fl.Name)
		if strings.HasPrefix(fl.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = fl.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes (flag names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
