//! Digests of byte slices and of whole files: SHA-256 (version 1, and version 2 on request) and
//! BLAKE3 (version 2's default: one file hashed on every core).
//!
//! `digest_file` streams the file: a reader thread fills a small pool of recycled buffers while the
//! calling thread hashes, so disk/page-cache copies overlap with hashing and memory stays bounded
//! (`POOL_BUFFERS * CHUNK_SIZE`). `sha2` picks the SHA-NI backend at run time when the CPU has it.
//! BLAKE3 asked alone of a file larger than a chunk is hashed in place instead: the file mapped
//! (see `mapped`), each byte read once by the core that hashes it, no copy. SHA-256 and BLAKE3 asked
//! together hash each chunk at once on two cores.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError};

use sha2::{Digest as _, Sha256};

use crate::error::{CoreError, Result};

/// A raw 32-byte digest (SHA-256 or BLAKE3).
pub type Digest = [u8; 32];

/// Which digests one pass over a package computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DigestSet {
    pub sha256: bool,
    pub blake3: bool,
}

impl DigestSet {
    pub const SHA256: DigestSet = DigestSet {
        sha256: true,
        blake3: false,
    };
    pub const BLAKE3: DigestSet = DigestSet {
        sha256: false,
        blake3: true,
    };
}

/// A package's size and the digests that were computed of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackageDigests {
    pub size: u64,
    pub sha256: Option<Digest>,
    pub blake3: Option<Digest>,
}

/// Below this, a BLAKE3 update stays on the calling thread (splitting costs more than it saves).
const BLAKE3_PARALLEL_MIN: usize = 128 * 1024;

/// rayon pools of a given size, made once (BLAKE3 with a chosen number of threads).
fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    pools
        .entry(threads)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("cloacina-blake3-{i}"))
                    .build()
                    // A pool that cannot start threads still runs jobs on the calling thread.
                    .unwrap_or_else(|_| {
                        rayon::ThreadPoolBuilder::new()
                            .num_threads(1)
                            .use_current_thread()
                            .build()
                            .expect("a one-thread pool on the current thread")
                    }),
            )
        })
        .clone()
}

/// Hashes bytes into every digest of a set, in one pass.
pub struct MultiHasher {
    size: u64,
    sha256: Option<Sha256>,
    blake3: Option<blake3::Hasher>,
    /// BLAKE3's threads: `None` for rayon's global pool (every core), `Some(1)` for this thread only.
    threads: Option<usize>,
}

impl MultiHasher {
    pub fn new(set: DigestSet, threads: Option<usize>) -> Self {
        MultiHasher {
            size: 0,
            sha256: set.sha256.then(Sha256::new),
            blake3: set.blake3.then(blake3::Hasher::new),
            threads,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if let (Some(sha256), Some(blake3), false) = (
            &mut self.sha256,
            &mut self.blake3,
            self.threads == Some(1) || bytes.len() < BLAKE3_PARALLEL_MIN,
        ) {
            // SHA-256 cannot be split: it takes one core while BLAKE3 takes another.
            let mut both = || {
                rayon::join(|| sha256.update(bytes), || blake3.update(bytes));
            };
            match self.threads {
                Some(threads) => pool(threads).install(both),
                None => both(),
            }
            return;
        }
        if let Some(hasher) = &mut self.sha256 {
            hasher.update(bytes);
        }
        if let Some(hasher) = &mut self.blake3 {
            match self.threads {
                _ if bytes.len() < BLAKE3_PARALLEL_MIN => {
                    hasher.update(bytes);
                }
                Some(1) => {
                    hasher.update(bytes);
                }
                Some(threads) => pool(threads).install(|| {
                    hasher.update_rayon(bytes);
                }),
                None => {
                    hasher.update_rayon(bytes);
                }
            }
        }
    }

    pub fn finish(self) -> PackageDigests {
        PackageDigests {
            size: self.size,
            sha256: self.sha256.map(|h| h.finalize().into()),
            blake3: self.blake3.map(|h| *h.finalize().as_bytes()),
        }
    }
}

/// BLAKE3 of an input of known length hashed in equal pieces (a power of two of at least 1 KiB; the
/// last may be shorter) on any threads, in any order: each piece is a subtree of BLAKE3's tree, so
/// its chaining value depends on its bytes and its place only, and `finish` joins them as the tree
/// does. A copy can then be hashed piece by piece on every core while each piece is still in cache.
pub struct Blake3Pieces {
    piece_len: usize,
    len: u64,
    hashed: Mutex<Vec<Option<[u8; 32]>>>,
}

impl Blake3Pieces {
    pub fn new(len: u64, piece_len: usize) -> Self {
        assert!(
            piece_len.is_power_of_two() && piece_len >= blake3::CHUNK_LEN,
            "a piece is a whole subtree"
        );
        let pieces = usize::try_from(len.div_ceil(piece_len as u64)).expect("fits in memory");
        Blake3Pieces {
            piece_len,
            len,
            hashed: Mutex::new(vec![None; pieces]),
        }
    }

    /// Hashes piece `index`: bytes `index * piece_len ..` of the input, all of them.
    pub fn hash_piece(&self, index: usize, bytes: &[u8]) {
        use blake3::hazmat::HasherExt;
        let start = index as u64 * self.piece_len as u64;
        assert_eq!(
            bytes.len() as u64,
            (self.len - start).min(self.piece_len as u64),
            "a piece is hashed whole"
        );
        let value = if self.len <= self.piece_len as u64 {
            // One piece is the whole tree: its root.
            *blake3::hash(bytes).as_bytes()
        } else {
            blake3::Hasher::new()
                .set_input_offset(start)
                .update(bytes)
                .finalize_non_root()
        };
        self.hashed.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(value);
    }

    /// The digest of the whole input; `None` while a piece is not hashed.
    pub fn finish(self) -> Option<Digest> {
        let hashed = self
            .hashed
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .into_iter()
            .collect::<Option<Vec<_>>>()?;
        match hashed.as_slice() {
            [] => Some(blake3(&[])),
            [root] => Some(*root),
            _ => Some(join_root(&hashed, self.len, self.piece_len as u64)),
        }
    }
}

/// The root of the subtrees `values` covering `len` bytes (more than one piece).
fn join_root(values: &[[u8; 32]], len: u64, piece_len: u64) -> Digest {
    use blake3::hazmat::{merge_subtrees_root, Mode};
    let (left, right) = split_subtrees(values, len, piece_len);
    *merge_subtrees_root(&left, &right, Mode::Hash).as_bytes()
}

/// The chaining values of the left and right subtrees of `len` bytes made of `values`.
fn split_subtrees(values: &[[u8; 32]], len: u64, piece_len: u64) -> ([u8; 32], [u8; 32]) {
    let left_len = blake3::hazmat::left_subtree_len(len);
    let left_pieces = (left_len / piece_len) as usize;
    (
        join_non_root(&values[..left_pieces], left_len, piece_len),
        join_non_root(&values[left_pieces..], len - left_len, piece_len),
    )
}

fn join_non_root(values: &[[u8; 32]], len: u64, piece_len: u64) -> [u8; 32] {
    use blake3::hazmat::{merge_subtrees_non_root, Mode};
    if let [value] = values {
        return *value;
    }
    let (left, right) = split_subtrees(values, len, piece_len);
    merge_subtrees_non_root(&left, &right, Mode::Hash)
}

/// BLAKE3 of `bytes`.
pub fn blake3(bytes: &[u8]) -> Digest {
    *blake3::hash(bytes).as_bytes()
}

/// Size of one read. Measured on a page-cached 1 GiB file: 1–8 MiB are all
/// within noise of each other; 4 MiB keeps memory small.
#[doc(hidden)]
pub const CHUNK_SIZE: usize = 4 << 20;

/// Buffers in flight: one being hashed, one being filled, one spare so the
/// reader never waits for the hasher to hand a buffer back.
const POOL_BUFFERS: usize = 3;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// Lowercase hex of `d`.
pub fn to_hex(d: &[u8]) -> String {
    hex::encode(d)
}

/// SHA-256 of a whole file, streamed; never the whole file in memory.
///
/// `progress`, if given, is set (Relaxed) to the number of bytes hashed so far
/// after every chunk. Open/read failures and directories are
/// [`CoreError::UnreadableFile`].
pub fn sha256_file(path: &Path, progress: Option<&AtomicU64>) -> Result<Digest> {
    sha256_file_with_chunk(path, progress, CHUNK_SIZE)
}

/// [`sha256_file`] with an explicit chunk size (tests and benchmarks).
#[doc(hidden)]
pub fn sha256_file_with_chunk(
    path: &Path,
    progress: Option<&AtomicU64>,
    chunk: usize,
) -> Result<Digest> {
    let digests = digest_file_with_chunk(path, DigestSet::SHA256, progress, None, chunk)?;
    Ok(digests.sha256.expect("SHA-256 was requested"))
}

/// The size and the requested digests of a whole file, streamed, in one pass; BLAKE3 on `threads`
/// cores (`None`: every core). Errors as [`sha256_file`].
pub fn digest_file(
    path: &Path,
    set: DigestSet,
    progress: Option<&AtomicU64>,
    threads: Option<usize>,
) -> Result<PackageDigests> {
    digest_file_with_chunk(path, set, progress, threads, CHUNK_SIZE)
}

fn digest_file_with_chunk(
    path: &Path,
    set: DigestSet,
    progress: Option<&AtomicU64>,
    threads: Option<usize>,
    chunk: usize,
) -> Result<PackageDigests> {
    let hasher = MultiHasher::new(set, threads);
    let unreadable = |e: io::Error| CoreError::UnreadableFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    // Only a regular file: a FIFO, a device such as /dev/zero or a directory is refused at once.
    let (file, len) = crate::files::open_regular(path)?;
    let chunk = chunk.max(1);
    // A thread is not worth it for a file that fits in one chunk. In the WebAssembly build each
    // thread has a table of WASI descriptors of its own, so the file is read where it was opened.
    if len <= chunk as u64 || cfg!(target_os = "wasi") {
        // len + 1 so EOF is seen in one read; at least 64 KiB for files whose
        // reported size is wrong (e.g. /proc reports 0).
        let buf_len = (len as usize).saturating_add(1).max(64 * 1024);
        return hash_serial(file, hasher, progress, chunk.min(buf_len), 0).map_err(unreadable);
    }
    // BLAKE3 alone hashes the page cache in place, on every core; SHA-256 (one core) keeps the
    // reader thread, which copies the next chunk on the other core meanwhile.
    #[cfg(unix)]
    if set == DigestSet::BLAKE3 {
        let mapping = usize::try_from(len)
            .ok()
            .map(|len| crate::mapped::MappedFile::map(&file, len))
            .transpose()
            .map_err(unreadable)?
            .flatten();
        if let Some(mapping) = mapping {
            return hash_mapped(file, &mapping, hasher, progress).map_err(unreadable);
        }
    }
    hash_pipelined(file, hasher, progress, chunk).map_err(unreadable)
}

/// A mapped file is hashed in pieces of this size, so progress moves and at most one piece is
/// resident at a time; each piece is still large enough for every core to take a share of it.
#[cfg(unix)]
const MAPPED_PIECE: usize = 16 << 20;

#[cfg(unix)]
fn hash_mapped(
    mut file: File,
    mapping: &crate::mapped::MappedFile,
    mut hasher: MultiHasher,
    progress: Option<&AtomicU64>,
) -> io::Result<PackageDigests> {
    use std::io::{Seek, SeekFrom};
    let mut total = 0u64;
    for piece in mapping.bytes().chunks(MAPPED_PIECE) {
        hasher.update(piece);
        let start = total as usize;
        total += piece.len() as u64;
        mapping.done_with(start..total as usize);
        report(progress, total);
    }
    if mapping.shrunk() {
        return Err(io::Error::other("the file shrank while it was being read"));
    }
    // Bytes appended after the size was taken are hashed too, as reading to the end would.
    file.seek(SeekFrom::Start(total))?;
    hash_serial(file, hasher, progress, 64 * 1024, total)
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn fill(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn report(progress: Option<&AtomicU64>, total: u64) {
    if let Some(p) = progress {
        p.store(total, Ordering::Relaxed);
    }
}

/// Reads `file` to its end into `hasher`; `total` bytes were hashed before.
fn hash_serial(
    mut file: File,
    mut hasher: MultiHasher,
    progress: Option<&AtomicU64>,
    chunk: usize,
    mut total: u64,
) -> io::Result<PackageDigests> {
    let mut buf = vec![0u8; chunk.max(1)];
    loop {
        let n = fill(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        report(progress, total);
    }
    report(progress, total);
    Ok(hasher.finish())
}

/// Starts the reader thread. A thread that cannot be created (thread or memory limits) is an
/// error here, never a panic: the caller then hashes on its own thread.
fn spawn_reader<'scope, 'env, F>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    f: F,
) -> io::Result<std::thread::ScopedJoinHandle<'scope, ()>>
where
    F: FnOnce() + Send + 'scope,
{
    #[cfg(test)]
    if tests::SPAWN_FAILS.with(|fails| fails.get()) {
        return Err(io::Error::other("thread creation refused (test)"));
    }
    std::thread::Builder::new()
        .name("cloacina-hash-read".into())
        .spawn_scoped(scope, f)
}

fn hash_pipelined(
    file: File,
    hasher: MultiHasher,
    progress: Option<&AtomicU64>,
    chunk: usize,
) -> io::Result<PackageDigests> {
    let mut hasher = Some(hasher);
    let spawned = std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::channel::<io::Result<(Vec<u8>, usize)>>();
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        for _ in 0..POOL_BUFFERS {
            // Cannot fail: the receiver is alive.
            let _ = free_tx.send(vec![0u8; chunk]);
        }

        // The reader borrows the file, so that it is still ours if no thread can be started.
        let file = &file;
        let reader = spawn_reader(scope, move || {
            let mut file = file;
            // Ends when EOF/error is reached or the hasher hangs up (drops free_tx).
            while let Ok(mut buf) = free_rx.recv() {
                match fill(&mut file, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if full_tx.send(Ok((buf, n))).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        break;
                    }
                }
            }
            // Dropping full_tx here tells the hasher the stream is over.
        });
        if reader.is_err() {
            return None; // nothing was read yet
        }

        let mut hasher = hasher.take().expect("the hasher is used once");
        let mut total = 0u64;
        for msg in full_rx {
            let (buf, n) = match msg {
                Ok(m) => m,
                Err(e) => return Some(Err(e)),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
            report(progress, total);
            let _ = free_tx.send(buf);
        }
        report(progress, total);
        Some(Ok(hasher.finish()))
    });
    match spawned {
        Some(result) => result,
        // No reader thread: read and hash on this one.
        None => hash_serial(
            file,
            hasher.take().expect("not used without a reader"),
            progress,
            chunk,
            0,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Makes `spawn_reader` fail on this thread, as when the thread limit is reached.
        pub(super) static SPAWN_FAILS: Cell<bool> = const { Cell::new(false) };
    }

    fn file_of(len: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        (dir, path, data)
    }

    #[test]
    fn a_file_is_hashed_the_same_with_and_without_a_reader_thread() {
        let (_dir, path, data) = file_of(100_000);
        let expected = sha256(&data);
        let progress = AtomicU64::new(0);
        // Chunks of 4 KiB: the pipelined path (the file is larger than a chunk).
        let piped = sha256_file_with_chunk(&path, Some(&progress), 4096).unwrap();
        assert_eq!(piped, expected);
        assert_eq!(progress.load(Ordering::Relaxed), data.len() as u64);

        SPAWN_FAILS.with(|f| f.set(true));
        let progress = AtomicU64::new(0);
        let serial = sha256_file_with_chunk(&path, Some(&progress), 4096);
        SPAWN_FAILS.with(|f| f.set(false));
        assert_eq!(serial.unwrap(), expected);
        assert_eq!(progress.load(Ordering::Relaxed), data.len() as u64);
    }

    #[cfg(unix)]
    #[test]
    fn when_a_mapped_file_is_truncated_while_it_is_hashed_it_is_refused_and_the_process_lives() {
        let (_dir, path, data) = file_of(3 * MAPPED_PIECE / 2);
        let file = File::open(&path).unwrap();
        let mapping = crate::mapped::MappedFile::map(&file, data.len())
            .unwrap()
            .expect("a guarded mapping");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let hasher = MultiHasher::new(DigestSet::BLAKE3, None);
        let err = hash_mapped(file, &mapping, hasher, None).unwrap_err();
        assert!(err.to_string().contains("shrank"), "{err}");
    }

    #[test]
    fn when_only_blake3_is_asked_of_a_large_file_it_is_the_in_memory_digest() {
        let (_dir, path, data) = file_of(3 * MAPPED_PIECE / 2 + 12_345);
        for threads in [Some(1), Some(2), None] {
            let progress = AtomicU64::new(0);
            let digests = digest_file(&path, DigestSet::BLAKE3, Some(&progress), threads).unwrap();
            assert_eq!(digests.blake3, Some(blake3(&data)), "threads {threads:?}");
            assert_eq!(digests.size, data.len() as u64);
            assert_eq!(progress.load(Ordering::Relaxed), data.len() as u64);
        }
    }

    #[test]
    fn pieces_hashed_in_any_order_join_to_the_digest_of_the_whole() {
        let piece = 4096;
        for len in [
            0,
            1,
            piece - 1,
            piece,
            piece + 1,
            3 * piece,
            5 * piece + 7,
            64 * piece + 1,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
            let pieces = Blake3Pieces::new(len as u64, piece);
            for (index, bytes) in data.chunks(piece).enumerate().rev() {
                pieces.hash_piece(index, bytes);
            }
            assert_eq!(pieces.finish(), Some(blake3(&data)), "len {len}");
        }
        let unfinished = Blake3Pieces::new(2 * piece as u64, piece);
        unfinished.hash_piece(0, &[0; 4096]);
        assert_eq!(unfinished.finish(), None);
    }

    #[test]
    fn known_answers() {
        assert_eq!(
            to_hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            to_hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(to_hex(&[0xAB, 0x01]), "ab01");
    }
}
