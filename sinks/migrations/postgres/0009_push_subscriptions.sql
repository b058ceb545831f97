-- The read store's change feed (sinks/src/read_store/changes.rs): workouts created (first stored
-- as completed), edited and deleted, in order. Writers take an EXCLUSIVE lock on the table for
-- their transaction, so changes become visible in seq order and a reader that remembers the
-- last seq it took never skips one still being committed.
CREATE TABLE workout_changes (
    seq     bigserial PRIMARY KEY,
    user_id text      NOT NULL,
    change  jsonb     NOT NULL
);
CREATE INDEX workout_changes_by_user ON workout_changes (user_id);

-- The API's push subscriptions (api/src/push): a user's callback URL and the secret its
-- deliveries are signed with, with counts of what was delivered and what was given up on.
CREATE TABLE account_push_subscriptions (
    id           text  PRIMARY KEY,
    user_id      text  NOT NULL,
    subscription jsonb NOT NULL
);
CREATE INDEX account_push_subscriptions_by_user ON account_push_subscriptions (user_id);

-- One row per change still to deliver to a subscription: due at next_attempt_ms (a replica that
-- takes it moves that ahead by its claim, so a replica that dies mid-delivery only delays it).
CREATE TABLE account_push_deliveries (
    subscription_id text   NOT NULL REFERENCES account_push_subscriptions (id) ON DELETE CASCADE,
    seq             bigint NOT NULL,
    user_id         text   NOT NULL,
    attempts        integer NOT NULL,
    next_attempt_ms bigint NOT NULL,
    change          jsonb  NOT NULL,
    PRIMARY KEY (subscription_id, seq)
);
CREATE INDEX account_push_deliveries_due ON account_push_deliveries (next_attempt_ms);
