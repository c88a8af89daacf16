package snapshot_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAnalysisImportsNoCollector checks the import graph: the packages that
// analyse a copied database (everything but collect and bpf) link neither
// the collectors nor cilium/ebpf, so they build and run on any OS.
func TestAnalysisImportsNoCollector(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	analysis := []string{"snapshot", "store", "diff", "export", "report"}
	for _, pkg := range []string{"output"} {
		if err := exec.Command(goTool, "list", "../"+pkg).Run(); err == nil {
			analysis = append(analysis, pkg)
		}
	}
	for _, pkg := range analysis {
		out, err := exec.Command(goTool, "list", "-deps", "../"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/cilium/ebpf") ||
				dep == "github.com/itersnap/itersnap/collect" || dep == "github.com/itersnap/itersnap/bpf" {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}
