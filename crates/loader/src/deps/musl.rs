//! musl's rules: where its dynamic loader (`ldso/dynlink.c`, `load_library`) looks for a library
//! named without a `/`.
//!
//! In order: `LD_LIBRARY_PATH` (refused by the environment check), the `DT_RUNPATH` — or, when it
//! has none, the `DT_RPATH` — of the requesting object, then of the object that loaded it, and so
//! on up to the main program (a `dlopen`ed package counts as loaded by the main program), each
//! split at `:` and newline with `$ORIGIN` expanded; then the system path: the contents of
//! `<prefix>/etc/ld-musl-<arch>.path` (split the same way), where `<prefix>` is the loader's own
//! path less its last two components, or, when that file does not exist, the default
//! `/lib:/usr/local/lib:/usr/lib`. There is no cache and there are no hardware-capability
//! subdirectories. Names musl reserves for itself (`libc.*`, `libm.*`, `libpthread.*`, ...) always
//! resolve to the loader, which `dlopen(RTLD_NOLOAD)` reports as already loaded.

use std::ffi::{c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use super::walk::{walk, Found};
use super::{expand_search_path, unsafe_dep, CacheEntries};
use crate::elf;
use crate::error::LoadError;
use crate::link_map::{dlinfo, LinkMap, RTLD_DI_LINKMAP};

/// The loader, in messages.
pub(super) const LOADER: &str = "musl";
/// Characters that separate the elements of a search path (`path_open` in `dynlink.c`).
pub(super) const PATH_SEPARATORS: &[u8] = b":\n";
/// musl keeps no cache of library names.
pub(super) const CACHE: Option<&str> = None;

/// The system path when the path file does not exist.
const DEFAULT_SYSTEM_PATH: &[u8] = b"/lib:/usr/local/lib:/usr/lib";
#[cfg(target_arch = "x86_64")]
const LDSO_ARCH: &str = "x86_64";
#[cfg(target_arch = "aarch64")]
const LDSO_ARCH: &str = "aarch64";
/// A path file larger than this is refused rather than read.
const MAX_PATH_FILE: u64 = 1 << 20;

const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// musl searches each directory itself only.
pub(super) fn subdirectories() -> &'static [String] {
    static THE_DIRECTORY_ITSELF: [String; 1] = [String::new()];
    &THE_DIRECTORY_ITSELF
}

pub(super) fn read_cache() -> Result<CacheEntries, LoadError> {
    Ok(Vec::new())
}

pub(super) fn cache_matches(_name: &[u8], _key: &[u8]) -> bool {
    false
}

/// The directories searched for the needs of an object with these `DT_RPATH` and `DT_RUNPATH`
/// directories whose loaders' search paths are `inherited`, and the chain its own dependencies
/// inherit: musl takes `DT_RUNPATH` over `DT_RPATH`, and walks the whole chain for both.
pub(super) fn requester_dirs(
    rpath: Vec<PathBuf>,
    runpath: Vec<PathBuf>,
    inherited: &[PathBuf],
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut chain = if runpath.is_empty() { rpath } else { runpath };
    chain.extend(inherited.iter().cloned());
    (chain.clone(), chain)
}

/// Where musl looks for a package's dependencies after the package's own (refused) search path:
/// the main program's search path, then the system path.
pub(super) fn loader_search_path() -> Result<Vec<PathBuf>, LoadError> {
    let mut dirs = main_program_search_path()?;
    for d in system_path()? {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    Ok(dirs)
}

/// The main program's `DT_RUNPATH` (or `DT_RPATH`), read from its dynamic section in memory,
/// `$ORIGIN` being the directory of `/proc/self/exe` as for musl.
fn main_program_search_path() -> Result<Vec<PathBuf>, LoadError> {
    let unknown = |why: &str| {
        LoadError::Unsupported(format!(
            "the main program's library search path cannot be read ({why})"
        ))
    };
    // SAFETY: a null name asks for the main program's handle; nothing is loaded.
    let h = unsafe { libc::dlopen(std::ptr::null(), libc::RTLD_LAZY) };
    let h = NonNull::new(h).ok_or_else(|| unknown("dlopen(NULL) failed"))?;
    let mut lm: *mut LinkMap = std::ptr::null_mut();
    // SAFETY: `h` is a live handle; RTLD_DI_LINKMAP stores a `struct link_map *` into `lm`.
    let rc = unsafe {
        dlinfo(
            h.as_ptr(),
            RTLD_DI_LINKMAP,
            &mut lm as *mut *mut LinkMap as *mut c_void,
        )
    };
    if rc != 0 || lm.is_null() {
        return Err(unknown("dlinfo(RTLD_DI_LINKMAP) failed"));
    }
    // SAFETY: the main program is never unloaded, so its link map and mapped dynamic section
    // live as long as the process. musl leaves `l_ld` unrelocated: address-valued entries
    // (DT_STRTAB) are offsets from `l_addr`, the program's load base. The section ends with
    // DT_NULL (the loader walked it to load the program); the string table spans DT_STRSZ bytes.
    let (runpath, rpath) = unsafe {
        let base = (*lm).l_addr;
        let mut d = (*lm).l_ld as *const [u64; 2];
        let (mut strtab, mut strsz) = (None, None);
        let (mut rpath, mut runpath) = (Vec::new(), Vec::new());
        if d.is_null() {
            return Err(unknown("the main program has no dynamic section"));
        }
        for _ in 0..4096 {
            let [tag, val] = *d;
            match tag {
                elf::DT_NULL => break,
                DT_STRTAB => strtab = Some(base.wrapping_add(val as usize)),
                DT_STRSZ => strsz = Some(val as usize),
                DT_RPATH => rpath.push(val as usize),
                DT_RUNPATH => runpath.push(val as usize),
                _ => {}
            }
            d = d.add(1);
        }
        if rpath.is_empty() && runpath.is_empty() {
            return Ok(Vec::new());
        }
        let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
            return Err(unknown("its dynamic section has no string table"));
        };
        let table = std::slice::from_raw_parts(strtab as *const u8, strsz);
        let string = |off: usize| -> Option<Vec<u8>> {
            let s = table.get(off..)?;
            Some(CStr::from_bytes_until_nul(s).ok()?.to_bytes().to_vec())
        };
        let read = |offs: &[usize]| -> Result<Vec<Vec<u8>>, LoadError> {
            offs.iter()
                .map(|&o| string(o).ok_or_else(|| unknown("a string lies outside its table")))
                .collect()
        };
        (read(&runpath)?, read(&rpath)?)
    };
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| unknown(&format!("/proc/self/exe: {e}")))?;
    let origin = exe.parent().unwrap_or(Path::new("/")).to_path_buf();
    let by = format!("the main program ({})", exe.display());
    if runpath.is_empty() {
        expand_search_path(&rpath, "DT_RPATH", &origin, &by)
    } else {
        expand_search_path(&runpath, "DT_RUNPATH", &origin, &by)
    }
}

/// The path of the loader itself as musl knows it (`ldso->name`: the main program's
/// `PT_INTERP`, or how the loader was invoked), which is where `dladdr` places `dlopen`.
fn loader_name() -> Result<Vec<u8>, LoadError> {
    // SAFETY: an all-zero Dl_info is valid (null pointers); dladdr fills it for an address
    // inside a loaded object, here musl's own `dlopen`.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid Dl_info to fill; the address is that of a function of the loader.
    let ok = unsafe { libc::dladdr(libc::dlopen as *const c_void, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return Err(LoadError::Unsupported(
            "musl's dynamic loader cannot be located (dladdr failed), so its library path file is unknown".into(),
        ));
    }
    // SAFETY: dli_fname is the loader's NUL-terminated name, which lives as long as the process.
    Ok(unsafe { CStr::from_ptr(info.dli_fname) }
        .to_bytes()
        .to_vec())
}

/// `<prefix>/etc/ld-musl-<arch>.path` for the loader named `ldso`, computed as musl does: the
/// prefix is `ldso` up to its second-to-last `/` when `ldso` is absolute, else empty.
pub(super) fn path_file_for(ldso: &[u8]) -> PathBuf {
    let mut prefix: &[u8] = b"";
    if ldso.first() == Some(&b'/') {
        let (mut t, mut z) = (0usize, 0usize);
        for (i, &c) in ldso.iter().enumerate() {
            if c == b'/' {
                z = t;
                t = i;
            }
        }
        prefix = &ldso[..z];
    }
    let mut p = prefix.to_vec();
    p.extend_from_slice(format!("/etc/ld-musl-{LDSO_ARCH}.path").as_bytes());
    PathBuf::from(OsStr::from_bytes(&p))
}

/// The directories of a system path (the path file's contents up to its first NUL): empty
/// elements are skipped, as musl does; a relative one would be searched from the current
/// directory, so it is refused.
pub(super) fn split_system_path(contents: &[u8], source: &str) -> Result<Vec<PathBuf>, LoadError> {
    let contents = contents.split(|&b| b == 0).next().unwrap_or_default();
    let mut dirs = Vec::new();
    for element in contents.split(|b| PATH_SEPARATORS.contains(b)) {
        if element.is_empty() {
            continue;
        }
        if element.first() != Some(&b'/') {
            return Err(unsafe_dep(format!(
                "{source} lists \"{}\", which musl's loader would search relative to the current directory",
                String::from_utf8_lossy(element)
            )));
        }
        let d = PathBuf::from(OsStr::from_bytes(element));
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    Ok(dirs)
}

/// The system path musl searches: the path file's directories, or the default when the file
/// does not exist. The file must be safe (only root can have written it, or can create it).
fn system_path() -> Result<Vec<PathBuf>, LoadError> {
    let file = path_file_for(&loader_name()?);
    let shown = file.display().to_string();
    match walk(&file) {
        Err(why) => Err(unsafe_dep(format!(
            "musl's dynamic loader reads its library directories from {shown}, but {why}"
        ))),
        Ok(Found::Missing) => split_system_path(DEFAULT_SYSTEM_PATH, "musl's default path"),
        Ok(Found::File(resolved, ..)) => {
            let meta = std::fs::metadata(&resolved)
                .map_err(|e| unsafe_dep(format!("cannot inspect {shown}: {e}")))?;
            if meta.len() > MAX_PATH_FILE {
                return Err(unsafe_dep(format!("{shown} is implausibly large")));
            }
            let contents = std::fs::read(&resolved).map_err(|e| {
                unsafe_dep(format!(
                    "cannot read {shown} ({e}), so the directories musl's dynamic loader searches are unknown"
                ))
            })?;
            split_system_path(&contents, &shown)
        }
        Ok(_) => Err(unsafe_dep(format!(
            "{shown}, where musl's dynamic loader reads its library directories from, is not a regular file"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_file_sits_under_the_loader_prefix() {
        let arch = LDSO_ARCH;
        let f = |ldso: &str| path_file_for(ldso.as_bytes()).display().to_string();
        assert_eq!(
            f(&format!("/lib/ld-musl-{arch}.so.1")),
            format!("/etc/ld-musl-{arch}.path")
        );
        assert_eq!(
            f("/opt/musl/lib/libc.so"),
            format!("/opt/musl/etc/ld-musl-{arch}.path")
        );
        assert_eq!(f("ld.so"), format!("/etc/ld-musl-{arch}.path"));
    }

    #[test]
    fn system_paths_split_at_colons_and_newlines() {
        let dirs = split_system_path(b"/lib:/usr/lib\n\n/opt/lib:\n\0/ignored", "test").unwrap();
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/lib"),
                PathBuf::from("/usr/lib"),
                PathBuf::from("/opt/lib")
            ]
        );
    }

    #[test]
    fn a_relative_system_path_element_is_refused() {
        let err = split_system_path(b"/lib:lib", "test").unwrap_err();
        assert_eq!(err.code(), "UNSAFE_DEPENDENCY");
        assert!(err.to_string().contains("current directory"), "{err}");
    }

    #[test]
    fn the_loader_search_path_is_the_system_path_of_this_loader() {
        let dirs = loader_search_path().unwrap();
        let file = path_file_for(&loader_name().unwrap());
        let expected = match std::fs::read(&file) {
            Ok(contents) => split_system_path(&contents, "test").unwrap(),
            Err(_) => split_system_path(DEFAULT_SYSTEM_PATH, "test").unwrap(),
        };
        assert!(!expected.is_empty());
        assert!(
            expected.iter().all(|d| dirs.contains(d)),
            "{dirs:?} lacks some of {expected:?}"
        );
    }

    #[test]
    fn the_runpath_wins_over_the_rpath_and_the_chain_is_inherited() {
        let p = |s: &str| PathBuf::from(s);
        let (dirs, chain) = requester_dirs(vec![p("/r")], vec![p("/rp")], &[p("/up")]);
        assert_eq!(dirs, vec![p("/rp"), p("/up")]);
        assert_eq!(chain, dirs);
        let (dirs, _) = requester_dirs(vec![p("/r")], Vec::new(), &[]);
        assert_eq!(dirs, vec![p("/r")]);
    }
}
