#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Tests of fanoutctl's offline commands: ring simulation and token minting, checked by an
# independent HS256 implementation (Python's hmac), and its refusals.
# Prints "N passed, N failed".
set -uo pipefail
ctl=$1
. "$(dirname "$0")/checks.sh"
not() { ! "$@"; }
verify() { # token secret user ttl
    python3 - "$@" <<'PY'
import base64, hashlib, hmac, json, sys
token, secret, user, ttl = sys.argv[1:]
h, p, s = token.split(".")
mac = base64.urlsafe_b64encode(hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
pad = lambda x: x + "=" * (-len(x) % 4)
head, body = json.loads(base64.urlsafe_b64decode(pad(h))), json.loads(base64.urlsafe_b64decode(pad(p)))
sys.exit(0 if mac == s and head["alg"] == "HS256" and body["sub"] == user and body["exp"] - body["iat"] == int(ttl) else 1)
PY
}

token=$(FANOUT_JWT_SECRET=s3cret "$ctl" token --user alice --ttl 90); rc=$?
check "token exits 0" test "$rc" = 0
check "token verifies independently" verify "$token" s3cret alice 90
check "wrong secret does not verify" not verify "$token" other alice 90
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
printf '[auth]\njwt_secret = from-file\ntoken_ttl_s = 120\n' >"$work/f.ini"
token=$("$ctl" token --user bob -c "$work/f.ini")
check "secret and ttl from the config file" verify "$token" from-file bob 120
out=$(env -u FANOUT_JWT_SECRET "$ctl" token --user alice 2>&1); rc=$?
check "no secret exits 2" test "$rc" = 2
check "no secret says so" grep -q "no secret" <<<"$out"
out=$(FANOUT_JWT_SECRET=x "$ctl" token --user 'a b' 2>&1); rc=$?
check "bad user name exits 2" test "$rc" = 2
out=$(FANOUT_JWT_SECRET=x "$ctl" token --user a --ttl -5 2>&1); rc=$?
check "bad ttl exits 2" test "$rc" = 2
out=$("$ctl" frobnicate 2>&1); rc=$?
check "unknown command exits 2" test "$rc" = 2
printf '[auth]\nsecret = x\n' >"$work/bad.ini"
out=$("$ctl" token --user a -c "$work/bad.ini" 2>&1); rc=$?
check "bad config names file and line" grep -q "bad.ini:2: unknown key 'secret'" <<<"$out"
out=$("$ctl" ring simulate --nodes 10 --channels 200000 --vnodes 8192 -o json); rc=$?
check "ring simulate exits 0" test "$rc" = 0
check "ring simulate -o json meets the goals" python3 -c '
import json, sys
s = json.loads(sys.argv[1])
sys.exit(0 if s["nodes"] == 10 and s["channels"] == 200000 and s["max_over_mean"] <= 1.05
         and s["moved_over_ideal"] <= 1.1 and s["moved_between_stayers"] == 0 else 1)' "$out"
out=$("$ctl" ring simulate --nodes 10 --channels 200000 --vnodes 1 -o json)
check "one vnode a member is visibly unbalanced" python3 -c '
import json, sys; sys.exit(0 if json.loads(sys.argv[1])["max_over_mean"] > 1.5 else 1)' "$out"
out=$("$ctl" ring simulate --nodes 1 2>&1); rc=$?
check "ring simulate with one node exits 2" test "$rc" = 2
out=$("$ctl" ring simulate -o yaml 2>&1); rc=$?
check "an unknown output format exits 2" test "$rc" = 2
checks_done fanoutctl
