//go:build linux

package collect

import (
	"os"
	"strings"
	"syscall"
)

// HostMeta returns the host's name, kernel release and boot id. A field that
// cannot be read is left empty and named in notes.
func HostMeta() (hostname, kernel, bootID string, notes []string) {
	hostname, _ = os.Hostname()
	var u syscall.Utsname
	if err := syscall.Uname(&u); err == nil {
		kernel = utsString(u.Release[:])
	}
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		notes = append(notes, "boot id unreadable: "+err.Error())
	}
	bootID = strings.TrimSpace(string(b))
	return hostname, kernel, bootID, notes
}

func utsString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
