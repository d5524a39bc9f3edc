/* SPDX-License-Identifier: BSD-3-Clause */
/* systemd's journal, spoken natively (its "native protocol": one datagram of
 * FIELD=value lines per record on /run/systemd/journal/socket), so each
 * record keeps its fields: PRIORITY, SYSLOG_IDENTIFIER, FANOUT_COMPONENT,
 * MESSAGE. Used only when stderr is the journal's own stream: systemd then
 * sets JOURNAL_STREAM to that stream's device and inode (systemd.exec(5)). */
#include "journal.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static struct sockaddr_un journal_addr;
static socklen_t journal_addr_len;

bool journal_is_stream(int fd)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	return v && sscanf(v, "%llu:%llu", &dev, &ino) == 2 && fstat(fd, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int journal_open(void)
{
	const char *path = getenv("FANOUT_JOURNAL_SOCKET");
	int fd;

	if (path == NULL || path[0] == '\0')
		path = JOURNAL_SOCKET;
	if (strlen(path) >= sizeof(journal_addr.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&journal_addr, 0, sizeof(journal_addr));
	journal_addr.sun_family = AF_UNIX;
	memcpy(journal_addr.sun_path, path, strlen(path) + 1);
	journal_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	return fd;
}

/* Appends NAME=value, or for a value with a newline the binary form: NAME,
 * a newline, its length as 64-bit little-endian, the value, a newline. */
static size_t field(char *buf, size_t used, size_t size, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);

	if (used + n + v + 10 > size)
		return used;
	memcpy(buf + used, name, n);
	used += n;
	if (strchr(value, '\n') == NULL) {
		buf[used++] = '=';
	} else {
		uint64_t le = v;

		buf[used++] = '\n';
		for (int i = 0; i < 8; i++)
			buf[used++] = (char)((le >> (8 * i)) & 0xff);
	}
	memcpy(buf + used, value, v);
	used += v;
	buf[used++] = '\n';
	return used;
}

int journal_send(int fd, int priority, const char *identifier, const char *component,
		 const char *message)
{
	char buf[4096], prio[4];
	size_t n = 0;

	snprintf(prio, sizeof(prio), "%d", priority & 7);
	n = field(buf, n, sizeof(buf), "PRIORITY", prio);
	n = field(buf, n, sizeof(buf), "SYSLOG_IDENTIFIER", identifier);
	n = field(buf, n, sizeof(buf), "FANOUT_COMPONENT", component);
	n = field(buf, n, sizeof(buf), "MESSAGE", message);
	if (sendto(fd, buf, n, MSG_NOSIGNAL, (struct sockaddr *)&journal_addr, journal_addr_len) <
	    0)
		return -errno;
	return 0;
}
