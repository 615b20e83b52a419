//! Secrets from files: every secret setting `OMS_X` can instead be given as
//! `OMS_X_FILE`, the path of a file holding it (what Docker and Kubernetes
//! secrets are), so that it need not sit in the environment, where
//! `docker inspect`, `/proc/<pid>/environ` and crash reports show it.
//!
//! | secret | read by |
//! |---|---|
//! | `OMS_ADMIN_PASSWORD`, `OMS_KEY_ENCRYPTION_KEY` | customer-svc, `oms up` |
//! | `OMS_ORDER_DATABASE_URL`, `OMS_INVENTORY_DATABASE_URL`, `OMS_CUSTOMER_DATABASE_URL` | each service (the URL holds its password) |
//! | `OMS_DATABASE_URL` | `oms up` |
//! | `OMS_CUSTOMER_DATABASE_URL`, `OMS_NEW_ADMIN_PASSWORD` | `oms admin reset-password` |
//! | `OMS_KAFKA_<PROPERTY>` (`OMS_KAFKA_SASL_PASSWORD`, …) | every service and `oms up` ([`event_runtime::kafka`]) |
//!
//! What it guarantees: the value is the file's content without its trailing
//! line break (`echo secret > file` works); a variable given both ways, an
//! unreadable or an empty file, is a configuration error whose message is
//! one line naming the variable, and the program does not start.

use std::ffi::OsString;
use std::path::PathBuf;

/// The suffix that turns a secret's variable into its file's.
pub const FILE_SUFFIX: &str = "_FILE";

/// A secret that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Given directly and through a file.
    #[error("set either {variable} or {variable}_FILE, not both")]
    Both {
        /// The secret's variable.
        variable: String,
    },
    /// The file cannot be read.
    #[error("{variable}_FILE: cannot read {}: {source}", path.display())]
    Unreadable {
        /// The secret's variable.
        variable: String,
        /// The file named.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds nothing.
    #[error("{variable}_FILE: {} is empty", path.display())]
    Empty {
        /// The secret's variable.
        variable: String,
        /// The file named.
        path: PathBuf,
    },
}

/// Fills `value` from the file `<variable>_FILE` names, when that is set.
///
/// # Errors
/// See [`SecretError`]: `value` already set, or the file unreadable or empty.
pub fn read_file(value: &mut Option<String>, variable: &str) -> Result<(), SecretError> {
    read_file_with(value, variable, |name| std::env::var_os(name))
}

/// [`read_file`] with the environment looked up through `lookup`.
///
/// # Errors
/// As [`read_file`].
pub fn read_file_with(
    value: &mut Option<String>,
    variable: &str,
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<(), SecretError> {
    let Some(path) = lookup(&format!("{variable}{FILE_SUFFIX}")).map(PathBuf::from) else {
        return Ok(());
    };
    if value.is_some() {
        return Err(SecretError::Both {
            variable: variable.to_owned(),
        });
    }
    let content = std::fs::read_to_string(&path).map_err(|source| SecretError::Unreadable {
        variable: variable.to_owned(),
        path: path.clone(),
        source,
    })?;
    let secret = content.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(SecretError::Empty {
            variable: variable.to_owned(),
            path,
        });
    }
    *value = Some(secret.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.into())
    }

    #[test]
    fn a_secret_comes_from_its_file_without_the_trailing_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin-password");
        std::fs::write(&file, "  pa55 word \n").unwrap();
        let mut value = None;
        read_file_with(
            &mut value,
            "OMS_ADMIN_PASSWORD",
            env(&[("OMS_ADMIN_PASSWORD_FILE", file.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(value.as_deref(), Some("  pa55 word "));
    }

    #[test]
    fn without_its_file_variable_a_secret_is_left_as_given() {
        let mut value = Some("given".to_owned());
        read_file_with(&mut value, "OMS_ADMIN_PASSWORD", env(&[])).unwrap();
        assert_eq!(value.as_deref(), Some("given"));
    }

    #[test]
    fn both_ways_an_unreadable_or_an_empty_file_is_one_line_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let missing = dir.path().join("missing");
        let cases = [
            (Some("given"), empty.clone(), "not both"),
            (None, missing, "cannot read"),
            (None, empty, "is empty"),
        ];
        for (given, path, says) in cases {
            let mut value = given.map(str::to_owned);
            let error = read_file_with(
                &mut value,
                "OMS_KEY_ENCRYPTION_KEY",
                env(&[("OMS_KEY_ENCRYPTION_KEY_FILE", path.to_str().unwrap())]),
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains("OMS_KEY_ENCRYPTION_KEY"), "{error}");
            assert!(error.contains(says), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
