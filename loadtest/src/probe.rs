//! The gateway seen from outside during a run: its Prometheus `/metrics` read once a second
//! (resident memory, live workouts, QUIC connections), so memory per device is measured on the
//! server the load runs against, local or remote.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One reading of the gateway's metrics.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServerSample {
    /// Seconds since the run started.
    pub t_s: f64,
    pub rss_bytes: Option<u64>,
    pub live_workouts: Option<u64>,
    pub quic_connections: Option<u64>,
}

/// One GET on a fresh connection.
async fn get(addr: &str, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get(path).header(header::HOST, addr).body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

/// Fails with what to do when nothing answers at `addr`.
pub async fn check_reachable(addr: &str) -> anyhow::Result<()> {
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), get(addr, "/healthcheck"))
        .await
        .map_err(|_| anyhow::anyhow!("no answer in 5 s"))
        .and_then(|r| r)
        .with_context(|| {
            format!(
                "the gateway at {addr} is not reachable: start it (`bash scripts/serve.sh`) or pass --target HOST:PORT"
            )
        })?;
    anyhow::ensure!(status.is_success(), "the gateway at {addr} answered /healthcheck with {status}");
    Ok(())
}

/// The value of an unlabelled sample `name` in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

/// Reads `/metrics` every second until `stop` turns true.
pub async fn sample_every_second(
    addr: String,
    start: Instant,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<ServerSample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return samples,
        }
        let Ok(Ok((status, body))) = tokio::time::timeout(Duration::from_secs(2), get(&addr, "/metrics")).await else {
            continue;
        };
        if !status.is_success() {
            continue;
        }
        let text = String::from_utf8_lossy(&body);
        samples.push(ServerSample {
            t_s: start.elapsed().as_secs_f64(),
            rss_bytes: metric(&text, "process_resident_memory_bytes"),
            live_workouts: metric(&text, "trackwire_live_workouts"),
            quic_connections: metric(&text, "trackwire_quic_connections"),
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_unlabelled_samples_only() {
        let text =
            "# HELP x\nprocess_resident_memory_bytes 123\ntrackwire_live_workouts_total 9\ntrackwire_live_workouts 4\n";
        assert_eq!(super::metric(text, "process_resident_memory_bytes"), Some(123));
        assert_eq!(super::metric(text, "trackwire_live_workouts"), Some(4));
        assert_eq!(super::metric(text, "absent"), None);
    }
}
