//! Process-wide primitives of guarded loading: the lock that serializes every dlopen of a sealed
//! image, and the `/proc/self/fd/...` paths that are never reused within the process.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

static LOAD_LOCK: Mutex<()> = Mutex::new(());
static PATH_COUNTER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static HOLDS_LOCK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` while holding the process-wide guarded-load lock (the same lock
/// [`crate::GuardedLibrary::load`] takes). Re-entrant on the same thread: calling `GuardedLibrary::load`
/// or `serialize_guarded` inside `f` does not deadlock.
///
/// The binding uses it to serialize Node's `process.dlopen` of a sealed native addon with
/// guarded loads.
pub fn serialize_guarded<T>(f: impl FnOnce() -> T) -> T {
    if HOLDS_LOCK.with(|h| h.get()) {
        return f();
    }
    let _guard = LOAD_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            HOLDS_LOCK.with(|h| h.set(false));
        }
    }
    HOLDS_LOCK.with(|h| h.set(true));
    let _reset = Reset;
    f()
}

/// Returns a path naming descriptor `fd` through `/proc/self/fd` whose *string* has never been
/// returned before in this process.
///
/// glibc's dlopen first matches already-loaded objects by name: if an earlier object loaded as
/// `/proc/self/fd/7` is still resident (`-z nodelete`, or a dlclose that did not unmap), a later
/// dlopen of `/proc/self/fd/7` returns that OLD object even though descriptor 7 now refers to a
/// different memfd. So a process-wide counter is encoded between `fd` and `N` as path segments,
/// one per bit, using two prefix-free tokens: `/` (an empty segment) for 0 and `/.` for 1. The
/// encoded value is `counter + 1`, whose leading 1-bit acts as the marker (so no leading zeros
/// are lost and lengths grow with the counter). The kernel resolves every such path to
/// descriptor N; distinct counter values give distinct strings.
/// Example: counter 0 (bits 1) -> `/proc/self/fd/./7`; counter 4 (bits 1,0,1) ->
/// `/proc/self/fd/.//./7`.
pub fn unique_proc_path(fd: RawFd) -> String {
    let c = PATH_COUNTER.fetch_add(1, Ordering::Relaxed);
    encode_proc_path(c, fd)
}

fn encode_proc_path(counter: u64, fd: RawFd) -> String {
    // counter + 1 in binary: its leading 1 is the marker bit.
    let v = counter as u128 + 1;
    let bits = 128 - v.leading_zeros();
    let mut s = String::with_capacity(16 + 2 * bits as usize + 11);
    s.push_str("/proc/self/fd");
    for i in (0..bits).rev() {
        if (v >> i) & 1 == 1 {
            s.push_str("/.");
        } else {
            s.push('/');
        }
    }
    s.push('/');
    s.push_str(&fd.to_string());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(p: &str) -> Option<(u64, RawFd)> {
        let rest = p.strip_prefix("/proc/self/fd")?;
        let (tokens, fd) = rest.rsplit_once('/')?;
        let mut bits = Vec::new();
        let b = tokens.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'/' {
                return None;
            }
            if b.get(i + 1) == Some(&b'.') {
                bits.push(1u64);
                i += 2;
            } else {
                bits.push(0);
                i += 1;
            }
        }
        if bits.first() != Some(&1) {
            return None;
        }
        let v = bits.iter().fold(0u128, |a, b| (a << 1) | *b as u128);
        Some(((v - 1) as u64, fd.parse().ok()?))
    }

    #[test]
    fn encoding_is_injective_and_decodable() {
        assert_eq!(encode_proc_path(0, 7), "/proc/self/fd/./7");
        assert_eq!(encode_proc_path(4, 7), "/proc/self/fd/.//./7");
        assert_eq!(encode_proc_path(1, 7), "/proc/self/fd/.//7");
        let mut seen = std::collections::HashSet::new();
        for c in (0..5000u64).chain([u64::MAX, u64::MAX - 1, 1 << 63]) {
            let p = encode_proc_path(c, 12);
            assert_eq!(decode(&p), Some((c, 12)), "{p}");
            assert!(seen.insert(p));
        }
    }

    #[test]
    fn unique_paths_differ() {
        let a = unique_proc_path(3);
        let b = unique_proc_path(3);
        assert_ne!(a, b);
    }

    #[test]
    fn serialize_guarded_is_reentrant() {
        let v = serialize_guarded(|| serialize_guarded(|| 41) + 1);
        assert_eq!(v, 42);
    }
}
