package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/export"
	"github.com/itersnap/itersnap/output"
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
	g.bindOutput(cmd, true)
	return cmd
}

func runShow(o *showOptions, ref string, stdout io.Writer) error {
	stacks := o.format == formatFolded || o.format == formatPprof
	if stacks && o.fds {
		return usagef("--format %s exports kernel stacks: it does not go with --fds", o.format)
	}
	if o.format == formatPprof && toStdout(o.output) && output.IsTerminal(stdout) {
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
	return o.withOutput(stdout, func(w io.Writer, opts output.Options) error {
		switch o.format {
		case formatFolded:
			return export.WriteFolded(w, export.Folded(s, keepTasks(s, f)))
		case formatPprof:
			return export.Profile(s, keepTasks(s, f)).Write(w)
		case formatTable:
			if err := output.WriteSnapshotHeader(w, s); err != nil {
				return err
			}
		}
		switch {
		case o.fds:
			return output.WriteRecords(w, output.FDColumns, output.FDRows(s, f), opts)
		case o.stacks:
			return output.WriteRecords(w, output.StackColumns, output.StackRows(s, keepTasks(s, f)), opts)
		}
		return output.WriteRecords(w, output.TaskColumns, output.TaskRows(s, keepTasks(s, f)), opts)
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

// keepTasks is f as a predicate on s's threads: --comm matches a thread's
// name or its process's. nil keeps every thread.
func keepTasks(s *snapshot.Snapshot, f snapshot.Filter) export.Keep {
	if f.Empty() {
		return nil
	}
	procs := output.ProcessesByPID(s)
	return func(t *snapshot.Task) bool {
		p := procs[t.PID]
		return f.Match(t.PID, t.Comm, p.Comm) && f.MatchContainer(p.Container())
	}
}
