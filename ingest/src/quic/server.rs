//! The QUIC server: a thin async driver around [`Ingestor::submit`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, Endpoint, Incoming, ReadExactError, RecvStream, SendStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use trackwire_codec::{AckStatus, WorkoutId, encode_ack};

use super::protocol::{ALPN, ErrorCode, FRAME_HEADER_BYTES, MAX_HELLO_BYTES, encode_frame, frame_len};
use super::{QuicConfig, QuicError, ServerIdentity, StatelessResetKey};
use crate::log::DedupKey;
use crate::{Accepted, DeviceToken, IngestError, Ingestor, Refused};

/// A bound QUIC endpoint serving the ingest protocol.
pub struct QuicServer {
    endpoint: Endpoint,
    config: QuicConfig,
}

/// What every connection task shares.
struct Shared {
    ingestor: Arc<Ingestor>,
    config: QuicConfig,
    open_connections: AtomicUsize,
}

impl QuicServer {
    /// Serves on an already bound UDP socket (tests bind port 0). Needs a Tokio runtime.
    pub fn new(
        socket: std::net::UdpSocket,
        identity: ServerIdentity,
        reset_key: &StatelessResetKey,
        config: QuicConfig,
    ) -> Result<QuicServer, QuicError> {
        let server_config = server_config(identity, &config)?;
        let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset_key.hmac_key()));
        let cid_key = reset_key.connection_id_key();
        endpoint_config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
        let endpoint = Endpoint::new(endpoint_config, Some(server_config), socket, Arc::new(quinn::TokioRuntime))
            .map_err(|e| QuicError::Io("starting the QUIC endpoint".into(), e))?;
        Ok(QuicServer { endpoint, config })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains: stops accepting connections and streams,
    /// stops reading new batches, sends every pending ack, and closes connections with
    /// `GoingAway`. Returns once every connection is gone (or the drain timeout passed), after
    /// which it holds no reference to the ingestor.
    pub async fn run(self, ingestor: Arc<Ingestor>, shutdown: impl Future<Output = ()>) {
        let shared = Arc::new(Shared { ingestor, config: self.config.clone(), open_connections: AtomicUsize::new(0) });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => {
                        connections.spawn(serve_connection(incoming, shared.clone(), stop_rx.clone()));
                    }
                    None => break,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        self.endpoint.set_server_config(None);
        let _ = stop_tx.send(true);
        let drained =
            tokio::time::timeout(self.config.drain_timeout, async { while connections.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            tracing::warn!("QUIC drain timed out; closing the remaining connections");
            connections.abort_all();
        }
        self.endpoint
            .close(ErrorCode::GoingAway.varint(), b"server shutting down: reconnect and re-send unacked batches");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

/// Decrements a connection count when a connection task ends, however it ends.
struct ConnectionSlot<'a, C: Counter>(&'a C);

trait Counter {
    fn decrement(&self);
}

impl Counter for AtomicUsize {
    fn decrement(&self) {
        self.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counter for std::sync::atomic::AtomicU64 {
    fn decrement(&self) {
        self.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<C: Counter> Drop for ConnectionSlot<'_, C> {
    fn drop(&mut self) {
        self.0.decrement();
    }
}

async fn serve_connection(incoming: Incoming, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let slot = ConnectionSlot(&shared.open_connections);
    let over_limit = shared.open_connections.fetch_add(1, Ordering::Relaxed) >= shared.config.max_connections;
    let connecting = match incoming.accept() {
        Ok(connecting) => connecting,
        Err(err) => {
            tracing::debug!(%err, "QUIC connection failed before the handshake");
            return;
        }
    };
    if over_limit {
        // Close after the handshake: a close during it reaches the client without its reason.
        if let Ok(connection) = connecting.await {
            connection.close(ErrorCode::LimitExceeded.varint(), b"too many connections: retry later");
        }
        return;
    }
    // 0.5-RTT on the server: streams (and their batches) sent as 0-RTT data are read at once.
    let (connection, handshake_done) = match connecting.into_0rtt() {
        Ok((connection, done)) => (connection, Some(done)),
        Err(connecting) => match connecting.await {
            Ok(connection) => (connection, None),
            Err(err) => {
                tracing::debug!(%err, "QUIC handshake failed");
                return;
            }
        },
    };
    // A close sent before the handshake completes reaches the client without code or reason
    // (RFC 9000 §10.2.3), so refusals wait for it (briefly).
    let close_with_reason = |code: ErrorCode, reason: Vec<u8>| {
        let connection = connection.clone();
        async move {
            if let Some(done) = handshake_done {
                let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
            }
            connection.close(code.varint(), &reason);
        }
    };
    let remote = connection.remote_address();
    let device = match tokio::time::timeout(shared.config.handshake_timeout, hello(&connection, &shared)).await {
        Ok(Ok(device)) => device,
        Ok(Err((code, reason))) => {
            tracing::info!(%remote, reason, "QUIC connection refused");
            shared.ingestor.count_reject(&IngestError::UnknownToken);
            close_with_reason(code, reason.into_bytes()).await;
            return;
        }
        Err(_) => {
            shared.ingestor.count_reject(&IngestError::MissingToken);
            close_with_reason(ErrorCode::Unauthenticated, b"no hello (bearer token) on stream 0 in time".to_vec())
                .await;
            return;
        }
    };
    tracing::debug!(%remote, device = %device.device_id, "QUIC device connected");
    let open = &shared.ingestor.metrics().quic_connections;
    open.fetch_add(1, Ordering::Relaxed);
    let _connected = ConnectionSlot(open);
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = connection.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    streams.spawn(serve_stream(send, recv, device.clone(), shared.clone(), stop.clone()));
                }
                Err(_) => break, // closed by the client, timed out, or lost
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
    while streams.join_next().await.is_some() {}
    if *stop.borrow() {
        connection.close(ErrorCode::GoingAway.varint(), b"server shutting down: reconnect and re-send unacked batches");
    }
    drop(slot);
}

/// Reads the hello on stream 0: the device the token is bound to, or the close code and reason.
async fn hello(connection: &Connection, shared: &Shared) -> Result<Arc<DeviceToken>, (ErrorCode, String)> {
    let (mut send, mut recv) =
        connection.accept_bi().await.map_err(|e| (ErrorCode::Unauthenticated, format!("no hello stream: {e}")))?;
    let token = match read_frame(&mut recv, MAX_HELLO_BYTES).await {
        Ok(Some(token)) => token,
        Ok(None) => return Err((ErrorCode::Unauthenticated, "the hello stream ended without a token".into())),
        Err(FrameError::TooLarge(e)) => return Err((ErrorCode::Unauthenticated, format!("hello: {e}"))),
        Err(err) => return Err((ErrorCode::Protocol, format!("hello: {err}"))),
    };
    let token = std::str::from_utf8(&token)
        .map_err(|_| (ErrorCode::Protocol, "the hello (bearer token) is not UTF-8".to_owned()))?;
    let device = shared.ingestor.token_binding(token).ok_or_else(|| {
        (
            ErrorCode::Unauthenticated,
            "the token is not known to this server: check the device's provisioning".to_owned(),
        )
    })?;
    send.write_all(&encode_frame(device.device_id.as_bytes()))
        .await
        .map_err(|e| (ErrorCode::Protocol, format!("cannot answer the hello: {e}")))?;
    let _ = send.finish();
    Ok(device)
}

/// How often the QUIC certificate's files are looked at for a renewal.
const CERTIFICATE_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The QUIC server configuration every Trackwire endpoint uses: TLS 1.3 with our ALPN and 0-RTT,
/// stream limits and idle timeout from `config`, migration on. Shared with the load test's
/// discard server, so its ceiling is measured on the same stack.
pub fn server_config(identity: ServerIdentity, config: &QuicConfig) -> Result<quinn::ServerConfig, QuicError> {
    // The identity's files, read again when they change: a renewed certificate is presented to
    // new connections without a restart.
    let files = crate::tls::TlsFiles {
        cert_path: identity.cert_path,
        key_path: identity.key_path,
        reload_every: CERTIFICATE_RELOAD_EVERY,
    };
    let certificate = crate::tls::ReloadingCertificate::load(files).map_err(|e| QuicError::Tls(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(certificate.provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| QuicError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(certificate));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // 0-RTT is safe here: batches are idempotent by (workout_id, seq), so a replayed batch
    // is acked again and stored once. quinn requires exactly u32::MAX to enable it.
    tls.max_early_data_size = u32::MAX;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| QuicError::Tls(e.to_string()))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    // +1: stream 0 is the hello.
    transport.max_concurrent_bidi_streams((config.max_streams_per_connection + 1).into());
    transport.max_concurrent_uni_streams(0u8.into());
    transport.max_idle_timeout(Some(
        config.idle_timeout.try_into().map_err(|_| QuicError::Config("quic idle timeout is too long".into()))?,
    ));
    server_config.transport_config(Arc::new(transport));
    // A phone moving from Wi-Fi to LTE keeps its connection and its workout streams.
    server_config.migration(true);
    Ok(server_config)
}

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    TooLarge(#[from] super::protocol::FrameTooLarge),
    #[error("the stream ended inside a frame")]
    Truncated,
    #[error("{0}")]
    Read(#[from] quinn::ReadError),
}

/// Reads one frame; None when the stream ended cleanly between frames.
pub async fn read_frame(recv: &mut RecvStream, limit: usize) -> Result<Option<Bytes>, FrameError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(ReadExactError::FinishedEarly(_)) => return Err(FrameError::Truncated),
        Err(ReadExactError::ReadError(e)) => return Err(FrameError::Read(e)),
    }
    let len = frame_len(header, limit)?;
    let mut payload = vec![0u8; len];
    match recv.read_exact(&mut payload).await {
        Ok(()) => Ok(Some(Bytes::from(payload))),
        Err(ReadExactError::FinishedEarly(_)) => Err(FrameError::Truncated),
        Err(ReadExactError::ReadError(e)) => Err(FrameError::Read(e)),
    }
}

type PendingAck = Pin<Box<dyn Future<Output = Result<Accepted, IngestError>> + Send>>;

/// One ack to send, in stream order.
enum AckJob {
    /// A batch on its way to durability, which one it is (for a refusal's ack), and when its
    /// frame was read (for the ack latency).
    Pending(PendingAck, DedupKey, std::time::Instant),
    /// A batch refused before the log: answered at once (after the acks before it).
    Refused { workout_id: WorkoutId, seq: u64, status: AckStatus, message: String },
}

/// How a workout stream ended, from the server's side.
enum StreamEnd {
    /// The client finished its side after its last batch.
    Finished,
    /// The server is shutting down: stop reading; pending acks still go out.
    GoingAway,
    /// Stop reading with this code (the client sees it as STOP_SENDING).
    Stop(ErrorCode),
    /// The client reset the stream or the connection is gone: nothing to answer.
    Lost,
}

async fn serve_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    device: Arc<DeviceToken>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let (jobs_tx, mut jobs_rx) = mpsc::channel::<AckJob>(shared.config.max_in_flight_per_stream.max(1));
    // The reader owns the job sender, so the writer's loop ends when reading ends.
    let (recv_ref, stop_ref, shared_ref, device_ref) = (&mut recv, &mut stop, &*shared, &*device);
    let reader = async move {
        let (recv, stop, shared, device) = (recv_ref, stop_ref, shared_ref, device_ref);
        let mut workout: Option<WorkoutId> = None;
        loop {
            let frame = tokio::select! {
                _ = stop.changed() => return StreamEnd::GoingAway,
                read = tokio::time::timeout(
                    shared.config.stream_idle_timeout,
                    read_frame(recv, shared.config.max_frame_bytes),
                ) => read,
            };
            let payload = match frame {
                Err(_) => return StreamEnd::Stop(ErrorCode::Stalled),
                Ok(Ok(Some(payload))) => payload,
                Ok(Ok(None)) => return StreamEnd::Finished,
                Ok(Err(FrameError::TooLarge(e))) => {
                    let err = IngestError::BodyTooLarge { size: e.len, limit: e.limit };
                    shared.ingestor.count_reject(&err);
                    let job = refused(workout.unwrap_or_default(), 0, &err);
                    let _ = jobs_tx.send(job).await;
                    return StreamEnd::Stop(ErrorCode::TooLarge);
                }
                Ok(Err(FrameError::Truncated)) => return StreamEnd::Stop(ErrorCode::Protocol),
                Ok(Err(FrameError::Read(_))) => return StreamEnd::Lost,
            };
            let read_at = std::time::Instant::now();
            let job = match shared.ingestor.verify(payload, device) {
                Ok(batch) => {
                    // One stream, one workout: the ack order is the workout's order.
                    let key = batch.key();
                    if *workout.get_or_insert(key.workout_id) != key.workout_id {
                        let message = "this stream carries another workout: open one stream per workout".to_owned();
                        let job = AckJob::Refused {
                            workout_id: key.workout_id,
                            seq: key.seq,
                            status: AckStatus::Malformed,
                            message,
                        };
                        let _ = jobs_tx.send(job).await;
                        return StreamEnd::Stop(ErrorCode::Protocol);
                    }
                    match shared.ingestor.submit(batch).await {
                        Ok(pending) => AckJob::Pending(Box::pin(pending), key, read_at),
                        Err(err) => refused(key.workout_id, key.seq, &err),
                    }
                }
                Err(Refused { error, key }) => {
                    let (id, seq) = key.map_or((workout.unwrap_or_default(), 0), |k| (k.workout_id, k.seq));
                    refused(id, seq, &error)
                }
            };
            if jobs_tx.send(job).await.is_err() {
                return StreamEnd::Lost; // the ack writer stopped: the client is gone
            }
        }
    };
    let writer = async {
        while let Some(job) = jobs_rx.recv().await {
            let ack = match job {
                AckJob::Pending(pending, key, read_at) => match pending.await {
                    Ok(accepted) => {
                        shared.ingestor.count_ack(&accepted);
                        shared.ingestor.metrics().ack_latency_quic.observe(read_at.elapsed());
                        encode_ack(accepted.workout_id, accepted.acked_seq, AckStatus::Ok, None)
                    }
                    Err(err) => {
                        shared.ingestor.count_reject(&err);
                        encode_ack(key.workout_id, key.seq, ack_status(&err), Some(&err.to_string()))
                    }
                },
                AckJob::Refused { workout_id, seq, status, message } => {
                    encode_ack(workout_id, seq, status, Some(&message))
                }
            };
            if send.write_all(&encode_frame(&ack)).await.is_err() {
                return false;
            }
        }
        true
    };
    let (end, writer_ok) = tokio::join!(reader, writer);
    match end {
        StreamEnd::Lost => {}
        StreamEnd::Finished | StreamEnd::GoingAway => {
            let _ = send.finish();
        }
        StreamEnd::Stop(code) => {
            let _ = recv.stop(code.varint());
            let _ = send.finish();
        }
    }
    if writer_ok {
        // Keep the connection until the client has every ack we wrote (bounded by the idle timeout).
        let _ = tokio::time::timeout(shared.config.drain_timeout, send.stopped()).await;
    }
}

fn refused(workout_id: WorkoutId, seq: u64, err: &IngestError) -> AckJob {
    AckJob::Refused { workout_id, seq, status: ack_status(err), message: err.to_string() }
}

/// The ack status a device acts on for each ingest error.
pub fn ack_status(err: &IngestError) -> AckStatus {
    match err {
        IngestError::MissingToken
        | IngestError::UnknownToken
        | IngestError::DeviceMismatch { .. }
        | IngestError::UserMismatch { .. } => AckStatus::Unauthenticated,
        IngestError::WorkoutOwnerMismatch { .. } => AckStatus::Forbidden,
        IngestError::BodyTooLarge { .. } | IngestError::DecompressedTooLarge { .. } => AckStatus::TooLarge,
        IngestError::Overloaded | IngestError::ShuttingDown => AckStatus::Overloaded,
        IngestError::Storage(_) => AckStatus::Internal,
        // A batch out of the time bounds is as unusable as a malformed one: sending it again
        // cannot help, setting the clock can (the message says so).
        IngestError::UnsupportedEncoding { .. }
        | IngestError::BadCompression { .. }
        | IngestError::Malformed(_)
        | IngestError::TimeOutOfRange { .. } => AckStatus::Malformed,
    }
}
