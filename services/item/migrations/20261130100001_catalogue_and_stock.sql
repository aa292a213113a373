-- The item service: a category tree, items, and stock with its ledger and reservations.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE categories (
    id         uuid PRIMARY KEY,
    parent_id  uuid REFERENCES categories (id),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_not_own_parent CHECK (parent_id <> id)
);

-- Sibling names are unique (case-insensitively), roots included.
CREATE UNIQUE INDEX categories_sibling_name_key
    ON categories (COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name));

CREATE TABLE items (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    price_minor  bigint NOT NULL CONSTRAINT items_price_non_negative CHECK (price_minor >= 0),
    category_id  uuid NOT NULL REFERENCES categories (id),
    status       text NOT NULL DEFAULT 'on_sale' CHECK (status IN ('on_sale', 'sold_out', 'hidden')),
    -- Stock never goes below zero, whatever the strategy: the database itself refuses it.
    stock        integer NOT NULL CONSTRAINT items_stock_non_negative CHECK (stock >= 0),
    image_ids    uuid[] NOT NULL DEFAULT '{}',
    rating_avg   double precision NOT NULL DEFAULT 0,
    rating_count integer NOT NULL DEFAULT 0,
    sold_count   bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('simple', description), 'B')
    ) STORED
);

CREATE INDEX items_search_idx ON items USING gin (search);
CREATE INDEX items_name_trgm_idx ON items USING gin (name gin_trgm_ops);
CREATE INDEX items_category_idx ON items (category_id) WHERE deleted_at IS NULL;
CREATE INDEX items_created_idx ON items (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX items_price_idx ON items (price_minor, id) WHERE deleted_at IS NULL;

-- Every change of stock is a row here. `applied` rows are already counted in items.stock;
-- the reservation strategy writes unapplied rows (no hot-row update) that a folder applies in
-- batches. Available stock = items.stock + sum(unapplied deltas).
CREATE TABLE stock_ledger (
    id             bigserial PRIMARY KEY,
    item_id        uuid NOT NULL REFERENCES items (id),
    delta          integer NOT NULL CHECK (delta <> 0),
    reason         text NOT NULL CHECK (reason IN ('initial', 'reservation', 'release', 'admin_increase', 'admin_decrease')),
    reservation_id uuid,
    note           text,
    applied        boolean NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX stock_ledger_item_idx ON stock_ledger (item_id);
CREATE INDEX stock_ledger_unapplied_idx ON stock_ledger (item_id) WHERE NOT applied;

-- One row per reservation id ever seen, with the first answer given, so a repeat gets the same
-- answer and changes nothing. `cancelled` marks a release that arrived before the reservation.
CREATE TABLE reservations (
    id          uuid PRIMARY KEY,
    status      text NOT NULL CHECK (status IN ('reserved', 'rejected', 'released', 'cancelled')),
    http_status smallint NOT NULL,
    answer      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz
);

CREATE TABLE reservation_lines (
    reservation_id uuid NOT NULL REFERENCES reservations (id),
    item_id        uuid NOT NULL REFERENCES items (id),
    qty            integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (reservation_id, item_id)
);
