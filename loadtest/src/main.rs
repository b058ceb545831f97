//! `trackwire-load`: posts pre-encoded batches to `POST /v1/ingest` over keep-alive HTTP/1.1
//! connections, one thread each, and reports acked samples/s and batches/s.
//!
//! The HTTP client is a few lines over `TcpStream` on purpose: it costs almost nothing per
//! request, so on a shared 2-core machine the figure measures the server, not the client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use trackwire_codec::{BatchData, Sample, Sport, WorkoutId, encode_batch};

#[derive(Parser)]
#[command(about = "Load generator for Trackwire's HTTP ingest")]
struct Args {
    /// Server address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Bearer token.
    #[arg(long, default_value = "dev-token")]
    token: String,
    /// Samples per batch (1,000 = an offline upload chunk; 5 = a live batch).
    #[arg(long, default_value_t = 1000)]
    batch_size: u32,
    /// Batches each connection sends.
    #[arg(long, default_value_t = 2000)]
    batches: u64,
    /// Concurrent connections (each its own thread).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Batches per workout: a connection uploads one session after another, like the mobile SDK
    /// syncing offline workouts (4 × 1,000 samples at 1 Hz ≈ a 67-minute run).
    #[arg(long, default_value_t = 4)]
    workout_batches: u64,
}

/// A plausible run recorded in the last hours: ~3 m/s north-east with a heart rate, 1 Hz.
fn encode(workout: WorkoutId, seq: u64, batch_size: u32, session_start_ms: i64) -> Vec<u8> {
    let base = session_start_ms + seq as i64 * i64::from(batch_size) * 1000;
    let samples = (0..batch_size)
        .map(|i| {
            let n = (seq * u64::from(batch_size) + u64::from(i)) as i32;
            Sample::new(
                i * 1000,
                473_000_000 + n * 270,
                85_000_000 + n * 400,
                40_000 + (n % 500),
                140 + (n % 30) as u8,
                85,
                u16::MAX,
                40,
                0,
            )
        })
        .collect();
    encode_batch(&BatchData {
        device_id: format!("load-{workout}"),
        user_id: "load-user".into(),
        workout_id: workout,
        sport: Sport::Running,
        seq,
        base_time_ms: base,
        device_model: Some("trackwire-load".into()),
        samples,
        events: Vec::new(),
        device_totals: None,
    })
}

fn run_connection(args: &Args, index: usize) -> anyhow::Result<(u64, Duration)> {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let session_ms = (args.workout_batches * u64::from(args.batch_size)) as i64 * 1000;
    let per_workout = args.workout_batches.max(1);
    let mut workout = WorkoutId::default();
    let bodies: Vec<Vec<u8>> = (0..args.batches)
        .map(|i| {
            if i % per_workout == 0 {
                workout = WorkoutId(*uuid::Uuid::new_v4().as_bytes());
            }
            encode(workout, i % per_workout, args.batch_size, now_ms - session_ms - 60_000)
        })
        .collect();
    let stream = TcpStream::connect(&args.addr).with_context(|| format!("connecting to {}", args.addr))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let started = Instant::now();
    let mut line = String::new();
    for body in &bodies {
        let head = format!(
            "POST /v1/ingest HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/x-flatbuffers\r\nContent-Length: {}\r\n\r\n",
            args.addr,
            args.token,
            body.len()
        );
        writer.write_all(head.as_bytes())?;
        writer.write_all(body)?;
        line.clear();
        reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            bail!("connection {index}: server answered {}", line.trim());
        }
        let mut length = 0usize;
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse()?;
            }
        }
        let mut sink = vec![0; length];
        reader.read_exact(&mut sink)?;
    }
    Ok((args.batches, started.elapsed()))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let results: Vec<anyhow::Result<(u64, Duration)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.connections)
            .map(|i| {
                scope.spawn({
                    let args = &args;
                    move || run_connection(args, i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("connection thread")).collect()
    });
    let wall = started.elapsed();
    let mut batches = 0;
    for r in results {
        batches += r?.0;
    }
    let samples = batches * u64::from(args.batch_size);
    println!(
        "{batches} batches × {} samples over {} connection(s) in {:.2} s: {:.0} acked batches/s, {:.0} samples/s",
        args.batch_size,
        args.connections,
        wall.as_secs_f64(),
        batches as f64 / wall.as_secs_f64(),
        samples as f64 / wall.as_secs_f64()
    );
    Ok(())
}
