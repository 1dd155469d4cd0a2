//! A read-only mapping of a whole regular file, for hashing it without copying it first: each byte is
//! read once, straight from the page cache, by whichever core hashes it.
//!
//! A mapped file that another process truncates makes a read past its new end raise SIGBUS, which
//! would end the whole process. While a mapping is in use for hashing it is registered here, and a
//! SIGBUS handler (installed once, chained to whatever handler was there before) answers a fault
//! inside a registered mapping by putting zero pages over the rest of it and marking it shrunk: the
//! hash then finishes over meaningless bytes and the caller reports the file as changed, instead of
//! the process dying. Faults anywhere else go to the previous handler, or kill the process as before.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Mappings that can be hashed at once; with all in use, a caller reads the file instead.
const SLOTS: usize = 64;

/// One registered mapping: `[start, end)`, `start == 0` when the slot is free.
struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    shrunk: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    shrunk: AtomicBool::new(false),
};
static REGISTERED: [Slot; SLOTS] = [FREE; SLOTS];

/// The handler that was installed before ours, and the page size, set once before ours is installed.
struct Previous {
    action: libc::sigaction,
    page: usize,
}
// SAFETY: a plain C struct of a handler address, flags and a signal mask, only read after it is set.
unsafe impl Send for Previous {}
// SAFETY: as above; never mutated after `OnceLock` publishes it.
unsafe impl Sync for Previous {}

static PREVIOUS: OnceLock<Option<Previous>> = OnceLock::new();

/// Installs the SIGBUS handler once; false when it could not be installed.
fn guard_installed() -> bool {
    PREVIOUS
        .get_or_init(|| {
            // SAFETY: sysconf only reads a system constant.
            let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
            // SAFETY: `libc::sigaction` is a plain C struct; all-zero is a valid (empty) value.
            let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: reads the current action into a valid out-pointer.
            if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut previous) } != 0 {
                return None;
            }
            Some(Previous {
                action: previous,
                page,
            })
        })
        .as_ref()
        .is_some_and(|_| install_handler())
}

fn install_handler() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: `libc::sigaction` is a plain C struct; all-zero is a valid (empty) value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: an empty signal set in a valid out-pointer.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: installs a handler that only touches atomics and calls mmap/sigaction.
        unsafe { libc::sigaction(libc::SIGBUS, &action, ptr::null_mut()) == 0 }
    })
}

extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let address = unsafe { (*info).si_addr() } as usize;
    let Some(Some(previous)) = PREVIOUS.get() else {
        return;
    };
    for slot in &REGISTERED {
        let start = slot.start.load(Ordering::SeqCst);
        let end = slot.end.load(Ordering::SeqCst);
        if start != 0 && (start..end).contains(&address) {
            let page = address & !(previous.page - 1);
            // SAFETY: replaces the rest of a mapping that we own and registered (nothing else uses
            // those addresses) with zero pages; mmap is a plain system call, safe in a handler.
            unsafe {
                libc::mmap(
                    page as *mut libc::c_void,
                    end - page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            slot.shrunk.store(true, Ordering::SeqCst);
            return;
        }
    }
    let handler = previous.action.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Not our fault: let it do what it did before we were installed (the fault repeats on return).
        // SAFETY: restores the earlier action; sigaction is async-signal-safe.
        unsafe { libc::sigaction(libc::SIGBUS, &previous.action, ptr::null_mut()) };
    } else if previous.action.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the earlier handler was installed with SA_SIGINFO, so it takes these three arguments.
        let earlier: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        earlier(signal, info, context);
    } else {
        // SAFETY: the earlier handler was installed without SA_SIGINFO, so it takes the signal only.
        let earlier: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        earlier(signal);
    }
}

/// A private, read-only mapping of a whole non-empty file, registered with the SIGBUS guard.
pub struct MappedFile {
    ptr: *mut libc::c_void,
    len: usize,
    slot: &'static Slot,
}

// SAFETY: a read-only mapping owned by this value (unmapped only in Drop); the slot is atomics.
unsafe impl Send for MappedFile {}
// SAFETY: `&self` only hands out `&[u8]` of a read-only mapping.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps `len` bytes of `file`; `Ok(None)` when it cannot be guarded (no handler, every slot in
    /// use) and should be read instead.
    pub fn map(file: &File, len: usize) -> io::Result<Option<MappedFile>> {
        if len == 0 || !guard_installed() {
            return Ok(None);
        }
        let Some(slot) = REGISTERED.iter().find(|slot| {
            slot.start
                .compare_exchange(0, usize::MAX, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        }) else {
            return Ok(None);
        };
        // SAFETY: a new read-only mapping placed by the kernel (no MAP_FIXED); `file` is open.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let error = io::Error::last_os_error();
            slot.start.store(0, Ordering::SeqCst);
            return Err(error);
        }
        slot.shrunk.store(false, Ordering::SeqCst);
        // The end first: a start other than 0 or usize::MAX makes the slot's range live.
        slot.end.store(ptr as usize + len, Ordering::SeqCst);
        slot.start.store(ptr as usize, Ordering::SeqCst);
        Ok(Some(MappedFile { ptr, len, slot }))
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for the lifetime of self.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Drops the pages of `range` from this process's mapping once they are hashed, so that a whole
    /// file hashed in pieces never counts in the resident memory at once (they stay in the page cache).
    pub fn done_with(&self, range: std::ops::Range<usize>) {
        let page = PREVIOUS
            .get()
            .and_then(Option::as_ref)
            .map_or(4096, |p| p.page);
        // Whole pages inside the range only: a page shared with the next piece is still to be read.
        let start = range.start.next_multiple_of(page);
        let end = range.end.min(self.len) / page * page;
        if start < end {
            // SAFETY: pages of our own private, read-only mapping that nothing reads again; a later
            // read would fault them back in from the file.
            unsafe {
                libc::madvise(
                    self.ptr.cast::<u8>().add(start).cast(),
                    end - start,
                    libc::MADV_DONTNEED,
                )
            };
        }
    }

    /// Whether a read hit pages the file no longer has (it was truncated while mapped): the bytes
    /// read from there were zeros, not the file's.
    pub fn shrunk(&self) -> bool {
        self.slot.shrunk.load(Ordering::SeqCst)
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // Unregistered before it is unmapped: the addresses may be reused by another mapping at once.
        self.slot.start.store(usize::MAX, Ordering::SeqCst);
        self.slot.end.store(0, Ordering::SeqCst);
        // SAFETY: exactly the mapping made in `map`, unmapped once; `bytes()` borrows self.
        unsafe { libc::munmap(self.ptr, self.len) };
        self.slot.start.store(0, Ordering::SeqCst);
    }
}
