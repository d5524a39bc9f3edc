/* SPDX-License-Identifier: BSD-3-Clause */
/* HS256 JWT signing and verification over OpenSSL's HMAC and jansson. */
#include "jwt.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define JWT_TOKEN_MAX 2048

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url. Returns the length written, or -ENOSPC. */
static int b64url_encode(const unsigned char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	if ((len + 2) / 3 * 4 + 1 > size)
		return -ENOSPC;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		if (i + 1 < len)
			out[o++] = b64url[(v >> 6) & 63];
		if (i + 2 < len)
			out[o++] = b64url[v & 63];
	}
	out[o] = '\0';
	return (int)o;
}

static int b64url_value(char c)
{
	const char *p = c ? strchr(b64url, c) : NULL;
	return p ? (int)(p - b64url) : -1;
}

/* Decodes len characters. Returns the byte count, or -EINVAL. */
static int b64url_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	if (len % 4 == 1)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value(in[i]);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == size)
				return -EINVAL;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (int)o;
}

const char *jwt_error_code(int rc)
{
	return rc == -ENOENT ? "missing_token" : rc == -EKEYEXPIRED ? "token_expired" : "bad_token";
}

/* The words @channel, @everyone and @here name everyone in a channel
 * (core/mention.c): no user may be called so, in any case. */
static const char *const reserved[] = {"channel", "everyone", "here"};

int jwt_subject_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > JWT_SUBJECT_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcasecmp(s, reserved[i]) == 0)
			return 0;
	return 1;
}

static void hs256(const char *secret, const char *data, size_t len, unsigned char mac[32])
{
	unsigned int mac_len = 32;

	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, len, mac,
	     &mac_len);
}

int jwt_sign(const char *secret, const char *subject, int64_t iat, int64_t ttl_s, char *out,
	     size_t out_size)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char payload[256], buf[JWT_TOKEN_MAX];
	unsigned char mac[32];
	int n, len;

	if (secret == NULL || !*secret || !jwt_subject_valid(subject) || ttl_s <= 0)
		return -EINVAL;
	n = snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
		     subject, (long long)iat, (long long)(iat + ttl_s));
	len = b64url_encode((const unsigned char *)header, sizeof(header) - 1, buf, sizeof(buf));
	buf[len++] = '.';
	len += b64url_encode((const unsigned char *)payload, (size_t)n, buf + len,
			     sizeof(buf) - (size_t)len);
	hs256(secret, buf, (size_t)len, mac);
	buf[len++] = '.';
	len += b64url_encode(mac, sizeof(mac), buf + len, sizeof(buf) - (size_t)len);
	if ((size_t)len + 1 > out_size)
		return -ENOSPC;
	memcpy(out, buf, (size_t)len + 1);
	return len;
}

static json_t *decode_json(const char *part, size_t len)
{
	unsigned char raw[JWT_TOKEN_MAX];
	int n = b64url_decode(part, len, raw, sizeof(raw));

	return n < 0 ? NULL : json_loadb((const char *)raw, (size_t)n, 0, NULL);
}

/* The claims of a payload whose signature checked out. Every check passes
 * before anything is copied out: a refused token yields no identity. */
static int check_claims(json_t *payload, int64_t now, char *subject, int64_t *exp)
{
	json_t *sub = json_object_get(payload, "sub"), *e = json_object_get(payload, "exp"),
	       *nbf = json_object_get(payload, "nbf");

	if (!json_is_string(sub) || !jwt_subject_valid(json_string_value(sub)))
		return -EINVAL;
	if (!json_is_integer(e) || (nbf && !json_is_integer(nbf)))
		return -EINVAL;
	if (now >= json_integer_value(e) || (nbf && now < json_integer_value(nbf)))
		return -EKEYEXPIRED;
	snprintf(subject, JWT_SUBJECT_MAX + 1, "%s", json_string_value(sub));
	*exp = json_integer_value(e);
	return 0;
}

int jwt_verify(const char *secret, const char *token, int64_t now, char *subject, int64_t *exp)
{
	const char *dot1, *dot2;
	unsigned char mac[32], given[64];
	json_t *header = NULL, *payload = NULL, *v;
	int n, rc = -EINVAL;

	subject[0] = '\0';
	*exp = 0;
	if (secret == NULL || !*secret || strlen(token) >= JWT_TOKEN_MAX)
		return -EINVAL;
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot2 == NULL || strchr(dot2 + 1, '.'))
		return -EINVAL;
	header = decode_json(token, (size_t)(dot1 - token));
	if (header == NULL || !json_is_object(header))
		goto out;
	v = json_object_get(header, "alg");
	if (!json_is_string(v) || strcmp(json_string_value(v), "HS256") != 0) {
		rc = -ENOTSUP;
		goto out;
	}
	hs256(secret, token, (size_t)(dot2 - token), mac);
	n = b64url_decode(dot2 + 1, strlen(dot2 + 1), given, sizeof(given));
	if (n != 32 || CRYPTO_memcmp(mac, given, 32) != 0) {
		rc = -EACCES;
		goto out;
	}
	payload = decode_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (payload != NULL && json_is_object(payload))
		rc = check_claims(payload, now, subject, exp);
out:
	json_decref(header);
	json_decref(payload);
	return rc;
}
