use flatbuffers::FlatBufferBuilder;

use crate::generated::telemetry_generated::trackwire::wire as fb;
use crate::{ACK_IDENTIFIER, AckStatus, DecodeError, WorkoutId};

/// A decoded ack (owned: acks are tiny).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckView {
    pub workout_id: WorkoutId,
    pub acked_seq: u64,
    pub status: AckStatus,
    pub message: Option<String>,
}

/// Encodes an ack with the `TWA1` file identifier.
pub fn encode_ack(workout_id: WorkoutId, acked_seq: u64, status: AckStatus, message: Option<&str>) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::with_capacity(64);
    let message = message.map(|m| fbb.create_string(m));
    let id = fb::Uuid(workout_id.0);
    let root = fb::Ack::create(&mut fbb, &fb::AckArgs { workout_id: Some(&id), acked_seq, status, message });
    fbb.finish(root, Some(ACK_IDENTIFIER));
    fbb.finished_data().to_vec()
}

/// Verifies and decodes an ack.
pub fn decode_ack(buf: &[u8]) -> Result<AckView, DecodeError> {
    if buf.len() < 8 {
        return Err(DecodeError::Truncated { len: buf.len() });
    }
    if !flatbuffers::buffer_has_identifier(buf, ACK_IDENTIFIER, false) {
        return Err(DecodeError::WrongFileIdentifier { found: String::from_utf8_lossy(&buf[4..8]).into_owned() });
    }
    let ack = flatbuffers::root::<fb::Ack>(buf)
        .map_err(|e| DecodeError::Invalid { detail: e.to_string().split_whitespace().collect::<Vec<_>>().join(" ") })?;
    Ok(AckView {
        workout_id: WorkoutId(ack.workout_id().map(|u| u.0).unwrap_or_default()),
        acked_seq: ack.acked_seq(),
        status: ack.status(),
        message: ack.message().map(str::to_owned),
    })
}
