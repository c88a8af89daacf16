//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// itersnap's kernel side: BPF iterators that walk every thread (iter/task)
// and every open file (iter/task_file), drop filtered-out tasks with a
// compare, and write fixed binary records with bpf_seq_write. Userspace reads
// the iterator fd and decodes the records (bpf/iter.go). The task iterator
// also symbolizes each stack address the first time the walk meets it, with
// %pB in the kernel, so a take never reads /proc/kallsyms. (A separate
// iter/bpf_map_elem pass over the unique addresses would be simpler, but
// some kernels refuse to load that iterator type: Linux 6.18 with EPERM.)

#include "itersnap.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MAX_FRAMES 127 // kernel.perf_event_max_stack's default
#define STACK_SLOTS 128 // a power of two, so a masked length stays in bounds
#define PATH_BYTES 4096 // PATH_MAX
#define MAX_PIDS 64
#define MAX_COMMS 16
#define MAX_CGROUPS 64
#define MAX_CGROUP_LEVEL 255 // far deeper than any host nests its cgroups
#define MAX_SYMBOLIZED 32768
#define SYM_SLOTS 256 // a power of two, as STACK_SLOTS
#define SYM_BYTES 192 // the most of a symbol kept, NUL included; see sym_rec
#define O_CLOEXEC 02000000
#define SOCKFS_MAGIC 0x534F434B
#define PIPEFS_MAGIC 0x50495045
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define MAX_PID_NS_LEVEL 32 // include/linux/pid_namespace.h
#define UNIX_NAME_SLOTS 128 // a power of two above UNIX_PATH_MAX
#define ANON_INODE_FS_MAGIC 0x09041934
#define ANON_NAME_BYTES 256 // an anon inode's name ("[eventfd]", "bpf-map")
#define MAX_CGROUP_CHAIN 32 // cgroups looked at per task, up from its own; a power of two
#define MAX_CGROUP_NAMES 16 // cgroup records per task; see cgroup_rec
#define CGROUP_NAME_BYTES 256 // NAME_MAX and the NUL
#define MAX_NAMED_CGROUPS 4096 // a walk names more only by naming some twice

// One record per thread. The stack_bytes bytes of return addresses (u64,
// leaf first) follow it in the stream, then nr_syms symbol records, then
// nr_cgroups cgroup records.
struct task_rec {
	u32 tid; // task->pid
	u32 pid; // task->tgid
	u32 ppid;
	u32 uid; // effective uid
	u32 state; // task->__state
	u32 exit_state;
	u32 flags; // task->flags (PF_KTHREAD, ...)
	s32 stack_bytes; // bpf_get_task_stack's result: bytes that follow, or -errno
	u64 start_time; // task->start_boottime, ns since boot
	u64 switches; // nvcsw + nivcsw
	u64 nofile; // RLIMIT_NOFILE soft limit
	char comm[TASK_COMM_LEN];
	u32 nr_syms; // symbol records that follow the stack
	u32 nr_cgroups; // cgroup records that follow the symbols
	u64 cgroup_id; // task->cgroups->dfl_cgrp->kn->id: the cgroup v2 directory's inode
	u32 ns_pid; // the process's pid in its own pid namespace
	u32 pad2;
};

// The symbol of one return address, as /proc/PID/stack prints it:
// "function+0xoff/0xsize [module]". Each address of the walk is symbolized
// once, after the stack that first holds it. sym_bytes bytes of text follow
// (no NUL), or it is -errno from bpf_snprintf. A symbol is cut at
// SYM_BYTES-1 bytes so that one task's records always fit in the iterator's
// 32 KB seq buffer: 127 frames of 16 + 191 bytes, plus the task's own.
struct sym_rec {
	u64 addr;
	s32 sym_bytes;
	u32 pad;
};

// A cgroup v2 cgroup the walk met, named once per walk so that userspace
// builds every task's cgroup path from these records alone, without
// reading the cgroup hierarchy (a walk of every cgroup's directory, which
// on a host with hundreds of cgroups cost more than the rest of a take).
// A task's records carry its own cgroup and those of its ancestors that no
// earlier task's records carried, the topmost first, so a record's parent
// was always named before it. name_bytes bytes of the cgroup directory's
// name follow (no NUL; "" for the root), or it is -errno. At most
// MAX_CGROUP_NAMES follow one task, so that its records still fit in the
// seq buffer beside the largest symbols (see sym_rec): 16 of 24 + 255
// bytes; the rest of a deeper chain follows the next task in that cgroup,
// and userspace reads the hierarchy for any cgroup left unnamed.
struct cgroup_rec {
	u64 id; // kn->id, as task_rec.cgroup_id
	u64 parent_id; // the parent cgroup's kn->id; 0 for the root
	s32 name_bytes;
	u32 pad;
};

// How a file_rec's path is given.
enum path_source {
	PATH_FOLLOWS = 0, // path_bytes of bpf_d_path's output follow
	PATH_SOCKET = 1, // sockfs: d_path would print "socket:[ino]"
	PATH_PIPE = 2, // pipefs: d_path would print "pipe:[ino]"
	PATH_ANON = 3, // anon_inodefs: path_bytes of the name follow, d_path would print "anon_inode:NAME"
};

// One record per open fd, per fd table. With PATH_FOLLOWS (PATH_ANON), the
// path_bytes bytes of the path (of the anon inode's name) follow it in the
// stream, without a NUL; with PATH_SOCKET, a sock_rec follows.
struct file_rec {
	u32 pid; // task->tgid of the fd table's owner
	u32 fd;
	u32 mode; // inode->i_mode
	u32 flags; // file->f_flags, plus O_CLOEXEC from the fd table
	u32 dev; // kernel dev_t encoding (major << 20 | minor)
	s32 path_bytes; // bytes of path that follow, or -errno from bpf_d_path
	u64 ino;
	enum path_source path_source;
	u32 pad;
};

// Records are built in per-CPU scratch space: they do not fit on the 512-byte
// BPF stack.
struct task_scratch {
	struct task_rec rec;
	u64 stack[STACK_SLOTS];
	u64 new_frames[2]; // bit i: frame i is the walk's first sight of its address
	struct sym_rec sym;
	char text[SYM_SLOTS];
	// The task's cgroup and its ancestors not yet named in this walk,
	// its own first (struct cgroup pointers): nr_chain of them, and the
	// cgroup chain_cgroup looks at next.
	u64 chain[MAX_CGROUP_CHAIN];
	u64 next_cgroup;
	u32 nr_chain;
	u32 pad;
	struct cgroup_rec cg;
	char cg_name[CGROUP_NAME_BYTES];
};

// What a socket fd's struct sock holds (include/net/sock.h sock_common),
// written after its file_rec. family is 0 when the socket has no sock. A
// unix socket's bound name follows it: name_bytes bytes of sun_path (an
// abstract name starts with a NUL; a path's NUL is left out).
struct sock_rec {
	u16 family; // skc_family
	u16 type; // sk_type
	u16 protocol; // sk_protocol
	u8 state; // skc_state, TCP's numbering
	u8 pad;
	u16 lport; // skc_num, host order
	u16 rport; // skc_dport, turned to host order
	u32 netns; // skc_net.net->ns.inum
	u8 laddr[16]; // skc_rcv_saddr (first 4 bytes) or skc_v6_rcv_saddr
	u8 raddr[16]; // skc_daddr or skc_v6_daddr
	s32 name_bytes;
	u32 pad2;
};

struct file_scratch {
	struct file_rec rec;
	struct sock_rec sock;
	// The close-on-exec bits of fds 64*cloexec_word.. of thread
	// cloexec_tid, read in walk cloexec_session: one read per 64 fds,
	// not per fd. session_id is new for every walk (kernel/bpf/bpf_iter.c
	// prepare_seq_file), so no walk uses bits an earlier one read.
	u64 cloexec_session;
	u32 cloexec_tid;
	u32 cloexec_word;
	u64 cloexec_bits;
	// Whether fd table owner want_tid passed the filters, judged in walk
	// want_session: once per table, not once per fd (the cgroup filter
	// reads memory for each of its cgroups).
	u64 want_session;
	u32 want_tid;
	u32 want;
	char path[PATH_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct task_scratch);
} task_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct file_scratch);
} file_scratch SEC(".maps");

// The addresses this walk has symbolized, each with the seq_num of the
// task whose records carry its symbol: most frames (syscall entry, the
// scheduler) are shared by many threads and formatted only once. When it is
// full, further addresses are symbolized every time they occur, which costs
// time and bytes but loses nothing.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SYMBOLIZED);
	__type(key, u64);
	__type(value, u64);
} symbolized SEC(".maps");

// The cgroups this walk has named: the walk's session_id and the seq_num
// of the task whose records carry the name. Pinned programs keep it from
// take to take, so an entry counts only in its own session (session_id is
// new for every walk, kernel/bpf/bpf_iter.c prepare_seq_file) and no walk
// depends on what an earlier one wrote. Least recently used entries make
// room: cgroups of containers long gone are forgotten, and a cgroup not
// found is only named again.
struct named {
	u64 session;
	u64 seq_num;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_NAMED_CGROUPS);
	__type(key, u64);
	__type(value, struct named);
} named_cgroups SEC(".maps");

// Filters, set by userspace before load. A task passes the pid and name
// filters when none is set, or when its tgid is in filter_pids, or its comm
// or its process's comm is in filter_comms. With filter_by_cgroup set it
// must besides be in one of the nr_filter_cgroups cgroups or below one:
// userspace resolves --container and --cgroup to the cgroups' ids and
// levels before load (none at all when nothing matched).
const volatile u32 nr_filter_pids = 0;
const volatile u32 filter_pids[MAX_PIDS] = {};
const volatile u32 nr_filter_comms = 0;
const volatile char filter_comms[MAX_COMMS][TASK_COMM_LEN] = {};
const volatile u32 filter_by_cgroup = 0;
const volatile u32 nr_filter_cgroups = 0;
const volatile u64 filter_cgroup_ids[MAX_CGROUPS] = {};
const volatile u32 filter_cgroup_levels[MAX_CGROUPS] = {};

// comm_equal compares two comms up to the NUL. Kernels before 5.17 set
// comm with strlcpy (fs/exec.c __set_task_comm; 5.17 made it strscpy_pad),
// which leaves the old name's bytes after the new NUL: on 5.15 a thread
// renamed "test" from "swapper/0" holds "test\0er/0", so a compare of all
// 16 bytes missed it. The filters are NUL-padded by userspace.
static __always_inline bool comm_equal(const volatile char *a, const volatile char *b)
{
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (a[i] != b[i])
			return false;
		if (a[i] == 0)
			return true;
	}
	return true;
}

static __always_inline bool wanted_by_task(struct task_struct *task)
{
	if (nr_filter_pids == 0 && nr_filter_comms == 0)
		return true;

	u32 tgid = BPF_CORE_READ(task, tgid);
	for (u32 i = 0; i < MAX_PIDS && i < nr_filter_pids; i++) {
		if (filter_pids[i] == tgid)
			return true;
	}
	if (nr_filter_comms == 0)
		return false;

	char comm[TASK_COMM_LEN], leader[TASK_COMM_LEN];
	BPF_CORE_READ_INTO(&comm, task, comm);
	BPF_CORE_READ_INTO(&leader, task, group_leader, comm);
	for (u32 i = 0; i < MAX_COMMS && i < nr_filter_comms; i++) {
		if (comm_equal(comm, filter_comms[i]) || comm_equal(leader, filter_comms[i]))
			return true;
	}
	return false;
}

// ancestor_id is the id of cgrp's ancestor at level (cgrp itself at its
// own level), as kernel/cgroup/cgroup.c cgroup_is_descendant reads it:
// one load per filter cgroup, not a walk up the tree. cgrp came through
// BPF_CORE_READ, so it is a plain number to the verifier, and the reads
// go through bpf_probe_read_kernel.
//
// Each layout is read in a function of its own, not inlined: a CO-RE
// relocation of a field this kernel lacks becomes a call of an invalid
// helper, harmless where the verifier sees it is never reached, but clang
// hoists a field offset out of the branch that guards it into the path
// every task takes. A call it does not hoist.
static __noinline u64 ancestor_id_ptrs(struct cgroup *cgrp, u32 level)
{
	struct cgroup *anc = NULL;
	bpf_probe_read_kernel(&anc, sizeof(anc),
			      (void *)cgrp + bpf_core_field_offset(struct cgroup, ancestors) + level * sizeof(anc));
	if (!anc)
		return 0;
	return BPF_CORE_READ(anc, kn, id);
}

static __noinline u64 ancestor_id_pre61(struct cgroup *cgrp, u32 level)
{
	u64 id = 0;
	bpf_probe_read_kernel(&id, sizeof(id),
			      (void *)cgrp + bpf_core_field_offset(struct cgroup___pre61, ancestor_ids) + level * sizeof(id));
	return id;
}

static __always_inline u64 ancestor_id(struct cgroup *cgrp, u32 level)
{
	if (bpf_core_field_exists(cgrp->ancestors))
		return ancestor_id_ptrs(cgrp, level);
	return ancestor_id_pre61(cgrp, level);
}

static __always_inline bool wanted_by_cgroup(struct task_struct *task)
{
	if (!filter_by_cgroup)
		return true;
	// cgroups is __rcu: BPF_CORE_READ, as for cred.
	struct cgroup *cgrp = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	if (!cgrp)
		return false;
	int level = BPF_CORE_READ(cgrp, level);
	if (level < 0 || level > MAX_CGROUP_LEVEL)
		return false;
	for (u32 i = 0; i < MAX_CGROUPS && i < nr_filter_cgroups; i++) {
		u32 l = filter_cgroup_levels[i];
		if (l <= level && ancestor_id(cgrp, l) == filter_cgroup_ids[i])
			return true;
	}
	return false;
}

static __always_inline bool wanted(struct task_struct *task)
{
	return wanted_by_task(task) && wanted_by_cgroup(task);
}

static __always_inline u32 task_state(struct task_struct *task)
{
	// task_struct.state became __state in 5.14.
	if (bpf_core_field_exists(task->__state))
		return BPF_CORE_READ(task, __state);
	struct task_struct___pre514 *old = (void *)task;
	return (u32)BPF_CORE_READ(old, state);
}

// What the bpf_loop callbacks below share with dump_task. They run once
// per frame: a bounded loop of 127 frames is verified frame by frame, 40
// ms on every take, more than the whole walk. The verifier checks a
// callback until its state stops changing, so nothing in here changes:
// the count of new frames lives in the scratch record.
struct frames_ctx {
	struct seq_file *seq;
	u64 session_id;
	u64 seq_num;
};

static __always_inline struct task_scratch *scratch(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&task_scratch, &zero);
}

// mark_frame sets frame i's bit in new_frames when no earlier task's
// records carry its symbol, and counts it.
//
// A task can be shown twice: when its records overflow the seq buffer,
// bpf_seq_read drops them and shows the task again, with the same seq_num,
// at the start of the next read. So an address counts as done only when a
// task with another seq_num claimed it.
static long mark_frame(u32 i, void *data)
{
	struct frames_ctx *c = data;
	struct task_scratch *s = scratch();
	if (!s)
		return 1;
	u64 addr = s->stack[i & (STACK_SLOTS - 1)];
	u64 *owner = bpf_map_lookup_elem(&symbolized, &addr);
	if (owner && *owner != c->seq_num)
		return 0;
	// A failed insert (the map is full) symbolizes it all the same.
	if (!owner)
		bpf_map_update_elem(&symbolized, &addr, &c->seq_num, BPF_NOEXIST);
	s->new_frames[(i / 64) & 1] |= 1ULL << (i % 64);
	s->rec.nr_syms++;
	return 0;
}

static const char sym_fmt[] = "%pB";

// write_symbol writes a sym_rec for frame i if mark_frame marked it.
static long write_symbol(u32 i, void *data)
{
	struct frames_ctx *c = data;
	struct task_scratch *s = scratch();
	if (!s)
		return 1;
	if (!(s->new_frames[(i / 64) & 1] & (1ULL << (i % 64))))
		return 0;
	u64 addr = s->stack[i & (STACK_SLOTS - 1)];
	// bpf_snprintf returns the length with the NUL, also when it had to
	// cut the text.
	long n = bpf_snprintf(s->text, SYM_BYTES, sym_fmt, &addr, sizeof(addr));
	s->sym.addr = addr;
	s->sym.sym_bytes = n < 0 ? n : n > SYM_BYTES ? SYM_BYTES - 1 : n - 1;
	bpf_seq_write(c->seq, &s->sym, sizeof(s->sym));
	if (s->sym.sym_bytes > 0)
		bpf_seq_write(c->seq, s->text, s->sym.sym_bytes & (SYM_SLOTS - 1));
	return 0;
}

// ns_pid returns the process's pid in its own pid namespace: the last of
// its leader's struct pid numbers[] (kernel/pid.c pid_nr_ns at level
// pid->level), what NStgid's last field shows. group_leader and thread_pid
// are plain pointers the verifier lets us load through (no __rcu), and an
// index into the numbers[] flexible array must be a constant: the levels
// containers use are spelled out, and deeper ones read with a helper.
static __always_inline u32 ns_pid(struct task_struct *task)
{
	struct pid *pid = task->group_leader->thread_pid;
	if (!pid)
		return 0;
	switch (pid->level) {
	case 0:
		return pid->numbers[0].nr;
	case 1:
		return pid->numbers[1].nr;
	case 2:
		return pid->numbers[2].nr;
	}
	u32 level = pid->level;
	if (level >= MAX_PID_NS_LEVEL)
		return 0;
	void *upid = (void *)pid + bpf_core_field_offset(struct pid, numbers) +
		     level * bpf_core_type_size(struct upid);
	int nr = 0;
	bpf_probe_read_kernel(&nr, sizeof(nr), upid + bpf_core_field_offset(struct upid, nr));
	return nr;
}

// each calls fn for 0 to n-1 (n at most bound), until it returns non-zero.
// The main object uses bpf_loop (Linux 5.17). The second object, built
// from this source with -DITERSNAP_LOOPS (bpf/gen.go), uses a bounded loop
// for kernels without bpf_loop: the verifier walks its iterations one by
// one (127 frames: tens of milliseconds per load), but it needs nothing
// newer than bpf_snprintf (5.13).
#ifdef ITERSNAP_LOOPS
#define each(n, bound, fn, ctx)                               \
	for (u32 i = 0; i < (bound) && i < (n); i++)          \
		if (fn(i, ctx))                                \
			break
#else
#define each(n, bound, fn, ctx) bpf_loop(n, fn, ctx, 0)
#endif
#define each_frame(frames, fn, ctx) each(frames, MAX_FRAMES, fn, ctx)

// chain_cgroup looks at the i'th cgroup up from the task's own
// (s->next_cgroup): it stops past the root, or at a cgroup that an earlier
// task's records named in this walk, and otherwise keeps it in s->chain.
// A cgroup that this task's records named when it was shown before (same
// seq_num, see mark_frame) is named again.
static long chain_cgroup(u32 i, void *data)
{
	struct frames_ctx *c = data;
	struct task_scratch *s = scratch();
	if (!s)
		return 1;
	struct cgroup *cgrp = (void *)s->next_cgroup;
	if (!cgrp)
		return 1;
	u64 id = BPF_CORE_READ(cgrp, kn, id);
	struct named *done = bpf_map_lookup_elem(&named_cgroups, &id);
	if (done && done->session == c->session_id && done->seq_num != c->seq_num)
		return 1;
	s->chain[i & (MAX_CGROUP_CHAIN - 1)] = (u64)cgrp;
	s->nr_chain = i + 1;
	struct cgroup_subsys_state *parent = BPF_CORE_READ(cgrp, self.parent);
	s->next_cgroup = parent ? (u64)BPF_CORE_READ(parent, cgroup) : 0;
	return 0;
}

// name_cgroup writes the cgroup record of the i'th cgroup of s->chain
// counted from its top, and marks it named in this walk.
static long name_cgroup(u32 i, void *data)
{
	struct frames_ctx *c = data;
	struct task_scratch *s = scratch();
	if (!s)
		return 1;
	struct cgroup *cgrp = (void *)s->chain[(s->nr_chain - 1 - i) & (MAX_CGROUP_CHAIN - 1)];
	struct cgroup_rec *r = &s->cg;
	r->id = BPF_CORE_READ(cgrp, kn, id);
	r->parent_id = 0;
	struct cgroup_subsys_state *parent = BPF_CORE_READ(cgrp, self.parent);
	if (parent)
		r->parent_id = BPF_CORE_READ(parent, cgroup, kn, id);
	// bpf_probe_read_kernel_str counts the NUL: 1 for the root's "".
	long n = bpf_probe_read_kernel_str(s->cg_name, CGROUP_NAME_BYTES, BPF_CORE_READ(cgrp, kn, name));
	r->name_bytes = n > 0 ? n - 1 : n;
	r->pad = 0;
	bpf_seq_write(c->seq, r, sizeof(*r));
	if (n > 1)
		bpf_seq_write(c->seq, s->cg_name, (n - 1) & (CGROUP_NAME_BYTES - 1));
	struct named done = { .session = c->session_id, .seq_num = c->seq_num };
	bpf_map_update_elem(&named_cgroups, &r->id, &done, BPF_ANY);
	return 0;
}

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	u32 zero = 0;

	if (!task || !wanted(task))
		return 0;
	struct task_scratch *s = bpf_map_lookup_elem(&task_scratch, &zero);
	if (!s)
		return 0;

	// The iterator hands us trusted BTF pointers: plain field loads (which
	// the verifier turns into fault-safe loads) cost far less than a
	// bpf_probe_read_kernel call each. real_parent and cred sit behind
	// __rcu, which kernels with BTF type tags do not let us dereference
	// directly: those go through BPF_CORE_READ.
	struct task_rec *r = &s->rec;
	r->tid = task->pid;
	r->pid = task->tgid;
	r->ppid = BPF_CORE_READ(task, real_parent, tgid);
	r->uid = BPF_CORE_READ(task, cred, euid.val);
	r->state = task_state(task);
	r->exit_state = task->exit_state;
	r->flags = task->flags;
	r->start_time = task->start_boottime;
	r->switches = task->nvcsw + task->nivcsw;
	r->nofile = task->signal->rlim[RLIMIT_NOFILE].rlim_cur;
	BPF_CORE_READ_INTO(&r->comm, task, comm);
	// cgroups is __rcu: BPF_CORE_READ, as for cred.
	struct cgroup *cgrp = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	r->cgroup_id = BPF_CORE_READ(cgrp, kn, id);
	r->ns_pid = ns_pid(task);
	r->pad2 = 0;

	long n = bpf_get_task_stack(task, s->stack, MAX_FRAMES * sizeof(u64), 0);
	r->stack_bytes = n;
	u32 frames = n > 0 ? n / sizeof(u64) : 0;
	struct frames_ctx c = {
		.seq = seq,
		.session_id = ctx->meta->session_id,
		.seq_num = ctx->meta->seq_num,
	};
	s->new_frames[0] = s->new_frames[1] = 0;
	r->nr_syms = 0;
	each_frame(frames, mark_frame, &c);

	s->next_cgroup = (u64)cgrp;
	s->nr_chain = 0;
	each(MAX_CGROUP_CHAIN, MAX_CGROUP_CHAIN, chain_cgroup, &c);
	r->nr_cgroups = s->nr_chain < MAX_CGROUP_NAMES ? s->nr_chain : MAX_CGROUP_NAMES;

	bpf_seq_write(seq, r, sizeof(*r));
	if (n > 0)
		bpf_seq_write(seq, s->stack, n & (STACK_SLOTS * sizeof(u64) - 1));
	if (r->nr_syms > 0)
		each_frame(frames, write_symbol, &c);
	each(r->nr_cgroups, MAX_CGROUP_NAMES, name_cgroup, &c);
	return 0;
}

static __always_inline u32 cloexec_flag(struct bpf_iter__task_file *ctx, struct task_struct *task, struct file_scratch *s)
{
	// O_CLOEXEC lives in the fd table's bitmap, not in f_flags;
	// /proc/PID/fdinfo adds it back, and so do we. kernel/bpf/task_iter.c
	// visits a table's fds in order, so a cached word serves the next 63.
	u64 session = ctx->meta->session_id;
	u32 fd = ctx->fd, tid = task->pid, word = fd / BITS_PER_LONG;

	if (s->cloexec_session != session || s->cloexec_tid != tid || s->cloexec_word != word) {
		unsigned long *bits = BPF_CORE_READ(task, files, fdt, close_on_exec);
		s->cloexec_bits = 0;
		if (bits)
			bpf_probe_read_kernel(&s->cloexec_bits, sizeof(s->cloexec_bits), bits + word);
		s->cloexec_session = session;
		s->cloexec_tid = tid;
		s->cloexec_word = word;
	}
	return (s->cloexec_bits >> (fd % BITS_PER_LONG)) & 1 ? O_CLOEXEC : 0;
}

// read_sock fills s->sock from a socket file and returns the bytes of unix
// name to send after it. Every field is set (zeroed when it does not
// apply), so nothing of the previous socket crosses into the record.
//
// bpf_sock_from_file (5.11) hands back a BTF pointer, so the fields are
// plain loads, which the verifier makes fault-safe, rather than a
// bpf_probe_read_kernel call each (BPF_CORE_READ).
static __always_inline u32 read_sock(struct file_scratch *s, struct file *file)
{
	struct sock_rec *r = &s->sock;
	__builtin_memset(r, 0, sizeof(*r));
	r->name_bytes = -1;
	struct socket *sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	struct sock *sk = sock->sk;
	if (!sk)
		return 0;
	r->family = sk->__sk_common.skc_family;
	r->type = sk->sk_type;
	r->protocol = sk->sk_protocol;
	r->state = sk->__sk_common.skc_state;
	struct net *net = sk->__sk_common.skc_net.net;
	if (net)
		r->netns = net->ns.inum;
	switch (r->family) {
	case AF_INET:
		*(u32 *)r->laddr = sk->__sk_common.skc_rcv_saddr;
		*(u32 *)r->raddr = sk->__sk_common.skc_daddr;
		break;
	case AF_INET6:
		BPF_CORE_READ_INTO((struct in6_addr *)r->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)r->raddr, sk, __sk_common.skc_v6_daddr);
		break;
	case AF_UNIX: {
		// sock->sk is not a trusted pointer, which bpf_skc_to_unix_sock
		// wants: read unix_sock's fields behind struct sock with
		// bpf_probe_read_kernel.
		struct unix_address *addr = BPF_CORE_READ((struct unix_sock *)sk, addr);
		if (!addr)
			return 0;
		int len = BPF_CORE_READ(addr, len) - (int)sizeof(unsigned short);
		if (len <= 0 || len > UNIX_PATH_MAX)
			return 0;
		char *path = (void *)addr + bpf_core_field_offset(struct unix_address, name) +
			     __builtin_offsetof(struct sockaddr_un, sun_path);
		if (bpf_probe_read_kernel(s->path, len & (UNIX_NAME_SLOTS - 1), path) < 0)
			return 0;
		// A filesystem name ends with its NUL (net/unix/af_unix.c
		// unix_mkname_bsd counts it), an abstract one need not.
		if (s->path[0] != 0 && s->path[(len - 1) & (UNIX_NAME_SLOTS - 1)] == 0)
			len--;
		r->name_bytes = len;
		return len;
	}
	default:
		return 0;
	}
	// Ports of inet sockets only: other families keep other things there.
	r->lport = sk->__sk_common.skc_num;
	r->rport = __builtin_bswap16(sk->__sk_common.skc_dport);
	return 0;
}

SEC("iter/task_file")
int dump_file(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	u32 fd = ctx->fd;
	u32 zero = 0;

	// kernel/bpf/task_iter.c visits each fd table once: threads that share
	// their leader's table are skipped there, not here.
	if (!task || !file)
		return 0;
	struct file_scratch *s = bpf_map_lookup_elem(&file_scratch, &zero);
	if (!s)
		return 0;
	u64 session = ctx->meta->session_id;
	if (s->want_session != session || s->want_tid != task->pid) {
		s->want = wanted(task);
		s->want_session = session;
		s->want_tid = task->pid;
	}
	if (!s->want)
		return 0;

	struct file_rec *r = &s->rec;
	struct inode *inode = file->f_inode;
	r->pid = task->tgid;
	r->fd = fd;
	r->mode = inode->i_mode;
	r->ino = inode->i_ino;
	r->dev = inode->i_sb->s_dev;
	r->flags = file->f_flags | cloexec_flag(ctx, task, s);

	// Sockets and pipes are most of a busy server's fds, and their d_path
	// is a fixed pattern around the inode number (net/socket.c
	// sockfs_dname, fs/pipe.c pipefs_dname): userspace writes it, and the
	// kernel skips a d_path and a string copy per fd.
	unsigned long magic = inode->i_sb->s_magic;
	r->pad = 0;
	r->path_source = magic == SOCKFS_MAGIC ? PATH_SOCKET : magic == PIPEFS_MAGIC ? PATH_PIPE : PATH_FOLLOWS;
	if (r->path_source == PATH_PIPE) {
		r->path_bytes = 0;
		bpf_seq_write(seq, r, sizeof(*r));
		return 0;
	}
	if (r->path_source == PATH_SOCKET) {
		r->path_bytes = 0;
		u32 name = read_sock(s, file);
		bpf_seq_write(seq, r, sizeof(*r));
		bpf_seq_write(seq, &s->sock, sizeof(s->sock));
		if (name > 0)
			bpf_seq_write(seq, s->path, name & (UNIX_NAME_SLOTS - 1));
		return 0;
	}

	// bpf_d_path returns the length including the NUL and leaves whatever
	// the previous record left after it: only the returned length crosses
	// into userspace. An anon inode's d_path is "anon_inode:" and its
	// dentry's name (fs/anon_inodes.c anon_inodefs_dname), which a string
	// copy gives for a fraction of d_path's cost; userspace adds the
	// prefix.
	long n;
	if (magic == ANON_INODE_FS_MAGIC) {
		r->path_source = PATH_ANON;
		n = bpf_probe_read_kernel_str(s->path, ANON_NAME_BYTES, file->f_path.dentry->d_name.name);
	} else {
		n = bpf_d_path(&file->f_path, s->path, sizeof(s->path));
	}
	r->path_bytes = n > 0 ? n - 1 : n;
	bpf_seq_write(seq, r, sizeof(*r));
	if (n > 1)
		bpf_seq_write(seq, s->path, (n - 1) & (PATH_BYTES - 1));
	return 0;
}

// noop_file is the fd walk doing nothing per fd: BenchmarkFDProgram holds
// dump_file's cost against it, the kernel's own iteration over the fd
// tables, which no program can make cheaper. The loader never loads it.
SEC("iter/task_file")
int noop_file(struct bpf_iter__task_file *ctx)
{
	return 0;
}

// The XDP context (include/uapi/linux/bpf.h struct xdp_md), as far as
// test_comm_equal reads it.
struct xdp_md {
	u32 data;
	u32 data_end;
};

// test_comm_equal runs comm_equal on the two 16-byte comms of its packet
// and returns 1 when they are equal, 0 when not, 2 for a short packet.
// BPF_PROG_TEST_RUN runs XDP programs on any data, so bpf_test.go checks
// the compare on bytes that today's kernels no longer leave in a comm. The
// loader never loads it (bpf/objects.go names the programs it loads).
SEC("xdp")
int test_comm_equal(struct xdp_md *ctx)
{
	const char *data = (const char *)(long)ctx->data;
	const char *end = (const char *)(long)ctx->data_end;

	if (data + 2 * TASK_COMM_LEN > end)
		return 2;
	return comm_equal(data, data + TASK_COMM_LEN);
}
