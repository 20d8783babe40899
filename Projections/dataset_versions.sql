-- Every version of every dataset, by the DatasetVersionDrafted event at valid_from: a version's content
-- never changes, so its row is never closed.
--
-- The version's document is rendered when it is read, from that event (events.global_position =
-- valid_from), which holds the whole snapshot and who drafted it when; keeping a rendered copy here
-- doubled what a rebuild wrote. Its status changes (draft, then published, later superseded; or
-- discarded), and follows from the dataset's published_version in dataset_states and from
-- version_publications. owner, description, tags and format are kept as columns for the dataset list's
-- filters; with the dataset's namespace and name, the schema's column names and the properties' keys they
-- make the version's search vector, weighted by how telling a match is: the name or a column name (A), a
-- tag, the owner or the format (B), the description (C), a property key (D). One vector holds every word
-- a search looks at, so the GIN index answers `search @@ query` alone.
CREATE TABLE dataset_versions (
    dataset_id    uuid    NOT NULL,
    version       integer NOT NULL,
    valid_from    bigint  NOT NULL,
    owner         text,
    description   text,
    tags          text[]  NOT NULL,
    format        text,
    namespace     text    NOT NULL,  -- the dataset's: a name never changes, so every version has it, and
    name          text    NOT NULL,  -- search filters, ranks and counts without joining dataset_identities
    column_names  text[]  NOT NULL,
    property_keys text[]  NOT NULL,
    search        tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', strata_words(ARRAY[namespace, name] || column_names)), 'A')
        || setweight(to_tsvector('simple', strata_words(tags || ARRAY[coalesce(owner, ''), coalesce(format, '')])), 'B')
        || setweight(to_tsvector('simple', strata_words(ARRAY[coalesce(description, '')])), 'C')
        || setweight(to_tsvector('simple', strata_words(property_keys)), 'D')
    ) STORED,
    PRIMARY KEY (dataset_id, version)
);

CREATE INDEX dataset_versions_search ON dataset_versions USING gin (search);
