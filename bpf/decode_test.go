//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unsafe"
)

var update = flag.Bool("update", false, "rewrite the fuzz seeds in testdata/fuzz from a real run")

// The fuzz targets feed the decoders what the iterators could never write
// and check that they return an error instead of panicking, and that what
// they accept is exactly the input: records laid end to end, each followed
// by the bytes its length field announces.
//
// The seeds in testdata/fuzz come from a real run (TestRealRecords with
// -update) and its truncations; `make fuzz` runs each target briefly.

func FuzzDecodeTasks(f *testing.F) {
	var rec TaskRecord
	rec.Tid, rec.Pid = 7, 7
	for _, n := range []int32{0, -14, 8, 7, 1016, 1 << 30, -1 << 31} {
		rec.StackBytes = n
		f.Add(append(raw(&rec), make([]byte, 16)...))
	}
	rec.StackBytes, rec.NrSyms = 8, 2
	sym := SymbolRecord{Addr: 1, SymBytes: 3}
	withSyms := append(append(append(raw(&rec), make([]byte, 8)...), raw(&sym)...), "abc"...)
	sym.SymBytes = -22
	f.Add(append(withSyms, raw(&sym)...))
	rec.NrSyms, rec.NrCgroups = 0, 3
	root, child := CgroupRecord{Id: 1}, CgroupRecord{Id: 9, ParentId: 1, NameBytes: 4}
	withCgroups := append(append(append(raw(&rec), make([]byte, 8)...), raw(&root)...), raw(&child)...)
	withCgroups = append(withCgroups, "init"...)
	for _, n := range []int32{-14, 255, 256, 1 << 30} {
		bad := CgroupRecord{Id: 10, ParentId: 9, NameBytes: n}
		f.Add(append(withCgroups, raw(&bad)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var again []byte
		err := decodeTasks(data, TaskVisitor{Task: func(rec *TaskRecord, stack []uint64) {
			if want := max(0, int(rec.StackBytes)) / 8; len(stack) != want {
				t.Fatalf("tid %d: %d frames for %d stack bytes", rec.Tid, len(stack), rec.StackBytes)
			}
			again = append(again, raw(rec)...)
			for _, a := range stack {
				again = binary.LittleEndian.AppendUint64(again, a)
			}
		}, Symbol: func(rec *SymbolRecord, text []byte) {
			if (text == nil) != (rec.SymBytes < 0) || len(text) != max(0, int(rec.SymBytes)) {
				t.Fatalf("symbol %q for %d symbol bytes", text, rec.SymBytes)
			}
			again = append(append(again, raw(rec)...), text...)
		}, Cgroup: func(rec *CgroupRecord, name []byte) {
			if (name == nil) != (rec.NameBytes < 0) || len(name) != max(0, int(rec.NameBytes)) {
				t.Fatalf("cgroup name %q for %d name bytes", name, rec.NameBytes)
			}
			again = append(append(again, raw(rec)...), name...)
		}})
		if err == nil && !bytes.Equal(again, data) {
			t.Fatalf("accepted %d bytes but the records it gave make %d", len(data), len(again))
		}
	})
}

func FuzzDecodeFiles(f *testing.F) {
	var rec FileRecord
	rec.Pid, rec.Ino = 7, 12345
	for _, src := range []itersnapPathSource{itersnapPathSourcePATH_FOLLOWS, itersnapPathSourcePATH_SOCKET, itersnapPathSourcePATH_PIPE, itersnapPathSourcePATH_ANON, 9} {
		for _, n := range []int32{0, 4, -36, 1 << 30, -1 << 31} {
			rec.PathSource, rec.PathBytes = src, n
			f.Add(append(raw(&rec), "/tmp"...))
		}
	}
	rec.PathSource, rec.PathBytes = itersnapPathSourcePATH_SOCKET, 0
	for _, n := range []int32{-1, 0, 5, 108, 109, 1 << 30} {
		sock := SockRecord{Family: 1, NameBytes: n}
		f.Add(append(append(raw(&rec), raw(&sock)...), "\x00abcd"...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var again []byte
		err := decodeFiles(data, func(rec *FileRecord, path []byte, sock *SockRecord, name []byte) {
			again = append(again, raw(rec)...)
			if (sock != nil) != (rec.PathSource == itersnapPathSourcePATH_SOCKET) {
				t.Fatalf("sock record %v for path source %d", sock, rec.PathSource)
			}
			switch rec.PathSource {
			case itersnapPathSourcePATH_SOCKET:
				if want := "socket:[" + strconv.FormatUint(rec.Ino, 10) + "]"; string(path) != want {
					t.Fatalf("socket path %q, want %q", path, want)
				}
				if (name == nil) != (sock.NameBytes < 0) || len(name) != max(0, int(sock.NameBytes)) {
					t.Fatalf("name %q for %d name bytes", name, sock.NameBytes)
				}
				again = append(append(again, raw(sock)...), name...)
			case itersnapPathSourcePATH_PIPE:
				if want := "pipe:[" + strconv.FormatUint(rec.Ino, 10) + "]"; string(path) != want {
					t.Fatalf("pipe path %q, want %q", path, want)
				}
			case itersnapPathSourcePATH_ANON:
				name, ok := bytes.CutPrefix(path, []byte(anonPrefix))
				if (path == nil) != (rec.PathBytes < 0) || path != nil && (!ok || len(name) != int(rec.PathBytes)) {
					t.Fatalf("anon inode path %q for %d name bytes", path, rec.PathBytes)
				}
				again = append(again, name...)
			default:
				if (path == nil) != (rec.PathBytes < 0) || len(path) != max(0, int(rec.PathBytes)) {
					t.Fatalf("path %q for %d path bytes", path, rec.PathBytes)
				}
				again = append(again, path...)
			}
		})
		if err == nil && !bytes.Equal(again, data) {
			t.Fatalf("accepted %d bytes but the records it gave make %d", len(data), len(again))
		}
	})
}

// raw is a record's bytes as the iterator writes them.
func raw[T TaskRecord | SymbolRecord | CgroupRecord | FileRecord | SockRecord](rec *T) []byte {
	return bytes.Clone(unsafe.Slice((*byte)(unsafe.Pointer(rec)), unsafe.Sizeof(*rec)))
}

// TestRealRecords decodes this process's real iterator output, and checks
// that every truncation of it either decodes (when it ends on a record
// boundary) or fails: a short read is never taken for records. With -update
// it writes that output and a few truncations as the fuzz seeds.
func TestRealRecords(t *testing.T) {
	o := load(t, Filter{PIDs: []uint32{uint32(os.Getpid())}})
	tasks, err := run(o.objs.DumpTask)
	if err != nil {
		t.Fatal(err)
	}
	files, err := run(o.objs.DumpFile)
	if err != nil {
		t.Fatal(err)
	}

	var taskEnds, fileEnds []int
	// A task's records end after its symbols; the stream's ends are the
	// starts of the next task records, and its end.
	var addrs []uint64
	var symbols, cgroups int
	end := 0
	err = decodeTasks(tasks, TaskVisitor{Task: func(rec *TaskRecord, stack []uint64) {
		if end > 0 {
			taskEnds = append(taskEnds, end)
		}
		end += int(unsafe.Sizeof(*rec)) + 8*len(stack)
		addrs = append(addrs, stack...)
	}, Symbol: func(rec *SymbolRecord, text []byte) {
		end += int(unsafe.Sizeof(*rec)) + len(text)
		symbols++
	}, Cgroup: func(rec *CgroupRecord, name []byte) {
		end += int(unsafe.Sizeof(*rec)) + len(name)
		cgroups++
	}})
	taskEnds = append(taskEnds, end)
	if err != nil || end != len(tasks) || len(addrs) == 0 || symbols == 0 || cgroups == 0 {
		t.Fatalf("decode %d bytes of tasks: %d records, %d addresses, %d symbols, %d cgroups, %v", len(tasks), len(taskEnds), len(addrs), symbols, cgroups, err)
	}
	end = 0
	err = decodeFiles(files, func(rec *FileRecord, path []byte, sock *SockRecord, name []byte) {
		end += int(unsafe.Sizeof(*rec))
		switch rec.PathSource {
		case itersnapPathSourcePATH_FOLLOWS:
			end += len(path)
		case itersnapPathSourcePATH_ANON:
			end += len(path) - len(anonPrefix)
		}
		if sock != nil {
			end += int(unsafe.Sizeof(*sock)) + len(name)
		}
		fileEnds = append(fileEnds, end)
	})
	if err != nil || len(fileEnds) == 0 {
		t.Fatalf("decode %d bytes of files: %d records, %v", len(files), len(fileEnds), err)
	}
	checkTruncations(t, "tasks", tasks, taskEnds, func(b []byte) error {
		return decodeTasks(b, TaskVisitor{})
	})
	checkTruncations(t, "files", files, fileEnds, func(b []byte) error {
		return decodeFiles(b, func(*FileRecord, []byte, *SockRecord, []byte) {})
	})

	if *update {
		half := taskEnds[0] + (taskEnds[1]-taskEnds[0])/2 // inside the second record
		writeSeeds(t, "FuzzDecodeTasks", map[string][]byte{
			"real":               tasks,
			"real-one-record":    tasks[:taskEnds[0]],
			"real-cut-in-header": tasks[:taskEnds[0]+20],
			"real-cut-in-second": tasks[:taskEnds[1]-4],
			"real-cut-half":      tasks[:half],
		})
		writeSeeds(t, "FuzzDecodeFiles", map[string][]byte{
			"real":               files,
			"real-one-record":    files[:fileEnds[0]],
			"real-cut-in-header": files[:fileEnds[0]+20],
			"real-cut-last":      files[:len(files)-1],
		})
	}
}

// checkTruncations decodes every prefix of data: those ending on a record
// boundary (ends) must decode, every other one must fail.
func checkTruncations(t *testing.T, what string, data []byte, ends []int, decode func([]byte) error) {
	t.Helper()
	boundary := map[int]bool{0: true}
	for _, e := range ends {
		boundary[e] = true
	}
	for n := range len(data) {
		err := decode(data[:n])
		if boundary[n] && err != nil {
			t.Errorf("%s cut at record boundary %d: %v", what, n, err)
		}
		if !boundary[n] && err == nil {
			t.Errorf("%s cut at byte %d of %d decoded without error", what, n, len(data))
		}
	}
}

// writeSeeds writes each value as a seed of the fuzz target, in go test's
// corpus format.
func writeSeeds(t *testing.T, target string, seeds map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), corpusBytes(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func corpusBytes(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
}
