//! A pump's read buffer, held only while data flows: taken from a per-thread pool when the socket
//! has bytes, given back once everything read has been forwarded. An idle leg holds none (io.rs),
//! and a busy one costs no allocation per read.

use std::cell::RefCell;

use super::BUFFER_SIZE;

/// Buffers a worker thread keeps for reuse; more than this many are freed.
const POOL_MAX: usize = 32;

thread_local! {
    static POOL: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

pub struct ReadBuffer {
    /// Empty while released.
    bytes: Box<[u8]>,
    filled: usize,
}

impl ReadBuffer {
    /// A buffer holding `prefix` (bytes read past the handshake), or none when it is empty.
    pub(super) fn with_prefix(prefix: &[u8]) -> Self {
        let mut buf = ReadBuffer {
            bytes: Box::default(),
            filled: 0,
        };
        if !prefix.is_empty() {
            buf.bytes = if prefix.len() <= BUFFER_SIZE {
                take()
            } else {
                vec![0; prefix.len()].into_boxed_slice()
            };
            buf.bytes[..prefix.len()].copy_from_slice(prefix);
            buf.filled = prefix.len();
        }
        buf
    }

    /// The capacity, or `BUFFER_SIZE` while released: frames up to this size are validated whole.
    pub(super) fn capacity(&self) -> usize {
        self.bytes.len().max(BUFFER_SIZE)
    }

    pub(super) fn filled(&self) -> usize {
        self.filled
    }

    /// How much `spare()` will offer, without taking a buffer.
    pub(super) fn spare_len(&self) -> usize {
        self.capacity() - self.filled
    }

    /// Room to read into, taking a buffer from the pool first if none is held.
    pub(super) fn spare(&mut self) -> &mut [u8] {
        if self.bytes.is_empty() {
            self.bytes = take();
        }
        &mut self.bytes[self.filled..]
    }

    /// Counts `n` bytes read into `spare()`.
    pub(super) fn advance(&mut self, n: usize) {
        self.filled += n;
    }

    pub(super) fn data(&self) -> &[u8] {
        &self.bytes[..self.filled]
    }

    pub(super) fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.filled]
    }

    /// Drops the first `n` bytes; gives the buffer back if nothing is left.
    pub(super) fn consume(&mut self, n: usize) {
        self.bytes.copy_within(n..self.filled, 0);
        self.filled -= n;
        self.release_if_empty();
    }

    #[cfg(test)]
    pub(super) fn clear(&mut self) {
        self.filled = 0;
        self.release_if_empty();
    }

    #[cfg(test)]
    pub(super) fn is_held(&self) -> bool {
        !self.bytes.is_empty()
    }

    /// Gives the buffer back to the pool when it holds no bytes.
    pub(super) fn release_if_empty(&mut self) {
        if self.filled == 0 && !self.bytes.is_empty() {
            give(std::mem::take(&mut self.bytes));
        }
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        self.filled = 0;
        self.release_if_empty();
    }
}

fn take() -> Box<[u8]> {
    #[cfg(test)]
    HELD.set(HELD.get() + 1);
    POOL.with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| vec![0; BUFFER_SIZE].into_boxed_slice())
}

fn give(bytes: Box<[u8]>) {
    #[cfg(test)]
    HELD.set(HELD.get() - usize::from(bytes.len() == BUFFER_SIZE));
    // A buffer grown for a large prefix is not pooled.
    if bytes.len() == BUFFER_SIZE {
        POOL.with_borrow_mut(|pool| {
            if pool.len() < POOL_MAX {
                pool.push(bytes);
            }
        });
    }
}

#[cfg(test)]
thread_local! {
    /// Pool buffers out on this thread (taken, not given back).
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many pool buffers the tunnels on this thread hold (a current-thread test runtime runs all
/// of its tunnels here).
#[cfg(test)]
pub(super) fn held_on_this_thread() -> usize {
    HELD.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_a_buffer_only_while_bytes_are_in_it() {
        let mut buf = ReadBuffer::with_prefix(&[]);
        assert!(!buf.is_held());
        assert_eq!(buf.capacity(), BUFFER_SIZE);
        buf.spare()[..3].copy_from_slice(b"abc");
        buf.advance(3);
        assert!(buf.is_held());
        buf.consume(1);
        assert_eq!(buf.data(), b"bc");
        assert!(buf.is_held());
        buf.consume(2);
        assert!(!buf.is_held());
    }

    #[test]
    fn a_large_prefix_gets_a_buffer_of_its_own() {
        let prefix = vec![7u8; BUFFER_SIZE + 10];
        let mut buf = ReadBuffer::with_prefix(&prefix);
        assert_eq!(buf.capacity(), BUFFER_SIZE + 10);
        assert_eq!(buf.data(), &prefix[..]);
        buf.clear();
        assert!(!buf.is_held());
        assert_eq!(buf.capacity(), BUFFER_SIZE);
    }

    #[test]
    fn released_buffers_are_reused() {
        let mut a = ReadBuffer::with_prefix(b"x");
        let ptr = a.data().as_ptr();
        a.clear();
        let b = ReadBuffer::with_prefix(b"y");
        assert_eq!(b.data().as_ptr(), ptr);
    }
}
