//! State per live workout: what a shard keeps for each workout in progress, measured with a
//! counting allocator as the bytes still allocated after 1,000 live workouts (athletes with
//! profiles) have each been fed 10 minutes of 1 Hz samples, their outputs dropped as the sinks
//! would after delivery. The target is ≤ 2 KiB; measured 2,042 B (1,724 B before each workout
//! kept a sketch of its route for `WorkoutCompleted`), since a workout keeps its
//! identity and counters instead of a whole summary (the stages hold the totals).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use trackwire_codec::{BatchData, ControlEvent, ControlKind, Sample, Sport, WorkoutId, encode_batch};
use trackwire_pipeline::{AthleteProfile, ShardCore};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WORKOUTS: u32 = 1000;
const BATCHES: u32 = 60;
const SAMPLES: u32 = 10;
/// The target: 2 KiB per live workout.
const BUDGET_BYTES: f64 = 2048.0;

fn batch(workout: u32, seq: u32) -> Vec<u8> {
    let samples = (0..SAMPLES)
        .map(|i| {
            let n = (seq * SAMPLES + i) as i32;
            let jitter = (n.wrapping_mul(2_654_435_761u32 as i32) >> 26) % 20;
            Sample::new(
                i * 1000,
                473_000_000 + n * 270 + jitter,
                85_000_000 + n * 100,
                40_000 + n % 300,
                150,
                85,
                u16::MAX,
                40,
                0,
            )
        })
        .collect();
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&workout.to_be_bytes());
    encode_batch(&BatchData {
        device_id: format!("watch-{workout}"),
        user_id: format!("athlete-{workout}"),
        workout_id: WorkoutId(id),
        sport: Sport::Running,
        seq: u64::from(seq),
        base_time_ms: 1_700_000_000_000 + i64::from(seq * SAMPLES) * 1000,
        samples,
        events: if seq == 0 { vec![ControlEvent::new(0, ControlKind::Start)] } else { Vec::new() },
        ..BatchData::default()
    })
}

#[test]
fn a_live_workout_keeps_no_more_than_its_measured_budget() {
    let mut core = ShardCore::default();
    let profile = AthleteProfile {
        weight_kg: Some(70.0),
        age_years: Some(35.0),
        male: Some(true),
        hr_max_bpm: Some(185.0),
        hr_rest_bpm: Some(55.0),
    };
    for workout in 0..WORKOUTS {
        core.set_profile(&format!("athlete-{workout}"), profile.clone());
    }
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut lsn = 0;
    for seq in 0..BATCHES {
        for workout in 0..WORKOUTS {
            let payload = batch(workout, seq);
            lsn += 1;
            let output = core.process(lsn, &payload);
            assert_eq!(output.points.len(), SAMPLES as usize);
        }
    }
    let per_workout = (LIVE_BYTES.load(Ordering::Relaxed) - before) as f64 / f64::from(WORKOUTS);
    println!("state per live workout: {per_workout:.0} bytes (heap, incl. the shard's map entry)");
    assert!(per_workout > 100.0, "the measurement sees the workouts ({per_workout:.0} B)");
    assert!(per_workout <= BUDGET_BYTES, "{per_workout:.0} bytes per live workout, over the {BUDGET_BYTES} B budget");
}
