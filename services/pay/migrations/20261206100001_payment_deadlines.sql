-- When the saga's deadline passed for a payment still waiting for its order and
-- `payment.deadline` was published (once).
ALTER TABLE payments ADD COLUMN deadline_sent_at timestamptz;
CREATE INDEX payments_pending_idx ON payments (created_at) WHERE status = 'pending_order';
