//! The durable log against real files: replay, torn tails, dedup, retention.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use trackwire_codec::WorkoutId;
use trackwire_ingest::log::{Appended, DedupKey, DurableLog, LogConfig, LogEntry, LogRecord};

type Seen = Arc<Mutex<Vec<LogRecord>>>;

fn config(dir: &std::path::Path) -> LogConfig {
    LogConfig {
        dir: dir.to_path_buf(),
        segment_bytes: 4096,
        group_commit_bytes: 1 << 20,
        queue_depth: 64,
        max_retained_bytes: u64::MAX,
    }
}

fn open(
    dir: &std::path::Path,
) -> (DurableLog, std::thread::JoinHandle<Result<(), trackwire_ingest::log::LogError>>, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let (log, handle) = DurableLog::open(
        config(dir),
        Box::new(move |entry| {
            if let LogEntry::Record(r) = entry {
                sink.lock().unwrap().push(r);
            }
            true
        }),
    )
    .unwrap();
    (log, handle, seen)
}

/// Segment files, oldest first.
fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut segments: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    segments.sort();
    segments
}

fn key(w: u8, seq: u64) -> DedupKey {
    DedupKey { workout_id: WorkoutId([w; 16]), seq }
}

fn append(log: &DurableLog, k: DedupKey, payload: &[u8]) -> Appended {
    let rx = log.try_append(k, Bytes::copy_from_slice(payload)).unwrap();
    rx.blocking_recv().unwrap().unwrap()
}

fn close(log: DurableLog, handle: std::thread::JoinHandle<Result<(), trackwire_ingest::log::LogError>>) {
    drop(log);
    handle.join().unwrap().unwrap();
}

#[test]
fn appends_are_forwarded_in_order_and_replayed_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (log, handle, seen) = open(dir.path());
    for seq in 0..100 {
        assert_eq!(append(&log, key(1, seq), &[seq as u8; 100]), Appended::New { lsn: seq + 1 });
    }
    close(log, handle);
    let live: Vec<u64> = seen.lock().unwrap().iter().map(|r| r.lsn).collect();
    assert_eq!(live, (1..=100).collect::<Vec<_>>());
    assert!(std::fs::read_dir(dir.path()).unwrap().count() > 1, "4 KiB segments must have rolled");

    let (log, handle, seen) = open(dir.path());
    // Replay happens before new appends are served, so the new record follows the history.
    assert_eq!(append(&log, key(2, 0), b"new"), Appended::New { lsn: 101 });
    close(log, handle);
    let replayed = seen.lock().unwrap();
    assert_eq!(replayed.len(), 101);
    assert!(replayed.iter().zip(1..).all(|(r, lsn)| r.lsn == lsn));
    assert_eq!(&replayed[41].payload[..], &[41u8; 100][..]);
}

#[test]
fn a_retried_batch_is_acked_but_stored_once_even_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (log, handle, _) = open(dir.path());
    assert_eq!(append(&log, key(1, 0), b"a"), Appended::New { lsn: 1 });
    assert_eq!(append(&log, key(1, 0), b"a"), Appended::Duplicate);
    assert_eq!(append(&log, key(1, 2), b"c"), Appended::New { lsn: 2 });
    close(log, handle);
    let (log, handle, seen) = open(dir.path());
    assert_eq!(append(&log, key(1, 2), b"c"), Appended::Duplicate);
    assert_eq!(append(&log, key(1, 1), b"b"), Appended::New { lsn: 3 });
    assert_eq!(log.metrics().duplicates.load(std::sync::atomic::Ordering::Relaxed), 1);
    close(log, handle);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn a_torn_write_at_the_tail_is_truncated_on_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (log, handle, _) = open(dir.path());
    for seq in 0..5 {
        append(&log, key(1, seq), &[7; 50]);
    }
    close(log, handle);
    let segments = segment_files(dir.path());
    let last = segments.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    // A crash mid-append: the last record loses its final 20 bytes, and garbage follows nothing.
    let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    file.set_len(len - 20).unwrap();
    drop(file);

    let (log, handle, seen) = open(dir.path());
    // The torn record (seq 4) was never acked; its retry is stored as new under the reused LSN.
    assert_eq!(append(&log, key(1, 4), &[7; 50]), Appended::New { lsn: 5 });
    close(log, handle);
    assert_eq!(seen.lock().unwrap().iter().map(|r| r.lsn).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    let (log, handle, seen) = open(dir.path());
    close(log, handle);
    assert_eq!(seen.lock().unwrap().len(), 5, "the repaired log replays cleanly");
}

#[test]
fn corruption_before_the_tail_is_an_error_not_a_silent_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let (log, handle, _) = open(dir.path());
    for seq in 0..200 {
        append(&log, key(1, seq), &[1; 100]);
    }
    close(log, handle);
    let segments = segment_files(dir.path());
    let mut bytes = std::fs::read(&segments[0]).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&segments[0], bytes).unwrap();
    let err = DurableLog::open(config(dir.path()), Box::new(|_| true)).err().expect("corruption is reported");
    let text = err.to_string();
    assert!(text.contains("corrupt") && text.contains("not a torn write"), "{text}");
}

#[test]
fn released_segments_are_deleted_and_the_rest_replays() {
    let dir = tempfile::tempdir().unwrap();
    let (log, handle, _) = open(dir.path());
    for seq in 0..200 {
        append(&log, key(1, seq), &[1; 100]);
    }
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    log.release_through(150);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(dir.path()).unwrap().count() == before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    close(log, handle);
    let (log, handle, seen) = open(dir.path());
    let first = log.first_lsn();
    close(log, handle);
    assert!(first > 1 && first <= 151, "replay starts after released segments, at {first}");
    let lsns: Vec<u64> = seen.lock().unwrap().iter().map(|r| r.lsn).collect();
    assert_eq!(lsns, (first..=200).collect::<Vec<_>>(), "everything unreleased is kept");
}

#[test]
fn a_full_queue_is_refused_not_blocked() {
    let dir = tempfile::tempdir().unwrap();
    // The consumer blocks forever, so the writer stalls and the queue fills.
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let consumer_gate = gate.clone();
    let mut cfg = config(dir.path());
    cfg.queue_depth = 4;
    let (log, _handle) = DurableLog::open(
        cfg,
        Box::new(move |_| {
            drop(consumer_gate.lock().unwrap());
            true
        }),
    )
    .unwrap();
    let mut refused = false;
    for seq in 0..100 {
        if log.try_append(key(1, seq), Bytes::from_static(b"x")).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "a saturated log must answer Full");
    drop(held);
}

fn unix_ms_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn every_record_keeps_when_it_was_stored_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let before = unix_ms_now();
    let (log, handle, seen) = open(dir.path());
    append(&log, key(1, 0), b"first");
    close(log, handle);
    let after = unix_ms_now();
    let live = seen.lock().unwrap()[0].appended_ms.expect("a new record has its append time");
    assert!((before..=after).contains(&live), "{before} <= {live} <= {after}");

    std::thread::sleep(Duration::from_millis(20));
    let (log, handle, seen) = open(dir.path());
    append(&log, key(1, 1), b"second");
    close(log, handle);
    let replayed = seen.lock().unwrap();
    assert_eq!(replayed[0].appended_ms, Some(live), "a replay gives the time of the append, not of the replay");
    assert!(replayed[1].appended_ms.unwrap() > live);
}

/// A segment of the first format (no append times), as that build wrote it.
fn first_format_segment(path: &std::path::Path, records: &[(u64, DedupKey, &[u8])]) {
    let mut out = b"TWLOG001".to_vec();
    for (lsn, key, payload) in records {
        let mut body = lsn.to_le_bytes().to_vec();
        body.extend_from_slice(&key.workout_id.0);
        body.extend_from_slice(&key.seq.to_le_bytes());
        body.extend_from_slice(payload);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_log_of_the_first_format_replays_and_new_records_go_to_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join(format!("{:020}.twlog", 1));
    first_format_segment(&old, &[(1, key(1, 0), b"old one"), (2, key(1, 1), b"old two")]);
    let (log, handle, seen) = open(dir.path());
    assert_eq!(append(&log, key(1, 1), b"old two"), Appended::Duplicate, "its dedup keys are known");
    assert_eq!(append(&log, key(1, 2), b"new"), Appended::New { lsn: 3 });
    close(log, handle);
    let records = seen.lock().unwrap();
    let read: Vec<_> = records.iter().map(|r| (r.lsn, r.appended_ms.is_some(), &r.payload[..])).collect();
    assert_eq!(read, vec![(1, false, &b"old one"[..]), (2, false, &b"old two"[..]), (3, true, &b"new"[..])]);
    assert_eq!(segment_files(dir.path()).len(), 2, "the old segment is not appended to");

    let (log, handle, seen) = open(dir.path());
    close(log, handle);
    assert_eq!(seen.lock().unwrap().len(), 3, "both formats replay after another restart");
}

/// A filesystem that fills up: the append that hits it fails, and so does every one after it
/// (what is on disk is uncertain), with the reason published for `/healthcheck`. Needs a small
/// tmpfs, which only root can mount; skipped otherwise.
#[test]
fn a_full_disk_latches_the_writer_and_publishes_why() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a small tmpfs here (not root?): full-disk case skipped");
        return;
    }
    let outcome = std::panic::catch_unwind(|| {
        let (log, handle, _) = open(dir.path());
        assert!(log.metrics().failure.lock().unwrap().is_none());
        let payload = Bytes::from(vec![7u8; 1000]);
        let failed_at = (0..200u64).find(|seq| {
            let reply = log.try_append(key(1, *seq), payload.clone()).unwrap().blocking_recv().unwrap();
            reply.is_err()
        });
        assert!(failed_at.is_some(), "64 KiB cannot hold 200 KB");
        let reason = log.metrics().failure.lock().unwrap().clone().expect("the failure is published");
        assert!(reason.contains("No space left") || reason.contains("os error 28"), "{reason}");
        // Nothing more is accepted, even what would fit.
        let later = log.try_append(key(2, 0), Bytes::from_static(b"x")).unwrap().blocking_recv().unwrap();
        assert!(matches!(later, Err(trackwire_ingest::log::LogError::Failed(_))), "{later:?}");
        drop(log);
        let _ = handle.join();
    });
    let _ = std::process::Command::new("umount").arg(dir.path()).status();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn the_indexes_forget_a_workout_once_every_record_of_it_has_been_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (log, handle, _) = open(dir.path());
    // 20 workouts of 10 records each, four records to a segment, then one more workout.
    for workout in 1..=20 {
        for seq in 0..10 {
            append(&log, key(workout, seq), &[workout; 900]);
        }
    }
    append(&log, key(21, 0), &[21; 900]);
    let indexed = || log.metrics().indexed_workouts.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(indexed(), 21);

    // Everything up to workout 20's last record is delivered: the segments wholly before it go.
    log.release_through(200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while indexed() > 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(indexed() <= 2, "only workouts with a record still in the log stay indexed: {}", indexed());
    // A retry is recognised while its workout is in the log; a forgotten one is stored anew.
    assert_eq!(append(&log, key(21, 0), &[21; 900]), Appended::Duplicate);
    assert!(matches!(append(&log, key(1, 0), &[1; 900]), Appended::New { .. }));
    close(log, handle);
}

#[test]
fn a_deleted_workouts_seqs_are_new_data_again_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (log, handle, _) = open(dir.path());
    for seq in 0..3 {
        append(&log, key(1, seq), b"deleted");
    }
    append(&log, key(2, 0), b"another workout");
    assert_eq!(append(&log, key(1, 0), b"deleted"), Appended::Duplicate);
    // Its owner deletes workout 1 through lsn 4, then imports the same file again.
    log.forget_seqs(WorkoutId([1; 16]));
    assert_eq!(append(&log, key(1, 0), b"imported again"), Appended::New { lsn: 5 });
    assert_eq!(append(&log, key(1, 0), b"imported again"), Appended::Duplicate, "a retry of the new data");
    assert_eq!(append(&log, key(2, 0), b"another workout"), Appended::Duplicate, "others keep theirs");
    close(log, handle);

    // After a restart, told of the deletion: the seqs stored before it are forgotten again, those
    // stored after it are not.
    let remembered = trackwire_ingest::log::Remembered {
        deleted_through: std::collections::HashMap::from([(WorkoutId([1; 16]), 4)]),
        ..Default::default()
    };
    let (log, handle) = DurableLog::open_remembering(config(dir.path()), Box::new(|_| true), remembered).unwrap();
    assert_eq!(append(&log, key(1, 0), b"imported again"), Appended::Duplicate);
    assert_eq!(append(&log, key(1, 1), b"imported again"), Appended::New { lsn: 6 });
    assert_eq!(append(&log, key(2, 0), b"another workout"), Appended::Duplicate);
    close(log, handle);
}

#[test]
fn an_erased_users_seqs_are_new_data_again_also_after_a_restart() {
    let batch = |user: &str, workout: u8, seq: u64| {
        trackwire_codec::encode_batch(&trackwire_codec::BatchData {
            device_id: "watch".into(),
            user_id: user.into(),
            workout_id: WorkoutId([workout; 16]),
            seq,
            ..Default::default()
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let (log, handle, _) = open(dir.path());
    for seq in 0..3 {
        append(&log, key(1, seq), &batch("erased", 1, seq));
    }
    append(&log, key(2, 0), &batch("kept", 2, 0));
    // The user is erased through lsn 4; they import the same file again, then the log restarts.
    log.forget_seqs(WorkoutId([1; 16]));
    assert_eq!(append(&log, key(1, 0), &batch("erased", 1, 0)), Appended::New { lsn: 5 });
    close(log, handle);

    let remembered = trackwire_ingest::log::Remembered {
        erased_through: std::collections::HashMap::from([("erased".into(), 4)]),
        ..Default::default()
    };
    let (log, handle) = DurableLog::open_remembering(config(dir.path()), Box::new(|_| true), remembered).unwrap();
    assert_eq!(append(&log, key(1, 0), &batch("erased", 1, 0)), Appended::Duplicate, "stored after the erasure");
    assert_eq!(append(&log, key(1, 1), &batch("erased", 1, 1)), Appended::New { lsn: 6 }, "stored before it");
    assert_eq!(append(&log, key(2, 0), &batch("kept", 2, 0)), Appended::Duplicate, "another user keeps theirs");
    close(log, handle);
}
