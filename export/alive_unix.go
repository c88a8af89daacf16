//go:build !windows

package export

import (
	"errors"
	"syscall"
)

// alive reports whether process pid exists: kill(pid, 0) checks without
// sending anything (kill(2): "If sig is 0, then no signal is sent, but
// existence and permission checks are still performed").
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
