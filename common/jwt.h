/* SPDX-License-Identifier: BSD-3-Clause */
/* HS256 JSON Web Tokens (RFC 7519, RFC 7515): minted by fanoutctl, verified
 * by the edges before any websocket upgrade or API call. Only HS256 is
 * accepted; "alg":"none" and every other algorithm are refused.
 *
 * The subject ("sub") is the user's name, the stable identity the issuer
 * owns; fanoutd maps it to its internal numeric id. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define JWT_SUBJECT_MAX 64

/* Writes a token for subject, valid from iat for ttl_s seconds, into out.
 * Returns its length, -EINVAL (subject not [A-Za-z0-9_.-]{1,64}, empty
 * secret, ttl <= 0) or -ENOSPC (out too small; 512 bytes always suffice). */
int jwt_sign(const char *secret, const char *subject, int64_t iat, int64_t ttl_s, char *out,
	     size_t out_size);

/* Checks token against secret at time now (seconds since the epoch). On
 * success copies the subject into subject (JWT_SUBJECT_MAX + 1 bytes) and the
 * expiry into *exp, and returns 0. Errors: -EINVAL malformed, -ENOTSUP an
 * algorithm other than HS256, -EACCES bad signature, -EKEYEXPIRED expired
 * (or not yet valid by nbf). On any error subject is "" and *exp 0: a refused
 * token carries no identity. A token needs "sub" and an integer "exp"; "nbf",
 * when present, must be an integer. */
int jwt_verify(const char *secret, const char *token, int64_t now, char *subject, int64_t *exp);

/* The stable error code both edges answer a refused token with:
 * "missing_token" for -ENOENT (no token was found), "token_expired" for
 * -EKEYEXPIRED, "bad_token" for anything else. */
const char *jwt_error_code(int rc);

/* A subject fanout accepts: [A-Za-z0-9_.-]{1,64}, and not channel, everyone
 * or here in any case (they are @mentions of everyone). */
int jwt_subject_valid(const char *subject);
