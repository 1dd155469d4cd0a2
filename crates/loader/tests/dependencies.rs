//! The dependency policy: a package's dependencies (and the runner's environment) must not be a
//! way around the package's signature. Each refusal happens before `dlopen`, so no constructor
//! of the package or of a planted dependency ever runs; the "without the guard" halves show, in a
//! child process, that a plain `dlopen` of the same file does run the planted code.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::ffi::{CString, OsStr};
use std::path::{Path, PathBuf};

use cloacina_sign_core::digest::DigestSet;
use cloacina_sign_core::policy::Policy;
use cloacina_sign_loader::{
    check_dependencies, GuardedLibrary, LoadError, Resolution, SealedImage,
};
use common::*;

fn load_unsigned(path: &Path) -> Result<GuardedLibrary, LoadError> {
    GuardedLibrary::load(SealedImage::from_path(path, MAX, DigestSet::SHA256)?.allow_unsigned())
}

/// libcloacina_dep.so in `dir`, whose constructor leaves `<dir>/planted.marker`.
fn planted_dependency(dir: &Path) -> (PathBuf, PathBuf) {
    let marker = dir.join("planted.marker");
    let def = format!("-DMARKER_PATH=\"{}\"", marker.display());
    let lib = build(dir, "dep.c", "libcloacina_dep.so", &[&def]);
    (lib, marker)
}

/// A package that needs libcloacina_dep.so, linked against the copy in `dir` with `link` flags.
fn package_needing_dep(dir: &Path, out: &str, link: &[&str]) -> PathBuf {
    let l = format!("-L{}", dir.display());
    let mut extra = vec![l.as_str(), "-Wl,--no-as-needed", "-lcloacina_dep"];
    extra.extend_from_slice(link);
    build(dir, "uses_dep.c", out, &extra)
}

fn refusal(path: &Path) -> LoadError {
    match load_unsigned(path) {
        Ok(lib) => panic!(
            "the load was not refused; dependencies: {:?}",
            lib.dependencies()
        ),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// The child side: scenarios run by a fresh copy of this test binary.

/// Not a test of its own: the entry point of child processes started by the tests below
/// (returns at once otherwise).
#[test]
fn child_scenario() {
    let Some(scenario) = std::env::var_os(CHILD_SCENARIO) else {
        return;
    };
    let package = PathBuf::from(std::env::var_os("CLOACINA_TEST_PACKAGE").unwrap());
    if let Some(name) = std::env::var_os("CLOACINA_TEST_REMOVE_ENV") {
        std::env::remove_var(name);
    }
    if let Ok(assignment) = std::env::var("CLOACINA_TEST_SET_ENV") {
        let (k, v) = assignment.split_once('=').unwrap();
        std::env::set_var(k, v);
    }
    match scenario.to_str().unwrap() {
        "guarded-load" => match load_unsigned(&package) {
            Ok(_) => println!("RESULT: OK"),
            Err(e) => println!("RESULT: {}: {e}", e.code()),
        },
        "raw-dlopen" => {
            let c = CString::new(package.to_str().unwrap()).unwrap();
            // SAFETY: a valid C string; this deliberately loads (and runs) the file, in a child
            // process that exists only to show what an unguarded load does.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            println!("RAW: {}", if h.is_null() { "failed" } else { "loaded" });
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn child(scenario: &str, package: &Path, envs: &[(&str, &OsStr)]) -> String {
    let mut all: Vec<(&str, &OsStr)> = vec![
        (CHILD_SCENARIO, OsStr::new(scenario)),
        ("CLOACINA_TEST_PACKAGE", package.as_os_str()),
    ];
    all.extend_from_slice(envs);
    let out = run_test_in_child("child_scenario", &all, true);
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Packages

#[test]
fn a_package_linking_only_libc_loads() {
    let dir = tempfile::tempdir().unwrap();
    let so = build(dir.path(), "package.c", "libc_only.so", &[]);
    let pkg =
        cloacina_sign_loader::verify_and_load_package(&so, MAX, &Policy::default(), accept_all)
            .unwrap();
    assert_eq!(pkg.metadata().unwrap().tasks.len(), 2);
    let deps = pkg.library().dependencies();
    assert_eq!(deps.len(), 1, "{deps:?}");
    assert!(names_the_c_library(&deps[0].name), "{deps:?}");
    assert_eq!(deps[0].tag, "DT_NEEDED");
    assert_eq!(deps[0].needed_by, "the package");
    assert_eq!(deps[0].resolution, Resolution::AlreadyLoaded);
}

// musl has no libm of its own (its libm is libc); its system directories hold nothing else here.
#[cfg(target_env = "gnu")]
#[test]
fn a_system_library_not_loaded_yet_resolves_to_a_root_owned_file() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let so = build(
        dir.path(),
        "uses_libm.c",
        "uses_libm.so",
        &["-Wl,--no-as-needed", "-lm"],
    );
    let bytes = std::fs::read(&so).unwrap();
    let check = check_dependencies(&bytes).unwrap();
    let libm = check
        .dependencies()
        .iter()
        .find(|d| d.name == "libm.so.6")
        .expect("libm.so.6 is a dependency");
    match &libm.resolution {
        Resolution::File(path) => {
            let meta = std::fs::metadata(path).unwrap();
            assert_eq!(meta.uid(), 0, "{path:?}");
            assert_eq!(meta.mode() & 0o022, 0, "{path:?}");
        }
        // Another test (or libstd) may have loaded it meanwhile.
        Resolution::AlreadyLoaded => {}
        other => panic!("unexpected {other:?}"),
    }
    drop(check);
    let lib = load_unsigned(&so).unwrap();
    type CosFn = unsafe extern "C" fn(f64) -> f64;
    // SAFETY: `double cloacina_cos(double)` in the fixture, called only while `lib` lives.
    let cos: CosFn = unsafe { lib.symbol("cloacina_cos").unwrap() };
    // SAFETY: the library is still loaded; the argument is a plain double.
    assert_eq!(unsafe { cos(0.0) }, 1.0);
}

#[test]
fn a_runpath_into_a_writable_directory_is_refused_before_any_code_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (_, marker) = planted_dependency(dir.path());
    let rpath = format!("-Wl,-rpath,{}", dir.path().display());
    let so = package_needing_dep(
        dir.path(),
        "runpath.so",
        &[&rpath, "-Wl,--enable-new-dtags"],
    );

    let err = refusal(&so);
    assert_eq!(err.code(), "UNSAFE_DEPENDENCY", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("DT_RUNPATH"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(!marker.exists(), "the planted dependency's constructor ran");
    // Signed or not makes no difference: the check runs for every load (here through the
    // convenience entry point, with a valid signature).
    let err = cloacina_sign_loader::verify_and_load(&so, MAX, &Policy::default(), accept_all)
        .unwrap_err();
    assert_eq!(err.code(), "UNSAFE_DEPENDENCY");
    assert!(!marker.exists());

    // Without the guard, the same file runs the planted library.
    let out = child("raw-dlopen", &so, &[]);
    assert!(out.contains("RAW: loaded"), "{out}");
    assert!(
        marker.exists(),
        "a plain dlopen should have run the planted dependency"
    );
}

#[test]
fn an_rpath_into_a_writable_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, marker) = planted_dependency(dir.path());
    let rpath = format!("-Wl,-rpath,{}", dir.path().display());
    let so = package_needing_dep(dir.path(), "rpath.so", &[&rpath, "-Wl,--disable-new-dtags"]);
    let err = refusal(&so);
    assert_eq!(err.code(), "UNSAFE_DEPENDENCY", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("DT_RPATH"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(!marker.exists());
}

#[test]
fn a_dependency_found_nowhere_safe_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, marker) = planted_dependency(dir.path());
    let so = package_needing_dep(dir.path(), "plain.so", &[]);
    let err = refusal(&so);
    assert_eq!(err.code(), "UNSAFE_DEPENDENCY", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("DT_NEEDED \"libcloacina_dep.so\" (needed by the package)"),
        "{msg}"
    );
    #[cfg(target_env = "gnu")]
    assert!(msg.contains("/etc/ld.so.cache"), "{msg}");
    #[cfg(target_env = "musl")]
    assert!(msg.contains("library directories musl searches"), "{msg}");
    assert!(!marker.exists());
}

#[test]
fn a_dependency_named_by_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("planted.marker");
    let def = format!("-DMARKER_PATH=\"{}\"", marker.display());
    // No SONAME: the package records the path it was linked with.
    let dep = build(dir.path(), "dep.c", "libpathdep.so", &[&def]);
    let dep_arg = dep.display().to_string();
    let so = build(dir.path(), "uses_dep.c", "bypath.so", &[&dep_arg]);
    let err = refusal(&so);
    assert_eq!(err.code(), "UNSAFE_DEPENDENCY", "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("DT_NEEDED \"{dep_arg}\"")), "{msg}");
    assert!(msg.contains("contains '/'"), "{msg}");
    assert!(!marker.exists());
}

// ---------------------------------------------------------------------------------------------
// The environment

#[test]
fn a_runner_started_with_ld_library_path_refuses_and_never_runs_the_planted_library() {
    let dir = tempfile::tempdir().unwrap();
    let (_, marker) = planted_dependency(dir.path());
    let so = package_needing_dep(dir.path(), "needs_dep.so", &[]);
    let llp = dir.path().as_os_str();

    let out = child("guarded-load", &so, &[("LD_LIBRARY_PATH", llp)]);
    assert!(out.contains("RESULT: UNSAFE_ENVIRONMENT"), "{out}");
    assert!(out.contains("LD_LIBRARY_PATH"), "{out}");
    assert!(out.contains(&dir.path().display().to_string()), "{out}");
    assert!(out.contains("started with"), "{out}");
    assert!(!marker.exists(), "the planted dependency's constructor ran");

    // Without the guard, the same runner loads the planted library.
    let out = child("raw-dlopen", &so, &[("LD_LIBRARY_PATH", llp)]);
    assert!(out.contains("RAW: loaded"), "{out}");
    assert!(marker.exists());
}

#[test]
fn ld_preload_at_start_is_refused_even_when_removed_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let preload = build(dir.path(), "which.c", "libpreload.so", &["-DWHICH=9"]);
    let so = build(dir.path(), "which.c", "pkg.so", &["-DWHICH=1"]);
    let out = child(
        "guarded-load",
        &so,
        &[
            ("LD_PRELOAD", preload.as_os_str()),
            ("CLOACINA_TEST_REMOVE_ENV", OsStr::new("LD_PRELOAD")),
        ],
    );
    assert!(out.contains("RESULT: UNSAFE_ENVIRONMENT"), "{out}");
    assert!(
        out.contains("LD_PRELOAD is set in the environment the process was started with"),
        "{out}"
    );
    assert!(out.contains(&preload.display().to_string()), "{out}");
}

#[test]
fn ld_audit_at_start_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let so = build(dir.path(), "which.c", "pkg.so", &["-DWHICH=1"]);
    let audit = dir.path().join("no-such-audit.so");
    let out = child("guarded-load", &so, &[("LD_AUDIT", audit.as_os_str())]);
    assert!(out.contains("RESULT: UNSAFE_ENVIRONMENT"), "{out}");
    assert!(out.contains("LD_AUDIT"), "{out}");
}

#[test]
fn a_loader_variable_set_at_run_time_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let so = build(dir.path(), "which.c", "pkg.so", &["-DWHICH=1"]);
    let out = child(
        "guarded-load",
        &so,
        &[("CLOACINA_TEST_SET_ENV", OsStr::new("LD_LIBRARY_PATH=/tmp"))],
    );
    assert!(out.contains("RESULT: UNSAFE_ENVIRONMENT"), "{out}");
    assert!(
        out.contains("LD_LIBRARY_PATH is set in the process's current environment"),
        "{out}"
    );
    // And the clean child loads it.
    let out = child("guarded-load", &so, &[]);
    assert!(out.contains("RESULT: OK"), "{out}");
}
