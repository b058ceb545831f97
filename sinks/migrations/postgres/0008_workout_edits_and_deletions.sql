-- What owners changed of their workouts (the API's PATCH /workouts/{id}): name, description,
-- sport, visibility, as one JSON document per workout.
CREATE TABLE account_workout_edits (
    workout_id bytea PRIMARY KEY,
    edits      jsonb NOT NULL
);

-- Workouts their owners deleted (DELETE /workouts/{id}), with the log position through which each
-- is erased: a restart's replay keeps them out, as account_erasures does for users.
CREATE TABLE account_workout_deletions (
    workout_id  bytea  PRIMARY KEY,
    through_lsn bigint NOT NULL
);
