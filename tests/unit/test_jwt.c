/* Unit tests of HS256 JWT signing and verification, including every refusal:
 * tampering, the wrong secret, expiry, "alg":"none", malformed tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "jwt.h"

#include <errno.h>
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

static void test_sign_refusals(void **state)
{
	char token[512];

	assert_int_equal(jwt_sign("secret", "bad name", NOW, 60, token, sizeof(token)), -EINVAL);
	assert_int_equal(jwt_sign("secret", "", NOW, 60, token, sizeof(token)), -EINVAL);
	assert_int_equal(jwt_sign("", "alice", NOW, 60, token, sizeof(token)), -EINVAL);
	assert_int_equal(jwt_sign("secret", "alice", NOW, 0, token, sizeof(token)), -EINVAL);
	assert_int_equal(jwt_sign("secret", "alice", NOW, 60, token, 16), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_sign_refusals),
	};
	return cmocka_run_group_tests_name("jwt", tests, NULL, NULL);
}
