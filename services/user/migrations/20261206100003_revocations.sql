-- Every revocation the deny-list in Redis holds, kept here too so that a Redis that lost its
-- keys gets them back (a logout must stay a logout). Rows past `expires_at` are dropped.
CREATE TABLE revocations (
    kind       text NOT NULL CHECK (kind IN ('token', 'session')),
    id         uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX revocations_expiry_idx ON revocations (expires_at);
