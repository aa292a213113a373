-- The saga timeline: every step a service takes in a checkout saga (an event consumed, a call
-- made, a decision), recorded in the same transaction as the step's effects. `kommerce saga
-- trace` merges the timelines of every service by time.
CREATE TABLE saga_steps (
    id        bigserial PRIMARY KEY,
    saga_id   uuid NOT NULL,                 -- the payment id: the saga's key
    order_id  uuid,                          -- once there is one
    service   text NOT NULL,
    step      text NOT NULL,                 -- an event type or an action
    outcome   text NOT NULL,
    detail    text,
    at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX saga_steps_saga_idx ON saga_steps (saga_id, at);
CREATE INDEX saga_steps_order_idx ON saga_steps (order_id) WHERE order_id IS NOT NULL;
