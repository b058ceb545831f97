//! The discard server the ceilings are measured against: the gateway's front doors without
//! anything behind them. Same HTTP stack (axum on hyper) and same QUIC stack (quinn, rustls, the
//! gateway's own server configuration and frame reader); each batch is read, its framing and
//! FlatBuffers verified exactly as the gateway does, acked, and dropped. No log, no fsync, no
//! pipeline: what is left of our throughput against it is what durability and enrichment cost.

pub(crate) mod http;
mod quic;

use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::cli::DiscardArgs;

/// Where a running discard server listens (printed as one JSON line on stdout).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Listening {
    pub http: String,
    pub quic: String,
    pub cert: std::path::PathBuf,
}

/// Serves until killed.
pub async fn serve(args: DiscardArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.cert_dir).with_context(|| format!("creating {}", args.cert_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding HTTP {}", args.http_addr))?;
    let endpoint = quic::endpoint(&args)?;
    let listening = Listening {
        http: listener.local_addr()?.to_string(),
        quic: endpoint.local_addr()?.to_string(),
        cert: args.cert_dir.join(trackwire_ingest::quic::DEV_CERT_FILE),
    };
    println!("{}", serde_json::to_string(&listening)?);
    tokio::spawn(quic::serve(endpoint));
    axum::serve(listener, http::app()).await.context("serving HTTP")?;
    Ok(())
}

/// A discard server in a child process (so it competes for the cores like a gateway would);
/// killed when dropped.
pub struct DiscardChild {
    child: Child,
    pub listening: Listening,
    _dir: tempfile::TempDir,
}

impl DiscardChild {
    pub fn spawn() -> anyhow::Result<DiscardChild> {
        let dir = tempfile::tempdir().context("creating a directory for the discard server's certificate")?;
        let exe = std::env::current_exe().context("finding this executable to start the discard server")?;
        let mut child = Command::new(exe)
            .arg("discard")
            .arg("--cert-dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the discard server")?;
        let stdout = child.stdout.take().context("the discard server's stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .context("reading the discard server's address")?;
        let listening: Listening = match serde_json::from_str(&line) {
            Ok(listening) => listening,
            Err(e) => {
                let _ = child.kill();
                anyhow::bail!("the discard server did not start ({e}): {line:?}");
            }
        };
        Ok(DiscardChild { child, listening, _dir: dir })
    }
}

impl Drop for DiscardChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
