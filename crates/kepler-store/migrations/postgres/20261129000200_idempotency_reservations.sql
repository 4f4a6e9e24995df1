-- Idempotency-Key reservations, so one key is processed once across every node.
--
-- A request reserves its key before it is processed: a row whose
-- `reserved_until` is set is a request in progress (its `status`, `body` and
-- `headers` are placeholders until the answer is saved), held by `reserved_by`
-- until `reserved_until` (milliseconds, like every instant here), after which a
-- later request may take it over: a node that died cannot hold a key forever.
-- Saving the answer clears both columns.
--
-- A reservation's `created_at` is 0 (it has no answer yet): nodes of the
-- previous release, which know nothing of reservations, read such a row as an
-- expired answer and overwrite it, so a rolling upgrade never makes them
-- replay a placeholder.

ALTER TABLE idempotency ADD COLUMN reserved_by UUID;
ALTER TABLE idempotency ADD COLUMN reserved_until BIGINT;
