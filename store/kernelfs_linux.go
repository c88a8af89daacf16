package store

import "golang.org/x/sys/unix"

// kernelFilesystems names the filesystems whose files the kernel makes up
// (include/uapi/linux/magic.h): none can hold a database, and their files
// mislead (a /proc file has size 0; sysfs refuses to create files even to
// root, with EACCES).
var kernelFilesystems = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "procfs",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroupfs",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.BPF_FS_MAGIC:        "bpffs",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
	unix.PSTOREFS_MAGIC:      "pstore",
	unix.EFIVARFS_MAGIC:      "efivarfs",
	0x62656570:               "configfs", // CONFIGFS_MAGIC
}

// kernelFS returns the name of the kernel filesystem path is on, or "".
func kernelFS(path string) string {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return ""
	}
	return kernelFilesystems[int64(st.Type)]
}
