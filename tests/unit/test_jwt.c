/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of HS256 JWT signing and verification, including every refusal:
 * tampering, the wrong secret, expiry, "alg":"none", malformed tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "jwt.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#define NOW 1800000000

static void test_round_trip(void **state)
{
	char token[512], sub[JWT_SUBJECT_MAX + 1];
	int64_t exp;
	int n = jwt_sign("secret", "alice.b-2", NOW, 60, token, sizeof(token));

	assert_true(n > 0);
	assert_int_equal(n, (int)strlen(token));
	assert_int_equal(jwt_verify("secret", token, NOW + 59, sub, &exp), 0);
	assert_string_equal(sub, "alice.b-2");
	assert_int_equal(exp, NOW + 60);
}

static void test_refusals(void **state)
{
	char token[512], bad[512], sub[JWT_SUBJECT_MAX + 1];
	int64_t exp;

	jwt_sign("secret", "alice", NOW, 60, token, sizeof(token));
	assert_int_equal(jwt_verify("other", token, NOW, sub, &exp), -EACCES);
	assert_int_equal(jwt_verify("secret", token, NOW + 60, sub, &exp), -EKEYEXPIRED);
	/* Flip one character of the payload: the signature no longer matches. */
	strcpy(bad, token);
	char *p = strchr(bad, '.') + 3;
	*p = *p == 'A' ? 'B' : 'A';
	assert_int_equal(jwt_verify("secret", bad, NOW, sub, &exp), -EACCES);
	/* {"alg":"none"} with the original payload and no signature. */
	snprintf(bad, sizeof(bad), "eyJhbGciOiJub25lIn0%s", strchr(token, '.'));
	*strrchr(bad, '.') = '\0';
	strcat(bad, ".");
	assert_int_equal(jwt_verify("secret", bad, NOW, sub, &exp), -ENOTSUP);
	assert_int_equal(jwt_verify("secret", "not-a-token", NOW, sub, &exp), -EINVAL);
	assert_int_equal(jwt_verify("secret", "a.b.c.d", NOW, sub, &exp), -EINVAL);
	assert_int_equal(jwt_verify("secret", "!!.??.**", NOW, sub, &exp), -EINVAL);
	assert_int_equal(jwt_verify("", token, NOW, sub, &exp), -EINVAL);
}

/* Unpadded base64url, written here rather than borrowed from jwt.c so the
 * tokens below do not depend on the code under test. */
static void b64url(const unsigned char *in, size_t len, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < len)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
}

/* A correctly signed HS256 token around any payload. */
static void sign_payload(const char *payload, char *out)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[32];
	unsigned int mac_len = 32;
	size_t n;

	b64url((const unsigned char *)header, strlen(header), out);
	n = strlen(out);
	out[n++] = '.';
	b64url((const unsigned char *)payload, strlen(payload), out + n);
	n = strlen(out);
	HMAC(EVP_sha256(), "secret", 6, (const unsigned char *)out, n, mac, &mac_len);
	out[n++] = '.';
	b64url(mac, sizeof(mac), out + n);
}

/* A signed token whose claims fail a check is refused, and leaves no
 * identity behind: the caller that ignored the error would still see no
 * user (the cause of refused HTTP calls being carried out). */
static void test_claims_refused_without_identity(void **state)
{
	static const struct {
		const char *payload;
		int rc;
	} cases[] = {
	    {"{\"sub\":\"mallory\",\"exp\":1799999999}", -EKEYEXPIRED},
	    {"{\"sub\":\"mallory\",\"exp\":1800000000}", -EKEYEXPIRED},
	    {"{\"sub\":\"mallory\",\"exp\":1900000000,\"nbf\":1800000001}", -EKEYEXPIRED},
	    {"{\"sub\":\"mallory\"}", -EINVAL},
	    {"{\"sub\":\"mallory\",\"exp\":\"1900000000\"}", -EINVAL},
	    {"{\"sub\":\"mallory\",\"exp\":1.9e9}", -EINVAL},
	    {"{\"sub\":\"mallory\",\"exp\":null}", -EINVAL},
	    {"{\"sub\":\"mallory\",\"exp\":1900000000,\"nbf\":\"0\"}", -EINVAL},
	    {"{\"exp\":1900000000}", -EINVAL},
	    {"{\"sub\":\"\",\"exp\":1900000000}", -EINVAL},
	    {"{\"sub\":\"a b\",\"exp\":1900000000}", -EINVAL},
	    {"{\"sub\":\"here\",\"exp\":1900000000}", -EINVAL},
	    {"{\"sub\":\"Channel\",\"exp\":1900000000}", -EINVAL},
	    {"{\"sub\":7,\"exp\":1900000000}", -EINVAL},
	    {"[\"mallory\"]", -EINVAL},
	    {"not json", -EINVAL},
	};
	char token[1024], sub[JWT_SUBJECT_MAX + 1];
	int64_t exp;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sign_payload(cases[i].payload, token);
		memset(sub, 'x', sizeof(sub) - 1);
		sub[sizeof(sub) - 1] = '\0';
		exp = 42;
		assert_int_equal(jwt_verify("secret", token, NOW, sub, &exp), cases[i].rc);
		assert_string_equal(sub, "");
		assert_int_equal(exp, 0);
	}
	/* The same helper makes a token that passes: the cases above fail for
	 * their claims, not for the way they were signed. */
	sign_payload("{\"sub\":\"mallory\",\"exp\":1900000000,\"nbf\":1799999999}", token);
	assert_int_equal(jwt_verify("secret", token, NOW, sub, &exp), 0);
	assert_string_equal(sub, "mallory");
	/* A bad signature leaves no identity either. */
	assert_int_equal(jwt_verify("other", token, NOW, sub, &exp), -EACCES);
	assert_string_equal(sub, "");
}

static void test_sign_refusals(void **state)
{
	char token[512];

	assert_int_equal(jwt_sign("secret", "bad name", NOW, 60, token, sizeof(token)), -EINVAL);
	assert_int_equal(jwt_sign("secret", "", NOW, 60, token, sizeof(token)), -EINVAL);
	assert_int_equal(jwt_sign("secret", "everyone", NOW, 60, token, sizeof(token)), -EINVAL);
	assert_int_equal(jwt_sign("", "alice", NOW, 60, token, sizeof(token)), -EINVAL);
	assert_int_equal(jwt_sign("secret", "alice", NOW, 0, token, sizeof(token)), -EINVAL);
	assert_int_equal(jwt_sign("secret", "alice", NOW, 60, token, 16), -ENOSPC);
}

/* @channel, @everyone and @here name everyone: no user is called so, in any
 * case; names that only begin or end so are users like any other. */
static void test_reserved_names(void **state)
{
	static const char *const refused[] = {"channel", "everyone", "here", "HERE", "Everyone"};
	static const char *const taken[] = {"channels", "here2", "the-channel", "everyone_", "her"};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_false(jwt_subject_valid(refused[i]));
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
		assert_true(jwt_subject_valid(taken[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_claims_refused_without_identity),
	    cmocka_unit_test(test_sign_refusals),
	    cmocka_unit_test(test_reserved_names),
	};
	return cmocka_run_group_tests_name("jwt", tests, NULL, NULL);
}
