package store

import (
	"fmt"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Resolve turns a snapshot reference into an ID: "7", "latest", or
// "latest~N", the snapshot N before the latest in ID order. N counts
// snapshots that exist, so gaps left by deleted snapshots are skipped, and
// latest~0 is latest.
func (db *DB) Resolve(ref string) (uint64, error) {
	id, back, isLatest, ok := parseRef(ref)
	if !ok && allDigits(ref) && ref != "0" && strings.Trim(ref, "0") != "" {
		return 0, newError(ErrBadRef, nil, "%s is not a snapshot ID: IDs are below 2^64", ref)
	}
	if !ok {
		return 0, newError(ErrBadRef, nil, "bad snapshot reference %q: want an ID (1, 2, ...), latest or latest~N", ref)
	}
	err := db.view(func(tx *bolt.Tx) error {
		metas := tx.Bucket(bucketSnapMeta)
		if !isLatest {
			if metas == nil || metas.Get(idKey(id)) == nil {
				return notFound(tx, id)
			}
			return nil
		}
		if metas == nil {
			return noSnapshots()
		}
		c := metas.Cursor()
		k, _ := c.Last()
		if k == nil {
			return noSnapshots()
		}
		for i := uint64(0); i < back && k != nil; i++ {
			k, _ = c.Prev()
		}
		if k == nil {
			n := count(tx)
			return newError(ErrNotFound, nil, "%s: only %d snapshot%s (the oldest is latest~%d)", ref, n, plural(n), n-1)
		}
		var valid bool
		if id, valid = keyID(k); !valid {
			return db.corrupt(fmt.Errorf("snapshot key of %d bytes", len(k)))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// parseRef checks a reference's syntax: digits only (no sign, no spaces), an
// ID of at least 1 that fits in a uint64 (NextSequence's IDs do). An
// all-digit N too large for uint64 is well formed: latest~N goes back
// past the first snapshot.
func parseRef(ref string) (id, back uint64, isLatest, ok bool) {
	if ref == "latest" {
		return 0, 0, true, true
	}
	if n, found := strings.CutPrefix(ref, "latest~"); found {
		if !allDigits(n) {
			return 0, 0, false, false
		}
		back, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			back = ^uint64(0)
		}
		return 0, back, true, true
	}
	if !allDigits(ref) {
		return 0, 0, false, false
	}
	id, err := strconv.ParseUint(ref, 10, 64)
	return id, 0, false, err == nil && id != 0
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Range returns the IDs of the snapshots from min(a, b) to max(a, b),
// inclusive, in ascending order; none is an empty slice, not an error.
func (db *DB) Range(a, b uint64) ([]uint64, error) {
	lo, hi := min(a, b), max(a, b)
	ids := []uint64{}
	err := db.view(func(tx *bolt.Tx) error {
		metas := tx.Bucket(bucketSnapMeta)
		if metas == nil {
			return nil
		}
		c := metas.Cursor()
		for k, _ := c.Seek(idKey(lo)); k != nil; k, _ = c.Next() {
			id, ok := keyID(k)
			if !ok {
				return db.corrupt(fmt.Errorf("snapshot key of %d bytes", len(k)))
			}
			if id > hi {
				break
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// notFound says which snapshots do exist, so the user can pick one.
func notFound(tx *bolt.Tx, id uint64) error {
	metas := tx.Bucket(bucketSnapMeta)
	n := count(tx)
	if n == 0 {
		return newError(ErrNotFound, nil, "snapshot %d not found: no snapshots yet: run `itersnap take`", id)
	}
	c := metas.Cursor()
	firstKey, _ := c.First()
	lastKey, _ := c.Last()
	first, _ := keyID(firstKey)
	last, _ := keyID(lastKey)
	var has string
	switch {
	case n == 1:
		has = fmt.Sprintf("only snapshot %d", first)
	case last-first+1 == uint64(n):
		has = fmt.Sprintf("%d–%d", first, last)
	default:
		has = fmt.Sprintf("%d snapshots between %d and %d", n, first, last)
	}
	return newError(ErrNotFound, nil, "snapshot %d not found (database has %s)", id, has)
}

func noSnapshots() error {
	return newError(ErrNotFound, nil, "no snapshots yet: run `itersnap take`")
}

// count is the number of snapshots; Stats walks pages, not keys.
func count(tx *bolt.Tx) int {
	metas := tx.Bucket(bucketSnapMeta)
	if metas == nil {
		return 0
	}
	return metas.Stats().KeyN
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
