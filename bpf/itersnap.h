// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// The kernel types itersnap.bpf.c reads, declared by hand with only the
// fields used. preserve_access_index makes every access a CO-RE relocation:
// libbpf/cilium-ebpf patch the offsets against the running kernel's BTF at
// load time, so field order and the omitted fields do not matter. This
// replaces a generated 3 MB vmlinux.h.

#ifndef ITERSNAP_H
#define ITERSNAP_H

typedef unsigned char __u8;
typedef short int __s16;
typedef short unsigned int __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long int __s64;
typedef long long unsigned int __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
};

#define TASK_COMM_LEN 16
#define BPF_ANY 0
#define BPF_NOEXIST 1
#define RLIMIT_NOFILE 7
#define RLIM_NLIMITS 16
#define BITS_PER_LONG 64

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	unsigned int val;
} kuid_t;

struct cred {
	kuid_t euid;
} __attribute__((preserve_access_index));

struct rlimit {
	unsigned long rlim_cur;
	unsigned long rlim_max;
};

struct signal_struct {
	struct rlimit rlim[RLIM_NLIMITS];
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned long *close_on_exec;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct super_block {
	unsigned int s_dev;
	unsigned long s_magic;
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct vfsmount;
struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_flags;
	void *private_data; // a socket file's struct socket (net/socket.c sock_alloc_file)
} __attribute__((preserve_access_index));

// Sockets. Only the fields read are declared; include/net/sock.h keeps
// several of them in anonymous unions, which CO-RE matches by name.
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct in6_addr {
	u8 s6_addr[16];
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport; // network order
	u16 skc_num; // host order
	unsigned short skc_family;
	volatile unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	u16 sk_type; // 16-bit fields since 5.6 (bitfields before)
	u16 sk_protocol;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

#define UNIX_PATH_MAX 108

struct sockaddr_un {
	unsigned short sun_family;
	char sun_path[UNIX_PATH_MAX];
};

// include/net/af_unix.h: len counts sun_family and the path (with its NUL
// for a filesystem name; an abstract name starts with a NUL).
struct unix_address {
	int len;
	struct sockaddr_un name[0];
} __attribute__((preserve_access_index));

struct unix_sock {
	struct sock sk;
	struct unix_address *addr;
} __attribute__((preserve_access_index));

// Cgroups and pid namespaces.
struct kernfs_node {
	u64 id; // the inode number of the cgroup's directory (5.5+)
	const char *name; // the directory's name; "" for the root
} __attribute__((preserve_access_index));

struct cgroup;

// include/linux/cgroup-defs.h: a cgroup's own css (cgroup->self) points
// back at the cgroup, and its parent is the parent cgroup's self (NULL
// at the root). The kernfs node's parent pointer, the other way up, was
// renamed in 6.15 (kernfs_node.__parent).
struct cgroup_subsys_state {
	struct cgroup *cgroup;
	struct cgroup_subsys_state *parent;
} __attribute__((preserve_access_index));

struct cgroup {
	struct cgroup_subsys_state self;
	struct kernfs_node *kn;
	int level; // the root is at 0, each step down adds one
	// This cgroup's ancestors, indexed by their level, itself at [level]
	// (include/linux/cgroup-defs.h; Linux 6.1, before which the array held
	// their ids: cgroup___pre61).
	struct cgroup *ancestors[0];
} __attribute__((preserve_access_index));

// Before 6.1, struct cgroup kept its ancestors' ids, not pointers.
struct cgroup___pre61 {
	u64 ancestor_ids[0];
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp; // the cgroup v2 hierarchy's cgroup
} __attribute__((preserve_access_index));

struct upid {
	int nr;
} __attribute__((preserve_access_index));

struct pid {
	unsigned int level; // 0 in the initial pid namespace
	struct upid numbers[0]; // level+1 entries, outermost first
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int __state;
	unsigned int flags;
	int exit_state;
	int pid;
	int tgid;
	unsigned long nvcsw;
	unsigned long nivcsw;
	u64 start_boottime;
	char comm[TASK_COMM_LEN];
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	const struct cred *cred;
	struct files_struct *files;
	struct signal_struct *signal;
	struct pid *thread_pid;
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

// Before 5.14 the state field was called "state" (and was a long).
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	u64 session_id;
	u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

#endif
