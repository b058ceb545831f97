use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use trackwire_codec::{DecodeError, DecodeLimits, WorkoutId, decode_batch};

use crate::histogram::LatencyHistogram;
use crate::log::{Appended, DedupKey, DurableLog, LogError, TryAppendError, WorkoutOwner};
use crate::owner_registry::AskRegistry;
use crate::{ContentEncoding, DeviceToken, IngestError, TokenAuth, decompress_capped};

/// Limits and credentials of the ingest front door.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub tokens: Vec<DeviceToken>,
    /// Largest request body accepted as sent (compressed or not).
    pub max_body_bytes: usize,
    /// Largest body accepted after decompression (and a compressed body expands no further than
    /// the largest batch `limits` allow, see [`IngestConfig::decompressed_cap`]).
    pub max_decompressed_bytes: usize,
    pub limits: DecodeLimits,
    /// The instants a sample or event may carry.
    pub time_bounds: crate::TimeBounds,
}

impl IngestConfig {
    /// How far a compressed body may expand: no further than the largest batch the limits allow
    /// (about 2.5 MB with the defaults), whatever `max_decompressed_bytes` says, so a bomb of a
    /// few kilobytes costs at most that much.
    pub fn decompressed_cap(&self) -> usize {
        self.max_decompressed_bytes.min(self.limits.largest_batch_bytes())
    }
}

/// Compressed bodies larger than this are expanded on a blocking thread; smaller ones expand to
/// at most [`IngestConfig::decompressed_cap`] within a millisecond or two, cheaper than the handoff.
const EXPAND_INLINE_BELOW_BYTES: usize = 16 << 10;

/// What the device is told once its batch is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub workout_id: WorkoutId,
    pub acked_seq: u64,
    /// True when this exact batch was already stored (a retry): acked again, stored once.
    pub duplicate: bool,
    pub samples: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    pub batches_acked: AtomicU64,
    pub samples_acked: AtomicU64,
    pub duplicates_acked: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Authenticated QUIC connections open now.
    pub quic_connections: AtomicU64,
    /// From a batch's arrival (request start, frame read) to its durable ack, per transport.
    pub ack_latency_http: LatencyHistogram,
    pub ack_latency_quic: LatencyHistogram,
    /// From an upload's acceptance to its final status, per status (`ready`, `duplicate`,
    /// `error`), in [`UPLOAD_OUTCOMES`] order.
    pub upload_processing: [LatencyHistogram; UPLOAD_OUTCOMES.len()],
    rejects: [AtomicU64; IngestError::REASONS.len()],
}

/// The final statuses of an upload, as `upload_processing` is indexed.
pub const UPLOAD_OUTCOMES: [&str; 3] = ["ready", "duplicate", "error"];

impl IngestMetrics {
    /// `(reason, count)` for every reject reason, zeros included.
    pub fn rejects(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        IngestError::REASONS.iter().zip(&self.rejects).map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
    }

    /// Records how long an upload took to reach `outcome` (one of [`UPLOAD_OUTCOMES`]).
    pub fn observe_upload(&self, outcome: &str, elapsed: Duration) {
        if let Some(i) = UPLOAD_OUTCOMES.iter().position(|o| *o == outcome) {
            self.upload_processing[i].observe(elapsed);
        }
    }

    /// Counts a refused batch under its reason (for a front that refuses before calling the
    /// ingestor, as the HTTP route does for a missing token).
    pub fn reject(&self, err: &IngestError) {
        if let Some(i) = IngestError::REASONS.iter().position(|r| *r == err.reason()) {
            self.rejects[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The transport-agnostic ingest service.
pub struct Ingestor {
    config: IngestConfig,
    auth: TokenAuth,
    log: DurableLog,
    /// Where ownership is decided when the log cannot (gateways of a shared raw topic).
    owners: Option<AskRegistry>,
    metrics: IngestMetrics,
}

impl Ingestor {
    pub fn new(config: IngestConfig, log: DurableLog) -> Self {
        Ingestor { auth: TokenAuth::new(&config.tokens), config, log, owners: None, metrics: IngestMetrics::default() }
    }

    /// Checks every batch's workout owner with `registry` before appending (see
    /// [`crate::OwnerRegistry`]).
    pub fn with_owner_registry(self, registry: std::sync::Arc<dyn crate::OwnerRegistry>) -> Self {
        Ingestor { owners: Some(AskRegistry::new(registry)), ..self }
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    pub fn log(&self) -> &DurableLog {
        &self.log
    }

    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    pub fn knows_token(&self, token: &str) -> bool {
        self.auth.binding(token).is_some()
    }

    /// The device (`"*"`: any) and user a token is bound to, or None for an unknown token.
    /// Stream transports authenticate once per connection with this.
    pub fn token_binding(&self, token: &str) -> Option<std::sync::Arc<DeviceToken>> {
        self.auth.binding(token)
    }

    /// The device tokens: the API issues and revokes per-user tokens here.
    pub fn tokens(&self) -> &TokenAuth {
        &self.auth
    }

    /// Counts a reject seen by a transport before the batch reached [`Ingestor::submit`]
    /// (a frame over the size limit, a failed handshake), so `/metrics` sees every reject.
    pub fn count_reject(&self, err: &IngestError) {
        self.metrics.reject(err);
    }

    /// For stream transports (QUIC), where the connection is already authenticated as
    /// `token_device`: verifies one uncompressed batch (decoding it once). A refusal carries the
    /// batch's key when the batch could be read, for the transport's error answer.
    pub fn verify(&self, payload: Bytes, binding: &DeviceToken) -> Result<Verified, Refused> {
        self.metrics.bytes_received.fetch_add(payload.len() as u64, Ordering::Relaxed);
        self.check(&payload, binding)
            .map(|(key, samples, owner)| Verified { key, samples, owner, payload })
            .inspect_err(|refused| self.metrics.reject(&refused.error))
    }

    /// Queues a verified batch on the log, **waiting** while the log is saturated instead of
    /// refusing (the caller stops reading, so flow control reaches the device). Batches submitted
    /// in order are durable, and so acked, in that order. The returned future resolves once the
    /// batch is durable.
    pub async fn submit(
        &self,
        batch: Verified,
    ) -> Result<impl Future<Output = Result<Accepted, IngestError>> + Send + 'static + use<>, IngestError> {
        let Verified { key, samples, owner, payload } = batch;
        if let Some(owners) = &self.owners {
            owners.check(key.workout_id, &owner).await.inspect_err(|err| self.metrics.reject(err))?;
        }
        // Saturation is brief (one group commit, or a shard catching up); poll with a short
        // backoff rather than add a second queue in front of the log.
        let mut backoff = Duration::from_micros(200);
        let pending = loop {
            match self.log.try_append_as(key, payload.clone(), None, Some(owner.clone())) {
                Ok(rx) => break rx,
                Err(TryAppendError::Full) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(20));
                }
                Err(TryAppendError::Closed) => {
                    self.metrics.reject(&IngestError::ShuttingDown);
                    return Err(IngestError::ShuttingDown);
                }
            }
        };
        Ok(durable(pending, key, samples))
    }

    /// Records a stream transport's ack in the metrics (the HTTP path does it in `ingest`).
    pub fn count_ack(&self, accepted: &Accepted) {
        self.metrics.batches_acked.fetch_add(1, Ordering::Relaxed);
        if accepted.duplicate {
            self.metrics.duplicates_acked.fetch_add(1, Ordering::Relaxed);
        } else {
            self.metrics.samples_acked.fetch_add(accepted.samples as u64, Ordering::Relaxed);
        }
    }

    /// Verifies a batch and that the token's holder may send it: its dedup key and sample count.
    fn check(&self, payload: &[u8], binding: &DeviceToken) -> Result<(DedupKey, usize, WorkoutOwner), Refused> {
        let batch = decode_batch(payload, &self.config.limits).map_err(|e| Refused { error: e.into(), key: None })?;
        let key = DedupKey { workout_id: batch.workout_id(), seq: batch.seq() };
        if key.seq >= trackwire_codec::SERVER_SEQ_FLOOR {
            // Only the server writes there (its idle timeout); a device's batch would be taken
            // for one of its records.
            return Err(Refused { error: DecodeError::ReservedSeq { seq: key.seq }.into(), key: Some(key) });
        }
        if binding.device_id != "*" && binding.device_id != batch.device_id() {
            let error = IngestError::DeviceMismatch {
                token_device: binding.device_id.clone(),
                batch_device: batch.device_id().to_owned(),
            };
            return Err(Refused { error, key: Some(key) });
        }
        if let Some(user) = binding.user_id.as_deref().filter(|user| *user != batch.user_id()) {
            let error =
                IngestError::UserMismatch { token_user: user.to_owned(), batch_user: batch.user_id().to_owned() };
            return Err(Refused { error, key: Some(key) });
        }
        self.config
            .time_bounds
            .check(&batch, crate::log::unix_ms_now())
            .map_err(|error| Refused { error, key: Some(key) })?;
        Ok((key, batch.samples().len(), WorkoutOwner::of(&batch)))
    }

    /// Verifies one batch and returns once it is durable.
    pub async fn ingest(
        &self,
        body: Bytes,
        content_encoding: Option<&str>,
        bearer: Option<&str>,
    ) -> Result<Accepted, IngestError> {
        self.ingest_traced(body, content_encoding, bearer, None).await
    }

    /// [`Ingestor::ingest`] for a request with a W3C `traceparent`, which the log carries on where
    /// it can (the raw topic's record header).
    pub async fn ingest_traced(
        &self,
        body: Bytes,
        content_encoding: Option<&str>,
        bearer: Option<&str>,
        traceparent: Option<String>,
    ) -> Result<Accepted, IngestError> {
        let result = self.ingest_inner(body, content_encoding, bearer, traceparent).await;
        match &result {
            Ok(acc) => {
                self.metrics.batches_acked.fetch_add(1, Ordering::Relaxed);
                if acc.duplicate {
                    self.metrics.duplicates_acked.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.metrics.samples_acked.fetch_add(acc.samples as u64, Ordering::Relaxed);
                }
            }
            Err(err) => self.metrics.reject(err),
        }
        result
    }

    async fn ingest_inner(
        &self,
        body: Bytes,
        content_encoding: Option<&str>,
        bearer: Option<&str>,
        traceparent: Option<String>,
    ) -> Result<Accepted, IngestError> {
        let binding = self.auth.binding(bearer.ok_or(IngestError::MissingToken)?).ok_or(IngestError::UnknownToken)?;
        self.metrics.bytes_received.fetch_add(body.len() as u64, Ordering::Relaxed);
        if body.len() > self.config.max_body_bytes {
            return Err(IngestError::BodyTooLarge { size: body.len(), limit: self.config.max_body_bytes });
        }
        let encoding = ContentEncoding::parse(content_encoding)?;
        let cap = self.config.decompressed_cap();
        let expanded = if encoding != ContentEncoding::Identity && body.len() >= EXPAND_INLINE_BELOW_BYTES {
            let compressed = body.clone();
            tokio::task::spawn_blocking(move || decompress_capped(&compressed, encoding, cap))
                .await
                // Only a runtime shutting down cancels a blocking task (the expansion returns its
                // errors rather than panicking).
                .map_err(|_| IngestError::ShuttingDown)??
        } else {
            decompress_capped(&body, encoding, cap)?
        };
        let payload = match expanded {
            Some(plain) => Bytes::from(plain),
            None if body.len() > self.config.max_decompressed_bytes => {
                return Err(IngestError::DecompressedTooLarge { limit: self.config.max_decompressed_bytes });
            }
            None => body,
        };
        let (key, samples, owner) = self.check(&payload, &binding).map_err(|refused| refused.error)?;
        if let Some(owners) = &self.owners {
            owners.check(key.workout_id, &owner).await?;
        }
        let pending = self.log.try_append_as(key, payload, traceparent, Some(owner)).map_err(|e| match e {
            TryAppendError::Full => IngestError::Overloaded,
            TryAppendError::Closed => IngestError::ShuttingDown,
        })?;
        durable(pending, key, samples).await
    }
}

/// A batch that passed every check, ready for the log ([`Ingestor::verify`]).
#[derive(Debug)]
pub struct Verified {
    key: DedupKey,
    samples: usize,
    owner: WorkoutOwner,
    payload: Bytes,
}

impl Verified {
    pub fn key(&self) -> DedupKey {
        self.key
    }
}

/// A batch [`Ingestor::verify`] refused; `key` when the batch was readable.
#[derive(Debug)]
pub struct Refused {
    pub error: IngestError,
    pub key: Option<DedupKey>,
}

/// Resolves once the log has made the append durable (or found it already stored).
async fn durable(
    pending: tokio::sync::oneshot::Receiver<Result<Appended, crate::log::LogError>>,
    key: DedupKey,
    samples: usize,
) -> Result<Accepted, IngestError> {
    let outcome = pending.await.map_err(|_| IngestError::ShuttingDown)?.map_err(|e| match e {
        LogError::OwnedByAnother(workout_id) => IngestError::WorkoutOwnerMismatch { workout_id },
        other => IngestError::Storage(other.to_string()),
    })?;
    Ok(Accepted { workout_id: key.workout_id, acked_seq: key.seq, duplicate: outcome == Appended::Duplicate, samples })
}
