//! Reading a policy file from disk: the one place the engine touches a file. Server start, hot
//! reload and `mcpgate policy …` all read through here, so a file fails the same way everywhere.

use std::path::{Path, PathBuf};

use super::{CompiledPolicy, LoadErrors};

#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot read policy file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("policy file {path} is invalid:\n{errors}")]
    Invalid { path: PathBuf, errors: LoadErrors },
}

impl CompiledPolicy {
    /// Reads and compiles the policy file at `path`.
    pub fn from_file(path: &Path) -> Result<CompiledPolicy, PolicyFileError> {
        let bytes = std::fs::read(path).map_err(|source| PolicyFileError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        CompiledPolicy::from_json_slice(&bytes).map_err(|errors| PolicyFileError::Invalid {
            path: path.to_owned(),
            errors,
        })
    }
}
