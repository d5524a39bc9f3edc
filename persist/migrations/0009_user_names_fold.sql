-- SPDX-License-Identifier: BSD-3-Clause
-- 0009: user names are compared without case (docs/api.md, "Users"):
-- once "alice" exists, "Alice" cannot become a second user, so nobody can
-- pass for someone by a capital letter. Names are ASCII
-- ([A-Za-z0-9_.-], 0001), so case is the only look-alike (NFKC changes
-- none of those characters). A database that already holds names equal
-- but for case keeps them all working: the later of each set is marked
-- exempt and left out of the new unique index; only new names are held
-- to it.
ALTER TABLE users ADD COLUMN name_fold_exempt boolean NOT NULL DEFAULT false;
UPDATE users u SET name_fold_exempt = true
 WHERE EXISTS (SELECT 1 FROM users o WHERE lower(o.name) = lower(u.name) AND o.id < u.id);
CREATE UNIQUE INDEX users_name_folded ON users (lower(name)) WHERE NOT name_fold_exempt;
