//! The C compiler the tests build packages with: one whose output this build's own dynamic loader
//! can load. Shared by the unit tests and (through `#[path]`) the integration tests.

/// `CLOACINA_TEST_CC` when set; otherwise, for a musl build `musl-gcc` (Debian's musl-tools) and
/// for an aarch64 glibc build `aarch64-linux-gnu-gcc` (the cross compiler, and on arm64 Debian the
/// native one), when on `PATH`; else `cc`.
pub fn c_compiler() -> String {
    if let Some(cc) = std::env::var_os("CLOACINA_TEST_CC") {
        return cc.to_string_lossy().into_owned();
    }
    let preferred: &[&str] = if cfg!(target_env = "musl") {
        &["musl-gcc"]
    } else if cfg!(target_arch = "aarch64") {
        &["aarch64-linux-gnu-gcc"]
    } else {
        &[]
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    preferred
        .iter()
        .find(|cc| std::env::split_paths(&path).any(|dir| dir.join(cc).is_file()))
        .map_or_else(|| "cc".to_string(), |cc| cc.to_string())
}
