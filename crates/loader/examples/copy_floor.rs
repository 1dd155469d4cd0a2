//! The floor under a guarded load: the time to put a file's bytes into a fresh memfd, and nothing else
//! (no hashing, no sealing, no verification, no dlopen). The guarded load must make this copy, because
//! the bytes it maps for loading must be bytes no other writer can change after they were hashed, and
//! the page cache of the file itself can be written by anyone who can write the file.
//!
//! The copy is done the way the loader does it (the memfd sized and mapped writable, each 1 MiB chunk's
//! pages allocated with MADV_POPULATE_WRITE, then `pread` into them), on 1 and on 2 threads claiming
//! chunks, and the page-cached file mapped and read in place (a sum of words) as the "no copy" reference.
//!
//! cargo run --release -p cloacina-sign-loader --example copy_floor -- FILE [RUNS]
//! Prints one JSON line: the median milliseconds of each.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const CHUNK: usize = 1 << 20;
const MADV_POPULATE_WRITE: libc::c_int = 23;

struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: each thread writes only the chunks it claimed; the mapping outlives the threads.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A method, so a closure captures the whole (Sync) mapping rather than its raw pointer field.
    fn base(&self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len come from the successful mmap below.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn map(fd: libc::c_int, len: usize, prot: libc::c_int) -> Mapping {
    // SAFETY: maps `len` bytes of `fd`; the result is checked.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) };
    assert!(
        ptr != libc::MAP_FAILED,
        "mmap: {}",
        std::io::Error::last_os_error()
    );
    Mapping {
        ptr: ptr.cast(),
        len,
    }
}

fn copy_into_memfd(file: &File, len: usize, threads: usize) -> f64 {
    let start = Instant::now();
    let name = CString::new("copy-floor").unwrap();
    // SAFETY: a NUL-terminated name; the result is checked.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: sizes our own memfd.
    assert_eq!(unsafe { libc::ftruncate(fd, len as libc::off_t) }, 0);
    let target = map(fd, len, libc::PROT_READ | libc::PROT_WRITE);
    let claims = AtomicUsize::new(0);
    let chunks = len.div_ceil(CHUNK);
    let src = file.as_raw_fd();
    let work = || loop {
        let chunk = claims.fetch_add(1, Ordering::Relaxed);
        if chunk >= chunks {
            return;
        }
        let (from, to) = (chunk * CHUNK, ((chunk + 1) * CHUNK).min(len));
        // SAFETY: [from, to) lies inside the mapping and belongs to this thread's claimed chunk.
        unsafe {
            libc::madvise(
                target.base().add(from).cast(),
                to - from,
                MADV_POPULATE_WRITE,
            );
            let mut at = from;
            while at < to {
                let n = libc::pread(
                    src,
                    target.base().add(at).cast(),
                    to - at,
                    at as libc::off_t,
                );
                assert!(n > 0, "pread: {}", std::io::Error::last_os_error());
                at += n as usize;
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    drop(target);
    // SAFETY: our own descriptor, closed once.
    unsafe { libc::close(fd) };
    start.elapsed().as_secs_f64() * 1000.0
}

fn read_in_place(file: &File, len: usize) -> (f64, u64) {
    let start = Instant::now();
    let source = map(file.as_raw_fd(), len, libc::PROT_READ);
    // SAFETY: the mapping holds `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(source.ptr, len) };
    let sum = bytes.chunks_exact(8).fold(0u64, |acc, w| {
        acc.wrapping_add(u64::from_le_bytes(w.try_into().unwrap()))
    });
    (start.elapsed().as_secs_f64() * 1000.0, sum)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: copy_floor FILE [RUNS]");
    let runs: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(5);
    let file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    copy_into_memfd(&file, len, 2); // warm-up
    let (mut one, mut two, mut read) = (Vec::new(), Vec::new(), Vec::new());
    let mut checksum = 0u64;
    for _ in 0..runs {
        one.push(copy_into_memfd(&file, len, 1));
        two.push(copy_into_memfd(&file, len, 2));
        let (ms, sum) = read_in_place(&file, len);
        read.push(ms);
        checksum ^= sum;
    }
    println!(
        "{{\"bytes\":{len},\"copy1\":{:.3},\"copy2\":{:.3},\"readInPlace\":{:.3},\"checksum\":\"{checksum:x}\"}}",
        median(one),
        median(two),
        median(read)
    );
}
