-- The read store (sinks/src/read_store): what the API serves. Applied once, in order, by
-- PostgresStore::connect; never edit an applied migration, add the next number instead.

-- One row per workout: its latest summary (the JSON the API renders) and the columns lists and
-- retention select on.
CREATE TABLE workout_summaries (
    workout_id    bytea  PRIMARY KEY CHECK (length(workout_id) = 16),
    user_id       text   NOT NULL,
    sport         text   NOT NULL,
    start_time_ms bigint NOT NULL,
    end_time_ms   bigint NOT NULL,
    summary       jsonb  NOT NULL
);
-- A user's workouts newest first, ties by id: the order and cursor of GET /api/v1/workouts.
CREATE INDEX workout_summaries_by_user ON workout_summaries (user_id, start_time_ms DESC, workout_id);
-- Coordinate retention finds the workouts that overlap a time range.
CREATE INDEX workout_summaries_by_time ON workout_summaries (start_time_ms, end_time_ms);

-- One chunk per log record of a workout (Streams::encode bytes), read back in log order.
CREATE TABLE workout_streams (
    workout_id bytea  NOT NULL,
    lsn        bigint NOT NULL,
    chunk      bytea  NOT NULL,
    PRIMARY KEY (workout_id, lsn)
);

CREATE TABLE workout_best_efforts (
    workout_id bytea PRIMARY KEY,
    efforts    jsonb NOT NULL
);

-- Per input log (`local`, or `raw.v1/<partition>` in scale-out): the position through which the
-- store is complete. Moved in the same transaction as the rows.
CREATE TABLE read_store_checkpoints (
    log text   PRIMARY KEY,
    lsn bigint NOT NULL
);
