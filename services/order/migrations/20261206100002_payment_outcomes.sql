-- What became of each payment, decided once: an order was made for it, or its deadline passed
-- without one. The primary key serialises the two decisions: whichever inserts first wins, the
-- other sees it (an insert waits for a concurrent one on the same key to commit).
CREATE TABLE payment_outcomes (
    payment_id uuid PRIMARY KEY,
    outcome    text NOT NULL CHECK (outcome IN ('order', 'expired')),
    decided_at timestamptz NOT NULL DEFAULT now()
);
