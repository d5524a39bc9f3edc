/* SPDX-License-Identifier: BSD-3-Clause */
/* The HTTP/1.1 request head parser and the JSON error answer (see
 * httpreq.h). */
#include "httpreq.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
	H_METHOD,
	H_PATH,
	H_VERSION,
	H_VERSION_LF,
	H_NAME,
	H_VALUE_START,
	H_VALUE,
	H_VALUE_LF,
	H_END_LF,
	H_DONE,
	H_FAILED,
};

/* The headers kept, by field_id (0: a header not kept). */
enum {
	F_NONE,
	F_UPGRADE,
	F_CONNECTION,
	F_KEY,
	F_VERSION,
	F_AUTH,
	F_LENGTH,
	F_IDEM,
	F_EXPECT,
	F_COUNT
};

#define FIELD(f, n, once)                                                                          \
	{                                                                                          \
		n, offsetof(struct http_req, f), sizeof(((struct http_req *)0)->f),                \
		    offsetof(struct http_req, f##_len), once                                       \
	}
static const struct field {
	const char *name;
	size_t off, cap, len_off;
	bool once; /* a repeat is refused (else the first counts; Connection joins) */
} fields[F_COUNT] = {
    [F_UPGRADE] = FIELD(upgrade, "upgrade", false),
    [F_CONNECTION] = FIELD(connection, "connection", false),
    [F_KEY] = FIELD(key, "sec-websocket-key", true),
    [F_VERSION] = FIELD(ws_version, "sec-websocket-version", false),
    [F_AUTH] = FIELD(auth, "authorization", true),
    [F_LENGTH] = FIELD(length, "content-length", true),
    [F_IDEM] = FIELD(idem, "idempotency-key", true),
    [F_EXPECT] = FIELD(expect, "expect", false),
};

void http_req_init(struct http_req *r)
{
	memset(r, 0, sizeof(*r));
}

static enum http_result fail(struct http_req *r, int status, const char *reason)
{
	r->state = H_FAILED;
	r->status = status;
	r->reason = reason;
	return HTTP_ERROR;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether the comma-separated list s holds token (case-insensitive). */
static bool has_token(const char *s, size_t len, const char *token)
{
	size_t tl = strlen(token), i = 0;

	while (i < len) {
		size_t start, end;

		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
			i++;
		start = i;
		while (i < len && s[i] != ',')
			i++;
		end = i;
		while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
			end--;
		if (end - start == tl && strncasecmp(s + start, token, tl) == 0)
			return true;
	}
	return false;
}

static uint16_t *field_len(struct http_req *r, int id)
{
	return (uint16_t *)((char *)r + fields[id].len_off);
}

/* The header named r->name begins: choose where its value goes. */
static enum http_result begin_value(struct http_req *r)
{
	r->field_id = F_NONE;
	r->field_len = 0;
	if (r->name_long)
		return HTTP_MORE;
	if (r->name_len == 4 && memcmp(r->name, "host", 4) == 0) {
		r->host = true;
		return HTTP_MORE;
	}
	if (r->name_len == 17 && memcmp(r->name, "transfer-encoding", 17) == 0) {
		r->transfer_encoding = true;
		return HTTP_MORE;
	}
	for (int id = 1; id < F_COUNT; id++) {
		if (strlen(fields[id].name) != r->name_len ||
		    memcmp(r->name, fields[id].name, r->name_len) != 0)
			continue;
		if (r->seen & (1u << id)) {
			if (fields[id].once)
				return fail(r, 400, "a header that may appear once is repeated");
			if (id != F_CONNECTION)
				return HTTP_MORE; /* the first one counts */
			if (r->connection_len + 1u < sizeof(r->connection))
				r->connection[r->connection_len++] = ',';
		}
		r->seen |= (uint16_t)(1u << id);
		r->field_id = (uint8_t)id;
		r->field_cap = (uint16_t)fields[id].cap;
		r->field_len = *field_len(r, id);
		return HTTP_MORE;
	}
	return HTTP_MORE;
}

/* One byte of a header's value. */
static enum http_result value_byte(struct http_req *r, char c)
{
	char *field = (char *)r + fields[r->field_id].off;

	if (c == 0 || c == 0x7f)
		return fail(r, 400, "bad header value");
	if (r->field_id == F_NONE)
		return HTTP_MORE;
	if (r->field_id == F_IDEM)
		r->idem_sent++;
	if (r->field_len + 1u >= r->field_cap) {
		/* an over-long key, length or token is the gate's to refuse clearly */
		if (r->field_id == F_IDEM)
			return HTTP_MORE;
		if (r->field_id == F_LENGTH) {
			r->length_long = true;
			return HTTP_MORE;
		}
		if (r->field_id == F_AUTH) {
			r->auth_long = true;
			return HTTP_MORE;
		}
		return fail(r, 431, "header too large");
	}
	field[r->field_len++] = c;
	return HTTP_MORE;
}

/* The header's value ended: store its length, trailing blanks trimmed. */
static void end_value(struct http_req *r)
{
	char *field = (char *)r + fields[r->field_id].off;

	if (r->field_id == F_NONE)
		return;
	while (r->field_len > 0 &&
	       (field[r->field_len - 1] == ' ' || field[r->field_len - 1] == '\t'))
		r->field_len--;
	field[r->field_len] = '\0';
	*field_len(r, r->field_id) = r->field_len;
	r->field_id = F_NONE;
}

static enum http_result validate(struct http_req *r)
{
	bool http10 = r->version[7] == '0';

	if (!r->host && !http10)
		return fail(r, 400, "no Host header");
	r->upgrade_wanted = has_token(r->upgrade, r->upgrade_len, "websocket");
	if (r->any && !r->upgrade_wanted) {
		r->state = H_DONE;
		return HTTP_DONE;
	}
	if (http10)
		return fail(r, 505, "websockets need HTTP/1.1");
	if (r->method_len != 3 || memcmp(r->method, "GET", 3) != 0)
		return fail(r, 405, "only GET upgrades");
	if (!r->upgrade_wanted)
		return fail(r, 426, "not a websocket upgrade");
	if (!has_token(r->connection, r->connection_len, "upgrade"))
		return fail(r, 426, "Connection does not say Upgrade");
	if (r->ws_version_len != 2 || memcmp(r->ws_version, "13", 2) != 0)
		return fail(r, 426, "Sec-WebSocket-Version must be 13");
	/* base64 of 16 bytes: 22 characters and "==" (RFC 6455 4.1) */
	if (r->key_len != 24 || r->key[22] != '=' || r->key[23] != '=')
		return fail(r, 400, "Sec-WebSocket-Key is not 16 bytes in base64");
	r->state = H_DONE;
	return HTTP_DONE;
}

/* One byte of the request line. */
static enum http_result line_byte(struct http_req *r, char c)
{
	switch (r->state) {
	case H_METHOD:
		if (c == ' ')
			r->state = H_PATH;
		else if (c < 'A' || c > 'Z' || r->method_len + 1u >= sizeof(r->method))
			return fail(r, 400, "bad request line");
		else
			r->method[r->method_len++] = c;
		return HTTP_MORE;
	case H_PATH:
		if (c == ' ') {
			if (r->path_len == 0)
				return fail(r, 400, "bad request line");
			r->state = H_VERSION;
		} else if ((unsigned char)c <= ' ' || c == 0x7f) {
			return fail(r, 400, "bad request line");
		} else if (r->path_len + 1u >= sizeof(r->path)) {
			return fail(r, 414, "request target too long");
		} else {
			r->path[r->path_len++] = c;
		}
		return HTTP_MORE;
	default: /* H_VERSION */
		if (c == '\r') {
			r->state = H_VERSION_LF;
			return HTTP_MORE;
		}
		if (c == '\n') /* a bare LF ends the line too */
			return HTTP_DONE;
		if (r->version_len + 1u >= sizeof(r->version))
			return fail(r, 400, "bad request line");
		r->version[r->version_len++] = c;
		return HTTP_MORE;
	}
}

/* The request line ended. */
static enum http_result line_end(struct http_req *r)
{
	if (r->version_len != 8 || memcmp(r->version, "HTTP/1.", 7) != 0 || r->version[7] < '0' ||
	    r->version[7] > '9')
		return fail(r,
			    r->version_len == 8 && memcmp(r->version, "HTTP/", 5) == 0 ? 505 : 400,
			    "not HTTP/1.1");
	if (r->path[0] != '/') /* origin-form only: no proxy requests, no "*" */
		return fail(r, 400, "the request target must be a path");
	if (!r->any && r->version[7] == '0')
		return fail(r, 505, "websockets need HTTP/1.1");
	if (!r->any && (r->method_len != 3 || memcmp(r->method, "GET", 3) != 0))
		return fail(r, 405, "only GET upgrades");
	r->state = H_NAME;
	r->name_len = 0;
	r->name_long = false;
	return HTTP_MORE;
}

/* One byte of a header's name; HTTP_DONE when it was the head's end. */
static enum http_result name_byte(struct http_req *r, char c)
{
	if (r->name_len == 0 && !r->name_long && (c == '\r' || c == '\n')) {
		if (c == '\r') {
			r->state = H_END_LF;
			return HTTP_MORE;
		}
		return validate(r);
	}
	if (c == ':') {
		if (r->name_len == 0 && !r->name_long)
			return fail(r, 400, "empty header name");
		r->state = H_VALUE_START;
		return begin_value(r);
	}
	if ((unsigned char)c <= ' ' || c == 0x7f) /* includes obsolete line folding */
		return fail(r, 400, "bad header line");
	if (r->name_len + 1u >= sizeof(r->name))
		r->name_long = true; /* not one we read */
	else
		r->name[r->name_len++] = lower(c);
	return HTTP_MORE;
}

/* One byte of the head after the request line. */
static enum http_result head_byte(struct http_req *r, char c)
{
	switch (r->state) {
	case H_NAME:
		return name_byte(r, c);
	case H_VALUE_START:
		if (c == ' ' || c == '\t')
			return HTTP_MORE;
		r->state = H_VALUE;
		__attribute__((fallthrough));
	case H_VALUE:
		if (c == '\r') {
			r->state = H_VALUE_LF;
			return HTTP_MORE;
		}
		if (c != '\n')
			return value_byte(r, c);
		__attribute__((fallthrough));
	case H_VALUE_LF:
		if (c != '\n')
			return fail(r, 400, "bad header line");
		end_value(r);
		r->state = H_NAME;
		r->name_len = 0;
		r->name_long = false;
		return HTTP_MORE;
	default: /* H_END_LF */
		if (c != '\n')
			return fail(r, 400, "bad end of head");
		return validate(r);
	}
}

enum http_result http_req_feed(struct http_req *r, const uint8_t *data, size_t len, size_t *used)
{
	uint32_t max = r->head_max ? r->head_max : HTTP_HEAD_DEFAULT;

	*used = 0;
	if (r->state == H_DONE)
		return HTTP_DONE;
	if (r->state == H_FAILED)
		return HTTP_ERROR;
	for (size_t i = 0; i < len; i++) {
		char c = (char)data[i];
		enum http_result res;

		if (++r->head_bytes > max)
			return fail(r, 431, "request head too large");
		if (r->state <= H_VERSION) {
			res = line_byte(r, c);
			if (res == HTTP_DONE) /* a bare LF after the version */
				res = line_end(r);
		} else if (r->state == H_VERSION_LF) {
			res = c == '\n' ? line_end(r) : fail(r, 400, "bad request line");
		} else {
			res = head_byte(r, c);
		}
		if (res != HTTP_MORE) {
			*used = i + 1;
			return res;
		}
	}
	*used = len;
	return HTTP_MORE;
}

bool http_req_keep_alive(const struct http_req *r)
{
	if (has_token(r->connection, r->connection_len, "close"))
		return false;
	return r->version[7] != '0' || has_token(r->connection, r->connection_len, "keep-alive");
}

bool http_req_expects_continue(const struct http_req *r)
{
	return r->expect_len == 12 && strncasecmp(r->expect, "100-continue", 12) == 0;
}

bool http_req_has_idem(const struct http_req *r)
{
	return r->seen & (1u << F_IDEM);
}

const char *http_req_token(struct http_req *r, bool query_ok)
{
	char *q;

	if (r->auth_long)
		return "!"; /* present, and no token we could verify */
	if (r->auth_len > 7 && strncasecmp(r->auth, "Bearer ", 7) == 0)
		return r->auth + 7;
	if (!query_ok)
		return NULL;
	for (q = strchr(r->path, '?'); q; q = strchr(q + 1, '&')) {
		if (strncmp(q + 1, "token=", 6) == 0) {
			char *end = strchr(q + 7, '&');
			if (end)
				*end = '\0';
			return q + 7;
		}
	}
	return NULL;
}

int http_hex_digit(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

const char *http_status_text(int status)
{
	static const struct {
		int status;
		const char *text;
	} texts[] = {
	    {200, "OK"},
	    {201, "Created"},
	    {304, "Not Modified"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {408, "Request Timeout"},
	    {409, "Conflict"},
	    {411, "Length Required"},
	    {413, "Content Too Large"},
	    {414, "URI Too Long"},
	    {415, "Unsupported Media Type"},
	    {422, "Unprocessable Content"},
	    {426, "Upgrade Required"},
	    {429, "Too Many Requests"},
	    {431, "Request Header Fields Too Large"},
	    {500, "Internal Server Error"},
	    {503, "Service Unavailable"},
	    {505, "HTTP Version Not Supported"},
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i].status == status)
			return texts[i].text;
	return "Unknown";
}

static const char *status_code(int status)
{
	switch (status) {
	case 401:
		return "unauthorized";
	case 404:
		return "not_found";
	case 405:
		return "method_not_allowed";
	case 408:
		return "timeout";
	case 414:
		return "uri_too_long";
	case 426:
		return "upgrade_required";
	case 431:
		return "headers_too_large";
	case 503:
		return "shutting_down";
	case 505:
		return "version_not_supported";
	default:
		return "bad_request";
	}
}

size_t http_error_response(int status, const char *code_override, const char *reason, char *out,
			   size_t size)
{
	const char *code = code_override ? code_override : status_code(status);
	char body[160];
	int n, b;

	if (status < 400 || status > 599)
		status = 400;
	b = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
		     reason ? reason : http_status_text(status));
	if (b < 0 || (size_t)b >= sizeof(body))
		b = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\"}}", code);
	n = snprintf(out, size,
		     "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: "
		     "%d\r\nconnection: close\r\n%s\r\n%s",
		     status, http_status_text(status), b,
		     status == 426 ? "sec-websocket-version: 13\r\n" : "", body);
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}
