package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/boundedfile"
)

// maxMemorySeed is the largest memory seed read, from --memories or POST /_fake/memories.
const maxMemorySeed = 16 << 20

// memorySeedShape is the shape of a memory seed, for error messages.
const memorySeedShape = `{"end_users": ["USER"], "memories": {"CHARACTER": {"USER": [{"id": "M", "memory": "TEXT", "session_id": "S"}]}}, ` +
	`"list_flags": {"CHARACTER": {"S": "true|false|absent|JSON"}}}`

// readMemorySeed reads the end users and memories of --memories: a regular file of at most
// maxMemorySeed bytes, one JSON object.
func readMemorySeed(path string) (convaitest.MemorySeed, error) {
	data, err := boundedfile.Read(path, maxMemorySeed)
	if err != nil {
		return convaitest.MemorySeed{}, usagef("--memories: %v", err)
	}
	seed, err := decodeMemorySeed(data)
	if err != nil {
		return convaitest.MemorySeed{}, usagef("--memories %s: %v; want %s", path, err, memorySeedShape)
	}
	return seed, nil
}

// decodeMemorySeed reads one JSON object of the seed's members, nothing else.
func decodeMemorySeed(data []byte) (convaitest.MemorySeed, error) {
	var seed convaitest.MemorySeed
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&seed); err != nil {
		return seed, err
	}
	if dec.More() {
		return seed, errors.New("data after the JSON object")
	}
	return seed, nil
}

// memoryReport is the body of GET /_fake/memories.
type memoryReport struct {
	Character string              `json:"character"`
	EndUser   string              `json:"end_user"`
	Memories  []convaitest.Memory `json:"memories"`
	Pending   bool                `json:"delete_all_pending"`
}

// memoryRoutes adds the fake's control endpoints for long-term memory: seed end users,
// memories and what the session lists say of is_added_to_memory (POST /_fake/memories, a
// MemorySeed), look at one end user's memories with a
// character (GET /_fake/memories?character=C&end_user=U) and at the end users (GET
// /_fake/end-users).
func memoryRoutes(mux *http.ServeMux, fake *convaitest.Fake) {
	mux.HandleFunc("POST /_fake/memories", func(w http.ResponseWriter, r *http.Request) {
		data, err := readAllBounded(w, r, maxMemorySeed)
		if err != nil {
			writeStatus(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the seed is over %d bytes or could not be read", maxMemorySeed))
			return
		}
		seed, err := decodeMemorySeed(data)
		if err == nil {
			err = fake.AddMemories(seed)
		}
		if err != nil {
			writeStatus(w, http.StatusBadRequest, fmt.Sprintf("%v; want %s", err, memorySeedShape))
			return
		}
		writeJSON(w, map[string]int{"memories": fake.Stats().Memories, "end_users": len(fake.EndUsers())})
	})
	mux.HandleFunc("GET /_fake/memories", func(w http.ResponseWriter, r *http.Request) {
		char, user := r.URL.Query().Get("character"), r.URL.Query().Get("end_user")
		mems := fake.Memories(char, user)
		if mems == nil {
			mems = []convaitest.Memory{}
		}
		writeJSON(w, memoryReport{Character: char, EndUser: user, Memories: mems, Pending: fake.DeleteAllPending(char, user)})
	})
	mux.HandleFunc("GET /_fake/end-users", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string][]string{"end_users": fake.EndUsers()})
	})
}

// readAllBounded reads a control request's body, at most limit bytes.
func readAllBounded(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// writeStatus answers a control request with code and {"error": msg}.
func writeStatus(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
