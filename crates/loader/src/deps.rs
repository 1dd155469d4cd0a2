//! The dependency policy: a package's dependencies must not be a way around its signature.
//!
//! The signature covers the package's own bytes only. Its `DT_NEEDED` libraries are found by the
//! dynamic loader at `dlopen` time and their constructors run before the package's, so whoever
//! can place a file where the loader looks for them runs code in the runner. Before `dlopen`
//! (before any code of the package or of its dependencies runs) a guarded load therefore
//! requires all of the following, and refuses with `UNSAFE_ENVIRONMENT` / `UNSAFE_DEPENDENCY`
//! otherwise:
//!
//! 1. The process was not started with `LD_PRELOAD`, `LD_LIBRARY_PATH` or `LD_AUDIT`, and they
//!    are not set now (see [`check_environment`]).
//! 2. The package has no `DT_RPATH`, `DT_RUNPATH`, `DT_AUDIT` or `DT_DEPAUDIT`.
//! 3. Every `DT_NEEDED` / `DT_FILTER` / `DT_AUXILIARY` name is a plain library name (no `/`, no
//!    `$` token), and either an object already loaded in the process answers to it (glibc binds
//!    the package to that object; the check keeps a reference to it until the package is
//!    loaded), or every place glibc may take it from is safe: the directories of the loader's
//!    search path (as glibc itself reports it with `dlinfo(RTLD_DI_SERINFO)`, plus the standard
//!    system directories), each with its `glibc-hwcaps` and legacy hardware-capability
//!    subdirectories, and every `/etc/ld.so.cache` entry for that name. Safe means: every
//!    directory on the way (following symbolic links) is owned by root and not writable by its
//!    group or others, and an existing file is owned by root and not writable by its group or
//!    others; a missing file is fine only because nobody but root can create it there. At least
//!    one such file must exist (`DT_AUXILIARY` excepted).
//! 4. The same holds, recursively, for the dependencies of every library that step 3 would load
//!    from a file, with that library's own `DT_RPATH`/`DT_RUNPATH` directories (`$ORIGIN`
//!    expanded) added to the places checked.
//! 5. Every library the package's symbol versions come from (`DT_VERNEED`) defines versions: glibc
//!    asserts (aborts the process) when such a library turns out unversioned.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{c_char, c_uint, c_void, CStr, CString, OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::elf::{self, DynamicInfo};
use crate::error::LoadError;
use crate::guarded::LinkMap;

/// The variables through which glibc's dynamic loader lets the environment choose code.
pub const LOADER_VARIABLES: [&str; 3] = ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"];

const LD_SO_CACHE: &str = "/etc/ld.so.cache";
const MAX_CACHE_SIZE: u64 = 64 << 20;
const MAX_LIBRARY_SIZE: u64 = 1 << 30;
/// Distinct library files inspected for one package (transitively).
const MAX_FILES: usize = 512;
const MAX_SYMLINKS: usize = 40;

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
fn subdirectories() -> &'static [String] {
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

fn unsafe_dep(msg: impl Into<String>) -> LoadError {
    LoadError::UnsafeDependency(msg.into())
}

fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

fn shorten(value: &[u8]) -> String {
    let s = String::from_utf8_lossy(value);
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s.into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// The environment

/// Refuses when `LD_PRELOAD`, `LD_LIBRARY_PATH` or `LD_AUDIT` is set (even empty) in the
/// environment the process was started with, or in its current environment.
///
/// glibc's dynamic loader reads these variables once, at process start, from the environment the
/// kernel handed to the new program: what `std::env` says later neither causes nor undoes their
/// effect (a library preloaded at start stays loaded and keeps interposing symbols; the search
/// path stays in force for every later `dlopen`). So the initial environment, as the kernel
/// recorded it (`/proc/self/environ`), is what decides. The current environment is checked as
/// well: a variable set at run time means the runner's environment is being tampered with, and
/// every process it starts would inherit it.
pub fn check_environment() -> Result<(), LoadError> {
    let initial = initial_loader_variables().map_err(|e| {
        LoadError::Unsupported(format!(
            "the process's initial environment cannot be read, so LD_PRELOAD, LD_LIBRARY_PATH and LD_AUDIT cannot be ruled out: {e}"
        ))
    })?;
    if let Some((name, value)) = initial.first() {
        return Err(LoadError::UnsafeEnvironment(format!(
            "{name} is set in the environment the process was started with (to \"{}\"): the dynamic loader read it at start-up and would let it choose the code a package binds to; start the runner without {name}",
            shorten(value)
        )));
    }
    for name in LOADER_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            return Err(LoadError::UnsafeEnvironment(format!(
                "{name} is set in the process's current environment (to \"{}\"); unset it (and find out what set it)",
                shorten(value.as_bytes())
            )));
        }
    }
    Ok(())
}

/// (name, value) of the loader variables found in an environment.
type LoaderVariables = Vec<(String, Vec<u8>)>;

/// The loader variables of the initial environment, read once: the block never changes (a process
/// that overwrites it in place could only hide a variable, so the first reading is kept).
fn initial_loader_variables() -> Result<&'static [(String, Vec<u8>)], String> {
    static INITIAL: OnceLock<Result<LoaderVariables, String>> = OnceLock::new();
    INITIAL
        .get_or_init(|| {
            let block = initial_environment_block()?;
            Ok(loader_variables_in(&block))
        })
        .as_ref()
        .map(|v| v.as_slice())
        .map_err(|e| e.clone())
}

fn loader_variables_in(block: &[u8]) -> LoaderVariables {
    let mut found = Vec::new();
    for entry in block.split(|&b| b == 0) {
        for name in LOADER_VARIABLES {
            if let Some(value) = entry
                .strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
            {
                found.push((name.to_string(), value.to_vec()));
            }
        }
    }
    found
}

/// The environment block the process was started with.
fn initial_environment_block() -> Result<Vec<u8>, String> {
    match std::fs::read("/proc/self/environ") {
        Ok(block) => Ok(block),
        // While the process is not dumpable the file belongs to root and cannot be opened by the
        // process itself; the block is still in our own memory, where /proc/self/stat says.
        Err(e) => environment_block_from_memory()
            .map_err(|e2| format!("/proc/self/environ: {e}; reading it from memory: {e2}")),
    }
}

pub(crate) fn environment_block_from_memory() -> Result<Vec<u8>, String> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or("/proc/self/stat has no command field")?;
    // Fields 50 and 51 of proc(5) (env_start, env_end); `rest` starts at field 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> Result<usize, String> {
        fields
            .get(i)
            .and_then(|f| f.parse::<usize>().ok())
            .ok_or_else(|| "/proc/self/stat has no env_start/env_end".to_string())
    };
    let (start, end) = (num(47)?, num(48)?);
    if start == 0 || end < start || end - start > 16 << 20 {
        return Err(format!(
            "implausible environment block 0x{start:x}..0x{end:x}"
        ));
    }
    let mut buf = vec![0u8; end - start];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: start as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: process_vm_readv copies from our own address space into `buf`, which is valid for
    // `buf.len()` bytes; an unmapped source range makes the kernel return EFAULT, never a fault
    // in this process.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(format!(
            "process_vm_readv: {}",
            std::io::Error::last_os_error()
        ));
    }
    buf.truncate(n as usize);
    Ok(buf)
}

// ---------------------------------------------------------------------------------------------
// Results

/// How one dependency will be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// An object already loaded in the process answers to this name: the package binds to it.
    AlreadyLoaded,
    /// The dynamic loader will load a file, found at this path (the first of the checked places
    /// that has it; every place it may come from was checked).
    File(PathBuf),
    /// A `DT_AUXILIARY` library found nowhere (the dynamic loader then does without it).
    Absent,
}

/// One dependency of a package (or of one of its dependencies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The name as written in the dynamic section.
    pub name: String,
    /// `DT_NEEDED`, `DT_FILTER` or `DT_AUXILIARY`.
    pub tag: &'static str,
    /// `the package`, or the path of the library that needs it.
    pub needed_by: String,
    pub resolution: Resolution,
}

/// The outcome of [`check_dependencies`]. It holds a reference to every dependency that was
/// already loaded, so that none of them can be unloaded (and a name then found elsewhere) before
/// the package is: keep it alive until the package's `dlopen` has returned.
pub struct DependencyCheck {
    dependencies: Vec<Dependency>,
    handles: Vec<NonNull<c_void>>,
}

impl DependencyCheck {
    pub fn dependencies(&self) -> &[Dependency] {
        &self.dependencies
    }

    pub(crate) fn into_dependencies(mut self) -> Vec<Dependency> {
        std::mem::take(&mut self.dependencies)
    }
}

impl std::fmt::Debug for DependencyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DependencyCheck")
            .field("dependencies", &self.dependencies)
            .finish()
    }
}

impl Drop for DependencyCheck {
    fn drop(&mut self) {
        for h in self.handles.drain(..) {
            // SAFETY: each handle came from a successful dlopen of ours and is closed once.
            unsafe { libc::dlclose(h.as_ptr()) };
        }
    }
}

/// Checks a package (its sealed bytes) against the dependency policy (see the module
/// documentation): the ELF checks of [`crate::check_shared_library`], the environment, the
/// package's own search-path entries, then every dependency, transitively.
///
/// [`crate::GuardedLibrary::load`] runs it right before `dlopen`, under the guarded-load lock. A
/// caller that loads the sealed image some other way (`process.dlopen` of a Node addon through
/// [`crate::SealedImage::proc_path`]) should run it too and keep the result alive until its load
/// returns.
pub fn check_dependencies(bytes: &[u8]) -> Result<DependencyCheck, LoadError> {
    let info = elf::inspect(bytes)?;
    check_environment()?;
    for (tag, values, why) in [
        (
            "DT_RPATH",
            &info.rpath,
            "the dynamic loader would search it for the package's dependencies first",
        ),
        (
            "DT_RUNPATH",
            &info.runpath,
            "the dynamic loader would search it for the package's dependencies first",
        ),
        (
            "DT_AUDIT",
            &info.audit,
            "it names audit libraries that would watch and redirect every load",
        ),
        (
            "DT_DEPAUDIT",
            &info.depaudit,
            "it names audit libraries that would watch and redirect every load",
        ),
    ] {
        if let Some(v) = values.first() {
            return Err(unsafe_dep(format!(
                "the package has {tag} \"{}\": {why}; a package must not carry its own library search path or audit libraries",
                show(v)
            )));
        }
    }
    let mut r = Resolver::default();
    let package = "the package".to_string();
    for (tag, names) in [
        ("DT_NEEDED", &info.needed),
        ("DT_FILTER", &info.filters),
        ("DT_AUXILIARY", &info.auxiliary),
    ] {
        for name in names {
            r.queue.push_back(Need {
                name: name.clone(),
                tag,
                needed_by: package.clone(),
                dirs: Vec::new(),
                inherited_rpath: Vec::new(),
                must_define_versions: info.verneed_files.contains(name),
                from_package: true,
            });
        }
    }
    r.run()?;
    Ok(DependencyCheck {
        dependencies: std::mem::take(&mut r.list),
        handles: std::mem::take(&mut r.handles),
    })
}

// ---------------------------------------------------------------------------------------------
// Resolution

struct Need {
    name: Vec<u8>,
    tag: &'static str,
    needed_by: String,
    /// Directories searched for this need in addition to the loader's own search path (the
    /// requester's DT_RPATH/DT_RUNPATH and its loaders' DT_RPATH).
    dirs: Vec<PathBuf>,
    /// The DT_RPATH chain the requester's own dependencies inherit.
    inherited_rpath: Vec<PathBuf>,
    must_define_versions: bool,
    from_package: bool,
}

#[derive(Default)]
struct Resolver {
    queue: VecDeque<Need>,
    list: Vec<Dependency>,
    handles: Vec<NonNull<c_void>>,
    done: HashSet<(Vec<u8>, Vec<PathBuf>)>,
    files: HashSet<(u64, u64)>,
    search: Option<Vec<PathBuf>>,
    cache: Option<CacheEntries>,
    dir_walks: HashMap<PathBuf, Result<Found, String>>,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        for h in self.handles.drain(..) {
            // SAFETY: each handle came from a successful dlopen of ours and is closed once.
            unsafe { libc::dlclose(h.as_ptr()) };
        }
    }
}

impl Resolver {
    fn run(&mut self) -> Result<(), LoadError> {
        while let Some(need) = self.queue.pop_front() {
            self.resolve(need)?;
        }
        Ok(())
    }

    fn resolve(&mut self, need: Need) -> Result<(), LoadError> {
        let Need {
            name,
            tag,
            needed_by,
            ..
        } = &need;
        let what = format!("{tag} \"{}\" (needed by {needed_by})", show(name));
        if name.is_empty() || name == b"." || name == b".." {
            return Err(unsafe_dep(format!("{what} is not a library name")));
        }
        if name.contains(&b'$') {
            return Err(unsafe_dep(format!(
                "{what} contains a dynamic string token ($ORIGIN, $LIB, $PLATFORM), which would let the loader compute where to load it from"
            )));
        }
        if name.contains(&b'/') {
            if need.from_package || !name.starts_with(b"/") {
                return Err(unsafe_dep(format!(
                    "{what} contains '/': the dynamic loader would open it as a path instead of searching the system's library directories; only plain library names are accepted"
                )));
            }
            // An absolute path in a (root-owned) dependency: it must be safe itself.
            let path = PathBuf::from(OsStr::from_bytes(name));
            return match walk(&path) {
                Err(why) => Err(unsafe_dep(format!("{what}: {why}"))),
                Ok(Found::File(resolved, dev, ino)) => {
                    self.loaded_from_file(&need, &[(path.clone(), resolved, dev, ino)])?;
                    self.record(&need, Resolution::File(path));
                    Ok(())
                }
                Ok(_) => Err(unsafe_dep(format!("{what} does not exist"))),
            };
        }
        let key = (name.clone(), need.dirs.clone());
        if !need.must_define_versions && !self.done.insert(key) {
            return Ok(());
        }
        // Already loaded? dlopen(RTLD_NOLOAD) answers exactly as glibc will for the package: by
        // name (or SONAME) first, then by file identity, and never loads anything.
        let cname =
            CString::new(name.clone()).map_err(|_| unsafe_dep(format!("{what} contains NUL")))?;
        // SAFETY: `cname` is a valid C string; RTLD_NOLOAD only looks objects up.
        let h = unsafe {
            libc::dlerror();
            libc::dlopen(cname.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD)
        };
        if let Some(h) = NonNull::new(h) {
            self.handles.push(h);
            if need.must_define_versions && !loaded_defines_versions(h) {
                return Err(unsafe_dep(format!(
                    "{what} is loaded without symbol versions (no DT_VERDEF) while the package requires versions from it (DT_VERNEED): glibc aborts the process on such a lookup"
                )));
            }
            self.record(&need, Resolution::AlreadyLoaded);
            return Ok(());
        }
        // Every place the loader may take it from.
        let mut dirs: Vec<PathBuf> = need.dirs.clone();
        for d in self.search_path()? {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        let mut found: Vec<(PathBuf, PathBuf, u64, u64)> = Vec::new();
        for dir in &dirs {
            for sub in subdirectories() {
                let d = if sub.is_empty() {
                    dir.clone()
                } else {
                    dir.join(sub)
                };
                match self.walk_dir(&d) {
                    Err(why) => {
                        return Err(unsafe_dep(format!(
                            "{what}: the dynamic loader searches {} for it, but {why}",
                            d.display()
                        )))
                    }
                    Ok(Found::Dir) => {}
                    Ok(_) => continue, // missing (and nobody else can create it), or not a directory
                }
                let candidate = d.join(OsStr::from_bytes(name));
                match walk(&candidate) {
                    Err(why) => {
                        return Err(unsafe_dep(format!(
                            "{what} may be loaded from {}, but {why}",
                            candidate.display()
                        )))
                    }
                    Ok(Found::File(resolved, dev, ino)) => {
                        found.push((candidate, resolved, dev, ino))
                    }
                    Ok(_) => {}
                }
            }
        }
        for value in self.cache_entries(name)? {
            let candidate = PathBuf::from(OsStr::from_bytes(&value));
            if !candidate.is_absolute() {
                return Err(unsafe_dep(format!(
                    "{what}: {LD_SO_CACHE} maps it to the relative path {}",
                    candidate.display()
                )));
            }
            match walk(&candidate) {
                Err(why) => {
                    return Err(unsafe_dep(format!(
                        "{what} is listed in {LD_SO_CACHE} as {}, but {why}",
                        candidate.display()
                    )))
                }
                Ok(Found::File(resolved, dev, ino)) => found.push((candidate, resolved, dev, ino)),
                Ok(_) => {}
            }
        }
        let Some(first) = found.first().map(|f| f.0.clone()) else {
            if *tag == "DT_AUXILIARY" {
                self.record(&need, Resolution::Absent);
                return Ok(());
            }
            return Err(unsafe_dep(format!(
                "{what} is not loaded in this process and is found neither in {LD_SO_CACHE} nor in the library directories ({})",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        self.loaded_from_file(&need, &found)?;
        self.record(&need, Resolution::File(first));
        Ok(())
    }

    fn record(&mut self, need: &Need, resolution: Resolution) {
        self.list.push(Dependency {
            name: show(&need.name),
            tag: need.tag,
            needed_by: need.needed_by.clone(),
            resolution,
        });
    }

    /// The dependency will be loaded from one of `files`: check what each of them needs in turn.
    fn loaded_from_file(
        &mut self,
        need: &Need,
        files: &[(PathBuf, PathBuf, u64, u64)],
    ) -> Result<(), LoadError> {
        for (path, resolved, dev, ino) in files {
            let Some(info) = read_dynamic_info(resolved)? else {
                continue; // not an ELF object of this machine: glibc skips it or fails cleanly
            };
            if need.must_define_versions && !info.has_verdef {
                return Err(unsafe_dep(format!(
                    "{} \"{}\" ({}) defines no symbol versions (no DT_VERDEF) while the package requires versions from it (DT_VERNEED): glibc aborts the process on such a lookup",
                    need.tag,
                    show(&need.name),
                    path.display()
                )));
            }
            if !self.files.insert((*dev, *ino)) {
                continue;
            }
            if self.files.len() > MAX_FILES {
                return Err(unsafe_dep(format!(
                    "the package's dependencies span more than {MAX_FILES} libraries"
                )));
            }
            let origin = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            let by = path.display().to_string();
            let rpath = expand_search_path(&info.rpath, "DT_RPATH", &origin, &by)?;
            let runpath = expand_search_path(&info.runpath, "DT_RUNPATH", &origin, &by)?;
            for d in rpath.iter().chain(&runpath) {
                if let Err(why) = self.walk_dir(d) {
                    return Err(unsafe_dep(format!(
                        "{by} searches {} for its dependencies, but {why}",
                        d.display()
                    )));
                }
            }
            let mut inherited = rpath.clone();
            inherited.extend(need.inherited_rpath.iter().cloned());
            let mut dirs = inherited.clone();
            dirs.extend(runpath);
            for (tag, names) in [
                ("DT_NEEDED", &info.needed),
                ("DT_FILTER", &info.filters),
                ("DT_AUXILIARY", &info.auxiliary),
            ] {
                for name in names {
                    self.queue.push_back(Need {
                        name: name.clone(),
                        tag,
                        needed_by: by.clone(),
                        dirs: dirs.clone(),
                        inherited_rpath: inherited.clone(),
                        must_define_versions: false,
                        from_package: false,
                    });
                }
            }
        }
        Ok(())
    }

    fn walk_dir(&mut self, dir: &Path) -> Result<Found, String> {
        self.dir_walks
            .entry(dir.to_path_buf())
            .or_insert_with(|| walk(dir))
            .clone()
    }

    /// The loader's own search path for a package, plus the standard system directories.
    fn search_path(&mut self) -> Result<Vec<PathBuf>, LoadError> {
        if self.search.is_none() {
            let mut dirs = loader_search_path()?;
            for d in SYSTEM_DIRS {
                let d = PathBuf::from(d);
                if !dirs.contains(&d) {
                    dirs.push(d);
                }
            }
            for d in &dirs {
                if let Err(why) = self.walk_dir(d) {
                    return Err(unsafe_dep(format!(
                        "the dynamic loader searches {} for libraries, but {why}",
                        d.display()
                    )));
                }
            }
            self.search = Some(dirs);
        }
        Ok(self.search.clone().unwrap_or_default())
    }

    fn cache_entries(&mut self, name: &[u8]) -> Result<Vec<Vec<u8>>, LoadError> {
        if self.cache.is_none() {
            self.cache = Some(read_ld_cache()?);
        }
        Ok(self
            .cache
            .as_ref()
            .map(|c| {
                c.iter()
                    .filter(|(k, _)| cache_libcmp(name, k) == std::cmp::Ordering::Equal)
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// The DT_RPATH/DT_RUNPATH directories of a (root-owned) dependency, `$ORIGIN` expanded.
fn expand_search_path(
    values: &[Vec<u8>],
    tag: &str,
    origin: &Path,
    by: &str,
) -> Result<Vec<PathBuf>, LoadError> {
    let mut dirs = Vec::new();
    for value in values {
        for element in value.split(|&b| b == b':') {
            let text = String::from_utf8_lossy(element);
            let expanded = text
                .replace("${ORIGIN}", &origin.to_string_lossy())
                .replace("$ORIGIN", &origin.to_string_lossy());
            if expanded.contains('$') {
                return Err(unsafe_dep(format!(
                    "{by} has {tag} \"{text}\" with a dynamic string token other than $ORIGIN"
                )));
            }
            if !expanded.starts_with('/') {
                return Err(unsafe_dep(format!(
                    "{by} has {tag} element \"{text}\", which is relative to the current directory"
                )));
            }
            dirs.push(PathBuf::from(expanded));
        }
    }
    Ok(dirs)
}

/// Whether a loaded object's dynamic section has DT_VERDEF.
fn loaded_defines_versions(handle: NonNull<c_void>) -> bool {
    let mut lm: *mut LinkMap = std::ptr::null_mut();
    // SAFETY: `handle` is a live dlopen handle; RTLD_DI_LINKMAP stores a `struct link_map *`
    // into `lm`.
    let rc = unsafe {
        libc::dlinfo(
            handle.as_ptr(),
            libc::RTLD_DI_LINKMAP,
            &mut lm as *mut *mut LinkMap as *mut c_void,
        )
    };
    if rc != 0 || lm.is_null() {
        return false;
    }
    // SAFETY: glibc's link map stays valid while we hold the handle; `l_ld` points to the
    // object's dynamic section in its mapped image, an array terminated by DT_NULL (it was
    // checked and relocated by the loader when the object was loaded).
    unsafe {
        let mut d = (*lm).l_ld as *const [u64; 2];
        if d.is_null() {
            return false;
        }
        for _ in 0..4096 {
            let [tag, _] = *d;
            if tag == elf::DT_NULL {
                return false;
            }
            if tag == elf::DT_VERDEF {
                return true;
            }
            d = d.add(1);
        }
    }
    false
}

fn read_dynamic_info(path: &Path) -> Result<Option<DynamicInfo>, LoadError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| unsafe_dep(format!("cannot inspect {}: {e}", path.display())))?;
    if meta.len() > MAX_LIBRARY_SIZE {
        return Err(unsafe_dep(format!(
            "{} is larger than {MAX_LIBRARY_SIZE} bytes",
            path.display()
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| unsafe_dep(format!("cannot read {}: {e}", path.display())))?;
    Ok(elf::inspect_names(&bytes).ok())
}

/// The directories glibc's loader searches for the dependencies of an object that has no
/// DT_RPATH/DT_RUNPATH of its own, as glibc itself reports them: those of the dynamic loader
/// `ld.so` (which has none), that is the executable's DT_RPATH, the LD_LIBRARY_PATH in force and
/// the system directories. Falls back to the executable's own list (a superset).
fn loader_search_path() -> Result<Vec<PathBuf>, LoadError> {
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

// ---------------------------------------------------------------------------------------------
// /etc/ld.so.cache

/// Every (name, path) entry of the loader's cache; empty when there is no cache. The cache file
/// itself must be safe (root-owned, in root-owned directories nobody else can write).
fn read_ld_cache() -> Result<CacheEntries, LoadError> {
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

/// (name, path) pairs of `/etc/ld.so.cache`.
type CacheEntries = Vec<(Vec<u8>, Vec<u8>)>;

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

// ---------------------------------------------------------------------------------------------
// Safe places

/// What a path leads to, every directory on the way (symbolic links followed) having been found
/// safe.
#[derive(Debug, Clone)]
pub(crate) enum Found {
    /// Nothing there; nobody but root can create it, since the deepest existing directory is
    /// root-owned and not writable by others.
    Missing,
    /// A safe regular file (resolved path, device, inode).
    File(PathBuf, u64, u64),
    /// A safe directory.
    Dir,
    /// Something else (a device, a socket).
    Other,
}

fn safe_owner(path: &Path, meta: &Metadata, what: &str) -> Result<(), String> {
    if meta.uid() != 0 {
        return Err(format!(
            "the {what} {} is owned by uid {}, not by root",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode();
    if mode & 0o002 != 0 {
        return Err(format!(
            "the {what} {} is writable by others (mode {:o})",
            path.display(),
            mode & 0o7777
        ));
    }
    if mode & 0o020 != 0 {
        return Err(format!(
            "the {what} {} is writable by its group (mode {:o})",
            path.display(),
            mode & 0o7777
        ));
    }
    Ok(())
}

fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Follows `path` from `/`, component by component and link by link, the way the kernel does,
/// and requires every directory it passes through to be safe (and a file it ends at).
pub(crate) fn walk(path: &Path) -> Result<Found, String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let root = Path::new("/");
    let meta = std::fs::symlink_metadata(root).map_err(|e| format!("cannot inspect /: {e}"))?;
    safe_owner(root, &meta, "directory")?;
    let mut cur = PathBuf::from("/");
    let mut pending = components(path);
    let mut links = 0usize;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            cur.pop(); // `cur` and its ancestors were found safe on the way in
            continue;
        }
        let next = cur.join(&c);
        let meta = match std::fs::symlink_metadata(&next) {
            Ok(m) => m,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                return Ok(Found::Missing)
            }
            Err(e) => return Err(format!("{} cannot be inspected ({e})", next.display())),
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(format!(
                    "{} involves too many symbolic links",
                    path.display()
                ));
            }
            // The link lives in `cur`, which is safe: only root could have made or changed it.
            let target = std::fs::read_link(&next)
                .map_err(|e| format!("{} cannot be read ({e})", next.display()))?;
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            let mut rest = components(&target);
            rest.extend(pending);
            pending = rest;
            continue;
        }
        if ft.is_dir() {
            safe_owner(&next, &meta, "directory")?;
            cur = next;
            continue;
        }
        if !pending.is_empty() {
            return Ok(Found::Missing); // a file used as a directory: ENOTDIR
        }
        if ft.is_file() {
            safe_owner(&next, &meta, "file")?;
            return Ok(Found::File(next, meta.dev(), meta.ino()));
        }
        return Ok(Found::Other);
    }
    Ok(Found::Dir)
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
        let entries = read_ld_cache().unwrap();
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
    fn walking_paths() {
        // Root-owned system files pass; a directory anyone can write (as /tmp) does not.
        assert!(matches!(
            walk(Path::new("/etc/passwd")),
            Ok(Found::File(..))
        ));
        assert!(matches!(
            walk(Path::new("/no/such/dir/x")),
            Ok(Found::Missing)
        ));
        let tmp = std::env::temp_dir();
        let err = walk(&tmp.join("x")).unwrap_err();
        assert!(
            err.contains("writable by others") || err.contains("not by root"),
            "{err}"
        );
        assert!(walk(Path::new("relative")).is_err());
    }

    #[test]
    fn environment_variables_are_found_in_a_block() {
        let block = b"A=1\0LD_PRELOAD=/x.so\0LD_LIBRARY_PATHX=1\0LD_AUDIT=\0";
        let found = loader_variables_in(block);
        assert_eq!(
            found,
            vec![
                ("LD_PRELOAD".to_string(), b"/x.so".to_vec()),
                ("LD_AUDIT".to_string(), Vec::new())
            ]
        );
    }

    #[test]
    fn the_environment_block_can_be_read_from_memory() {
        let from_proc = std::fs::read("/proc/self/environ").unwrap();
        match environment_block_from_memory() {
            Ok(from_memory) => assert_eq!(from_memory, from_proc),
            // Some sandboxes (seccomp profiles) forbid process_vm_readv even on oneself.
            Err(e) if e.contains("process_vm_readv") => eprintln!("skipped: {e}"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_loader_search_path_is_known() {
        let dirs = loader_search_path().unwrap();
        assert!(!dirs.is_empty());
        assert!(dirs.iter().all(|d| d.is_absolute()), "{dirs:?}");
    }
}
