// Package convai is the client for Convai's chat-history endpoints (delete, list, details) and
// its long-term memory endpoints (list, delete, delete-all, and the deletion of an end user). It
// owns the request (URL, headers, JSON body), the reading of the answer and its classification
// into what the caller should do next. It sends exactly one request per call (ListMemories one
// per page): retries, rate limiting and bisecting a batch belong to the caller.
//
// # Classification
//
// Only a 2xx whose body is a JSON object with a string "status" exactly "SUCCESSFULLY DELETED"
// (no other case, no surrounding space) is Confirmed, and only when it is unambiguous: the
// object has exactly one member whose name folds to "status"; no member at any depth whose name
// says something failed (failed_ids, errors, ERROR, failed, rejected, not_deleted, ...) carries
// a value other than null, false, 0, "", [] or {}; and no member at any depth whose name speaks
// of deletion or success (deleted, deleted_count, success, ok, removed, ...) says none (null,
// false, a number not above 0, "", "false", "0", "no", "none", [] or {}), as in
// {"status":"SUCCESSFULLY DELETED","deleted":0}. Every other answer is one of:
//
//   - Retryable: network errors, timeouts, a cancelled context, 408, 429, 5xx, and a 2xx that is
//     not a confirmation (the deletion may or may not have happened; deleting again is harmless).
//   - AuthRejected: 401 and 403.
//   - Permanent: any other 4xx, and input Delete refuses to send.
//
// Statuses the API does not document in any of these ranges (1xx, 3xx, and anything outside
// 100-599) are Retryable with a Detail starting "unexpected status N". Redirects are never
// followed: a 3xx usually means a wrong BaseURL, and following it could send the API key to
// another host. Treating them as Retryable errs on the side of never claiming a deletion that
// was not confirmed; the caller's retry budget bounds the cost.
//
// # Long-term memory
//
// Convai documents the memory endpoints only through its SDKs, marked beta: POST with a JSON
// body and the same CONVAI-API-KEY header, under Config.MemoryBaseURL (default BaseURL).
// ListMemories, DeleteMemory, DeleteAllMemories and DeleteEndUser say in their comments what
// they assume of the answers. Their statuses are classified as for Delete (401 and 403
// AuthRejected, 403 being a character the key may not touch; 408, 429 and 5xx Retryable; other
// 4xx Permanent), except a 404: Permanent, wrapping ErrMemoryUnavailable ("this account or API
// does not offer long-term memory", not a failure to delete chat history), or ErrMemoryNotFound
// when the body says with a known text that the memory or end user does not exist. Deleting
// every memory is asynchronous: a Confirmed DeleteAllMemories or DeleteEndUser says the API
// accepted it, and only an empty ListMemories afterwards says the memories are gone. No memory's
// text is ever kept or quoted.
//
// # Secrets
//
// The API key is only ever written into the request header. It never appears in an error, a
// Result, or in the fmt, slog or JSON output of a Config or a Client. A Detail never quotes an
// answer's body, which may echo the key in an encoding no redaction knows: it says what was
// classified (the status and, for a 2xx, why it is not a confirmation), plus either an error text
// from a short list of known ones (such as "Invalid API key provided.") or what kind of body it
// was ("non-JSON body of 54 bytes", "JSON body without a known message"). As a second guard,
// every Detail and error message has the key and Config.Secrets redacted ("[redacted]") in
// every form internal/secret knows.
package convai
