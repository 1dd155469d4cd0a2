//! SHA-256 of a byte stream that arrives on one thread and is hashed on another.
//!
//! The signing service receives an upload on Node's main thread, one socket read at a time. Hashing
//! there as well puts the receive and the hash in series on one core; here the main thread only copies
//! each read into a batch (a memcpy) and the batches are hashed, in order, by a thread of their own.
//!
//! Ordering is structural: every batch goes through one FIFO channel from the one producer, so the
//! digest is that of the bytes in the order `update` saw them. Memory is bounded by backpressure, not by
//! blocking: `update` reports when more than `HIGH_WATER` bytes wait to be hashed, the caller stops
//! reading and waits on `room()` (off its event loop) until the backlog is under `LOW_WATER`.
//! Hashed batches are sent back and reused, so a long stream allocates a handful of batches in all.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// Bytes copied into one batch before it is handed to the hashing thread.
pub const BATCH_BYTES: usize = 1 << 20;
/// Above this many queued bytes, `update` asks the caller to stop feeding. With the batch being
/// filled, one stream holds at most ~5 MiB here: the scale of the kernel's own receive buffer for
/// one TCP connection, so that many uploads at once cost no more memory than their sockets do.
pub const HIGH_WATER: usize = 4 * BATCH_BYTES;
/// `Room::wait` returns once the backlog is at most this.
pub const LOW_WATER: usize = 2 * BATCH_BYTES;

/// Bytes handed to the hashing thread and not yet hashed; the condvar wakes `Room::wait`.
#[derive(Default)]
struct Backlog {
    bytes: Mutex<usize>,
    shrank: Condvar,
}

impl Backlog {
    fn add(&self, n: usize) {
        *self.bytes.lock().unwrap_or_else(PoisonError::into_inner) += n;
    }

    fn queued(&self) -> usize {
        *self.bytes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hashed(&self, n: usize) {
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        *bytes = bytes.saturating_sub(n);
        if *bytes <= LOW_WATER {
            self.shrank.notify_all();
        }
    }

    fn wait_until_at_most(&self, limit: usize) {
        let bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        let _unused = self
            .shrank
            .wait_while(bytes, |bytes| *bytes > limit)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

enum Hashing {
    /// The hashing thread, fed through `batches`; hashed batches come back on `free`.
    Thread {
        batches: Sender<Vec<u8>>,
        free: Receiver<Vec<u8>>,
        worker: JoinHandle<Digest>,
    },
    /// No thread could be started (thread or memory limits): hash on the caller's thread.
    Inline(Sha256),
}

/// A SHA-256 over bytes fed in order by one thread and hashed by another.
pub struct StreamSha256 {
    hashing: Hashing,
    batch: Vec<u8>,
    backlog: Arc<Backlog>,
    size: u64,
}

/// Wakes every `Room::wait` when the hashing thread ends, however it ends.
struct WakeOnExit(Arc<Backlog>);

impl Drop for WakeOnExit {
    fn drop(&mut self) {
        // Nothing more will be hashed: a waiter must not wait for it.
        *self.0.bytes.lock().unwrap_or_else(PoisonError::into_inner) = 0;
        self.0.shrank.notify_all();
    }
}

impl StreamSha256 {
    pub fn new() -> Self {
        let backlog = Arc::new(Backlog::default());
        let (batches, to_hash) = mpsc::channel::<Vec<u8>>();
        let (recycle, free) = mpsc::channel::<Vec<u8>>();
        let thread_backlog = backlog.clone();
        let spawned = std::thread::Builder::new()
            .name("cloacina-stream-sha256".into())
            .spawn(move || {
                let _wake = WakeOnExit(thread_backlog.clone());
                let mut hasher = Sha256::new();
                // Ends when the producer drops its sender (finish, or dropped unfinished).
                for mut batch in to_hash {
                    hasher.update(&batch);
                    thread_backlog.hashed(batch.len());
                    batch.clear();
                    // The producer may be gone; the batch is then simply freed.
                    let _ = recycle.send(batch);
                }
                let digest: Digest = hasher.finalize().into();
                digest
            });
        let hashing = match spawned {
            Ok(worker) => Hashing::Thread {
                batches,
                free,
                worker,
            },
            Err(_) => Hashing::Inline(Sha256::new()),
        };
        StreamSha256 {
            hashing,
            batch: Vec::new(),
            backlog,
            size: 0,
        }
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Feeds the next bytes of the stream. Returns `false` when the hashing thread is more than
    /// `HIGH_WATER` bytes behind: the caller should stop feeding and wait on `room()` first
    /// (feeding more anyway stays correct, it only uses more memory).
    pub fn update(&mut self, bytes: &[u8]) -> bool {
        self.size += bytes.len() as u64;
        let (batches, free) = match &mut self.hashing {
            Hashing::Inline(hasher) => {
                hasher.update(bytes);
                return true;
            }
            Hashing::Thread { batches, free, .. } => (batches, free),
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.batch.capacity() == 0 {
                self.batch = free
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES));
            }
            let take = rest.len().min(BATCH_BYTES - self.batch.len());
            self.batch.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.batch.len() >= BATCH_BYTES {
                Self::hand_over(batches, &self.backlog, std::mem::take(&mut self.batch));
            }
        }
        self.backlog.queued() <= HIGH_WATER
    }

    /// Sends a full batch to the hashing thread, counted in the backlog until it is hashed.
    fn hand_over(batches: &Sender<Vec<u8>>, backlog: &Backlog, batch: Vec<u8>) {
        let len = batch.len();
        backlog.add(len);
        if batches.send(batch).is_err() {
            // The thread is gone (it only ends when this sender is dropped, or by a panic in the
            // hash): `finish` reports it; nothing waits for these bytes.
            backlog.hashed(len);
        }
    }

    /// A handle that blocks until the backlog is at most `LOW_WATER` (for a thread other than the
    /// producer's, e.g. a libuv worker, so that the producer's event loop never blocks).
    pub fn room(&self) -> Room {
        Room(self.backlog.clone())
    }

    /// Hashes what is left and returns the digest: blocks until the hashing thread is done.
    pub fn finish(mut self) -> std::thread::Result<Digest> {
        match self.hashing {
            Hashing::Inline(hasher) => Ok(hasher.finalize().into()),
            Hashing::Thread {
                batches, worker, ..
            } => {
                if !self.batch.is_empty() {
                    Self::hand_over(&batches, &self.backlog, std::mem::take(&mut self.batch));
                }
                drop(batches);
                worker.join()
            }
        }
    }
}

impl Default for StreamSha256 {
    fn default() -> Self {
        Self::new()
    }
}

/// Waits for the hashing thread to catch up (see `StreamSha256::room`).
#[derive(Clone)]
pub struct Room(Arc<Backlog>);

impl Room {
    pub fn wait(&self) {
        self.0.wait_until_at_most(LOW_WATER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8]) -> Digest {
        Sha256::digest(bytes).into()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    #[test]
    fn when_nothing_is_fed_it_is_the_digest_of_no_bytes() {
        let hasher = StreamSha256::new();
        assert_eq!(hasher.finish().unwrap(), reference(b""));
    }

    #[test]
    fn when_chunks_of_every_size_are_fed_it_is_the_digest_of_their_concatenation() {
        let data = pattern(5 * BATCH_BYTES + 12_345);
        for chunk in [
            1,
            7,
            4096,
            65_536,
            BATCH_BYTES - 1,
            BATCH_BYTES,
            BATCH_BYTES + 1,
            3 * BATCH_BYTES,
        ] {
            let mut hasher = StreamSha256::new();
            for piece in data.chunks(chunk) {
                hasher.update(piece);
            }
            assert_eq!(hasher.size(), data.len() as u64);
            assert_eq!(hasher.finish().unwrap(), reference(&data), "chunk {chunk}");
        }
    }

    #[test]
    fn when_two_streams_swap_one_byte_their_digests_differ() {
        let data = pattern(2 * BATCH_BYTES);
        let mut swapped = data.clone();
        swapped.swap(BATCH_BYTES - 1, BATCH_BYTES);
        let digest = |bytes: &[u8]| {
            let mut hasher = StreamSha256::new();
            for piece in bytes.chunks(65_536) {
                hasher.update(piece);
            }
            hasher.finish().unwrap()
        };
        assert_ne!(digest(&data), digest(&swapped));
        assert_eq!(digest(&swapped), reference(&swapped));
    }

    #[test]
    fn when_the_backlog_passes_the_high_water_update_asks_to_wait_and_room_lets_it_drain() {
        let data = pattern(BATCH_BYTES);
        let mut hasher = StreamSha256::new();
        // Fed far faster than one thread hashes, update says stop at some point; feeding on is correct.
        let mut asked_to_wait = false;
        for _ in 0..64 {
            if !hasher.update(&data) {
                asked_to_wait = true;
                hasher.room().wait();
                assert!(hasher.backlog.queued() <= LOW_WATER);
            }
        }
        assert!(
            asked_to_wait,
            "64 MiB fed at memcpy speed should outrun one SHA-256 thread"
        );
        let mut all = Vec::new();
        for _ in 0..64 {
            all.extend_from_slice(&data);
        }
        assert_eq!(hasher.finish().unwrap(), reference(&all));
    }

    #[test]
    fn when_an_unfinished_hasher_is_dropped_its_thread_ends_and_waiters_wake() {
        let mut hasher = StreamSha256::new();
        hasher.update(&pattern(3 * BATCH_BYTES));
        let room = hasher.room();
        drop(hasher);
        // Returns: the thread drains and ends, and the backlog is released.
        room.wait();
    }
}
