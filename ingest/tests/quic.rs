//! The QUIC front door against the real log, with the client library and raw quinn connections:
//! acks only after durability, connection migration, reconnect after a server restart, and bad
//! input (garbage, oversized frames, no token, a stalled stream) beside a good device.
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trackwire_codec::{AckStatus, BatchData, Sample, Sport, WorkoutId, decode_ack, encode_batch, missing};
use trackwire_ingest::log::{DurableLog, LogConfig, LogEntry, LogError, LogRecord};
use trackwire_ingest::quic::{Client, ClientConfig, ClientError, ErrorCode, QuicConfig, QuicServer, ServerIdentity};
use trackwire_ingest::{DeviceToken, IngestConfig, Ingestor};

type Seen = Arc<Mutex<Vec<LogRecord>>>;

/// A server on 127.0.0.1:port (0 = any) over a log in `dir`; returns its address, the records the
/// log made durable, and a handle that shuts it down and waits for the log to close.
struct Running {
    addr: std::net::SocketAddr,
    seen: Seen,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
    log_writer: std::thread::JoinHandle<Result<(), LogError>>,
}

impl Running {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.done.await.unwrap();
        tokio::task::spawn_blocking(move || self.log_writer.join().unwrap().unwrap()).await.unwrap();
    }
}

fn quic_config() -> QuicConfig {
    QuicConfig {
        max_frame_bytes: 64 * 1024,
        stream_idle_timeout: Duration::from_millis(800),
        handshake_timeout: Duration::from_millis(800),
        drain_timeout: Duration::from_secs(3),
        ..QuicConfig::default()
    }
}

fn start(dir: &std::path::Path, port: u16, config: QuicConfig) -> Running {
    start_with_queue(dir, port, config, 64)
}

fn start_with_queue(dir: &std::path::Path, port: u16, config: QuicConfig, queue_depth: usize) -> Running {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let (log, log_writer) = DurableLog::open(
        LogConfig {
            dir: dir.join("log"),
            segment_bytes: 1 << 20,
            group_commit_bytes: 1 << 20,
            queue_depth,
            max_retained_bytes: u64::MAX,
        },
        Box::new(move |entry| {
            if let LogEntry::Record(r) = entry {
                sink.lock().unwrap().push(r);
            }
            true
        }),
    )
    .unwrap();
    let ingestor = Arc::new(Ingestor::new(
        IngestConfig {
            tokens: vec![
                DeviceToken { token: "watch-token".into(), device_id: "watch".into(), user_id: None },
                DeviceToken { token: "any-token".into(), device_id: "*".into(), user_id: None },
            ],
            max_body_bytes: 1 << 20,
            max_decompressed_bytes: 1 << 20,
            limits: Default::default(),
            time_bounds: Default::default(),
        },
        log,
    ));
    let identity = ServerIdentity::development(dir).unwrap();
    let socket = bind(port);
    let reset_key = trackwire_ingest::quic::StatelessResetKey::load(config.reset_key_path.as_deref(), dir).unwrap();
    let server = QuicServer::new(socket, identity, &reset_key, config).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(server.run(ingestor, async move {
        let _ = stopped.await;
    }));
    Running { addr, seen, stop, done, log_writer }
}

/// A UDP socket on `port` (0: any). A restarted server asks for the port its predecessor had,
/// whose socket the endpoint's driver task may still be closing: it waits for it, up to 5 s.
fn bind(port: u16) -> UdpSocket {
    let mut attempts = 0;
    loop {
        match UdpSocket::bind(("127.0.0.1", port)) {
            Ok(socket) => return socket,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("binding 127.0.0.1:{port}: {e}"),
        }
    }
}

fn client_config(dir: &std::path::Path, addr: std::net::SocketAddr, token: &str) -> ClientConfig {
    let roots = trackwire_ingest::quic::read_certs(&dir.join(trackwire_ingest::quic::DEV_CERT_FILE)).unwrap();
    let mut config = ClientConfig::new(addr, roots, token);
    config.max_in_flight = 8;
    config.reconnect_for = Duration::from_secs(20);
    config
}

fn batch(device: &str, workout: u8, seq: u64) -> Vec<u8> {
    let samples = (0..50u32)
        .map(|i| {
            let t = seq as u32 * 50 + i;
            Sample::new(i * 1000, 470_000_000 + t as i32 * 30, 80_000_000, 50_000, 140, 80, missing::POWER, 50, 0)
        })
        .collect();
    encode_batch(&BatchData {
        device_id: device.into(),
        user_id: "u".into(),
        workout_id: WorkoutId([workout; 16]),
        sport: Sport::Running,
        seq,
        base_time_ms: 1_700_000_000_000 + seq as i64 * 50_000,
        samples,
        ..BatchData::default()
    })
}

/// Seqs of `workout` in the log, in log order.
/// Sends batches `seqs` of `workout` from the device "watch".
async fn send_seqs(stream: &mut trackwire_ingest::quic::WorkoutStream<'_>, workout: u8, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        stream.send(&batch("watch", workout, seq)).await.unwrap();
    }
}

fn logged(seen: &Seen, workout: u8) -> Vec<u64> {
    seen.lock().unwrap().iter().filter(|r| r.key.workout_id == WorkoutId([workout; 16])).map(|r| r.key.seq).collect()
}

/// The log acks a group before it forwards it to the pipeline: wait (bounded) until `count`
/// records of the workout were forwarded, then return them.
async fn forwarded(seen: &Seen, workout: u8, count: usize) -> Vec<u64> {
    for _ in 0..500 {
        if logged(seen, workout).len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    logged(seen, workout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_batch_is_acked_after_it_is_durable_and_stored_once_across_a_migration() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 0, quic_config());
    let client = Client::connect(client_config(dir.path(), server.addr, "watch-token")).await.unwrap();
    let mut stream = client.open_workout().await.unwrap();
    let before = client.local_addr().unwrap();
    for seq in 0..200 {
        if seq == 100 {
            // The phone leaves Wi-Fi with batches in flight: same connection, new local address.
            assert!(stream.unacked() > 0);
            client.rebind(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
            assert_ne!(client.local_addr().unwrap(), before);
        }
        stream.send(&batch("watch", 1, seq)).await.unwrap();
        assert!(stream.unacked() <= 8, "max_in_flight bounds what the client holds");
    }
    let stats = stream.finish().await.unwrap();
    assert_eq!(stats.acked, 200);
    assert_eq!(stats.ack_latencies.len(), 200);
    assert_eq!(client.reconnects(), 0, "migration kept the connection");
    assert_eq!(forwarded(&server.seen, 1, 200).await, (0..200).collect::<Vec<_>>(), "every batch once, in order");
    client.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_client_resends_what_was_not_acked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 0, quic_config());
    let addr = server.addr;
    let client = Client::connect(client_config(dir.path(), addr, "watch-token")).await.unwrap();
    let mut stream = client.open_workout().await.unwrap();
    send_seqs(&mut stream, 2, 0..50).await;
    stream.flush().await.unwrap();
    let first = server.seen.clone();
    server.shutdown().await; // GoingAway after draining
    let restarted = start(dir.path(), addr.port(), quic_config());
    send_seqs(&mut stream, 2, 50..100).await;
    let stats = stream.finish().await.unwrap();
    assert!(client.reconnects() >= 1);
    assert_eq!(stats.acked, 100);
    let mut all = logged(&first, 2);
    all.extend(forwarded(&restarted.seen, 2, 100).await.into_iter().filter(|s| *s >= 50));
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    // The restarted log replays the first 50 and stores 50..100 exactly once.
    assert_eq!(forwarded(&restarted.seen, 2, 100).await, (0..100).collect::<Vec<_>>());
    client.close().await;
    restarted.shutdown().await;
}

/// A restart takes a while (the log replays, the pipeline rebuilds), and behind a load balancer
/// dials while the server is down go unanswered (no ICMP comes back: a socket that swallows
/// everything stands in for it). QUIC retransmits an unanswered Initial with a backoff doubling
/// from one second (at 1, 3, 7, 15 s), so after 8 s of downtime its dial would find the server
/// only at 15 s; the client tries afresh after a few round trips instead and is back about as
/// soon as the server is. The bound asserted is a liveness bound with seconds of margin, not a
/// latency goal (those are measured with `trackwire-loadtest quic-fleet` across a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_that_takes_a_while_the_client_is_back_as_soon_as_the_server() {
    const DOWNTIME: Duration = Duration::from_secs(8);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 0, quic_config());
    let addr = server.addr;
    let client = Client::connect(client_config(dir.path(), addr, "watch-token")).await.unwrap();
    let mut stream = client.open_workout().await.unwrap();
    send_seqs(&mut stream, 3, 0..20).await;
    stream.flush().await.unwrap();
    server.shutdown().await;
    let black_hole = bind(addr.port());
    let sending = async {
        send_seqs(&mut stream, 3, 20..40).await;
        let stats = stream.finish().await;
        (stats, std::time::Instant::now())
    };
    let restarting = async {
        tokio::time::sleep(DOWNTIME).await;
        drop(black_hole);
        (start(dir.path(), addr.port(), quic_config()), std::time::Instant::now())
    };
    let ((sent, delivered_at), (restarted, back_at)) = tokio::join!(sending, restarting);
    let stats = sent.unwrap();
    assert_eq!(stats.acked, 40);
    let after = delivered_at.saturating_duration_since(back_at);
    assert!(after < Duration::from_secs(4), "delivered {after:?} after the server was back");
    assert_eq!(forwarded(&restarted.seen, 3, 40).await, (0..40).collect::<Vec<_>>());
    client.close().await;
    restarted.shutdown().await;
}

/// A UDP load balancer in miniature: relays a client's datagrams to the current upstream and that
/// upstream's answers back; switching the upstream is a replica dying behind it (its packets no
/// longer reach the client, and the client's go to another replica).
struct Relay {
    addr: std::net::SocketAddr,
    upstream: Arc<Mutex<std::net::SocketAddr>>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(upstream));
        let client: Arc<Mutex<Option<std::net::SocketAddr>>> = Arc::default();
        let (front_in, back_out, current, seen) = (front.clone(), back.clone(), upstream.clone(), client.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((len, from)) = front_in.recv_from(&mut buf).await {
                *seen.lock().unwrap() = Some(from);
                let target = *current.lock().unwrap();
                let _ = back_out.send_to(&buf[..len], target).await;
            }
        });
        let current = upstream.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((len, from)) = back.recv_from(&mut buf).await {
                let to = *client.lock().unwrap();
                if let Some(to) = to.filter(|_| from == *current.lock().unwrap()) {
                    let _ = front.send_to(&buf[..len], to).await;
                }
            }
        });
        Relay { addr, upstream }
    }

    fn switch_to(&self, upstream: std::net::SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }
}

/// Behind a load balancer, a gateway replica that dies hands its devices' flows to another one,
/// whose data directory (a Deployment's `emptyDir`) is not the dead one's. With the
/// stateless-reset secret every replica mounts (`quic.reset_key_path`), that replica recognises
/// the dead one's connection ids and answers with a stateless reset: the device learns at its
/// next packet that its connection is gone, instead of sitting out its idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_its_own_data_dir_resets_a_dead_replicas_connections() {
    let shared = tempfile::tempdir().unwrap();
    let secret = shared.path().join("quic-reset-secret");
    std::fs::write(&secret, "a secret every gateway replica mounts, at least 32 bytes\n").unwrap();
    let config = QuicConfig { reset_key_path: Some(secret), ..quic_config() };
    let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = start(first_dir.path(), 0, config.clone());
    let balancer = Relay::start(first.addr).await;
    let connection = raw_endpoint(first_dir.path()).connect(balancer.addr, "localhost").unwrap().await.unwrap();
    say_hello(&connection, b"watch-token").await.unwrap();

    let second = start(second_dir.path(), 0, config);
    balancer.switch_to(second.addr);
    // Any packet of the device's reaches the second replica (an acknowledgement it was still
    // sending will do); the reset may come back before this stream opens or its write completes,
    // so neither outcome matters, only how the connection ends.
    if let Ok((mut send, _recv)) = connection.open_bi().await {
        let _ = send.write_all(&encode_frame_for_test(&batch("watch", 4, 0))).await;
    }
    let reason = connection.closed().await;
    assert!(matches!(reason, quinn::ConnectionError::Reset), "closed by {reason} instead of a stateless reset");
    first.shutdown().await;
    second.shutdown().await;
}

fn encode_frame_for_test(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

fn raw_endpoint(dir: &std::path::Path) -> quinn::Endpoint {
    let roots = trackwire_ingest::quic::read_certs(&dir.join(trackwire_ingest::quic::DEV_CERT_FILE)).unwrap();
    let mut store = rustls::RootCertStore::empty();
    for cert in roots {
        store.add(cert).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"trackwire/1".to_vec()];
    tls.enable_early_data = true;
    let config = quinn::ClientConfig::new(Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap()));
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    endpoint
}

/// A raw connection, no hello yet.
async fn raw_connection(dir: &std::path::Path, addr: std::net::SocketAddr) -> quinn::Connection {
    raw_endpoint(dir).connect(addr, "localhost").unwrap().await.unwrap()
}

async fn say_hello(connection: &quinn::Connection, token: &[u8]) -> Result<Vec<u8>, quinn::ReadToEndError> {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(&(token.len() as u32).to_be_bytes()).await.unwrap();
    send.write_all(token).await.unwrap();
    send.finish().unwrap();
    recv.read_to_end(4096).await
}

async fn read_acks(recv: &mut quinn::RecvStream) -> Vec<trackwire_codec::AckView> {
    let bytes = recv.read_to_end(1 << 20).await.unwrap_or_default();
    let mut acks = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        acks.push(decode_ack(&rest[4..4 + len]).unwrap());
        rest = &rest[4 + len..];
    }
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clean_error_and_a_good_device_is_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 0, quic_config());
    let addr = server.addr;

    // A good device streams the whole time, on its own connection.
    let good_dir = dir.path().to_owned();
    let good = tokio::spawn(async move {
        let client = Client::connect(client_config(&good_dir, addr, "watch-token")).await.unwrap();
        let mut stream = client.open_workout().await.unwrap();
        for seq in 0..300 {
            stream.send(&batch("watch", 9, seq)).await.unwrap();
            if seq % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let stats = stream.finish().await.unwrap();
        client.close().await;
        stats.acked
    });

    // No token: the connection is closed as unauthenticated, with a reason.
    let nobody = raw_connection(dir.path(), addr).await;
    assert!(say_hello(&nobody, b"wrong-token").await.is_err());
    match nobody.closed().await {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, ErrorCode::Unauthenticated.varint());
            assert!(String::from_utf8_lossy(&close.reason).contains("token"), "{close:?}");
        }
        other => panic!("expected an application close, got {other:?}"),
    }
    // Silence after connecting: closed when the hello does not come in time.
    let silent = raw_connection(dir.path(), addr).await;
    match silent.closed().await {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, ErrorCode::Unauthenticated.varint())
        }
        other => panic!("expected an application close, got {other:?}"),
    }

    let conn = raw_connection(dir.path(), addr).await;
    assert_eq!(say_hello(&conn, b"any-token").await.unwrap(), b"\0\0\0\x01*");
    // Garbage inside a well-formed frame: a Malformed ack, and the stream goes on.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0, 0, 5, 1, 2, 3, 4, 5]).await.unwrap();
    send.write_all(&(batch("x", 3, 0).len() as u32).to_be_bytes()).await.unwrap();
    send.write_all(&batch("x", 3, 0)).await.unwrap();
    send.finish().unwrap();
    let acks = read_acks(&mut recv).await;
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert_eq!(acks[0].status, AckStatus::Malformed);
    assert_eq!((acks[1].status, acks[1].acked_seq), (AckStatus::Ok, 0));

    // A length prefix beyond the limit: a TooLarge ack, then the server stops reading.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let acks = read_acks(&mut recv).await;
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].status, AckStatus::TooLarge);
    assert!(acks[0].message.as_deref().unwrap_or("").contains("limit"), "{acks:?}");
    let stopped = send.stopped().await;
    assert_eq!(stopped.ok().flatten(), Some(ErrorCode::TooLarge.varint()));

    // A stream that stalls half-way through a frame is stopped after the idle timeout.
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0, 1, 0, 7, 7]).await.unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(10), send.stopped()).await.unwrap();
    assert_eq!(stopped.ok().flatten(), Some(ErrorCode::Stalled.varint()));
    assert!(read_acks(&mut recv).await.is_empty());

    // A token bound to another device cannot send for "watch".
    let other = Client::connect(client_config(dir.path(), addr, "watch-token")).await.unwrap();
    let mut stream = other.open_workout().await.unwrap();
    stream.send(&batch("not-the-watch", 4, 0)).await.unwrap();
    match stream.flush().await {
        Err(ClientError::Rejected { status: AckStatus::Unauthenticated, .. }) => {}
        other => panic!("expected an Unauthenticated ack, got {other:?}"),
    }

    assert_eq!(good.await.unwrap(), 300, "the good device lost nothing");
    assert_eq!(forwarded(&server.seen, 9, 300).await, (0..300).collect::<Vec<_>>());
    assert!(logged(&server.seen, 4).is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_connection_sends_its_hello_and_batches_as_0rtt_and_they_are_acked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 0, quic_config());
    let endpoint = raw_endpoint(dir.path());
    let first = endpoint.connect(server.addr, "localhost").unwrap().await.unwrap();
    say_hello(&first, b"watch-token").await.unwrap(); // the server's session ticket arrives meanwhile
    first.close(0u8.into(), b"bye");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (again, accepted) = endpoint
        .connect(server.addr, "localhost")
        .unwrap()
        .into_0rtt()
        .unwrap_or_else(|_| panic!("no 0-RTT: the first connection left no session ticket"));
    // Everything below is written before the handshake completes.
    let (mut hello, mut hello_answer) = again.open_bi().await.unwrap();
    hello.write_all(b"\0\0\0\x0bwatch-token").await.unwrap();
    hello.finish().unwrap();
    let (mut send, mut recv) = again.open_bi().await.unwrap();
    let body = batch("watch", 5, 0);
    send.write_all(&(body.len() as u32).to_be_bytes()).await.unwrap();
    send.write_all(&body).await.unwrap();
    send.finish().unwrap();
    assert!(accepted.await, "the server accepts 0-RTT");
    assert_eq!(hello_answer.read_to_end(100).await.unwrap(), b"\0\0\0\x05watch");
    let acks = read_acks(&mut recv).await;
    assert_eq!(acks.len(), 1);
    assert_eq!((acks[0].status, acks[0].acked_seq), (AckStatus::Ok, 0));
    assert_eq!(forwarded(&server.seen, 5, 1).await, vec![0]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_log_slows_the_streams_down_and_refuses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A log queue of one append: HTTP would answer 503 most of the time; QUIC stops reading.
    let server = start_with_queue(dir.path(), 0, quic_config(), 1);
    let client = Arc::new(Client::connect(client_config(dir.path(), server.addr, "any-token")).await.unwrap());
    let mut workouts = Vec::new();
    for w in 20..24u8 {
        let client = client.clone();
        workouts.push(tokio::spawn(async move {
            let mut stream = client.open_workout().await.unwrap();
            for seq in 0..100 {
                stream.send(&batch("watch", w, seq)).await.unwrap();
            }
            stream.finish().await.unwrap().acked
        }));
    }
    for w in workouts {
        assert_eq!(w.await.unwrap(), 100);
    }
    for w in 20..24u8 {
        assert_eq!(forwarded(&server.seen, w, 100).await, (0..100).collect::<Vec<_>>());
    }
    client.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 0, QuicConfig { max_connections: 1, ..quic_config() });
    let first = raw_connection(dir.path(), server.addr).await;
    say_hello(&first, b"watch-token").await.unwrap();
    let second = raw_connection(dir.path(), server.addr).await;
    match second.closed().await {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, ErrorCode::LimitExceeded.varint());
            assert!(String::from_utf8_lossy(&close.reason).contains("retry"), "{close:?}");
        }
        other => panic!("expected an application close, got {other:?}"),
    }
    first.close(0u8.into(), b"done");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_for_a_workout_another_device_started_gets_a_forbidden_ack() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 0, quic_config());
    let owner = Client::connect(client_config(dir.path(), server.addr, "watch-token")).await.unwrap();
    let mut stream = owner.open_workout().await.unwrap();
    stream.send(&batch("watch", 5, 0)).await.unwrap();
    stream.flush().await.unwrap();

    let conn = raw_connection(dir.path(), server.addr).await;
    say_hello(&conn, b"any-token").await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let intruding = batch("intruder", 5, 1);
    send.write_all(&(intruding.len() as u32).to_be_bytes()).await.unwrap();
    send.write_all(&intruding).await.unwrap();
    send.finish().unwrap();
    let acks = read_acks(&mut recv).await;
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!((acks[0].status, acks[0].workout_id, acks[0].acked_seq), (AckStatus::Forbidden, WorkoutId([5; 16]), 1));
    assert!(acks[0].message.as_deref().unwrap_or("").contains("another user or device"), "{acks:?}");

    stream.send(&batch("watch", 5, 1)).await.unwrap();
    stream.finish().await.unwrap();
    owner.close().await;
    let forwarded = forwarded(&server.seen, 5, 2).await;
    assert_eq!(forwarded, vec![0, 1], "the owner's batches, and only theirs");
    server.shutdown().await;
}
