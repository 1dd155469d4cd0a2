//! The search for every place each dependency may come from, by the C library's rules, and the
//! checks of what is found there; transitively, for the dependencies of every library that would
//! be loaded from a file.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{c_void, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use super::walk::{walk, Found};
use super::{
    expand_search_path, rules, show, unsafe_dep, CacheEntries, Dependency, DependencyCheck,
    Resolution,
};
use crate::elf::{self, DynamicInfo};
use crate::error::LoadError;
use crate::link_map::{self, LinkMap};

const MAX_LIBRARY_SIZE: u64 = 1 << 30;
/// Distinct library files inspected for one package (transitively).
const MAX_FILES: usize = 512;

/// Resolves the package's `DT_NEEDED`, `DT_FILTER` and `DT_AUXILIARY` names, and theirs in turn.
pub(super) fn resolve_package(info: &DynamicInfo) -> Result<DependencyCheck, LoadError> {
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

struct Need {
    name: Vec<u8>,
    tag: &'static str,
    needed_by: String,
    /// Directories searched for this need in addition to the loader's own search path (the
    /// requester's DT_RPATH/DT_RUNPATH and its loaders' search paths, by the C library's rules:
    /// `rules::requester_dirs`).
    dirs: Vec<PathBuf>,
    /// The search-path chain the requester's own dependencies inherit.
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
        // The loader's search path is found safe before the probe below: answering it, the loader
        // opens candidate files there, and only a safe directory cannot hold a FIFO that blocks
        // that open.
        let search_path = self.search_path()?;
        // Already loaded? dlopen(RTLD_NOLOAD) answers exactly as the loader will for the package:
        // by name (glibc: or SONAME) first, then by file identity, and never loads anything.
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
        for d in search_path {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        let mut found: Vec<(PathBuf, PathBuf, u64, u64)> = Vec::new();
        for dir in &dirs {
            for sub in rules::subdirectories() {
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
        let cache = rules::CACHE.unwrap_or("the loader's cache");
        for value in self.cache_entries(name)? {
            let candidate = PathBuf::from(OsStr::from_bytes(&value));
            if !candidate.is_absolute() {
                return Err(unsafe_dep(format!(
                    "{what}: {cache} maps it to the relative path {}",
                    candidate.display()
                )));
            }
            match walk(&candidate) {
                Err(why) => {
                    return Err(unsafe_dep(format!(
                        "{what} is listed in {cache} as {}, but {why}",
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
            let places = dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(unsafe_dep(match rules::CACHE {
                Some(cache) => format!(
                    "{what} is not loaded in this process and is found neither in {cache} nor in the library directories ({places})"
                ),
                None => format!(
                    "{what} is not loaded in this process and is found in none of the library directories {} searches ({places})",
                    rules::LOADER
                ),
            }));
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
            let (dirs, inherited) = rules::requester_dirs(rpath, runpath, &need.inherited_rpath);
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

    /// The loader's own search path for a package's dependencies, every directory of it safe.
    fn search_path(&mut self) -> Result<Vec<PathBuf>, LoadError> {
        if self.search.is_none() {
            let dirs = rules::loader_search_path()?;
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
            self.cache = Some(rules::read_cache()?);
        }
        Ok(self
            .cache
            .as_ref()
            .map(|c| {
                c.iter()
                    .filter(|(k, _)| rules::cache_matches(name, k))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Whether a loaded object's dynamic section has DT_VERDEF.
fn loaded_defines_versions(handle: NonNull<c_void>) -> bool {
    let mut lm: *mut LinkMap = std::ptr::null_mut();
    // SAFETY: `handle` is a live dlopen handle; RTLD_DI_LINKMAP stores a `struct link_map *`
    // into `lm`.
    let rc = unsafe {
        link_map::dlinfo(
            handle.as_ptr(),
            link_map::RTLD_DI_LINKMAP,
            &mut lm as *mut *mut LinkMap as *mut c_void,
        )
    };
    if rc != 0 || lm.is_null() {
        return false;
    }
    // SAFETY: the loader's link map stays valid while we hold the handle; `l_ld` points to the
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
