-- Scale-out: which pipeline worker owns which partition of the raw topic (src/worker/lease.rs).
-- A claim lasts until expires_at unless renewed; an expired claim may be taken by any worker.
-- wanted_by: the partition's home worker (p mod N = I) asking the current holder to hand it back.
CREATE TABLE pipeline_leases (
    topic      text        NOT NULL,
    partition  integer     NOT NULL,
    owner      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    wanted_by  text,
    PRIMARY KEY (topic, partition)
);
