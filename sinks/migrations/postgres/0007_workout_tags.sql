-- Tags an owner put on their workouts (the API's POST /workouts/{id}/tags), in the order added.
CREATE TABLE account_workout_tags (
    workout_id bytea       NOT NULL,
    tag        text        NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workout_id, tag)
);
