package convai

// DecodeList is decodeList, for the tests of the list parser's memory.
var DecodeList = decodeList
