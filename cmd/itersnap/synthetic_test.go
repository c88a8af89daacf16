package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// syntheticHost builds, in memory, a snapshot pair of a busy host: threads
// threads in processes of 50, about 300 distinct kernel stacks (20 system
// call paths into 15 wait points), 2% of the threads newly blocked at B
// and 0.5% stuck in both, and 20 processes leaking sockets. It is what the
// report benchmark and size test render.
func syntheticHost(threads int) []*snapshot.Snapshot {
	entries := [][]string{}
	for i := range 20 {
		entries = append(entries, []string{
			"entry_SYSCALL_64_after_hwframe+0x76/0x7e", "do_syscall_64+0x7d/0x1a0",
			fmt.Sprintf("__x64_sys_call_%02d+0x1f/0x40", i), fmt.Sprintf("ksys_path_%02d+0x6b/0xe0", i),
			fmt.Sprintf("vfs_layer_%02d+0x2a4/0x450", i%7), fmt.Sprintf("subsystem_%02d_op+0x1b5/0x1c0", i%11),
		})
	}
	waits := [][]string{}
	for i := range 15 {
		waits = append(waits, []string{
			fmt.Sprintf("wait_helper_%02d+0x61/0x70", i), fmt.Sprintf("prepare_wait_%02d+0x30/0x90", i%5),
			"schedule+0x27/0xa0", "__schedule+0x3c4/0xd30",
		})
	}
	// Kernel stacks are stored leaf first.
	var stacks []snapshot.Stack
	for _, e := range entries {
		for _, w := range waits {
			var st snapshot.Stack
			for i := len(w) - 1; i >= 0; i-- {
				st = append(st, w[i])
			}
			for i := len(e) - 1; i >= 0; i-- {
				st = append(st, e[i])
			}
			stacks = append(stacks, st)
		}
	}
	comms := []string{"postgres", "nginx", "java", "python3", "envoy", "redis-server", "node", "containerd-shim"}
	t0 := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	var out []*snapshot.Snapshot
	for snap := range 2 {
		s := &snapshot.Snapshot{
			ID: uint64(snap + 1),
			Meta: snapshot.Meta{Time: t0.Add(time.Duration(snap) * 10 * time.Minute), Hostname: "db-7", Kernel: "6.18.0",
				BootID: "b00710", Collector: "bpf"},
			Stacks: stacks,
		}
		r := rand.New(rand.NewPCG(3, 4)) // the same threads in both snapshots
		for i := range threads {
			pid := uint32(1000 + i/50*50)
			t := snapshot.Task{
				PID: pid, TID: uint32(1000 + i), PPID: 1, Comm: comms[int(pid/50)%len(comms)],
				State: snapshot.TaskInterruptible, StartTime: uint64(pid) * 1e6, Switches: uint64(r.IntN(1000)),
				NoFileLimit: 65536, Stack: int32(r.IntN(len(stacks))),
			}
			if i%50 != 0 {
				t.Comm += fmt.Sprintf("-w%d", i%7) // named worker threads
			}
			switch roll := r.IntN(1000); {
			case roll < 5: // stuck: blocked at A and B, never ran
				t.State = snapshot.TaskUninterruptible
			case roll < 25 && snap == 1: // newly blocked at B
				t.State = snapshot.TaskUninterruptible
			}
			if snap == 1 && t.State == snapshot.TaskInterruptible {
				t.Switches += 10 // ran between the snapshots
			}
			s.Tasks = append(s.Tasks, t)
		}
		for p := 0; p < threads/50; p++ {
			pid := uint32(1000 + p*50)
			n := 10 + r.IntN(40)
			if p%((threads/50)/20) == 0 && snap == 1 {
				n += 100 // leaking sockets
			}
			for fd := range n {
				s.Files = append(s.Files, snapshot.File{PID: pid, FD: uint32(fd), Mode: 0o140777, Dev: 8,
					Inode: uint64(pid)*1000 + uint64(fd), Path: fmt.Sprintf("socket:[%d]", uint64(pid)*1000+uint64(fd))})
			}
		}
		s.Finish()
		out = append(out, s)
	}
	return out
}
