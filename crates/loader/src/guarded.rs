//! dlopen of a sealed image through a unique `/proc/self/fd/...` path.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

#[cfg(test)]
use cloacina_sign_core::digest::DigestSet;
use cloacina_sign_core::digest::PackageDigests;

use crate::cleared::{Clearance, ClearedImage};
use crate::deps::Dependency;
use crate::error::LoadError;
use crate::link_map::{self, LinkMap};
use crate::process::{serialize_guarded, unique_proc_path};
use crate::sealed::SealedImage;

fn dlerror_text() -> String {
    // SAFETY: dlerror has no preconditions; it returns null or a NUL-terminated string that stays
    // valid until the next dl* call on this thread, and we copy it out right away.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".to_string()
    } else {
        // SAFETY: non-null, NUL-terminated, valid until the next dl* call (see above).
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// A shared library loaded from a [`SealedImage`]: exactly the sealed bytes, nothing else.
///
/// The image (memfd + mapping) stays alive as long as the library; on drop the library is
/// dlclose'd first, then the memfd closed.
pub struct GuardedLibrary {
    handle: NonNull<libc::c_void>,
    path: String,
    clearance: Clearance,
    dependencies: Vec<Dependency>,
    // Dropped after `Drop::drop` (dlclose) ran.
    image: SealedImage,
}

// SAFETY: the handle is an opaque token that glibc's dl* functions (thread-safe: they take the
// loader's own lock) accept from any thread; dropping it on another thread only calls dlclose.
// The other fields are Send (SealedImage is: see its SAFETY comment).
unsafe impl Send for GuardedLibrary {}
// SAFETY: `&self` methods only pass the handle to thread-safe dl* functions (dlsym, dladdr,
// dlinfo) and read immutable fields; nothing is mutated through a shared reference.
unsafe impl Sync for GuardedLibrary {}

impl std::fmt::Debug for GuardedLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedLibrary")
            .field("path", &self.path)
            .field("image", &self.image)
            .finish()
    }
}

impl GuardedLibrary {
    /// dlopens the cleared image (RTLD_NOW | RTLD_LOCAL) through a fresh unique
    /// `/proc/self/fd/...` path, under the process-wide guarded-load lock.
    ///
    /// Only a [`ClearedImage`] can be loaded: its signature verified, or the caller's policy
    /// explicitly allowed it unsigned. Right before `dlopen` the ELF checks are repeated and the
    /// dependency policy is enforced ([`crate::check_dependencies`]: the environment, the
    /// package's search paths, where every dependency comes from), so no code of the package or
    /// of its dependencies runs unless it passes. The library's constructors run during this
    /// call.
    pub fn load(cleared: ClearedImage) -> Result<GuardedLibrary, LoadError> {
        serialize_guarded(|| {
            let path = unique_proc_path(cleared.image().fd());
            Self::load_at(cleared, path)
        })
    }

    /// Must be called with the lock held. `path` must name the image's memfd.
    pub(crate) fn load_at(
        cleared: ClearedImage,
        path: String,
    ) -> Result<GuardedLibrary, LoadError> {
        // Keeps every already-loaded dependency loaded until the dlopen below has returned.
        let dependency_check = cleared.dependency_check()?;
        let clearance = cleared.clearance().clone();
        let image = cleared.into_image();
        let cpath =
            CString::new(path.clone()).map_err(|_| LoadError::LoadFailed("bad path".into()))?;
        // SAFETY: dlerror has no preconditions; `cpath` is a valid C string. RTLD_NOLOAD never
        // loads anything (no code runs), and a handle it returns is closed right away.
        let existing = unsafe {
            libc::dlerror();
            libc::dlopen(
                cpath.as_ptr(),
                libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NOLOAD,
            )
        };
        if !existing.is_null() {
            // SAFETY: `existing` came from the successful dlopen above and is closed once.
            unsafe { libc::dlclose(existing) };
            return Err(LoadError::LoadFailed(format!(
                "an object named {path} is already loaded; refusing to reuse it"
            )));
        }
        // SAFETY: `cpath` names the sealed memfd, whose bytes passed the ELF checks (the loader
        // cannot be made to read or write outside the image) and whose dependencies passed the
        // dependency policy; the memfd stays open (owned by `image`) for as long as the library
        // is loaded. Running the package's constructors is the point of the call: it was cleared.
        let h = unsafe {
            libc::dlerror();
            libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL)
        };
        let Some(handle) = NonNull::new(h) else {
            return Err(LoadError::LoadFailed(dlerror_text()));
        };
        let lib = GuardedLibrary {
            handle,
            path,
            clearance,
            dependencies: dependency_check.into_dependencies(),
            image,
        };
        match lib.loaded_name() {
            Some(n) if n.to_bytes() == lib.path.as_bytes() => Ok(lib),
            other => {
                let got = other.map(|c| c.to_string_lossy().into_owned());
                let msg = format!(
                    "the dynamic loader returned a different object ({got:?}) than {}",
                    lib.path
                );
                drop(lib); // dlclose, then close the memfd
                Err(LoadError::LoadFailed(msg))
            }
        }
    }

    fn link_map(&self) -> Option<&LinkMap> {
        let mut lm: *mut LinkMap = std::ptr::null_mut();
        // SAFETY: the handle is live while `self` is; RTLD_DI_LINKMAP stores a
        // `struct link_map *` into `lm`, which is what we pass.
        let rc = unsafe {
            link_map::dlinfo(
                self.handle.as_ptr(),
                link_map::RTLD_DI_LINKMAP,
                &mut lm as *mut *mut LinkMap as *mut libc::c_void,
            )
        };
        if rc != 0 || lm.is_null() {
            return None;
        }
        // SAFETY: non-null, and glibc keeps the link map alive (and its public prefix
        // unchanged) while the object is loaded, i.e. while `self` (the handle) lives; the
        // returned reference borrows `self`.
        Some(unsafe { &*lm })
    }

    fn loaded_name(&self) -> Option<&CStr> {
        let lm = self.link_map()?;
        if lm.l_name.is_null() {
            return None;
        }
        // SAFETY: `l_name` is a NUL-terminated string owned by the link map, valid while the
        // object is loaded; the result borrows `self`.
        Some(unsafe { CStr::from_ptr(lm.l_name) })
    }

    /// The bytes the library was loaded from (cleared before it was).
    pub fn bytes(&self) -> &[u8] {
        self.image.bytes()
    }

    /// The unique path the library was loaded under.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Why this library was allowed to load.
    pub fn clearance(&self) -> &Clearance {
        &self.clearance
    }

    /// The dependencies the package was cleared with (see [`crate::check_dependencies`]).
    pub fn dependencies(&self) -> &[Dependency] {
        &self.dependencies
    }

    /// The sealed image this library was loaded from.
    pub fn image(&self) -> &SealedImage {
        &self.image
    }

    /// The size and digests of the loaded bytes.
    pub fn digests(&self) -> &PackageDigests {
        self.image.digests()
    }

    /// The raw dlopen handle (valid while `self` lives).
    pub fn raw_handle(&self) -> *mut libc::c_void {
        self.handle.as_ptr()
    }

    /// Address of `name` if it is defined by THIS object (symbols that would only resolve in one
    /// of its dependencies are ignored).
    pub fn symbol_ptr(&self, name: &str) -> Option<NonNull<libc::c_void>> {
        let cname = CString::new(name).ok()?;
        // SAFETY: live handle and a valid C string; dlsym only looks the symbol up.
        let p = NonNull::new(unsafe { libc::dlsym(self.handle.as_ptr(), cname.as_ptr()) })?;
        // SAFETY: Dl_info is a plain C struct of pointers; all-zero is a valid value.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        // SAFETY: dladdr only reads the loader's tables and fills `info`, a valid out-pointer.
        if unsafe { libc::dladdr(p.as_ptr(), &mut info) } == 0 || info.dli_fname.is_null() {
            return None;
        }
        let lm = self.link_map()?;
        if info.dli_fbase as usize != lm.l_addr
            // SAFETY: dli_fname is non-null (checked above) and NUL-terminated, owned by the
            // loader and valid while the object that contains `p` (ours) stays loaded.
            && unsafe { CStr::from_ptr(info.dli_fname) }.to_bytes() != self.path.as_bytes()
        {
            return None;
        }
        Some(p)
    }

    /// Whether this object defines `name`.
    pub fn has_symbol(&self, name: &str) -> bool {
        self.symbol_ptr(name).is_some()
    }

    /// Looks up `name` and reinterprets its address as `T` (a function pointer type).
    ///
    /// # Safety
    /// `T` must be a pointer-sized type matching the symbol's real type, and the value must not
    /// be used after `self` is dropped.
    pub unsafe fn symbol<T: Copy>(&self, name: &str) -> Result<T, LoadError> {
        assert_eq!(
            std::mem::size_of::<T>(),
            std::mem::size_of::<*mut libc::c_void>()
        );
        let p = self
            .symbol_ptr(name)
            .ok_or_else(|| LoadError::MissingSymbol(name.to_string()))?;
        // SAFETY: `T` is pointer-sized (asserted above) and, by the caller's contract, the
        // symbol's real type; transmute_copy reads exactly size_of::<T>() bytes of the pointer.
        Ok(unsafe { std::mem::transmute_copy::<*mut libc::c_void, T>(&p.as_ptr()) })
    }
}

impl Drop for GuardedLibrary {
    fn drop(&mut self) {
        // SAFETY: the handle came from our successful dlopen and is closed exactly once, here;
        // nothing derived from it (symbols) may be used after `self` is dropped (see `symbol`).
        unsafe { libc::dlclose(self.handle.as_ptr()) };
        // `image` is dropped after this: munmap + close(memfd).
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// If an object is already resident under the exact path string, the guarded load refuses
    /// instead of silently returning that object (the RTLD_NOLOAD pre-check).
    // glibc matches loaded objects by name; musl by file identity (tests/fd_reuse.rs).
    #[cfg(target_env = "gnu")]
    #[test]
    fn refuses_a_path_that_is_already_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/which.c");
        let build = |name: &str, which: &str| {
            let out = dir.path().join(name);
            let st = std::process::Command::new(crate::test_cc::c_compiler())
                .args(["-shared", "-fPIC", "-Wl,-z,nodelete", which, "-o"])
                .arg(&out)
                .arg(&fixture)
                .status()
                .unwrap();
            assert!(st.success());
            out
        };
        let a = build("a.so", "-DWHICH=1");
        let b = build("b.so", "-DWHICH=2");
        let image_a = SealedImage::from_path(&a, 1 << 26, DigestSet::SHA256)
            .unwrap()
            .allow_unsigned();
        let path = unique_proc_path(image_a.image().fd());
        let lib_a = serialize_guarded(|| GuardedLibrary::load_at(image_a, path.clone())).unwrap();
        drop(lib_a); // stays resident: nodelete

        let image_b = SealedImage::from_path(&b, 1 << 26, DigestSet::SHA256)
            .unwrap()
            .allow_unsigned();
        let err = serialize_guarded(|| GuardedLibrary::load_at(image_b, path.clone())).unwrap_err();
        assert_eq!(err.code(), "LOAD_FAILED");
        assert!(err.to_string().contains("already loaded"), "{err}");
    }
}
