-- The wallet: the simulated payment method that makes failures real. The balance can never go
-- below zero (a charge that would is refused by this constraint, not only by the code), and
-- every change has a ledger entry.
CREATE TABLE wallets (
    user_id       uuid PRIMARY KEY,
    balance_minor bigint NOT NULL DEFAULT 0
                  CONSTRAINT wallets_balance_not_negative CHECK (balance_minor >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wallet_entries (
    id              bigserial PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES wallets (user_id),
    delta_minor     bigint NOT NULL CHECK (delta_minor <> 0),
    kind            text NOT NULL CHECK (kind IN ('top_up', 'charge', 'refund')),
    payment_id      uuid,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A payment is charged once and refunded at most once.
    CONSTRAINT wallet_entries_payment_unique UNIQUE (payment_id, kind),
    CONSTRAINT wallet_entries_top_up_unique UNIQUE (user_id, idempotency_key)
);

CREATE INDEX wallet_entries_user_idx ON wallet_entries (user_id, id DESC);

CREATE TABLE payments (
    id              uuid PRIMARY KEY,              -- v7; also the saga key and reservation id
    user_id         uuid NOT NULL,
    idempotency_key text NOT NULL,
    request_hash    text NOT NULL,
    method          text NOT NULL CHECK (method IN ('wallet', 'card')),
    status          text NOT NULL CHECK (status IN
                      ('pending_order', 'completed', 'cancelled', 'refunded')),
    amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
    address_id      uuid NOT NULL,
    lines           jsonb NOT NULL,
    order_id        uuid,
    reason          text,
    response        jsonb NOT NULL,                -- the first response, returned to repeats
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_idempotency_unique UNIQUE (user_id, idempotency_key)
);

CREATE INDEX payments_user_idx ON payments (user_id, id DESC);

-- At most one refund per payment: the primary key is the guarantee.
CREATE TABLE refunds (
    payment_id   uuid PRIMARY KEY REFERENCES payments (id),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    reason       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
