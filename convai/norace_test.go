//go:build !race

package convai_test

// bigList is the length of the large list in TestListLargeListFlatMemory.
const bigList = 1_000_000
