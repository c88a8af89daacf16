package snapshot

import "strings"

// Container IDs and Kubernetes pod UIDs are not kernel objects: runtimes
// name the cgroups they create after them, and these functions read the
// names back from a cgroup v2 path (what the 0:: line of /proc/PID/cgroup
// shows). The forms, last element first:
//
//	docker-<64 hex>.scope          docker under systemd
//	/docker/<64 hex>               docker with the cgroupfs driver
//	cri-containerd-<id>.scope      containerd's CRI plugin under systemd
//	crio-<id>.scope                cri-o under systemd (crio-conmon-<id> is its monitor)
//	libpod-<id>.scope              podman
//	/kubepods/.../pod<uid>/<id>    kubelet with the cgroupfs driver
//
// and Kubernetes pods as kubepods[-burstable|-besteffort]-pod<uid>.slice
// under systemd, where the UID's dashes are underscores.

// ContainerID returns the container ID a cgroup path names, or "" when it
// names none. A process in a sub-cgroup of a container (a nested init,
// systemd in a container) belongs to it: the nearest element naming an ID
// wins.
func ContainerID(cgroup string) string {
	elems := strings.Split(cgroup, "/")
	for i := len(elems) - 1; i >= 0; i-- {
		if id := containerElem(elems, i); id != "" {
			return id
		}
	}
	return ""
}

var scopePrefixes = []string{"docker-", "cri-containerd-", "crio-", "libpod-"}

func containerElem(elems []string, i int) string {
	e := elems[i]
	if rest, ok := strings.CutSuffix(e, ".scope"); ok {
		for _, p := range scopePrefixes {
			if id, ok := strings.CutPrefix(rest, p); ok && isContainerID(id) {
				return id
			}
		}
		return ""
	}
	if i == 0 || !isContainerID(e) {
		return ""
	}
	// cgroupfs drivers: a bare ID under a runtime's or a pod's directory.
	parent := elems[i-1]
	if parent == "docker" || parent == "libpod_parent" || strings.HasPrefix(parent, "pod") && inKubepods(elems[:i]) {
		return e
	}
	return ""
}

// isContainerID accepts the IDs runtimes generate: 64 lowercase hex digits
// (docker, containerd, cri-o and podman all use a SHA-256 in hex).
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func inKubepods(elems []string) bool {
	for _, e := range elems {
		if strings.HasPrefix(e, "kubepods") {
			return true
		}
	}
	return false
}

// PodUID returns the Kubernetes pod UID a cgroup path carries, dashes
// restored, or "" when it carries none.
func PodUID(cgroup string) string {
	elems := strings.Split(cgroup, "/")
	if !inKubepods(elems) {
		return ""
	}
	for i := len(elems) - 1; i >= 0; i-- {
		e := elems[i]
		if rest, ok := strings.CutSuffix(e, ".slice"); ok {
			// kubepods-burstable-pod<uid>.slice: the last "-pod".
			j := strings.LastIndex(rest, "-pod")
			if j < 0 {
				continue
			}
			if uid := strings.ReplaceAll(rest[j+len("-pod"):], "_", "-"); isUID(uid) {
				return uid
			}
			continue
		}
		if uid, ok := strings.CutPrefix(e, "pod"); ok && isUID(uid) {
			return uid
		}
	}
	return ""
}

// isUID accepts an RFC 4122 UID as Kubernetes prints it:
// 8-4-4-4-12 hex digits.
func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
