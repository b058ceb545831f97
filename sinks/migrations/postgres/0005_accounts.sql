-- What the API owns, shared by every API replica and read by the gateways (issued device tokens):
-- athlete profiles as the API shows them, gear and which workout used it, uploads, issued device
-- tokens, erasures, and the coordinate-retention watermark. Rows are the API's JSON views.
CREATE TABLE account_profiles (
    user_id text  PRIMARY KEY,
    profile jsonb NOT NULL
);
CREATE TABLE account_gear (
    user_id text  NOT NULL,
    gear_id text  NOT NULL,
    gear    jsonb NOT NULL,
    PRIMARY KEY (user_id, gear_id)
);
CREATE TABLE account_gear_of_workout (
    workout_id bytea PRIMARY KEY,
    gear_id    text  NOT NULL
);
CREATE TABLE account_uploads (
    id          text  PRIMARY KEY,
    user_id     text  NOT NULL,
    external_id text,
    processing  boolean NOT NULL,
    upload      jsonb NOT NULL
);
CREATE UNIQUE INDEX account_uploads_by_external_id ON account_uploads (user_id, external_id)
    WHERE external_id IS NOT NULL;
CREATE TABLE account_device_tokens (
    id      text  PRIMARY KEY,
    user_id text  NOT NULL,
    token   jsonb NOT NULL
);
CREATE TABLE account_erasures (
    user_id     text   PRIMARY KEY,
    through_lsn bigint NOT NULL
);
CREATE TABLE account_meta (
    key   text   PRIMARY KEY,
    value bigint NOT NULL
);
