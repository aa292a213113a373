-- The review service: one review per user per item, and each item's running rating totals.

CREATE TABLE reviews (
    id         uuid PRIMARY KEY,
    item_id    uuid NOT NULL,
    user_id    uuid NOT NULL,
    rating     smallint NOT NULL CONSTRAINT reviews_rating_range CHECK (rating BETWEEN 1 AND 5),
    title      text NOT NULL DEFAULT '' CHECK (char_length(title) <= 200),
    body       text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 5000),
    image_ids  uuid[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT reviews_one_per_user_item UNIQUE (user_id, item_id)
);

-- Keyset pagination: newest first, and by rating (ties newest first).
CREATE INDEX reviews_item_newest_idx ON reviews (item_id, created_at DESC, id DESC);
CREATE INDEX reviews_item_rating_idx ON reviews (item_id, rating, created_at DESC, id DESC);
CREATE INDEX reviews_user_newest_idx ON reviews (user_id, created_at DESC, id DESC);

-- Each item's totals, changed in the same transaction as the review, with a per-item sequence
-- number: `review.rating-changed` carries all three, so the item service applies an event only
-- when its `seq` is newer than what it has (replays and reordering change nothing).
CREATE TABLE item_ratings (
    item_id      uuid PRIMARY KEY,
    rating_count bigint NOT NULL CHECK (rating_count >= 0),
    rating_sum   bigint NOT NULL CHECK (rating_sum >= 0),
    seq          bigint NOT NULL CHECK (seq >= 0)
);
