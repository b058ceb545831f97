//! The log writer thread: replay, then group commit, segment rolling and retention.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use trackwire_codec::WorkoutId;

use super::record::{Format, MAGIC, encode_record};
use super::segment::{self, SegmentMeta};
use super::{
    AppendRequest, Appended, DedupIndex, Forward, LogConfig, LogEntry, LogError, LogRecord, OwnerIndex, PastOwners,
    Remembered, Shared,
};

/// How often an idle writer wakes up to apply retention.
const IDLE_TICK: Duration = Duration::from_millis(200);

pub(crate) struct Writer {
    config: LogConfig,
    rx: Receiver<AppendRequest>,
    forward: Forward,
    shared: Arc<Shared>,
    dedup: DedupIndex,
    owners: OwnerIndex,
    past_owners: Option<Arc<dyn PastOwners>>,
    /// The LSN of each workout's newest record: once the segment holding it is deleted, nothing
    /// of the workout is left in the log, and the indexes let it go.
    newest_record: HashMap<WorkoutId, u64>,
    /// Closed segments, oldest first, then the active one last.
    segments: Vec<SegmentMeta>,
    active: File,
    next_lsn: u64,
    /// Set after a failed write or fsync: what is on disk is unknown, so nothing more is acked.
    failed: Option<String>,
    /// True while the retained segments are at the cap (appends refused).
    capped: bool,
}

impl Writer {
    /// Verifies the existing segments (repairing a torn tail) and opens the active one.
    pub fn open(
        config: LogConfig,
        rx: Receiver<AppendRequest>,
        forward: Forward,
        shared: Arc<Shared>,
        remembered: Remembered,
    ) -> Result<Self, LogError> {
        let Remembered { past_owners, deleted_through, erased_through } = remembered;
        let listed = segment::list_segments(&config.dir)?;
        let mut dedup = DedupIndex::default();
        let mut owners = OwnerIndex::default();
        let mut newest_record = HashMap::new();
        // Seqs of deleted workouts (or erased users' workouts) stored up to the removal, unless
        // stored again after it.
        let mut deleted_seqs = HashSet::new();
        let mut segments = Vec::new();
        let mut next_lsn = listed.first().map_or(1, |(first, _)| *first);
        for (i, (first_lsn, path)) in listed.iter().enumerate() {
            if *first_lsn != next_lsn {
                return Err(LogError::Corrupt {
                    segment: path.clone(),
                    offset: 0,
                    reason: format!(
                        "segment starts at lsn {first_lsn} but the previous one ended before {next_lsn}: a segment is missing"
                    ),
                });
            }
            let meta = segment::scan_segment(path, *first_lsn, i + 1 == listed.len(), &mut dedup, |record| {
                owners.learn(&record.payload);
                newest_record.insert(record.key.workout_id, record.lsn);
                let deleted = deleted_through.get(&record.key.workout_id).copied();
                let erased =
                    owners.owner(&record.key.workout_id).and_then(|owner| erased_through.get(&*owner.user_id).copied());
                match deleted.max(erased) {
                    Some(through) if record.lsn <= through => deleted_seqs.insert(record.key),
                    Some(_) => deleted_seqs.remove(&record.key),
                    None => false,
                };
                Ok(())
            })?;
            next_lsn = meta.next_lsn;
            segments.push(meta);
        }
        for key in deleted_seqs {
            dedup.remove(key);
        }
        let active = match segments.last() {
            Some(last) if last.format == Format::V2 => segment::open_for_append(&last.path)?,
            // No segment yet, or the last is of the first format: new records start a segment of
            // today's format (an empty old one stays as it is, released like any other).
            _ => {
                let path = segment::segment_path(&config.dir, next_lsn);
                if segments.last().is_some_and(|last| last.first_lsn == next_lsn) {
                    segments.pop();
                }
                let file = segment::write_new_segment_file(&path)?;
                segments.push(SegmentMeta {
                    path,
                    first_lsn: next_lsn,
                    next_lsn,
                    len: MAGIC.len() as u64,
                    format: Format::V2,
                });
                file
            }
        };
        shared.first_lsn.store(segments.first().map_or(next_lsn, |s| s.first_lsn), Ordering::Relaxed);
        let metrics = &shared.metrics;
        metrics.durable_lsn.store(next_lsn - 1, Ordering::Relaxed);
        metrics.segments.store(segments.len() as u64, Ordering::Relaxed);
        metrics.bytes_on_disk.store(segments.iter().map(|s| s.len).sum(), Ordering::Relaxed);
        metrics.indexed_workouts.store(newest_record.len() as u64, Ordering::Relaxed);
        tracing::info!(dir = %config.dir.display(), segments = segments.len(), next_lsn, workouts = dedup.workouts(), "log opened");
        Ok(Writer {
            config,
            rx,
            forward,
            shared,
            dedup,
            owners,
            past_owners,
            newest_record,
            segments,
            active,
            next_lsn,
            failed: None,
            capped: false,
        })
    }

    pub fn run(mut self) -> Result<(), LogError> {
        self.replay()?;
        let mut group: Vec<AppendRequest> = Vec::new();
        let mut buf: Vec<u8> = Vec::with_capacity(self.config.group_commit_bytes + 64 * 1024);
        loop {
            let first = match self.rx.recv_timeout(IDLE_TICK) {
                Ok(req) => req,
                Err(RecvTimeoutError::Timeout) => {
                    self.apply_retention();
                    self.update_cap();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut group_bytes = first.payload.len();
            group.push(first);
            // Everything that queued up while the previous fsync ran joins this commit.
            while group_bytes < self.config.group_commit_bytes {
                match self.rx.try_recv() {
                    Ok(req) => {
                        group_bytes += req.payload.len();
                        group.push(req);
                    }
                    Err(_) => break,
                }
            }
            self.commit(&mut group, &mut buf);
            self.apply_retention();
            self.update_cap();
        }
        tracing::info!(durable_lsn = self.next_lsn - 1, "log writer drained and stopped");
        Ok(())
    }

    /// Hands every retained record to the pipeline, oldest first.
    fn replay(&mut self) -> Result<(), LogError> {
        let metrics = &self.shared.metrics;
        let forward = &mut self.forward;
        let mut scratch = DedupIndex::default();
        for meta in &self.segments {
            segment::scan_segment(&meta.path, meta.first_lsn, false, &mut scratch, |record| {
                metrics.replayed_records.fetch_add(1, Ordering::Relaxed);
                if forward(LogEntry::Record(record)) { Ok(()) } else { Err(LogError::Closed) }
            })?;
        }
        metrics.replay_done.store(true, Ordering::Release);
        tracing::info!(records = metrics.replayed_records.load(Ordering::Relaxed), "log replay handed to the pipeline");
        Ok(())
    }

    fn commit(&mut self, group: &mut Vec<AppendRequest>, buf: &mut Vec<u8>) {
        if let Some(reason) = &self.failed {
            for req in group.drain(..) {
                let _ = req.reply.send(Err(LogError::Failed(reason.clone())));
            }
            return;
        }
        buf.clear();
        // One time for the whole commit: when these records became the log's.
        let appended_ms = unix_ms_now();
        self.forget_seqs_asked();
        let mut appended: Vec<Outcome> = Vec::with_capacity(group.len());
        let unknown_owners = self.look_up_past_owners(group);
        for req in group.iter() {
            if let Some(reason) = unknown_owners.get(&req.key.workout_id) {
                appended.push(Outcome::OwnerUnknown(reason.clone()));
                continue;
            }
            // Ownership before dedup: someone else's copy of a stored seq is not a retry.
            if req.owner.as_ref().is_some_and(|owner| !self.owners.claim(req.key.workout_id, owner)) {
                appended.push(Outcome::NotOwner);
                continue;
            }
            if !self.dedup.insert(req.key) {
                appended.push(Outcome::Duplicate);
                continue;
            }
            if let Err(err) = self.roll_if_full(buf, req.payload.len()) {
                self.fail(err.to_string());
                break;
            }
            let lsn = self.next_lsn;
            self.next_lsn += 1;
            encode_record(buf, lsn, appended_ms, req.key, &req.payload);
            self.newest_record.insert(req.key.workout_id, lsn);
            appended.push(Outcome::New(LogRecord {
                lsn,
                key: req.key,
                payload: req.payload.clone(),
                appended_ms: Some(appended_ms),
                trace_id: None,
            }));
        }
        if self.failed.is_none()
            && let Err(err) = self.write_and_sync(buf)
        {
            self.fail(err.to_string());
        }
        if let Some(reason) = self.failed.clone() {
            for (req, outcome) in
                group.drain(..).zip(appended.into_iter().chain(std::iter::repeat_with(|| Outcome::Duplicate)))
            {
                if matches!(outcome, Outcome::New(_)) {
                    self.dedup.remove(req.key);
                }
                let _ = req.reply.send(Err(LogError::Failed(reason.clone())));
            }
            return;
        }
        let metrics = &self.shared.metrics;
        metrics.durable_lsn.store(self.next_lsn - 1, Ordering::Release);
        metrics.indexed_workouts.store(self.newest_record.len() as u64, Ordering::Relaxed);
        for (req, outcome) in group.drain(..).zip(appended) {
            match outcome {
                Outcome::New(record) => {
                    metrics.records_appended.fetch_add(1, Ordering::Relaxed);
                    let _ = req.reply.send(Ok(Appended::New { lsn: record.lsn }));
                    // Blocks while the pipeline is saturated: the queue then fills and ingest
                    // answers 503, which is the backpressure we want.
                    if !(self.forward)(LogEntry::Record(record)) {
                        tracing::error!("pipeline stopped while the log was still running");
                    }
                }
                Outcome::Duplicate => {
                    metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                    let _ = req.reply.send(Ok(Appended::Duplicate));
                }
                Outcome::NotOwner => {
                    let _ = req.reply.send(Err(LogError::OwnedByAnother(req.key.workout_id)));
                }
                Outcome::OwnerUnknown(reason) => {
                    let _ = req.reply.send(Err(LogError::Unavailable(format!(
                        "the owner of workout {} could not be looked up ({reason})",
                        req.key.workout_id
                    ))));
                }
            }
        }
    }

    /// Teaches the owner index the owners on record of workouts it holds no batch of (their
    /// batches have left the log), before anyone may bind them. Returns the workouts whose
    /// record could not be read: their batches are refused for a retry.
    fn look_up_past_owners(&mut self, group: &[AppendRequest]) -> HashMap<WorkoutId, String> {
        let mut unknown = HashMap::new();
        let Some(past) = &self.past_owners else { return unknown };
        for req in group {
            let workout_id = req.key.workout_id;
            if req.owner.is_none() || self.owners.knows(&workout_id) || unknown.contains_key(&workout_id) {
                continue;
            }
            match past.owner_of(&workout_id) {
                Ok(Some(owner)) => self.owners.remember(workout_id, owner),
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(%workout_id, %reason, "could not look up a workout's owner; refusing its batch for a retry");
                    unknown.insert(workout_id, reason);
                }
            }
        }
        unknown
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> Result<(), LogError> {
        if buf.is_empty() {
            return Ok(());
        }
        let path = &self.segments.last().expect("an active segment").path;
        self.active.write_all(buf).map_err(|e| LogError::io(format!("appending to {}", path.display()), e))?;
        self.active.sync_data().map_err(|e| LogError::io(format!("fsync of {}", path.display()), e))?;
        let metrics = &self.shared.metrics;
        metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
        metrics.bytes_appended.fetch_add(buf.len() as u64, Ordering::Relaxed);
        metrics.bytes_on_disk.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let active = self.segments.last_mut().expect("an active segment");
        active.len += buf.len() as u64;
        active.next_lsn = self.next_lsn;
        Ok(())
    }

    /// Starts a new segment when the next record would overflow the active one (writing and
    /// syncing what `buf` holds for the old segment first).
    fn roll_if_full(&mut self, buf: &mut Vec<u8>, payload_len: usize) -> Result<(), LogError> {
        let active = self.segments.last().expect("an active segment");
        let would_be = active.len + buf.len() as u64 + (payload_len + 40) as u64;
        if would_be <= self.config.segment_bytes || active.len + buf.len() as u64 == MAGIC.len() as u64 {
            return Ok(());
        }
        self.write_and_sync(buf)?;
        buf.clear();
        let path = segment::segment_path(&self.config.dir, self.next_lsn);
        self.active = segment::write_new_segment_file(&path)?;
        self.segments.push(SegmentMeta {
            path,
            first_lsn: self.next_lsn,
            next_lsn: self.next_lsn,
            len: MAGIC.len() as u64,
            format: Format::V2,
        });
        let metrics = &self.shared.metrics;
        metrics.segments.store(self.segments.len() as u64, Ordering::Relaxed);
        metrics.bytes_on_disk.fetch_add(MAGIC.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes closed segments that every consumer has released.
    /// Tells appenders whether the retained segments are at the cap (see `LogConfig`).
    fn update_cap(&mut self) {
        let capped = self.shared.metrics.bytes_on_disk.load(Ordering::Relaxed) >= self.config.max_retained_bytes;
        if capped != self.capped {
            if capped {
                tracing::warn!(
                    cap = self.config.max_retained_bytes,
                    "log at its retained-bytes cap: ingest pushes back until the sinks catch up"
                );
            } else {
                tracing::info!("log below its retained-bytes cap again: ingest resumes");
            }
            self.capped = capped;
            self.shared.metrics.at_cap.store(capped, Ordering::Relaxed);
        }
    }

    fn apply_retention(&mut self) {
        let released = self.shared.release_through.load(Ordering::Relaxed);
        let mut deleted = false;
        while self.segments.len() > 1
            && self.segments[0].next_lsn > self.segments[0].first_lsn
            && self.segments[0].next_lsn - 1 <= released
        {
            let old = self.segments.remove(0);
            match std::fs::remove_file(&old.path) {
                Ok(()) => {
                    deleted = true;
                    self.shared.metrics.bytes_on_disk.fetch_sub(old.len, Ordering::Relaxed);
                    tracing::debug!(segment = %old.path.display(), "segment released by every sink; deleted");
                }
                Err(err) => {
                    tracing::warn!(segment = %old.path.display(), %err, "could not delete a released log segment; will retry");
                    self.segments.insert(0, old);
                    break;
                }
            }
        }
        if deleted {
            self.forget_deleted_workouts();
            self.shared.metrics.segments.store(self.segments.len() as u64, Ordering::Relaxed);
            if let Err(err) = segment::sync_dir(&self.config.dir) {
                tracing::warn!(%err, "could not sync the log directory after retention");
            }
        }
    }

    /// Forgets the stored seqs of the workouts [`super::DurableLog::forget_seqs`] named. Asked
    /// after their records were durable, so those are all in the index by now.
    fn forget_seqs_asked(&mut self) {
        let asked = std::mem::take(&mut *self.shared.forget_seqs.lock().unwrap_or_else(|p| p.into_inner()));
        for workout_id in asked {
            self.dedup.forget(&workout_id);
        }
    }

    /// Drops what the indexes hold about workouts with no record left in the log, so they grow
    /// with what the log retains rather than with every workout since the start. A retry of a
    /// forgotten batch is stored again (the sinks and the pipeline know they hold it); the owner
    /// of a forgotten workout is asked of `past_owners`, so without one owners are kept.
    fn forget_deleted_workouts(&mut self) {
        let kept_from = self.segments.first().map_or(self.next_lsn, |s| s.first_lsn);
        let forget_owners = self.past_owners.is_some();
        let (dedup, owners) = (&mut self.dedup, &mut self.owners);
        self.newest_record.retain(|workout_id, newest| {
            let kept = *newest >= kept_from;
            if !kept {
                dedup.forget(workout_id);
                if forget_owners {
                    owners.forget(workout_id);
                }
            }
            kept
        });
        self.shared.metrics.indexed_workouts.store(self.newest_record.len() as u64, Ordering::Relaxed);
    }

    fn fail(&mut self, reason: String) {
        tracing::error!(%reason, "log write failed: refusing further appends (what is on disk is uncertain)");
        *self.shared.metrics.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
        self.failed = Some(reason);
    }
}

/// What a commit did with one append.
enum Outcome {
    New(LogRecord),
    /// A retry of a stored batch.
    Duplicate,
    /// Refused: the workout belongs to someone else.
    NotOwner,
    /// Refused for a retry: the record of who owns the workout could not be read.
    OwnerUnknown(String),
}

pub(crate) fn unix_ms_now() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
