//! A package's bytes, copied once into a memfd sealed against other writers before the copy,
//! hashed as they are copied, and sealed for good before anything may map them.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, PoisonError};

use cloacina_sign_core::digest::{Blake3Pieces, DigestSet, MultiHasher, PackageDigests};

use crate::error::LoadError;

/// `MFD_EXEC` (Linux 6.3+): explicitly ask for an executable memfd. Older kernels reject the
/// flag with EINVAL, in which case we retry without it.
const MFD_EXEC: libc::c_uint = 0x0010;
const MEMFD_NAME: &[u8] = b"cloacina-package\0";
/// Linux 5.1+: no new write(2) or writable mapping, while mappings made before it keep working.
const F_SEAL_FUTURE_WRITE: libc::c_int = 0x0010;
/// Applied before the first byte is copied: from then on only our own mapping can write.
const SEALS_BEFORE_COPY: libc::c_int =
    libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | F_SEAL_FUTURE_WRITE;
/// Applied once our writable mapping is gone: the bytes can never change again.
const SEALS: libc::c_int =
    libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
/// The copy runs ahead of the hash in chunks of this size (small enough to stay in cache).
const CHUNK: usize = 1 << 20;

/// Immutable bytes of a package: a sealed memfd (no write, grow, shrink, or further seal changes
/// are possible, by anyone, through any descriptor) plus a read-only mapping of it and the
/// SHA-256 of the mapped — i.e. sealed — bytes.
///
/// Its bytes are not readable from outside this crate: only a [`crate::ClearedImage`] (a signature
/// verified, or unsigned explicitly allowed) hands them out, so no parser — the ELF checks, the
/// WebAssembly magic, the dependency policy — can be given bytes whose signature was not decided.
/// (The same calls on a cleared image compile: see [`crate::ClearedImage::bytes`].)
///
/// ```compile_fail
/// # use cloacina_sign_core::digest::DigestSet;
/// let image = cloacina_sign_loader::SealedImage::from_path(
///     std::path::Path::new("pkg.so"), 1 << 20, DigestSet::SHA256).unwrap();
/// let _ = image.bytes(); // undecided bytes: not reachable
/// ```
///
/// ```compile_fail
/// # use cloacina_sign_core::digest::DigestSet;
/// use cloacina_sign_loader::PackageFormat;
/// let image = cloacina_sign_loader::SealedImage::from_path(
///     std::path::Path::new("pkg.so"), 1 << 20, DigestSet::SHA256).unwrap();
/// let _ = image.check_format(PackageFormat::SharedLibrary); // format checks take a ClearedImage
/// ```
///
/// Dropping it unmaps the bytes and closes the descriptor.
pub struct SealedImage {
    fd: OwnedFd,
    ptr: *const u8,
    len: usize,
    digests: PackageDigests,
}

// SAFETY: the pointer is a process-wide, read-only mapping owned by this value (unmapped only in
// Drop) of a memfd sealed against writes, so the bytes can never change; nothing about it is tied
// to the thread that made it, so the value may move to, and be dropped on, any thread.
unsafe impl Send for SealedImage {}
// SAFETY: `&self` only hands out `&[u8]` views of a read-only mapping of a sealed memfd (the
// bytes can never change) and the descriptor number; nothing is mutated through `&self`.
unsafe impl Sync for SealedImage {}

impl std::fmt::Debug for SealedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedImage")
            .field("fd", &self.fd.as_raw_fd())
            .field("len", &self.len)
            .field("digests", &self.digests)
            .finish()
    }
}

fn unreadable(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Unreadable {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: `libc::stat` is a plain C struct of integers; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat only writes into `st`, a valid out-pointer; a bad `fd` is an error return.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn file_kind(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFLNK => "a symbolic link",
        _ => "not a regular file",
    }
}

impl SealedImage {
    /// Opens `path` once, copies its bytes (at most `max_size`) into a new memfd that is already
    /// sealed against every writer but our own mapping, hashes each chunk right after copying
    /// it, then seals the memfd for good and maps it read-only.
    ///
    /// Errors: `Unreadable` (cannot open/read, not a regular file, changed size while being
    /// read), `TooLarge` (bigger than `max_size`), `Unsupported` (no memfd sealing, Linux < 5.1,
    /// or no `/proc/self/fd`).
    pub fn from_path(
        path: &Path,
        max_size: u64,
        digests: DigestSet,
    ) -> Result<SealedImage, LoadError> {
        let cpath = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| unreadable(path, "the path contains a NUL byte"))?;
        // O_NONBLOCK: opening a FIFO must not hang; it is rejected by the fstat check below.
        // SAFETY: `cpath` is a valid NUL-terminated path; open has no other preconditions.
        let raw = unsafe {
            libc::open(
                cpath.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK,
            )
        };
        if raw < 0 {
            return Err(unreadable(path, io::Error::last_os_error().to_string()));
        }
        // SAFETY: `raw` was just returned by open (checked >= 0) and is owned by nobody else.
        let file = unsafe { OwnedFd::from_raw_fd(raw) };
        let st = fstat(file.as_raw_fd()).map_err(|e| unreadable(path, format!("fstat: {e}")))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(unreadable(
                path,
                format!("{} is not a regular file", file_kind(st.st_mode)),
            ));
        }
        let size = st.st_size as u64;
        if size > max_size {
            return Err(LoadError::TooLarge {
                size,
                limit: max_size,
            });
        }
        let len = usize::try_from(size).map_err(|_| LoadError::TooLarge {
            size,
            limit: max_size,
        })?;

        let target = PresealedMemfd::create(len)?;
        check_proc_fd(target.fd.as_raw_fd())?;
        let digests = if digests == DigestSet::BLAKE3 {
            copy_and_hash_pieces(&file, &target)
        } else {
            copy_and_hash(&file, &target, MultiHasher::new(digests, None))
        }
        .map_err(|e| unreadable(path, format!("reading the file failed: {e}")))?;
        drop(file);
        let memfd = target.seal_for_good()?;

        // Private: kernels before 6.7 refuse a shared mapping of a write-sealed memfd through a
        // read-write descriptor. Never written, so never copied.
        let ptr = map_memfd(
            &memfd,
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            "the sealed image",
        )?;
        Ok(SealedImage {
            fd: memfd,
            ptr,
            len,
            digests,
        })
    }

    /// The size and digests of the sealed bytes (those requested when sealing).
    pub fn digests(&self) -> &PackageDigests {
        &self.digests
    }

    /// The sealed bytes (exactly what was hashed, and what a load maps). Crate-private: nothing
    /// outside this crate reads bytes whose signature was not decided; a [`crate::ClearedImage`]
    /// hands them out.
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            &[]
        } else {
            // SAFETY: ptr maps `len` bytes read-only for the lifetime of self; the memfd is sealed.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sealed memfd. Owned by the image: do not close it.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A fresh, never-before-returned `/proc/self/fd/...` path naming this memfd
    /// (see [`crate::unique_proc_path`]).
    pub fn proc_path(&self) -> String {
        crate::process::unique_proc_path(self.fd())
    }

    /// Test hook: moves the memfd to descriptor number `target` (which must be free) so that tests
    /// can force descriptor-number reuse deterministically. Not part of the stable API.
    #[doc(hidden)]
    pub fn __renumber_fd_for_tests(&mut self, target: RawFd) -> io::Result<()> {
        if target == self.fd() {
            return Ok(());
        }
        // SAFETY: F_GETFD only queries a descriptor number; no memory is involved.
        if unsafe { libc::fcntl(target, libc::F_GETFD) } != -1 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "target descriptor is in use",
            ));
        }
        // SAFETY: duplicates our own open descriptor onto `target`, which is free (checked above).
        let r = unsafe { libc::dup3(self.fd(), target, libc::O_CLOEXEC) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `r` was just returned by dup3 (checked >= 0) and is owned by nobody else; the
        // assignment drops, i.e. closes, the old descriptor.
        self.fd = unsafe { OwnedFd::from_raw_fd(r) }; // the old descriptor is closed here
        Ok(())
    }
}

impl Drop for SealedImage {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr`/`len` is exactly the mapping made in `from_path`, unmapped once, here;
            // slices from `bytes()` borrow `self`, so none outlives it.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
        // `fd` closes itself afterwards.
    }
}

fn create_memfd() -> Result<OwnedFd, LoadError> {
    let name = MEMFD_NAME.as_ptr() as *const libc::c_char;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: `name` is a NUL-terminated static string; memfd_create has no other preconditions.
    let mut fd = unsafe { libc::memfd_create(name, base | MFD_EXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EACCES)) {
            // SAFETY: as above.
            fd = unsafe { libc::memfd_create(name, base) };
        }
    }
    if fd < 0 {
        return Err(LoadError::Unsupported(format!(
            "memfd_create(MFD_ALLOW_SEALING) failed: {} (Linux >= 3.17 with memfd sealing is required)",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: `fd` was just returned by memfd_create (checked >= 0) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Maps `len` bytes of `fd` (null for an empty file, which cannot be mapped).
fn map_memfd(
    fd: &OwnedFd,
    len: usize,
    prot: libc::c_int,
    flags: libc::c_int,
    what: &str,
) -> Result<*mut u8, LoadError> {
    if len == 0 {
        return Ok(ptr::null_mut());
    }
    // SAFETY: a new mapping placed by the kernel (no MAP_FIXED), so no existing memory is affected;
    // `fd` is open for the duration of the call.
    let p = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, fd.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        return Err(LoadError::LoadFailed(format!(
            "mapping {what} failed: {}",
            io::Error::last_os_error()
        )));
    }
    Ok(p as *mut u8)
}

/// The loader names the memfd through `/proc/self/fd/N` (including the `.`/empty-segment forms
/// used by unique paths); make sure that resolves to this very inode.
fn check_proc_fd(fd: RawFd) -> Result<(), LoadError> {
    let want = fstat(fd).map_err(|e| LoadError::Unsupported(format!("fstat of memfd: {e}")))?;
    for p in [
        format!("/proc/self/fd/{fd}"),
        format!("/proc/self/fd/.//./{fd}"),
    ] {
        let c = CString::new(p.clone()).expect("no NUL in a formatted path");
        // SAFETY: `libc::stat` is a plain C struct of integers; all-zero is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
        if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
            return Err(LoadError::Unsupported(format!(
                "/proc/self/fd is not available ({p}: {}); is /proc mounted?",
                io::Error::last_os_error()
            )));
        }
        if st.st_dev != want.st_dev || st.st_ino != want.st_ino {
            return Err(LoadError::Unsupported(format!(
                "{p} does not resolve to the sealed memfd"
            )));
        }
    }
    Ok(())
}

/// A memfd of fixed size, sealed against writes through any descriptor or new mapping, plus the
/// one writable mapping (ours) that existed before those seals.
struct PresealedMemfd {
    fd: OwnedFd,
    writer: WritableMapping,
}

/// Our shared writable mapping of the memfd; unmapped on drop.
struct WritableMapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: plain shared memory; `copy_and_hash` gives each chunk to exactly one writer (each is
// claimed once), and the hasher reads a chunk only after its writer has finished it.
unsafe impl Send for WritableMapping {}
// SAFETY: see Send: concurrent users write disjoint chunks, and a chunk is read only after its
// writer finished it (ordered by the channel between them, or written by the reader itself).
unsafe impl Sync for WritableMapping {}

impl WritableMapping {
    /// Bytes `range` of the mapping. Only for ranges whose writer has finished.
    fn written(&self, range: std::ops::Range<usize>) -> &[u8] {
        if range.is_empty() {
            return &[];
        }
        assert!(range.end <= self.len);
        // SAFETY: inside the mapping, and (the caller's promise) no longer being written.
        unsafe { std::slice::from_raw_parts(self.ptr.add(range.start), range.len()) }
    }
}

impl Drop for WritableMapping {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr`/`len` is exactly the mapping made in `PresealedMemfd::create`, unmapped
            // once, here; slices from `written()` borrow `self`, so none outlives it.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }
}

static DUMPABLE_LOCK: Mutex<()> = Mutex::new(());

impl PresealedMemfd {
    fn create(len: usize) -> Result<PresealedMemfd, LoadError> {
        // Between memfd_create and the seals, another process of our user could open the memfd
        // through /proc/<pid>/fd and keep a writable mapping of it. While we are not dumpable the
        // kernel refuses them that (and pidfd_getfd), so nobody but us ever holds a writer.
        require_kernel(MIN_KERNEL)?;
        hidden_from_other_processes(|| {
            let fd = create_memfd()?;
            // SAFETY: sizes our own, still unsealed memfd; no memory is involved.
            if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
                return Err(LoadError::LoadFailed(format!(
                    "sizing the memfd failed: {}",
                    io::Error::last_os_error()
                )));
            }
            let writer = WritableMapping {
                ptr: map_memfd(
                    &fd,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    "the memfd",
                )?,
                len,
            };
            // A child forked meanwhile must not inherit a writer.
            if len > 0
                // SAFETY: `writer.ptr`/`len` is the mapping just made; MADV_DONTFORK only changes whether
                // children inherit it.
                && unsafe {
                    libc::madvise(writer.ptr as *mut libc::c_void, len, libc::MADV_DONTFORK)
                } != 0
            {
                return Err(LoadError::LoadFailed(format!(
                    "keeping the memfd mapping out of child processes failed: {}",
                    io::Error::last_os_error()
                )));
            }
            // SAFETY: adds seals to our own memfd; no memory is involved.
            if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS_BEFORE_COPY) } != 0 {
                return Err(LoadError::Unsupported(format!(
                    "sealing the memfd against writes failed: {} (Linux >= 5.12 with memfd sealing is required)",
                    io::Error::last_os_error()
                )));
            }
            Ok(PresealedMemfd { fd, writer })
        })
    }

    /// Drops our writable mapping, then adds the seals that make the bytes immutable for good.
    fn seal_for_good(self) -> Result<OwnedFd, LoadError> {
        let PresealedMemfd { fd, writer } = self;
        drop(writer);
        seal(fd.as_raw_fd())?;
        Ok(fd)
    }
}

/// F_SEAL_FUTURE_WRITE exists since 5.1, but before 5.12 it also broke private writable mappings of
/// the memfd, which is how the dynamic loader maps a library's data.
const MIN_KERNEL: (u32, u32) = (5, 12);

fn require_kernel((major, minor): (u32, u32)) -> Result<(), LoadError> {
    // SAFETY: `libc::utsname` is a plain C struct of byte arrays; all-zero is a valid value.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname only writes into `name`, a valid out-pointer.
    if unsafe { libc::uname(&mut name) } != 0 {
        return Err(LoadError::Unsupported(format!(
            "uname failed: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: uname NUL-terminates `release` inside its array (zeroed beforehand, too).
    let release = unsafe { std::ffi::CStr::from_ptr(name.release.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let found = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if found < (major, minor) {
        return Err(LoadError::Unsupported(format!(
            "guarded loading needs Linux {major}.{minor} or later (memfd sealing with F_SEAL_FUTURE_WRITE); this is {release}"
        )));
    }
    Ok(())
}

/// Runs `f` while no unprivileged process can open our descriptors through /proc/<pid>/fd, and
/// fails closed when that cannot be established or did not hold until `f` returned.
fn hidden_from_other_processes<T>(
    f: impl FnOnce() -> Result<T, LoadError>,
) -> Result<T, LoadError> {
    let _one_at_a_time = DUMPABLE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    lower_dumpable_while(f)
}

fn dumpable() -> libc::c_int {
    // SAFETY: PR_GET_DUMPABLE only reads a process attribute.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }
}

// Without the lock: a forked test child cannot take a lock another thread may have held at fork.
fn lower_dumpable_while<T>(f: impl FnOnce() -> Result<T, LoadError>) -> Result<T, LoadError> {
    // 0 or 2 (SUID_DUMP_ROOT) already hide us; only the usual 1 needs lowering, then restoring.
    let restore = match dumpable() {
        1 => {
            let guard = RestoreDumpable::capture();
            // SAFETY: PR_SET_DUMPABLE only changes a process attribute; no memory is involved.
            if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) } != 0 {
                return Err(LoadError::Unsupported(format!(
                    "making the process non-dumpable failed: {}",
                    io::Error::last_os_error()
                )));
            }
            Some(guard)
        }
        0 | 2 => None,
        other => {
            return Err(LoadError::Unsupported(format!(
                "PR_GET_DUMPABLE failed ({other}): {}",
                io::Error::last_os_error()
            )))
        }
    };
    if dumpable() == 1 {
        return Err(LoadError::Unsupported(
            "the process could not be made non-dumpable".into(),
        ));
    }
    let result = f();
    // Other code in this process raising it meanwhile would have reopened /proc/<pid>/fd.
    let held = dumpable() != 1;
    drop(restore);
    if !held {
        return Err(LoadError::LoadFailed(
            "the process became dumpable while the package was being sealed (something else in \
             this process changed PR_SET_DUMPABLE); refusing the copy"
                .into(),
        ));
    }
    result
}

/// Sets dumpable back to 1 on drop (also on panic), unless someone else has changed it or our
/// credentials since: a set*id() meanwhile lowers it on purpose.
struct RestoreDumpable {
    ids: [libc::uid_t; 6],
}

impl RestoreDumpable {
    fn capture() -> RestoreDumpable {
        RestoreDumpable { ids: current_ids() }
    }
}

fn current_ids() -> [libc::uid_t; 6] {
    let mut ids = [0; 6];
    let [r, e, s, rg, eg, sg] = &mut ids;
    // SAFETY: getresuid/getresgid only write the three ids into the valid out-pointers given.
    unsafe {
        libc::getresuid(r, e, s);
        libc::getresgid(rg, eg, sg);
    }
    ids
}

impl Drop for RestoreDumpable {
    fn drop(&mut self) {
        if dumpable() == 0 && current_ids() == self.ids {
            // SAFETY: PR_SET_DUMPABLE only changes a process attribute; no memory is involved.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) };
        }
    }
}

/// Copies the file into the pre-sealed memfd on a helper thread, chunk by chunk, while this
/// thread hashes the finished chunks in order: the copy costs (almost) no extra wall time. When
/// the next chunk to hash is not copied yet, this thread copies a chunk nobody has claimed
/// instead of waiting, so on a machine where copying (page allocation) is slower than hashing the
/// two threads share the copy. Every chunk is claimed once, through `claims`, so each has exactly
/// one writer, and it is hashed only after its writer finished it. Without a helper thread
/// (thread limit reached) it copies, then hashes, on this one.
fn copy_and_hash(
    file: &OwnedFd,
    target: &PresealedMemfd,
    mut hasher: MultiHasher,
) -> io::Result<PackageDigests> {
    let (src, map) = (file.as_raw_fd(), &target.writer);
    let chunks = map.len.div_ceil(CHUNK);
    let claims = AtomicUsize::new(0);
    let claim = || {
        let chunk = claims.fetch_add(1, Ordering::Relaxed);
        (chunk < chunks).then_some(chunk)
    };
    let (done_tx, done_rx) = mpsc::sync_channel::<io::Result<usize>>(chunks + 1);
    std::thread::scope(|s| {
        // `move`: the sender goes with the thread, so a copier that dies disconnects the channel.
        let helper = spawn_copier(s, move || {
            while let Some(chunk) = claim() {
                let copied = copy_chunk(src, map, chunk).map(|()| chunk);
                let failed = copied.is_err();
                if done_tx.send(copied).is_err() || failed {
                    return;
                }
            }
        });
        if helper.is_err() {
            for chunk in 0..chunks {
                copy_chunk(src, map, chunk)?;
            }
            check_end_of_file(src, map.len)?;
            hasher.update(map.written(0..map.len));
            return Ok(hasher.finish());
        }
        let hashed = hash_in_order(map, chunks, &mut hasher, &done_rx, || {
            let chunk = claim()?;
            Some(copy_chunk(src, map, chunk).map(|()| chunk))
        });
        if hashed.is_err() {
            // Stop the copier at its next claim.
            claims.store(chunks, Ordering::Relaxed);
        }
        hashed?;
        check_end_of_file(src, map.len)?;
        Ok(hasher.finish())
    })
}

/// BLAKE3 alone: each thread claims a chunk, copies it, then hashes it as a subtree of BLAKE3's tree
/// while it is still in cache, so copy and hash run on both cores and nothing waits for an earlier
/// chunk. Every chunk is claimed once, so each has exactly one writer, and it is hashed by that
/// writer after it finished it. Without a helper thread (thread limit reached) this thread does all.
fn copy_and_hash_pieces(file: &OwnedFd, target: &PresealedMemfd) -> io::Result<PackageDigests> {
    let (src, map) = (file.as_raw_fd(), &target.writer);
    let chunks = map.len.div_ceil(CHUNK);
    let pieces = Blake3Pieces::new(map.len as u64, CHUNK);
    let claims = AtomicUsize::new(0);
    let work = || -> io::Result<()> {
        loop {
            let chunk = claims.fetch_add(1, Ordering::Relaxed);
            if chunk >= chunks {
                return Ok(());
            }
            if let Err(e) = copy_chunk(src, map, chunk) {
                // Stop the other thread at its next claim.
                claims.store(chunks, Ordering::Relaxed);
                return Err(e);
            }
            pieces.hash_piece(chunk, map.written(chunk_range(map, chunk)));
        }
    };
    std::thread::scope(|s| {
        let helper = spawn_copier(s, work);
        let here = work();
        let there = match helper {
            Ok(helper) => helper
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the copying thread stopped"))),
            Err(_) => Ok(()),
        };
        here.and(there)
    })?;
    check_end_of_file(src, map.len)?;
    let blake3 = pieces
        .finish()
        .ok_or_else(|| io::Error::other("a chunk was not hashed"))?;
    Ok(PackageDigests {
        size: map.len as u64,
        sha256: None,
        blake3: Some(blake3),
    })
}

/// Hashes the `chunks` chunks of `map` in order as they are copied: reported by the copier on
/// `done`, or copied here by `copy_one` (which claims an unclaimed chunk; `None` when none is left)
/// while the next one to hash is not ready.
fn hash_in_order(
    map: &WritableMapping,
    chunks: usize,
    hasher: &mut MultiHasher,
    done: &mpsc::Receiver<io::Result<usize>>,
    mut copy_one: impl FnMut() -> Option<io::Result<usize>>,
) -> io::Result<()> {
    let stopped = || io::Error::other("the copying thread stopped");
    let mut copied = vec![false; chunks];
    let mut next = 0usize;
    while next < chunks {
        if copied[next] {
            hasher.update(map.written(chunk_range(map, next)));
            next += 1;
            continue;
        }
        let report = match done.try_recv() {
            Ok(report) => report,
            // Nothing finished yet: copy an unclaimed chunk here rather than wait.
            Err(mpsc::TryRecvError::Empty) => match copy_one() {
                Some(report) => report,
                None => done.recv().map_err(|_| stopped())?,
            },
            Err(mpsc::TryRecvError::Disconnected) => return Err(stopped()),
        };
        copied[report?] = true;
    }
    Ok(())
}

/// Starts the copying thread; an error (never a panic) when no thread can be created.
fn spawn_copier<'scope, 'env, F, T>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    f: F,
) -> io::Result<std::thread::ScopedJoinHandle<'scope, T>>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    #[cfg(test)]
    if tests::SPAWN_FAILS.with(|fails| fails.get()) {
        return Err(io::Error::other("thread creation refused (test)"));
    }
    std::thread::Builder::new()
        .name("cloacina-copy".into())
        .spawn_scoped(scope, f)
}

/// The bytes of chunk `chunk` of the mapping.
fn chunk_range(map: &WritableMapping, chunk: usize) -> std::ops::Range<usize> {
    chunk * CHUNK..((chunk + 1) * CHUNK).min(map.len)
}

/// Copies chunk `chunk` of `src` into `map` (the caller claimed it: nobody else writes it).
fn copy_chunk(src: RawFd, map: &WritableMapping, chunk: usize) -> io::Result<()> {
    let range = chunk_range(map, chunk);
    populate(map, range.start, range.end);
    pread_exact(src, map, range.start, range.end)
}

/// Our copy is a snapshot of `len` bytes; a file that has more was changed meanwhile (or is a
/// procfs-like file whose size means nothing): refuse it.
fn check_end_of_file(src: RawFd, len: usize) -> io::Result<()> {
    let mut probe = 0u8;
    loop {
        // SAFETY: reads at most 1 byte into `probe`, a valid 1-byte buffer.
        let r = unsafe {
            libc::pread(
                src,
                &mut probe as *mut u8 as *mut libc::c_void,
                1,
                len as libc::off_t,
            )
        };
        match r {
            0 => return Ok(()),
            r if r > 0 => return Err(io::Error::other("the file grew while it was being read")),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Allocates the pages of `[off, end)` of the mapping in one call (MADV_POPULATE_WRITE, Linux 5.14+)
/// rather than one page fault at a time while the chunk is copied: on VMs where a page fault is
/// costly this is most of the copy's time. Best effort: without it the copy faults the pages in.
fn populate(map: &WritableMapping, off: usize, end: usize) {
    const MADV_POPULATE_WRITE: libc::c_int = 23;
    // SAFETY: [off, end) lies inside the writable mapping; populating only allocates its pages.
    unsafe {
        libc::madvise(
            map.ptr.add(off) as *mut libc::c_void,
            end - off,
            MADV_POPULATE_WRITE,
        );
    }
}

fn pread_exact(src: RawFd, map: &WritableMapping, mut off: usize, end: usize) -> io::Result<()> {
    while off < end {
        // SAFETY: [off, end) lies inside the writable mapping and no one else touches it now.
        let dst = unsafe { map.ptr.add(off) } as *mut libc::c_void;
        // SAFETY: `dst` points at `end - off` writable bytes of our mapping that nobody else accesses
        // now (see above); pread writes at most that many.
        let r = unsafe { libc::pread(src, dst, end - off, off as libc::off_t) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN)) {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Err(io::Error::other("the file shrank while it was being read"));
        }
        off += r as usize;
    }
    Ok(())
}

fn seal(fd: RawFd) -> Result<(), LoadError> {
    // SAFETY: adds seals to our own memfd; no memory is involved.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, SEALS) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EBUSY) {
            // Someone holds a writable shared mapping of our memfd (it can only have been opened
            // through /proc/<pid>/fd by another process): refuse, do not hash mutable bytes.
            return Err(LoadError::LoadFailed(
                "the memfd could not be sealed because it has a writable mapping".into(),
            ));
        }
        if e.raw_os_error() == Some(libc::EPERM)
            // SAFETY: F_GET_SEALS only queries our memfd.
            && unsafe { libc::fcntl(fd, libc::F_GET_SEALS) } & libc::F_SEAL_SEAL != 0
        {
            // We add F_SEAL_SEAL only in this very call: another process sealed our memfd.
            return Err(LoadError::LoadFailed(
                "the memfd was sealed by someone else before we could seal it".into(),
            ));
        }
        return Err(LoadError::Unsupported(format!(
            "sealing the memfd failed: {e}"
        )));
    }
    // SAFETY: F_GET_SEALS only queries our memfd.
    let got = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if got < 0 || got & SEALS != SEALS {
        return Err(LoadError::Unsupported(format!(
            "the memfd seals could not be confirmed (F_GET_SEALS = {got})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    use cloacina_sign_core::digest::{blake3, sha256};

    thread_local! {
        /// Makes `spawn_copier` fail on this thread, as when the thread limit is reached.
        pub(super) static SPAWN_FAILS: Cell<bool> = const { Cell::new(false) };
    }

    #[test]
    fn without_a_copying_thread_the_copy_happens_on_the_calling_thread() {
        SPAWN_FAILS.with(|f| f.set(true));
        let result = copy_file_of(3 * CHUNK + 5, 3 * CHUNK + 5);
        SPAWN_FAILS.with(|f| f.set(false));
        let (digests, data) = result.unwrap();
        assert_eq!(digests.sha256, Some(sha256(&data)));
        assert_eq!(digests.blake3, Some(blake3(&data)));
        // And a file that changes size is still refused on that path.
        SPAWN_FAILS.with(|f| f.set(true));
        let err = copy_file_of(2 * CHUNK, 2 * CHUNK + 10).unwrap_err();
        SPAWN_FAILS.with(|f| f.set(false));
        assert!(err.to_string().contains("shrank"), "{err}");
    }

    /// In a child process: 0 when it can open our descriptor `fd` through /proc for writing,
    /// else the errno it got.
    fn foreign_open_for_write(fd: RawFd) -> i32 {
        let path = CString::new(format!("/proc/{}/fd/{fd}", std::process::id())).unwrap();
        // SAFETY: the child only calls async-signal-safe functions (open, _exit) before it exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: `path` is a valid C string (allocated before the fork); open and _exit are
            // async-signal-safe, and _exit never returns into the test harness.
            unsafe {
                let r = libc::open(path.as_ptr(), libc::O_RDWR);
                libc::_exit(if r >= 0 { 0 } else { *libc::__errno_location() });
            }
        }
        exit_code(pid)
    }

    fn exit_code(pid: libc::pid_t) -> i32 {
        let mut status = 0;
        if pid < 0
            // SAFETY: waitpid only writes the status into `status`, a valid out-pointer.
            || unsafe { libc::waitpid(pid, &mut status, 0) } != pid
            || !libc::WIFEXITED(status)
        {
            return -1;
        }
        libc::WEXITSTATUS(status)
    }

    /// 0 when, in this process, another process of our user can open a memfd of ours through
    /// /proc normally but not while we are hidden, and we are dumpable again afterwards.
    fn hiding_scenario() -> i32 {
        let Ok(memfd) = create_memfd() else { return 20 };
        if foreign_open_for_write(memfd.as_raw_fd()) != 0 {
            return 21; // the baseline must be reachable, or the test proves nothing
        }
        let hidden = lower_dumpable_while(|| Ok(foreign_open_for_write(memfd.as_raw_fd())));
        if !matches!(hidden, Ok(e) if e == libc::EACCES || e == libc::EPERM) {
            return 22;
        }
        if dumpable() != 1 {
            return 23;
        }
        0
    }

    #[test]
    fn while_hidden_no_other_process_of_our_user_can_open_our_descriptors() {
        // In a child of its own, so the other tests' images cannot interfere with its dumpable state.
        // SAFETY: the child ends with _exit and never returns into the test harness; what it runs
        // before (credential changes, prctl, the scenario's fork/open/waitpid) does not depend on
        // locks another thread may have held at the fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: plain system calls on this process's own credentials and attributes.
            unsafe {
                // Root's CAP_SYS_PTRACE bypasses the dumpable check: play both processes as `nobody`.
                let nobody = 65534;
                if libc::geteuid() == 0
                    && (libc::setgroups(0, ptr::null()) != 0
                        || libc::setresgid(nobody, nobody, nobody) != 0
                        || libc::setresuid(nobody, nobody, nobody) != 0)
                {
                    libc::_exit(30);
                }
                // Forked during another test's window, or lowered by setresuid: start dumpable.
                if libc::prctl(libc::PR_SET_DUMPABLE, 1) != 0 {
                    libc::_exit(31);
                }
                libc::_exit(hiding_scenario());
            }
        }
        assert_eq!(exit_code(pid), 0);
    }

    #[test]
    fn when_something_else_makes_the_process_dumpable_meanwhile_the_copy_is_refused() {
        let err = hidden_from_other_processes(|| {
            // SAFETY: PR_SET_DUMPABLE only changes a process attribute; no memory is involved.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) };
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("became dumpable"), "{err}");
        assert_eq!(dumpable(), 1);
    }

    /// Copies a file of `len` bytes into a memfd of `claimed` bytes; its SHA-256 and BLAKE3, and the data.
    fn copy_file_of(len: usize, claimed: usize) -> io::Result<(PackageDigests, Vec<u8>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("package");
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = OwnedFd::from(std::fs::File::open(&path).unwrap());
        let target = PresealedMemfd::create(claimed).unwrap();
        let hasher = MultiHasher::new(
            DigestSet {
                sha256: true,
                blake3: true,
            },
            None,
        );
        Ok((copy_and_hash(&file, &target, hasher)?, data))
    }

    /// Copies a file of `len` bytes into a memfd of `claimed` bytes hashing BLAKE3 alone; its BLAKE3, and the data.
    fn copy_pieces_of(len: usize, claimed: usize) -> io::Result<(PackageDigests, Vec<u8>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("package");
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = OwnedFd::from(std::fs::File::open(&path).unwrap());
        let target = PresealedMemfd::create(claimed).unwrap();
        Ok((copy_and_hash_pieces(&file, &target)?, data))
    }

    #[test]
    fn when_only_blake3_is_asked_each_chunk_is_hashed_as_it_is_copied_and_the_digest_is_the_files()
    {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            let (digests, data) = copy_pieces_of(len, len).unwrap();
            assert_eq!(digests.blake3, Some(blake3(&data)), "len {len}");
            assert_eq!(digests.sha256, None, "len {len}");
            assert_eq!(digests.size, len as u64);
        }
        SPAWN_FAILS.with(|f| f.set(true));
        let alone = copy_pieces_of(3 * CHUNK + 5, 3 * CHUNK + 5);
        SPAWN_FAILS.with(|f| f.set(false));
        let (digests, data) = alone.unwrap();
        assert_eq!(digests.blake3, Some(blake3(&data)));
    }

    #[test]
    fn when_only_blake3_is_asked_a_file_that_shrinks_or_grows_during_the_copy_is_refused() {
        let err = copy_pieces_of(2 * CHUNK, 2 * CHUNK + 10).unwrap_err();
        assert!(err.to_string().contains("shrank"), "{err}");
        let err = copy_pieces_of(2 * CHUNK, 2 * CHUNK - 10).unwrap_err();
        assert!(err.to_string().contains("grew"), "{err}");
    }

    #[test]
    fn a_multi_chunk_copy_hashes_exactly_the_file() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            let (digests, data) = copy_file_of(len, len).unwrap();
            assert_eq!(digests.sha256, Some(sha256(&data)), "len {len}");
            assert_eq!(digests.blake3, Some(blake3(&data)), "len {len}");
            assert_eq!(digests.size, len as u64);
        }
    }

    #[test]
    fn a_file_that_shrinks_or_grows_during_the_copy_is_refused() {
        let err = copy_file_of(2 * CHUNK, 2 * CHUNK + 10).unwrap_err();
        assert!(err.to_string().contains("shrank"), "{err}");
        let err = copy_file_of(2 * CHUNK, 2 * CHUNK - 10).unwrap_err();
        assert!(err.to_string().contains("grew"), "{err}");
    }

    #[test]
    fn before_the_copy_only_our_own_mapping_can_write() {
        let target = PresealedMemfd::create(8192).unwrap();
        let path = format!("/proc/self/fd/{}", target.fd.as_raw_fd());
        let other = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        use std::io::Write;
        let err = (&other).write_all(b"evil").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        assert!(other.set_len(1).is_err(), "shrinking must be sealed");
        assert!(other.set_len(1 << 20).is_err(), "growing must be sealed");
        // SAFETY: a new mapping placed by the kernel (no MAP_FIXED); it is expected to fail.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                8192,
                libc::PROT_WRITE,
                libc::MAP_SHARED,
                other.as_raw_fd(),
                0,
            )
        };
        assert_eq!(
            p,
            libc::MAP_FAILED,
            "a new writable mapping must be refused"
        );
        // SAFETY: offset 100 lies inside our 8192-byte writable mapping, which nothing else uses.
        unsafe { *target.writer.ptr.add(100) = 7 };
        let fd = target.seal_for_good().unwrap();
        let mut byte = 0u8;
        // SAFETY: reads at most 1 byte into `byte`, a valid 1-byte buffer.
        let r = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                &mut byte as *mut u8 as *mut libc::c_void,
                1,
                100,
            )
        };
        assert_eq!((r, byte), (1, 7));
        // SAFETY: F_GET_SEALS only queries the memfd.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS);
    }
}
