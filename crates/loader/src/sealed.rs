//! A package's bytes, copied once into a sealed memfd and hashed after sealing.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use sha2::{Digest, Sha256};

use crate::error::LoadError;

/// `MFD_EXEC` (Linux 6.3+): explicitly ask for an executable memfd. Older kernels reject the
/// flag with EINVAL, in which case we retry without it.
const MFD_EXEC: libc::c_uint = 0x0010;
const MEMFD_NAME: &[u8] = b"cloacina-package\0";
const SEALS: libc::c_int =
    libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
/// Largest single sendfile/copy_file_range request (the kernel caps at 0x7ffff000 anyway).
const MAX_CHUNK: u64 = 1 << 30;
const RW_BUF: usize = 4 << 20;

/// How the file's bytes are copied into the memfd. Only exposed for the benchmark example.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyStrategy {
    /// sendfile(2) from the file into the memfd (kernel-side copy), falling back to read/write.
    Sendfile,
    /// Plain read(2)/write(2) through a 4 MiB user buffer.
    ReadWrite,
    /// copy_file_range(2), falling back to sendfile then read/write (cross-filesystem copies
    /// into tmpfs are usually refused with EXDEV on current kernels).
    CopyFileRange,
}

/// Immutable bytes of a package: a sealed memfd (no write, grow, shrink, or further seal changes
/// are possible, by anyone, through any descriptor) plus a read-only mapping of it and the
/// SHA-256 of the mapped — i.e. sealed — bytes.
///
/// Dropping it unmaps the bytes and closes the descriptor.
pub struct SealedImage {
    fd: OwnedFd,
    ptr: *const u8,
    len: usize,
    digest: [u8; 32],
}

// SAFETY: the mapping is read-only and the memfd is sealed against writes, so the bytes can never
// change; sharing `&[u8]` views across threads is sound.
unsafe impl Send for SealedImage {}
unsafe impl Sync for SealedImage {}

impl std::fmt::Debug for SealedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedImage")
            .field("fd", &self.fd.as_raw_fd())
            .field("len", &self.len)
            .field("digest", &hex(&self.digest))
            .finish()
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unreadable(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Unreadable { path: path.display().to_string(), reason: reason.into() }
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
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
    /// Opens `path` once, copies its bytes (at most `max_size`) into a new memfd, seals the memfd,
    /// maps it read-only and hashes the mapped bytes.
    ///
    /// Errors: `Unreadable` (cannot open/read, not a regular file), `TooLarge` (bigger than
    /// `max_size` when stat'ed, or grew past it while being copied), `Unsupported` (no memfd
    /// sealing or no `/proc/self/fd`).
    pub fn from_path(path: &Path, max_size: u64) -> Result<SealedImage, LoadError> {
        Self::from_path_with(path, max_size, CopyStrategy::Sendfile)
    }

    #[doc(hidden)]
    pub fn from_path_with(
        path: &Path,
        max_size: u64,
        strategy: CopyStrategy,
    ) -> Result<SealedImage, LoadError> {
        let cpath = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| unreadable(path, "the path contains a NUL byte"))?;
        // O_NONBLOCK: opening a FIFO must not hang; it is rejected by the fstat check below.
        let raw = unsafe {
            libc::open(
                cpath.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK,
            )
        };
        if raw < 0 {
            return Err(unreadable(path, io::Error::last_os_error().to_string()));
        }
        let file = unsafe { OwnedFd::from_raw_fd(raw) };
        let st = fstat(file.as_raw_fd()).map_err(|e| unreadable(path, format!("fstat: {e}")))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(unreadable(path, format!("{} is not a regular file", file_kind(st.st_mode))));
        }
        let size = st.st_size as u64;
        if size > max_size {
            return Err(LoadError::TooLarge { size, limit: max_size });
        }

        let memfd = create_memfd()?;
        check_proc_fd(memfd.as_raw_fd())?;
        let copied = copy_into(&file, &memfd, max_size, strategy)
            .map_err(|e| unreadable(path, format!("copying the file failed: {e}")))?;
        if copied > max_size {
            return Err(LoadError::TooLarge { size: copied, limit: max_size });
        }
        drop(file);
        seal(memfd.as_raw_fd())?;

        // After sealing the size is fixed; take it from the memfd itself, not from our count.
        let sealed_len = fstat(memfd.as_raw_fd())
            .map_err(|e| LoadError::LoadFailed(format!("fstat of sealed image: {e}")))?
            .st_size as u64;
        if sealed_len > max_size {
            return Err(LoadError::TooLarge { size: sealed_len, limit: max_size });
        }
        let len = usize::try_from(sealed_len)
            .map_err(|_| LoadError::TooLarge { size: sealed_len, limit: max_size })?;

        let ptr = if len == 0 {
            ptr::null()
        } else {
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    memfd.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(LoadError::LoadFailed(format!(
                    "mapping the sealed image failed: {}",
                    io::Error::last_os_error()
                )));
            }
            p as *const u8
        };
        let mut image = SealedImage { fd: memfd, ptr, len, digest: [0; 32] };
        image.digest = Sha256::digest(image.bytes()).into();
        Ok(image)
    }

    /// SHA-256 of the sealed bytes.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// SHA-256 of the sealed bytes, lowercase hex.
    pub fn digest_hex(&self) -> String {
        hex(&self.digest)
    }

    /// The sealed bytes (exactly what was hashed, and what a load maps).
    pub fn bytes(&self) -> &[u8] {
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
        crate::guarded::unique_proc_path(self.fd())
    }

    /// An owned copy of the sealed bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes().to_vec()
    }

    /// An owned copy of the sealed bytes; releases the memfd and mapping.
    pub fn into_vec(self) -> Vec<u8> {
        self.to_vec()
    }

    /// Test hook: moves the memfd to descriptor number `target` (which must be free) so that tests
    /// can force descriptor-number reuse deterministically. Not part of the stable API.
    #[doc(hidden)]
    pub fn __renumber_fd_for_tests(&mut self, target: RawFd) -> io::Result<()> {
        if target == self.fd() {
            return Ok(());
        }
        if unsafe { libc::fcntl(target, libc::F_GETFD) } != -1 {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "target descriptor is in use"));
        }
        let r = unsafe { libc::dup3(self.fd(), target, libc::O_CLOEXEC) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.fd = unsafe { OwnedFd::from_raw_fd(r) }; // the old descriptor is closed here
        Ok(())
    }
}

impl Drop for SealedImage {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
        // `fd` closes itself afterwards.
    }
}

fn create_memfd() -> Result<OwnedFd, LoadError> {
    let name = MEMFD_NAME.as_ptr() as *const libc::c_char;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let mut fd = unsafe { libc::memfd_create(name, base | MFD_EXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EACCES)) {
            fd = unsafe { libc::memfd_create(name, base) };
        }
    }
    if fd < 0 {
        return Err(LoadError::Unsupported(format!(
            "memfd_create(MFD_ALLOW_SEALING) failed: {} (Linux >= 3.17 with memfd sealing is required)",
            io::Error::last_os_error()
        )));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The loader names the memfd through `/proc/self/fd/N` (including the `.`/empty-segment forms
/// used by unique paths); make sure that resolves to this very inode.
fn check_proc_fd(fd: RawFd) -> Result<(), LoadError> {
    let want = fstat(fd).map_err(|e| LoadError::Unsupported(format!("fstat of memfd: {e}")))?;
    for p in [format!("/proc/self/fd/{fd}"), format!("/proc/self/fd/.//./{fd}")] {
        let c = CString::new(p.clone()).expect("no NUL in a formatted path");
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
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

fn seal(fd: RawFd) -> Result<(), LoadError> {
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, SEALS) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EBUSY) {
            // Someone holds a writable shared mapping of our memfd (it can only have been opened
            // through /proc/<pid>/fd by another process): refuse, do not hash mutable bytes.
            return Err(LoadError::LoadFailed(
                "the memfd could not be sealed because it has a writable mapping".into(),
            ));
        }
        return Err(LoadError::Unsupported(format!("sealing the memfd failed: {e}")));
    }
    let got = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if got < 0 || got & SEALS != SEALS {
        return Err(LoadError::Unsupported(format!(
            "the memfd seals could not be confirmed (F_GET_SEALS = {got})"
        )));
    }
    Ok(())
}

fn retryable(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN))
}

fn not_supported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EXDEV) | Some(libc::EOPNOTSUPP)
            | Some(libc::EBADF)
    )
}

/// Copies from the current offset of `src` to EOF into `dst`, but never more than `max + 1`
/// bytes in total (returning `max + 1` means "too large"). Returns the byte count copied.
fn copy_into(src: &OwnedFd, dst: &OwnedFd, max: u64, strategy: CopyStrategy) -> io::Result<u64> {
    let budget = max.saturating_add(1);
    let mut copied = 0u64;
    let (s, d) = (src.as_raw_fd(), dst.as_raw_fd());

    if strategy == CopyStrategy::CopyFileRange {
        loop {
            let want = (budget - copied).min(MAX_CHUNK) as usize;
            if want == 0 {
                return Ok(copied);
            }
            let r = unsafe { libc::copy_file_range(s, ptr::null_mut(), d, ptr::null_mut(), want, 0) };
            if r == 0 {
                return Ok(copied);
            }
            if r < 0 {
                let e = io::Error::last_os_error();
                if retryable(&e) {
                    continue;
                }
                if not_supported(&e) {
                    break; // fall through to sendfile from the current offsets
                }
                return Err(e);
            }
            copied += r as u64;
        }
    }

    if strategy != CopyStrategy::ReadWrite {
        loop {
            let want = (budget - copied).min(MAX_CHUNK) as usize;
            if want == 0 {
                return Ok(copied);
            }
            let r = unsafe { libc::sendfile(d, s, ptr::null_mut(), want) };
            if r == 0 {
                return Ok(copied);
            }
            if r < 0 {
                let e = io::Error::last_os_error();
                if retryable(&e) {
                    continue;
                }
                if not_supported(&e) {
                    break; // fall back to read/write from the current offsets
                }
                return Err(e);
            }
            copied += r as u64;
        }
    }

    let mut buf = vec![0u8; RW_BUF];
    loop {
        let want = ((budget - copied) as usize).min(buf.len());
        if want == 0 {
            return Ok(copied);
        }
        let r = unsafe { libc::read(s, buf.as_mut_ptr() as *mut libc::c_void, want) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if retryable(&e) {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(copied);
        }
        let mut chunk = &buf[..r as usize];
        while !chunk.is_empty() {
            let w = unsafe { libc::write(d, chunk.as_ptr() as *const libc::c_void, chunk.len()) };
            if w < 0 {
                let e = io::Error::last_os_error();
                if retryable(&e) {
                    continue;
                }
                return Err(e);
            }
            if w == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "write to memfd returned 0"));
            }
            chunk = &chunk[w as usize..];
        }
        copied += r as u64;
    }
}
