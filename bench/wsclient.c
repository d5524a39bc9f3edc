/* SPDX-License-Identifier: BSD-3-Clause */
/* A minimal epoll websocket client for fanout-bench; see wsclient.h. */
#include "wsclient.h"
#include "buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum ws_state { WS_CONNECTING, WS_HANDSHAKE, WS_OPEN, WS_CLOSED };

/* A byte queue: appended at the end, consumed from off. */
struct queue {
	struct buf b;
	size_t off;
};

struct ws {
	struct ws_loop *loop;
	int fd;
	enum ws_state state;
	void *user;
	struct queue in, out;
	uint32_t mask;
	bool want_out;
	bool paused;
	char why[64]; /* how it ended, for ws_why() */
};

struct ws_loop {
	int epfd;
	struct ws_handlers h;
};

/* Appends to a queue, first dropping what was consumed when that avoids
 * growing it. */
static int queue_put(struct queue *q, const void *p, size_t n)
{
	if (q->off && (q->off == q->b.len || q->b.len + n > q->b.cap)) {
		memmove(q->b.data, q->b.data + q->off, q->b.len - q->off);
		q->b.len -= q->off;
		q->off = 0;
	}
	return buf_put(&q->b, p, n);
}

struct ws_loop *ws_loop_create(const struct ws_handlers *h)
{
	struct ws_loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->h = *h;
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void ws_loop_destroy(struct ws_loop *l)
{
	close(l->epfd);
	free(l);
}

static void ws_update_events(struct ws *ws)
{
	struct epoll_event ev = {
	    .events = (ws->paused ? 0u : EPOLLIN) | (ws->want_out ? EPOLLOUT : 0u), .data.ptr = ws};
	epoll_ctl(ws->loop->epfd, EPOLL_CTL_MOD, ws->fd, &ev);
}

struct ws *ws_connect(struct ws_loop *l, const char *host, int port, const char *path,
		      const char *source, void *user)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct ws *ws = calloc(1, sizeof(*ws));
	char req[4096];
	int one = 1, n;

	if (ws == NULL)
		return NULL;
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
		free(ws);
		errno = EINVAL;
		return NULL;
	}
	ws->loop = l;
	ws->user = user;
	ws->mask = (uint32_t)random();
	ws->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ws->fd < 0) {
		free(ws);
		return NULL;
	}
	setsockopt(ws->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (source) {
		struct sockaddr_in from = {.sin_family = AF_INET};
		if (inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
		    bind(ws->fd, (struct sockaddr *)&from, sizeof(from)) < 0) {
			close(ws->fd);
			free(ws);
			return NULL;
		}
	}
	if (connect(ws->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
		close(ws->fd);
		free(ws);
		return NULL;
	}
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: "
		     "Upgrade\r\nSec-WebSocket-Key: ZmFub3V0LWJlbmNoLWtleQ==\r\n"
		     "Sec-WebSocket-Version: 13\r\n\r\n",
		     path, host, port);
	queue_put(&ws->out, req, (size_t)n);
	ws->state = WS_CONNECTING;
	ws->want_out = true;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = ws};
	epoll_ctl(l->epfd, EPOLL_CTL_ADD, ws->fd, &ev);
	return ws;
}

static int frame_out(struct ws *ws, int opcode, const char *data, size_t len)
{
	unsigned char head[14];
	size_t h = 0;
	unsigned char key[4];
	char chunk[4096];

	head[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		head[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		head[h++] = 0x80 | 126;
		head[h++] = (unsigned char)(len >> 8);
		head[h++] = (unsigned char)len;
	} else {
		head[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			head[h++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	ws->mask = ws->mask * 1103515245u + 12345u;
	memcpy(key, &ws->mask, 4);
	memcpy(head + h, key, 4);
	h += 4;
	if (queue_put(&ws->out, head, h) < 0)
		return -ENOMEM;
	for (size_t off = 0; off < len; off += sizeof(chunk)) {
		size_t n = len - off < sizeof(chunk) ? len - off : sizeof(chunk);
		for (size_t i = 0; i < n; i++)
			chunk[i] = (char)(data[off + i] ^ key[(off + i) & 3]);
		if (queue_put(&ws->out, chunk, n) < 0)
			return -ENOMEM;
	}
	if (!ws->want_out) {
		ws->want_out = true;
		ws_update_events(ws);
	}
	return 0;
}

int ws_send_text(struct ws *ws, const char *data, size_t len)
{
	if (ws->state != WS_OPEN)
		return -ENOTCONN;
	return frame_out(ws, 1, data, len);
}

int ws_send_binary(struct ws *ws, const char *data, size_t len)
{
	if (ws->state != WS_OPEN)
		return -ENOTCONN;
	return frame_out(ws, 2, data, len);
}

void ws_pause(struct ws *ws, bool paused)
{
	if (ws->state == WS_CLOSED || ws->paused == paused)
		return;
	ws->paused = paused;
	ws_update_events(ws);
}

size_t ws_pending(const struct ws *ws)
{
	return ws->out.b.len - ws->out.off;
}

static void ws_fail(struct ws *ws, int code)
{
	static const char *const states[] = {"connecting", "in the handshake", "open", "closed"};

	if (ws->state == WS_CLOSED)
		return;
	if (code == 0)
		snprintf(ws->why, sizeof(ws->why), "%s while %s", errno ? strerror(errno) : "EOF",
			 states[ws->state]);
	ws->state = WS_CLOSED;
	epoll_ctl(ws->loop->epfd, EPOLL_CTL_DEL, ws->fd, NULL);
	close(ws->fd);
	ws->loop->h.on_close(ws, ws->user, code);
}

const char *ws_why(const struct ws *ws)
{
	return ws->why[0] ? ws->why : "open";
}

void ws_close(struct ws *ws)
{
	if (ws->state != WS_CLOSED) {
		epoll_ctl(ws->loop->epfd, EPOLL_CTL_DEL, ws->fd, NULL);
		close(ws->fd);
	}
	buf_free(&ws->in.b);
	buf_free(&ws->out.b);
	free(ws);
}

/* Parses what has arrived: the handshake, then frames. */
static void ws_parse(struct ws *ws)
{
	struct queue *b = &ws->in;

	if (ws->state == WS_HANDSHAKE) {
		char *end = memmem(b->b.data + b->off, b->b.len - b->off, "\r\n\r\n", 4);
		if (end == NULL)
			return;
		if (strncmp(b->b.data + b->off, "HTTP/1.1 101", 12) != 0) {
			snprintf(ws->why, sizeof(ws->why), "upgrade refused: %.*s",
				 (int)strcspn(b->b.data + b->off, "\r\n"), b->b.data + b->off);
			ws_fail(ws, -1);
			return;
		}
		b->off = (size_t)(end + 4 - b->b.data);
		ws->state = WS_OPEN;
		ws->loop->h.on_open(ws, ws->user);
	}
	while (ws->state == WS_OPEN) {
		const unsigned char *p = (const unsigned char *)b->b.data + b->off;
		size_t avail = b->b.len - b->off, h = 2;
		uint64_t len;
		int opcode;

		if (avail < 2)
			return;
		opcode = p[0] & 0x0f;
		len = p[1] & 0x7f;
		if (len == 126) {
			if (avail < 4)
				return;
			len = ((uint64_t)p[2] << 8) | p[3];
			h = 4;
		} else if (len == 127) {
			if (avail < 10)
				return;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = (len << 8) | p[2 + i];
			h = 10;
		}
		if (avail < h + len)
			return;
		b->off += h + len;
		/* Text and binary alike: NATS sends its protocol in binary frames. */
		if (opcode == 1 || opcode == 2)
			ws->loop->h.on_text(ws, ws->user, (const char *)p + h, (size_t)len);
		else if (opcode == 9)
			frame_out(ws, 10, (const char *)p + h, (size_t)len);
		else if (opcode == 8) {
			int code = len >= 2 ? (p[h] << 8) | p[h + 1] : 1005;
			snprintf(ws->why, sizeof(ws->why), "close frame %d %.*s", code,
				 len > 2 ? (int)len - 2 : 0, (const char *)p + h + 2);
			ws_fail(ws, code);
		}
	}
}

static void ws_io(struct ws *ws, uint32_t events)
{
	if (events & EPOLLOUT) {
		if (ws->state == WS_CONNECTING)
			ws->state = WS_HANDSHAKE;
		while (ws->out.off < ws->out.b.len) {
			ssize_t n = send(ws->fd, ws->out.b.data + ws->out.off,
					 ws->out.b.len - ws->out.off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN)
					break;
				ws_fail(ws, 0);
				return;
			}
			ws->out.off += (size_t)n;
		}
		if (ws->out.off == ws->out.b.len && ws->want_out) {
			ws->want_out = false;
			ws_update_events(ws);
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		char tmp[65536];
		for (;;) {
			ssize_t n = recv(ws->fd, tmp, sizeof(tmp), 0);
			if (n > 0) {
				queue_put(&ws->in, tmp, (size_t)n);
				continue;
			}
			if (n < 0 && errno == EAGAIN)
				break;
			int err = n == 0 ? 0 : errno;
			ws_parse(ws);
			errno = err;
			ws_fail(ws, 0);
			return;
		}
		ws_parse(ws);
	}
}

int ws_loop_run(struct ws_loop *l, int timeout_ms)
{
	struct epoll_event events[256];
	int n = epoll_wait(l->epfd, events, 256, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++)
		ws_io(events[i].data.ptr, events[i].events);
	return n;
}
