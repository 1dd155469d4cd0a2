use cloacina_sign_core::codes;
use napi_derive::napi;

use crate::errors::coded;

/// Compares two SemVer 2.0.0 versions: -1, 0 or 1 (rollback marks keep the highest version loaded).
#[napi]
pub fn compare_versions(a: String, b: String) -> napi::Result<i32> {
    let parse = |text: &str| {
        semver::Version::parse(text).map_err(|e| {
            coded(
                codes::INVALID_INPUT,
                format!("{text:?} is not a SemVer 2.0.0 version: {e}"),
            )
        })
    };
    // Precedence (SemVer 2.0.0 §11): build metadata does not order versions.
    Ok(match parse(&a)?.cmp_precedence(&parse(&b)?) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    })
}
