-- Commands handed on through a log (erasures, retention cuts): where each was placed in each raw
-- partition, and whether that partition's sinks have carried it out. The API writes a row when it
-- places a command; the worker that carries it out marks it done. A worker taking a partition over
-- reads them to keep erased data from coming back, and the API reads them to tell a caller how far
-- an erasure has got.
CREATE TABLE log_commands (
    log        text        NOT NULL,
    lsn        bigint      NOT NULL,
    command    text        NOT NULL,
    user_id    text,
    done_at    timestamptz,
    PRIMARY KEY (log, lsn)
);
CREATE INDEX log_commands_by_user ON log_commands (user_id) WHERE user_id IS NOT NULL;
