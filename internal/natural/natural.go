// Package natural orders strings the way people read them: runs of digits compare as numbers,
// so big-2 comes before big-10. Tables of characters use it.
package natural

import "strings"

// Compare returns -1, 0 or +1 as a sorts before, with or after b. Runs of ASCII digits compare
// by their value, leading zeros aside; everything else compares byte by byte. Strings equal
// but for leading zeros fall back to byte order ("a01" before "a1"), so only equal strings
// compare equal and the order is total.
func Compare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			ea, eb := digitsEnd(a, i), digitsEnd(b, j)
			na, nb := strings.TrimLeft(a[i:ea], "0"), strings.TrimLeft(b[j:eb], "0")
			if c := cmpInt(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			i, j = ea, eb
			continue
		}
		if a[i] != b[j] {
			return cmpInt(int(a[i]), int(b[j]))
		}
		i++
		j++
	}
	if c := cmpInt(len(a)-i, len(b)-j); c != 0 {
		return c
	}
	// Equal but for leading zeros ("a01", "a1"): a total order still tells them apart.
	return strings.Compare(a, b)
}

// Less reports whether a sorts before b.
func Less(a, b string) bool { return Compare(a, b) < 0 }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
