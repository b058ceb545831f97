//! What a sink could not encode (a bug, not bad input), shared by the sinks that encode early.

use crate::SinkError;

/// The first output a sink no longer holds because encoding failed. Its checkpoint stays below
/// it, and `flush` reports it until a restart replays the outputs from the log: nothing acked is
/// given up, even on a bug.
#[derive(Debug, Default)]
pub(crate) struct Unheld(Option<(u64, String)>);

impl Unheld {
    /// Records that outputs from `first_lsn` on are not held (the earliest such LSN wins), and
    /// returns the error `flush` reports.
    pub(crate) fn record(&mut self, first_lsn: u64, cause: &SinkError) -> SinkError {
        let first_lsn = self.0.as_ref().map_or(first_lsn, |(held, _)| (*held).min(first_lsn));
        let error = format!("encoding outputs from LSN {first_lsn} failed ({cause}); restart to replay them");
        self.0 = Some((first_lsn, error.clone()));
        SinkError::Encoding(error)
    }

    /// The first LSN not held, if any.
    pub(crate) fn first_lsn(&self) -> Option<u64> {
        self.0.as_ref().map(|(lsn, _)| *lsn)
    }

    /// The error to report from `flush`, while anything is not held.
    pub(crate) fn check(&self) -> Result<(), SinkError> {
        match &self.0 {
            Some((_, error)) => Err(SinkError::Encoding(error.clone())),
            None => Ok(()),
        }
    }
}
