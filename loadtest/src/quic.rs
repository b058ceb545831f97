//! The live fleet: `devices` watches, each its own QUIC connection (the client library an SDK
//! uses), connecting evenly over the ramp-up, then recording workouts at `hz` and sending a batch
//! every `batch_size / hz` seconds. A batch's intended send time is when its last sample was
//! recorded; its ack latency counts from there (open loop: a late ack delays nothing else's clock).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use quinn::Endpoint;
use trackwire_ingest::quic::{Client, ClientConfig, ClientError, read_certs};

use crate::recorder::{Ack, Transport};
use crate::run::Run;
use crate::workload::{Sender, now_ms};

/// Runs the fleet until the budget is spent; fails only when it cannot start at all.
pub async fn fleet(run: Arc<Run>) -> anyhow::Result<()> {
    let args = &run.args;
    let roots = read_certs(&run.targets.quic_cert).with_context(|| {
        format!(
            "reading the gateway's QUIC certificate {}: pass --quic-cert (the development one is <data-dir>/quic-cert.pem)",
            run.targets.quic_cert.display()
        )
    })?;
    let server: SocketAddr = tokio::net::lookup_host(&run.targets.quic)
        .await
        .with_context(|| format!("resolving --quic-target {}", run.targets.quic))?
        .next()
        .with_context(|| format!("--quic-target {} resolves to no address", run.targets.quic))?;
    let mut config = ClientConfig::new(server, roots, args.token.clone());
    config.server_name = run.targets.quic_server_name.clone();
    config.reconnect_for = Duration::from_secs(10);
    let sockets = args.devices.div_ceil(args.devices_per_socket);
    let endpoints = (0..sockets)
        .map(|_| Endpoint::client(config.bind))
        .collect::<Result<Vec<_>, _>>()
        .context("binding the load generator's UDP sockets")?;
    let devices: Vec<_> = (0..args.devices)
        .map(|d| {
            let endpoint = endpoints[(d / args.devices_per_socket) as usize].clone();
            tokio::spawn(device(run.clone(), d, endpoint, config.clone()))
        })
        .collect();
    for device in devices {
        let _ = device.await;
    }
    Ok(())
}

fn error_kind(err: &ClientError) -> String {
    match err {
        ClientError::Tls(_) => "quic_tls".into(),
        ClientError::Io(..) => "quic_io".into(),
        ClientError::Refused { code, .. } => format!("quic_refused_{code:?}"),
        ClientError::Rejected { status, .. } => format!("quic_rejected_{status:?}"),
        ClientError::StreamStopped(code) => format!("quic_stream_stopped_{code:?}"),
        ClientError::GaveUp(..) => "quic_gave_up".into(),
        ClientError::Protocol(_) => "quic_protocol".into(),
        ClientError::BadBatch(_) => "quic_bad_batch".into(),
    }
}

async fn device(run: Arc<Run>, index: u32, endpoint: Endpoint, config: ClientConfig) {
    let args = &run.args;
    let ramp = Duration::from_secs_f64(args.ramp_up_secs.max(0.0) * f64::from(index) / f64::from(args.devices));
    tokio::time::sleep_until((run.start + ramp).into()).await;
    let client = loop {
        if run.budget.exhausted() {
            return;
        }
        match Client::connect_on(endpoint.clone(), config.clone()).await {
            Ok(client) => break client,
            Err(err) => {
                tracing::debug!("device {index}: {err}");
                run.recorder.error(error_kind(&err));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let period = Duration::from_secs_f64(1.0 / args.hz);
    let longest = Duration::from_secs_f64(args.workout_minutes * 60.0);
    let mut workout_no = 0u64;
    'workouts: while !run.budget.exhausted() {
        // Simulate only what the run can still send: a fleet of thousands stays small in memory.
        let left = run.budget.stop_at.saturating_duration_since(Instant::now()) + period;
        let samples = (left.min(longest).as_secs_f64() * args.hz).ceil().max(1.0);
        let duration_s = (samples / args.hz).ceil() as u32;
        let recording_started = Instant::now();
        let workout =
            run.workload.workout(Sender::Device(index), workout_no, now_ms(), duration_s, args.hz, args.batch_size);
        workout_no += 1;
        let mut stream = match client.open_workout().await {
            Ok(stream) => stream,
            Err(err) => {
                run.recorder.error(error_kind(&err));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut recorded = 0u32;
        for batch in &workout.batches {
            recorded += batch.samples;
            let due = recording_started + period * recorded;
            if !run.budget.take(due) {
                break 'workouts;
            }
            tokio::time::sleep_until(due.into()).await;
            run.recorder.sent(Transport::Quic);
            run.inflight.fetch_add(1, Ordering::Relaxed);
            let sent = match stream.send(&batch.bytes).await {
                Ok(()) => stream.flush().await,
                Err(err) => Err(err),
            };
            run.inflight.fetch_sub(1, Ordering::Relaxed);
            match sent {
                Ok(()) => run.recorder.acked(Ack {
                    transport: Transport::Quic,
                    workout_id: workout.id,
                    seq: batch.seq,
                    samples: batch.samples,
                    bytes: batch.bytes.len(),
                    duplicate: false,
                    latency: due.elapsed(),
                }),
                Err(err) => {
                    tracing::debug!("device {index}: {err}");
                    run.recorder.error(error_kind(&err));
                    continue 'workouts;
                }
            }
        }
        let _ = stream.finish().await;
    }
    client.close().await;
}
