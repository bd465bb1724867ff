package convai

import (
	"strconv"
)

// Class says what the caller should do with a Result.
type Class int

// The classes of a Result. The zero Class is not one of them, so a zero Result is never mistaken
// for a confirmation.
const (
	// Confirmed: the API confirmed the deletion of every session in the request.
	Confirmed Class = iota + 1
	// Retryable: nothing is known to be deleted; the same request may be sent again later.
	Retryable
	// AuthRejected: the API refused the key. No further request can succeed.
	AuthRejected
	// Permanent: the API refused this request; sending it again will not help. A batch may be
	// split to find the offending session.
	Permanent
)

// String returns the class in snake case, for logs.
func (c Class) String() string {
	switch c {
	case Confirmed:
		return "confirmed"
	case Retryable:
		return "retryable"
	case AuthRejected:
		return "auth_rejected"
	case Permanent:
		return "permanent"
	default:
		return "Class(" + strconv.Itoa(int(c)) + ")"
	}
}

// confirmation is the status value of a successful delete, compared exactly.
const confirmation = "SUCCESSFULLY DELETED"

// Classify maps an HTTP status and response body to a Class, following the rules in the package
// documentation. It never returns the zero Class.
func Classify(statusCode int, body []byte) Class {
	switch {
	case statusCode >= 200 && statusCode <= 299:
		if ok, _ := confirms(body); ok {
			return Confirmed
		}
		return Retryable
	case statusCode == 408 || statusCode == 429 || (statusCode >= 500 && statusCode <= 599):
		return Retryable
	case statusCode == 401 || statusCode == 403:
		return AuthRejected
	case statusCode >= 400 && statusCode <= 499:
		return Permanent
	default:
		return Retryable
	}
}

// asciiEqualFold is strings.EqualFold restricted to ASCII, so look-alike letters such as U+017F
// (long s) do not match; lower must be lower case.
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
