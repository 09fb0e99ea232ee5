/* SPDX-License-Identifier: MIT */
/* The server half of QEMU's ivshmem-doorbell protocol: one client (this
 * QEMU), no other peers. Messages are little-endian int64s, one sendmsg
 * each, an fd riding along as SCM_RIGHTS where the protocol carries one. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qagent.h"

/* The peer id this server gives QEMU: any 16-bit id, no other peer exists. */
#define QA_PEER_ID 0

int qa_ivshmem_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path); /* a stale socket of an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 1) != 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int send_msg(int sock, int64_t value, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &value, .iov_len = sizeof(value) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(ctl, 0, sizeof(ctl));
		m.msg_control = ctl;
		m.msg_controllen = sizeof(ctl);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(value) ? 0 : -EIO;
}

int qa_ivshmem_accept(int listen_fd, int shm_fd, const int *efd,
		      uint32_t vectors)
{
	int conn, rc;
	uint32_t i;

	do
		conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	while (conn < 0 && errno == EINTR);
	if (conn < 0)
		return -errno;
	rc = send_msg(conn, 0, -1); /* protocol version */
	if (!rc)
		rc = send_msg(conn, QA_PEER_ID, -1);
	if (!rc)
		rc = send_msg(conn, -1, shm_fd);
	/* the client's own id with each of its vectors' eventfds: QEMU raises
	 * MSI-X vector i when eventfd i is written (an irqfd under KVM) */
	for (i = 0; !rc && i < vectors; i++)
		rc = send_msg(conn, QA_PEER_ID, efd[i]);
	if (rc) {
		close(conn);
		return rc;
	}
	return conn;
}
