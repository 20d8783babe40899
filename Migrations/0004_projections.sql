-- Bookkeeping of the projections (Projections/*.sql): which definition each was built from, and how
-- far into the log it has applied. A projection whose file's hash differs from definition_hash is
-- rebuilt from the log.
CREATE TABLE projections (
    name             text PRIMARY KEY,
    definition_hash  text        NOT NULL,
    applied_position bigint      NOT NULL DEFAULT 0,
    rebuilt_at       timestamptz
);
