//! The ELF checks accept the shared libraries the system itself ships (zlib, libm, libcrypto,
//! libstdc++, where present): real linkers' output passes.

use std::path::Path;

use cloacina_sign_loader::check_shared_library;

const CANDIDATES: &[&str] = &["libz.so.1", "libm.so.6", "libcrypto.so.3", "libstdc++.so.6"];

#[cfg(target_arch = "x86_64")]
const LIBRARY_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib",
];
#[cfg(target_arch = "aarch64")]
const LIBRARY_DIRS: &[&str] = &[
    "/usr/lib/aarch64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib",
];

#[test]
fn when_a_system_library_is_checked_it_passes() {
    let mut checked = Vec::new();
    for name in CANDIDATES {
        let Some(path) = LIBRARY_DIRS
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.exists())
        else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        if let Err(e) = check_shared_library(&bytes) {
            panic!("{} is refused: {e}", path.display());
        }
        checked.push(path);
    }
    // libm ships with every glibc system.
    #[cfg(target_env = "gnu")]
    assert!(
        checked.iter().any(|p| p.ends_with("libm.so.6")),
        "no libm.so.6 found in {LIBRARY_DIRS:?}"
    );
    eprintln!("checked {checked:?}");
}
