// The binding's build script: napi-rs's setup, and the one list of error codes written for TypeScript
// (src/error-codes.ts) from crates/core/src/codes.rs, where the codes are owned.
#[path = "crates/core/src/codes.rs"]
#[allow(dead_code)]
mod codes;

fn main() {
    napi_build::setup();
    println!("cargo:rerun-if-changed=crates/core/src/codes.rs");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/error-codes.ts");
    let content = codes::typescript();
    if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
        std::fs::write(&path, content).expect("writing src/error-codes.ts");
    }
}
