//! The one list of error codes: unique, and the TypeScript copy the build writes is current.

use cloacina_sign_core::codes::{self, Kind, ALL};

#[test]
fn every_code_is_listed_once_in_upper_snake_case() {
    let mut seen = std::collections::HashSet::new();
    for (code, _, doc) in ALL {
        assert!(seen.insert(*code), "{code} is listed twice");
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "{code}"
        );
        assert!(!doc.is_empty(), "{code} has no meaning");
    }
    let failures: Vec<_> = ALL
        .iter()
        .filter(|(_, kind, _)| *kind == Kind::VerificationFailure)
        .map(|(code, _, _)| *code)
        .collect();
    assert!(
        failures.contains(&codes::TAMPERED_PACKAGE) && failures.contains(&codes::ROLLBACK_REFUSED)
    );
}

#[test]
fn the_typescript_list_is_what_the_build_writes() {
    let committed = include_str!("../../../src/error-codes.ts");
    assert_eq!(
        committed,
        codes::typescript(),
        "src/error-codes.ts is stale: `npm run build:native` regenerates it from crates/core/src/codes.rs"
    );
}
