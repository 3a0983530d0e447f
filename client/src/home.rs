//! Where a client home is, and the system-wide trust a new home starts from.
//!
//! A home holds the configuration, the trusted metadata and the verified
//! cache together, under one lock: they are one unit (the cache is valid
//! only against the metadata beside it), so the home is not split across
//! the XDG configuration, state and cache directories. Its default place:
//!
//! 1. `$CPANTUF_HOME`;
//! 2. `~/.cpantuf`, when it exists (homes made before XDG support);
//! 3. `$XDG_DATA_HOME/cpantuf` (`~/.local/share/cpantuf`).
//!
//! On a shared machine the administrator sets up trust once, as a home of
//! its own: `cpantuf --home /etc/cpantuf init URL --root root.json` (or
//! `$CPANTUF_SYSTEM_TRUST`). A user's home that was never initialised then
//! starts from that home's configuration and trusted root, and updates on
//! its own from there (the system home is only read).

use crate::session::{initialise, Config, SessionError};
use std::path::{Path, PathBuf};

/// The default client home (see the module documentation).
pub fn default_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CPANTUF_HOME") {
        return PathBuf::from(h);
    }
    let legacy = dirs::home_dir().map(|h| h.join(".cpantuf"));
    if let Some(l) = legacy.as_ref().filter(|l| l.is_dir()) {
        return l.clone();
    }
    dirs::data_dir()
        .map(|d| d.join("cpantuf"))
        .or(legacy)
        .unwrap_or_else(|| PathBuf::from(".cpantuf"))
}

/// The system-wide trust: `$CPANTUF_SYSTEM_TRUST`, else `/etc/cpantuf`.
pub fn system_trust_dir() -> PathBuf {
    std::env::var_os("CPANTUF_SYSTEM_TRUST")
        .map_or_else(|| PathBuf::from("/etc/cpantuf"), PathBuf::from)
}

/// Initialises `home` from the system-wide trust in `system` when `home`
/// has no configuration yet and `system` is an initialised home; returns
/// whether it did. The root is checked as `cpantuf init` checks one.
pub fn adopt_system_trust(home: &Path, system: &Path) -> Result<bool, SessionError> {
    if home.join("config.json").exists() || home == system {
        return Ok(false);
    }
    let (Ok(config), Ok(root)) = (
        std::fs::read(system.join("config.json")),
        std::fs::read(system.join("metadata/root.json")),
    ) else {
        return Ok(false);
    };
    let config: Config = serde_json::from_slice(&config).map_err(|e| SessionError::Io {
        what: format!("reading the system-wide trust {}", system.display()),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    initialise(home, &config, &root)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_already_initialised_is_left_as_it_is() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.json"), b"{}").unwrap();
        let system = tempfile::tempdir().unwrap();
        assert!(!adopt_system_trust(home.path(), system.path()).unwrap());
        assert_eq!(
            std::fs::read(home.path().join("config.json")).unwrap(),
            b"{}"
        );
    }

    #[test]
    fn no_system_trust_means_nothing_is_adopted() {
        let home = tempfile::tempdir().unwrap();
        let system = tempfile::tempdir().unwrap();
        assert!(!adopt_system_trust(home.path(), system.path()).unwrap());
        assert!(!home.path().join("config.json").exists());
    }
}
