//! The settler: a table's background thread that merges settled partitions (hours no live
//! workout writes to any more) into a few large files. Merging a busy hour rewrites gigabytes;
//! on the sink's own thread that would hold back every output behind it for as long, so it runs
//! beside the sink, on its own handle of the table, and commits like a second writer (a commit
//! that changes no rows; a conflict with the sink or an erasure drops the attempt).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::access::{Exclusive, TableAccess};
use super::spec::{LakeConfig, TableSpec};
use super::store::LakeLocation;

/// Stops and joins the thread when dropped (a merge under way stops at its next batch; its
/// uncommitted files are left for vacuum).
pub(super) struct Settler {
    stop: Arc<AtomicBool>,
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Settler {
    /// Starts the settler of table `T`, unless `config.settle_every` is zero.
    pub(super) fn spawn<T: TableSpec>(
        location: LakeLocation,
        config: LakeConfig,
        source: Option<u32>,
        exclusive: Arc<Exclusive>,
    ) -> Option<Settler> {
        let every = config.settle_every;
        if every.is_zero() {
            return None;
        }
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

/// Settles partitions until none is left to settle, the process stops or a merge fails.
fn settle_round<T: TableSpec>(access: &mut TableAccess<T>, stopped: &AtomicBool) {
    while !stopped.load(Ordering::Acquire) {
        match access.settle_one(chrono::Utc::now().timestamp_millis()) {
            Ok(true) => continue,
            Ok(false) => break,
            Err(err) => {
                if !stopped.load(Ordering::Acquire) {
                    tracing::warn!(table = T::NAME, error = %err, "lake settle failed; retried later");
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
