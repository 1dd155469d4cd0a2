//! The operator's load policy, checked on signed fields only: the statement of a version-2
//! signature whose signature has already verified. Version-1 and cosign signatures sign no name,
//! version or expiry, so a policy that needs them refuses such a signature (`V2_REQUIRED`).

use semver::{Version, VersionReq};

use crate::document::SignatureDocument;
use crate::error::{CoreError, Result, Violation};
use crate::statement::Statement;

/// Which versions may load: exact versions, or a range.
#[derive(Clone, Debug)]
pub enum AllowedVersions {
    Exact(Vec<Version>),
    Range(VersionReq),
}

impl AllowedVersions {
    /// `1.0.0,1.1.0` (every comma-separated item an exact SemVer version) is a list of exact
    /// versions; anything else is a Cargo-style range (`>=1.2.0, <2.0.0`, `^1.4`, `~1.2.3`, `1.*`).
    pub fn parse(text: &str) -> Result<Self> {
        let items: Vec<&str> = text.split(',').map(str::trim).collect();
        if let Ok(exact) = items
            .iter()
            .map(|item| Version::parse(item))
            .collect::<std::result::Result<Vec<_>, _>>()
        {
            return Ok(AllowedVersions::Exact(exact));
        }
        VersionReq::parse(text).map(AllowedVersions::Range).map_err(|e| {
            CoreError::InvalidInput(format!(
                "allowed versions must be exact versions (1.0.0,1.1.0) or a range (>=1.2.0, <2.0.0): {e}"
            ))
        })
    }

    /// The allowed versions as an operator wrote them, for messages: `1.0.0, 1.1.0` or the range.
    pub fn describe(&self) -> String {
        match self {
            AllowedVersions::Exact(list) => list
                .iter()
                .map(Version::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            AllowedVersions::Range(range) => range.to_string(),
        }
    }

    fn allows(&self, version: &Version) -> bool {
        match self {
            AllowedVersions::Exact(list) => list.contains(version),
            AllowedVersions::Range(range) => range.matches(version),
        }
    }
}

/// Everything optional; the default policy accepts what today's verification accepts, except
/// that an expired version-2 statement is always refused (its signer said so).
#[derive(Clone, Debug)]
pub struct Policy {
    /// The package name the statement must carry.
    pub expect_name: Option<String>,
    /// The organization the statement must name (a statement naming none is refused too).
    pub expect_organization: Option<String>,
    pub allowed_versions: Option<AllowedVersions>,
    /// Refuse version-1 signatures altogether.
    pub require_v2: bool,
    /// Rollback protection: per package name, the highest version the organization loaded; a lower
    /// version is refused.
    pub rollback_floors: Vec<(String, Version)>,
    /// The time to check expiry against, seconds since the Unix epoch (`None`: now).
    pub now_unix: Option<i64>,
    /// How far clocks may disagree, in seconds, when checking expiry.
    pub clock_skew_secs: i64,
}

/// The clock skew allowed when checking expiry unless the caller sets another (seconds).
pub const DEFAULT_CLOCK_SKEW_SECS: i64 = 60;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            expect_name: None,
            expect_organization: None,
            allowed_versions: None,
            require_v2: false,
            rollback_floors: Vec::new(),
            now_unix: None,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
        }
    }
}

impl Policy {
    /// Whether the policy looks at a statement's fields (and so needs a version-2 signature).
    fn needs_statement(&self) -> bool {
        self.require_v2
            || self.expect_name.is_some()
            || self.expect_organization.is_some()
            || self.allowed_versions.is_some()
            || !self.rollback_floors.is_empty()
    }

    /// The decision for a verified signature of any kind: a cosign signature, like version 1, signs
    /// no statement (so a policy that needs one refuses it with `V2_REQUIRED`).
    pub fn check_document(&self, document: &SignatureDocument) -> Result<()> {
        match document {
            SignatureDocument::V1(_) => self.check_without_statement("version-1"),
            SignatureDocument::V2(signed) => self.check(Some(&signed.statement)),
            SignatureDocument::Cosign(_) => self.check_without_statement("cosign"),
        }
    }

    /// A verified signature that signs no statement (`kind`: version-1 or cosign).
    fn check_without_statement(&self, kind: &str) -> Result<()> {
        if !self.needs_statement() {
            return Ok(());
        }
        let reason = if self.require_v2 {
            format!("{kind} signatures are refused (require version 2)")
        } else {
            format!("the policy checks the package name, version or organization, and a {kind} signature signs none of them")
        };
        Err(CoreError::PolicyRefused {
            violation: Violation::V2Required,
            reason,
        })
    }

    /// The decision for a verified signature: `statement` is `None` for a version-1 signature.
    pub fn check(&self, statement: Option<&Statement>) -> Result<()> {
        let Some(statement) = statement else {
            return self.check_without_statement("version-1");
        };
        if let Some(name) = &self.expect_name {
            if &statement.name != name {
                return Err(CoreError::PolicyRefused {
                    violation: Violation::NameMismatch,
                    reason: format!(
                        "the signature is for package {:?}, not {:?}",
                        statement.name, name
                    ),
                });
            }
        }
        if let Some(organization) = &self.expect_organization {
            if statement.organization.as_deref() != Some(organization.as_str()) {
                return Err(CoreError::PolicyRefused {
                    violation: Violation::OrganizationMismatch,
                    reason: match &statement.organization {
                        Some(signed) => format!(
                            "the signature is for organization {signed:?}, not {organization:?}"
                        ),
                        None => format!(
                            "the signature names no organization, and the policy expects {organization:?}"
                        ),
                    },
                });
            }
        }
        // The statement's version was validated as SemVer when it was read.
        let version = Version::parse(&statement.version)
            .map_err(|e| CoreError::InvalidInput(e.to_string()))?;
        if let Some(allowed) = &self.allowed_versions {
            if !allowed.allows(&version) {
                return Err(CoreError::PolicyRefused {
                    violation: Violation::VersionNotAllowed,
                    reason: format!(
                        "version {} of {:?} is not an allowed version (allowed: {})",
                        statement.version,
                        statement.name,
                        allowed.describe()
                    ),
                });
            }
        }
        if let Some((_, floor)) = self
            .rollback_floors
            .iter()
            .find(|(name, _)| *name == statement.name)
        {
            // Precedence, not `Ord`: build metadata must not make a version lower or higher.
            if version.cmp_precedence(floor) == std::cmp::Ordering::Less {
                return Err(CoreError::PolicyRefused {
                    violation: Violation::RollbackRefused,
                    reason: format!(
                        "version {} of {:?} is lower than version {floor}, already loaded by this organization",
                        statement.version, statement.name
                    ),
                });
            }
        }
        if let Some(expires) = statement.expires_at_unix() {
            let now = self.now_unix.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
            });
            if now > expires.saturating_add(self.clock_skew_secs) {
                return Err(CoreError::PolicyRefused {
                    violation: Violation::Expired,
                    reason: format!(
                        "the signature of {:?} {} expired at {}",
                        statement.name,
                        statement.version,
                        statement.expires_at.as_deref().unwrap_or_default()
                    ),
                });
            }
        }
        Ok(())
    }
}
