//! A workout belongs to the user and device of its first durable batch: two users' devices, the
//! development `*` token, a restart, and a shared owner registry (as gateways over a raw topic use).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use trackwire_codec::{BatchData, DecodeLimits, Sample, WorkoutId, encode_batch};
use trackwire_ingest::log::{DurableLog, LogConfig, LogError, PastOwners, Remembered, WorkoutOwner};
use trackwire_ingest::{DeviceToken, IngestConfig, IngestError, Ingestor, OwnerRegistry};

type Writer = std::thread::JoinHandle<Result<(), LogError>>;

const ALICES_WORKOUT: WorkoutId = WorkoutId([0xa1; 16]);

fn tokens() -> Vec<DeviceToken> {
    let token = |token: &str, device: &str, user: Option<&str>| DeviceToken {
        token: token.into(),
        device_id: device.into(),
        user_id: user.map(str::to_owned),
    };
    vec![
        token("alice-watch", "watch-a", Some("alice")),
        token("alice-phone", "phone-a", Some("alice")),
        token("bob-watch", "watch-b", Some("bob")),
        token("development", "*", None),
    ]
}

fn open(dir: &std::path::Path) -> (Ingestor, Writer) {
    open_remembering(dir, None)
}

fn open_remembering(dir: &std::path::Path, past_owners: Option<Arc<dyn PastOwners>>) -> (Ingestor, Writer) {
    let config = LogConfig { dir: dir.join("log"), ..LogConfig::default() };
    let remembered = Remembered { past_owners, ..Remembered::default() };
    let (log, writer) = DurableLog::open_remembering(config, Box::new(|_| true), remembered).unwrap();
    let ingestor = Ingestor::new(
        IngestConfig {
            tokens: tokens(),
            max_body_bytes: 1 << 20,
            max_decompressed_bytes: 1 << 20,
            limits: DecodeLimits::default(),
            time_bounds: Default::default(),
        },
        log,
    );
    (ingestor, writer)
}

fn close((ingestor, writer): (Ingestor, Writer)) {
    drop(ingestor);
    writer.join().unwrap().unwrap();
}

fn batch(user: &str, device: &str, seq: u64) -> Bytes {
    Bytes::from(encode_batch(&BatchData {
        device_id: device.into(),
        user_id: user.into(),
        workout_id: ALICES_WORKOUT,
        seq,
        base_time_ms: 1_700_000_000_000 + seq as i64 * 1000,
        samples: vec![Sample::new(0, 515_000_000, 134_000_000, 10_000, 140, 0, 0, 0, 0)],
        ..BatchData::default()
    }))
}

/// "stored", or "retry" for a batch stored before.
async fn send(ingestor: &Ingestor, token: &str, body: Bytes) -> Result<&'static str, IngestError> {
    ingestor.ingest(body, None, Some(token)).await.map(|accepted| if accepted.duplicate { "retry" } else { "stored" })
}

fn assert_refused(result: Result<&str, IngestError>, who: &str) {
    match result {
        Err(err @ IngestError::WorkoutOwnerMismatch { .. }) => {
            assert_eq!(err.code(), "workout_owner_mismatch");
            assert!(!err.to_string().contains("alice"), "the owner is not disclosed to {who}: {err}");
        }
        other => panic!("{who}: expected workout_owner_mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn a_workout_takes_batches_only_from_the_user_and_device_that_started_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ingestor, writer) = open(dir.path());
    assert_eq!(send(&ingestor, "alice-watch", batch("alice", "watch-a", 0)).await.unwrap(), "stored");

    assert_refused(send(&ingestor, "bob-watch", batch("bob", "watch-b", 1)).await, "another user's device");
    assert_refused(send(&ingestor, "development", batch("bob", "watch-b", 1)).await, "the development token");
    assert_refused(send(&ingestor, "alice-phone", batch("alice", "phone-a", 1)).await, "the owner's other device");
    // A foreign copy of a stored seq is refused too, not answered as a harmless retry.
    assert_refused(send(&ingestor, "bob-watch", batch("bob", "watch-b", 0)).await, "a foreign retry");

    assert_eq!(send(&ingestor, "alice-watch", batch("alice", "watch-a", 1)).await.unwrap(), "stored");
    assert_eq!(send(&ingestor, "development", batch("alice", "watch-a", 2)).await.unwrap(), "stored");
    assert_eq!(send(&ingestor, "alice-watch", batch("alice", "watch-a", 0)).await.unwrap(), "retry");
    let rejects: HashMap<_, _> = ingestor.metrics().rejects().collect();
    assert_eq!(rejects["workout_owner_mismatch"], 4);
    close((ingestor, writer));
}

#[tokio::test]
async fn the_binding_lives_in_the_log_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let running = open(dir.path());
    send(&running.0, "alice-watch", batch("alice", "watch-a", 0)).await.unwrap();
    close(running);

    let (ingestor, writer) = open(dir.path());
    assert_refused(send(&ingestor, "bob-watch", batch("bob", "watch-b", 1)).await, "another user after a restart");
    assert_eq!(send(&ingestor, "alice-watch", batch("alice", "watch-a", 1)).await.unwrap(), "stored");
    close((ingestor, writer));
}

/// Summaries of workouts that have left the log; `readable: false` is a store that fails.
struct Summaries {
    owners: HashMap<WorkoutId, WorkoutOwner>,
    readable: std::sync::atomic::AtomicBool,
}

impl PastOwners for Summaries {
    fn owner_of(&self, workout_id: &WorkoutId) -> Result<Option<WorkoutOwner>, String> {
        if !self.readable.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("disk error".into());
        }
        Ok(self.owners.get(workout_id).cloned())
    }
}

#[tokio::test]
async fn a_workout_whose_batches_have_left_the_log_keeps_the_owner_its_summary_names() {
    let dir = tempfile::tempdir().unwrap();
    let alice = WorkoutOwner { user_id: "alice".into(), device_id: "watch-a".into() };
    let summaries = Arc::new(Summaries {
        owners: HashMap::from([(ALICES_WORKOUT, alice)]),
        readable: std::sync::atomic::AtomicBool::new(false),
    });
    // An empty log: every batch of the workout was delivered and deleted.
    let (ingestor, writer) = open_remembering(dir.path(), Some(summaries.clone()));
    match send(&ingestor, "bob-watch", batch("bob", "watch-b", 7)).await {
        Err(err @ IngestError::Storage(_)) => {
            assert!(
                err.to_string().contains("could not be looked up") && err.to_string().contains("send it again"),
                "{err}"
            )
        }
        other => panic!("a batch whose workout's owner cannot be read is refused for a retry, got {other:?}"),
    }
    summaries.readable.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_refused(send(&ingestor, "bob-watch", batch("bob", "watch-b", 7)).await, "another user after the log let go");
    assert_refused(send(&ingestor, "development", batch("bob", "watch-b", 8)).await, "the development token");
    assert_eq!(send(&ingestor, "alice-watch", batch("alice", "watch-a", 7)).await.unwrap(), "stored");
    close((ingestor, writer));
}

/// A registry shared by every gateway: a map, counting how often it is asked.
#[derive(Default)]
struct SharedRegistry {
    owners: Mutex<HashMap<WorkoutId, WorkoutOwner>>,
    asked: Mutex<usize>,
}

impl OwnerRegistry for SharedRegistry {
    fn bind(&self, workout_id: WorkoutId, claimant: &WorkoutOwner) -> Result<WorkoutOwner, String> {
        *self.asked.lock().unwrap() += 1;
        Ok(self.owners.lock().unwrap().entry(workout_id).or_insert_with(|| claimant.clone()).clone())
    }
}

#[tokio::test]
async fn gateways_without_a_shared_log_ask_the_shared_registry_once_per_workout() {
    let registry = Arc::new(SharedRegistry::default());
    let gateways: Vec<_> = (0..2)
        .map(|i| {
            let dir = tempfile::tempdir().unwrap();
            let (ingestor, writer) = open(&dir.path().join(i.to_string()));
            (ingestor.with_owner_registry(registry.clone()), writer, dir)
        })
        .collect();
    let (first, second) = (&gateways[0].0, &gateways[1].0);
    send(first, "alice-watch", batch("alice", "watch-a", 0)).await.unwrap();
    send(first, "alice-watch", batch("alice", "watch-a", 1)).await.unwrap();
    // The other gateway's log never saw the workout: only the registry knows whose it is.
    assert_refused(send(second, "bob-watch", batch("bob", "watch-b", 2)).await, "another user via another gateway");
    send(second, "alice-watch", batch("alice", "watch-a", 2)).await.unwrap();
    send(second, "alice-watch", batch("alice", "watch-a", 3)).await.unwrap();
    assert_eq!(*registry.asked.lock().unwrap(), 2, "each gateway remembers an owner it was told");
    for (ingestor, writer, _dir) in gateways {
        close((ingestor, writer));
    }
}
