-- The words of a text array as one text, for the search vectors that projections keep in generated
-- columns: punctuation becomes a space, so `dataset-2919`, `customer_id` and `s3://lake/orders` are
-- indexed as the words a search splits them into (PostgreSQL's parser would keep `-2919` as a signed
-- number and `lake/orders` as a path). array_to_string is only STABLE (it may call any element type's
-- output function) and a generated column needs an IMMUTABLE expression; for text[] the answer never
-- changes.
CREATE FUNCTION strata_words(words text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN regexp_replace(array_to_string(words, ' '), '[[:punct:][:space:]]+', ' ', 'g');
