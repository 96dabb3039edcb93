//! Refusals that name what is at fault: [`FieldError`] for a field of a request or a
//! record (`events[2].user_id`, `Add.User.UserID`), [`SettingError`] for a key of the
//! config file, with the fix.

/// An input refused because of one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The field's path in the input.
    pub field: String,
    /// What is wrong with it, for people.
    pub problem: String,
}

impl FieldError {
    /// `field` is wrong: `problem`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError { field: field.into(), problem: problem.into() }
    }

    /// The same error with the field's path inside `parent` (`events[3]` + `user_id`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() { parent.to_string() } else { format!("{parent}.{}", self.field) };
        self
    }
}

/// Longest user id accepted.
pub const MAX_USER_ID: usize = 64;

/// Checks a user id: 1 to [`MAX_USER_ID`] characters, not blank, no control characters
/// (NUL, tabs, line breaks...). Every side that takes a user id (devices, Cams, `/v1`)
/// uses it; the OpenAPI document declares the same rule (characters, as JSON Schema
/// counts them).
pub fn check_user_id(field: &str, id: &str) -> Result<(), FieldError> {
    if id.trim().is_empty() || id.chars().count() > MAX_USER_ID || id.chars().any(char::is_control) {
        return Err(FieldError::new(field, format!("must be 1 to {MAX_USER_ID} printable characters")));
    }
    Ok(())
}

/// A setting of the config file refused: its key (`routes.hr.sink.url`), what is wrong,
/// and how to fix it. Each component validates its own settings and answers this;
/// `config` adds the file's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct SettingError {
    /// The setting's key, from the top of the file once [`SettingError::within`] was applied.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl SettingError {
    /// `key` is wrong: `problem`; `fix` says what to do.
    pub fn new(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        SettingError { key: key.into(), problem: problem.into(), fix: fix.into() }
    }

    /// The same error with its key inside the table `parent` (`routes.hr` + `sink.url`).
    pub fn within(mut self, parent: &str) -> Self {
        self.key = if self.key.is_empty() { parent.to_string() } else { format!("{parent}.{}", self.key) };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::{FieldError, check_user_id};

    #[test]
    fn user_ids_are_printable_and_bounded() {
        for good in ["1", "User 123", "Ünïcode-7", &"x".repeat(64)] {
            assert_eq!(check_user_id("user_id", good), Ok(()), "{good:?}");
        }
        for bad in ["", "  ", "7\0", "\u{1}7", "a\tb", "a\nb", "a\u{7f}", &"x".repeat(65)] {
            let error = check_user_id("events[0].user_id", bad).expect_err(bad);
            assert_eq!(error.field, "events[0].user_id", "{bad:?}");
        }
    }

    #[test]
    fn names_the_field_and_nests() {
        let e = FieldError::new("user_id", "must be 1 to 64 characters").within("events[3]");
        assert_eq!(e.field, "events[3].user_id");
        assert_eq!(e.to_string(), "events[3].user_id: must be 1 to 64 characters");
        assert_eq!(FieldError::new("", "x").within("$").field, "$");
    }
}
