package convai

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convai-retention/retention/policy"
)

// The most of a string the list parser keeps, in bytes as written (escapes included). A longer
// string is read to its end and checked, but not kept.
const (
	// maxRawID holds any ID of policy.MaxIDLength bytes however it is escaped (\u00e9 is six
	// bytes for one); a longer one is over the bound whatever its escapes.
	maxRawID = 6 * policy.MaxIDLength
	// maxRawName holds "is_added_to_memory" with every letter escaped; a longer member name
	// is none of those the parser reads.
	maxRawName = 6*len("is_added_to_memory") + 2
	// maxRawDate holds any date or time the list writes; a longer one is unreadable.
	maxRawDate = 64
	// maxDepth is how deeply the values the parser skips may nest.
	maxDepth = 512
)

// listScanner reads a session list byte by byte, with memory bounded whatever the answer
// holds: a string is kept only up to the bound its member needs, and values the list does not
// use (other members, their nested arrays and objects) are checked and skipped, never kept.
// encoding/json buffers every value whole, so one element with a 300 MB ID would cost the
// process that much, several times over.
type listScanner struct {
	r   *bufio.Reader
	buf []byte // the kept part of the string being read, reused
}

// decodeList reads a JSON array of list elements from r, one element at a time, and returns how
// many it handed to fn. An element must be an object with a non-empty string sessionID; one
// whose ID is longer than policy.MaxIDLength bytes is handed over as Overlong.
func decodeList(r io.Reader, fn func(ListedSession) error) (int, error) {
	s := &listScanner{r: bufio.NewReaderSize(r, 32<<10), buf: make([]byte, 0, 256)}
	c, err := s.r.ReadByte()
	for err == nil && isSpace(c) {
		c, err = s.r.ReadByte()
	}
	if err != nil {
		return 0, fmt.Errorf("read the start of the array: %w", err)
	}
	if c != '[' {
		return 0, fmt.Errorf("want a JSON array, got %q", c)
	}
	n := 0
	if c, err = s.next(); err != nil {
		return 0, err
	}
	for c != ']' {
		if c != '{' {
			return n, fmt.Errorf("element %d: not an object", n)
		}
		el, err := s.element()
		if err != nil {
			return n, fmt.Errorf("element %d: %w", n, err)
		}
		if err := fn(el); err != nil {
			return n, fmt.Errorf("%w: %w", ErrStopped, err)
		}
		n++
		if c, err = s.next(); err != nil {
			return n, fmt.Errorf("read the end of the array: %w", err)
		}
		switch c {
		case ']':
		case ',':
			if c, err = s.next(); err != nil {
				return n, err
			}
			if c == ']' {
				return n, errors.New("a comma before ]")
			}
		default:
			return n, fmt.Errorf("after element %d: want , or ], got %q", n-1, c)
		}
	}
	for {
		c, err := s.r.ReadByte()
		switch {
		case errors.Is(err, io.EOF):
			return n, nil
		case err != nil:
			return n, fmt.Errorf("read after the array: %w", err)
		case !isSpace(c):
			return n, errors.New("data after the array")
		}
	}
}

// element reads the members of an object whose { has been read, and returns the element they
// describe. A member named more than once counts as its last value, as encoding/json has it.
func (s *listScanner) element() (ListedSession, error) {
	var el ListedSession
	var id, date, clock string
	var seenID bool
	c, err := s.next()
	if err != nil {
		return el, err
	}
	for c != '}' {
		if c != '"' {
			return el, fmt.Errorf("want a member name, got %q", c)
		}
		name, err := s.memberName()
		if err != nil {
			return el, err
		}
		if c, err = s.next(); err != nil {
			return el, err
		} else if c != ':' {
			return el, fmt.Errorf("want : after a member name, got %q", c)
		}
		switch name {
		case memberSessionID:
			if c, err = s.next(); err != nil {
				return el, err
			} else if c != '"' {
				return el, errors.New("sessionID is not a string")
			}
			raw, over, err := s.readString(maxRawID)
			if err != nil {
				return el, err
			}
			seenID, id, el.Overlong = true, "", over
			if !over {
				id = unquote(raw)
				el.Overlong = len(id) > policy.MaxIDLength
			}
		case memberDate:
			if date, err = s.optionalString(maxRawDate); err != nil {
				return el, err
			}
		case memberTime:
			if clock, err = s.optionalString(maxRawDate); err != nil {
				return el, err
			}
		case memberMemory:
			if el.Memory, err = s.optionalBool(); err != nil {
				return el, err
			}
		default:
			if err := s.skipValue(0); err != nil {
				return el, err
			}
		}
		if c, err = s.next(); err != nil {
			return el, err
		}
		switch c {
		case ',':
			if c, err = s.next(); err != nil {
				return el, err
			}
			if c == '}' {
				return el, errors.New("a comma before }")
			}
		case '}':
		default:
			return el, fmt.Errorf("want , or } after a member, got %q", c)
		}
	}
	switch {
	case !seenID || (id == "" && !el.Overlong):
		return el, errors.New("sessionID is missing, empty or not a string")
	case !el.Overlong:
		el.SessionID = id
	}
	if t, err := time.ParseInLocation(listDateLayout, date+" "+clock, time.UTC); err == nil {
		el.Start = t
	}
	return el, nil
}

// The members of a list element the parser reads.
const (
	memberOther = iota
	memberSessionID
	memberDate
	memberTime
	memberMemory
)

// memberName reads the rest of a member name whose opening quote has been read and says which
// member it names, without ASCII case (as encoding/json matches names).
func (s *listScanner) memberName() (int, error) {
	raw, over, err := s.readString(maxRawName)
	if err != nil || over {
		return memberOther, err
	}
	inner := raw[1 : len(raw)-1]
	var name string
	if bytes.IndexByte(inner, '\\') >= 0 {
		name = unquote(raw)
		inner = nil
	}
	is := func(want string) bool {
		if inner != nil {
			return bytes.EqualFold(inner, []byte(want))
		}
		return strings.EqualFold(name, want)
	}
	switch {
	case is("sessionID"):
		return memberSessionID, nil
	case is("date"):
		return memberDate, nil
	case is("time"):
		return memberTime, nil
	case is("is_added_to_memory"):
		return memberMemory, nil
	}
	return memberOther, nil
}

// stringValue reads the rest of a string whose opening quote has been read and returns it
// unescaped; "" when it is longer than keep bytes as written.
func (s *listScanner) stringValue(keep int) (string, error) {
	raw, over, err := s.readString(keep)
	if err != nil || over {
		return "", err
	}
	return unquote(raw), nil
}

// optionalString reads a member's value: a string of at most keep bytes as written, unescaped;
// any other value, or a longer string, is read and checked and gives "".
func (s *listScanner) optionalString(keep int) (string, error) {
	c, err := s.next()
	if err != nil {
		return "", err
	}
	if c != '"' {
		if err := s.r.UnreadByte(); err != nil {
			return "", err
		}
		return "", s.skipValue(0)
	}
	return s.stringValue(keep)
}

// optionalBool reads a member's value: true or false gives MemoryAdded or MemoryNotAdded; any
// other value is read and checked and gives MemoryUnstated.
func (s *listScanner) optionalBool() (MemoryFlag, error) {
	c, err := s.next()
	if err != nil {
		return MemoryUnstated, err
	}
	switch c {
	case 't':
		return MemoryAdded, s.literal("rue")
	case 'f':
		return MemoryNotAdded, s.literal("alse")
	}
	if err := s.r.UnreadByte(); err != nil {
		return MemoryUnstated, err
	}
	return MemoryUnstated, s.skipValue(0)
}

// unquote unescapes a string readString checked; invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func unquote(raw []byte) string {
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "" // cannot happen: readString checked the syntax
	}
	return v
}

// readString reads the rest of a string whose opening quote has been read, checking its escapes
// and refusing raw control characters. It returns the string as written, quotes included, when
// it holds at most keep bytes between them; otherwise over is true and nothing is kept. The
// slice is valid until the next call.
func (s *listScanner) readString(keep int) (raw []byte, over bool, err error) {
	s.buf = append(s.buf[:0], '"')
	n := 0
	add := func(b ...byte) {
		n += len(b)
		if n <= keep {
			s.buf = append(s.buf, b...)
		}
	}
	for {
		// Take the plain bytes up to the next quote, backslash or control character in one go.
		if plain, err := s.plain(); err != nil {
			return nil, false, err
		} else if len(plain) > 0 {
			add(plain...)
			if _, err := s.r.Discard(len(plain)); err != nil {
				return nil, false, err
			}
			continue
		}
		c, err := s.byte()
		if err != nil {
			return nil, false, err
		}
		switch {
		case c == '"':
			if n > keep {
				return nil, true, nil
			}
			return append(s.buf, '"'), false, nil
		case c < 0x20:
			return nil, false, fmt.Errorf("a control character (%#x) in a string", c)
		case c != '\\':
			add(c)
			continue
		}
		e, err := s.byte()
		if err != nil {
			return nil, false, err
		}
		switch e {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			add(c, e)
		case 'u':
			add(c, e)
			for range 4 {
				h, err := s.byte()
				if err != nil {
					return nil, false, err
				}
				if !isHex(h) {
					return nil, false, fmt.Errorf("a bad \\u escape (%q) in a string", h)
				}
				add(h)
			}
		default:
			return nil, false, fmt.Errorf("a bad escape (\\%c) in a string", e)
		}
	}
}

// plain returns the buffered bytes up to the first quote, backslash or control character,
// filling the buffer if it is empty. They stay buffered: the caller discards them.
func (s *listScanner) plain() ([]byte, error) {
	if s.r.Buffered() == 0 {
		if _, err := s.r.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	b, _ := s.r.Peek(s.r.Buffered())
	for i, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return b[:i], nil
		}
	}
	return b, nil
}

// skipValue reads one JSON value and keeps nothing of it.
func (s *listScanner) skipValue(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("values nested more than %d deep", maxDepth)
	}
	c, err := s.next()
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		_, _, err := s.readString(0)
		return err
	case c == '{':
		return s.skipContainer(depth, '}', true)
	case c == '[':
		return s.skipContainer(depth, ']', false)
	case c == 't':
		return s.literal("rue")
	case c == 'f':
		return s.literal("alse")
	case c == 'n':
		return s.literal("ull")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number(c)
	}
	return fmt.Errorf("want a value, got %q", c)
}

// skipContainer reads the rest of an object (members) or array whose opening byte has been
// read, up to its closing byte.
func (s *listScanner) skipContainer(depth int, end byte, members bool) error {
	c, err := s.next()
	if err != nil || c == end {
		return err
	}
	if err := s.r.UnreadByte(); err != nil {
		return err
	}
	for {
		if members {
			if c, err := s.next(); err != nil {
				return err
			} else if c != '"' {
				return fmt.Errorf("want a member name, got %q", c)
			}
			if _, _, err := s.readString(0); err != nil {
				return err
			}
			if c, err := s.next(); err != nil {
				return err
			} else if c != ':' {
				return fmt.Errorf("want : after a member name, got %q", c)
			}
		}
		if err := s.skipValue(depth + 1); err != nil {
			return err
		}
		c, err := s.next()
		switch {
		case err != nil:
			return err
		case c == end:
			return nil
		case c != ',':
			return fmt.Errorf("want , or %c, got %q", end, c)
		}
	}
}

// literal reads the rest of true, false or null.
func (s *listScanner) literal(rest string) error {
	for i := range len(rest) {
		c, err := s.byte()
		if err != nil {
			return err
		}
		if c != rest[i] {
			return fmt.Errorf("a bad literal (%q)", c)
		}
	}
	return nil
}

// number reads the rest of a number whose first byte, c, has been read, by JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *listScanner) number(c byte) error {
	var err error
	if c == '-' {
		if c, err = s.byte(); err != nil {
			return err
		}
	}
	switch {
	case c == '0':
		c, err = s.byte()
	case c >= '1' && c <= '9':
		c, err = s.digits()
	default:
		return fmt.Errorf("a bad number (%q after -)", c)
	}
	if err == nil && c == '.' {
		if c, err = s.digitsAtLeastOne(); err != nil {
			return err
		}
	}
	if err == nil && (c == 'e' || c == 'E') {
		if c, err = s.byte(); err == nil && (c == '+' || c == '-') {
			c, err = s.byte()
		}
		if err != nil {
			return err
		}
		if c < '0' || c > '9' {
			return fmt.Errorf("a bad number (%q in the exponent)", c)
		}
		c, err = s.digits()
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil // a number may end the input; what follows it is checked by the caller
	case err != nil:
		return err
	}
	return s.r.UnreadByte() // c ends the number: the caller reads it
}

// digits reads digits and returns the first byte after them.
func (s *listScanner) digits() (byte, error) {
	for {
		c, err := s.byte()
		if err != nil || c < '0' || c > '9' {
			return c, err
		}
	}
}

// digitsAtLeastOne reads one digit or more and returns the first byte after them.
func (s *listScanner) digitsAtLeastOne() (byte, error) {
	c, err := s.byte()
	if err != nil {
		return 0, err
	}
	if c < '0' || c > '9' {
		return 0, fmt.Errorf("a bad number (%q after the point)", c)
	}
	return s.digits()
}

// next reads the next byte that is not white space, where the end of the input is unexpected.
func (s *listScanner) next() (byte, error) {
	for {
		c, err := s.byte()
		if err != nil || !isSpace(c) {
			return c, err
		}
	}
}

// byte reads the next byte inside a value, where the end of the input is unexpected.
func (s *listScanner) byte() (byte, error) {
	c, err := s.r.ReadByte()
	if errors.Is(err, io.EOF) {
		return 0, io.ErrUnexpectedEOF
	}
	return c, err
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
