-- Users and their shipping addresses.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    name          text NOT NULL,
    phone         text NOT NULL,
    role          text NOT NULL DEFAULT 'customer' CONSTRAINT users_role_check CHECK (role IN ('customer', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lowercase CHECK (email = lower(email))
);

-- Emails are stored lower-cased by the service; the index makes "one account per email" hold.
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE addresses (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        text,
    recipient    text NOT NULL,
    phone        text NOT NULL,
    line1        text NOT NULL,
    line2        text,
    city         text NOT NULL,
    region       text,
    postal_code  text NOT NULL,
    country      text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    is_default   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX addresses_user_id_idx ON addresses (user_id, last_used_at DESC);

-- At most one default address per user ...
CREATE UNIQUE INDEX addresses_one_default_per_user ON addresses (user_id) WHERE is_default;

-- ... and at least one whenever the user has any address, checked when the transaction
-- commits (so "unset old default, set new default" is fine inside one transaction).
CREATE FUNCTION addresses_require_default() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    uid uuid := COALESCE(NEW.user_id, OLD.user_id);
BEGIN
    IF EXISTS (SELECT 1 FROM addresses WHERE user_id = uid)
       AND NOT EXISTS (SELECT 1 FROM addresses WHERE user_id = uid AND is_default) THEN
        RAISE EXCEPTION 'user % has addresses but no default address', uid
            USING ERRCODE = 'check_violation', CONSTRAINT = 'addresses_require_default';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER addresses_require_default
    AFTER INSERT OR UPDATE OR DELETE ON addresses
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION addresses_require_default();
