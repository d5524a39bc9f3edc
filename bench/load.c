/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared helpers of fanout-bench's network scenarios; see load.h. */
#include "load.h"

#include "clock.h"
#include "hist.h"
#include "jwt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void load_token(const struct load_target *t, const char *user, char *token, size_t size)
{
	if (jwt_sign(t->secret, user, (int64_t)time(NULL), 3600, token, size) < 0) {
		fprintf(stderr, "fanout-bench: cannot mint a token for %s\n", user);
		exit(2);
	}
}

/* One kept-alive connection to the API per process: 100,000 calls over
 * fresh connections run a namespace out of ports. A child of fork opens
 * its own. */
static struct {
	int fd;
	pid_t owner;
	long calls;	  /* answered on this connection */
	uint64_t started; /* the call in progress, CLOCK_MONOTONIC ns */
	char why[128];	  /* what the last failed call met */
} api_conn = {-1, 0, 0, 0, ""};

static void api_why(const char *step, int err)
{
	snprintf(api_conn.why, sizeof(api_conn.why),
		 "%s failed after %.0f ms, %ld calls on the connection: %s", step,
		 (double)(time_mono_ns() - api_conn.started) / 1e6, api_conn.calls,
		 err ? strerror(err) : "closed by the server");
}

static void api_drop(void)
{
	if (api_conn.fd >= 0)
		close(api_conn.fd);
	api_conn.fd = -1;
	api_conn.calls = 0;
}

/* One request and its answer on the kept connection; -1 when the
 * connection failed before an answer (the caller may try a new one). */
static int api_once(const struct sockaddr_in *addr, const char *req, size_t n, char *out,
		    size_t out_size)
{
	size_t got = 0;
	char *end;

	api_conn.started = time_mono_ns();
	if (api_conn.fd >= 0 && api_conn.owner != getpid())
		api_conn.fd = -1; /* the parent's: leave it to the parent */
	if (api_conn.fd < 0) {
		api_conn.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		api_conn.owner = getpid();
		if (api_conn.fd < 0 ||
		    connect(api_conn.fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
			api_why("connect", errno);
			api_drop();
			return -1;
		}
	}
	if (write(api_conn.fd, req, n) != (ssize_t)n) {
		api_why("write", errno);
		api_drop();
		return -1;
	}
	out[0] = '\0';
	while (got + 1 < out_size) {
		ssize_t r = read(api_conn.fd, out + got, out_size - 1 - got);
		char *cl;

		if (r <= 0) {
			api_why("read", r < 0 ? errno : 0);
			api_drop();
			return got ? 0 : -1;
		}
		got += (size_t)r;
		out[got] = '\0';
		/* Content-Length tells when the whole answer is in. */
		end = strstr(out, "\r\n\r\n");
		cl = strcasestr(out, "content-length:");
		if (end && cl && got >= (size_t)(end + 4 - out) + (size_t)atol(cl + 15))
			break;
	}
	api_conn.calls++;
	if (strcasestr(out, "connection: close"))
		api_drop();
	return 0;
}

int load_api(const struct load_target *t, const char *method, const char *path, const char *user,
	     const char *body, char *out, size_t out_size)
{
	const char *host = t->api_host ? t->api_host : t->host;
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port =
				       htons((uint16_t)(t->api_host ? t->api_port : t->port))};
	char token[512], req[4096], *end;
	int n, status = -1;

	out[0] = '\0';
	load_token(t, user, token, sizeof(token));
	inet_pton(AF_INET, host, &addr.sin_addr);
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: "
		     "application/json\r\nContent-Length: %zu\r\n\r\n%s",
		     method, path, host, token, body ? strlen(body) : 0, body ? body : "");
	/* A kept connection the server has closed fails once: then a new one. */
	if (api_once(&addr, req, (size_t)n, out, out_size) < 0) {
		char first[sizeof(api_conn.why)];

		memcpy(first, api_conn.why, sizeof(first));
		if (api_once(&addr, req, (size_t)n, out, out_size) < 0) {
			snprintf(out, out_size, "(%s; then %s)", first, api_conn.why);
			return -1;
		}
	}
	if (strlen(out) > 12)
		status = atoi(out + 9);
	end = strstr(out, "\r\n\r\n");
	if (end)
		memmove(out, end + 4, strlen(end + 4) + 1);
	return status;
}

static int64_t id_from(const char *body)
{
	json_t *o = json_loads(body, 0, NULL);
	int64_t id = json_integer_value(json_object_get(json_object_get(o, "channel"), "id"));

	json_decref(o);
	return id > 0 ? id : -1;
}

int64_t load_create_channel(const struct load_target *t, const char *owner, const char *name,
			    const char *kind)
{
	char body[256], out[4096];

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"kind\":\"%s\"}", name, kind);
	if (load_api(t, "POST", "/api/v1/channels", owner, body, out, sizeof(out)) != 201) {
		fprintf(stderr, "fanout-bench: cannot create channel %s: %s\n", name, out);
		return -1;
	}
	return id_from(out);
}

int load_join(const struct load_target *t, const char *user, int64_t channel)
{
	char path[96], out[1024];

	int status;

	snprintf(path, sizeof(path), "/api/v1/channels/%ld/join", (long)channel);
	status = load_api(t, "POST", path, user, "", out, sizeof(out));
	if (status != 200)
		fprintf(stderr, "fanout-bench: join of %s: HTTP %d %.200s\n", user, status, out);
	return status == 200 ? 0 : -1;
}

int64_t load_dm(const struct load_target *t, const char *a, const char *b)
{
	char body[128], out[1024];
	int status;

	snprintf(body, sizeof(body), "{\"user\":\"%s\"}", b);
	/* A DM needs b to exist: b is seen once it calls the API. */
	load_api(t, "GET", "/api/v1/channels", b, NULL, out, sizeof(out));
	status = load_api(t, "POST", "/api/v1/dms", a, body, out, sizeof(out));
	return status == 200 || status == 201 ? id_from(out) : -1;
}

const char *load_source(const struct load_target *t, int i, char buf[20])
{
	int k;

	if (t->sources <= 1)
		return NULL;
	k = i % t->sources;
	if (t->source_base) {
		uint32_t a = t->source_base + (uint32_t)k;
		snprintf(buf, 20, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	} else {
		snprintf(buf, 20, "127.0.%d.%d", k / 250, 1 + k % 250);
	}
	return buf;
}

unsigned long load_raise_fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
		return 0;
	lim.rlim_cur = lim.rlim_max;
	setrlimit(RLIMIT_NOFILE, &lim);
	return (unsigned long)lim.rlim_cur;
}

int64_t load_field(const char *data, size_t len, const char *name)
{
	const char *p = memmem(data, len, name, strlen(name));

	return p ? strtoll(p + strlen(name), NULL, 10) : -1;
}

/* Slides the window by n: bit k means "last - k was seen". */
static void window_shift(uint64_t seen[64], int64_t n)
{
	int words = (int)(n / 64), bits = (int)(n % 64);

	if (n >= 4096) {
		memset(seen, 0, 64 * sizeof(*seen));
		return;
	}
	for (int w = 63; w >= 0; w--) {
		uint64_t hi = w - words >= 0 ? seen[w - words] : 0;
		uint64_t lo = w - words - 1 >= 0 ? seen[w - words - 1] : 0;
		seen[w] = bits ? (hi << bits) | (lo >> (64 - bits)) : hi;
	}
}

void seq_check(struct seq_check *c, int64_t seq)
{
	int64_t back = c->last - seq;

	if (seq > c->last) {
		int64_t shift = seq - c->last;
		if (c->last && shift > 1)
			c->gaps += (uint64_t)(shift - 1);
		window_shift(c->seen, shift);
		c->seen[0] |= 1;
		c->last = seq;
		c->received++;
		return;
	}
	if (back >= 4096 || (c->seen[back / 64] >> (back % 64)) & 1) {
		c->dups++;
		return;
	}
	c->seen[back / 64] |= 1ull << (back % 64);
	c->reorders++;
	c->received++;
	if (c->gaps)
		c->gaps--; /* the gap it left is filled */
}

int load_write_json(const char *path, json_t *result)
{
	json_t *cpu =
	    cpu_window_report((uint64_t)json_integer_value(json_object_get(result, "deliveries")));
	int rc = 0;

	if (cpu)
		json_object_set_new(result, "cpu", cpu);
	if (path && json_dump_file(result, path, JSON_INDENT(2)) != 0) {
		fprintf(stderr, "fanout-bench: cannot write %s\n", path);
		rc = -EIO;
	}
	json_decref(result);
	return rc;
}

bool load_option(int opt, const char *arg, struct load_target *t, const char **json_path)
{
	switch (opt) {
	case 'H':
		t->host = arg;
		return true;
	case 'P':
		t->port = atoi(arg);
		return true;
	case 'S':
		t->sources = atoi(arg);
		return true;
	case 'B': {
		unsigned a, b, c, d;

		if (sscanf(arg, "%u.%u.%u.%u", &a, &b, &c, &d) != 4 || a > 255 || b > 255 ||
		    c > 255 || d > 255)
			return false;
		t->source_base = a << 24 | b << 16 | c << 8 | d;
		return true;
	}
	case 'A': {
		static char api_host[64];
		const char *colon = strrchr(arg, ':');

		if (colon == NULL || (size_t)(colon - arg) >= sizeof(api_host))
			return false;
		memcpy(api_host, arg, (size_t)(colon - arg));
		api_host[colon - arg] = '\0';
		t->api_host = api_host;
		t->api_port = atoi(colon + 1);
		return t->api_port > 0;
	}
	case 'j':
		*json_path = arg;
		return true;
	case CPU_OPTION:
		return cpu_option(arg);
	default:
		return false;
	}
}

json_t *load_latency_report(const struct hist *h)
{
	double p50 = hist_quantile(h, 0.5) / 1e6, p90 = hist_quantile(h, 0.9) / 1e6,
	       p99 = hist_quantile(h, 0.99) / 1e6, p999 = hist_quantile(h, 0.999) / 1e6,
	       max = (double)h->max / 1e6;

	printf("latency from due time: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max "
	       "%.2f ms\n",
	       p50, p90, p99, p999, max);
	return json_pack("{s:f, s:f, s:f, s:f, s:f}", "p50", p50, "p90", p90, "p99", p99, "p999",
			 p999, "max", max);
}
