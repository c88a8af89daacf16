package export

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/snapshot"
)

// Dataset writes snapshots as Parquet tables in the Hive layout that
// DuckDB, ClickHouse, Spark and Trino read as one table per kind across
// hosts and days:
//
//	DIR/<table>/host=<host>/date=<YYYY-MM-DD>/<first>-<last>.parquet
//
// with tables snapshots, tasks, fds, stacks and (with findings) findings;
// first and last are the IDs of the first and last snapshot of that host
// and day (UTC) in the export. Each file is written under a hidden
// temporary name in its own directory (engines skip names starting with a
// dot), synced, and renamed into place by Close: a reader, or a copy tool
// that ships DIR, never sees half a file, and an export killed at any
// moment leaves only hidden temporaries, which a later export removes.
type Dataset struct {
	dir      string
	findings bool
	parts    map[partKey]*partition
	order    []*partition
	written  []string
}

// partKey is a partition: a host and a day.
type partKey struct{ host, date string }

type partition struct {
	key         partKey
	first, last uint64
	snapshots   *tableFile[snapshotRow]
	tasks       *tableFile[taskRow]
	fds         *tableFile[fdRow]
	stacks      *tableFile[stackRow]
	findings    *tableFile[findingRow] // nil without findings
	stacksSeen  map[uint64]bool
}

// NewDataset writes under dir; with findings, every partition also gets a
// findings file (empty when nothing was found, which says "looked, found
// nothing").
func NewDataset(dir string, findings bool) *Dataset {
	return &Dataset{dir: dir, findings: findings, parts: map[partKey]*partition{}}
}

// Add writes a snapshot's rows: one snapshots row, its tasks and fds, and
// the stacks its threads are on that its file does not have yet.
// Snapshots are added in ID order.
func (d *Dataset) Add(s *snapshot.Snapshot) error {
	p, err := d.partition(&s.Meta)
	if err != nil {
		return err
	}
	if p.first == 0 {
		p.first = s.ID
	}
	p.last = s.ID
	if err := p.snapshots.write(&snapshotRow{s}); err != nil {
		return err
	}
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if err := p.tasks.write(&taskRow{s, t}); err != nil {
			return err
		}
		st := s.StackOf(*t)
		if id, ok := stackID(st); ok && !p.stacksSeen[id] {
			p.stacksSeen[id] = true
			if err := p.stacks.write(&stackRow{s, id, st}); err != nil {
				return err
			}
		}
	}
	procs := s.Processes()
	byPID := make(map[uint32]*snapshot.Process, len(procs))
	for i := range procs {
		byPID[procs[i].PID] = &procs[i]
	}
	var none snapshot.Process // fds of a process whose threads the filter left out
	for i := range s.Files {
		f := &s.Files[i]
		proc := byPID[f.PID]
		if proc == nil {
			proc = &none
		}
		if err := p.fds.write(&fdRow{s, f, proc}); err != nil {
			return err
		}
	}
	return nil
}

// AddFindings writes r's findings to the partition of b, r's snapshot B,
// which must have been added.
func (d *Dataset) AddFindings(r *diff.Report, b *snapshot.Snapshot) error {
	p := d.parts[keyOf(&b.Meta)]
	if p == nil || p.findings == nil {
		return fmt.Errorf("export findings of snapshot %d: the snapshot was not exported with findings", b.ID)
	}
	rows := findingRows(r, b)
	for i := range rows {
		if err := p.findings.write(&rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// Close finishes every file and renames it into place, and returns the
// paths written. After an error, the files not yet renamed are removed.
func (d *Dataset) Close() ([]string, error) {
	var errs []error
	for _, p := range d.order {
		name := strconv.FormatUint(p.first, 10) + "-" + strconv.FormatUint(p.last, 10) + ".parquet"
		for _, f := range p.files() {
			if len(errs) > 0 {
				f.abort()
				continue
			}
			path, err := f.finish(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			d.written = append(d.written, path)
		}
	}
	return d.written, errors.Join(errs...)
}

// Abort removes every temporary file; nothing is renamed into place.
func (d *Dataset) Abort() {
	for _, p := range d.order {
		for _, f := range p.files() {
			f.abort()
		}
	}
}

func (p *partition) files() []interface {
	finish(name string) (string, error)
	abort()
} {
	var fs []interface {
		finish(string) (string, error)
		abort()
	}
	// Typed nil pointers would not compare nil once in the interface.
	if p.snapshots != nil {
		fs = append(fs, p.snapshots)
	}
	if p.tasks != nil {
		fs = append(fs, p.tasks)
	}
	if p.fds != nil {
		fs = append(fs, p.fds)
	}
	if p.stacks != nil {
		fs = append(fs, p.stacks)
	}
	if p.findings != nil {
		fs = append(fs, p.findings)
	}
	return fs
}

func keyOf(m *snapshot.Meta) partKey {
	return partKey{host: m.Hostname, date: m.Time.UTC().Format(time.DateOnly)}
}

// partition returns the open files of m's host and day, creating them;
// when one cannot be created, none is kept.
func (d *Dataset) partition(m *snapshot.Meta) (*partition, error) {
	key := keyOf(m)
	if p := d.parts[key]; p != nil {
		return p, nil
	}
	p := &partition{key: key, stacksSeen: map[uint64]bool{}}
	err := openInto(&p.snapshots, d.dir, key, snapshotsTable())
	if err == nil {
		err = openInto(&p.tasks, d.dir, key, tasksTable())
	}
	if err == nil {
		err = openInto(&p.fds, d.dir, key, fdsTable())
	}
	if err == nil {
		err = openInto(&p.stacks, d.dir, key, stacksTable())
	}
	if err == nil && d.findings {
		err = openInto(&p.findings, d.dir, key, findingsTable())
	}
	if err != nil {
		for _, f := range p.files() {
			f.abort()
		}
		return nil, err
	}
	d.parts[key] = p
	d.order = append(d.order, p)
	return p, nil
}

func openInto[R any](f **tableFile[R], root string, key partKey, t *table[R]) error {
	var err error
	*f, err = openTable(root, key, t)
	return err
}

// PartitionDir is where a table's file of host and day goes.
func PartitionDir(dir, table, host, date string) string {
	return filepath.Join(dir, table, "host="+PartitionValue(host), "date="+date)
}

// PartitionValue escapes a partition value for a directory name the way
// Hive does (FileUtils.escapePathName): %XX for every byte but letters,
// digits and "-_.", so that "/" or "=" in a hostname cannot make another
// directory level or key. A leading "." or "_" is escaped too, since
// engines skip such names as hidden, and an empty value is Hive's default
// partition name.
func PartitionValue(v string) string {
	if v == "" {
		return "__HIVE_DEFAULT_PARTITION__"
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		plain := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' ||
			(c == '_' || c == '.') && i > 0
		if plain {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// A file being written is named .itersnap-export-PID-RANDOM.tmp in its
// partition's directory; removeStale removes those an export killed
// before Close left behind: at once when process PID is gone, else after
// staleAfter (the PID may have been reused).
const (
	tempPrefix = ".itersnap-export-"
	tempSuffix = ".tmp"
	staleAfter = time.Hour // an export of a day of a busy host takes minutes
)

// writerOptions: zstd for every column, and row groups of at most 128 Ki
// rows, so that a day of a busy host is written in bounded memory and
// engines can skip row groups by their statistics.
func writerOptions(schema *parquet.Schema) []parquet.WriterOption {
	return []parquet.WriterOption{
		schema,
		parquet.Compression(&parquet.Zstd),
		parquet.MaxRowsPerRowGroup(128 << 10),
		parquet.CreatedBy("itersnap", "", ""),
	}
}

// tableFile is one table's file of one partition, being written.
type tableFile[R any] struct {
	table   *table[R]
	dir     string
	tmp     *os.File
	w       *parquet.Writer
	pending []parquet.Row
	free    []parquet.Row
}

func openTable[R any](root string, key partKey, t *table[R]) (*tableFile[R], error) {
	dir := PartitionDir(root, t.name, key.host, key.date)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("export to %s: %w", root, err)
	}
	removeStale(dir)
	tmp, err := os.CreateTemp(dir, tempPrefix+strconv.Itoa(os.Getpid())+"-*"+tempSuffix)
	if err != nil {
		return nil, fmt.Errorf("export to %s: %w", root, err)
	}
	return &tableFile[R]{table: t, dir: dir, tmp: tmp, w: parquet.NewWriter(tmp, writerOptions(t.schema)...)}, nil
}

// batch rows before handing them to the writer: one call per row costs
// more than the row.
const batch = 256

func (f *tableFile[R]) write(r *R) error {
	var buf parquet.Row
	if n := len(f.free); n > 0 {
		buf, f.free = f.free[n-1][:0], f.free[:n-1]
	}
	f.pending = append(f.pending, f.table.row(buf, r))
	if len(f.pending) == batch {
		return f.flush()
	}
	return nil
}

func (f *tableFile[R]) flush() error {
	if len(f.pending) == 0 {
		return nil
	}
	if _, err := f.w.WriteRows(f.pending); err != nil {
		return fmt.Errorf("export %s: %w", f.table.name, err)
	}
	// The writer copied the values into its column buffers.
	f.free = append(f.free, f.pending...)
	f.pending = f.pending[:0]
	return nil
}

// finish writes the footer, syncs the file and renames it to name.
func (f *tableFile[R]) finish(name string) (string, error) {
	path := filepath.Join(f.dir, name)
	err := f.flush()
	if err == nil {
		err = f.w.Close()
	}
	if err == nil {
		err = f.tmp.Sync()
	}
	if cerr := f.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.tmp.Name(), path)
	}
	if err != nil {
		os.Remove(f.tmp.Name())
		return "", fmt.Errorf("export %s: %w", path, err)
	}
	// The new name must survive a power cut as the data does.
	if dir, err := os.Open(f.dir); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	return path, nil
}

func (f *tableFile[R]) abort() {
	f.tmp.Close()
	os.Remove(f.tmp.Name())
}

// removeStale removes temporary files an export killed before Close left
// in dir. Not Glob: a hostname may hold * or [.
func removeStale(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, tempPrefix)
		if !e.Type().IsRegular() || !ok || !strings.HasSuffix(name, tempSuffix) {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		dead := err == nil && pid != os.Getpid() && !alive(pid)
		if info, err := e.Info(); err == nil && (dead || time.Since(info.ModTime()) > staleAfter) {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
}
