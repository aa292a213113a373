-- The review service's per-item sequence number of the last applied `review.rating-changed`:
-- an event is applied only when its `seq` is greater, so replays and reordering change nothing.
ALTER TABLE items ADD COLUMN rating_seq bigint NOT NULL DEFAULT 0;
