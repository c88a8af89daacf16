package diff

import (
	"fmt"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// Scenarios for the rules that keep a busy, healthy host quiet and a leak
// one row (README, "Findings"), one per rule. Each is four snapshots a
// minute apart unless it says otherwise.

func init() {
	scenarios["churn"] = churnScenario
	scenarios["oneoff"] = oneOffScenario
	scenarios["persist"] = persistScenario
	scenarios["numbered"] = numberedScenario
	scenarios["urgency"] = urgencyScenario
	scenarios["restarts"] = restartsScenario
	scenarios["idle"] = idleScenario

	goldenCases = append(goldenCases,
		goldenCase{
			// Churn: every fd is younger than one interval. At B the
			// pool holds 5 sockets where A had none, but none of them was
			// open a minute before: nothing persists.
			name: "churn", input: "churn",
			want: []string{"range 1..4 (4 snapshots) span 3m0s", "idle hidden 1"},
		},
		goldenCase{
			// One-off opens persist but grow by one or two: under the
			// minimum growth of 3. With --min-growth 1 they show, as
			// hints (the count does not grow across the range).
			name: "oneoff", input: "oneoff",
			want: []string{"range 1..4 (4 snapshots) span 3m0s", "idle hidden 2"},
		},
		goldenCase{
			name: "oneoff_min1", input: "oneoff", opts: Options{MinGrowth: 1},
			want: []string{
				"range 1..4 (4 snapshots) span 3m0s",
				"fd_leak pid 200 bash char /dev/pts/* 0->2 new 2 monotonic samples 4 growth/h 40.00 limit 1024 used 0.0049 evidence trend exhausts 25h28m30s",
				"fd_leak pid 100 cron file /etc/crontab 0->1 new 1 monotonic samples 4 growth/h 20.00 limit 1024 used 0.0039 evidence trend exhausts 51h0m0s",
				"idle hidden 2",
			},
		},
		goldenCase{
			// Persistence: of reader's 6 new fds at B, the 3 opened just
			// before B are not counted yet; the 3 open a minute before are.
			// late's 4 new fds were all opened in the last interval.
			name: "persist", input: "persist",
			want: []string{
				"range 1..3 (3 snapshots) span 2m0s",
				"fd_leak pid 300 reader file /srv/blob 0->6 new 3 monotonic samples 3 growth/h 180.00 limit 1024 used 0.0059 evidence trend exhausts 5h39m20s",
				"idle hidden 2",
			},
		},
		goldenCase{
			// Numbered files: a leak into part1.dat ... part12.dat and a
			// log reopened four times is two rows, not sixteen.
			name: "numbered", input: "numbered",
			want: []string{
				"range 1..4 (4 snapshots) span 3m0s",
				"fd_leak pid 400 etl file /data/out/part*.dat 0->12 new 8 monotonic samples 4 growth/h 240.00 limit 1024 used 0.0215 evidence trend exhausts 2h47m0s",
				"fd_leak pid 400 etl file /var/log/etl.log 1->7 new 4 monotonic samples 4 growth/h 120.00 limit 1024 used 0.0215 evidence trend exhausts 2h47m0s",
				"idle hidden 1",
			},
		},
		goldenCase{
			// Ranking: the soonest to run out of fds first, whatever its
			// rate; then, with no limit in sight, the fastest.
			name: "urgency", input: "urgency",
			want: []string{
				"range 1..4 (4 snapshots) span 3m0s",
				"fd_leak pid 502 nearly socket socket:[*] 990->1008 new 12 monotonic samples 4 growth/h 360.00 limit 1024 used 0.9844 evidence trend exhausts 2m40s",
				"fd_leak pid 503 fast socket socket:[*] 100->700 new 400 monotonic samples 4 growth/h 12000.00 limit 65536 used 0.0107 evidence trend exhausts 5h24m11s",
				"fd_leak pid 501 slow socket socket:[*] 10->16 new 4 monotonic samples 4 growth/h 120.00 limit 1024 used 0.0156 evidence trend exhausts 8h24m0s",
				"fd_leak pid 505 free socket socket:[*] 10->40 new 20 monotonic samples 4 growth/h 600.00 limit unlimited used 0.0000 evidence trend",
				"fd_leak pid 504 wobbly socket socket:[*] 10->20 new 4 sawtooth samples 4 growth/h 200.00 limit unlimited used 0.0000 evidence hint",
				"idle hidden 5",
			},
		},
		goldenCase{
			// Restarts: a service seen in two snapshots that went and came
			// back is one; the runs of a command from a shell loop, each
			// seen once, are none.
			name: "restarts", input: "restarts",
			want: []string{
				"range 1..4 (4 snapshots) span 3m0s",
				"restart pid 610 worker (was pid 610 worker) start 100000000000->290000000000",
				"restart pid 625 svc (was pid 620 svc) start 110000000000->295000000000",
				"idle hidden 1",
			},
		},
		goldenCase{
			// Idle vs running: asleep in every snapshot is idle however
			// often it woke; R in every snapshot is running; caught R once
			// is idle.
			name: "idle", input: "idle",
			want: []string{
				"range 1..4 (4 snapshots) span 3m0s",
				"unchanged 702/702 spinner running R switches 5000->5003",
				"idle hidden 3",
			},
		},
	)
}

// preemptedStack is a thread busy in user space, interrupted by the timer
// and rescheduled on its way back.
var preemptedStack = snapshot.Stack{
	"irqentry_exit_to_user_mode+0x1d0/0x1e0",
	"asm_sysvec_apic_timer_interrupt+0x1a/0x20",
}

// minutes is a builder for snapshot i of a scenario taken a minute apart.
func minutes(i int) *snapBuilder { return newSnap(uint64(i+1), time.Duration(i)*time.Minute) }

// churnScenario: pool (100) opens and closes sockets all the time: 0, 3,
// 4, 5 at the four takes, each a new socket. daemon (101) is idle.
func churnScenario() []*snapshot.Snapshot {
	var snaps []*snapshot.Snapshot
	for i, n := range []int{0, 3, 4, 5} {
		b := minutes(i)
		b.task(thread(100, 100, "pool", stS, sec(100), uint64(1000*i)), epollStack)
		fs := stdio()
		for j := range n {
			fs = append(fs, socketFD(uint32(3+j), uint64(10_000+100*i+j)))
		}
		b.files(100, fs...)
		snaps = append(snaps, b.build())
	}
	return snaps
}

// oneOffScenario: cron (100) opens its crontab once, after A, and keeps
// it; bash (200), the shell of the person looking, opens its tty twice.
func oneOffScenario() []*snapshot.Snapshot {
	var snaps []*snapshot.Snapshot
	for i := range 4 {
		b := minutes(i)
		b.task(thread(100, 100, "cron", stS, sec(100), uint64(10+i)), epollStack)
		fs := stdio()
		if i >= 1 {
			fs = append(fs, fileFD(3, "/etc/crontab", 3001))
		}
		b.files(100, fs...)
		b.task(thread(200, 200, "bash", stS, sec(200), uint64(50+i)), futexStack)
		fs = stdio()
		if i >= 1 {
			fs = append(fs, snapshot.File{FD: 10, Mode: 0o020620, Dev: 24, Inode: 3, Path: "/dev/pts/0"})
			fs = append(fs, snapshot.File{FD: 255, Mode: 0o020620, Dev: 24, Inode: 4, Path: "/dev/pts/1"})
		}
		b.files(200, fs...)
		snaps = append(snaps, b.build())
	}
	return snaps
}

// persistScenario, three snapshots: reader (300) opens 3 fds on /srv/blob
// between the first and second take and 3 more just before the last;
// late (301) opens its 4 only just before the last.
func persistScenario() []*snapshot.Snapshot {
	var snaps []*snapshot.Snapshot
	for i := range 3 {
		b := minutes(i)
		b.task(thread(300, 300, "reader", stS, sec(300), uint64(i)), epollStack)
		b.task(thread(301, 301, "late", stS, sec(301), uint64(i)), epollStack)
		var reader, late []snapshot.File
		for j := range []int{0, 3, 6}[i] {
			reader = append(reader, fileFD(uint32(3+j), "/srv/blob", uint64(7000+j)))
		}
		if i == 2 {
			for j := range 4 {
				late = append(late, socketFD(uint32(3+j), uint64(8000+j)))
			}
		}
		b.files(300, reader...)
		b.files(301, late...)
		snaps = append(snaps, b.build())
	}
	return snaps
}

// numberedScenario: etl (400) writes part1.dat, part2.dat, ... and keeps
// every one open, four more each minute, and reopens its log twice a
// minute without closing the old fds.
func numberedScenario() []*snapshot.Snapshot {
	var snaps []*snapshot.Snapshot
	for i := range 4 {
		b := minutes(i)
		b.task(thread(400, 400, "etl", stS, sec(400), uint64(100*i)), epollStack)
		fs := stdio()
		for j := range 1 + 2*i {
			fs = append(fs, fileFD(uint32(3+j), "/var/log/etl.log", uint64(5000+j)))
		}
		for j := range 4 * i {
			fs = append(fs, fileFD(uint32(20+j), fmt.Sprintf("/data/out/part%d.dat", j+1), uint64(6000+j)))
		}
		b.files(400, fs...)
		snaps = append(snaps, b.build())
	}
	return snaps
}

// urgencyScenario: five leaking processes.
//   - slow (501) grows 2 a minute with a limit of 1024;
//   - nearly (502) 6 a minute, already at 990 of 1024;
//   - fast (503) 200 a minute with a limit of 65536;
//   - wobbly (504) unlimited, up and down and up;
//   - free (505) unlimited, 10 a minute.
func urgencyScenario() []*snapshot.Snapshot {
	type leaker struct {
		pid    uint32
		comm   string
		limit  uint64
		counts []int
	}
	leakers := []leaker{
		{501, "slow", 1024, []int{10, 12, 14, 16}},
		{502, "nearly", 1024, []int{990, 996, 1002, 1008}},
		{503, "fast", 65536, []int{100, 300, 500, 700}},
		{504, "wobbly", snapshot.NoLimit, []int{10, 16, 14, 20}},
		{505, "free", snapshot.NoLimit, []int{10, 20, 30, 40}},
	}
	var snaps []*snapshot.Snapshot
	for i := range 4 {
		b := minutes(i)
		for _, l := range leakers {
			t := thread(l.pid, l.pid, l.comm, stS, sec(float64(l.pid)), uint64(i))
			t.NoFileLimit = l.limit
			b.task(t, epollStack)
			var fs []snapshot.File
			for j := range l.counts[i] {
				// Sockets are never closed, but wobbly's fds from 14 up
				// come and go.
				ino := uint64(l.pid)*10_000 + uint64(j)
				if l.comm == "wobbly" && j >= 14 {
					ino += uint64(1000 * i)
				}
				fs = append(fs, socketFD(uint32(3+j), ino))
			}
			b.files(l.pid, fs...)
		}
		snaps = append(snaps, b.build())
	}
	return snaps
}

// restartsScenario:
//   - worker 610 runs in the first two takes and is replaced by a new
//     worker with the same pid: a restart;
//   - svc 620 runs in the first three and comes back as 625 under the
//     same parent: a restart;
//   - sleep, run from a shell loop (parent 630), is seen once in each
//     take under a new pid: not restarts;
//   - curl 650 was seen once, in A, and another curl at B: not a restart.
func restartsScenario() []*snapshot.Snapshot {
	var snaps []*snapshot.Snapshot
	for i := range 4 {
		b := minutes(i)
		if i < 2 {
			b.task(thread(610, 610, "worker", stS, sec(100), uint64(i)), epollStack)
		} else {
			b.task(thread(610, 610, "worker", stS, sec(290), uint64(i)), epollStack)
		}
		if i < 3 {
			b.task(thread(620, 620, "svc", stS, sec(110), uint64(i)), epollStack)
		} else {
			b.task(thread(625, 625, "svc", stS, sec(295), 1), epollStack)
		}
		b.task(thread(630, 630, "bash", stS, sec(120), uint64(i)), futexStack)
		sleep := thread(uint32(640+i), uint32(640+i), "sleep", stS, sec(float64(125+60*i)), 1)
		sleep.PPID = 630
		b.task(sleep, nanosleepStack)
		if i == 0 || i == 3 {
			b.task(thread(uint32(650+i), uint32(650+i), "curl", stS, sec(float64(130+60*i)), 1), epollStack)
		}
		snaps = append(snaps, b.build())
	}
	return snaps
}

// idleScenario: ticker (700) sleeps in nanosleep in a loop, waking
// hundreds of times between takes; napper (701) was caught running once
// on its way back to sleep; spinner (702) is R in every take on one
// stack, busy in the kernel; compile (703) is R in every take too, but
// preempted on its way back to user space: busy in user space, idle for
// the kernel.
func idleScenario() []*snapshot.Snapshot {
	var snaps []*snapshot.Snapshot
	for i := range 4 {
		n := uint64(i)
		b := minutes(i)
		b.task(thread(700, 700, "ticker", stS, sec(700), 69+90*n), nanosleepStack)
		napper := uint32(stS)
		if i == 2 {
			napper = stR
		}
		b.task(thread(701, 701, "napper", napper, sec(701), 10+n*40), nanosleepStack)
		b.task(thread(702, 702, "spinner", stR, sec(702), 5000+n), shrinkStack)
		b.task(thread(703, 703, "compile", stR, sec(703), 100+40*n), preemptedStack)
		snaps = append(snaps, b.build())
	}
	return snaps
}
