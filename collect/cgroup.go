//go:build linux

package collect

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/itersnap/itersnap/bpf"
	"github.com/itersnap/itersnap/snapshot"
)

// cgroupTree maps the cgroup v2 hierarchy's directories to their inode
// numbers and back. A cgroup's kernfs node id is its directory's inode
// number on 64-bit kernels (include/linux/kernfs.h kernfs_ino), so ids the
// BPF program reads (task->cgroups->dfl_cgrp->kn->id) resolve with one walk
// of the mount per take, not a read per task.
type cgroupTree struct {
	byID   map[uint64]string
	byPath map[string]uint64
}

// findCgroup2 returns where the cgroup v2 hierarchy is mounted and the
// cgroup its root is (not "/" inside a cgroup namespace or a bind mount),
// from mountinfo: /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified
// on a hybrid one. The first cgroup2 mount wins.
func findCgroup2(mountinfo []byte) (mountpoint, root string, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
		fields := bytes.Fields(sc.Bytes())
		sep := -1
		for i, f := range fields {
			if string(f) == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || string(fields[sep+1]) != "cgroup2" {
			continue
		}
		return unescapeMount(fields[4]), unescapeMount(fields[3]), true
	}
	return "", "", false
}

// unescapeMount undoes the octal escapes fs/proc_namespace.c mangle()
// writes for space, tab, newline and backslash.
func unescapeMount(b []byte) string {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+4 <= len(b) {
			if v, err := strconv.ParseUint(string(b[i+1:i+4]), 8, 8); err == nil {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, b[i])
	}
	return string(out)
}

// Cgroup2Mount returns where this process sees the cgroup v2 hierarchy
// mounted, and the cgroup path of the mount's root (see findCgroup2).
func Cgroup2Mount() (mountpoint, root string, err error) {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	mnt, root, ok := findCgroup2(info)
	if !ok {
		return "", "", fmt.Errorf("no cgroup2 mount")
	}
	return mnt, root, nil
}

// walkCgroups reads the cgroup v2 hierarchy. Cgroups that go away during
// the walk are left out.
//
// Both collectors walk it on every take, so it reads each directory with
// getdents(2) alone: a child cgroup's inode number and type are in its
// entry, and the 20 to 40 control files beside it are skipped unread.
// filepath.WalkDir, which it replaces, also sorted every directory and
// stat'ed every cgroup: at 526 cgroups that walk was 15 ms of an idle
// host's 24 ms take.
func walkCgroups() (*cgroupTree, error) {
	mnt, root, err := Cgroup2Mount()
	if err != nil {
		return nil, err
	}
	fd, err := openDirAt(unix.AT_FDCWD, mnt)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: mnt, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: mnt, Err: err}
	}
	t := &cgroupTree{byID: map[uint64]string{}, byPath: map[string]uint64{}}
	t.add(st.Ino, root)
	t.walk(fd, root, make([]byte, 16<<10))
	return t, nil
}

func (t *cgroupTree) add(id uint64, cgroup string) {
	t.byID[id] = cgroup
	t.byPath[cgroup] = id
}

// maxDirent is the largest struct linux_dirent64: 19 bytes before the
// name, a name of NAME_MAX (255) bytes and its NUL, 8-byte aligned.
const maxDirent = (19 + 255 + 1 + 7) &^ 7

// walk adds the cgroups below the directory fd, whose cgroup path is
// cgroup, and closes fd. Children are opened relative to their parent,
// which stays open meanwhile: the walk holds as many fds as the hierarchy
// is deep, and a subtree it cannot open (EMFILE, or gone meanwhile) is
// left out.
func (t *cgroupTree) walk(fd int, cgroup string, buf []byte) {
	defer unix.Close(fd)
	type child struct {
		ino  uint64
		name string
	}
	var children []child
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		eachDirent(buf[:n], func(ino uint64, typ uint8, name []byte) {
			// fs/kernfs/dir.c kernfs_fop_readdir fills d_type from the
			// node's mode: a cgroup2 mount never says DT_UNKNOWN.
			if typ == unix.DT_DIR && string(name) != "." && string(name) != ".." {
				children = append(children, child{ino, string(name)})
			}
		})
		// fs/kernfs/dir.c kernfs_fop_readdir stops only when an entry
		// does not fit: with room left for the largest, that was the
		// last, and the read that would return 0 is spared.
		if len(buf)-n >= maxDirent {
			break
		}
	}
	for _, c := range children {
		cg := path.Join(cgroup, c.name)
		t.add(c.ino, cg)
		if cfd, err := openDirAt(fd, c.name); err == nil {
			t.walk(cfd, cg, buf)
		}
	}
}

// rootCgroupID is the cgroup v2 root's kernfs node id: the root of a
// kernfs tree is its inode 1 (fs/kernfs/dir.c kernfs_create_root). A host
// without the hierarchy mounted still has every task in it.
const rootCgroupID = 1

// cgroupName is what the task walk told of a cgroup (bpf.CgroupRecord):
// its parent's id (0 for the root) and its directory's name.
type cgroupName struct {
	parent uint64
	name   string
}

// cgroupPaths builds the paths of the cgroups the kernel named. A cgroup
// whose name or an ancestor's is missing (the kernel could not read it, or
// the chain was deeper than one task's records carry) gets none.
func cgroupPaths(names map[uint64]cgroupName) map[uint64]string {
	paths := make(map[uint64]string, len(names))
	var chain []uint64
	for id := range names {
		// Up to the first ancestor with a path (or the root), then down.
		chain = chain[:0]
		p, ok := "", false
		for at := id; ; {
			if p, ok = paths[at]; ok {
				break
			}
			n, named := names[at]
			if !named || len(chain) > maxCgroupLevel {
				break
			}
			chain = append(chain, at)
			if n.parent == 0 {
				p, ok = "/", true
				break
			}
			at = n.parent
		}
		if !ok {
			continue
		}
		for i := len(chain) - 1; i >= 0; i-- {
			if n := names[chain[i]]; n.parent != 0 {
				p = path.Join(p, n.name)
			}
			paths[chain[i]] = p
		}
	}
	return paths
}

// maxCgroupLevel bounds a chain of names (the kernel's cgroup.max.depth
// is unbounded, but no host nests cgroups this deep).
const maxCgroupLevel = 255

// resolveCgroups fills each task's Cgroup from its CgroupID, with the
// names the kernel gave (nil: none), and returns notes on what could not
// be resolved. Only cgroups the kernel left unnamed make it read the
// hierarchy, once (walked says so). Outside the initial cgroup namespace
// the names are not used: they make paths from the real root, and
// /proc/PID/cgroup, which the procfs collector reads, shows paths from the
// namespace's.
func resolveCgroups(tasks []snapshot.Task, names map[uint64]cgroupName) (notes []string, walked bool) {
	var paths map[uint64]string
	if len(names) > 0 && inInitialCgroupNS() {
		paths = cgroupPaths(names)
	}
	var tree *cgroupTree
	var err error
	unresolved := 0
	for i := range tasks {
		t := &tasks[i]
		if t.CgroupID == 0 {
			t.Missing |= snapshot.MissingCgroup
			unresolved++
			continue
		}
		var ok bool
		if t.Cgroup, ok = paths[t.CgroupID]; ok {
			continue
		}
		if tree == nil {
			walked = true
			if tree, err = walkCgroups(); err != nil {
				tree = &cgroupTree{byID: map[uint64]string{rootCgroupID: "/"}}
			}
		}
		if t.Cgroup, ok = tree.byID[t.CgroupID]; !ok {
			t.Missing |= snapshot.MissingCgroup
			unresolved++
		}
	}
	if unresolved > 0 {
		if err != nil {
			notes = append(notes, "cgroup v2 hierarchy unreadable: "+err.Error())
		}
		notes = append(notes, fmt.Sprintf("no cgroup path for %d threads (cgroup removed during the take, or no cgroup v2)", unresolved))
	}
	return notes, walked
}

// inInitialCgroupNS says whether this process is in the initial cgroup
// namespace, where cgroup paths start at the real root.
func inInitialCgroupNS() bool {
	var st syscall.Stat_t
	return syscall.Stat("/proc/self/ns/cgroup", &st) == nil && st.Ino == procCgroupInitIno
}

// keepCgroups applies the filter's container and cgroup part exactly: the
// kernel's part (kernelCgroups) lets through a superset, and the procfs
// collector has none. A process's fds stay when any of its threads does.
func keepCgroups(s *snapshot.Snapshot, f snapshot.Filter) {
	if len(f.Containers) == 0 && len(f.Cgroups) == 0 {
		return
	}
	kept := map[uint32]bool{}
	tasks := s.Tasks[:0]
	for _, t := range s.Tasks {
		if f.MatchCgroup(t.Cgroup) {
			tasks = append(tasks, t)
			kept[t.PID] = true
		}
	}
	s.Tasks = tasks
	files := s.Files[:0]
	for _, fd := range s.Files {
		if kept[fd.PID] {
			files = append(files, fd)
		}
	}
	s.Files = files
}

// cgroupIDs fills each task's CgroupID from its Cgroup path, as the BPF
// collector reads it from the kernel, and returns notes on what could not
// be found.
func cgroupIDs(tasks []snapshot.Task) []string {
	tree, err := walkCgroups()
	if err != nil {
		tree = &cgroupTree{byPath: map[string]uint64{"/": rootCgroupID}}
	}
	unresolved := 0
	for i := range tasks {
		t := &tasks[i]
		if t.Cgroup == "" {
			continue // unreadable: already noted
		}
		if t.CgroupID = tree.byPath[t.Cgroup]; t.CgroupID == 0 {
			unresolved++
		}
	}
	if unresolved > 0 && err != nil {
		return []string{"cgroup v2 hierarchy unreadable: " + err.Error()}
	}
	return nil
}

// procCgroupInitIno is the initial cgroup namespace's inode number
// (include/linux/proc_ns.h PROC_CGROUP_INIT_INO).
const procCgroupInitIno = 0xEFFFFFFB

// kernelCgroups resolves the filter's container and cgroup part to the
// cgroups the BPF programs test a task's ancestors against: every cgroup
// that passes f.MatchCgroup and has no ancestor that does (a task below
// one is in its subtree). That is a superset of what the filter keeps (a
// container's nested containers have their own IDs), so keepCgroups still
// applies the exact rule after the walk; the kernel's part spares the
// walk and the decoding of everything else. It returns ok false, and why,
// when the kernel cannot do its part: then every task crosses and
// keepCgroups alone filters. A container whose cgroup appears after this
// walk of the hierarchy and before the kernel's is missed, as a process
// started after the take is. The fd walk judges a process by the thread
// that owns its fd table (its leader, as a rule): in a threaded cgroup
// tree, a process whose leader is outside and another thread inside keeps
// that thread but not its fds.
func kernelCgroups(f snapshot.Filter) (cgroups []bpf.Cgroup, ok bool, why string) {
	if len(f.Containers) == 0 && len(f.Cgroups) == 0 {
		return nil, false, ""
	}
	// The kernel's levels count from the real root; inside a cgroup
	// namespace the paths this process sees start lower.
	if !inInitialCgroupNS() {
		return nil, false, "not in the initial cgroup namespace"
	}
	tree, err := walkCgroups()
	if err != nil {
		return nil, false, "cgroup v2 hierarchy unreadable: " + err.Error()
	}
	paths := make([]string, 0, len(tree.byPath))
	for p := range tree.byPath {
		if f.MatchCgroup(p) {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths) // a cgroup before the cgroups below it
	kept := map[string]bool{}
outer:
	for _, p := range paths {
		for c, a := p, path.Dir(p); a != c; c, a = a, path.Dir(a) {
			if kept[a] {
				continue outer
			}
		}
		kept[p] = true
	}
	if len(kept) > bpf.MaxCgroups {
		return nil, false, fmt.Sprintf("%d cgroups match, more than the kernel filter's %d", len(kept), bpf.MaxCgroups)
	}
	for p := range kept {
		level := uint32(0)
		if p != "/" {
			level = uint32(strings.Count(p, "/"))
		}
		cgroups = append(cgroups, bpf.Cgroup{ID: tree.byPath[p], Level: level})
	}
	slices.SortFunc(cgroups, func(a, b bpf.Cgroup) int { return cmp.Compare(a.ID, b.ID) })
	return cgroups, true, ""
}
