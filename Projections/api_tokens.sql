-- API tokens: who may read, write or administer the catalog. One row per token, from its TokenCreated
-- event (valid_from) until its TokenRevoked event (valid_to); who granted it and when is the envelope of
-- the event at valid_from. The secret itself is stored nowhere: only its SHA-256 (hex), which
-- authenticates nothing; a lookup by it is how a presented token is recognised.
CREATE TABLE api_tokens (
    token_id      uuid    PRIMARY KEY,
    valid_from    bigint  NOT NULL,
    valid_to      bigint,
    name          text    NOT NULL,
    role          text    NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
    namespaces    text[]  NOT NULL,  -- empty: every namespace
    secret_sha256 text    NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$')
);

-- A name belongs to one token at a time; once revoked it may be granted again.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE valid_to IS NULL;
CREATE INDEX api_tokens_by_secret ON api_tokens (secret_sha256) WHERE valid_to IS NULL;
