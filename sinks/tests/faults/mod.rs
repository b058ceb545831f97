//! Fault injection for the sink contract tests: each sink's IO behind a wrapper that fails at
//! random points, before or after the write took effect, from one seeded schedule.
#![allow(dead_code)]

pub mod file;
pub mod kafka;
pub mod read_store;
pub mod store;

use std::sync::{Arc, Mutex};

/// Where an operation fails, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Nothing of the operation took effect.
    Before,
    /// The operation took effect (whole, or in part for a file write) but reported failure: the
    /// answer was lost, or the disk filled up mid-write.
    After,
}

/// A seeded schedule of faults, shared by every wrapper of one test case.
#[derive(Clone)]
pub struct Faults(Arc<Mutex<State>>);

struct State {
    rng: u64,
    /// Chance of a fault per operation, in percent (0: faults off).
    percent: u64,
    injected: u64,
}

impl Faults {
    pub fn new(seed: u64, percent: u64) -> Faults {
        Faults(Arc::new(Mutex::new(State { rng: seed | 1, percent, injected: 0 })))
    }

    pub fn set_percent(&self, percent: u64) {
        self.0.lock().unwrap().percent = percent;
    }

    pub fn injected(&self) -> u64 {
        self.0.lock().unwrap().injected
    }

    /// The next pseudo-random number (xorshift64: reproducible from the seed alone).
    pub fn next(&self) -> u64 {
        let mut state = self.0.lock().unwrap();
        state.rng ^= state.rng << 13;
        state.rng ^= state.rng >> 7;
        state.rng ^= state.rng << 17;
        state.rng
    }

    /// Whether (and where) the next operation fails.
    pub fn draw(&self) -> Fault {
        let roll = self.next();
        let mut state = self.0.lock().unwrap();
        if roll % 100 >= state.percent {
            return Fault::None;
        }
        state.injected += 1;
        if roll & (1 << 40) == 0 { Fault::Before } else { Fault::After }
    }
}
