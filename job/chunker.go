package job

import "github.com/convai-retention/retention/policy"

// chunker groups a stream of selected records into per-character chunks of at most size IDs.
// It holds at most maxBuffered records: past that, the chunk that started filling first goes
// out short, so memory stays flat however many characters the source has.
type chunker struct {
	size, maxBuffered int
	open              map[string]*openChunk
	order             []orderEntry // open chunks in the order they started, with stale entries
	seq               uint64
	buffered          int
}

type openChunk struct {
	Chunk
	seq uint64
}

type orderEntry struct {
	id  string
	seq uint64
}

func newChunker(size, maxBuffered int) *chunker {
	return &chunker{size: size, maxBuffered: maxBuffered, open: map[string]*openChunk{}}
}

// add adds r and returns the chunks that are ready to send.
func (c *chunker) add(r policy.Record, d policy.Decision) []Chunk {
	ch, ok := c.open[r.CharacterID]
	if !ok {
		c.seq++
		ch = &openChunk{Chunk: Chunk{CharacterID: r.CharacterID, Policy: d.Policy, Sessions: make([]policy.Record, 0, c.size)}, seq: c.seq}
		c.open[r.CharacterID] = ch
		c.order = append(c.order, orderEntry{id: r.CharacterID, seq: c.seq})
	}
	ch.Sessions = append(ch.Sessions, r)
	c.buffered++
	var ready []Chunk
	if len(ch.Sessions) >= c.size {
		ready = append(ready, c.take(r.CharacterID))
	}
	for c.buffered > c.maxBuffered {
		ready = append(ready, c.takeOldest())
	}
	if len(c.order) > 2*len(c.open)+1024 {
		c.compact()
	}
	return ready
}

// take removes and returns the open chunk of a character.
func (c *chunker) take(characterID string) Chunk {
	ch := c.open[characterID]
	delete(c.open, characterID)
	c.buffered -= len(ch.Sessions)
	return ch.Chunk
}

// takeOldest removes and returns the open chunk that started first. There must be one.
func (c *chunker) takeOldest() Chunk {
	for {
		e := c.order[0]
		c.order = c.order[1:]
		if ch, ok := c.open[e.id]; ok && ch.seq == e.seq {
			return c.take(e.id)
		}
	}
}

// compact drops the order entries of chunks already taken.
func (c *chunker) compact() {
	live := c.order[:0]
	for _, e := range c.order {
		if ch, ok := c.open[e.id]; ok && ch.seq == e.seq {
			live = append(live, e)
		}
	}
	c.order = live
}

// flush returns every open chunk, those that started first first.
func (c *chunker) flush() []Chunk {
	var out []Chunk
	for len(c.open) > 0 {
		out = append(out, c.takeOldest())
	}
	c.order = nil
	return out
}
