-- Each record also as the API serves it (`cached: true`), encoded once when it
-- is stored, so a cached hit sends this text without parsing and re-encoding
-- the record. Rows stored by an earlier release are converted here; a reader
-- that meets a row without it (written by an older node during a rolling
-- upgrade) derives it from `body` in its query.
ALTER TABLE records ADD COLUMN served TEXT;
UPDATE records SET served = json_set(body, '$.cached', json('true'));
