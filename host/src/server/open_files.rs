//! The process's open-file limit (`RLIMIT_NOFILE`): raised from its soft value to its
//! hard value at start, since every HTTP connection takes a file descriptor and the
//! usual soft default (1024) is below what a gateway with many devices holds. The
//! listener sizes its connection cap by the result.
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The open-file limit before and after [`raise_to_hard`]. `None`: unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit the process started with.
    pub before: Option<u64>,
    /// The soft limit now in force.
    pub soft: Option<u64>,
    /// The hard limit (the most `soft` may be raised to without privileges).
    pub hard: Option<u64>,
}

/// The soft limit could not be raised.
#[derive(Debug, thiserror::Error)]
#[error("cannot raise the open-file soft limit from {before:?} to the hard limit {hard:?}: {source}")]
pub struct RaiseError {
    pub before: Option<u64>,
    pub hard: Option<u64>,
    #[source]
    pub source: std::io::Error,
}

/// Raises the soft open-file limit to the hard limit (nothing to do when they are
/// equal). On failure (some systems refuse an unlimited soft value) the limits in force
/// are kept and the error says which they are.
pub fn raise_to_hard() -> Result<OpenFiles, RaiseError> {
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    let hard = limit.maximum;
    if below(before, hard) {
        setrlimit(Resource::Nofile, Rlimit { current: hard, maximum: hard }).map_err(|e| RaiseError {
            before,
            hard,
            source: e.into(),
        })?;
    }
    let now = getrlimit(Resource::Nofile);
    Ok(OpenFiles { before, soft: now.current, hard: now.maximum })
}

/// `soft < hard`, with `None` as infinity.
fn below(soft: Option<u64>, hard: Option<u64>) -> bool {
    match (soft, hard) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_limit() {
        let limits = raise_to_hard().expect("raising within the hard limit is allowed");
        assert_eq!(limits.soft, limits.hard);
        assert!(!below(limits.soft, limits.before), "never lowered");
    }

    #[test]
    fn none_is_unlimited() {
        assert!(below(Some(1024), None));
        assert!(below(Some(1024), Some(4096)));
        assert!(!below(Some(4096), Some(4096)));
        assert!(!below(None, None));
    }
}
