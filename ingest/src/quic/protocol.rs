//! The QUIC wire protocol, version 1 (`codec/PROTOCOL.md` is the prose for SDK teams).
//!
//! Every message on every stream is a frame: a 4-byte big-endian length, then that many bytes.
//! Stream 0 (the first bidirectional stream the client opens) carries the hello: the client's
//! frame is its bearer token (UTF-8), the server's answer is the device id the token is bound to
//! (`*` = any). Every later bidirectional stream carries one workout: client frames are `Batch`
//! FlatBuffers, server frames are `Ack` FlatBuffers, one per batch, in the order of the batches.

use quinn::VarInt;

/// ALPN protocol id: a client that does not offer it fails the TLS handshake.
pub const ALPN: &[u8] = b"trackwire/1";

/// Bytes of a frame's length prefix.
pub const FRAME_HEADER_BYTES: usize = 4;

/// Largest hello frame (a bearer token) the server reads.
pub const MAX_HELLO_BYTES: usize = 4096;

/// Largest ack frame a client should expect: an Ack with a message well under 1 KiB.
pub const MAX_ACK_BYTES: usize = 64 * 1024;

/// Application error codes, carried by CONNECTION_CLOSE (with a reason text), STOP_SENDING and
/// RESET_STREAM. Stable: SDKs switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ErrorCode {
    /// Normal end: the client is done, or the server closes an idle connection.
    Done = 0,
    /// Unknown or missing token, or no hello in time. Not retryable without a new token.
    Unauthenticated = 1,
    /// A frame that is not what the protocol says (a hello that is not UTF-8, a stream ending
    /// inside a frame, a batch for another workout than the stream's).
    Protocol = 2,
    /// A frame longer than the server's limit: split the workout into smaller batches.
    TooLarge = 3,
    /// Too many connections (or streams): retry later.
    LimitExceeded = 4,
    /// No complete frame within the stream idle timeout: the server stops reading the stream.
    Stalled = 5,
    /// The server is shutting down after draining: reconnect (to another instance) and re-send
    /// whatever is unacked.
    GoingAway = 6,
    /// A server fault; retry later.
    Internal = 7,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::Done,
        ErrorCode::Unauthenticated,
        ErrorCode::Protocol,
        ErrorCode::TooLarge,
        ErrorCode::LimitExceeded,
        ErrorCode::Stalled,
        ErrorCode::GoingAway,
        ErrorCode::Internal,
    ];

    pub fn varint(self) -> VarInt {
        VarInt::from_u32(self as u32)
    }

    pub fn from_varint(code: VarInt) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| *c as u64 == code.into_inner())
    }

    /// True when a client should reconnect and re-send its unacked batches.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::LimitExceeded | ErrorCode::GoingAway | ErrorCode::Internal | ErrorCode::Stalled)
    }
}

/// A frame: the length prefix, then the payload.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A length prefix over the receiver's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a frame of {len} bytes is over the limit of {limit}: split the workout into smaller batches")]
pub struct FrameTooLarge {
    pub len: usize,
    pub limit: usize,
}

/// The payload length a frame header announces, checked against `limit`.
pub fn frame_len(header: [u8; FRAME_HEADER_BYTES], limit: usize) -> Result<usize, FrameTooLarge> {
    let len = u32::from_be_bytes(header) as usize;
    if len > limit { Err(FrameTooLarge { len, limit }) } else { Ok(len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_headers_are_refused() {
        let frame = encode_frame(b"hello");
        assert_eq!(&frame[..4], &[0, 0, 0, 5]);
        assert_eq!(frame_len(frame[..4].try_into().unwrap(), 5), Ok(5));
        assert_eq!(frame_len([0xff; 4], 1 << 20), Err(FrameTooLarge { len: u32::MAX as usize, limit: 1 << 20 }));
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_varint(code.varint()), Some(code));
        }
    }
}
