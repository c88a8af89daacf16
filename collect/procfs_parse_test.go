//go:build linux

package collect

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/itersnap/itersnap/snapshot"
)

func TestStateFromLetter(t *testing.T) {
	for _, c := range []byte(snapshot.StateLetters) {
		state, exit, missing, ok := stateFromLetter(c)
		if !ok {
			t.Errorf("%c: not known", c)
			continue
		}
		task := snapshot.Task{State: state, ExitState: exit, Missing: missing}
		if got := task.StateLetter(); got != c {
			t.Errorf("%c: state %#x exit %#x gives back %c", c, state, exit, got)
		}
		if got, want := missing&snapshot.MissingKillable != 0, c == 'D'; got != want {
			t.Errorf("%c: MissingKillable %v, want %v", c, got, want)
		}
		if got, want := task.Blocked(), c == 'D'; got != want {
			t.Errorf("%c: Blocked() %v, want %v", c, got, want)
		}
	}
	if _, _, _, ok := stateFromLetter('W'); ok {
		t.Error("W (paging, gone since 2.6) known")
	}
}

func TestParseStat(t *testing.T) {
	const tail = " 0 0 0 -1 4194560 124 0 1 0 0 0 0 0 20 0 1 0 351632 2990080 412 18446744073709551615\n"
	for _, tc := range []struct {
		line string
		want taskStat
	}{
		{"8339 (sleep) S 8337" + tail, taskStat{comm: []byte("sleep"), state: 'S', ppid: 8337, flags: 4194560, start: 351632}},
		{"1 (a b c) R 0" + tail, taskStat{comm: []byte("a b c"), state: 'R', ppid: 0, flags: 4194560, start: 351632}},
		// comm ends at the last ')', whatever it holds.
		{"12 (x) S 99 (y)) D 7" + tail, taskStat{comm: []byte("x) S 99 (y)"), state: 'D', ppid: 7, flags: 4194560, start: 351632}},
		{"12 ((()) Z 7" + tail, taskStat{comm: []byte("(()"), state: 'Z', ppid: 7, flags: 4194560, start: 351632}},
		{"12 () t 7" + tail, taskStat{comm: []byte(""), state: 't', ppid: 7, flags: 4194560, start: 351632}},
		{"12 (new\nline) I 2" + tail, taskStat{comm: []byte("new\nline"), state: 'I', ppid: 2, flags: 4194560, start: 351632}},
		// starttime is the last field parsed: a line that stops there will do.
		{"5 (k) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 17", taskStat{comm: []byte("k"), state: 'S', ppid: 2, flags: 2129984, start: 17}},
	} {
		got, err := parseStat([]byte(tc.line))
		if err != nil {
			t.Errorf("parseStat(%q): %v", tc.line, err)
			continue
		}
		if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(taskStat{})); d != "" {
			t.Errorf("parseStat(%q) (-want +got):\n%s", tc.line, d)
		}
	}
	for _, bad := range []string{
		"",
		"12 (x S 7" + tail,
		"12 x) S 7" + tail,
		"12 (x) S",
		"12 (x) S 7 0 0 0 -1 4194560 124 0 1 0 0 0 0 0 20 0 1 0",
		"12 (x) SS 7" + tail,
		"12 (x) S -7" + tail,
		"12 (x) S 7 0 0 0 -1 flags 124 0 1 0 0 0 0 0 20 0 1 0 351632\n",
	} {
		if got, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestKernelComm(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags uint32
		want  string
	}{
		{"bash", 0x400000, "bash"},
		{"kworker/0:1-events", snapshot.PFKthread | pfWQWorker, "kworker/0:1"},
		{"kworker/u8:1-flush-254:0", snapshot.PFKthread | pfWQWorker, "kworker/u8:1"},
		{"kworker/1:1H+kblockd", snapshot.PFKthread | pfWQWorker, "kworker/1:1H"},
		{"kworker/u9:0", snapshot.PFKthread | pfWQWorker, "kworker/u9:0"},
		{"kworker/R-quota_events_unbound", snapshot.PFKthread | pfWQWorker, "kworker/R-quota"},
		{"kworker/R-mld", snapshot.PFKthread | pfWQWorker, "kworker/R-mld"},
		{"rcu_exp_par_gp_kthread_worker/0", snapshot.PFKthread, "rcu_exp_par_gp_"},
		// Not a worker: a '-' is part of the name.
		{"kvm-nx-lpage-re", snapshot.PFKthread, "kvm-nx-lpage-re"},
		{"memfd:sealed-91", 0, "memfd:sealed-91"},
	} {
		if got := string(kernelComm([]byte(tc.name), tc.flags)); got != tc.want {
			t.Errorf("kernelComm(%q, %#x) = %q, want %q", tc.name, tc.flags, got, tc.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	const status = "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t2418\nNgid:\t0\nPid:\t2419\nPPid:\t1\n" +
		"TracerPid:\t0\nUid:\t1000\t1001\t1002\t1003\nGid:\t0\t0\t0\t0\nFDSize:\t256\n" +
		"voluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n"
	got, err := parseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := (taskStatus{tgid: 2418, euid: 1001, switches: 157}); got != want {
		t.Errorf("parseStatus = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "Tgid:\t1\nUid:\t0\t0\t0\t0\n", "Tgid:\t1\nUid:\t0\nvoluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t1\n"} {
		if got, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestParseNoFileLimit(t *testing.T) {
	const limits = "Limit                     Soft Limit           Hard Limit           Units     \n" +
		"Max processes             63439                63439                processes \n" +
		"Max open files            %s                %s               files     \n" +
		"Max locked memory         8388608              8388608              bytes     \n"
	for _, tc := range []struct {
		soft, hard string
		want       uint64
	}{
		{"1024", "524288", 1024},
		{"unlimited", "unlimited", snapshot.NoLimit},
		{"20000", "unlimited", 20000},
	} {
		got, err := parseNoFileLimit(fmt.Appendf(nil, limits, tc.soft, tc.hard))
		if err != nil || got != tc.want {
			t.Errorf("soft %s: got %d, %v; want %d", tc.soft, got, err, tc.want)
		}
	}
	if _, err := parseNoFileLimit([]byte("Max processes 1 1 processes\n")); err == nil {
		t.Error("no Max open files line: no error")
	}
}

func TestAppendStackFrames(t *testing.T) {
	const text = "[<0>] hrtimer_nanosleep+0x74/0xf0\n" +
		"[<0>] nfs_wait_bit_killable+0x1c/0x80 [nfs]\n" +
		"[<0>] __x64_sys_nanosleep+0xbc/0xf0\n"
	want := snapshot.Stack{"hrtimer_nanosleep+0x74/0xf0", "nfs_wait_bit_killable+0x1c/0x80 [nfs]", "__x64_sys_nanosleep+0xbc/0xf0"}
	if d := cmp.Diff(want, appendStackFrames(nil, []byte(text))); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := appendStackFrames(nil, nil); len(got) != 0 {
		t.Errorf("empty file: %q", got)
	}
}

func TestParseFDInfoFlags(t *testing.T) {
	got, err := parseFDInfoFlags([]byte("pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t3\n"))
	if err != nil || got != 0o2100002 {
		t.Errorf("got %#o, %v; want 02100002", got, err)
	}
	if _, err := parseFDInfoFlags([]byte("pos:\t0\n")); err == nil {
		t.Error("no flags line: no error")
	}
}

func TestParseDirents(t *testing.T) {
	var b []byte
	add := func(name string) {
		reclen := (19 + len(name) + 1 + 7) &^ 7
		rec := make([]byte, reclen)
		binary.NativeEndian.PutUint16(rec[16:], uint16(reclen))
		copy(rec[19:], name)
		b = append(b, rec...)
	}
	for _, name := range []string{".", "..", "1", "self", "4194304", "12a", "thread-self", "0"} {
		add(name)
	}
	if d := cmp.Diff([]uint32{1, 4194304, 0}, parseDirents(b, nil)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
