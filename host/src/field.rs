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
    use super::FieldError;

    #[test]
    fn names_the_field_and_nests() {
        let e = FieldError::new("user_id", "must be 1 to 64 characters").within("events[3]");
        assert_eq!(e.field, "events[3].user_id");
        assert_eq!(e.to_string(), "events[3].user_id: must be 1 to 64 characters");
        assert_eq!(FieldError::new("", "x").within("$").field, "$");
    }
}
