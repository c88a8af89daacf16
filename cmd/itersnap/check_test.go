package main

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// leafPage returns the first leaf page in use in the bbolt file at path.
func leafPage(t *testing.T, path string) int {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil) // read-write: the freelist is loaded
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	page := 0
	err = bdb.View(func(tx *bolt.Tx) error {
		for id := 2; page == 0; {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			if info.Type == "leaf" {
				page = id
			}
			id += 1 + info.OverflowCount
		}
		return nil
	})
	if err != nil || page == 0 {
		t.Fatalf("no leaf page in %s: %v", path, err)
	}
	return page
}

// TestCheckAndDamage runs real itersnap processes on a sound database and
// on damaged copies: check passes the sound one and fails each damaged one
// with exit 10, a line per problem on stdout and one on stderr; take into a
// damaged one never exits 0, and list on a damaged file says so.
func TestCheckAndDamage(t *testing.T) {
	sound := recordedDB(t)
	data, err := os.ReadFile(sound)
	if err != nil {
		t.Fatal(err)
	}
	r := startCLI(t, "check", "--db", sound).wait(t)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "database "+sound+" is sound: 3 snapshots") || r.stderr != "" {
		t.Errorf("check of a sound database: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	pageSize := os.Getpagesize()
	randomPage := append([]byte(nil), data...)
	leaf := leafPage(t, sound)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := leaf * pageSize; i < (leaf+1)*pageSize; i++ {
		randomPage[i] = byte(rnd.Uint32())
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		data     []byte
		damage   func(t *testing.T, path string) // after writing data
		want     string                          // in check's stdout
		listToo  bool                            // list refuses it too
		stderrIn string                          // take's stderr line holds
	}{
		{"page of random bytes", randomPage, nil, "is not a bbolt page", true, "is not a bbolt page"},
		{"truncated file", data[:len(data)*2/3], nil, "truncated", true, "truncated"},
		{"record that does not decode", data, func(t *testing.T, path string) {
			// The latest snapshot's record, which the next take builds on.
			bdb, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			err = bdb.Update(func(tx *bolt.Tx) error {
				key := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, 3), 0)
				return tx.Bucket([]byte("records")).Put(key, []byte("\x02not a record"))
			})
			if err != nil {
				t.Fatal(err)
			}
		}, "snapshot 3: ", false, "corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.damage != nil {
				tc.damage(t, path)
			}
			r := startCLI(t, "check", "--db", path).wait(t)
			if r.code != exitDB || !strings.Contains(r.stdout, tc.want) {
				t.Errorf("check: exit %d, stdout %q, want %d and %q", r.code, r.stdout, exitDB, tc.want)
			}
			checkOneLine(t, r.stderr, "is not sound")

			// --pid: this test process, whose stacks and fds root can read,
			// so that a take that succeeds warns of nothing.
			r = startCLI(t, "take", "--db", path, "--collector", "procfs", "--pid", strconv.Itoa(os.Getpid())).wait(t)
			if r.code == 0 || r.code != exitDB || r.stdout != "" {
				t.Errorf("take: exit %d, stdout %q, want %d and no ID", r.code, r.stdout, exitDB)
			}
			checkOneLine(t, r.stderr, tc.stderrIn)

			if tc.listToo {
				r = startCLI(t, "list", "--db", path).wait(t)
				if r.code != exitDB || r.stdout != "" {
					t.Errorf("list: exit %d, stdout %q, want %d", r.code, r.stdout, exitDB)
				}
				checkOneLine(t, r.stderr, "itersnap check lists every problem")
			}
		})
	}
}
