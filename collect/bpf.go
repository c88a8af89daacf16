//go:build linux

package collect

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/itersnap/itersnap/bpf"
	"github.com/itersnap/itersnap/snapshot"
)

// BPF collects with the kernel iterators in package bpf: one pass over the
// tasks, which also symbolizes their stacks, and one over the fd tables.
// Meta.Collector says which build of the programs ran: bpf.ObjectMain
// ("bpf") or, on kernels without bpf_loop, bpf.ObjectLoops ("bpf-loops").
type BPF struct {
	// PinDir is where the programs stay loaded between takes (see
	// bpf.Open); empty loads them for this collection only.
	PinDir string
	// Stats, when set, is filled with where the collection's time went
	// and how it got its programs.
	Stats *BPFStats
}

// BPFStats is where a BPF collection's time went.
type BPFStats struct {
	Programs bpf.Source
	PinError error         // why loaded programs were not pinned, if they were not
	Open     time.Duration // load, or open the pinned programs
	Tasks    bpf.WalkTimes
	Files    bpf.WalkTimes
	Finish   time.Duration // symbolize, sort, count
	// KernelCgroups is how many cgroups the kernel tested tasks against
	// for --container and --cgroup, or -1 when it did not (no such filter,
	// or KernelCgroupsOff says why) and they were applied after the walk
	// alone.
	KernelCgroups    int
	KernelCgroupsOff string
	// CgroupsNamed is how many cgroups the task walk named, and
	// CgroupWalk whether the cgroup hierarchy was read all the same, for
	// the cgroups it did not name.
	CgroupsNamed int
	CgroupWalk   bool
}

// Name implements Collector: the collector, whichever object it loads.
func (BPF) Name() string { return bpf.ObjectMain }

// Collect implements Collector. Load errors come back as they are, so the
// caller can tell a missing feature or privilege from a bug and fall back to
// procfs.
func (c BPF) Collect(ctx context.Context, f snapshot.Filter) (*snapshot.Snapshot, error) {
	start := time.Now()
	st := c.Stats
	if st == nil {
		st = new(BPFStats)
	}
	kf := bpf.Filter{PIDs: f.PIDs, Comms: f.Comms}
	kf.Cgroups, kf.ByCgroup, st.KernelCgroupsOff = kernelCgroups(f)
	st.KernelCgroups = -1
	if kf.ByCgroup {
		st.KernelCgroups = len(kf.Cgroups)
	}
	objs, err := bpf.Open(kf, c.PinDir)
	if err != nil {
		return nil, err
	}
	defer objs.Close()
	st.Programs, st.PinError = objs.Source, objs.PinError
	st.Open = time.Since(start)

	s := &snapshot.Snapshot{Meta: snapshot.Meta{Time: start, Collector: objs.Object(), Filter: f}}
	s.Meta.Hostname, s.Meta.Kernel, s.Meta.BootID, s.Meta.Notes = HostMeta()
	if f.Empty() {
		// Sized from the kernel's own counts, so the slices are not
		// grown (and copied) record by record on a big host; fds
		// sharing a file make more fds than files.
		threads, files := hostCounts()
		s.Tasks = prefaulted[snapshot.Task](threads, threads/16+64)
		s.Files = prefaulted[snapshot.File](files, files/8+256)
	}
	if objs.Object() == bpf.ObjectLoops {
		s.Meta.Notes = append(s.Meta.Notes, boundedLoopNote(objs))
	}

	// Stacks are interned by their raw addresses first, and turned into
	// symbols once per unique stack after the walk.
	raw := map[string]int32{}
	var rawStacks [][]uint64
	syms := map[uint64]string{}
	comms := map[[16]int8]string{}
	cgroups := map[uint64]cgroupName{}
	noStack := 0
	// The task and fd walks run at once, one per CPU where there are
	// two: they share nothing, in the kernel (each program has its own
	// scratch map) or here, until both are done.
	var taskErr error
	tasksDone := make(chan struct{})
	go func() {
		defer close(tasksDone)
		taskErr = objs.Tasks(&st.Tasks, bpf.TaskVisitor{Task: func(r *bpf.TaskRecord, stack []uint64) {
			comm, ok := comms[r.Comm]
			if !ok {
				comm = bpf.CommString(r.Comm)
				comms[r.Comm] = comm
			}
			t := snapshot.Task{
				PID: r.Pid, TID: r.Tid, PPID: r.Ppid,
				Comm:  comm,
				State: r.State, ExitState: r.ExitState, Flags: r.Flags,
				StartTime: r.StartTime, Switches: r.Switches,
				UID: r.Uid, NoFileLimit: r.Nofile,
				Stack:    -1,
				CgroupID: r.CgroupId, NSPID: r.NsPid,
			}
			if len(stack) == 0 {
				t.Missing |= snapshot.MissingStack
				noStack++
			} else {
				key := unsafe.String((*byte)(unsafe.Pointer(&stack[0])), len(stack)*8)
				i, ok := raw[key]
				if !ok {
					i = int32(len(rawStacks))
					raw[string([]byte(key))] = i // copy: stack is reused
					rawStacks = append(rawStacks, append([]uint64(nil), stack...))
				}
				t.Stack = i
			}
			s.Tasks = append(s.Tasks, t)
		}, Symbol: func(r *bpf.SymbolRecord, text []byte) {
			if text != nil {
				syms[r.Addr] = string(text)
			}
		}, Cgroup: func(r *bpf.CgroupRecord, name []byte) {
			if name != nil {
				cgroups[r.Id] = cgroupName{parent: r.ParentId, name: string(name)}
			}
		}})
	}()

	noPath := 0
	var paths arena
	var socks socketSlab
	err = objs.Files(&st.Files, func(r *bpf.FileRecord, path []byte, sock *bpf.SockRecord, name []byte) {
		f := snapshot.File{
			PID: r.Pid, FD: r.Fd, Mode: r.Mode, Flags: r.Flags,
			// The kernel's dev_t is major<<20|minor; stat(2) reports the
			// userspace encoding.
			Dev:   unix.Mkdev(r.Dev>>20, r.Dev&(1<<20-1)),
			Inode: r.Ino,
			Path:  paths.string(path),
		}
		if path == nil {
			f.Missing |= snapshot.MissingPath
			noPath++
		}
		if sock != nil {
			f.Socket = socks.add(sockFromRecord(sock, name))
		}
		s.Files = append(s.Files, f)
	})
	<-tasksDone
	objs.Close() // let the next take at the pinned programs
	if taskErr != nil {
		return nil, fmt.Errorf("walk tasks: %w", taskErr)
	}
	if err != nil {
		return nil, fmt.Errorf("walk files: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	finish := time.Now()
	symbolize(s, syms, rawStacks)
	notes, walked := resolveCgroups(s.Tasks, cgroups)
	s.Meta.Notes = append(s.Meta.Notes, notes...)
	st.CgroupsNamed, st.CgroupWalk = len(cgroups), walked
	keepCgroups(s, f)
	if noStack > 0 {
		s.Meta.Notes = append(s.Meta.Notes, fmt.Sprintf("bpf: no kernel stack for %d threads (exiting, or stack unavailable)", noStack))
	}
	if noPath > 0 {
		s.Meta.Notes = append(s.Meta.Notes, fmt.Sprintf("bpf: no path for %d fds (bpf_d_path failed)", noPath))
	}
	s.Sort()
	s.Files = dedupFiles(s.Files)
	s.Finish()
	st.Finish = time.Since(finish)
	s.Meta.Duration = time.Since(start)
	return s, nil
}

// dedupFiles drops repeated (pid, fd) records from sorted files.
// kernel/bpf/task_iter.c skips a thread that shares its leader's fd table
// by comparing with the leader's files, which a zombie leader no longer
// has: then every live thread reports the same table.
func dedupFiles(files []snapshot.File) []snapshot.File {
	out := files[:0]
	for i, f := range files {
		if i > 0 && f.PID == files[i-1].PID && f.FD == files[i-1].FD {
			continue
		}
		out = append(out, f)
	}
	return out
}

// symbolize turns the raw address stacks into s.Stacks, in the same order,
// so snapshot.Task.Stack indexes stay valid. A frame the kernel could not symbolize
// stays a hex address, and a note says how many: a take with raw frames
// beats no take.
func symbolize(s *snapshot.Snapshot, syms map[uint64]string, rawStacks [][]uint64) {
	unresolved := map[uint64]bool{}
	s.Stacks = make([]snapshot.Stack, len(rawStacks))
	for i, st := range rawStacks {
		frames := make(snapshot.Stack, len(st))
		for j, a := range st {
			frames[j] = syms[a]
			if frames[j] == "" {
				frames[j] = fmt.Sprintf("%#x", a)
				unresolved[a] = true
			}
		}
		s.Stacks[i] = frames
	}
	if len(unresolved) > 0 {
		s.Meta.Notes = append(s.Meta.Notes, fmt.Sprintf("bpf: %d stack addresses not symbolized", len(unresolved)))
	}
}

// The model's filter limits are the BPF program's array sizes: this fails to
// compile when they drift apart.
const _ = uint(bpf.MaxPIDs-snapshot.MaxFilterPIDs) + uint(snapshot.MaxFilterPIDs-bpf.MaxPIDs) +
	uint(bpf.MaxComms-snapshot.MaxFilterComms) + uint(snapshot.MaxFilterComms-bpf.MaxComms)

// boundedLoopNote says that the bounded-loop build ran, and why the main
// one did not when this take loaded it (programs opened from pins do not
// know: the take that pinned them said).
func boundedLoopNote(objs *bpf.Objects) string {
	if why := objs.MainRefusal(); why != "" {
		return "bpf: bounded-loop programs (" + why + ")"
	}
	return "bpf: bounded-loop programs"
}
