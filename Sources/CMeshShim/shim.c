#define _GNU_SOURCE
#include "CMeshShim.h"
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <string.h>
#include <errno.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

int meshd_setns(int fd, int nstype) { return setns(fd, nstype); }
int meshd_unshare(int flags) { return unshare(flags); }
const int meshd_CLONE_NEWNET = CLONE_NEWNET;
pid_t meshd_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int meshd_mount_bind(const char *source, const char *target) {
    return mount(source, target, "none", MS_BIND, NULL);
}
int meshd_mount_make_shared_rec(const char *target) {
    return mount("", target, "none", MS_SHARED | MS_REC, NULL);
}
int meshd_mount_bind_self_rec(const char *target) {
    return mount(target, target, "none", MS_BIND | MS_REC, NULL);
}
int meshd_umount_detach(const char *target) { return umount2(target, MNT_DETACH); }

uint32_t meshd_nlmsg_align(uint32_t len) { return NLMSG_ALIGN(len); }
uint32_t meshd_nla_align(uint32_t len) { return NLA_ALIGN(len); }
const uint32_t meshd_NLMSG_HDRLEN = NLMSG_HDRLEN;
const int meshd_SOL_NETLINK = SOL_NETLINK;

int meshd_set_socket_timeouts(int fd, int send_ms, int recv_ms) {
    struct timeval s = { .tv_sec = send_ms / 1000, .tv_usec = (send_ms % 1000) * 1000 };
    struct timeval r = { .tv_sec = recv_ms / 1000, .tv_usec = (recv_ms % 1000) * 1000 };
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof s) < 0) return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof r) < 0) return -1;
    return 0;
}

#include <spawn.h>
int meshd_spawn_closefrom(void *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, lowfd);
}

int meshd_set_child_subreaper(int on) { return prctl(PR_SET_CHILD_SUBREAPER, (unsigned long)on, 0, 0, 0); }
int meshd_child_subreaper(void) {
    int on = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, (unsigned long)&on, 0, 0, 0) != 0) return -1;
    return on != 0;
}

int meshd_recv_fd(int sock) {
    char data[256];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            return fd;
        }
    }
    errno = EBADMSG;
    return -1;
}

int meshd_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = {.ws_row = rows, .ws_col = cols, .ws_xpixel = 0, .ws_ypixel = 0};
    return ioctl(fd, TIOCSWINSZ, &ws);
}
