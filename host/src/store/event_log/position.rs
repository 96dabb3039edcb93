//! [`Position`]: where a record is in the whole log.
use std::fmt;

/// A record's offset in the whole log. The segment holding it is the one whose first
/// position (its file name) is the largest not above it; the offset in that file is the
/// difference. Positions only grow, across segments too, and are never given to two
/// records: an index can keep them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(pub u64);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
