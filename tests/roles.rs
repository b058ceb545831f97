//! The roles of a scale-out deployment, started in-process as library code: a gateway, two
//! pipeline workers and an API against a Kafka-protocol broker (tansu) and PostgreSQL, the lake in
//! a directory they share. One worker goes away, a user is erased across the partitions, the
//! worker comes back and replays: nothing of the user returns, nothing of the others is lost or
//! doubled. (The Python tests run the same story with separate processes and kill -9.)
//!
//! Needs `TRACKWIRE_TEST_POSTGRES_URL` (without it the test says so and is skipped) and tansu
//! (`TRACKWIRE_TANSU`, or in the cache where `scripts/setup-tansu.sh` installs it).

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use trackwire::config::{Config, Role, Settings};
use trackwire::launch::{Listeners, Stop, StopHandle};
use trackwire::serve;
use trackwire_codec::WorkoutId;
use trackwire_ingest::log::kafka::partition_of;
use trackwire_sinks::read_store::{PostgresStore, ReadStore};

const SECRET: &str = "an HS256 secret of at least thirty-two characters";
const RAW_PARTITIONS: i32 = 4;

/// A tansu broker on a free loopback port, stopped when dropped.
struct Broker {
    child: Child,
    bootstrap: String,
}

impl Broker {
    fn start() -> Option<Broker> {
        let default = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/trackwire/tools/bin/tansu"));
        let tansu = std::env::var_os("TRACKWIRE_TANSU").map(PathBuf::from).or(default).filter(|p| p.exists())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .args(["broker", "--storage-engine", "memory://tansu/", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tansu");
        let broker = Broker { child, bootstrap: format!("127.0.0.1:{port}") };
        wait_for("tansu to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok().then_some(())
        });
        Some(broker)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database on the test server.
fn database() -> Option<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let url = std::env::var("TRACKWIRE_TEST_POSTGRES_URL").ok()?;
    let name = format!("roles_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connecting to the test server");
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    Some(format!("{base}/{name}"))
}

/// A role running on a thread of this process.
struct Running {
    http: SocketAddr,
    stop: StopHandle,
    thread: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn start(config: Config) -> Running {
        let settings = Settings::new(config).expect("a valid configuration");
        let listeners = Listeners::bind(&settings).expect("binding port 0");
        let http = listeners.http.local_addr().unwrap();
        let (stop, on_stop) = Stop::pair();
        let thread = std::thread::spawn(move || serve::start(settings, listeners, on_stop));
        Running { http, stop, thread }
    }

    /// Stops it as SIGTERM would, and checks it ended cleanly.
    fn stop(self) {
        self.stop.stop();
        self.thread.join().expect("the role panicked").expect("the role failed");
    }
}

/// What every role of the deployment is given.
struct Deployment {
    dir: tempfile::TempDir,
    broker: Broker,
    store_url: String,
}

impl Deployment {
    fn config(&self, name: &str, role: Role) -> Config {
        let mut config = Config {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            quic_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: self.dir.path().join(name),
            ..Config::default()
        };
        config.kafka.brokers = Some(self.broker.bootstrap.clone());
        config.kafka.raw_partitions = RAW_PARTITIONS;
        config.store.url = Some(self.store_url.clone());
        config.lake.url = Some(self.lake().display().to_string());
        config.lake.max_file_age_secs = 0.5;
        config.sinks.flush_interval_ms = 100;
        config.cluster.role = role;
        config.cluster.lease_secs = 2.0;
        config.auth.hs256_secret = Some(SECRET.into());
        config.privacy.coordinate_retention_days = 0;
        config
    }

    fn worker(&self, index: u32) -> Running {
        let mut config = self.config(&format!("worker-{index}"), Role::Pipeline);
        config.cluster.partitions = Some(format!("{index}/2"));
        Running::start(config)
    }

    fn lake(&self) -> PathBuf {
        self.dir.path().join("lake")
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn jwt(user: &str, admin: bool) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims = trackwire_api::auth::Claims {
        sub: user.into(),
        exp,
        iss: None,
        aud: None,
        scope: admin.then(|| "trackwire:admin".into()),
        scp: None,
        realm_access: None,
    };
    format!("Bearer {}", trackwire_api::auth::mint_hs256(SECRET, &claims))
}

/// `(status, body)` of an API call as `user`.
fn api(method: &str, api: SocketAddr, path: &str, user: &str, admin: bool) -> (u16, Value) {
    let url = format!("http://{api}/api/v1{path}");
    let auth = jwt(user, admin);
    let agent = agent();
    let response = match method {
        "GET" => agent.get(&url).header("Authorization", &auth).call(),
        "DELETE" => agent.delete(&url).header("Authorization", &auth).call(),
        _ => unreachable!(),
    };
    let mut response = response.expect("the API answered");
    let text = response.body_mut().read_to_string().unwrap();
    (response.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A role's `/healthcheck` body, when it answers.
fn health(role: &Running) -> Option<Value> {
    let url = format!("http://{}/healthcheck", role.http);
    serde_json::from_str(&agent().get(&url).call().ok()?.body_mut().read_to_string().ok()?).ok()
}

fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_erasure_reaches_every_partition_across_workers_and_a_returning_worker_brings_nothing_back() {
    let Some(store_url) = database() else {
        eprintln!("TRACKWIRE_TEST_POSTGRES_URL is not set: skipped (scripts/test.sh starts PostgreSQL and tansu)");
        return;
    };
    let broker = Broker::start().expect("tansu is not installed: run scripts/setup-tansu.sh or set TRACKWIRE_TANSU");
    let deployment = Deployment { dir: tempfile::tempdir().unwrap(), broker, store_url };
    let gateway = Running::start(deployment.config("gateway", Role::Gateway));
    let api_replica = Running::start(deployment.config("api", Role::Api));
    let mut workers = vec![deployment.worker(0), deployment.worker(1)];

    // Ada's workouts span several partitions, so several workers' sinks hold her.
    let ada: Vec<WorkoutId> = (1..=4).map(|n| WorkoutId([n; 16])).collect();
    let bob: Vec<WorkoutId> = (5..=8).map(|n| WorkoutId([n; 16])).collect();
    let partitions: BTreeSet<i32> = ada.iter().map(|w| partition_of(w, RAW_PARTITIONS)).collect();
    assert!(partitions.len() >= 2, "ada's workouts are in one partition only: {partitions:?}");

    let ingest = format!("http://{}/v1/ingest", gateway.http);
    for (user, workouts) in [("ada", &ada), ("bob", &bob)] {
        for workout in workouts {
            for seq in 0..2 {
                let body = common::batch(user, *workout, seq, seq == 1);
                wait_for("the gateway to ack a batch", Duration::from_secs(30), || {
                    let response = agent()
                        .post(&ingest)
                        .header("Authorization", "Bearer dev-token")
                        .header("Content-Type", "application/x-flatbuffers")
                        .send(&body[..])
                        .ok()?;
                    (response.status() == 200).then_some(())
                });
            }
        }
    }

    let store = PostgresStore::connect(&deployment.store_url, None).unwrap();
    let stored = |workouts: &[WorkoutId]| workouts.iter().filter(|w| store.get(w).unwrap().is_some()).count();
    let lake_rows = |workouts: &[WorkoutId]| {
        let rows = common::lake_rows(&deployment.lake());
        workouts.iter().map(|w| rows.get(&w.to_string()).copied().unwrap_or(0)).collect::<Vec<_>>()
    };
    wait_for("every workout in the store and the lake", Duration::from_secs(60), || {
        let complete = ada.iter().chain(&bob).all(|w| store.get(w).unwrap().is_some_and(|s| s.samples == 20));
        (complete && lake_rows(&ada) == [20; 4] && lake_rows(&bob) == [20; 4]).then_some(())
    });

    // Every workout has ended and every sink holds it: the readers let go of them all, so a
    // worker's memory follows the workouts in progress, not every workout since it started.
    for worker in &workers {
        wait_for("the readers to let go of the stored workouts", Duration::from_secs(30), || {
            let partitions = health(worker)?["partitions"].as_array()?.clone();
            let released = partitions.iter().all(|p| p["indexed_workouts"] == 0);
            (!partitions.is_empty() && released).then_some(())
        });
    }

    // One worker goes away; the erasure is carried out by the other, which takes its partitions.
    workers.pop().unwrap().stop();
    let (status, body) = api("DELETE", api_replica.http, "/users/ada", "admin", true);
    assert!(status == 200 || status == 202, "{status}: {body}");
    wait_for("the erasure to be complete", Duration::from_secs(60), || {
        let (status, body) = api("GET", api_replica.http, "/users/ada/erasure", "admin", true);
        (status == 200 && body["state"] == "complete").then_some(())
    });
    let check = |when: &str| {
        assert_eq!(stored(&ada), 0, "{when}: none of ada's workouts in the store");
        assert_eq!(stored(&bob), 4, "{when}: bob's workouts stay");
        assert_eq!(lake_rows(&ada), [0; 4], "{when}: no lake row of ada");
        assert_eq!(lake_rows(&bob), [20; 4], "{when}: bob's rows, once each");
        let (status, body) = api("GET", api_replica.http, "/workouts", "bob", false);
        assert_eq!((status, body["workouts"].as_array().map(Vec::len)), (200, Some(4)), "{when}: {body}");
    };
    check("after the erasure");

    // The worker comes back, takes its partitions again and replays them: every workout there has
    // ended and every sink holds it, so from past what the sinks hold, not from the first record.
    let returned = deployment.worker(1);
    let partitions = wait_for("the returning worker to replay its partitions", Duration::from_secs(60), || {
        let partitions = health(&returned)?["partitions"].as_array()?.clone();
        let caught_up = partitions.iter().all(|p| p["delivered_lsn"].as_u64() >= p["end_offset"].as_u64());
        (!partitions.is_empty() && caught_up).then_some(partitions)
    });
    for p in &partitions {
        assert!(p["replayed_from_lsn"].as_u64() > Some(1), "a replay from past what the sinks hold: {p}");
    }
    // Past a lake file's age, so anything the replay wrote would be committed by now.
    std::thread::sleep(Duration::from_secs(2));
    check("after the returning worker's replay");

    for role in [gateway, api_replica, returned].into_iter().chain(workers) {
        role.stop();
    }
}
