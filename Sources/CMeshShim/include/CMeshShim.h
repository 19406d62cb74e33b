#ifndef MESHD_CMESHSHIM_H
#define MESHD_CMESHSHIM_H
#include <stdint.h>
#include <sys/types.h>

// setns/unshare and CLONE_NEWNET need _GNU_SOURCE, which Swift's Glibc module does not define.
int meshd_setns(int fd, int nstype);
int meshd_unshare(int flags);
extern const int meshd_CLONE_NEWNET;
pid_t meshd_gettid(void);

// The mount calls `ip netns add/delete` makes, so our namespaces are the ones `ip netns` sees.
int meshd_mount_bind(const char *source, const char *target);
int meshd_mount_make_shared_rec(const char *target);
int meshd_mount_bind_self_rec(const char *target);
int meshd_umount_detach(const char *target);
/// posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34); `actions` is a posix_spawn_file_actions_t *.
int meshd_spawn_closefrom(void *actions, int lowfd);

// Function-like netlink macros (NLMSG_ALIGN, NLA_ALIGN, ...) and constants hidden behind them.
uint32_t meshd_nlmsg_align(uint32_t len);
uint32_t meshd_nla_align(uint32_t len);
extern const uint32_t meshd_NLMSG_HDRLEN;
extern const int meshd_SOL_NETLINK;

// Socket timeouts: struct timeval setsockopt in one call.
int meshd_set_socket_timeouts(int fd, int send_ms, int recv_ms);

// Containers (MeshRuntime's OCI driver). prctl is variadic and CMSG_* are macros: neither imports.
/// PR_SET_CHILD_SUBREAPER for the calling process; PR_GET_CHILD_SUBREAPER (1 when set, -1 on error).
int meshd_set_child_subreaper(int on);
int meshd_child_subreaper(void);
/// Receives one file descriptor passed with SCM_RIGHTS on `sock` (runc's --console-socket sends the
/// pty master that way); -1 with errno set on failure, or errno EBADMSG when the message held none.
int meshd_recv_fd(int sock);
/// TIOCSWINSZ on a pty master: the size the program on the other side reads (and its SIGWINCH).
int meshd_set_winsize(int fd, unsigned short rows, unsigned short cols);
#endif
