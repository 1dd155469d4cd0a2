//! The ELF checks accept packages as compilers and linkers produce them: every C fixture and the
//! example workflow package, built without and with optimization, with both hash styles and with
//! immediate binding, pass.

mod common;

use std::path::Path;
use std::process::Command;

use cloacina_sign_loader::check_shared_library;
use common::*;

const SOURCES: &[&str] = &[
    "package.c",
    "elf_features.c",
    "constructor.c",
    "dep.c",
    "which.c",
    "uses_libm.c",
    "uses_dep.c",
    "fuzz_target.c",
];

const VARIANTS: &[&[&str]] = &[
    &["-O0"],
    &["-O2"],
    &["-O2", "-Wl,--hash-style=both"],
    &["-O2", "-Wl,-z,now", "-Wl,-z,relro"],
    &["-Os", "-Wl,-z,noseparate-code"],
];

fn compile(dir: &Path, src: &Path, out: &str, extra: &[&str]) -> Vec<u8> {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflow");
    let out = dir.join(out);
    let status = Command::new("cc")
        .args(["-shared", "-fPIC"])
        .arg(format!("-I{}", include.display()))
        // What some fixtures require to be defined (their code never runs here).
        .args(["-DMARKER_PATH=\"/nonexistent/marker\"", "-DWHICH=1"])
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg(src)
        .arg("-lm")
        .status()
        .expect("running cc");
    assert!(
        status.success(),
        "cc failed for {} {extra:?}",
        src.display()
    );
    std::fs::read(out).unwrap()
}

#[test]
fn when_real_packages_are_compiled_with_any_usual_options_they_pass() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflow/data_pipeline.c");
    let mut sources: Vec<_> = SOURCES.iter().map(|s| fixture(s)).collect();
    sources.push(example);
    for (n, src) in sources.iter().enumerate() {
        for (v, extra) in VARIANTS.iter().enumerate() {
            let bytes = compile(dir.path(), src, &format!("lib{n}-{v}.so"), extra);
            if let Err(e) = check_shared_library(&bytes) {
                panic!("{} built with {extra:?} is refused: {e}", src.display());
            }
        }
    }
}
