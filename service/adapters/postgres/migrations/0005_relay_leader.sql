-- The relay's leader record, one row: which relay led last (`holder`, an id each relay draws
-- at start) and whether it let go cleanly, with none of its batches still in flight. A leader
-- that takes over from another's unclean end waits out that leader's longest possible delivery
-- before its first send, so a late batch of the former leader cannot land after its own.
CREATE TABLE relay_leader (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    holder uuid,
    clean boolean NOT NULL DEFAULT true
);
INSERT INTO relay_leader DEFAULT VALUES;
