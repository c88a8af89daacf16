//go:build linux

package collect

import (
	"testing"

	"github.com/itersnap/itersnap/snapshot"
)

func TestDedupFiles(t *testing.T) {
	in := []snapshot.File{{PID: 1, FD: 0}, {PID: 1, FD: 0}, {PID: 1, FD: 1}, {PID: 2, FD: 1}, {PID: 2, FD: 1}, {PID: 2, FD: 2}}
	got := dedupFiles(in)
	if len(got) != 4 || got[1].FD != 1 || got[2].PID != 2 || got[3].FD != 2 {
		t.Errorf("dedupFiles = %+v", got)
	}
}
