/* SPDX-License-Identifier: BSD-3-Clause */
/* The web client's files, served read-only from the web root: a path is
 * percent-decoded, refused if it climbs (a ".." segment), holds a NUL or a
 * backslash, or names anything but a regular file under the root (symbolic
 * links are not followed); "/" and a trailing "/" mean index.html. Answers
 * carry the content type by extension and the browser-side protections a
 * single-page client needs: a strict Content-Security-Policy (scripts,
 * styles and connections to this origin only), no framing, no referrer. */
#define LOG_COMPONENT "http"
#include "server-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX (16u << 20) /* larger files are not part of a web client */

const char files_headers[] =
    "content-security-policy: default-src 'none'; img-src 'self' data:; script-src 'self'; "
    "font-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'\r\n"
    "x-frame-options: DENY\r\n"
    "referrer-policy: no-referrer\r\n"
    "cache-control: no-cache\r\n";

static const char *content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".json", "application/json"},
	    {".map", "application/json"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".woff2", "font/woff2"},
	    {".txt", "text/plain; charset=utf-8"},
	    {".webmanifest", "application/manifest+json"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* The request path, decoded and checked, as a path under the root (no
 * leading '/'); false when it may not be served. */
static bool file_path(const char *path, char *out, size_t size)
{
	size_t o = 0;

	if (path[0] != '/')
		return false;
	for (size_t i = 1; path[i]; i++) {
		char ch = path[i];

		if (ch == '%') {
			if (http_hex_digit(path[i + 1]) < 0 || http_hex_digit(path[i + 2]) < 0)
				return false;
			ch = (char)(http_hex_digit(path[i + 1]) << 4 | http_hex_digit(path[i + 2]));
			i += 2;
		}
		if (ch == '\0' || ch == '\\' || o + 1 >= size)
			return false;
		out[o++] = ch;
	}
	out[o] = '\0';
	if (o == 0 || out[o - 1] == '/') {
		if (o + sizeof("index.html") > size)
			return false;
		memcpy(out + o, "index.html", sizeof("index.html"));
	}
	/* no segment may be "..", nor start with '.' (no hidden files) */
	for (const char *s = out; s; s = strchr(s, '/')) {
		if (*s == '/')
			s++;
		if (*s == '.' || *s == '/')
			return false;
	}
	return true;
}

/* The file's bytes (malloc'd) and length; NULL when it cannot be served. */
static char *read_file(const char *root, const char *rel, size_t *len)
{
	int dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd;
	struct stat st;
	char *data = NULL;

	if (dir < 0)
		return NULL;
	fd = openat(dir, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	close(dir);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= FILE_MAX) {
		size_t got = 0;

		data = malloc((size_t)st.st_size + 1);
		while (data && got < (size_t)st.st_size) {
			ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (data && got != (size_t)st.st_size) {
			free(data);
			data = NULL;
		}
		*len = got;
	}
	close(fd);
	return data;
}

/* The libraries the web client uses, from the Debian packages that ship
 * them (deploy/bootstrap and the package's Depends install them): served
 * under /vendor/ at fixed paths, so they get the distribution's updates and
 * nothing else outside the web root can be asked for. */
static const struct {
	const char *path, *dir, *file;
} vendor[] = {
    {"/vendor/markdown-it.js", "/usr/share/javascript/markdown-it", "markdown-it.js"},
    {"/vendor/emoji.json", "/usr/share/nodejs/node-emoji/lib", "emoji.json"},
};

void files_read(const char *root, const char *path, struct file_answer *out)
{
	char rel[1024];
	size_t v = 0, nv = sizeof(vendor) / sizeof(vendor[0]);

	*out = (struct file_answer){.status = 404, .content_type = "text/plain; charset=utf-8"};
	while (v < nv && strcmp(path, vendor[v].path) != 0)
		v++;
	if (v < nv) {
		snprintf(rel, sizeof(rel), "%s", vendor[v].file);
		out->data = read_file(vendor[v].dir, rel, &out->len);
	} else if (root && *root && file_path(path, rel, sizeof(rel))) {
		out->data = read_file(root, rel, &out->len);
	}
	if (out->data == NULL) {
		out->data = strdup("not found\n");
		out->len = out->data ? strlen(out->data) : 0;
		return;
	}
	out->status = 200;
	out->content_type = content_type(rel);
}
