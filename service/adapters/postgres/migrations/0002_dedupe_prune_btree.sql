-- Pruning dedupe records (the sweeper, every sweep interval, in every instance) must cost next
-- to nothing when nothing is due. The BRIN index of 0001 cannot promise that: block ranges
-- filled since the table's last VACUUM are unsummarized, and a BRIN scan reads every one of
-- them, so a prune with nothing due read up to the whole table (measured on 2,000,000 rows
-- before any VACUUM: 12,602 lossy heap blocks, 315 ms). A B-tree on the insertion time answers
-- "anything older than the retention?" from one leaf page, and since rows arrive in time order
-- it only grows at its right edge. The prune asks for the oldest rows first (ORDER BY), so the
-- index is the plan even before the first ANALYZE (measured: 3 buffers, 0.01 ms, nothing due).
DROP INDEX processed_events_by_age;
CREATE INDEX processed_events_by_age ON processed_events (processed_at);
