-- Who may write to each workout: the user and device of its first batch. Gateways in front of the
-- raw topic share no log writer, so they bind a workout here (the first INSERT wins, whichever
-- gateway makes it) before they append its first batch, and refuse batches from anyone else.
-- Erasing a user deletes their rows.
CREATE TABLE workout_owners (
    workout_id bytea       PRIMARY KEY,
    user_id    text        NOT NULL,
    device_id  text        NOT NULL,
    bound_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workout_owners_by_user ON workout_owners (user_id);
