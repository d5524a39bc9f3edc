/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness: JWT verification (common/jwt.c) on any bytes as the
 * token. Properties: never a read or write out of bounds; a refused token
 * leaves no identity (subject "" and exp 0); an accepted one has a valid
 * subject and an expiry in the future; and a token minted for the subject
 * it names verifies, while any change to its signature does not. */
#include "jwt.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_SECRET "fuzz-secret"
#define FUZZ_NOW    1800000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *token = malloc(size + 1), sub[JWT_SUBJECT_MAX + 1], minted[512];
	int64_t exp = 7;
	int rc;

	if (token == NULL)
		return 0;
	memcpy(token, data, size);
	token[size] = '\0';
	memset(sub, 'x', sizeof(sub) - 1);
	sub[sizeof(sub) - 1] = '\0';
	rc = jwt_verify(FUZZ_SECRET, token, FUZZ_NOW, sub, &exp);
	if (rc == 0 && (!jwt_subject_valid(sub) || exp <= FUZZ_NOW))
		abort();
	if (rc < 0 && (sub[0] != '\0' || exp != 0))
		abort();
	if (rc != 0 && rc != -EINVAL && rc != -ENOTSUP && rc != -EACCES && rc != -EKEYEXPIRED)
		abort();
	/* The input as a subject: minted, it verifies; tampered, it does not. */
	if (jwt_subject_valid(token)) {
		int n = jwt_sign(FUZZ_SECRET, token, FUZZ_NOW, 60, minted, sizeof(minted));
		if (n <= 0 || jwt_verify(FUZZ_SECRET, minted, FUZZ_NOW, sub, &exp) != 0 ||
		    strcmp(sub, token) != 0)
			abort();
		char *sig = strrchr(minted, '.') + 1; /* its first character: 6 bits of MAC */
		*sig = *sig == 'A' ? 'B' : 'A';
		if (jwt_verify(FUZZ_SECRET, minted, FUZZ_NOW, sub, &exp) == 0)
			abort();
	}
	free(token);
	return 0;
}
