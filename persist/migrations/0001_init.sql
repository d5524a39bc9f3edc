-- SPDX-License-Identifier: BSD-3-Clause
-- 0001: users, channels, membership and the message log.
-- messages is hash-partitioned by channel_id: a channel's history lives in one
-- partition, and writers of different channels spread over all of them.

CREATE TABLE users (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    display_name text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channels (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    kind       text NOT NULL CHECK (kind IN ('public', 'private', 'dm')),
    -- The channel head: the highest durable seq. Writers advance it with a
    -- compare-and-set in the same transaction as the rows (the fence).
    last_seq   bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    created_by bigint REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channel_members (
    channel_id    bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
    last_read_seq bigint NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
    joined_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_members_by_user ON channel_members (user_id);

CREATE TABLE messages (
    channel_id    bigint NOT NULL,
    seq           bigint NOT NULL CHECK (seq > 0),
    author_id     bigint NOT NULL,
    kind          text NOT NULL DEFAULT 'message',
    body          text NOT NULL,
    parent_seq    bigint CHECK (parent_seq IS NULL OR (parent_seq > 0 AND parent_seq < seq)),
    -- The idempotency record lives in the row itself, so it never expires.
    client_msg_id text NOT NULL CHECK (length(client_msg_id) BETWEEN 1 AND 64),
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (channel_id, seq),
    UNIQUE (channel_id, author_id, client_msg_id)
) PARTITION BY HASH (channel_id);

CREATE TABLE messages_p0 PARTITION OF messages FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE messages_p1 PARTITION OF messages FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE messages_p2 PARTITION OF messages FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE messages_p3 PARTITION OF messages FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE messages_p4 PARTITION OF messages FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE messages_p5 PARTITION OF messages FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE messages_p6 PARTITION OF messages FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE messages_p7 PARTITION OF messages FOR VALUES WITH (MODULUS 8, REMAINDER 7);

-- Thread fetches: the replies of one parent, in seq order.
CREATE INDEX messages_thread ON messages (channel_id, parent_seq, seq) WHERE parent_seq IS NOT NULL;
