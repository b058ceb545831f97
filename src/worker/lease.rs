//! Partition leases in PostgreSQL: which pipeline worker consumes which raw partition.
//!
//! Why here and not in Kafka: consumer-group rebalancing is not offered by every Kafka-protocol
//! broker (tansu, the test broker, has none), while every scale-out deployment already has the
//! PostgreSQL read store. A lease is one row (`pipeline_leases`, migration 0002) with an expiry;
//! taking one is a conditional upsert, so two workers can never both believe they hold it, and a
//! worker that dies (stops renewing) loses its partitions to the others once the lease expires.
//!
//! Home partitions: worker I of N prefers the partitions p with p mod N = I; it claims them when
//! free or expired, and when one is held by someone else it marks the row `wanted_by` so the
//! holder hands it back at its next renewal (a restarted worker gets its share back). Other
//! partitions (no home worker running, or one that died) are claimed when free or expired, up to a
//! fair share: the partition count over the workers holding unexpired leases. A worker over its
//! share (one joined) hands back foreign partitions. So N may be the most workers there will be
//! (an autoscaler's maximum): partitions without a running home worker are shared out.
//!
//! Renewal also runs on a thread of its own ([`Keeper`]): starting or stopping a partition opens
//! or commits its lake tables, seconds each on a slow object store, and a worker taking several
//! partitions at once used to let all its leases lapse meanwhile, lose them, and start over.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use postgres::Client;

fn connect(url: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let mut config: postgres::Config = url.parse().context("store.url is not a PostgreSQL URL")?;
    let tls = trackwire_sinks::read_store::postgres_tls::connector(&mut config, url, ca_file)?;
    config.connect(tls).context("connecting to PostgreSQL for the partition leases")
}

/// Extends every unexpired lease of `owner` on `topic` by `ttl`; the partitions renewed, and
/// whether their holder asked for them back (`wanted_by`).
fn renew(client: &mut Client, topic: &str, owner: &str, ttl: Duration) -> anyhow::Result<Vec<(i32, Option<String>)>> {
    Ok(client
        .query(
            "UPDATE pipeline_leases SET expires_at = now() + make_interval(secs => $3)
             WHERE topic = $1 AND owner = $2 AND expires_at > now()
             RETURNING partition, wanted_by",
            &[&topic, &owner, &ttl.as_secs_f64()],
        )
        .context("renewing partition leases")?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Renews a worker's leases every third of a lease on a thread of its own, until dropped, so the
/// main loop may spend longer than a lease starting and stopping partitions. It only extends
/// leases still held: one released or lost stays so.
pub struct Keeper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Keeper {
    pub fn spawn(
        url: &str,
        ca_file: Option<&std::path::Path>,
        topic: &str,
        owner: &str,
        ttl: Duration,
    ) -> anyhow::Result<Keeper> {
        let mut client = connect(url, ca_file)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (topic, owner, stopped) = (topic.to_owned(), owner.to_owned(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("lease-keeper".into())
            .spawn(move || {
                while !stopped.load(Ordering::Acquire) {
                    if let Err(err) = renew(&mut client, &topic, &owner, ttl) {
                        tracing::warn!("partition leases not renewed by the keeper (retrying): {err:#}");
                    }
                    let next = Instant::now() + ttl / 3;
                    while Instant::now() < next && !stopped.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
            .context("starting the lease keeper thread")?;
        Ok(Keeper { stop, thread: Some(thread) })
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub struct Leases {
    client: Client,
    topic: String,
    owner: String,
    ttl: Duration,
    /// `(index, count)` of this worker.
    worker: (u32, u32),
}

/// What one round of renewing and claiming decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Partitions held before and still held.
    pub kept: BTreeSet<i32>,
    /// Partitions taken this round (start consuming them).
    pub gained: BTreeSet<i32>,
    /// Partitions no longer held: the lease expired and another worker may have it (stop
    /// consuming them at once).
    pub lost: BTreeSet<i32>,
    /// Foreign partitions their home worker wants back: stop consuming, then [`Leases::release`]
    /// them (in that order, so the two never run one partition together).
    pub hand_back: BTreeSet<i32>,
}

impl Leases {
    pub fn connect(
        url: &str,
        ca_file: Option<&std::path::Path>,
        topic: &str,
        owner: String,
        ttl: Duration,
        worker: (u32, u32),
    ) -> anyhow::Result<Leases> {
        let client = connect(url, ca_file)?;
        Ok(Leases { client, topic: topic.to_owned(), owner, ttl, worker })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn is_home(&self, partition: i32) -> bool {
        partition as u32 % self.worker.1 == self.worker.0
    }

    /// Renews this worker's leases; marks for hand-back the foreign partitions their home worker
    /// wants or that put this worker over its fair share; and claims, among `0..partitions`, its
    /// home partitions and (up to the fair share) others, when free or expired.
    pub fn round(&mut self, held: &BTreeSet<i32>, partitions: i32) -> anyhow::Result<Round> {
        let ttl_secs = self.ttl.as_secs_f64();
        let mut round = Round::default();
        let renewed = renew(&mut self.client, &self.topic, &self.owner, self.ttl)?;
        for (partition, wanted_by) in renewed {
            let wanted_elsewhere = wanted_by.is_some_and(|w| w != self.owner);
            if wanted_elsewhere && !self.is_home(partition) {
                round.hand_back.insert(partition);
            } else if held.contains(&partition) {
                round.kept.insert(partition);
            } else {
                round.gained.insert(partition); // ours in the table, not running yet (a restart)
            }
        }
        // Fair share: the partitions spread over the workers alive now (unexpired leases).
        let others: i64 = self
            .client
            .query_one(
                "SELECT count(DISTINCT owner) FROM pipeline_leases WHERE topic = $1 AND owner <> $2 AND expires_at > now()",
                &[&self.topic, &self.owner],
            )
            .context("counting live workers")?
            .get(0);
        let fair = (partitions as usize).div_ceil(others as usize + 1);
        // Over the share (a worker joined): hand back foreign partitions, highest first.
        let mut holding: Vec<i32> = round.kept.iter().chain(&round.gained).copied().collect();
        while holding.len() > fair {
            let Some(pos) = holding.iter().rposition(|p| !self.is_home(*p)) else { break };
            let partition = holding.remove(pos);
            round.kept.remove(&partition);
            round.gained.remove(&partition);
            round.hand_back.insert(partition);
        }
        round.lost = held.iter().copied().filter(|p| !round.kept.contains(p) && !round.hand_back.contains(p)).collect();
        for partition in 0..partitions {
            if round.kept.contains(&partition)
                || round.gained.contains(&partition)
                || round.hand_back.contains(&partition)
            {
                continue;
            }
            let home = self.is_home(partition);
            // Home: always. Foreign: only while under the fair share.
            if !home && round.kept.len() + round.gained.len() >= fair {
                continue;
            }
            // Free, or expired (its holder stopped renewing: died, or handed it back).
            let claimed = self
                .client
                .query_opt(
                    "INSERT INTO pipeline_leases AS l (topic, partition, owner, expires_at)
                     VALUES ($1, $2, $3, now() + make_interval(secs => $4))
                     ON CONFLICT (topic, partition) DO UPDATE
                         SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at, wanted_by = NULL
                         WHERE l.expires_at <= now()
                     RETURNING partition",
                    &[&self.topic, &partition, &self.owner, &ttl_secs],
                )
                .context("claiming a partition lease")?
                .is_some();
            if claimed {
                round.gained.insert(partition);
            } else if home {
                self.client
                    .execute(
                        "UPDATE pipeline_leases SET wanted_by = $3 WHERE topic = $1 AND partition = $2 AND owner <> $3",
                        &[&self.topic, &partition, &self.owner],
                    )
                    .context("asking for a home partition back")?;
            }
        }
        Ok(round)
    }

    /// Gives up `partitions` at once (a graceful stop), so the others need not wait for expiry.
    pub fn release(&mut self, partitions: &BTreeSet<i32>) -> anyhow::Result<()> {
        let partitions: Vec<i32> = partitions.iter().copied().collect();
        self.client
            .execute(
                "UPDATE pipeline_leases SET expires_at = now() - interval '1 second'
                 WHERE topic = $1 AND owner = $2 AND partition = ANY($3)",
                &[&self.topic, &self.owner, &partitions],
            )
            .context("releasing partition leases")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database on the test server (`scripts/test.sh` starts one), migrated.
    fn database() -> Option<String> {
        let Ok(url) = std::env::var("TRACKWIRE_TEST_POSTGRES_URL") else {
            eprintln!("TRACKWIRE_TEST_POSTGRES_URL is not set: skipped (scripts/test.sh starts PostgreSQL)");
            return None;
        };
        let name = format!("lease_{}", std::process::id());
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connecting to the test server");
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let (base, _) = url.rsplit_once('/').expect("a URL with a database");
        let url = format!("{base}/{name}");
        trackwire_sinks::read_store::PostgresStore::connect(&url, None).unwrap();
        Some(url)
    }

    #[test]
    fn the_keeper_holds_the_leases_while_the_main_loop_is_busier_than_a_lease() {
        let Some(url) = database() else { return };
        let ttl = Duration::from_millis(900);
        let mut first = Leases::connect(&url, None, "raw", "first".into(), ttl, (0, 2)).unwrap();
        let mut second = Leases::connect(&url, None, "raw", "second".into(), ttl, (1, 2)).unwrap();
        let taken = first.round(&BTreeSet::new(), 2).unwrap().gained;
        assert_eq!(taken, BTreeSet::from([0, 1]), "alone, the first worker takes every partition");

        // Starting two partitions takes longer than a lease: the keeper renews meanwhile.
        let keeper = Keeper::spawn(&url, None, "raw", "first", ttl).unwrap();
        std::thread::sleep(ttl * 3);
        let joining = second.round(&BTreeSet::new(), 2).unwrap();
        assert!(joining.gained.is_empty(), "nothing lapsed for the second worker to take: {joining:?}");
        let next = first.round(&taken, 2).unwrap();
        assert_eq!(next.lost, BTreeSet::new(), "{next:?}");
        assert_eq!(next.hand_back, BTreeSet::from([1]), "its home worker asked for partition 1 back");

        // Released leases stay released: the keeper extends only those still held.
        first.release(&BTreeSet::from([1])).unwrap();
        std::thread::sleep(ttl / 2);
        assert_eq!(second.round(&BTreeSet::new(), 2).unwrap().gained, BTreeSet::from([1]));
        drop(keeper);
    }
}
