/* SPDX-License-Identifier: BSD-3-Clause */
/* The websocket server side: the upgrade request parser, the frame decoder
 * and the header encoder (see ws.h). */
#include "ws.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define HEAD_MAX 8192 /* a request head larger than this: 431 */

/* ---- the upgrade request ---- */

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
		if (end - start == tl) {
			size_t k = 0;
			while (k < tl && lower(s[start + k]) == token[k])
				k++;
			if (k == tl)
				return true;
		}
	}
	return false;
}

/* The header named r->name begins: choose where its value goes. */
static enum http_result begin_value(struct http_req *r)
{
	static const struct {
		const char *name;
		size_t off, cap, len_off;
	} known[] = {
	    {"upgrade", offsetof(struct http_req, upgrade), sizeof(((struct http_req *)0)->upgrade),
	     offsetof(struct http_req, upgrade_len)},
	    {"connection", offsetof(struct http_req, connection),
	     sizeof(((struct http_req *)0)->connection), offsetof(struct http_req, connection_len)},
	    {"sec-websocket-key", offsetof(struct http_req, key),
	     sizeof(((struct http_req *)0)->key), offsetof(struct http_req, key_len)},
	    {"sec-websocket-version", offsetof(struct http_req, ws_version),
	     sizeof(((struct http_req *)0)->ws_version), offsetof(struct http_req, ws_version_len)},
	    {"authorization", offsetof(struct http_req, auth), HTTP_AUTH_MAX,
	     offsetof(struct http_req, auth_len)},
	};

	r->field = NULL;
	r->field_len = 0;
	if (r->name_long)
		return HTTP_MORE;
	if (r->name_len == 4 && memcmp(r->name, "host", 4) == 0) {
		r->host = true;
		return HTTP_MORE;
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strlen(known[i].name) == r->name_len &&
		    memcmp(r->name, known[i].name, r->name_len) == 0) {
			uint16_t *len = (uint16_t *)((char *)r + known[i].len_off);

			if (*len > 0) {
				/* a list header may repeat; the key may not */
				if (known[i].off == offsetof(struct http_req, key))
					return fail(r, 400, "two Sec-WebSocket-Key headers");
				if (known[i].off != offsetof(struct http_req, connection))
					return HTTP_MORE; /* the first one counts */
				if (*len + 1u < known[i].cap)
					r->connection[(*len)++] = ',';
			}
			r->field = (char *)r + known[i].off;
			r->field_cap = (uint16_t)known[i].cap;
			r->field_len = *len;
			return HTTP_MORE;
		}
	}
	return HTTP_MORE;
}

/* The header's value ended: store its length, trailing blanks trimmed. */
static void end_value(struct http_req *r)
{
	static const size_t lens[] = {
	    offsetof(struct http_req, upgrade_len), offsetof(struct http_req, connection_len),
	    offsetof(struct http_req, key_len), offsetof(struct http_req, ws_version_len),
	    offsetof(struct http_req, auth_len)};
	static const size_t fields[] = {
	    offsetof(struct http_req, upgrade), offsetof(struct http_req, connection),
	    offsetof(struct http_req, key), offsetof(struct http_req, ws_version),
	    offsetof(struct http_req, auth)};

	if (r->field == NULL)
		return;
	while (r->field_len > 0 &&
	       (r->field[r->field_len - 1] == ' ' || r->field[r->field_len - 1] == '\t'))
		r->field_len--;
	r->field[r->field_len] = '\0';
	for (size_t i = 0; i < 5; i++)
		if ((char *)r + fields[i] == r->field)
			*(uint16_t *)((char *)r + lens[i]) = r->field_len;
	r->field = NULL;
}

static enum http_result validate(struct http_req *r)
{
	if (!r->host)
		return fail(r, 400, "no Host header");
	if (!has_token(r->upgrade, r->upgrade_len, "websocket"))
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

/* Over 80 lines on purpose: the upgrade request parser is one state
 * machine, a case per state, read top to bottom as the bytes arrive. */
enum http_result http_req_feed(struct http_req *r, const uint8_t *data, size_t len, size_t *used)
{
	size_t i;

	*used = 0;
	if (r->state == H_DONE)
		return HTTP_DONE;
	if (r->state == H_FAILED)
		return HTTP_ERROR;
	for (i = 0; i < len; i++) {
		char c = (char)data[i];
		enum http_result res;

		if (++r->head_bytes > HEAD_MAX)
			return fail(r, 431, "request head too large");
		switch (r->state) {
		case H_METHOD:
			if (c == ' ') {
				r->state = H_PATH;
			} else if (c < 'A' || c > 'Z' || r->method_len + 1u >= sizeof(r->method)) {
				return fail(r, 400, "bad request line");
			} else {
				r->method[r->method_len++] = c;
			}
			break;
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
			break;
		case H_VERSION:
			if (c == '\r') {
				r->state = H_VERSION_LF;
				break;
			}
			if (c != '\n') {
				if (r->version_len + 1u >= sizeof(r->version))
					return fail(r, 400, "bad request line");
				r->version[r->version_len++] = c;
				break;
			}
			/* a bare LF ends the line too */
			__attribute__((fallthrough));
		case H_VERSION_LF:
			if (c != '\n')
				return fail(r, 400, "bad request line");
			if (r->version_len != 8 || memcmp(r->version, "HTTP/1.", 7) != 0 ||
			    r->version[7] < '0' || r->version[7] > '9')
				return fail(r,
					    r->version_len == 8 &&
						    memcmp(r->version, "HTTP/", 5) == 0
						? 505
						: 400,
					    "not HTTP/1.1");
			if (r->version[7] == '0')
				return fail(r, 505, "websockets need HTTP/1.1");
			if (r->method_len != 3 || memcmp(r->method, "GET", 3) != 0)
				return fail(r, 405, "only GET upgrades");
			r->state = H_NAME;
			r->name_len = 0;
			r->name_long = false;
			break;
		case H_NAME:
			if (r->name_len == 0 && !r->name_long && (c == '\r' || c == '\n')) {
				if (c == '\r') {
					r->state = H_END_LF;
					break;
				}
				res = validate(r);
				*used = i + 1;
				return res;
			}
			if (c == ':') {
				if (r->name_len == 0 && !r->name_long)
					return fail(r, 400, "empty header name");
				res = begin_value(r);
				if (res != HTTP_MORE)
					return res;
				r->state = H_VALUE_START;
			} else if ((unsigned char)c <= ' ' || c == 0x7f) {
				/* includes obsolete line folding */
				return fail(r, 400, "bad header line");
			} else if (r->name_len + 1u >= sizeof(r->name)) {
				r->name_long = true; /* not one we read */
			} else {
				r->name[r->name_len++] = lower(c);
			}
			break;
		case H_VALUE_START:
			if (c == ' ' || c == '\t')
				break;
			r->state = H_VALUE;
			__attribute__((fallthrough));
		case H_VALUE:
			if (c == '\r') {
				r->state = H_VALUE_LF;
				break;
			}
			if (c != '\n') {
				if (c == 0 || c == 0x7f)
					return fail(r, 400, "bad header value");
				if (r->field) {
					if (r->field_len + 1u >= r->field_cap)
						return fail(r, 431, "header too large");
					r->field[r->field_len++] = c;
				}
				break;
			}
			__attribute__((fallthrough));
		case H_VALUE_LF:
			if (c != '\n')
				return fail(r, 400, "bad header line");
			end_value(r);
			r->state = H_NAME;
			r->name_len = 0;
			r->name_long = false;
			break;
		case H_END_LF:
			if (c != '\n')
				return fail(r, 400, "bad end of head");
			res = validate(r);
			*used = i + 1;
			return res;
		}
	}
	*used = len;
	return HTTP_MORE;
}

void ws_accept_key(const struct http_req *r, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char in[24 + sizeof(guid)], digest[SHA_DIGEST_LENGTH];

	memcpy(in, r->key, 24);
	memcpy(in + 24, guid, sizeof(guid) - 1);
	SHA1(in, 24 + sizeof(guid) - 1, digest);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}

size_t ws_handshake_response(const struct http_req *r, char *out, size_t size)
{
	char accept[29];
	int n;

	ws_accept_key(r, accept);
	n = snprintf(out, size,
		     "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: "
		     "Upgrade\r\nsec-websocket-accept: %s\r\n\r\n",
		     accept);
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

size_t http_error_response(int status, const char *code_override, const char *reason, char *out,
			   size_t size)
{
	const char *text, *code;
	char body[160];
	int n, b;

	switch (status) {
	case 401:
		text = "Unauthorized", code = "unauthorized";
		break;
	case 404:
		text = "Not Found", code = "not_found";
		break;
	case 405:
		text = "Method Not Allowed", code = "method_not_allowed";
		break;
	case 414:
		text = "URI Too Long", code = "uri_too_long";
		break;
	case 426:
		text = "Upgrade Required", code = "upgrade_required";
		break;
	case 431:
		text = "Request Header Fields Too Large", code = "headers_too_large";
		break;
	case 503:
		text = "Service Unavailable", code = "shutting_down";
		break;
	case 505:
		text = "HTTP Version Not Supported", code = "version_not_supported";
		break;
	default:
		status = 400, text = "Bad Request", code = "bad_request";
		break;
	}
	if (code_override)
		code = code_override;
	b = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
		     reason ? reason : text);
	if (b < 0 || (size_t)b >= sizeof(body))
		b = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\"}}", code);
	n = snprintf(out, size,
		     "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: "
		     "%d\r\nconnection: close\r\n%s\r\n%s",
		     status, text, b, status == 426 ? "sec-websocket-version: 13\r\n" : "", body);
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* ---- frames ---- */

enum {
	D_HEADER,
	D_PAYLOAD,
	D_DONE, /* closed or failed */
};

void ws_decoder_init(struct ws_decoder *d, uint64_t max_message)
{
	memset(d, 0, sizeof(*d));
	d->state = D_HEADER;
	d->hdr_need = 2;
	d->max_message = max_message > UINT32_MAX ? UINT32_MAX : (uint32_t)max_message;
}

bool ws_close_code_valid(int code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}

static int violation(struct ws_decoder *d, int code)
{
	d->state = D_DONE;
	return code;
}

/* The first two header bytes are in: check them and size the rest. */
static int check_start(struct ws_decoder *d)
{
	uint8_t b0 = d->hdr[0], b1 = d->hdr[1], op = b0 & 0x0f, len7 = b1 & 0x7f;
	bool fin = b0 & 0x80;

	if (b0 & 0x70)
		return violation(d, 1002); /* reserved bits: no extension was agreed */
	if (!(b1 & 0x80))
		return violation(d, 1002); /* a client must mask (5.1) */
	switch (op) {
	case WS_CONT:
		if (d->msg_opcode == 0)
			return violation(d, 1002);
		break;
	case WS_TEXT:
	case WS_BINARY:
		if (d->msg_opcode != 0)
			return violation(d, 1002); /* a new message inside a fragmented one */
		break;
	case WS_CLOSE:
	case WS_PING:
	case WS_PONG:
		if (!fin || len7 > 125)
			return violation(d, 1002); /* 5.5 */
		break;
	default:
		return violation(d, 1002);
	}
	d->opcode = op;
	d->fin = fin;
	d->hdr_need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
	return 0;
}

/* The frame's whole header is in. */
static int begin_payload(struct ws_decoder *d, const struct ws_events *ev, void *ctx)
{
	uint8_t len7 = d->hdr[1] & 0x7f, off = 2;
	uint64_t len = len7;

	if (len7 == 126) {
		len = (uint64_t)d->hdr[2] << 8 | d->hdr[3];
		off = 4;
	} else if (len7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | d->hdr[2 + i];
		if (len >> 63)
			return violation(d, 1002);
		off = 10;
	}
	memcpy(d->mask, d->hdr + off, 4);
	d->mask_off = 0;
	d->remaining = len;
	if (d->opcode >= WS_CLOSE) {
		d->ctl_len = 0;
	} else {
		if (len > d->max_message || d->msg_len + len > d->max_message)
			return violation(d, 1009);
		if (d->opcode != WS_CONT) {
			d->msg_opcode = d->opcode;
			d->msg_len = 0;
			d->utf8 = (struct utf8_state)UTF8_STATE_INIT;
		}
	}
	d->state = D_PAYLOAD;
	return 0;
}

static int end_frame(struct ws_decoder *d, const struct ws_events *ev, void *ctx)
{
	d->state = D_HEADER;
	d->hdr_len = 0;
	d->hdr_need = 2;
	if (d->opcode < WS_CLOSE) {
		if (!d->fin)
			return 0;
		if (d->msg_opcode == WS_TEXT && !utf8_complete(&d->utf8))
			return violation(d, 1007);
		ev->on_data(ctx, (enum ws_opcode)d->msg_opcode, NULL, 0, true);
		d->msg_opcode = 0;
		d->msg_len = 0;
		return 0;
	}
	if (d->opcode == WS_CLOSE) {
		int code = 1005;

		if (d->ctl_len == 1)
			return violation(d, 1002);
		if (d->ctl_len >= 2) {
			code = d->ctl[0] << 8 | d->ctl[1];
			if (!ws_close_code_valid(code))
				return violation(d, 1002);
			if (!utf8_valid(d->ctl + 2, d->ctl_len - 2u))
				return violation(d, 1007);
		}
		d->state = D_DONE;
		d->closed = true;
		ev->on_control(ctx, WS_CLOSE, d->ctl_len >= 2 ? d->ctl + 2 : d->ctl,
			       d->ctl_len >= 2 ? d->ctl_len - 2u : 0, code);
		return 0;
	}
	ev->on_control(ctx, (enum ws_opcode)d->opcode, d->ctl, d->ctl_len, 0);
	return 0;
}

int ws_decode(struct ws_decoder *d, uint8_t *data, size_t len, const struct ws_events *ev,
	      void *ctx)
{
	int rc;

	while (len > 0 || (d->state == D_PAYLOAD && d->remaining == 0)) {
		if (d->state == D_DONE)
			return 0;
		if (d->state == D_HEADER) {
			while (len > 0 && d->hdr_len < d->hdr_need) {
				d->hdr[d->hdr_len++] = *data++;
				len--;
				if (d->hdr_len == 2 && (rc = check_start(d)) != 0)
					return rc;
			}
			if (d->hdr_len < d->hdr_need)
				return 0; /* the rest of the header is still coming */
			if ((rc = begin_payload(d, ev, ctx)) != 0)
				return rc;
			continue;
		}
		/* D_PAYLOAD */
		size_t n = len < d->remaining ? len : (size_t)d->remaining;

		for (size_t i = 0; i < n; i++)
			data[i] ^= d->mask[(d->mask_off + i) & 3];
		d->mask_off = (uint8_t)((d->mask_off + n) & 3);
		d->remaining -= n;
		if (d->opcode >= WS_CLOSE) {
			memcpy(d->ctl + d->ctl_len, data, n);
			d->ctl_len = (uint8_t)(d->ctl_len + n);
		} else if (n > 0) {
			if (d->msg_opcode == WS_TEXT && !utf8_feed(&d->utf8, data, n))
				return violation(d, 1007); /* fail fast (8.1) */
			d->msg_len += n;
			ev->on_data(ctx, (enum ws_opcode)d->msg_opcode, data, n, false);
		}
		data += n;
		len -= n;
		if (d->remaining == 0 && (rc = end_frame(d, ev, ctx)) != 0)
			return rc;
	}
	return 0;
}

size_t ws_frame_header(uint8_t *out, enum ws_opcode op, uint64_t len)
{
	out[0] = (uint8_t)(0x80 | op);
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}
