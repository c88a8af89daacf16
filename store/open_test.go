package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// openBoth opens path read-only and read-write, in that order, and returns
// both errors (closing any DB that did open).
func openBoth(t *testing.T, path string, timeout time.Duration) (ro, rw error) {
	t.Helper()
	for _, readOnly := range []bool{true, false} {
		db, err := Open(path, Options{ReadOnly: readOnly, Timeout: timeout})
		if err == nil {
			db.Close()
		}
		if readOnly {
			ro = err
		} else {
			rw = err
		}
	}
	return ro, rw
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "itersnap.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, 99))
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}

	ro, rw := openBoth(t, path, 0)
	for _, err := range []error{ro, rw} {
		if !errors.Is(err, ErrUnreadable) || !strings.Contains(fmt.Sprint(err), fmt.Sprintf("schema version 99 is newer than this itersnap supports (%d): upgrade itersnap", SchemaVersion)) {
			t.Errorf("Open of a schema 99 database: %v, want ErrUnreadable naming version 99", err)
		}
	}
}

func TestCorruptFilesRefused(t *testing.T) {
	valid := filepath.Join(t.TempDir(), "valid.db")
	db, err := Open(valid, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 20; i++ {
		mustPut(t, db, syntheticSnapshot(200, 10, 1500, i))
	}
	db.Close()
	whole, err := os.ReadFile(valid)
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 64<<10)
	rnd := rand.New(rand.NewPCG(7, 7))
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}

	for name, content := range map[string][]byte{
		"random":       random,
		"short random": random[:100],
		"zero-length":  {},
		"text":         []byte("this is not a database\n"),
		"half":         whole[:len(whole)/2],
		"first pages":  whole[:3*4096],
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "itersnap.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			ro, rw := openBoth(t, path, 200*time.Millisecond)
			if !errors.Is(ro, ErrUnreadable) {
				t.Errorf("read-only Open: %v, want ErrUnreadable", ro)
			}
			if !errors.Is(rw, ErrUnreadable) {
				t.Errorf("read-write Open: %v, want ErrUnreadable", rw)
			}
			t.Logf("read-only: %v", ro)
			t.Logf("read-write: %v", rw)
			for _, err := range []error{ro, rw} {
				if err != nil && !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the path", err)
				}
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(content) {
				t.Errorf("Open changed the file (%d bytes, was %d)", len(after), len(content))
			}
		})
	}
}

// TestCorruptPages: pages scribbled over, or cut off, under an open
// database make reads fail with ErrUnreadable, never a panic or a fault.
// The read-only mapping is shared, so writes to the file show through it.
func TestCorruptPages(t *testing.T) {
	for _, damage := range []string{"scribbled", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "itersnap.db")
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []uint64
			for i := uint64(0); i < 30; i++ {
				ids = append(ids, mustPut(t, db, syntheticSnapshot(200, 10, 1500, i)))
			}
			db.Close()

			db, err = Open(path, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := f.Stat()
			if damage == "truncated" {
				err = f.Truncate(2 * 4096) // the meta pages alone
			} else {
				garbage := make([]byte, info.Size()-2*4096) // keep the meta pages
				rnd := rand.New(rand.NewPCG(9, 9))
				for i := range garbage {
					garbage[i] = byte(rnd.Uint32())
				}
				_, err = f.WriteAt(garbage, 2*4096)
			}
			f.Close()
			if err != nil {
				t.Fatal(err)
			}

			_, err = db.List()
			t.Logf("List: %v", err)
			if !errors.Is(err, ErrUnreadable) {
				t.Errorf("List: %v, want ErrUnreadable", err)
			}
			for _, id := range ids {
				if _, err := db.Get(id); !errors.Is(err, ErrUnreadable) {
					t.Errorf("Get(%d): %v, want ErrUnreadable", id, err)
				}
			}
			for _, ref := range []string{"latest~3", "latest", "4"} {
				if _, err := db.Resolve(ref); !errors.Is(err, ErrUnreadable) {
					t.Errorf("Resolve(%s): %v, want ErrUnreadable", ref, err)
				}
			}
			if _, err := db.Range(1, 30); !errors.Is(err, ErrUnreadable) {
				t.Errorf("Range: %v, want ErrUnreadable", err)
			}
		})
	}
}

func TestCorruptRecord(t *testing.T) {
	db := openTestDB(t)
	id := mustPut(t, db, sampleSnapshot())
	for name, value := range map[string][]byte{
		"garbage":       []byte("\x01garbage"),
		"empty":         {},
		"newer version": {9, 0},
		"cut short":     nil, // filled in below
	} {
		t.Run(name, func(t *testing.T) {
			err := db.bolt.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketRecords)
				if value == nil {
					good := getRecord(b, id)
					value = append([]byte(nil), good[:len(good)/2]...)
				}
				return b.Put(idKey(id), value)
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.Get(id)
			if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), db.Path()) {
				t.Errorf("Get: %v, want ErrUnreadable naming the path", err)
			}
			if name == "newer version" && !strings.Contains(fmt.Sprint(err), "upgrade itersnap") {
				t.Errorf("Get: %v, want a hint to upgrade", err)
			}
		})
	}
}

func TestReadOnlyMissing(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{
		filepath.Join(dir, "itersnap.db"),        // the directory exists
		filepath.Join(dir, "sub", "itersnap.db"), // it does not
	} {
		_, err := Open(path, Options{ReadOnly: true})
		if !errors.Is(err, ErrUnreadable) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("read-only Open of a missing file: %v, want ErrUnreadable", err)
		}
		want := "no database at " + path // neutral: the command line adds its flag
		if err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("read-only Open created files: %v (%v)", entries, err)
	}
}

func TestReadOnlyNeverWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "itersnap.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, db, sampleSnapshot())
	db.Close()
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	db, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open of a 0400 file: %v", err)
	}
	if _, err := db.Get(1); err != nil {
		t.Errorf("Get: %v", err)
	}
	if _, err := db.Put(sampleSnapshot()); err == nil {
		t.Errorf("Put on a read-only database succeeded")
	}
	db.Close()
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Errorf("read-only use changed the file")
	}
}

func TestLocked(t *testing.T) {
	holder := openTestDB(t)
	for _, readOnly := range []bool{true, false} {
		done := make(chan error, 1)
		go func() {
			db, err := Open(holder.Path(), Options{ReadOnly: readOnly, Timeout: 200 * time.Millisecond})
			if err == nil {
				db.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrLocked) {
				t.Errorf("Open(ReadOnly: %v) of a locked database: %v, want ErrLocked", readOnly, err)
			}
			if err != nil && !strings.Contains(err.Error(), "locked by another itersnap (waited 200ms)") {
				t.Errorf("error %q does not say what waited", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Open(ReadOnly: %v) of a locked database did not return", readOnly)
		}
	}
}

func TestReadersShareTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "itersnap.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	a, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path, Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	b.Close()
	if _, err := Open(path, Options{Timeout: 200 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("writer while a reader is open: %v, want ErrLocked", err)
	}
}

func TestModes(t *testing.T) {
	base := t.TempDir()
	path := filepath.Join(base, "var", "lib", "itersnap", "itersnap.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, db)
	db.Close()
	for p, want := range map[string]os.FileMode{
		path:                           0o600,
		filepath.Dir(path):             0o700 | os.ModeDir,
		filepath.Join(base, "var"):     0o700 | os.ModeDir,
		filepath.Join(base, "var/lib"): 0o700 | os.ModeDir,
	} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, info.Mode(), want)
		}
	}

	// An existing directory keeps its mode.
	shared := filepath.Join(base, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(shared, 0o755)
	db, err = Open(filepath.Join(shared, "itersnap.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if info, _ := os.Stat(shared); info.Mode().Perm() != 0o755 {
		t.Errorf("Open changed an existing directory's mode to %v", info.Mode().Perm())
	}
}

func TestSchemaCreatedOnce(t *testing.T) {
	db := openTestDB(t)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketSnapMeta, bucketRecords, bucketStacks, bucketStackHash, bucketChunks} {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s missing", name)
			}
		}
		v := tx.Bucket(bucketMeta).Get(keySchemaVersion)
		if len(v) != 8 || binary.BigEndian.Uint64(v) != SchemaVersion {
			t.Errorf("schema_version = %x, want %d", v, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVersionZero: a bbolt file with no buckets (a take killed between
// bbolt's initialization and the first commit) reads as empty and is
// migrated by the next writer.
func TestVersionZero(t *testing.T) {
	path := filepath.Join(t.TempDir(), "itersnap.db")
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	bdb.Close()

	db, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	if entries, err := db.List(); err != nil || len(entries) != 0 {
		t.Errorf("List = %v, %v; want nothing", entries, err)
	}
	if _, err := db.Resolve("latest"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(latest) = %v, want ErrNotFound", err)
	}
	if _, err := db.Get(1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(1) = %v, want ErrNotFound", err)
	}
	db.Close()

	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("read-write Open: %v", err)
	}
	defer db.Close()
	if id := mustPut(t, db, &snapshot.Snapshot{}); id != 1 {
		t.Errorf("first ID %d, want 1", id)
	}
	checkConsistent(t, db)
}

func TestForeignBboltRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("key"))
		return err
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro, rw := openBoth(t, path, 0)
	for _, err := range []error{ro, rw} {
		if !errors.Is(err, ErrUnreadable) || !strings.Contains(fmt.Sprint(err), "not itersnap's") {
			t.Errorf("Open of another program's bbolt file: %v, want ErrUnreadable", err)
		}
	}
}

func TestOpenDirectory(t *testing.T) {
	ro, rw := openBoth(t, t.TempDir(), 0)
	for _, err := range []error{ro, rw} {
		if !errors.Is(err, ErrUnreadable) {
			t.Errorf("Open of a directory: %v, want ErrUnreadable", err)
		}
	}
}

// TestConcurrentCreate: takes racing to create a new database all succeed,
// one after the other; none sees the new file empty and refuses it.
func TestConcurrentCreate(t *testing.T) {
	for round := 0; round < 3; round++ {
		path := filepath.Join(t.TempDir(), "db", "itersnap.db")
		const takes = 6
		errs := make(chan error, takes)
		for i := 0; i < takes; i++ {
			go func() {
				db, err := Open(path, Options{})
				if err != nil {
					errs <- err
					return
				}
				_, err = db.Put(sampleSnapshot())
				db.Close()
				errs <- err
			}()
		}
		for i := 0; i < takes; i++ {
			if err := <-errs; err != nil {
				t.Errorf("concurrent take: %v", err)
			}
		}
		db, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		entries, err := db.List()
		db.Close()
		if err != nil || len(entries) != takes {
			t.Errorf("after %d concurrent takes: %d snapshots, %v", takes, len(entries), err)
		}
	}
}

// TestStaleCreatingFiles checks that a read-write open removes the
// temporary files a killed creation left, once they are a minute old, and
// leaves a fresh one (another take may be creating right now) alone.
func TestStaleCreatingFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "itersnap.db")
	stale, fresh := path+".creating.old", path+".creating.new"
	for _, name := range []string{stale, fresh} {
		if err := os.WriteFile(name, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale %s: %v, want it removed", stale, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh %s: %v, want it kept", fresh, err)
	}
	left, _ := filepath.Glob(path + ".creating.*")
	if len(left) != 1 {
		t.Errorf("temporary files after Open: %v, want only %s", left, fresh)
	}
}

// TestProbe: what a take asks before it collects. Probe creates a missing
// database and refuses what no Open could get (a file that is locked, not
// bbolt's, or of a newer schema), but walks only the pages the schema
// version is read through and leaves the rest to the commit's Open: a
// damaged leaf page of a bucket other than meta passes Probe and fails
// Open, and a damaged root bucket page fails both.
func TestProbe(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "new", "itersnap.db")
	if err := Probe(fresh, Options{}); err != nil {
		t.Fatalf("Probe of a missing database: %v", err)
	}
	db, err := Open(fresh, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open after Probe created it: %v", err)
	}
	if ids, err := db.List(); err != nil || len(ids) != 0 {
		t.Errorf("List of the probed database: %v, %v; want none", ids, err)
	}
	db.Close()

	holder := openTestDB(t)
	if err := Probe(holder.Path(), Options{Timeout: 200 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("Probe of a locked database: %v, want ErrLocked", err)
	}

	text := filepath.Join(dir, "text.db")
	if err := os.WriteFile(text, []byte("this is not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Probe(text, Options{}); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), text) {
		t.Errorf("Probe of a text file: %v, want ErrUnreadable naming it", err)
	}

	newer := filepath.Join(dir, "newer.db")
	db, err = Open(newer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, SchemaVersion+1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := Probe(newer, Options{}); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "is newer than this itersnap supports") {
		t.Errorf("Probe of a newer schema: %v, want ErrUnreadable saying so", err)
	}

	// The root bucket's page, and a leaf page of another bucket than meta
	// (whose few keys bbolt keeps inline, in the root bucket's page).
	path, data := checkTestDB(t)
	bdb, err := bolt.Open(path, 0o600, nil) // read-write: tx.Page needs the freelist
	if err != nil {
		t.Fatal(err)
	}
	var rootPage, leaf int
	err = bdb.View(func(tx *bolt.Tx) error {
		rootPage = int(tx.Cursor().Bucket().Root())
		if tx.Bucket(bucketMeta).Root() != 0 {
			return errors.New("the meta bucket is not inline")
		}
		for id := 2; leaf == 0; {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return fmt.Errorf("no leaf page outside the root bucket: %v", err)
			}
			if info.Type == "leaf" && id != rootPage {
				leaf = id
			}
			id += 1 + info.OverflowCount
		}
		return nil
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	pageSize := os.Getpagesize()
	damage := func(name string, page int) string {
		d := append([]byte(nil), data...)
		rnd := rand.New(rand.NewPCG(3, uint64(page)))
		for i := page * pageSize; i < (page+1)*pageSize; i++ {
			d[i] = byte(rnd.Uint32())
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, d, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	damaged := damage("damaged-leaf.db", leaf)
	if err := Probe(damaged, Options{}); err != nil {
		t.Errorf("Probe of a database with leaf page %d damaged: %v; that walk is the commit's Open's", leaf, err)
	}
	if db, err := Open(damaged, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			db.Close()
		}
		t.Errorf("Open of a database with leaf page %d damaged: %v, want ErrCorrupt", leaf, err)
	}
	if err := Probe(damage("damaged-root.db", rootPage), Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Probe of a database with root bucket page %d damaged: %v, want ErrCorrupt", rootPage, err)
	}
}
