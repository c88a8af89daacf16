package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/export"
	"github.com/itersnap/itersnap/snapshot"
	"github.com/itersnap/itersnap/store"
)

type showOptions struct {
	*globalOptions
	tasks, stacks, fds bool
	comms              []string
	pids               []uint
	containers         []string
}

func newShowCmd(g *globalOptions) *cobra.Command {
	o := &showOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "show REF [--tasks|--stacks|--fds] [--comm NAME] [--pid PID] [--container ID]",
		Short: "Show one snapshot's threads, stacks or fds",
		Long: `Show one snapshot's records. REF is a snapshot ID, latest, or latest~N
(N snapshots before the latest).

  --tasks (default)  one row per thread:
                     snapshot,pid,tid,comm,state,stack,cgroup,container,pod,
                     ns_pid
  --stacks           one row per distinct kernel stack, most threads first:
                     snapshot,threads,states,comms,stack
  --fds              one row per open fd:
                     snapshot,pid,comm,fd,kind,path,proto,sock_state,local,
                     remote,netns

pid is the process id and tid the thread id, as ps names them. state is the
letter ps prints (R S D T t X Z P I). stack is the kernel stack root to leaf,
function names joined by ";", as in folded-stack files. kind is file, dir,
char, block, pipe, socket, symlink, or the anon inode's name (eventfd,
eventpoll, timerfd, signalfd, inotify, pidfd, bpf-map, ...).

cgroup is the thread's cgroup v2 path, container the container ID and pod
the Kubernetes pod UID read from it, ns_pid the process's pid in its own
pid namespace. For a socket: proto (tcp, tcp6, udp, udp6, unix, netlink,
packet, raw, ...), sock_state (TCP's state names, LISTEN, CONNECTED or
UNCONNECTED for unix and UDP), local and remote ends (127.0.0.1:8080,
[::1]:443, a unix path, @name for an abstract one) and netns, the network
namespace's inode (readlink /proc/PID/ns/net). --container keeps processes
whose container ID starts with ID.

EXPORTS (not with --fds)
  --format folded    folded stacks for flamegraph.pl, inferno or speedscope:
                     one line "comm;frame;...;frame COUNT" per distinct thread
                     name and stack, root first; ";", "%" and control
                     characters in names are written as %XX
  --format pprof     a gzipped pprof profile, one sample per thread, labels
                     pid, tid, comm, state: go tool pprof -http :8080 FILE.
                     Binary: written with -o FILE.pb.gz, or to stdout only
                     when it is not a terminal
` + exitStatusHelp,
		Args:        cobra.ExactArgs(1),
		Annotations: map[string]string{formatsAnnotation: formatFolded + " " + formatPprof},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runShow(o, args[0], cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.tasks, "tasks", false, "one row per thread (the default)")
	f.BoolVar(&o.stacks, "stacks", false, "one row per distinct kernel stack")
	f.BoolVar(&o.fds, "fds", false, "one row per open fd")
	f.StringArrayVar(&o.comms, "comm", nil, "only tasks named `NAME` (repeatable)")
	f.UintSliceVar(&o.pids, "pid", nil, "only process `PID` (repeatable)")
	f.StringArrayVar(&o.containers, "container", nil, "only processes in containers whose `ID` starts so (repeatable)")
	cmd.MarkFlagsMutuallyExclusive("tasks", "stacks", "fds")
	return cmd
}

func runShow(o *showOptions, ref string, stdout io.Writer) error {
	stacks := o.format == formatFolded || o.format == formatPprof
	if stacks && o.fds {
		return usagef("--format %s exports kernel stacks: it does not go with --fds", o.format)
	}
	if o.format == formatPprof && toStdout(o.output) && isTerminal(stdout) {
		return usagef("a pprof profile is binary: write it with -o FILE.pb.gz, or redirect stdout")
	}
	db, err := o.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	s, err := load(db, ref)
	if err != nil {
		return err
	}
	f := narrowFilter(o.comms, o.pids)
	f.Containers = o.containers
	switch o.format {
	case formatFolded:
		return withOutput(o.output, stdout, func(w io.Writer) error {
			return export.WriteFolded(w, export.Folded(s, keepTasks(s, f)))
		})
	case formatPprof:
		return withOutput(o.output, stdout, func(w io.Writer) error {
			return export.Profile(s, keepTasks(s, f)).Write(w)
		})
	}
	var r records
	switch {
	case o.fds:
		r = fdRecords(s, f)
	case o.stacks:
		r = stackRecords(s, f)
	default:
		r = taskRecords(s, f)
	}
	return withOutput(o.output, stdout, func(w io.Writer) error {
		if o.format == formatTable {
			writeHeader(w, s)
		}
		return r.write(w, o.format)
	})
}

// load resolves a snapshot reference and reads the snapshot.
func load(db *store.DB, ref string) (*snapshot.Snapshot, error) {
	id, err := db.Resolve(ref)
	if err != nil {
		return nil, err
	}
	return db.Get(id)
}

func narrowFilter(comms []string, pids []uint) snapshot.Filter {
	f := snapshot.Filter{Comms: comms}
	for _, p := range pids {
		f.PIDs = append(f.PIDs, uint32(p))
	}
	return f
}

// processComms maps each pid to its process's (leader's) name, which
// --comm also matches.
func processComms(s *snapshot.Snapshot) map[uint32]string {
	m := map[uint32]string{}
	for _, p := range s.Processes() {
		m[p.PID] = p.Comm
	}
	return m
}

// processContainers maps each pid to its process's container ID.
func processContainers(s *snapshot.Snapshot) map[uint32]string {
	m := map[uint32]string{}
	for _, p := range s.Processes() {
		m[p.PID] = p.Container()
	}
	return m
}

// keepTasks is f as a predicate on s's threads: --comm matches a thread's
// name or its process's. nil keeps every thread.
func keepTasks(s *snapshot.Snapshot, f snapshot.Filter) export.Keep {
	if f.Empty() {
		return nil
	}
	pcomm, pcontainer := processComms(s), processContainers(s)
	return func(t *snapshot.Task) bool {
		return f.Match(t.PID, t.Comm, pcomm[t.PID]) && f.MatchContainer(pcontainer[t.PID])
	}
}

func taskRecords(s *snapshot.Snapshot, f snapshot.Filter) records {
	r := records{columns: []string{"snapshot", "pid", "tid", "comm", "state", "stack", "cgroup", "container", "pod", "ns_pid"}}
	keep := keepTasks(s, f)
	for _, t := range s.Tasks {
		if keep != nil && !keep(&t) {
			continue
		}
		r.add(s.ID, t.PID, t.TID, t.Comm, string(t.StateLetter()), s.StackOf(t).Folded(),
			t.Cgroup, t.Container(), t.Pod(), unknownZero(t.NSPID))
	}
	return r
}

func fdRecords(s *snapshot.Snapshot, f snapshot.Filter) records {
	r := records{columns: []string{"snapshot", "pid", "comm", "fd", "kind", "path", "proto", "sock_state", "local", "remote", "netns"}}
	pcomm, pcontainer := processComms(s), processContainers(s)
	for _, fd := range s.Files {
		if !f.Match(fd.PID, pcomm[fd.PID], pcomm[fd.PID]) || !f.MatchContainer(pcontainer[fd.PID]) {
			continue
		}
		so := fd.Socket
		r.add(s.ID, fd.PID, pcomm[fd.PID], fd.FD, fd.Kind(), fd.Path,
			so.Proto(), so.StateName(), so.LocalEnd(), so.RemoteEnd(), unknownZero(so.NetNS))
	}
	return r
}

// unknownZero is nil (an empty cell) for 0, a value no kernel gives a
// namespace or a pid: a collector that could not read it.
func unknownZero(v uint32) any {
	if v == 0 {
		return nil
	}
	return v
}

// stackRecords groups threads by identical stack, most common first: the
// question at 3 a.m. is usually "what are all these threads waiting on".
func stackRecords(s *snapshot.Snapshot, f snapshot.Filter) records {
	type group struct {
		threads int
		states  map[string]int
		comms   map[string]int
		folded  string
	}
	groups := map[string]*group{}
	keep := keepTasks(s, f)
	for _, t := range s.Tasks {
		if keep != nil && !keep(&t) {
			continue
		}
		folded := s.StackOf(t).Folded()
		g := groups[folded]
		if g == nil {
			g = &group{states: map[string]int{}, comms: map[string]int{}, folded: folded}
			groups[folded] = g
		}
		g.threads++
		g.states[string(t.StateLetter())]++
		g.comms[t.Comm]++
	}
	list := make([]*group, 0, len(groups))
	for _, g := range groups {
		list = append(list, g)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].threads != list[j].threads {
			return list[i].threads > list[j].threads
		}
		return list[i].folded < list[j].folded
	})
	r := records{columns: []string{"snapshot", "threads", "states", "comms", "stack"}}
	for _, g := range list {
		r.add(s.ID, g.threads, counts(g.states, 0), counts(g.comms, 5), g.folded)
	}
	return r
}

// counts renders {"D": 3, "S": 1} as "D(3) S(1)", largest first, keeping at
// most limit entries (0 = all).
func counts(m map[string]int, limit int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if limit > 0 && i == limit {
			fmt.Fprintf(&b, " +%d more", len(keys)-limit)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s(%d)", k, m[k])
	}
	return b.String()
}

// writeHeader tells a person which snapshot they are looking at.
func writeHeader(w io.Writer, s *snapshot.Snapshot) {
	m := s.Meta
	fmt.Fprintf(w, "# snapshot %d  %s  host %s  kernel %s  collector %s  %d threads  %d processes  %d fds",
		s.ID, m.Time.Format("2006-01-02 15:04:05 MST"), m.Hostname, m.Kernel, m.Collector, m.Threads, m.Processes, m.FDs)
	if m.Label != "" {
		fmt.Fprintf(w, "  label %q", m.Label)
	}
	if !m.Filter.Empty() {
		fmt.Fprintf(w, "  filter %s", filterString(m.Filter))
	}
	fmt.Fprintln(w)
	for _, n := range m.Notes {
		fmt.Fprintf(w, "# note: %s\n", n)
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
