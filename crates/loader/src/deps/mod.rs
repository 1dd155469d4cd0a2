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
//!    `$` token), and either an object already loaded in the process answers to it (the loader
//!    binds the package to that object; the check keeps a reference to it until the package is
//!    loaded), or every place the C library's dynamic loader may take it from is safe, by that
//!    loader's own rules:
//!    - glibc (module `glibc`): the directories of the loader's search path (as glibc itself reports
//!      it with `dlinfo(RTLD_DI_SERINFO)`, plus the standard system directories), each with its
//!      `glibc-hwcaps` and legacy hardware-capability subdirectories, and every
//!      `/etc/ld.so.cache` entry for that name;
//!    - musl (module `musl`): the main program's `DT_RPATH`/`DT_RUNPATH` directories, then the
//!      directories of `/etc/ld-musl-<arch>.path` (next to the loader's prefix), or, when that
//!      file does not exist, musl's default `/lib:/usr/local/lib:/usr/lib`; musl has no cache
//!      and no hardware-capability subdirectories.
//!
//!    Safe means: every directory on the way (following symbolic links) is owned by root and not
//!    writable by its group or others, and an existing file is owned by root and not writable by
//!    its group or others; a missing file is fine only because nobody but root can create it
//!    there. At least one such file must exist (`DT_AUXILIARY` excepted).
//! 4. The same holds, recursively, for the dependencies of every library that step 3 would load
//!    from a file, with that library's own `DT_RPATH`/`DT_RUNPATH` directories (`$ORIGIN`
//!    expanded) added to the places checked.
//! 5. Every library the package's symbol versions come from (`DT_VERNEED`) defines versions: glibc
//!    asserts (aborts the process) when such a library turns out unversioned (musl ignores
//!    versions; there the check is merely strict).
//!
//! The environment check is in module `environment`, the ownership walk that decides "safe" in
//! module `walk`, each C library's rules in module `glibc` or `musl` (chosen by `target_env`), and
//! the search for every place a dependency may come from in module `resolve`.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use crate::elf;
use crate::error::LoadError;

mod environment;
#[cfg(target_env = "gnu")]
mod glibc;
#[cfg(target_env = "musl")]
mod musl;
mod resolve;
mod walk;

pub use environment::{check_environment, LOADER_VARIABLES};
#[cfg(target_env = "gnu")]
use glibc as rules;
#[cfg(target_env = "musl")]
use musl as rules;

/// (name, path) pairs of the loader's cache of library names.
type CacheEntries = Vec<(Vec<u8>, Vec<u8>)>;

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
    resolve::resolve_package(&info)
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
        for element in value.split(|b| rules::PATH_SEPARATORS.contains(b)) {
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
