//! The settler: a table's background thread that does every merge. Each round it compacts the
//! small files of live partitions (the flushes of the last minutes) into files of the target
//! size, then merges settled partitions (hours no live workout writes to any more) into a few
//! large files. A merge takes seconds (a busy hour's small files) to minutes (a settled hour:
//! gigabytes); on the sink's own thread it held back every output behind it for as long, and
//! through the shards' full queues every ack. So merges run beside the sink, on their own
//! handle of the table, and commit like a second writer (a commit that changes no rows; a
//! conflict with the sink or an erasure drops the attempt).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::access::{Exclusive, TableAccess};
use super::spec::{LakeConfig, TableSpec};
use super::store::LakeLocation;
use crate::SinkError;

/// Bounds of how often the settler looks for small files to compact (each look reads the log's
/// file list): as often as the sink commits files by age, within these.
const COMPACTION_EVERY_AT_LEAST: Duration = Duration::from_secs(1);
const COMPACTION_EVERY_AT_MOST: Duration = Duration::from_secs(60);

/// Stops and joins the thread when dropped (a merge under way stops at its next batch; its
/// uncommitted files are left for vacuum).
pub(super) struct Settler {
    stop: Arc<AtomicBool>,
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Settler {
    /// Starts the settler of table `T`, unless `config.settle_every` is zero. It looks every
    /// `settle_every`, or as often as the sink commits by age if that is sooner.
    pub(super) fn spawn<T: TableSpec>(
        location: LakeLocation,
        config: LakeConfig,
        source: Option<u32>,
        exclusive: Arc<Exclusive>,
    ) -> Option<Settler> {
        if config.settle_every.is_zero() {
            return None;
        }
        let every =
            config.settle_every.min(config.max_file_age.clamp(COMPACTION_EVERY_AT_LEAST, COMPACTION_EVERY_AT_MOST));
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, woken) = crossbeam_channel::bounded::<()>(0);
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("settle-{}", T::NAME))
            .spawn(move || {
                // A panic in a merge (a bug) must not end settling for the life of the process:
                // it is logged, the table handle dropped, and a fresh one tries again next round.
                let mut access = None;
                while let Err(RecvTimeoutError::Timeout) = woken.recv_timeout(every) {
                    if access.is_none() {
                        match TableAccess::<T>::new(location.clone(), config.clone(), source) {
                            Ok(opened) => access = Some(opened.settler_of(stopped.clone(), exclusive.clone())),
                            Err(err) => {
                                tracing::warn!(table = T::NAME, error = %err, "lake settler could not open the table; retried later");
                                continue;
                            }
                        }
                    }
                    let Some(table) = access.as_mut() else { continue };
                    let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| settle_round(table, &stopped)));
                    if round.is_err() {
                        tracing::error!(table = T::NAME, "lake settle panicked; the table is reopened and settling retried next round");
                        access = None;
                    }
                }
            });
        match thread {
            Ok(thread) => Some(Settler { stop, wake: Some(wake), thread: Some(thread) }),
            Err(err) => {
                tracing::warn!(table = T::NAME, error = %err, "lake settler thread not started; settled partitions stay as they are");
                None
            }
        }
    }
}

/// Compacts partitions until none has too many small files, then settles partitions until none
/// is left to settle; each stops early when the process stops or a merge fails.
fn settle_round<T: TableSpec>(access: &mut TableAccess<T>, stopped: &AtomicBool) {
    merge_while(access, stopped, "compaction", TableAccess::compact_one);
    merge_while(access, stopped, "settle", |access| access.settle_one(chrono::Utc::now().timestamp_millis()));
}

/// Runs `merge_one` until it finds nothing to merge. Each merge that commits leaves fewer files,
/// so this ends.
fn merge_while<T: TableSpec>(
    access: &mut TableAccess<T>,
    stopped: &AtomicBool,
    what: &str,
    mut merge_one: impl FnMut(&mut TableAccess<T>) -> Result<bool, SinkError>,
) {
    while !stopped.load(Ordering::Acquire) {
        match merge_one(access) {
            Ok(true) => continue,
            Ok(false) => break,
            Err(err) => {
                if !stopped.load(Ordering::Acquire) {
                    tracing::warn!(table = T::NAME, error = %err, "lake {what} failed; retried later");
                }
                break;
            }
        }
    }
}

impl Drop for Settler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
