//! The memory lake files are encoded into, kept for the next file.
//!
//! A file is encoded into a `Vec<u8>` that grows to tens of megabytes and is then handed to the
//! object store as `Bytes`. Allocated fresh for every file, each such buffer is paid for twice
//! over: the kernel zeroes every new page, and every doubling copies what is already there.
//! Profiled under offline uploads that was a sixth of the sinks thread. A buffer whose upload
//! has finished is the only owner of its memory again, so it comes back here instead.

use bytes::Bytes;

/// Buffers kept per table. Two cover the usual case (one file being filled while the previous
/// one uploads); more would hold memory for a burst that may not come again.
const KEPT: usize = 2;

#[derive(Default)]
pub(super) struct Buffers {
    spare: Vec<Vec<u8>>,
}

impl Buffers {
    /// An empty buffer, with the capacity of an earlier file when one is spare.
    pub(super) fn take(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Takes back the memory of an uploaded file. `bytes` is reclaimed only when nothing else
    /// holds it (the object store has let go of every slice); otherwise it is simply dropped.
    pub(super) fn give_back(&mut self, bytes: Bytes) {
        if self.spare.len() >= KEPT {
            return;
        }
        if let Ok(unique) = bytes.try_into_mut() {
            let mut buffer = Vec::from(unique);
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// Lets the spare memory go (the table is idle: nothing open, nothing waiting).
    pub(super) fn release(&mut self) {
        self.spare = Vec::new();
    }

    #[cfg(test)]
    pub(super) fn spare(&self) -> usize {
        self.spare.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uploaded_file_s_memory_is_reused_without_copying() {
        let mut buffers = Buffers::default();
        let mut file = buffers.take();
        file.extend(std::iter::repeat_n(7u8, 3 << 20));
        let (address, capacity) = (file.as_ptr(), file.capacity());
        let bytes = Bytes::from(file);
        buffers.give_back(bytes);
        let again = buffers.take();
        assert_eq!(again.as_ptr(), address, "the same allocation comes back");
        assert_eq!(again.capacity(), capacity);
        assert!(again.is_empty());
    }

    #[test]
    fn memory_still_held_elsewhere_is_not_taken_back() {
        let mut buffers = Buffers::default();
        let bytes = Bytes::from(vec![1u8; 1024]);
        let held = bytes.slice(10..20);
        buffers.give_back(bytes);
        assert_eq!(buffers.spare(), 0);
        assert_eq!(&held[..], &[1u8; 10]);
    }

    #[test]
    fn at_most_a_few_buffers_are_kept_and_release_lets_them_go() {
        let mut buffers = Buffers::default();
        for _ in 0..5 {
            buffers.give_back(Bytes::from(vec![0u8; 4096]));
        }
        assert_eq!(buffers.spare(), KEPT);
        buffers.release();
        assert_eq!(buffers.spare(), 0);
    }
}
