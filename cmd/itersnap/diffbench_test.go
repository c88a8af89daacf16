package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/snapshot"
	"github.com/itersnap/itersnap/store"
)

func init() { roles["loadall-diff"] = loadAllDiffRole }

// loadAllDiffRole is the diff as it was before it streamed: read every
// snapshot of the range into memory (store.Get), then compare them
// (diff.Compare) and write the CSV. It then reports its peak RSS, as
// measuredRole does. args: database, A, B.
func loadAllDiffRole(args []string) {
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "itersnap: %v\n", err)
		os.Exit(1)
	}
	db, err := store.Open(args[0], store.Options{ReadOnly: true})
	if err != nil {
		fail(err)
	}
	ids, err := rangeIDs(db, args[1], args[2], true)
	if err != nil {
		fail(err)
	}
	var snaps []*snapshot.Snapshot
	for _, id := range ids {
		s, err := db.Get(id)
		if err != nil {
			fail(err)
		}
		snaps = append(snaps, s)
	}
	db.Close()
	r := diff.Compare(snaps, diff.Options{MinGrowth: diff.DefaultMinGrowth})
	if err := output.WriteRecords(io.Discard, output.FindingColumns, output.Findings(r), output.Options{Format: output.CSV}); err != nil {
		fail(err)
	}
	reportHWM()
	os.Exit(0)
}

// reportHWM writes the process's peak RSS (VmHWM, kB) on stderr.
func reportHWM() {
	fmt.Fprintf(os.Stderr, "VmHWM %d\n", peakRSSKB())
}

// busyHost is the diff benchmark's host, taken every minute: processes of
// threadsPer threads and fdsPer fds (sockets, pipes, files, eventpolls),
// 60 distinct kernel stacks. Each minute (step):
//   - every thread has run with a 50% chance (its switch count grows), and
//     3% of them are caught on another stack;
//   - five processes open or close a socket;
//   - one process in a hundred leaks a socket;
//   - a short command runs (a new process, seen in one snapshot);
//   - every 30 minutes a service restarts (new pid, new fds).
//
// Sockets and pipes take inodes from one counter for the host, as the
// kernel's get_next_ino hands them out. The model follows store's idle
// host (store/size_test.go), scaled up.
type busyHost struct {
	rnd                  *rand.Rand
	minute               int
	threadsPer, fdsPer   int
	stacks               []snapshot.Stack
	procs                []*busyProcess
	command              *busyProcess
	nextPID              uint32
	nextInode            uint64
	threadTotal, fdTotal int
}

type busyProcess struct {
	pid     uint32
	comm    string
	start   uint64
	leaks   bool
	threads []snapshot.Task
	files   []snapshot.File
}

func newBusyHost(threads, fds, threadsPer int) *busyHost {
	h := &busyHost{rnd: rand.New(rand.NewPCG(11, 13)), nextPID: 1000, nextInode: 30_000,
		threadsPer: threadsPer, fdsPer: fds / (threads / threadsPer)}
	funcs := []string{"schedule", "schedule_hrtimeout_range", "ep_poll", "do_epoll_wait", "__x64_sys_epoll_wait",
		"futex_wait_queue", "futex_wait", "do_futex", "__x64_sys_futex", "do_sys_poll", "__x64_sys_poll",
		"unix_stream_read_generic", "sock_read_iter", "vfs_read", "ksys_read", "tcp_recvmsg", "inet_recvmsg",
		"do_select", "core_sys_select", "pipe_read", "do_nanosleep", "hrtimer_nanosleep"}
	for range 60 {
		st := make(snapshot.Stack, 6+h.rnd.IntN(8))
		for j := range st {
			f := funcs[h.rnd.IntN(len(funcs))]
			st[j] = fmt.Sprintf("%s+0x%x/0x%x", f, h.rnd.IntN(0x200), 0x200+h.rnd.IntN(0x200))
		}
		h.stacks = append(h.stacks, st)
	}
	for i := range threads / threadsPer {
		p := h.newProcess(threadsPer, h.fdsPer)
		p.leaks = i%100 == 7
		h.procs = append(h.procs, p)
	}
	h.command = h.newProcess(1, 5)
	return h
}

func (h *busyHost) newProcess(threads, fds int) *busyProcess {
	h.nextPID += 1 + uint32(h.rnd.IntN(20))
	p := &busyProcess{pid: h.nextPID, start: uint64(h.minute)*60e9 + h.rnd.Uint64N(60e9),
		comm: []string{"postgres", "nginx", "java", "envoy", "redis-server", "node", "containerd-shim", "python3"}[h.rnd.IntN(8)]}
	for i := range threads {
		p.threads = append(p.threads, snapshot.Task{
			PID: p.pid, TID: p.pid + uint32(i), PPID: 1, Comm: p.comm,
			State: snapshot.TaskInterruptible, StartTime: p.start + uint64(i), Switches: h.rnd.Uint64N(1_000_000),
			NoFileLimit: 65536, Stack: int32(h.rnd.IntN(len(h.stacks))),
		})
	}
	h.nextPID += uint32(threads)
	for fd := range fds {
		p.files = append(p.files, h.newFile(p.pid, uint32(fd)))
	}
	return p
}

func (h *busyHost) newFile(pid, fd uint32) snapshot.File {
	f := snapshot.File{PID: pid, FD: fd, Flags: 0o2000002, Dev: 8}
	h.nextInode += 1 + h.rnd.Uint64N(40)
	switch r := h.rnd.IntN(10); {
	case fd < 3:
		f.Mode, f.Dev, f.Inode, f.Path = 0o20666, 5, 4, "/dev/null"
	case r < 6:
		f.Mode, f.Inode = 0o140777, h.nextInode
		f.Path = fmt.Sprintf("socket:[%d]", f.Inode)
	case r < 8:
		f.Mode, f.Dev, f.Inode = 0o10600, 14, h.nextInode
		f.Path = fmt.Sprintf("pipe:[%d]", f.Inode)
	case r < 9:
		f.Mode, f.Dev, f.Inode, f.Path = 0o600, 15, 2070, "anon_inode:[eventpoll]"
	default:
		f.Mode, f.Dev, f.Inode = 0o100644, 0xfd01, h.rnd.Uint64N(2_000_000)
		f.Path = fmt.Sprintf("/var/lib/app/data/%d.log", f.Inode)
	}
	return f
}

func (h *busyHost) step() {
	h.minute++
	for _, p := range h.procs {
		for i := range p.threads {
			t := &p.threads[i]
			if h.rnd.IntN(2) == 0 {
				t.Switches += 1 + h.rnd.Uint64N(200)
			}
			if h.rnd.IntN(100) < 3 {
				t.Stack = int32(h.rnd.IntN(len(h.stacks)))
			}
		}
		if p.leaks {
			p.files = append(p.files, h.newFile(p.pid, uint32(len(p.files))))
		}
	}
	for range 5 {
		p := h.procs[h.rnd.IntN(len(h.procs))]
		if len(p.files) > 10 && h.rnd.IntN(2) == 0 {
			p.files = p.files[:len(p.files)-1]
		} else {
			p.files = append(p.files, h.newFile(p.pid, uint32(len(p.files))))
		}
	}
	h.command = h.newProcess(1, 5)
	if h.minute%30 == 0 {
		i := h.rnd.IntN(len(h.procs))
		h.procs[i] = h.newProcess(h.threadsPer, h.fdsPer)
	}
}

func (h *busyHost) snapshot() *snapshot.Snapshot {
	s := &snapshot.Snapshot{
		Meta: snapshot.Meta{
			Time:     time.Unix(1_700_000_000+int64(h.minute)*60, 0).UTC(),
			Hostname: "db-7.prod.example.com", Kernel: "6.18.0", BootID: "5d0c9a3e-1b2f-4e8a-9c7d-3e2f1a0b9c8d",
			Collector: "bpf", Duration: 60 * time.Millisecond,
		},
		Stacks: h.stacks,
	}
	for _, p := range append(slices.Clip(h.procs), h.command) {
		s.Tasks = append(s.Tasks, p.threads...)
		s.Files = append(s.Files, p.files...)
	}
	s.Sort()
	s.Finish()
	return s
}

// benchDB writes n minutes of a busy host into a new database under dir,
// or returns the one an earlier run left there (the model is seeded: the
// same every time).
func benchDB(b *testing.B, dir string, threads, fds, n int) string {
	path := filepath.Join(dir, fmt.Sprintf("busy-%d-%d-%d.db", threads, fds, n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	h := newBusyHost(threads, fds, 20)
	start := time.Now()
	for i := range n {
		if i > 0 {
			h.step()
		}
		if _, err := db.Put(h.snapshot()); err != nil {
			b.Fatal(err)
		}
	}
	st, _ := os.Stat(path)
	fmt.Printf("built %d snapshots of %d threads and ~%d fds in %v (%.0f MB)\n", n, threads, fds, time.Since(start).Round(time.Second), float64(st.Size())/1e6)
	return path
}

// BenchmarkDiffRange times whole `itersnap diff latest~N latest` processes
// on a synthetic database of minutely snapshots, and, side by side in the
// same run, the diff as it was before it streamed (loadAllDiffRole), with
// each one's peak RSS. DIFF_SCALE picks the hosts: "day" (the default:
// 1,440 snapshots of 2,000 threads and 20,000 fds, ranges of 10, 100 and
// 1,440), "large" (100 snapshots of 20,000 threads and 200,000 fds,
// ranges of 10 and 100), "all", or "quick" (100 snapshots of the day's
// host, to try the benchmark out). Building a database takes minutes; it
// is built once per run under a temporary directory, or kept in DIFF_DIR
// and reused. -short skips it all.
// Run it with `make bench-diff`.
func BenchmarkDiffRange(b *testing.B) {
	if testing.Short() {
		b.Skip("builds databases of thousands of snapshots")
	}
	scale := os.Getenv("DIFF_SCALE")
	if scale == "" {
		scale = "day"
	}
	type host struct {
		name                string
		threads, fds, snaps int
		ranges              []int
	}
	var hosts []host
	if scale == "day" || scale == "all" {
		hosts = append(hosts, host{"day", 2000, 20000, 1440, []int{10, 100, 1440}})
	}
	if scale == "quick" {
		hosts = append(hosts, host{"quick", 2000, 20000, 100, []int{10, 100}})
	}
	if scale == "large" || scale == "all" {
		hosts = append(hosts, host{"large", 20000, 200000, 100, []int{10, 100}})
	}
	if len(hosts) == 0 {
		b.Fatalf("DIFF_SCALE=%q: want day, large, all or quick", scale)
	}
	// DIFF_DIR keeps the databases (and reuses them next time), to look
	// at them with other tools: /usr/bin/time -v itersnap diff ...
	dir := os.Getenv("DIFF_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	type result struct {
		name      string
		wall, cpu time.Duration
		rss       int64
	}
	var results []result
	bin := itersnapBinary(b)
	for _, h := range hosts {
		db := benchDB(b, dir, h.threads, h.fds, h.snaps)
		for _, n := range h.ranges {
			// stream and load-all run in the test binary, side by side; the
			// itersnap binary (no DuckDB linked in) is what a user runs.
			for _, how := range []string{"stream", "load-all", "itersnap"} {
				name := fmt.Sprintf("%s/range=%d/%s", h.name, n, how)
				b.Run(name, func(b *testing.B) {
					a := fmt.Sprintf("latest~%d", n-1)
					var peak int64
					var cpu time.Duration
					for b.Loop() {
						cmd := roleCommand("measured", "diff", "--db", db, a, "latest", "--format", "csv")
						switch how {
						case "load-all":
							cmd = roleCommand("loadall-diff", db, a, "latest")
						case "itersnap":
							cmd = exec.Command(bin, "diff", "-v", "--db", db, a, "latest", "--format", "csv")
						}
						var stderr strings.Builder
						cmd.Stderr = &stderr
						if err := cmd.Run(); err != nil {
							b.Fatalf("%s: %v: %s", name, err, stderr.String())
						}
						kb := reportedPeakKB(stderr.String())
						if kb == 0 {
							b.Fatalf("%s said %q", name, stderr.String())
						}
						peak = max(peak, kb)
						// CPU time (user + system) says more than wall time
						// on a machine shared with other work.
						cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
					}
					b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
					b.ReportMetric((cpu / time.Duration(b.N)).Seconds(), "cpu-s/op")
					results = append(results, result{name, b.Elapsed() / time.Duration(b.N), cpu / time.Duration(b.N), peak})
				})
			}
		}
	}
	fmt.Printf("\n%-28s %10s %10s %14s\n", "diff latest~N latest", "wall", "cpu", "peak RSS")
	for _, r := range results {
		fmt.Printf("%-28s %10v %10v %11.1f MB\n", r.name, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond), float64(r.rss)/1024)
	}
	fmt.Println()
}
