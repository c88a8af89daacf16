package store

import (
	"encoding/binary"
	"os"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the bucket layout this itersnap writes. A database with
// a newer one is refused; an older one is migrated on a read-write open.
const SchemaVersion = 3

// Bucket names, declared once. Snapshot and stack keys are big-endian
// uint64s from NextSequence, so cursor order is ID order.
var (
	// bucketMeta holds keySchemaVersion.
	bucketMeta       = []byte("meta")
	keySchemaVersion = []byte("schema_version")

	// bucketSnapMeta: snapshot ID -> snapshot.Meta. Apart from the records
	// so that `list` decodes a few hundred bytes per snapshot, not the
	// whole snapshot. Its keys define which snapshots exist.
	bucketSnapMeta = []byte("snapmeta")
	// bucketRecords: snapshot ID -> tasks, fds and stack references;
	// since schema 3 in parts under ID‖part (parts.go).
	bucketRecords = []byte("records")
	// bucketStacks: stack ID -> frames. Each distinct stack once in the
	// whole database: stacks repeat across threads and across snapshots.
	bucketStacks = []byte("stacks")
	// bucketStackHash: SHA-256 of a stack's encoded frames -> stack ID,
	// the interning index. Records refer to stacks by the ID (a varint of a
	// byte or two), not by the 32-byte hash, which would not compress.
	bucketStackHash = []byte("stackhash")
	// bucketChunks: chunk ID -> one process's threads, or its fds
	// (schema 2). Consecutive snapshots that find a process unchanged
	// refer to the same chunk: on a host where little changes, a snapshot
	// stores little more than which chunks it is made of.
	bucketChunks = []byte("chunks")
)

// migrations[v] upgrades a database at schema version v to v+1. Version 0 is
// a bbolt file without itersnap's buckets: a new file (or one whose creating
// take was killed between bbolt's initialization and the first commit).
var migrations = map[uint64]func(*bolt.Tx) error{
	0: createV1,
	1: createV2,
	2: splitRecords,
}

func createV1(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketSnapMeta, bucketRecords, bucketStacks, bucketStackHash} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// createV2 adds process chunks. Version 1 records stay as they are and are
// still read (decode.go); new records refer to chunks.
func createV2(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketChunks)
	return err
}

// checkSchema refuses files that are not whole itersnap databases, and
// brings an older schema up to date on a read-write open, in one
// transaction with the version it ends at.
func (db *DB) checkSchema(readOnly bool) error {
	version, err := db.checkedVersion(nil)
	switch {
	case err != nil:
		return err
	case version == SchemaVersion:
		return nil
	case version > SchemaVersion:
		return db.newerSchema(version)
	case readOnly:
		// Every older layout is readable as it is (readers treat missing
		// buckets as empty), so a copy of an old database can be looked
		// at without write access; only a writer migrates.
		return nil
	}
	return db.update(func(tx *bolt.Tx) error {
		version, err := db.schemaVersion(tx)
		if err != nil {
			return err
		}
		for ; version < SchemaVersion; version++ {
			if err := migrations[version](tx); err != nil {
				return newError(ErrUnreadable, err, "migrate database %s from schema version %d: %v", db.path, version, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, SchemaVersion))
	})
}

// checkedVersion walks the file's pages (store/pages.go), all of them in
// use or, with only set, the root bucket's and that bucket's, and then
// reads the schema version through them.
func (db *DB) checkedVersion(only []byte) (version uint64, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		if err := db.checkSize(tx); err != nil {
			return err
		}
		if problems, err := db.walkPages(tx, false, only); err != nil {
			return err
		} else if len(problems) > 0 {
			return newCorrupt(nil, "database %s is corrupt: %s", db.path, problems[0])
		}
		var err error
		version, err = db.schemaVersion(tx)
		return err
	})
	return version, err
}

func (db *DB) newerSchema(version uint64) error {
	return newError(ErrUnreadable, nil, "database schema version %d is newer than this itersnap supports (%d): upgrade itersnap to read %s", version, SchemaVersion, db.path)
}

// schemaVersion reads meta/schema_version: 0 for a bbolt file with no
// buckets at all; a bbolt file with other buckets is somebody else's.
func (db *DB) schemaVersion(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		if k, _ := tx.Cursor().First(); k != nil {
			return 0, newPathError(db.path, "%s is a bbolt database but not itersnap's (it has a %q bucket)", db.path, k)
		}
		return 0, nil
	}
	v := meta.Get(keySchemaVersion)
	if len(v) != 8 {
		return 0, newCorrupt(nil, "database %s is corrupt: schema version is %d bytes, want 8", db.path, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// checkSize refuses a file shorter than bbolt's own high-water mark: a copy
// cut short, whose missing pages would fault when read.
func (db *DB) checkSize(tx *bolt.Tx) error {
	info, err := os.Stat(db.path)
	if err != nil {
		return newError(ErrUnreadable, err, "cannot open database %s: %v", db.path, pathErr(err))
	}
	if info.Size() < tx.Size() {
		return newCorrupt(nil, "database %s is truncated (%d of %d bytes): restore it from a full copy", db.path, info.Size(), tx.Size())
	}
	return nil
}

// splitRecords marks schema 3, where new records are stored in parts
// (parts.go). Records written whole stay as they are and are still read;
// the version keeps an older itersnap, which would not find the parts,
// from taking the database for corrupt.
func splitRecords(*bolt.Tx) error { return nil }
