// Package secret keeps secrets in their place: it reads secret files with limits (a few KiB
// from a regular file, nothing else) and removes secrets from text in the forms they are likely
// to take there (as given, in another case, URL-encoded, base64-encoded, and for an API key any
// long enough piece of it).
package secret
