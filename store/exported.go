package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// keyExportedThrough, in the meta bucket, is the highest snapshot ID that
// `export --new` has written: snapshot IDs only grow (NextSequence), so
// every snapshot after it is new to the export. One key, not a mark per
// snapshot, so retention has nothing to clean up, and an older itersnap,
// which does not know the key, reads and writes the database as before.
var keyExportedThrough = []byte("exported_through")

// ExportedThrough returns the highest snapshot ID marked exported, 0 when
// none is.
func (db *DB) ExportedThrough() (uint64, error) {
	var id uint64
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		id, err = db.exportedThrough(tx)
		return err
	})
	return id, err
}

func (db *DB) exportedThrough(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keyExportedThrough)
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, db.corrupt(fmt.Errorf("exported_through is %d bytes, want 8", len(v)))
}

// MarkExported records that every snapshot up to id has been exported. The
// mark never moves back: of two exports that ran at once, the one that
// went further wins. The database must be open read-write.
func (db *DB) MarkExported(id uint64) error {
	return db.update(func(tx *bolt.Tx) error {
		cur, err := db.exportedThrough(tx)
		if err != nil || cur >= id {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyExportedThrough, binary.BigEndian.AppendUint64(nil, id))
	})
}
