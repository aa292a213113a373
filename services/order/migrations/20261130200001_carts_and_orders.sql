-- Carts: one row per user (the lock that keeps the 50-line limit under concurrent adds) and
-- its lines.
CREATE TABLE carts (
    user_id    uuid PRIMARY KEY,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cart_lines (
    id       uuid PRIMARY KEY,
    user_id  uuid NOT NULL REFERENCES carts (user_id) ON DELETE CASCADE,
    item_id  uuid NOT NULL,
    qty      integer NOT NULL CHECK (qty BETWEEN 1 AND 99),
    added_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cart_lines_item_unique UNIQUE (user_id, item_id)
);

-- Orders exist only for a payment whose stock was reserved: one per payment, enforced here.
CREATE TABLE orders (
    id           uuid PRIMARY KEY,                 -- v7: newest-first paging by id
    user_id      uuid NOT NULL,
    payment_id   uuid NOT NULL CONSTRAINT orders_payment_unique UNIQUE,
    status       text NOT NULL CHECK (status IN
                   ('created', 'cancel_requested', 'cancelled', 'shipped', 'delivered')),
    total_minor  bigint NOT NULL CHECK (total_minor >= 0),
    address      jsonb NOT NULL,                   -- the snapshot taken at payment
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz
);

CREATE INDEX orders_user_idx ON orders (user_id, id DESC);

CREATE TABLE order_lines (
    order_id         uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    item_id          uuid NOT NULL,
    name             text NOT NULL,
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    qty              integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (order_id, item_id)
);

CREATE INDEX order_lines_item_idx ON order_lines (item_id);
