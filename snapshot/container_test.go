package snapshot

import "testing"

func TestContainerAndPod(t *testing.T) {
	const id = "3f2a9b6c0d1e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"
	for _, c := range []struct{ cgroup, container, pod string }{
		{"/", "", ""},
		{"", "", ""},
		{"/user.slice/user-0.slice/session-3.scope", "", ""},
		{"/system.slice/docker-" + id + ".scope", id, ""},
		{"/docker/" + id, id, ""},
		{"/docker/" + id + "/init.scope", id, ""}, // systemd inside the container
		{"/system.slice/cri-containerd-" + id + ".scope", id, ""},
		{"/machine.slice/libpod-" + id + ".scope", id, ""},
		{"/machine.slice/libpod-" + id + ".scope/container", id, ""},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/crio-" + id + ".scope",
			id, "0a1b2c3d-4e5f-6789-abcd-ef0123456789"},
		{"/kubepods.slice/kubepods-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/cri-containerd-" + id + ".scope",
			id, "0a1b2c3d-4e5f-6789-abcd-ef0123456789"},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice",
			"", "0a1b2c3d-4e5f-6789-abcd-ef0123456789"},
		{"/kubepods/burstable/pod0a1b2c3d-4e5f-6789-abcd-ef0123456789/" + id,
			id, "0a1b2c3d-4e5f-6789-abcd-ef0123456789"},
		// Names that only look alike.
		{"/system.slice/docker-" + id[:63] + ".scope", "", ""},
		{"/system.slice/docker-" + id + "x.scope", "", ""},
		{"/system.slice/docker.service", "", ""},
		{"/system.slice/crio-conmon-" + id + ".scope", "", ""},
		{"/" + id, "", ""},
		{"/pod0a1b2c3d-4e5f-6789-abcd-ef0123456789/" + id, "", ""}, // not under kubepods
		{"/kubepods.slice/kubepods-podnot_a_uid.slice", "", ""},
		{"/system.slice/docker-" + id + ".scope\n/x", "", ""},
	} {
		if got := ContainerID(c.cgroup); got != c.container {
			t.Errorf("ContainerID(%q) = %q, want %q", c.cgroup, got, c.container)
		}
		if got := PodUID(c.cgroup); got != c.pod {
			t.Errorf("PodUID(%q) = %q, want %q", c.cgroup, got, c.pod)
		}
	}
}
