-- What the pipeline enriches with (weight, age, sex, HRmax, HRrest), written by the API when a
-- user sets a profile and read by pipeline workers (scale-out), so heart-rate zones, TRIMP and
-- calories are the same whichever process runs the workout.
CREATE TABLE athlete_profiles (
    user_id    text        PRIMARY KEY,
    profile    jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
