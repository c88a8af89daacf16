//go:build !linux

package prefault

// Populate: only Linux maps pages ahead on request; elsewhere they fault
// in on first use.
func Populate([]byte) bool { return false }
