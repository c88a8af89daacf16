package output

import "golang.org/x/sys/unix"

// kernelFS names the kernel's own filesystem dir is on (procfs, sysfs, ...),
// where no output file can go; "" for any other.
func kernelFS(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return ""
	}
	// Magic numbers from include/uapi/linux/magic.h.
	switch st.Type {
	case unix.PROC_SUPER_MAGIC:
		return "procfs"
	case unix.SYSFS_MAGIC:
		return "sysfs"
	case unix.CGROUP2_SUPER_MAGIC, unix.CGROUP_SUPER_MAGIC:
		return "cgroupfs"
	case unix.DEBUGFS_MAGIC, unix.TRACEFS_MAGIC:
		return "debugfs"
	case unix.BPF_FS_MAGIC:
		return "bpffs"
	}
	return ""
}
