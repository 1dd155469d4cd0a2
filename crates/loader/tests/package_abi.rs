//! The package ABI: metadata copy-out, execute_task result handling, thread safety.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::sync::Arc;

use cloacina_sign_core::policy::Policy;
use cloacina_sign_loader::{
    verify_and_load, verify_and_load_package, LoadError, TaskError, WorkflowPackage,
};
use common::*;

fn package(dir: &std::path::Path) -> WorkflowPackage {
    let so = build(dir, "package.c", "package.so", &[]);
    verify_and_load_package(&so, MAX, &Policy::default(), accept_all).expect("load package")
}

#[test]
fn metadata_is_copied_out() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package(dir.path());
    let md = pkg.metadata().unwrap();
    drop(pkg); // the copy must outlive the library
    assert_eq!(md.package_name.as_deref(), Some("simple_demo"));
    assert_eq!(md.package_description.as_deref(), Some("A fixture package"));
    assert_eq!(
        md.package_author.as_deref(),
        Some("Cloacina Tests <tests@example.com>")
    );
    assert_eq!(
        md.workflow_fingerprint.as_deref(),
        Some("fp-0123456789abcdef")
    );
    assert_eq!(md.graph_data_json, None);
    assert_eq!(md.tasks.len(), 2);
    let t0 = &md.tasks[0];
    assert_eq!(t0.index, 0);
    assert_eq!(t0.local_id, "collect_data");
    assert_eq!(
        t0.namespaced_id_template.as_deref(),
        Some("{tenant}::simple_demo::data_processing::collect_data")
    );
    assert_eq!(t0.dependencies_json.as_deref(), Some("[]"));
    assert_eq!(t0.description.as_deref(), Some("Collects the input data"));
    assert_eq!(t0.source_location.as_deref(), Some("src/lib.rs:42"));
    let t1 = &md.tasks[1];
    assert_eq!(t1.index, 1);
    assert_eq!(t1.local_id, "fail");
    assert_eq!(t1.dependencies_json.as_deref(), Some("[\"collect_data\"]"));
    assert_eq!(t1.description.as_deref(), Some("Always fails"));
}

#[test]
fn execute_success_passes_context() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package(dir.path());
    let ctx = r#"{"user":"ünïcode","n":[1,2,3]}"#;
    let out = pkg.execute_task("collect_data", ctx, 4096).unwrap();
    assert_eq!(out, format!("{{\"collected\": true, \"input\": {ctx}}}"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["input"]["user"], "ünïcode");
    assert_eq!(v["collected"], true);
    // The task name is passed with its explicit length.
    assert_eq!(
        pkg.execute_task("name", "{}", 4096).unwrap(),
        r#"{"task": "name"}"#
    );
}

#[test]
fn execute_failure_returns_error_json() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package(dir.path());
    let err = pkg.execute_task("fail", "{}", 4096).unwrap_err();
    assert_eq!(
        err,
        TaskError::Failed(r#"{"error":"boom","status":"error"}"#.to_string())
    );
    assert_eq!(err.code(), "TASK_FAILED");
}

#[test]
fn execute_other_code_is_abi_error() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package(dir.path());
    let err = pkg.execute_task("bad", "{}", 4096).unwrap_err();
    assert_eq!(err, TaskError::AbiError(-7));
    assert_eq!(err.code(), "TASK_ABI_ERROR");
    // collect_data returns -2 when the buffer is too small for its output.
    assert_eq!(
        pkg.execute_task("collect_data", "{}", 8).unwrap_err(),
        TaskError::AbiError(-2)
    );
}

#[test]
fn execute_full_buffer_handling() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package(dir.path());
    let err = pkg.execute_task("big", "{}", 1000).unwrap_err();
    assert_eq!(err, TaskError::Truncated { capacity: 1000 });
    assert_eq!(err.code(), "TASK_RESULT_TRUNCATED");
    // A buffer filled exactly by valid JSON is accepted.
    let out = pkg.execute_task("json_full", "{}", 64).unwrap();
    assert_eq!(out.len(), 64);
    assert!(out.starts_with('"') && out.ends_with('"'));
    // A length larger than the buffer is a lie.
    let err = pkg.execute_task("overclaim", "{}", 64).unwrap_err();
    assert!(
        matches!(err, TaskError::InvalidOutput(ref m) if m.contains("65")),
        "{err:?}"
    );
    assert_eq!(err.code(), "TASK_INVALID_OUTPUT");
    let err = pkg.execute_task("not_utf8", "{}", 64).unwrap_err();
    assert!(
        matches!(err, TaskError::InvalidOutput(ref m) if m.contains("UTF-8")),
        "{err:?}"
    );
    // Zero capacity: "big" fills 0 bytes -> "" is not JSON -> truncated.
    assert_eq!(
        pkg.execute_task("big", "{}", 0).unwrap_err(),
        TaskError::Truncated { capacity: 0 }
    );
}

#[test]
fn missing_execute_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let so = build(dir.path(), "missing_execute.c", "missing.so", &[]);
    let lib = verify_and_load(&so, MAX, &Policy::default(), accept_all).unwrap();
    assert!(lib.has_symbol("cloacina_get_task_metadata"));
    assert!(!lib.has_symbol("cloacina_execute_task"));
    // Symbols of dependencies (libc) do not count as the package's own.
    assert!(!lib.has_symbol("malloc"));
    let err = WorkflowPackage::new(lib).unwrap_err();
    assert!(
        matches!(err, LoadError::MissingSymbol(ref s) if s == "cloacina_execute_task"),
        "{err:?}"
    );
    assert_eq!(err.code(), "MISSING_SYMBOL");
}

#[test]
fn bad_metadata_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (1, "null pointer"),
        (2, "exceeds the limit"),
        (3, "tasks pointer is null"),
        (4, "tasks[0].description is not valid UTF-8"),
    ];
    for (variant, needle) in cases {
        let so = build(
            dir.path(),
            "bad_metadata.c",
            &format!("bad{variant}.so"),
            &[&format!("-DVARIANT={variant}")],
        );
        let pkg = verify_and_load_package(&so, MAX, &Policy::default(), accept_all).unwrap();
        let err = pkg.metadata().unwrap_err();
        assert_eq!(err.code(), "INVALID_METADATA");
        assert!(err.to_string().contains(needle), "variant {variant}: {err}");
    }
}

#[test]
fn calls_from_threads_keep_the_library_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package(dir.path());
    let barrier = Arc::new(std::sync::Barrier::new(5));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let p = pkg.clone();
            let b = Arc::clone(&barrier);
            std::thread::spawn(move || {
                b.wait();
                for j in 0..200 {
                    let ctx = format!("{{\"worker\":{i},\"iter\":{j}}}");
                    let out = p.execute_task("collect_data", &ctx, 1 << 16).unwrap();
                    assert!(out.ends_with(&format!("{ctx}}}")));
                }
            })
        })
        .collect();
    let weak = Arc::downgrade(pkg.library());
    barrier.wait();
    drop(pkg); // "close()" while workers run: they still hold their clones.
    for h in handles {
        h.join().unwrap();
    }
    assert!(
        weak.upgrade().is_none(),
        "library unloaded once the last user is gone"
    );
}
