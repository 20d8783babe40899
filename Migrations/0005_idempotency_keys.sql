-- Responses to writes that carried an Idempotency-Key, so a retry gets the first answer back and
-- appends nothing. Written in the same transaction as the events the request appended: a key is never
-- stored without its events, nor events without their key.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,  -- the caller (actor) the key belongs to
    key          text        NOT NULL,
    request_hash text        NOT NULL,  -- SHA-256 of method, path and body
    status       integer     NOT NULL,
    headers      jsonb       NOT NULL,
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
