//! One suite for both account stores: the embedded redb file and the shared PostgreSQL tables
//! (with TRACKWIRE_TEST_POSTGRES_URL, as scripts/test.sh sets).

use std::sync::atomic::{AtomicU32, Ordering};

use trackwire_api::accounts::{Accounts, Attempt, PostgresAccounts, RedbAccounts, StoredSubscription};
use trackwire_api::views::{Gear, GearKind, IssuedToken, Profile, Upload, UploadStatus, Visibility, WorkoutEdits};
use trackwire_codec::WorkoutId;
use trackwire_sinks::read_store::{ChangeAspect, NewChange, WorkoutChange};

fn gear(id: &str) -> Gear {
    Gear {
        id: id.into(),
        name: format!("shoe {id}"),
        kind: GearKind::Shoes,
        sport: "running".into(),
        replace_after_km: 700.0,
        retired: false,
        created_at: "2026-12-02T08:00:00Z".into(),
    }
}

fn upload(id: &str, user: &str, external: Option<&str>, status: UploadStatus) -> Upload {
    Upload {
        id: id.into(),
        user_id: user.into(),
        external_id: external.map(str::to_owned),
        file_name: Some("run.gpx".into()),
        data_type: Some("gpx".into()),
        status,
        workout_id: None,
        workout_ids: Vec::new(),
        duplicate_of: None,
        error: None,
        samples: 0,
        created_at: "2026-12-02T08:00:00Z".into(),
    }
}

fn token(id: &str, user: &str) -> IssuedToken {
    IssuedToken {
        id: id.into(),
        token: format!("secret-{id}"),
        user_id: user.into(),
        device_id: "watch-1".into(),
        created_at: "2026-12-02T08:00:00Z".into(),
    }
}

fn suite(accounts: &dyn Accounts) {
    // Profiles: set, replaced, listed.
    assert_eq!(accounts.profile("ada").unwrap(), None);
    let mut profile = Profile { weight_kg: Some(60.0), ..Profile::default() };
    accounts.set_profile("ada", &profile).unwrap();
    profile.hr_max_bpm = Some(185.0);
    accounts.set_profile("ada", &profile).unwrap();
    accounts.set_profile("bob", &Profile::default()).unwrap();
    assert_eq!(accounts.profile("ada").unwrap(), Some(profile.clone()));
    assert_eq!(accounts.profiles().unwrap().len(), 2);

    // Gear per user; deleting it unassigns it from its workouts.
    let (w1, w2) = (WorkoutId([1; 16]), WorkoutId([2; 16]));
    accounts.put_gear("ada", &gear("g1")).unwrap();
    accounts.put_gear("ada", &gear("g2")).unwrap();
    accounts.put_gear("bob", &gear("g3")).unwrap();
    let mut retired = gear("g2");
    retired.retired = true;
    accounts.put_gear("ada", &retired).unwrap();
    let ids: Vec<_> = accounts.gear_of_user("ada").unwrap().into_iter().map(|g| g.id).collect();
    assert_eq!(ids, ["g1", "g2"]);
    assert_eq!(accounts.gear("ada", "g2").unwrap(), Some(retired));
    assert_eq!(accounts.gear("bob", "g1").unwrap(), None, "gear is per user");
    accounts.assign_gear(&w1, Some("g1")).unwrap();
    accounts.assign_gear(&w2, Some("g1")).unwrap();
    accounts.assign_gear(&w2, None).unwrap();
    assert_eq!(accounts.gear_of_workout(&w1).unwrap().as_deref(), Some("g1"));
    assert_eq!(accounts.gear_of_workout(&w2).unwrap(), None);
    assert!(accounts.delete_gear("ada", "g1").unwrap());
    assert!(!accounts.delete_gear("ada", "g1").unwrap());
    assert_eq!(accounts.gear_of_workout(&w1).unwrap(), None);

    // Uploads, by id and by the user's external id; unfinished ones are found after a restart.
    accounts.put_upload(&upload("u1", "ada", Some("garmin-1"), UploadStatus::Processing)).unwrap();
    accounts.put_upload(&upload("u2", "bob", Some("garmin-1"), UploadStatus::Ready)).unwrap();
    assert_eq!(accounts.upload_by_external_id("ada", "garmin-1").unwrap().unwrap().id, "u1");
    assert_eq!(accounts.upload_by_external_id("bob", "garmin-1").unwrap().unwrap().id, "u2");
    assert_eq!(accounts.unfinished_uploads().unwrap().len(), 1);
    accounts.put_upload(&upload("u1", "ada", Some("garmin-1"), UploadStatus::Ready)).unwrap();
    assert!(accounts.unfinished_uploads().unwrap().is_empty());
    assert_eq!(accounts.upload("u1").unwrap().unwrap().status, UploadStatus::Ready);

    // Device tokens: issued, listed, revoked once.
    accounts.put_device_token(&token("t1", "ada")).unwrap();
    accounts.put_device_token(&token("t2", "bob")).unwrap();
    assert_eq!(accounts.device_tokens().unwrap(), vec![token("t1", "ada"), token("t2", "bob")]);
    assert_eq!(accounts.delete_device_token("t2").unwrap(), Some(token("t2", "bob")));
    assert_eq!(accounts.delete_device_token("t2").unwrap(), None);
    accounts.put_device_token(&token("t3", "ada")).unwrap();

    // Erasure: the record keeps the highest position; everything else of the user goes, and
    // nothing of another user.
    accounts.record_erasure("ada", 9).unwrap();
    accounts.record_erasure("ada", 4).unwrap();
    assert_eq!(accounts.erasures().unwrap(), vec![("ada".to_owned(), 9)]);
    // Tags: in the order added, each once.
    assert!(accounts.workout_tags(&w1).unwrap().is_empty());
    assert!(accounts.add_workout_tag(&w1, "race").unwrap());
    assert!(accounts.add_workout_tag(&w1, "hills").unwrap());
    assert!(!accounts.add_workout_tag(&w1, "race").unwrap(), "already there");
    assert!(accounts.add_workout_tag(&w2, "easy").unwrap());
    assert_eq!(accounts.workout_tags(&w1).unwrap(), ["race", "hills"]);

    // Edits and replaced tags; a deleted workout takes its own with it and nothing else.
    let w3 = WorkoutId([3; 16]);
    assert_eq!(accounts.workout_edits(&w3).unwrap(), None);
    let edits = WorkoutEdits {
        name: Some("Lunch run".into()),
        description: None,
        sport: Some("cycling".into()),
        visibility: Visibility::Public,
    };
    accounts.put_workout_edits(&w3, &edits).unwrap();
    assert_eq!(accounts.workout_edits(&w3).unwrap(), Some(edits.clone()));
    accounts.set_workout_tags(&w3, &["b".into(), "a".into(), "c".into()]).unwrap();
    assert_eq!(accounts.workout_tags(&w3).unwrap(), ["b", "a", "c"], "in the order given");
    accounts.set_workout_tags(&w3, &["c".into()]).unwrap();
    assert_eq!(accounts.workout_tags(&w3).unwrap(), ["c"]);
    accounts.put_workout_edits(&w2, &edits).unwrap();
    accounts.assign_gear(&w3, Some("g2")).unwrap();
    accounts.delete_workout(&w3).unwrap();
    assert_eq!(
        (
            accounts.workout_edits(&w3).unwrap(),
            accounts.workout_tags(&w3).unwrap(),
            accounts.gear_of_workout(&w3).unwrap()
        ),
        (None, Vec::new(), None)
    );
    assert_eq!(accounts.workout_edits(&w2).unwrap(), Some(edits), "another workout's edits stay");
    accounts.record_deletion(&w3, 12).unwrap();
    accounts.record_deletion(&w3, 7).unwrap();
    assert_eq!(accounts.deletions().unwrap(), vec![(w3, 12)], "the highest position is kept");

    accounts.assign_gear(&w1, Some("g2")).unwrap();
    accounts.put_workout_edits(&w1, &WorkoutEdits::default()).unwrap();
    accounts.erase_user("ada", &[w1]).unwrap();
    assert_eq!(accounts.workout_edits(&w1).unwrap(), None, "the erased workout's edits go");
    assert!(accounts.workout_tags(&w1).unwrap().is_empty(), "the erased workout's tags go");
    assert_eq!(accounts.workout_tags(&w2).unwrap(), ["easy"]);
    assert_eq!(accounts.profile("ada").unwrap(), None);
    assert!(accounts.gear_of_user("ada").unwrap().is_empty());
    assert_eq!(accounts.gear_of_workout(&w1).unwrap(), None);
    assert_eq!(accounts.upload("u1").unwrap(), None);
    assert_eq!(accounts.upload_by_external_id("ada", "garmin-1").unwrap(), None);
    assert!(accounts.device_tokens().unwrap().iter().all(|t| t.user_id != "ada"));
    assert_eq!(accounts.profile("bob").unwrap(), Some(Profile::default()));
    assert_eq!(accounts.gear_of_user("bob").unwrap().len(), 1);
    assert!(accounts.upload("u2").unwrap().is_some());

    // The retention watermark only moves forward (replicas may run retention side by side).
    assert_eq!(accounts.positions_dropped_before().unwrap(), 0);
    accounts.set_positions_dropped_before(2_000).unwrap();
    accounts.set_positions_dropped_before(1_000).unwrap();
    assert_eq!(accounts.positions_dropped_before().unwrap(), 2_000);
}

fn subscription(id: &str, user: &str, created_ms: i64) -> StoredSubscription {
    StoredSubscription {
        id: id.into(),
        user_id: user.into(),
        callback_url: format!("https://apps.example.test/{id}"),
        secret: "s3cret".into(),
        created_ms,
        delivered: 0,
        failed: 0,
        last_failure: None,
        last_failure_ms: None,
    }
}

fn change(seq: u64, user: &str, workout: u8) -> WorkoutChange {
    WorkoutChange { seq, change: NewChange::new(WorkoutId([workout; 16]), user, ChangeAspect::Create, 1_000) }
}

/// Subscriptions, the queue of deliveries fed from the change feed, claims and outcomes.
fn push_suite(accounts: &dyn Accounts) {
    accounts.put_push_subscription(&subscription("s2", "cyd", 20)).unwrap();
    accounts.put_push_subscription(&subscription("s1", "cyd", 10)).unwrap();
    accounts.put_push_subscription(&subscription("s3", "dan", 30)).unwrap();
    let ids = |user| accounts.push_subscriptions_of(user).unwrap().into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids("cyd"), ["s1", "s2"], "oldest first");
    assert_eq!(accounts.push_subscription("s3").unwrap(), Some(subscription("s3", "dan", 30)));

    // Each change becomes a delivery per subscription of its user, once: a replica that read the
    // feed from an older position finds the queue moved on and writes nothing.
    assert_eq!(accounts.push_enqueued_through().unwrap(), 0);
    let feed = [change(4, "cyd", 1), change(6, "eve", 2), change(7, "dan", 3)];
    assert!(accounts.enqueue_push(0, &feed, 7, 100).unwrap());
    assert!(!accounts.enqueue_push(0, &feed, 7, 100).unwrap());
    assert_eq!(accounts.push_enqueued_through().unwrap(), 7);
    let pending = |id| accounts.pending_push_deliveries(id).unwrap();
    assert_eq!((pending("s1"), pending("s2"), pending("s3")), (1, 1, 1));

    // Claimed deliveries are not due again until the claim runs out.
    let due = accounts.claim_push_deliveries(100, 5_000, 2).unwrap();
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|d| d.attempts == 0 && d.next_attempt_ms == 100));
    let rest = accounts.claim_push_deliveries(100, 5_000, 10).unwrap();
    assert_eq!(rest.len(), 1, "only the one not claimed yet");
    assert!(accounts.claim_push_deliveries(4_999, 9_000, 10).unwrap().is_empty());

    // Delivered: gone and counted. Retry: due again later, one attempt more. Gave up: gone,
    // counted as failed, with the reason.
    let by_subscription = |id: &str| due.iter().chain(&rest).find(|d| d.subscription_id == id).unwrap().clone();
    let (s1, s2, s3) = (by_subscription("s1"), by_subscription("s2"), by_subscription("s3"));
    assert_eq!((s1.seq, s3.seq, s3.change.user_id.as_str()), (4, 7, "dan"));
    accounts.finish_push_delivery(&s1, &Attempt::Delivered, 200).unwrap();
    let retry = Attempt::Retry { next_attempt_ms: 700, error: "HTTP 503".into() };
    accounts.finish_push_delivery(&s2, &retry, 200).unwrap();
    accounts.finish_push_delivery(&s3, &Attempt::GaveUp { error: "timed out".into() }, 300).unwrap();
    assert_eq!((pending("s1"), pending("s2"), pending("s3")), (0, 1, 0));
    let stats = |id| accounts.push_subscription(id).unwrap().unwrap();
    assert_eq!((stats("s1").delivered, stats("s1").failed), (1, 0));
    assert_eq!((stats("s2").last_failure.as_deref(), stats("s2").last_failure_ms), (Some("HTTP 503"), Some(200)));
    assert_eq!((stats("s3").failed, stats("s3").last_failure.as_deref()), (1, Some("timed out")));
    assert!(accounts.claim_push_deliveries(699, 9_000, 10).unwrap().is_empty());
    let again = accounts.claim_push_deliveries(5_001, 9_000, 10).unwrap();
    assert_eq!(again.iter().map(|d| (d.subscription_id.as_str(), d.attempts)).collect::<Vec<_>>(), [("s2", 1)]);

    // Deleting a subscription takes its deliveries; an outcome for it afterwards is no error.
    assert!(accounts.delete_push_subscription("s2").unwrap());
    assert!(!accounts.delete_push_subscription("s2").unwrap());
    assert_eq!(pending("s2"), 0);
    accounts.finish_push_delivery(&again[0], &Attempt::Delivered, 900).unwrap();
    assert_eq!(accounts.push_subscription("s2").unwrap(), None);

    // Erasure takes the user's subscriptions and deliveries, no one else's.
    assert!(accounts.enqueue_push(7, &[change(8, "cyd", 4), change(9, "dan", 5)], 9, 1_000).unwrap());
    accounts.erase_user("cyd", &[]).unwrap();
    assert!(ids("cyd").is_empty());
    assert_eq!((pending("s1"), pending("s3")), (0, 1));
}

#[test]
fn redb_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = RedbAccounts::open(&dir.path().join("accounts.redb")).unwrap();
    suite(&accounts);
    push_suite(&accounts);
}

/// A new, empty database on the test PostgreSQL server; None (the case is skipped) without one.
fn fresh_database(prefix: &str) -> Option<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Ok(url) = std::env::var("TRACKWIRE_TEST_POSTGRES_URL") else {
        eprintln!("TRACKWIRE_TEST_POSTGRES_URL is not set: PostgreSQL case skipped (scripts/test.sh starts one)");
        return None;
    };
    let name = format!("{prefix}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connecting to the test server");
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    Some(format!("{base}/{name}"))
}

#[test]
fn postgres_passes_the_suite_and_replicas_share_it() {
    let Some(url) = fresh_database("rs_accounts") else { return };
    suite(&PostgresAccounts::connect(&url, None).unwrap());
    push_suite(&PostgresAccounts::connect(&url, None).unwrap());
    // A second replica sees what the first wrote.
    let other = PostgresAccounts::connect(&url, None).unwrap();
    assert!(other.device_tokens().unwrap().is_empty(), "ada's were erased, bob's revoked");
    other.put_device_token(&token("t4", "bob")).unwrap();
    assert_eq!(PostgresAccounts::connect(&url, None).unwrap().device_tokens().unwrap(), vec![token("t4", "bob")]);
    assert_eq!(other.gear_of_user("bob").unwrap(), vec![gear("g3")]);
}

/// Gateways racing for one workout through different connections: one binds it, all of them
/// read back that owner, and erasing the owner frees the id.
#[test]
fn postgres_binds_each_workout_to_one_owner_for_every_replica() {
    use std::sync::Arc;
    use trackwire_ingest::OwnerRegistry;
    use trackwire_ingest::log::WorkoutOwner;
    let Some(url) = fresh_database("rs_owners") else { return };
    let owner = |user: &str| WorkoutOwner { user_id: user.into(), device_id: format!("{user}-watch").into() };
    let replicas: Vec<Arc<dyn Accounts>> =
        (0..4).map(|_| Arc::new(PostgresAccounts::connect(&url, None).unwrap()) as Arc<dyn Accounts>).collect();
    let registries: Vec<Arc<dyn OwnerRegistry>> =
        replicas.iter().map(|r| r.clone().owner_registry().expect("PostgreSQL is shared")).collect();
    for round in 0..20u8 {
        let workout = WorkoutId([round; 16]);
        let answers: Vec<WorkoutOwner> = std::thread::scope(|scope| {
            let racing: Vec<_> = registries
                .iter()
                .enumerate()
                .map(|(i, registry)| scope.spawn(move || registry.bind(workout, &owner(&format!("user{i}"))).unwrap()))
                .collect();
            racing.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert!(answers.iter().all(|a| *a == answers[0]), "round {round}: {answers:?}");
        assert_eq!(registries[0].bind(workout, &owner("late")).unwrap(), answers[0]);
    }
    let first_owner = registries[0].bind(WorkoutId([0; 16]), &owner("late")).unwrap();
    replicas[1].erase_user(&first_owner.user_id, &[]).unwrap();
    assert_eq!(registries[2].bind(WorkoutId([0; 16]), &owner("late")).unwrap(), owner("late"));
}
