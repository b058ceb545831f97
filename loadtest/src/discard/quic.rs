//! QUIC with the gateway's server configuration and framing: hello answered, every batch frame
//! verified and acked in order, then dropped.

use quinn::{Connection, Endpoint, RecvStream, SendStream};
use trackwire_codec::{AckStatus, DecodeLimits, WorkoutId, decode_batch, encode_ack};
use trackwire_ingest::quic::protocol::{MAX_HELLO_BYTES, encode_frame};
use trackwire_ingest::quic::{QuicConfig, ServerIdentity, read_frame, server_config};

use crate::cli::DiscardArgs;

pub fn endpoint(args: &DiscardArgs) -> anyhow::Result<Endpoint> {
    let identity = ServerIdentity::development(&args.cert_dir)?;
    let config = server_config(identity, &QuicConfig::default())?;
    Ok(Endpoint::server(config, args.quic_addr)?)
}

pub async fn serve(endpoint: Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            if let Ok(connection) = incoming.await {
                serve_connection(connection).await;
            }
        });
    }
}

async fn serve_connection(connection: Connection) {
    let Ok((mut send, mut recv)) = connection.accept_bi().await else { return };
    if !matches!(read_frame(&mut recv, MAX_HELLO_BYTES).await, Ok(Some(_))) {
        return;
    }
    if send.write_all(&encode_frame(b"*")).await.is_err() {
        return;
    }
    let _ = send.finish();
    while let Ok((send, recv)) = connection.accept_bi().await {
        tokio::spawn(serve_stream(send, recv));
    }
}

async fn serve_stream(mut send: SendStream, mut recv: RecvStream) {
    let max_frame = QuicConfig::default().max_frame_bytes;
    while let Ok(Some(frame)) = read_frame(&mut recv, max_frame).await {
        let ack = match decode_batch(&frame, &DecodeLimits::default()) {
            Ok(batch) => encode_ack(batch.workout_id(), batch.seq(), AckStatus::Ok, None),
            Err(e) => encode_ack(WorkoutId::default(), 0, AckStatus::Malformed, Some(&e.to_string())),
        };
        if send.write_all(&encode_frame(&ack)).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}
