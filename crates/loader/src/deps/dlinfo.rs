//! `dlinfo(RTLD_DI_LINKMAP)`, the one `dlinfo` request glibc and musl both answer.
//!
//! The libc crate declares `dlinfo` for glibc only; musl has had it since 1.1.x with this single
//! request (`<dlfcn.h>`: `#define RTLD_DI_LINKMAP 2`), answering with its `struct dso`, whose
//! first fields are the public `struct link_map` of `<link.h>` (`l_addr`, `l_name`, `l_ld`,
//! `l_next`, `l_prev`), the prefix [`crate::guarded::LinkMap`] reads.

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
