//! Encode → decode round-trips, and every malformed shape a device can send is a typed error.
use proptest::prelude::*;
use trackwire_codec::*;

fn sample_strategy() -> impl Strategy<Value = Sample> {
    (
        any::<u32>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(t, lat, lon, alt, hr, cad, pw, acc, fl)| Sample::new(t, lat, lon, alt, hr, cad, pw, acc, fl))
}

fn batch_strategy() -> impl Strategy<Value = BatchData> {
    (
        "[a-z0-9-]{1,24}",
        "[a-z0-9-]{1,24}",
        any::<[u8; 16]>(),
        prop_oneof![Just(Sport::Running), Just(Sport::Cycling), Just(Sport::Other)],
        any::<u64>(),
        any::<i64>(),
        proptest::option::of("[ -~]{0,32}"),
        proptest::collection::vec(sample_strategy(), 0..200),
        proptest::collection::vec((any::<u32>(), 0u8..5).prop_map(|(t, k)| ControlEvent::new(t, ControlKind(k))), 0..8),
        proptest::option::of((
            proptest::option::of(0.0f64..1e6),
            proptest::option::of(0.0f64..1e5),
            proptest::option::of(0.0f64..300.0),
        )),
    )
        .prop_map(|(device_id, user_id, id, sport, seq, base, model, samples, events, totals)| BatchData {
            device_id,
            user_id,
            workout_id: WorkoutId(id),
            sport,
            seq,
            base_time_ms: base,
            device_model: model,
            samples,
            events,
            device_totals: totals.map(|(distance_m, timer_s, heart_rate_max)| DeviceTotals {
                distance_m,
                timer_s,
                heart_rate_max,
                ..DeviceTotals::default()
            }),
        })
}

proptest! {
    #[test]
    fn encode_then_decode_returns_the_same_batch(batch in batch_strategy()) {
        let bytes = encode_batch(&batch);
        let view = decode_batch(&bytes, &DecodeLimits::default()).unwrap();
        prop_assert_eq!(BatchData::from_view(&view), batch);
    }

    #[test]
    fn every_prefix_of_a_batch_is_rejected_or_valid_never_a_panic(batch in batch_strategy(), cut in 0usize..4096) {
        let bytes = encode_batch(&batch);
        let cut = cut.min(bytes.len());
        let _ = decode_batch(&bytes[..cut], &DecodeLimits::default());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_batch(&bytes, &DecodeLimits::default());
        let _ = decode_ack(&bytes);
    }

    #[test]
    fn ack_round_trips(id in any::<[u8; 16]>(), seq in any::<u64>(), status in 0u8..6, msg in proptest::option::of("[ -~]{0,40}")) {
        let bytes = encode_ack(WorkoutId(id), seq, AckStatus(status), msg.as_deref());
        let ack = decode_ack(&bytes).unwrap();
        prop_assert_eq!(ack, AckView { workout_id: WorkoutId(id), acked_seq: seq, status: AckStatus(status), message: msg });
    }
}

fn valid_batch() -> Vec<u8> {
    encode_batch(&BatchData {
        device_id: "d".into(),
        user_id: "u".into(),
        workout_id: WorkoutId([1; 16]),
        samples: vec![Sample::new(0, 1, 2, 3, 4, 5, 6, 7, 0); 37],
        ..BatchData::default()
    })
}

#[test]
fn truncated_buffer_is_named() {
    let bytes = valid_batch();
    let err = decode_batch(&bytes[..5], &DecodeLimits::default()).unwrap_err();
    assert_eq!(err, DecodeError::Truncated { len: 5 });
    let err = decode_batch(&bytes[..bytes.len() - 40], &DecodeLimits::default()).unwrap_err();
    assert_eq!(err.code(), "invalid_flatbuffer", "{err}");
}

#[test]
fn wrong_file_identifier_is_named() {
    let mut bytes = valid_batch();
    bytes[4..8].copy_from_slice(b"NOPE");
    let err = decode_batch(&bytes, &DecodeLimits::default()).unwrap_err();
    assert_eq!(err, DecodeError::WrongFileIdentifier { found: "NOPE".into() });
    assert!(err.to_string().contains("TWB1"));
}

#[test]
fn vector_length_past_the_end_fails_verification() {
    let bytes = valid_batch();
    // The samples vector holds 37 samples (an odd count no offset can share); its u32 length prefix precedes it.
    let len_at = bytes.windows(4).position(|w| w == 37u32.to_le_bytes()).expect("length prefix");
    let mut evil = bytes.clone();
    evil[len_at..len_at + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
    let err = decode_batch(&evil, &DecodeLimits::default()).unwrap_err();
    assert_eq!(err.code(), "invalid_flatbuffer");
    assert!(err.to_string().contains("out of bounds"), "{err}");
}

#[test]
fn limits_are_enforced() {
    let bytes = valid_batch();
    let err = decode_batch(&bytes, &DecodeLimits { max_samples: 3, max_events: 10 }).unwrap_err();
    assert_eq!(err, DecodeError::TooMany { what: "samples", count: 37, limit: 3 });
}

#[test]
fn empty_device_id_is_rejected() {
    let bytes = encode_batch(&BatchData { user_id: "u".into(), ..BatchData::default() });
    assert_eq!(
        decode_batch(&bytes, &DecodeLimits::default()).unwrap_err(),
        DecodeError::EmptyField { field: "device_id" }
    );
}

#[test]
fn workout_id_parses_and_prints_as_uuid() {
    let id: WorkoutId = "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
    assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
    assert!("not-a-uuid".parse::<WorkoutId>().is_err());
}
