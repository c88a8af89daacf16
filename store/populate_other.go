//go:build !linux

package store

// populate: only Linux maps pages ahead on request; elsewhere they fault
// in on first use.
func populate([]byte) {}
