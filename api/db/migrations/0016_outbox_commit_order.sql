-- Commit order for outbox rows. `id` is assigned at INSERT, not at commit: a transaction holding
-- id 10 can commit after one holding id 11, so "everything after id 11" could skip 10 for good.
-- `position` is assigned after commit, by one sequencer at a time (api/db/outbox.py): every
-- row committed so far and not yet numbered gets the next positions, in id order, and the
-- sequencer commits before the next one starts. So positions appear in increasing order and
-- none ever appears behind one already read: a position is an event's resumable cursor.
ALTER TABLE outbox ADD COLUMN position bigint;
CREATE SEQUENCE outbox_positions AS bigint;
-- Rows written before this migration had all committed: their ids are their commit order.
UPDATE outbox SET position = id;
SELECT setval('outbox_positions', max(position)) FROM outbox HAVING max(position) IS NOT NULL;
CREATE UNIQUE INDEX outbox_position_key ON outbox (position);
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE position IS NULL;
