//! glibc's rules: where its dynamic loader looks for a library named without a `/`.
//!
//! In order: the requester's `DT_RPATH` (and the `DT_RPATH` of the objects that loaded it) when it
//! has no `DT_RUNPATH`, `LD_LIBRARY_PATH`, the requester's `DT_RUNPATH`, `/etc/ld.so.cache`, then
//! the system directories; in each directory the `glibc-hwcaps` and legacy hardware-capability
//! subdirectories come first. The policy checks a superset of these places.

use std::ffi::{c_char, c_uint, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::OnceLock;

use super::walk::{walk, Found};
use super::{unsafe_dep, CacheEntries};
use crate::error::LoadError;

/// The loader, in messages.
pub(super) const LOADER: &str = "glibc";
/// Characters that separate the elements of a `DT_RPATH`/`DT_RUNPATH`.
pub(super) const PATH_SEPARATORS: &[u8] = b":";
/// The loader's cache of library names, consulted after the requester's own search path.
pub(super) const CACHE: Option<&str> = Some(LD_SO_CACHE);

const LD_SO_CACHE: &str = "/etc/ld.so.cache";
const MAX_CACHE_SIZE: u64 = 64 << 20;

#[cfg(target_arch = "x86_64")]
const SYSTEM_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];
#[cfg(target_arch = "aarch64")]
const SYSTEM_DIRS: &[&str] = &[
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];
#[cfg(target_arch = "x86_64")]
const LD_SO: &str = "ld-linux-x86-64.so.2";
#[cfg(target_arch = "aarch64")]
const LD_SO: &str = "ld-linux-aarch64.so.1";

/// Subdirectories glibc may search inside every search directory before the directory itself:
/// `glibc-hwcaps/<level>` (glibc 2.33+) and the legacy `[tls/][platform/][hwcap/]` combinations
/// (up to glibc 2.36). A superset: a subdirectory this machine does not use is merely checked.
pub(super) fn subdirectories() -> &'static [String] {
    static SUBDIRS: OnceLock<Vec<String>> = OnceLock::new();
    SUBDIRS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let (hwcaps, platforms, caps): (&[&str], &[&str], &[&str]) = (
            &["x86-64-v4", "x86-64-v3", "x86-64-v2"],
            &["x86_64/", "haswell/", "xeon_phi/", ""],
            &["x86_64/", "avx512_1/", ""],
        );
        #[cfg(target_arch = "aarch64")]
        let (hwcaps, platforms, caps): (&[&str], &[&str], &[&str]) =
            (&[], &["aarch64/", ""], &[""]);
        let mut v: Vec<String> = hwcaps.iter().map(|h| format!("glibc-hwcaps/{h}")).collect();
        for tls in ["tls/", ""] {
            for p in platforms {
                for c in caps {
                    let s = format!("{tls}{p}{c}");
                    if !s.is_empty() && !v.contains(&s) {
                        v.push(s);
                    }
                }
            }
        }
        v.push(String::new());
        v
    })
}

/// The directories glibc's loader searches for the dependencies of an object that has no
/// DT_RPATH/DT_RUNPATH of its own, as glibc itself reports them: those of the dynamic loader
/// `ld.so` (which has none), that is the executable's DT_RPATH, the LD_LIBRARY_PATH in force and
/// the system directories. Falls back to the executable's own list (a superset).
fn serinfo_search_path() -> Result<Vec<PathBuf>, LoadError> {
    let ld_so = CString::new(LD_SO).expect("no NUL");
    // SAFETY: valid C string; RTLD_NOLOAD only looks an object up (ld.so is always loaded).
    let mut h = unsafe { libc::dlopen(ld_so.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    if h.is_null() {
        // SAFETY: a null name asks for the main program's handle; nothing is loaded.
        h = unsafe { libc::dlopen(std::ptr::null(), libc::RTLD_LAZY) };
    }
    let Some(h) = NonNull::new(h) else {
        return Err(LoadError::Unsupported(
            "the dynamic loader's search path cannot be queried".into(),
        ));
    };
    let dirs = serinfo(h);
    // SAFETY: `h` came from a successful dlopen above and is closed once.
    unsafe { libc::dlclose(h.as_ptr()) };
    dirs.ok_or_else(|| {
        LoadError::Unsupported(
            "dlinfo(RTLD_DI_SERINFO) failed: the dynamic loader's search path is unknown".into(),
        )
    })
}

#[repr(C)]
struct DlSerpath {
    dls_name: *mut c_char,
    dls_flags: c_uint,
}

#[repr(C)]
struct DlSerinfo {
    dls_size: usize,
    dls_cnt: c_uint,
    dls_serpath: [DlSerpath; 1],
}

fn serinfo(h: NonNull<c_void>) -> Option<Vec<PathBuf>> {
    let mut size_info = DlSerinfo {
        dls_size: 0,
        dls_cnt: 0,
        dls_serpath: [DlSerpath {
            dls_name: std::ptr::null_mut(),
            dls_flags: 0,
        }],
    };
    // SAFETY: `h` is a live handle; RTLD_DI_SERINFOSIZE fills dls_size and dls_cnt of the
    // Dl_serinfo we pass.
    if unsafe {
        libc::dlinfo(
            h.as_ptr(),
            libc::RTLD_DI_SERINFOSIZE,
            &mut size_info as *mut DlSerinfo as *mut c_void,
        )
    } != 0
    {
        return None;
    }
    let size = size_info.dls_size.max(std::mem::size_of::<DlSerinfo>());
    // u64 words: the buffer is aligned for Dl_serinfo.
    let mut buf = vec![0u64; size.div_ceil(8)];
    let info = buf.as_mut_ptr() as *mut DlSerinfo;
    // SAFETY: `buf` holds at least `size` bytes, aligned to 8, enough for the header that
    // RTLD_DI_SERINFO expects to be initialized with the values RTLD_DI_SERINFOSIZE returned; it
    // then writes dls_cnt entries and their strings inside those `size` bytes.
    unsafe {
        (*info).dls_size = size_info.dls_size;
        (*info).dls_cnt = size_info.dls_cnt;
        if libc::dlinfo(h.as_ptr(), libc::RTLD_DI_SERINFO, info as *mut c_void) != 0 {
            return None;
        }
    }
    let mut dirs = Vec::new();
    // SAFETY: after a successful RTLD_DI_SERINFO, `dls_serpath` has `dls_cnt` entries, each
    // naming a NUL-terminated string inside `buf`, which outlives this loop.
    unsafe {
        let first = std::ptr::addr_of!((*info).dls_serpath) as *const DlSerpath;
        for i in 0..(*info).dls_cnt as usize {
            let name = (*first.add(i)).dls_name;
            if !name.is_null() {
                let bytes = CStr::from_ptr(name).to_bytes();
                let p = PathBuf::from(OsStr::from_bytes(bytes));
                if !dirs.contains(&p) {
                    dirs.push(p);
                }
            }
        }
    }
    Some(dirs)
}

/// Every (name, path) entry of the loader's cache; empty when there is no cache. The cache file
/// itself must be safe (root-owned, in root-owned directories nobody else can write).
pub(super) fn read_cache() -> Result<CacheEntries, LoadError> {
    match walk(Path::new(LD_SO_CACHE)) {
        Err(why) => Err(unsafe_dep(format!(
            "the dynamic loader consults {LD_SO_CACHE}, but {why}"
        ))),
        Ok(Found::File(..)) => {
            let meta = std::fs::metadata(LD_SO_CACHE)
                .map_err(|e| unsafe_dep(format!("cannot inspect {LD_SO_CACHE}: {e}")))?;
            if meta.len() > MAX_CACHE_SIZE {
                return Err(unsafe_dep(format!("{LD_SO_CACHE} is implausibly large")));
            }
            let bytes = std::fs::read(LD_SO_CACHE)
                .map_err(|e| unsafe_dep(format!("cannot read {LD_SO_CACHE}: {e}")))?;
            parse_ld_cache(&bytes).map_err(|e| {
                unsafe_dep(format!(
                    "{LD_SO_CACHE} cannot be understood ({e}), so where the dynamic loader would take a library from is unknown"
                ))
            })
        }
        Ok(_) => Ok(Vec::new()), // no cache: glibc searches the directories only
    }
}

const CACHE_OLD: &[u8] = b"ld.so-1.7.0";
const CACHE_NEW: &[u8] = b"glibc-ld.so.cache1.1";

fn rd32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn cstr_at(b: &[u8], base: usize, off: u32) -> Option<Vec<u8>> {
    let s = b.get(base.checked_add(off as usize)?..)?;
    let n = s.iter().position(|&c| c == 0)?;
    Some(s[..n].to_vec())
}

/// Parses glibc's `ld.so.cache`: the "glibc-ld.so.cache1.1" format (alone, or after the old
/// "ld.so-1.7.0" table, which glibc then ignores), or the old format alone.
pub(crate) fn parse_ld_cache(b: &[u8]) -> Result<CacheEntries, String> {
    if b.starts_with(CACHE_NEW) {
        return parse_new_cache(b, 0);
    }
    if b.starts_with(CACHE_OLD) {
        let nlibs = rd32(b, 12).ok_or("truncated header")? as usize;
        let end = nlibs
            .checked_mul(12)
            .and_then(|n| n.checked_add(16))
            .filter(|&e| e <= b.len())
            .ok_or("truncated entry table")?;
        let new_at = end.next_multiple_of(8);
        if b.get(new_at..)
            .is_some_and(|rest| rest.starts_with(CACHE_NEW))
        {
            return parse_new_cache(b, new_at);
        }
        let mut out = Vec::with_capacity(nlibs);
        for i in 0..nlibs {
            let e = 16 + 12 * i;
            let key = cstr_at(b, end, rd32(b, e + 4).ok_or("truncated")?).ok_or("bad key")?;
            let value = cstr_at(b, end, rd32(b, e + 8).ok_or("truncated")?).ok_or("bad value")?;
            out.push((key, value));
        }
        return Ok(out);
    }
    Err("unknown magic".into())
}

fn parse_new_cache(b: &[u8], base: usize) -> Result<CacheEntries, String> {
    let nlibs = rd32(b, base + 20).ok_or("truncated header")? as usize;
    let flags = *b.get(base + 28).ok_or("truncated header")?;
    if flags & 3 == 1 || flags & 3 == 3 {
        return Err(format!("byte-order flags {flags} are not little-endian"));
    }
    let entries = base + 48;
    nlibs
        .checked_mul(24)
        .and_then(|n| n.checked_add(entries))
        .filter(|&e| e <= b.len())
        .ok_or("truncated entry table")?;
    let mut out = Vec::with_capacity(nlibs);
    for i in 0..nlibs {
        let e = entries + 24 * i;
        let key = cstr_at(b, base, rd32(b, e + 4).ok_or("truncated")?).ok_or("bad key")?;
        let value = cstr_at(b, base, rd32(b, e + 8).ok_or("truncated")?).ok_or("bad value")?;
        out.push((key, value));
    }
    Ok(out)
}

/// glibc's `_dl_cache_libcmp`: digit runs compare numerically (so `libfoo.so.01` and
/// `libfoo.so.1` are the same name to the loader).
pub(crate) fn cache_libcmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut i, mut j) = (0usize, 0usize);
    loop {
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        match (ca, cb) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                if x.is_ascii_digit() {
                    if !y.is_ascii_digit() {
                        return Ordering::Greater;
                    }
                    let (mut va, mut vb) = (0u64, 0u64);
                    while let Some(d) = a.get(i).filter(|c| c.is_ascii_digit()) {
                        va = va.wrapping_mul(10).wrapping_add((d - b'0') as u64);
                        i += 1;
                    }
                    while let Some(d) = b.get(j).filter(|c| c.is_ascii_digit()) {
                        vb = vb.wrapping_mul(10).wrapping_add((d - b'0') as u64);
                        j += 1;
                    }
                    if va != vb {
                        return va.cmp(&vb);
                    }
                } else if y.is_ascii_digit() {
                    return Ordering::Less;
                } else if x != y {
                    return x.cmp(&y);
                } else {
                    i += 1;
                    j += 1;
                }
            }
        }
    }
}

/// The directories searched for the needs of an object with these `DT_RPATH` and `DT_RUNPATH`
/// directories whose loaders' `DT_RPATH` chain is `inherited`, and the chain its own
/// dependencies inherit. A superset of glibc's rule (which drops the `DT_RPATH` chain when the
/// object has a `DT_RUNPATH`).
pub(super) fn requester_dirs(
    rpath: Vec<PathBuf>,
    runpath: Vec<PathBuf>,
    inherited: &[PathBuf],
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut chain = rpath;
    chain.extend(inherited.iter().cloned());
    let mut dirs = chain.clone();
    dirs.extend(runpath);
    (dirs, chain)
}

/// The loader's own search path for a package's dependencies, plus the standard system
/// directories.
pub(super) fn loader_search_path() -> Result<Vec<PathBuf>, LoadError> {
    let mut dirs = serinfo_search_path()?;
    for d in SYSTEM_DIRS {
        let d = PathBuf::from(d);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    Ok(dirs)
}

/// Whether glibc takes the cache entry `key` for the library `name`.
pub(super) fn cache_matches(name: &[u8], key: &[u8]) -> bool {
    cache_libcmp(name, key) == std::cmp::Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn cache_names_compare_like_glibc() {
        assert_eq!(cache_libcmp(b"libm.so.6", b"libm.so.6"), Ordering::Equal);
        assert_eq!(
            cache_libcmp(b"libfoo.so.01", b"libfoo.so.1"),
            Ordering::Equal
        );
        assert_eq!(
            cache_libcmp(b"libfoo.so.2", b"libfoo.so.10"),
            Ordering::Less
        );
        assert_eq!(cache_libcmp(b"libfoo.so", b"libfoo.so.1"), Ordering::Less);
        assert_eq!(
            cache_libcmp(b"libfoo.so.1", b"libfoo.so.a"),
            Ordering::Greater
        );
    }

    #[test]
    fn the_system_cache_is_understood_and_lists_libc() {
        if !Path::new(LD_SO_CACHE).exists() {
            return;
        }
        let entries = read_cache().unwrap();
        assert!(
            entries
                .iter()
                .any(|(k, v)| k == b"libc.so.6" && v.ends_with(b"/libc.so.6")),
            "{} entries",
            entries.len()
        );
    }

    #[test]
    fn unknown_caches_are_refused() {
        assert!(parse_ld_cache(b"something else").is_err());
        assert!(parse_ld_cache(b"glibc-ld.so.cache1.1").is_err());
        let mut old = b"ld.so-1.7.0\0".to_vec();
        old.extend_from_slice(&1000u32.to_le_bytes());
        assert!(parse_ld_cache(&old).is_err());
    }

    #[test]
    fn the_loader_search_path_is_known() {
        let dirs = loader_search_path().unwrap();
        assert!(!dirs.is_empty());
        assert!(dirs.iter().all(|d| d.is_absolute()), "{dirs:?}");
    }
}
