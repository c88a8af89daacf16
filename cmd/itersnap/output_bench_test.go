package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/itersnap/itersnap/store"
)

// BenchmarkShowFormats runs `show latest` and `show latest --fds` on a
// stored 20,000-thread snapshot in each record format, to stdout discarded:
// the cost of reading the snapshot plus laying out and writing its records.
func BenchmarkShowFormats(b *testing.B) {
	path := filepath.Join(b.TempDir(), "itersnap.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range syntheticHost(20000) {
		if _, err := db.Put(s); err != nil {
			b.Fatal(err)
		}
	}
	db.Close()
	getenv := func(k string) string {
		if k == "ITERSNAP_DB" {
			return path
		}
		return ""
	}
	for _, view := range []string{"--tasks", "--fds"} {
		for _, format := range []string{"table", "csv", "json"} {
			b.Run(view[2:]+"/"+format, func(b *testing.B) {
				for b.Loop() {
					if code := run(context.Background(), []string{"show", "latest", view, "--format", format}, io.Discard, io.Discard, getenv); code != 0 {
						b.Fatalf("exit %d", code)
					}
				}
			})
		}
	}
}
