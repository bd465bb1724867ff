package job

// String returns the class's word, the one vocabulary of answers: logs, the metrics' answer
// label and the Convai client's own classes (convai.Class.String, tied to these words by
// internal/sender's test) all use it. A value that is not a class is "other".
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
	}
	return "other"
}
