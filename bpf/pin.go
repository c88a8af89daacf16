//go:build linux

package bpf

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Programs that stay loaded between takes. Loading costs 20-40 ms on
// every take (parsing kernel BTF for CO-RE, the verifier), most of a take
// on an idle host; an iterator link pinned in bpffs keeps its program
// loaded, and a later take opens the pin and reads it (bpf(BPF_OBJ_GET),
// then BPF_ITER_CREATE) for well under a millisecond.
//
// Layout: DIR/NAME/{task,file,symbolized}, where NAME hashes the embedded
// object and the filter constants, so a binary only ever opens programs
// built from its own object with its own filters. There is one NAME at a
// time: a take that pins removes every other entry of DIR.
//
// Atomicity: a take that pins holds an flock on DIR, pins into a temporary
// directory DIR/.tmp.*, then renames it to DIR/NAME: NAME is complete or
// absent, and a take killed while pinning leaves only a temporary
// directory, which the next take that pins removes (under the same lock,
// any temporary directory but its own belongs to a dead take).
//
// Per-walk state: the programs share maps (the per-CPU scratch records, the
// symbolized addresses) among everyone who reads them, so a take holds an
// flock on DIR/NAME while it walks, and each task walk starts by clearing
// the symbolized map. Two takes at once both succeed, one after the other.

// DefaultPinDir is where takes pin their programs: under /sys/fs/bpf, where
// systemd mounts bpffs and bpftool pins.
const DefaultPinDir = "/sys/fs/bpf/itersnap"

// Source is how a take's programs came to be.
type Source int

const (
	Loaded Source = iota // loaded for this take only
	Pinned               // loaded, then pinned for later takes
	Opened               // opened from the pins of an earlier take
)

func (s Source) String() string {
	switch s {
	case Pinned:
		return "loaded and pinned"
	case Opened:
		return "opened pinned"
	}
	return "loaded"
}

// Pin files in a pin directory.
const (
	pinTask       = "task"
	pinFile       = "file"
	pinSymbolized = "symbolized"
	tmpPrefix     = "tmp-" // bpffs refuses names with dots (kernel/bpf/inode.c, bpf_lookup)
)

// lockWait is how long a take waits for another take's walk of the pinned
// programs (tens of milliseconds, hundreds on a huge host) before it loads
// programs of its own instead.
const lockWait = 10 * time.Second

// errBusy says the pinned programs stayed locked for lockWait.
var errBusy = errors.New("another take held them for " + lockWait.String())

// pinHook is called at each stage of pinning; tests kill a take there.
var pinHook = func(stage string) {}

// Open returns the programs for f: opened from their pins under dir when an
// earlier take left them there, else loaded and pinned there for later
// takes. Where pinning fails, the loaded programs serve this take all the
// same and o.PinError says why. With dir empty it loads without pinning, as
// Load. Close the objects after the walks: they hold the pins' lock.
func Open(f Filter, dir string) (*Objects, error) {
	if dir == "" {
		return Load(f)
	}
	name, err := pinName(f)
	if err != nil {
		return nil, err
	}
	if err := preparePinDir(dir); err != nil {
		o, lerr := Load(f)
		if lerr != nil {
			return nil, lerr
		}
		o.PinError = fmt.Errorf("programs not pinned in %s: %w", dir, err)
		return o, nil
	}
	o, openErr := openPinned(filepath.Join(dir, name))
	if openErr == nil {
		return o, nil
	}
	o, err = Load(f)
	if err != nil {
		return nil, err
	}
	// Nothing pinned yet, or pins this take cannot use (a directory
	// someone emptied): pin these. Pins another take is walking are left
	// to it.
	pinErr := openErr
	if !errors.Is(openErr, errBusy) {
		pinErr = o.pin(dir, name)
	}
	if pinErr != nil {
		o.PinError = fmt.Errorf("programs not pinned in %s: %w", dir, pinErr)
		return o, nil
	}
	o.Source = Pinned
	return o, nil
}

// pinName names the pin directory of f's programs: a hash of the object
// the programs are loaded from and of the filter constants set before load.
func pinName(f Filter) (string, error) {
	h := sha256.New()
	h.Write(_ItersnapBytes)
	for _, c := range filterConsts(f) {
		h.Write([]byte(c.name))
		if err := binary.Write(h, binary.LittleEndian, c.value); err != nil {
			return "", fmt.Errorf("hash %s: %w", c.name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// attach creates the iterator links of freshly loaded programs: what the
// walks open, and what pins hold.
func attach(objs *itersnapObjects) (*Objects, error) {
	o := &Objects{objs: objs, symbolized: objs.Symbolized}
	var err error
	if o.task, err = link.AttachIter(link.IterOptions{Program: objs.DumpTask}); err != nil {
		o.Close()
		return nil, fmt.Errorf("attach task iterator: %w", err)
	}
	if o.file, err = link.AttachIter(link.IterOptions{Program: objs.DumpFile}); err != nil {
		o.Close()
		return nil, fmt.Errorf("attach task_file iterator: %w", err)
	}
	return o, nil
}

// preparePinDir makes dir a directory only root can enter, on bpffs:
// where its parent is not a bpffs, it mounts one there, as bpftool does for
// its pins (most hosts have one at /sys/fs/bpf, mounted by systemd).
func preparePinDir(dir string) error {
	if parent := filepath.Dir(dir); !onBPFFS(dir) && !onBPFFS(parent) {
		if err := mountBPFFS(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return checkPrivate(dir)
}

// mountBPFFS mounts a bpffs on dir, unless another take just did: takes
// starting at once would stack mounts, each hiding the pins of the one
// below. The lock is on the directory under the mount, which every take
// that found no bpffs opened.
func mountBPFFS(dir string) error {
	lock, err := lockDir(dir)
	if err != nil {
		return fmt.Errorf("%s is not a bpffs: %w", dir, err)
	}
	defer lock.Close()
	if onBPFFS(dir) {
		return nil
	}
	// mode=0700: bpftool's choice; the pins are root's alone.
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("%s is not a bpffs, and mounting one there failed: %w", dir, err)
	}
	return nil
}

// checkPrivate makes sure dir is a directory of this user's that no one
// else can enter; it tightens the mode of one that is this user's.
func checkPrivate(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: dir, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%s is not a directory", dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s belongs to uid %d", dir, st.Uid)
	case st.Mode&0o077 != 0:
		return os.Chmod(dir, 0o700)
	}
	return nil
}

func onBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}

// openPinned opens the programs pinned in dir and locks dir for this
// take's walks. A missing dir is fs.ErrNotExist.
func openPinned(dir string) (_ *Objects, err error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	o := &Objects{lock: lock, Source: Opened}
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	if o.task, err = loadPinnedIter(filepath.Join(dir, pinTask)); err != nil {
		return nil, err
	}
	if o.file, err = loadPinnedIter(filepath.Join(dir, pinFile)); err != nil {
		return nil, err
	}
	if o.symbolized, err = ebpf.LoadPinnedMap(filepath.Join(dir, pinSymbolized), nil); err != nil {
		return nil, err
	}
	// A take that pins replaces a directory, never its contents (pin
	// renames a complete one into place), so pins opened from the
	// directory this take locked, still in place, belong together.
	var locked, now unix.Stat_t
	if err := unix.Fstat(int(lock.Fd()), &locked); err != nil {
		return nil, err
	}
	if err := unix.Stat(dir, &now); err != nil || now.Ino != locked.Ino {
		return nil, fmt.Errorf("%s was replaced while it was opened: %w", dir, fs.ErrNotExist)
	}
	return o, nil
}

func loadPinnedIter(path string) (*link.Iter, error) {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return nil, err
	}
	it, ok := l.(*link.Iter)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("%s is not an iterator link", path)
	}
	return it, nil
}

// pin pins o's links and per-walk map under dir/name, replacing every
// other entry of dir, and keeps dir/name locked for o's walks.
func (o *Objects) pin(dir, name string) (err error) {
	root, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tmp, err := os.MkdirTemp(dir, tmpPrefix)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	lock, err := lockDir(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	pinHook("temporary directory")
	pins := []struct {
		name string
		pin  func(string) error
	}{{pinTask, o.task.Pin}, {pinFile, o.file.Pin}, {pinSymbolized, o.symbolized.Pin}}
	for _, p := range pins {
		path := filepath.Join(tmp, p.name)
		if err := p.pin(path); err != nil {
			return err
		}
		// bpf_obj_pin creates pins 0600 less the umask; say it outright.
		if err := os.Chmod(path, 0o600); err != nil {
			return err
		}
		pinHook("pinned " + p.name)
	}
	// Stale pins (another object's, other filters', a dead take's
	// temporary directory) and an older copy of ours go first: a take
	// killed now leaves a temporary directory, removed by the next.
	if err := removeOthers(dir, filepath.Base(tmp)); err != nil {
		return err
	}
	pinHook("removed others")
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	o.lock = lock
	return nil
}

// removeOthers removes every entry of dir but keep.
func removeOthers(dir, keep string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == keep {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// lockDir opens dir and takes an exclusive flock on it, waiting up to
// lockWait. The lock lasts until the file is closed, or the process ends.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockWait)
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 20*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, &fs.PathError{Op: "flock", Path: dir, Err: err}
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s: %w", dir, errBusy)
		}
		time.Sleep(wait)
	}
}

// Unpin removes every pin under dir, and dir: the programs are unloaded
// once no take has them open. A dir that does not exist is not an error;
// one that is not on bpffs is refused (nothing of ours is there).
func Unpin(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if !onBPFFS(dir) {
		return fmt.Errorf("%s is not on a bpffs: it holds no pins", dir)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	return os.RemoveAll(dir)
}

// clearSymbolized empties the map of symbolized addresses, which holds
// the seq_num of the task that carries each symbol: left from an earlier
// walk, it would keep this walk from writing those symbols. One
// BPF_MAP_LOOKUP_AND_DELETE_BATCH (5.6) per 1,024 addresses; where the
// kernel lacks it, a delete per address.
func clearSymbolized(m *ebpf.Map) error {
	keys, values := make([]uint64, 1024), make([]uint64, 1024)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookupAndDelete(&cursor, keys, values, nil)
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			return nil
		case errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL):
			return clearOneByOne(m)
		case err != nil:
			return fmt.Errorf("clear symbolized addresses: %w", err)
		case n == 0:
			return nil
		}
	}
}

func clearOneByOne(m *ebpf.Map) error {
	var key uint64
	for {
		if err := m.NextKey(nil, &key); errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		} else if err != nil {
			return fmt.Errorf("clear symbolized addresses: %w", err)
		}
		if err := m.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear symbolized addresses: %w", err)
		}
	}
}
