//! The client library: what an SDK does, in Rust (tests, `trackwire import --quic`, the load test).
//!
//! It keeps every batch until its ack arrives. When the connection or stream breaks for a reason
//! worth retrying (lost network, server restart, `GoingAway`), it reconnects (0-RTT when it has a
//! session ticket), opens a new stream for the workout and re-sends every unacked batch in order;
//! the server's `(workout_id, seq)` dedup makes the re-sends harmless.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::{Connection, ConnectionError, Endpoint, RecvStream, SendStream, VarInt, WriteError};
use rustls::pki_types::CertificateDer;
use trackwire_codec::{AckStatus, DecodeError, DecodeLimits, WorkoutId, decode_ack, decode_batch};

use super::protocol::{ALPN, ErrorCode, MAX_ACK_BYTES, MAX_HELLO_BYTES, encode_frame};
use super::server::{FrameError, read_frame};

/// Where to connect and how to behave.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: SocketAddr,
    /// Name the server's certificate must carry (`localhost` for the development certificate).
    pub server_name: String,
    /// Certificates to trust as roots (in development: the server's own self-signed certificate).
    pub roots: Vec<CertificateDer<'static>>,
    pub token: String,
    /// Unacked batches per workout before `send` waits for acks.
    pub max_in_flight: usize,
    /// How long to keep trying to reconnect before giving up on a workout.
    pub reconnect_for: Duration,
    /// Local UDP address to bind.
    pub bind: SocketAddr,
}

impl ClientConfig {
    pub fn new(server: SocketAddr, roots: Vec<CertificateDer<'static>>, token: impl Into<String>) -> Self {
        let bind = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        ClientConfig {
            server,
            server_name: "localhost".into(),
            roots,
            token: token.into(),
            max_in_flight: 32,
            reconnect_for: Duration::from_secs(60),
            bind: bind.parse().expect("a literal socket address"),
        }
    }
}

/// Why a client operation failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    #[error("the server refused the connection ({code:?}): {reason}")]
    Refused { code: Option<ErrorCode>, reason: String },
    #[error("batch seq {seq} was refused ({status:?}): {message}")]
    Rejected { seq: u64, status: AckStatus, message: String },
    #[error("the server stopped the workout stream ({0:?}): fix the batches before re-sending")]
    StreamStopped(Option<ErrorCode>),
    #[error(
        "gave up reconnecting after {0:?} (last error: {1}); check that the server is up and reachable, then send again: unacked batches are safe to re-send"
    )]
    GaveUp(Duration, String),
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    #[error("not a valid batch: {0}")]
    BadBatch(DecodeError),
}

/// A connection to one server, re-established on demand.
pub struct Client {
    endpoint: Endpoint,
    /// False when the endpoint is shared with other clients ([`Client::connect_on`]).
    owns_endpoint: bool,
    quinn_config: quinn::ClientConfig,
    config: ClientConfig,
    current: tokio::sync::Mutex<Option<Connection>>,
    reconnects: AtomicU64,
    /// The round-trip time of the last connection, µs (0: none yet): how long a dial may go
    /// unanswered before it is given up and tried afresh.
    last_rtt_micros: AtomicU64,
    /// Dials in a row that went unanswered.
    unanswered_dials: AtomicU64,
}

/// A dial to a server that answered before is given this long beyond four round trips (a
/// handshake, the hello, and a 0-RTT refusal after a restart) before it is tried afresh: a server
/// that is restarting drops the first Initial packets, and QUIC's own retransmission backs off
/// to seconds, so a fresh dial reaches the restarted server sooner than waiting on the old one.
const DIAL_SLACK: Duration = Duration::from_millis(500);
/// The longest a dial waits before it is tried afresh, once several in a row went unanswered (a
/// path that became slower).
const LONGEST_DIAL: Duration = Duration::from_secs(20);
/// Unanswered dials in a row before each next one waits twice as long.
const DIALS_BEFORE_WAITING_LONGER: u32 = 4;

impl Client {
    /// Binds a UDP socket, connects and says hello.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let endpoint = Endpoint::client(config.bind).map_err(|e| ClientError::Io("binding the UDP socket", e))?;
        Client::start(endpoint, true, config).await
    }

    /// Connects over an endpoint (one UDP socket) that other clients share: a load generator
    /// holding thousands of devices, each its own QUIC connection, without a socket each.
    pub async fn connect_on(endpoint: Endpoint, config: ClientConfig) -> Result<Client, ClientError> {
        Client::start(endpoint, false, config).await
    }

    async fn start(endpoint: Endpoint, owns_endpoint: bool, config: ClientConfig) -> Result<Client, ClientError> {
        let quinn_config = quinn_client_config(&config)?;
        let client = Client {
            endpoint,
            owns_endpoint,
            quinn_config,
            config,
            current: tokio::sync::Mutex::new(None),
            reconnects: AtomicU64::new(0),
            last_rtt_micros: AtomicU64::new(0),
            unanswered_dials: AtomicU64::new(0),
        };
        client.connection_replacing(None).await?;
        Ok(client)
    }

    /// Moves the connection to another local socket (a phone switching from Wi-Fi to LTE).
    pub fn rebind(&self, socket: std::net::UdpSocket) -> std::io::Result<()> {
        self.endpoint.rebind(socket)
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Connections made after the first one.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// A stream for one workout.
    pub async fn open_workout(&self) -> Result<WorkoutStream<'_>, ClientError> {
        let mut stream = WorkoutStream {
            client: self,
            connection_id: None,
            streams: None,
            unacked: VecDeque::new(),
            latencies: Vec::new(),
            acked: 0,
        };
        stream.recover(Interrupted::NotOpen).await?;
        Ok(stream)
    }

    /// Closes the connection (code `Done`) and waits for the server to see it.
    pub async fn close(&self) {
        if let Some(connection) = self.current.lock().await.take() {
            connection.close(ErrorCode::Done.varint(), b"done");
        }
        if self.owns_endpoint {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
        }
    }

    /// The current connection, or a new one if it is `stale` (or gone).
    async fn connection_replacing(&self, stale: Option<usize>) -> Result<Connection, ClientError> {
        let mut current = self.current.lock().await;
        if let Some(connection) = current.as_ref()
            && connection.close_reason().is_none()
            && Some(connection.stable_id()) != stale
        {
            return Ok(connection.clone());
        }
        if let Some(old) = current.as_ref() {
            let rtt = u64::try_from(old.rtt().as_micros()).unwrap_or(u64::MAX).max(1);
            self.last_rtt_micros.store(rtt, Ordering::Relaxed);
        }
        let had_one = current.is_some();
        let connection = match self.dial_patience() {
            // A first connection waits as long as QUIC does (the idle timeout).
            None => self.dial().await?,
            Some(patience) => match tokio::time::timeout(patience, self.dial()).await {
                Ok(dialled) => dialled?,
                Err(_) => {
                    // Dropping the dial closes it; the next one starts with a fresh Initial.
                    self.unanswered_dials.fetch_add(1, Ordering::Relaxed);
                    return Err(ClientError::Refused {
                        code: None,
                        reason: format!("no answer within {patience:?}; the server may be restarting"),
                    });
                }
            },
        };
        self.unanswered_dials.store(0, Ordering::Relaxed);
        if had_one {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        *current = Some(connection.clone());
        Ok(connection)
    }

    /// How long a reconnecting dial may go unanswered: four round trips of the last connection
    /// and some slack, doubling after several unanswered dials in a row. None before the first
    /// connection, whose round trip is not known.
    fn dial_patience(&self) -> Option<Duration> {
        let rtt = Duration::from_micros(match self.last_rtt_micros.load(Ordering::Relaxed) {
            0 => return None,
            micros => micros,
        });
        let unanswered = u32::try_from(self.unanswered_dials.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        let doublings = unanswered.saturating_sub(DIALS_BEFORE_WAITING_LONGER).min(8);
        Some(((rtt * 4 + DIAL_SLACK) * 2u32.pow(doublings)).min(LONGEST_DIAL))
    }

    /// A new connection, hello answered. Uses 0-RTT when a session ticket allows it.
    async fn dial(&self) -> Result<Connection, ClientError> {
        let connecting = self
            .endpoint
            .connect_with(self.quinn_config.clone(), self.config.server, &self.config.server_name)
            .map_err(|e| ClientError::Refused { code: None, reason: e.to_string() })?;
        let (connection, zero_rtt) = match connecting.into_0rtt() {
            Ok((connection, accepted)) => (connection, Some(accepted)),
            Err(connecting) => (connecting.await.map_err(refused)?, None),
        };
        match self.hello(&connection).await {
            Err(Hello::ZeroRttRejected) if zero_rtt.is_some() => {
                // The server forgot our ticket (a restart): the handshake goes on as 1-RTT.
                if let Some(accepted) = zero_rtt {
                    accepted.await;
                }
                self.hello(&connection).await.map_err(|e| e.into_error(&connection))?;
            }
            Err(e) => return Err(e.into_error(&connection)),
            Ok(()) => {}
        }
        Ok(connection)
    }

    async fn hello(&self, connection: &Connection) -> Result<(), Hello> {
        let (mut send, mut recv) = connection.open_bi().await.map_err(|_| Hello::Failed)?;
        match send.write_all(&encode_frame(self.config.token.as_bytes())).await {
            Err(WriteError::ZeroRttRejected) => return Err(Hello::ZeroRttRejected),
            Err(_) => return Err(Hello::Failed),
            Ok(()) => {}
        }
        let _ = send.finish();
        match read_frame(&mut recv, MAX_HELLO_BYTES).await {
            Ok(Some(_device)) => Ok(()),
            Err(FrameError::Read(quinn::ReadError::ZeroRttRejected)) => Err(Hello::ZeroRttRejected),
            _ => Err(Hello::Failed),
        }
    }
}

/// TLS 1.3 with our ALPN and the configured roots, 0-RTT on, and keep-alives.
fn quinn_client_config(config: &ClientConfig) -> Result<quinn::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in &config.roots {
        roots.add(cert.clone()).map_err(|e| ClientError::Tls(format!("bad trusted certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = true;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| ClientError::Tls(e.to_string()))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    // Keep NAT bindings and the server's idle timer alive between a watch's batches, and notice
    // a dead path within 20 s (a server that restarted answers with a stateless reset at once).
    transport.keep_alive_interval(Some(Duration::from_secs(5)));
    transport.max_idle_timeout(Some(quinn::IdleTimeout::from(VarInt::from_u32(20_000))));
    client_config.transport_config(Arc::new(transport));
    Ok(client_config)
}

enum Hello {
    ZeroRttRejected,
    Failed,
}

impl Hello {
    fn into_error(self, connection: &Connection) -> ClientError {
        match connection.close_reason() {
            Some(reason) => refused(reason),
            None => ClientError::Refused { code: None, reason: "the server did not answer the hello".into() },
        }
    }
}

fn refused(err: ConnectionError) -> ClientError {
    match err {
        ConnectionError::ApplicationClosed(close) => ClientError::Refused {
            code: ErrorCode::from_varint(close.error_code),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        other => ClientError::Refused { code: None, reason: other.to_string() },
    }
}

/// Why a workout stream must be re-established (or abandoned).
#[derive(Debug)]
enum Interrupted {
    NotOpen,
    /// The server finished the stream while batches were unacked (it is going away).
    Ended,
    /// The server stopped reading or reset the stream with this code.
    Code(VarInt),
    Connection(ConnectionError),
    #[expect(dead_code, reason = "read through Debug, in the GaveUp message")]
    Other(String),
}

impl Interrupted {
    /// The error to give up with, when retrying cannot help.
    fn fatal(&self) -> Option<ClientError> {
        match self {
            Interrupted::Code(code) => {
                let code = ErrorCode::from_varint(*code);
                (!code.is_some_and(ErrorCode::is_retryable)).then_some(ClientError::StreamStopped(code))
            }
            Interrupted::Connection(ConnectionError::ApplicationClosed(close)) => {
                let code = ErrorCode::from_varint(close.error_code);
                (!code.is_some_and(ErrorCode::is_retryable))
                    .then(|| refused(ConnectionError::ApplicationClosed(close.clone())))
            }
            _ => None,
        }
    }

    fn from_write(err: WriteError) -> Interrupted {
        match err {
            WriteError::Stopped(code) => Interrupted::Code(code),
            WriteError::ConnectionLost(e) => Interrupted::Connection(e),
            other => Interrupted::Other(other.to_string()),
        }
    }

    fn from_frame(err: FrameError) -> Interrupted {
        match err {
            FrameError::Read(quinn::ReadError::Reset(code)) => Interrupted::Code(code),
            FrameError::Read(quinn::ReadError::ConnectionLost(e)) => Interrupted::Connection(e),
            other => Interrupted::Other(other.to_string()),
        }
    }
}

/// A batch the server has not acked yet.
struct Unacked {
    seq: u64,
    workout_id: WorkoutId,
    frame: Bytes,
    sent_at: Instant,
}

/// One workout's stream: send batches, read acks, survive reconnects.
pub struct WorkoutStream<'c> {
    client: &'c Client,
    connection_id: Option<usize>,
    streams: Option<(SendStream, RecvStream)>,
    unacked: VecDeque<Unacked>,
    latencies: Vec<Duration>,
    acked: u64,
}

const ANY_SIZE: DecodeLimits = DecodeLimits { max_samples: usize::MAX, max_events: usize::MAX };

impl WorkoutStream<'_> {
    /// Sends one encoded `Batch`; waits for acks first when `max_in_flight` are unacked.
    pub async fn send(&mut self, batch: &[u8]) -> Result<(), ClientError> {
        let view = decode_batch(batch, &ANY_SIZE).map_err(ClientError::BadBatch)?;
        let (workout_id, seq) = (view.workout_id(), view.seq());
        while self.unacked.len() >= self.client.config.max_in_flight.max(1) {
            self.next_ack().await?;
        }
        let frame = Bytes::from(encode_frame(batch));
        self.unacked.push_back(Unacked { seq, workout_id, frame: frame.clone(), sent_at: Instant::now() });
        if let Err(why) = self.write(&frame).await {
            self.recover(why).await?; // re-sends everything unacked, this batch included
        }
        Ok(())
    }

    /// Waits until every batch sent so far is acked.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        while !self.unacked.is_empty() {
            self.next_ack().await?;
        }
        Ok(())
    }

    /// Flushes, then ends the stream.
    pub async fn finish(mut self) -> Result<WorkoutStats, ClientError> {
        self.flush().await?;
        if let Some((mut send, _)) = self.streams.take() {
            let _ = send.finish();
        }
        Ok(WorkoutStats { acked: self.acked, ack_latencies: self.latencies })
    }

    /// Time from (last) sending each acked batch to its ack, in ack order.
    pub fn ack_latencies(&self) -> &[Duration] {
        &self.latencies
    }

    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    async fn write(&mut self, frame: &[u8]) -> Result<(), Interrupted> {
        match &mut self.streams {
            Some((send, _)) => send.write_all(frame).await.map_err(Interrupted::from_write),
            None => Err(Interrupted::NotOpen),
        }
    }

    async fn next_ack(&mut self) -> Result<(), ClientError> {
        loop {
            let read = match &mut self.streams {
                Some((_, recv)) => read_frame(recv, MAX_ACK_BYTES).await,
                None => {
                    self.recover(Interrupted::NotOpen).await?;
                    continue;
                }
            };
            match read {
                Ok(Some(frame)) => return self.on_ack(&frame).await,
                Ok(None) => self.recover(Interrupted::Ended).await?,
                Err(err) => self.recover(Interrupted::from_frame(err)).await?,
            }
        }
    }

    async fn on_ack(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        let ack = decode_ack(frame).map_err(|e| ClientError::Protocol(format!("unreadable ack: {e}")))?;
        let Some(front) = self.unacked.front() else {
            return Err(ClientError::Protocol("an ack with no batch outstanding".into()));
        };
        match ack.status {
            AckStatus::Ok => {
                if ack.workout_id != front.workout_id || ack.acked_seq != front.seq {
                    return Err(ClientError::Protocol(format!(
                        "ack for seq {} while seq {} was the oldest unacked",
                        ack.acked_seq, front.seq
                    )));
                }
                if let Some(done) = self.unacked.pop_front() {
                    self.latencies.push(done.sent_at.elapsed());
                    self.acked += 1;
                }
                Ok(())
            }
            AckStatus::Overloaded => {
                // Retry the same batch after a pause; it goes behind the others on the stream.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Some(mut retry) = self.unacked.pop_front() {
                    retry.sent_at = Instant::now();
                    let frame = retry.frame.clone();
                    self.unacked.push_back(retry);
                    if let Err(why) = self.write(&frame).await {
                        self.recover(why).await?;
                    }
                }
                Ok(())
            }
            status => {
                let seq = front.seq;
                self.unacked.pop_front();
                Err(ClientError::Rejected { seq, status, message: ack.message.unwrap_or_default() })
            }
        }
    }

    /// Re-establishes the stream (reconnecting if needed) and re-sends every unacked batch.
    async fn recover(&mut self, why: Interrupted) -> Result<(), ClientError> {
        if let Some(err) = why.fatal() {
            return Err(err);
        }
        if !matches!(why, Interrupted::NotOpen) {
            tracing::debug!(?why, unacked = self.unacked.len(), "workout stream interrupted; reconnecting");
        }
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        let mut stale = self.connection_id.filter(|_| !matches!(why, Interrupted::NotOpen));
        loop {
            self.streams = None;
            let attempt = Instant::now();
            match self.reopen(stale).await {
                Ok(()) => return Ok(()),
                Err(err) => {
                    if let Some(fatal) = err.fatal() {
                        return Err(fatal);
                    }
                    if started.elapsed() >= self.client.config.reconnect_for {
                        return Err(ClientError::GaveUp(started.elapsed(), format!("{err:?}")));
                    }
                    // The backoff counts from the attempt's start: a dial that waited out its
                    // patience has waited already.
                    tokio::time::sleep(backoff.saturating_sub(attempt.elapsed())).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    stale = self.connection_id;
                }
            }
        }
    }

    async fn reopen(&mut self, stale: Option<usize>) -> Result<(), Interrupted> {
        let connection = match self.client.connection_replacing(stale).await {
            Ok(connection) => connection,
            Err(ClientError::Refused { code: Some(code), reason }) if !code.is_retryable() => {
                return Err(Interrupted::Connection(ConnectionError::ApplicationClosed(quinn::ApplicationClose {
                    error_code: code.varint(),
                    reason: reason.into_bytes().into(),
                })));
            }
            Err(err) => return Err(Interrupted::Other(err.to_string())),
        };
        self.connection_id = Some(connection.stable_id());
        let (mut send, recv) = connection.open_bi().await.map_err(Interrupted::Connection)?;
        let now = Instant::now();
        for unacked in &mut self.unacked {
            send.write_all(&unacked.frame).await.map_err(Interrupted::from_write)?;
            unacked.sent_at = now;
        }
        self.streams = Some((send, recv));
        Ok(())
    }
}

/// What a finished workout stream did.
#[derive(Debug, Clone)]
pub struct WorkoutStats {
    pub acked: u64,
    pub ack_latencies: Vec<Duration>,
}
