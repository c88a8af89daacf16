//go:build linux

package bpf

import (
	"errors"
	"os"
	"strings"
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
		t.Errorf("refusal names %q, want %q", got, want)
	}
}
