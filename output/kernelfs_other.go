//go:build !linux

package output

// kernelFS: procfs and sysfs are Linux's; elsewhere the error says enough.
func kernelFS(string) string { return "" }
