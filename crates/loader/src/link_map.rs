//! A loaded object's entry in the dynamic loader's list of loaded objects, as
//! `dlinfo(RTLD_DI_LINKMAP)` answers it: the one `dlinfo` request glibc and musl both answer.
//!
//! The libc crate declares `dlinfo` for glibc only; musl has had it since 1.1.x with this single
//! request (`<dlfcn.h>`: `#define RTLD_DI_LINKMAP 2`), answering with its `struct dso`, whose
//! first fields are the public `struct link_map` of `<link.h>` (`l_addr`, `l_name`, `l_ld`,
//! `l_next`, `l_prev`), the prefix [`LinkMap`] reads.

#[cfg(target_env = "gnu")]
pub(crate) use libc::{dlinfo, RTLD_DI_LINKMAP};

#[cfg(target_env = "musl")]
pub(crate) const RTLD_DI_LINKMAP: libc::c_int = 2;

#[cfg(target_env = "musl")]
extern "C" {
    /// musl's `int dlinfo(void *restrict, int, void *restrict)`: fails (returns -1, sets
    /// `dlerror`) for an invalid handle or any request but `RTLD_DI_LINKMAP`.
    pub(crate) fn dlinfo(
        handle: *mut libc::c_void,
        request: libc::c_int,
        info: *mut libc::c_void,
    ) -> libc::c_int;
}

/// The public prefix of glibc's `struct link_map` (stable ABI, `<link.h>`).
#[repr(C)]
pub(crate) struct LinkMap {
    pub(crate) l_addr: usize,
    pub(crate) l_name: *const libc::c_char,
    pub(crate) l_ld: *mut libc::c_void,
    pub(crate) l_next: *mut LinkMap,
    pub(crate) l_prev: *mut LinkMap,
}
