-- What the dataset list filters on and search finds a dataset by, one row per distinct set of them that
-- the dataset's versions have had, from the first version that had it (valid_from): the dataset's
-- namespace and name (a name never changes, so search filters, ranks and counts without joining
-- dataset_identities), and its version's owner, description, tags, format, the schema's column names and
-- the properties' keys. words_key is the SHA-256 of those fields. A row's words never change, so it is
-- never closed; which row a dataset's current version has, as of any position, is in versions. Kept per
-- set of words rather than per version, a dataset whose new versions only refresh its data has its
-- search vector made and indexed once.
--
-- search holds every word a search looks at, so the GIN index answers `search @@ query` alone. Each word
-- is weighted by how telling a match is: the name or a column name (A), a tag, the owner or the format
-- (B), the description (C), a property key (D). The vector is made by the writers
-- (Sources/StrataStore/Projections/SearchVector.swift), which split it into words as search splits what it
-- is asked for; made here by to_tsvector, for every version, it took most of a rebuild's time.
CREATE TABLE dataset_words (
    dataset_id    uuid     NOT NULL,
    words_key     bytea    NOT NULL,
    valid_from    bigint   NOT NULL,
    namespace     text     NOT NULL,
    name          text     NOT NULL,
    owner         text,
    description   text,
    tags          text[]   NOT NULL,
    format        text,
    column_names  text[]   NOT NULL,
    property_keys text[]   NOT NULL,
    search        tsvector NOT NULL,
    PRIMARY KEY (dataset_id, words_key)
);

-- New entries wait in the index's pending list until it outgrows gin_pending_list_limit; the insert
-- that finds it full merges it into the index, under the append lock, while every writer waits. At
-- PostgreSQL's default of 4 MB that merge held creates for 80-95 ms (p99 50-65 ms against a p50 of 14);
-- at 256 kB it is under 10 ms and creates run as fast (docs/performance.md, "Fourteenth pass").
CREATE INDEX dataset_words_search ON dataset_words USING gin (search) WITH (gin_pending_list_limit = 256);
