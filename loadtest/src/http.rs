//! HTTP offline uploads: `concurrency` keep-alive connections, each uploading whole workouts
//! batch by batch in order (what the mobile SDK does after a sync), paced by the open-loop
//! [`Pacer`] or closed-loop when no rate is set. The workouts were prepared before the run
//! ([`Prepared`]): sending encodes and simulates nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::prepared::Prepared;
use crate::recorder::{Ack, Transport};
use crate::run::Run;
use crate::schedule::Pacer;
use crate::workload::EncodedBatch;

/// Runs the upload scenario until the budget is spent.
pub async fn uploads(run: Arc<Run>, prepared: Arc<Prepared>) {
    let next_workout = Arc::new(AtomicU64::new(0));
    let pacer = Arc::new(Pacer::new(run.start, run.args.upload_rate));
    let workers: Vec<_> = (0..run.args.concurrency)
        .map(|_| tokio::spawn(connection(run.clone(), prepared.clone(), next_workout.clone(), pacer.clone())))
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}

async fn connection(run: Arc<Run>, prepared: Arc<Prepared>, next_workout: Arc<AtomicU64>, pacer: Arc<Pacer>) {
    let authorization = match HeaderValue::from_str(&format!("Bearer {}", run.args.token)) {
        Ok(value) => value,
        Err(_) => {
            run.recorder.error("token_not_a_valid_header_value: pass --token as printable ASCII");
            return;
        }
    };
    let mut client = Client { addr: run.targets.http.clone(), authorization, sender: None };
    loop {
        let workout = prepared.upload(next_workout.fetch_add(1, Ordering::Relaxed));
        for batch in &workout.batches {
            let due = pacer.next();
            if !run.budget.take(due) {
                return;
            }
            tokio::time::sleep_until(due.into()).await;
            run.recorder.sent(Transport::Http);
            run.inflight.fetch_add(1, Ordering::Relaxed);
            let outcome = client.post_with_retries(&run, batch).await;
            run.inflight.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Ok(duplicate) => run.recorder.acked(Ack {
                    transport: Transport::Http,
                    workout_id: workout.id,
                    seq: batch.seq,
                    samples: batch.samples,
                    bytes: batch.bytes.len(),
                    duplicate,
                    latency: due.elapsed(),
                }),
                Err(kind) => run.recorder.error(kind),
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection, re-opened when lost.
struct Client {
    addr: String,
    /// `Bearer <token>`, made once per connection rather than per batch.
    authorization: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// Why a post did not get an ack: retried when `retry`, else an error of `kind`.
struct Failure {
    kind: String,
    retry: bool,
}

impl Client {
    /// Posts until acked (true: the server already had it) or out of retries (the error kind).
    async fn post_with_retries(&mut self, run: &Run, batch: &EncodedBatch) -> Result<bool, String> {
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 0;
        loop {
            match self.post(&batch.bytes).await {
                Ok(duplicate) => return Ok(duplicate),
                Err(Failure { kind, retry }) if retry && attempt < run.args.max_retries => {
                    run.recorder.retry(kind);
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(Failure { kind, .. }) => return Err(kind),
            }
        }
    }

    async fn post(&mut self, body: &Bytes) -> Result<bool, Failure> {
        let sender = match self.sender.as_mut() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.sender.insert(self.connect().await?),
        };
        let request = Request::post("/v1/ingest")
            .header(header::HOST, &self.addr)
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::CONTENT_TYPE, "application/x-flatbuffers")
            .body(Full::new(body.clone()))
            .map_err(|e| Failure { kind: format!("http_request_invalid: {e}"), retry: false })?;
        let sent = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        let (status, body) = match sent {
            Ok(answer) => answer,
            Err(_) => {
                self.sender = None;
                return Err(Failure { kind: "http_connection_lost".into(), retry: true });
            }
        };
        if status == StatusCode::OK {
            let ack: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| Failure { kind: format!("http_unreadable_ack: {e}"), retry: false })?;
            return Ok(ack.get("duplicate").and_then(|d| d.as_bool()).unwrap_or(false));
        }
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|c| c.as_str()).map(str::to_owned))
            .unwrap_or_default();
        let retry = matches!(status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS);
        Err(Failure { kind: format!("http_{}_{code}", status.as_u16()), retry })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let failure = |what: &str, e: &dyn std::fmt::Display| {
            tracing::debug!("connecting to {}: {what}: {e}", self.addr);
            Failure { kind: format!("http_{what}"), retry: true }
        };
        let stream = TcpStream::connect(&self.addr).await.map_err(|e| failure("connect", &e))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| failure("handshake", &e))?;
        tokio::spawn(connection);
        Ok(sender)
    }
}
