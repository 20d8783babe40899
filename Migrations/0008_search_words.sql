-- The words of a text array, as one text, for the search vectors that projections keep in generated
-- columns. PostgreSQL's array_to_string is only STABLE (it may call any element type's output function),
-- and a generated column needs an IMMUTABLE expression; for text[] the answer never changes.
CREATE FUNCTION strata_words(words text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN array_to_string(words, ' ');
