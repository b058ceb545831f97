-- Coordinate retention counts from when the log stored a workout's records: it finds the
-- workouts whose stored span overlaps the cut by the span the summary carries.
CREATE INDEX workout_summaries_by_stored ON workout_summaries (
    ((summary->>'stored_from_ms')::bigint), ((summary->>'stored_through_ms')::bigint)
);
