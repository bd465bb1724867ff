package migrations

// DeletionIDStride spaces the deletion IDs of recording v2 (migration 004): the session at
// position ord (from 1) of claim c is deletion c*DeletionIDStride + ord in retention.deletions,
// and a deletion ID d names claim d/DeletionIDStride, position d%DeletionIDStride. A claim holds
// at most 10,000 sessions, fewer than the stride, and claim IDs start past the v1 rows' IDs, so
// no two deletions share an ID.
//
// Every Go place that builds or splits a deletion ID reads this constant or DeletionID. The SQL
// functions and views write the number itself (a SQL function call per row costs too much on
// the hot paths); the header of schema.sql lists where. TestDeletionIDIsOne (the views) and
// source.TestDeletedRuleIsOne (the functions) fail if a SQL copy and this constant disagree.
const DeletionIDStride = 16384

// DeletionID is the deletion ID of the session at position ord (from 1) of claim claimID. ord 0
// gives the claim's own base, below all of its sessions.
func DeletionID(claimID int64, ord int32) int64 {
	return claimID*DeletionIDStride + int64(ord)
}
