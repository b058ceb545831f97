//! A compressed body expands no further than the largest batch the limits allow, however
//! generous `max_decompressed_bytes` is: a bomb of kilobytes costs megabytes at most, never the
//! configured maximum.

use trackwire_codec::DecodeLimits;
use trackwire_ingest::log::{DurableLog, LogConfig};
use trackwire_ingest::{DeviceToken, IngestConfig, IngestError, Ingestor};

#[tokio::test]
async fn a_bomb_expands_no_further_than_the_largest_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) =
        DurableLog::open(LogConfig { dir: dir.path().join("log"), ..LogConfig::default() }, Box::new(|_| true))
            .unwrap();
    let config = IngestConfig {
        tokens: vec![DeviceToken { token: "t".into(), device_id: "*".into(), user_id: None }],
        max_body_bytes: 16 << 20,
        max_decompressed_bytes: 64 << 20,
        limits: DecodeLimits::default(),
        time_bounds: Default::default(),
    };
    let largest = DecodeLimits::default().largest_batch_bytes();
    assert!(largest < 3 << 20, "100,000 samples of 24 bytes and 10,000 events of 8, with room for the rest: {largest}");
    assert_eq!(config.decompressed_cap(), largest);
    let ingestor = Ingestor::new(config, log);

    let small_bomb = zstd::encode_all(&vec![0u8; 60 << 20][..], 19).unwrap();
    let mut large_bomb = Vec::new();
    {
        // Larger than the inline threshold: expanded on a blocking thread, with the same cap.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..40 << 10)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut encoder = flate2::write::GzEncoder::new(&mut large_bomb, flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, &noise).unwrap();
        std::io::Write::write_all(&mut encoder, &vec![0u8; 60 << 20]).unwrap();
        encoder.finish().unwrap();
    }
    assert!(large_bomb.len() > 16 << 10);
    for (encoding, bomb) in [("zstd", small_bomb), ("gzip", large_bomb)] {
        let refused = ingestor.ingest(bomb.into(), Some(encoding), Some("t")).await.unwrap_err();
        assert!(
            matches!(refused, IngestError::DecompressedTooLarge { limit } if limit == largest),
            "{encoding}: {refused}"
        );
    }
    drop(ingestor);
    writer.join().unwrap().unwrap();
}
