package diff

import (
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// scenarios are the recorded inputs in testdata/diff/NAME.json, each the
// range of snapshots one comparison takes.
var scenarios = map[string]func() []*snapshot.Snapshot{
	"fdleak":    fdLeakScenario,
	"pidreuse":  pidReuseScenario,
	"fdreuse":   fdReuseScenario,
	"threads":   threadsScenario,
	"reboot":    rebootScenario,
	"empty":     emptyScenario,
	"filtered":  filteredScenario,
	"stuck":     stuckScenario,
	"mixed":     mixedScenario,
	"unknownid": unknownBootScenario,
}

// fdLeakScenario: five snapshots ten minutes apart.
//   - leaky (1000) opens two sockets per snapshot and closes none: 10 to 18.
//   - sawtooth (2000) has 8 long-lived sockets and a varying number of
//     short-lived ones: 10, 14, 8, 12, 13 in all. It ends higher: reported,
//     not monotonic.
//   - churn (3000) replaces its 5 pipes every time: 5 closed, 5 opened, not
//     a leak.
func fdLeakScenario() []*snapshot.Snapshot {
	sawtooth := []int{10, 14, 8, 12, 13}
	var snaps []*snapshot.Snapshot
	for i := range 5 {
		b := newSnap(uint64(i+1), time.Duration(i)*10*time.Minute)

		leaky := thread(1000, 1000, "leaky", stS, sec(100), uint64(5000+100*i))
		b.task(leaky, epollStack)
		b.task(thread(1000, 1001, "leaky", stS, sec(100.2), uint64(800+7*i)), futexStack)
		fs := append(stdio(), anonFD(3, "eventpoll", 4001), fileFD(4, "/var/log/leaky.log", 131077))
		for j := range 10 + 2*i {
			fs = append(fs, socketFD(uint32(10+j), uint64(50000+j)))
		}
		b.files(1000, fs...)

		saw := thread(2000, 2000, "sawtooth", stS, sec(200), uint64(9000+300*i))
		saw.NoFileLimit = snapshot.NoLimit
		b.task(saw, epollStack)
		fs = stdio()
		for j := range 8 {
			fs = append(fs, socketFD(uint32(10+j), uint64(60000+j)))
		}
		for j := range sawtooth[i] - 8 {
			fs = append(fs, socketFD(uint32(18+j), uint64(70000+100*i+j)))
		}
		b.files(2000, fs...)

		b.task(thread(3000, 3000, "churn", stS, sec(300), uint64(100+50*i)), futexStack)
		fs = append(stdio(), fileFD(3, "/etc/churn.conf", 262150))
		for j := range 5 {
			fs = append(fs, pipeFD(uint32(5+j), uint64(80000+10*i+j)))
		}
		b.files(3000, fs...)

		snaps = append(snaps, b.build())
	}
	return snaps
}

// pidReuseScenario: two snapshots five minutes apart.
//   - worker 4000 was replaced by a new worker with the same pid and more
//     fds: a restart, not a leak.
//   - svc 4100 was restarted as 4200 under the same parent: a restart.
//   - api 4300 lives on and opens two sockets: a leak.
//   - kworker 50 went, kworker 60 with the same name came: kernel threads
//     are not restarts.
func pidReuseScenario() []*snapshot.Snapshot {
	a := newSnap(10, 0)
	a.task(thread(4000, 4000, "worker", stS, sec(100), 40), epollStack)
	a.files(4000, stdio()...)
	a.task(thread(4100, 4100, "svc", stS, sec(120), 70), epollStack)
	a.files(4100, append(stdio(), socketFD(3, 41001))...)
	a.task(thread(4300, 4300, "api", stS, sec(130), 300), epollStack)
	a.files(4300, socketFD(3, 43001))
	a.task(kthread(50, "kworker/0:1", stI, sec(5), 1000), kworkerStack)

	b := newSnap(11, 5*time.Minute)
	b.task(thread(4000, 4000, "worker", stS, sec(250), 12), epollStack)
	fs := stdio()
	for j := range 10 {
		fs = append(fs, socketFD(uint32(3+j), uint64(40100+j)))
	}
	b.files(4000, fs...)
	b.task(thread(4200, 4200, "svc", stS, sec(260), 20), epollStack)
	b.files(4200, append(stdio(), socketFD(3, 42001), socketFD(4, 42002), socketFD(5, 42003))...)
	b.task(thread(4300, 4300, "api", stS, sec(130), 900), epollStack)
	b.files(4300, socketFD(3, 43001), socketFD(4, 43002), socketFD(5, 43003))
	b.task(kthread(60, "kworker/0:1", stI, sec(290), 10), kworkerStack)

	return []*snapshot.Snapshot{a.build(), b.build()}
}

// fdReuseScenario: one hour apart, proxy 5000 closed socket fd 3 and got fd
// 3 back for a new socket, and opened one more: both are new, 1 -> 2. Its
// log was rotated and reopened on fd 4: a new fd, but the group did not
// grow. Its fd limit could not be read.
func fdReuseScenario() []*snapshot.Snapshot {
	proxy := thread(5000, 5000, "proxy", stS, sec(500), 10)
	proxy.Missing |= snapshot.MissingLimit
	proxy.NoFileLimit = 0

	a := newSnap(20, 0)
	a.task(proxy, epollStack)
	a.files(5000, socketFD(3, 9001), fileFD(4, "/var/log/proxy.log", 300))

	proxy.Switches = 20
	b := newSnap(21, time.Hour)
	b.task(proxy, epollStack)
	b.files(5000, socketFD(3, 9002), fileFD(4, "/var/log/proxy.log", 301), socketFD(5, 9003))

	return []*snapshot.Snapshot{a.build(), b.build()}
}

// threadsScenario: app 6000 two minutes apart. 6001 exited. Tid 6002 was
// reused by a new thread (new start time) that is blocked: newly blocked
// although the old 6002 was blocked too. 6003 is new and blocked (killable),
// 6004 is new and sleeping, 6005 went from S to D.
func threadsScenario() []*snapshot.Snapshot {
	a := newSnap(30, 0)
	a.task(thread(6000, 6000, "app", stS, sec(600), 100), epollStack)
	a.task(thread(6000, 6001, "app-gc", stS, sec(600.1), 50), futexStack)
	a.task(thread(6000, 6002, "app-io", stD, sec(600.2), 70), readStack)
	a.task(thread(6000, 6005, "app-sync", stS, sec(600.5), 30), futexStack)
	a.files(6000, stdio()...)

	b := newSnap(31, 2*time.Minute)
	b.task(thread(6000, 6000, "app", stS, sec(600), 180), epollStack)
	b.task(thread(6000, 6002, "app-io", stD, sec(700), 3), nil)
	b.task(thread(6000, 6003, "app-nfs", stDK, sec(701), 5), nfsStack)
	b.task(thread(6000, 6004, "app-worker", stS, sec(702), 9), futexStack)
	b.task(thread(6000, 6005, "app-sync", stD, sec(600.5), 31), fsyncStack)
	b.files(6000, stdio()...)

	return []*snapshot.Snapshot{a.build(), b.build()}
}

// rebootScenario: the host rebooted between 41 and 42; pids and fds look
// like a leak and a newly blocked thread, but nothing may be compared.
func rebootScenario() []*snapshot.Snapshot {
	var snaps []*snapshot.Snapshot
	for i := range 3 {
		b := newSnap(uint64(40+i), time.Duration(i)*10*time.Minute)
		state := uint32(stS)
		if i == 2 {
			b.s.Meta.BootID = otherBootID
			state = stD
		}
		b.task(thread(1000, 1000, "leaky", state, sec(100), uint64(10*i)), epollStack)
		var fs []snapshot.File
		for j := range 2 + 3*i {
			fs = append(fs, socketFD(uint32(3+j), uint64(50000+j)))
		}
		b.files(1000, fs...)
		snaps = append(snaps, b.build())
	}
	return snaps
}

// emptyScenario: two snapshots without a single task (a filter that matched
// nothing).
func emptyScenario() []*snapshot.Snapshot {
	a, b := newSnap(50, 0), newSnap(51, time.Minute)
	a.s.Meta.Filter = snapshot.Filter{Comms: []string{"no-such-comm"}}
	b.s.Meta.Filter = snapshot.Filter{Comms: []string{"no-such-comm"}}
	return []*snapshot.Snapshot{a.build(), b.build()}
}

// unknownBootScenario: the second snapshot could not read its boot id; it is
// taken to be the same boot, with a note, and blocked thread 1100 counts.
func unknownBootScenario() []*snapshot.Snapshot {
	a, b := newSnap(52, 0), newSnap(53, time.Minute)
	b.s.Meta.BootID = ""
	a.task(thread(1100, 1100, "backup", stS, sec(110), 5), futexStack)
	b.task(thread(1100, 1100, "backup", stD, sec(110), 6), fsyncStack)
	return []*snapshot.Snapshot{a.build(), b.build()}
}

// filteredScenario: A was taken with --pid 7000, B without a filter. Only
// target 7000 is compared; other 7100 and its blocked thread are not new,
// A just did not look at them.
func filteredScenario() []*snapshot.Snapshot {
	a := newSnap(60, 0)
	a.s.Meta.Filter = snapshot.Filter{PIDs: []uint32{7000}}
	a.task(thread(7000, 7000, "target", stS, sec(700), 10), epollStack)
	a.files(7000, socketFD(3, 70001), socketFD(4, 70002))

	b := newSnap(61, 30*time.Minute)
	b.task(thread(7000, 7000, "target", stS, sec(700), 40), epollStack)
	b.files(7000, socketFD(3, 70001), socketFD(4, 70002), socketFD(5, 70003), socketFD(6, 70004))
	b.task(thread(7100, 7100, "other", stS, sec(710), 10), epollStack)
	b.task(thread(7100, 7101, "other-io", stD, sec(710.1), 10), readStack)
	b.files(7100, append(stdio(), socketFD(3, 71001), socketFD(4, 71002))...)

	return []*snapshot.Snapshot{a.build(), b.build()}
}

// stuckScenario: three snapshots a minute apart.
//   - dbwriter 8001: D, not killable, 42 switches throughout: stuck, and an
//     unchanged stack of class stuck.
//   - dbwriter 8002: D on the same stack but switching: not stuck, class
//     blocked.
//   - nfsclient 8101: killable D, no switches: not stuck, class killable.
//   - nfsclient 8102: S, then killable D twice: newly blocked (killable
//     yes) for at least a minute.
//   - daemon 8200 in epoll_wait and kworker 80: idle, hidden by default.
//   - spinner 8300: R on the same stack: class running.
func stuckScenario() []*snapshot.Snapshot {
	var snaps []*snapshot.Snapshot
	for i := range 3 {
		n := uint64(i)
		b := newSnap(uint64(70+i), time.Duration(i)*time.Minute)
		b.task(thread(8000, 8000, "dbwriter", stS, sec(800), 1000+n*60), epollStack)
		b.task(thread(8000, 8001, "dbwriter", stD, sec(800.1), 42), fsyncStack)
		b.task(thread(8000, 8002, "dbwriter", stD, sec(800.2), 100+50*n), readStack)
		b.task(thread(8100, 8100, "nfsclient", stDK, sec(810), 7), nfsStack)
		if i == 0 {
			b.task(thread(8100, 8102, "nfsclient", stS, sec(810.2), 3), futexStack)
		} else {
			b.task(thread(8100, 8102, "nfsclient", stDK, sec(810.2), 4), nfsStack)
		}
		b.task(thread(8200, 8200, "daemon", stS, sec(820), 500+n*5), epollStack)
		b.task(kthread(80, "kworker/1:2", stI, sec(8), 9000+n*30), kworkerStack)
		b.task(thread(8300, 8300, "spinner", stR, sec(830), 20000+n*10), shrinkStack)
		snaps = append(snaps, b.build())
	}
	return snaps
}

// mixedScenario: A from the procfs collector (start times in clock ticks,
// no killable bit), B from BPF three minutes later. indexer 9000 is the same
// process in both; its thread 9001 is stuck; it opened two sockets.
func mixedScenario() []*snapshot.Snapshot {
	const start, ioStart = 123_456_789_012, 123_467_891_234 // ns, as BPF sees them
	procfs := func(ns uint64) uint64 { return ns - ns%10_000_000 }

	a := newSnap(80, 0)
	a.s.Meta.Collector = "procfs"
	a.task(thread(9000, 9000, "indexer", stS, procfs(start), 300), epollStack)
	io := thread(9000, 9001, "indexer", stD, procfs(ioStart), 500)
	io.Missing |= snapshot.MissingKillable
	a.task(io, fsyncStack)
	a.files(9000, socketFD(3, 90001), socketFD(4, 90002))

	b := newSnap(81, 3*time.Minute)
	b.task(thread(9000, 9000, "indexer", stS, start, 340), epollStack)
	b.task(thread(9000, 9001, "indexer", stD, ioStart, 500), fsyncStack)
	b.files(9000, socketFD(3, 90001), socketFD(4, 90002), socketFD(5, 90003), socketFD(6, 90004))

	return []*snapshot.Snapshot{a.build(), b.build()}
}
