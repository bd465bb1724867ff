//go:build race

package convai_test

// bigList is the length of the large list in TestListLargeListFlatMemory: smaller under the race
// detector, which makes decoding about seven times slower; without it the test streams a million.
const bigList = 100_000
