-- SPDX-License-Identifier: BSD-3-Clause
-- 0002: the public channel every user joins on first sign-in, as in Slack.
INSERT INTO channels (name, kind) VALUES ('general', 'public') ON CONFLICT (name) DO NOTHING;
