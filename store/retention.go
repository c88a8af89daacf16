package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Policy says which snapshots to keep; the rest are removed. A snapshot is
// kept when any rule keeps it. The zero Policy keeps nothing, and Forget
// refuses it.
type Policy struct {
	Last   int           // the N latest snapshots
	Within time.Duration // snapshots taken at most this long before the latest one
	Hourly int           // the latest snapshot of each of the N latest hours that have one
	Daily  int           // the latest snapshot of each of the N latest days that have one
}

// Empty reports whether p keeps nothing.
func (p Policy) Empty() bool { return p.Last <= 0 && p.Within <= 0 && p.Hourly <= 0 && p.Daily <= 0 }

// Decision is what a policy does with one snapshot, and why.
type Decision struct {
	Entry
	Keep    bool
	Reasons []string // why it is kept: "last 3", "within 24h0m0s", "hourly 2026-11-27 03h", "daily 2026-11-27"
}

// Plan applies p to entries (in ID order) and returns a decision for each.
// Times are bucketed into hours and days in loc. Within counts back from
// the latest snapshot, not from now, so that forgetting on a copy of an old
// database does not remove everything. Every rule keeps the latest
// snapshot.
func Plan(entries []Entry, p Policy, loc *time.Location) []Decision {
	out := make([]Decision, len(entries))
	for i, e := range entries {
		out[i].Entry = e
	}
	if len(entries) == 0 {
		return out
	}
	latest := entries[len(entries)-1].Meta.Time
	hours := map[string]bool{}
	days := map[string]bool{}
	for i := len(out) - 1; i >= 0; i-- {
		d := &out[i]
		t := d.Meta.Time.In(loc)
		if newer := len(out) - 1 - i; newer < p.Last {
			d.Reasons = append(d.Reasons, "last "+strconv.Itoa(p.Last))
		}
		if p.Within > 0 && latest.Sub(d.Meta.Time) <= p.Within {
			d.Reasons = append(d.Reasons, "within "+p.Within.String())
		}
		if hour := t.Format("2006-01-02 15h"); p.Hourly > 0 && !hours[hour] && len(hours) < p.Hourly {
			hours[hour] = true
			d.Reasons = append(d.Reasons, "hourly "+hour)
		}
		if day := t.Format("2006-01-02"); p.Daily > 0 && !days[day] && len(days) < p.Daily {
			days[day] = true
			d.Reasons = append(d.Reasons, "daily "+day)
		}
		d.Keep = len(d.Reasons) > 0
	}
	return out
}

// Forget removes the snapshots p does not keep, in one transaction, and the
// chunks and stacks no remaining snapshot uses; their pages are reused by
// later takes (Compact hands them back to the filesystem). With dryRun it
// only says what it would do. The decisions are in ID order.
func (db *DB) Forget(p Policy, loc *time.Location, dryRun bool) ([]Decision, error) {
	if p.Empty() {
		return nil, errors.New("forget: an empty policy keeps nothing: set Last, Within, Hourly or Daily")
	}
	var plan []Decision
	apply := func(tx *bolt.Tx) error {
		entries, err := db.entries(tx)
		if err != nil {
			return err
		}
		plan = Plan(entries, p, loc)
		if dryRun {
			return nil
		}
		removed := 0
		metas, records := tx.Bucket(bucketSnapMeta), tx.Bucket(bucketRecords)
		for _, d := range plan {
			if d.Keep {
				continue
			}
			if err := metas.Delete(idKey(d.ID)); err != nil {
				return err
			}
			if err := deleteRecord(records, d.ID); err != nil {
				return err
			}
			removed++
		}
		if removed == 0 {
			return nil
		}
		return db.sweep(tx)
	}
	var err error
	if dryRun {
		err = db.view(apply)
	} else {
		err = db.update(apply)
	}
	if err != nil {
		return nil, err
	}
	return plan, nil
}

// sweep deletes the chunks and stacks that no snapshot's record refers to.
// Records list both outside their packed part, so nothing is inflated.
func (db *DB) sweep(tx *bolt.Tx) error {
	liveChunks, liveStacks := map[uint64]bool{}, map[uint64]bool{}
	err := forEachRecord(tx.Bucket(bucketRecords), func(id uint64, v []byte) error {
		if len(v) > 0 && v[0] == encRecordV1 {
			ids, _, err := decodeRecordV1Head(v)
			if err != nil {
				return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
			}
			for _, s := range ids {
				liveStacks[s] = true
			}
			return nil
		}
		r, err := decodeRecordHead(v)
		if err != nil {
			return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
		}
		for _, c := range r.chunkIDs {
			liveChunks[c] = true
		}
		for _, s := range r.stackIDs {
			liveStacks[s] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if chunks := tx.Bucket(bucketChunks); chunks != nil {
		if err := deleteUnused(chunks, liveChunks, nil); err != nil {
			return err
		}
	}
	byHash := tx.Bucket(bucketStackHash)
	return deleteUnused(tx.Bucket(bucketStacks), liveStacks, func(v []byte) error {
		// The index key is the hash of the frames, the value less its
		// version byte (internStacks).
		if len(v) == 0 {
			return nil
		}
		hash := sha256.Sum256(v[1:])
		return byHash.Delete(hash[:])
	})
}

// deleteUnused deletes b's keys that are not in live, calling also with
// each deleted value first. Keys are collected before deleting: deleting
// under a cursor can skip keys.
func deleteUnused(b *bolt.Bucket, live map[uint64]bool, also func(v []byte) error) error {
	var dead [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if id, ok := keyID(k); ok && !live[id] {
			if also != nil {
				if err := also(v); err != nil {
					return err
				}
			}
			dead = append(dead, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
