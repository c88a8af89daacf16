package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	roles["cli"] = cliRole
	roles["leaker"] = leakerRole
	roles["vforker"] = vforkerRole
	roles["writer"] = writerRole
	roles["sleeper"] = sleeperRole
	roles["measured"] = measuredRole
}

// measuredRole is itersnap, and then reports the bytes its Go heap handed
// out (TotalAlloc) and the peak RSS of its own
// address space (VmHWM) on stderr. The rusage maxrss of a child started
// from Go would count the parent's memory too: os/exec forks with CLONE_VM,
// and exec records the old address space's high-water mark.
//
// ITERSNAP_CPUPROFILE=FILE writes a CPU profile of the command there, and
// ITERSNAP_MEMPROFILE=FILE one of what it allocated, for `go tool pprof`.
func measuredRole(args []string) {
	if path := os.Getenv("ITERSNAP_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f) // written unbuffered: os.Exit needs no Close
		}
	}
	if os.Getenv("ITERSNAP_MEMPROFILE") != "" {
		runtime.MemProfileRate = 512
	}
	code := run(context.Background(), args, io.Discard, os.Stderr, os.Getenv)
	pprof.StopCPUProfile() // os.Exit runs no deferred calls
	if path := os.Getenv("ITERSNAP_MEMPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
		}
	}
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	fmt.Fprintf(os.Stderr, "TotalAlloc %d\n", mem.TotalAlloc)
	reportHWM()
	os.Exit(code)
}

// cliRole is itersnap itself, so tests can run it as another user.
func cliRole(args []string) {
	os.Exit(run(context.Background(), args, os.Stdout, os.Stderr, os.Getenv))
}

// leakerRole opens nothing until told, then, for every line N on stdin,
// leaks N sockets, one every 2 ms, and answers "leaked TOTAL".
func leakerRole([]string) {
	ready("%d", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	total := 0
	for in.Scan() {
		n, _ := strconv.Atoi(in.Text())
		for range n {
			if _, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0); err == nil {
				total++
			}
			time.Sleep(2 * time.Millisecond)
		}
		syscall.Write(1, []byte("leaked "+strconv.Itoa(total)+"\n"))
	}
	select {}
}

// vforkerRole puts a thread into a killable uninterruptible sleep: the
// parent of a vfork waits (kernel/fork.c, wait_for_vfork_done, TASK_KILLABLE)
// until its child execs or exits, and this child sleeps first.
func vforkerRole([]string) {
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		tid <- syscall.Gettid()
		vforkAndSleep()
	}()
	ready("%d %d", os.Getpid(), <-tid)
	select {}
}

// vforkAndSleep clones with CLONE_VFORK but without CLONE_VM: the parent
// waits as after vfork(), while the child has its own copy of memory, so it
// can return from the syscall and sleep without trampling the parent's
// stack. The child makes raw syscalls only (as syscall.forkAndExecInChild
// does).
//
//go:norace
func vforkAndSleep() {
	ts := syscall.Timespec{Sec: 3600}
	pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, syscall.CLONE_VFORK|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno == 0 && pid == 0 {
		syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	}
}

// writerRole writes to a file in args[0] in a loop; when the test freezes
// that filesystem, the write blocks in plain uninterruptible sleep
// (sb_start_write) and the thread never runs until it thaws.
func writerRole(args []string) {
	fd, err := syscall.Open(args[0], syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC, 0o644)
	if err != nil {
		os.Exit(1)
	}
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		tid <- syscall.Gettid()
		buf := make([]byte, 4096)
		for {
			syscall.Write(fd, buf)
			syscall.Fsync(fd)
			time.Sleep(time.Millisecond)
		}
	}()
	ready("%d %d", os.Getpid(), <-tid)
	select {}
}

// sleeperRole holds one thread in nanosleep: an idle sleeper, whose stack
// never changes and which is no problem at all. With an argument, the
// thread names itself that (prctl PR_SET_NAME), as any process may.
func sleeperRole(args []string) {
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		if len(args) > 0 {
			name := append([]byte(args[0]), 0)
			unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
		}
		tid <- syscall.Gettid()
		ts := unix.NsecToTimespec(int64(time.Hour))
		for {
			unix.Nanosleep(&ts, nil)
		}
	}()
	ready("%d %d", os.Getpid(), <-tid)
	select {}
}
