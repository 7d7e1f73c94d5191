-- Issue 15: the call list pages by (started_at, id) newest first (`store::calls::list`). With
-- the old index on (tenant_id, started_at) alone, every call sharing one start time (a PBX that
-- posts many records with the same start second, or a bulk import) had to be read and sorted
-- to find a page among them: 27 ms for a page of 6 out of 91,465 calls with one start time on
-- Postgres 15, 0.16 ms with this index. The index now carries the tie-breaker too, so a page
-- is an index range scan.
CREATE INDEX calls_tenant_time_id ON calls(tenant_id, started_at, id);
DROP INDEX calls_tenant_time;
