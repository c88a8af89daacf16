//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

// TestCommEqualStopsAtNUL runs the programs' comm compare (test_comm_equal,
// an XDP program BPF_PROG_TEST_RUN feeds two comms) on comms with bytes
// after the NUL, as kernels before 5.17 leave them ("test\0er/0" once
// "swapper/0" was renamed "test"). A compare of all 16 bytes fails it.
func TestCommEqualStopsAtNUL(t *testing.T) {
	bpftest.RequireBPF(t)
	comm := func(s string) []byte {
		b := make([]byte, commLen)
		copy(b, s)
		return b
	}
	cases := []struct {
		task, filter []byte
		want         uint32
	}{
		{comm("test"), comm("test"), 1},
		{comm("test\x00er/0"), comm("test"), 1},
		{comm("\x00wapper/0"), comm(""), 1},
		{comm("tester"), comm("test"), 0},
		{comm("test"), comm("tester"), 0},
		{comm("tesT\x00er/0"), comm("test"), 0},
		{comm("fifteen-chars-x"), comm("fifteen-chars-x"), 1},
		{comm("fifteen-chars-x"), comm("fifteen-chars-y"), 0},
	}
	for _, obj := range []object{mainObject, loopsObject} {
		spec, err := obj.spec()
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Prog *ebpf.Program `ebpf:"test_comm_equal"`
		}
		if err := spec.LoadAndAssign(&p, nil); err != nil {
			t.Fatalf("%s: load test_comm_equal: %+v", obj.name, err)
		}
		defer p.Prog.Close()
		for _, c := range cases {
			got, err := p.Prog.Run(&ebpf.RunOptions{Data: append(append([]byte(nil), c.task...), c.filter...)})
			if err != nil {
				t.Fatalf("%s: run test_comm_equal: %v", obj.name, err)
			}
			if got != c.want {
				t.Errorf("%s: comm_equal(%q, %q) = %d, want %d", obj.name, c.task, c.filter, got, c.want)
			}
		}
	}
}

// TestLoadForcedLoops: with ForceLoopsEnv set, Load loads the bounded-loop
// object and says so.
func TestLoadForcedLoops(t *testing.T) {
	t.Setenv(ForceLoopsEnv, "1")
	o := load(t, Filter{})
	if o.Object() != ObjectLoops || !strings.Contains(o.MainRefusal(), ForceLoopsEnv) {
		t.Errorf("Object() = %q, MainRefusal() = %q; want %q and the variable", o.Object(), o.MainRefusal(), ObjectLoops)
	}
}

// ExpectRefusalEnv is set by scripts/test-kernels on kernels that must
// refuse both objects, to what the refusal names, "; "-separated.
const expectRefusalEnv = "ITERSNAP_EXPECT_REFUSAL"

// TestLoadRefusal runs on kernels that lack what both objects need (Debian
// 11's 5.10 in scripts/test-kernels): Load must fail with a MissingError
// that names exactly the features the test harness expects.
func TestLoadRefusal(t *testing.T) {
	want := os.Getenv(expectRefusalEnv)
	if want == "" {
		t.Skipf("%s is not set: this kernel is expected to load the programs", expectRefusalEnv)
	}
	bpftest.RequireBPF(t)
	o, err := Load(Filter{})
	if err == nil {
		o.Close()
		t.Fatalf("Load succeeded; want the kernel to refuse (%s)", want)
	}
	var missing *MissingError
	if !errors.As(err, &missing) || !errors.Is(err, ebpf.ErrNotSupported) {
		t.Fatalf("Load: %v (%T); want a *MissingError", err, err)
	}
	if got := strings.Join(missing.Features, "; "); got != want {
		t.Errorf("refusal names %q, want %q; the refusal:\n%+v", got, want, missing.Err)
	}
}

// TestRefusalNamesFeature: the verifier logs of a refused load, in the
// shapes kernel/bpf/verifier.c prints them, name the feature.
func TestRefusalNamesFeature(t *testing.T) {
	stats := "processed 237 insns (limit 1000000) max_states_per_insn 1 total_states 16 peak_states 16 mark_read 5"
	cases := []struct {
		log  []string
		want string
	}{
		// A helper the kernel does not know (5.10 and bpf_snprintf).
		{[]string{"91: (bf) r5 = r10", "92: (85) call unknown#165", "invalid func unknown#165", stats}, "bpf_snprintf: Linux 5.13"},
		// A helper this program type may not call (5.15 and bpf_loop
		// would say invalid func; a type without it says unknown func).
		{[]string{"222: (85) call bpf_loop#181", "unknown func bpf_loop#181", stats, "verification time 12 usec"}, "bpf_loop: Linux 5.17"},
		// A helper whose allowed() refuses iterators (bpf_d_path before 5.12).
		{[]string{"198: (85) call bpf_d_path#147", "helper call is not allowed in probe", stats}, "bpf_d_path in iterator programs: Linux 5.12"},
		// A helper not in the table: its name and the verifier's words.
		{[]string{"5: (85) call bpf_ktime_get_ns#5", "unknown func bpf_ktime_get_ns#5", stats}, "helper FnKtimeGetNs (#5): unknown func bpf_ktime_get_ns#5"},
		// Not about a call: the verifier's last words.
		{[]string{"7: (61) r1 = *(u32 *)(r2 +0)", "R2 invalid mem access 'scalar'", stats}, "verifier: R2 invalid mem access 'scalar'"},
	}
	for _, c := range cases {
		err := fmt.Errorf("load program: %w", &ebpf.VerifierError{Cause: syscall.EINVAL, Log: c.log})
		if got := refusal(err); got != c.want {
			t.Errorf("refusal of %q = %q, want %q", c.log, got, c.want)
		}
	}
	if got := refusal(errors.New("attach target bpf_iter_task: not found")); got != "attach target bpf_iter_task: not found" {
		t.Errorf("refusal of a plain error = %q", got)
	}
}

// BenchmarkLoad times a Load and Close of each object: the bounded-loop
// one costs the verifier's walk of every loop iteration.
func BenchmarkLoad(b *testing.B) {
	bpftest.RequireBPF(b)
	for _, obj := range []struct{ name, force string }{{ObjectMain, ""}, {ObjectLoops, "1"}} {
		b.Run(obj.name, func(b *testing.B) {
			b.Setenv(ForceLoopsEnv, obj.force)
			for b.Loop() {
				o, err := Load(Filter{})
				if err != nil {
					b.Fatal(err)
				}
				o.Close()
			}
		})
	}
}
