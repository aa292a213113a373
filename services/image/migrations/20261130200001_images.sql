-- The image service: metadata of uploaded images. The bytes live in the object store under
-- `<id>/<version>/original` and `<id>/<version>/thumb`; names come from ids only, never from
-- anything a client sent.

CREATE TABLE images (
    id            uuid PRIMARY KEY,
    owner_id      uuid NOT NULL,                 -- the uploader
    -- Bumped by every replacement; the URL carries it, so a cached URL never shows new bytes.
    version       integer NOT NULL DEFAULT 1 CHECK (version > 0),
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp', 'image/gif')),
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    bytes         bigint NOT NULL,
    etag          text NOT NULL,
    thumb_width   integer NOT NULL CHECK (thumb_width > 0),
    thumb_height  integer NOT NULL CHECK (thumb_height > 0),
    thumb_bytes   bigint NOT NULL,
    thumb_etag    text NOT NULL,
    -- What the image belongs to once an item (admin) or a review (its author) references it.
    attached_kind text CHECK (attached_kind IN ('item', 'review')),
    attached_id   uuid,
    attached_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT images_attachment_whole CHECK ((attached_kind IS NULL) = (attached_id IS NULL)
                                              AND (attached_id IS NULL) = (attached_at IS NULL))
);

-- The sweeper's scan: old unattached images.
CREATE INDEX images_unattached_idx ON images (created_at) WHERE attached_id IS NULL;
-- Deleting an item or a review deletes its images.
CREATE INDEX images_attached_idx ON images (attached_kind, attached_id) WHERE attached_id IS NOT NULL;
