//! A tarball on the author's machine, hashed into the entry its CPAN path gets.

use super::AuthorError;
use cpantuf_core::cpan::{owner, CpanPath, Owner, PauseId};
use cpantuf_core::metadata::TargetFile;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// A local file and the entry the author's role lists for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Where PAUSE puts it: the author's directory and the file's name.
    pub path: CpanPath,
    /// Its length and sha256, as PAUSE hashes the upload (`cpantuf-sign` lists sha256).
    pub info: TargetFile,
}

/// Hashes `file` as `id`'s upload of that name. Refused: a name PAUSE writes into the
/// directory itself (`CHECKSUMS`, `*.meta`, `*.readme`: the index role signs those), a name
/// that is not a valid CPAN path.
pub fn hash(id: &PauseId, file: &Path) -> Result<LocalFile, AuthorError> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| AuthorError::NotYours {
            path: file.display().to_string(),
            why: "not a file name CPAN can hold (UTF-8)".into(),
        })?;
    let path = format!("{}/{name}", id.author_dir().as_str());
    let cpan = CpanPath::new(&path).map_err(|e| AuthorError::NotYours {
        path: path.clone(),
        why: e.to_string(),
    })?;
    match owner(&cpan) {
        Ok(Owner::Author(a)) if &a == id => {}
        Ok(Owner::Index) => {
            return Err(AuthorError::NotYours {
                path,
                why: "PAUSE writes this file into your directory and its index role signs it; \
                      your role may not list it"
                    .into(),
            })
        }
        Ok(Owner::Author(a)) => {
            return Err(AuthorError::NotYours {
                path,
                why: format!("belongs to {a}"),
            })
        }
        Err(e) => {
            return Err(AuthorError::NotYours {
                path,
                why: e.to_string(),
            })
        }
    }
    let info = hash_file(file)?;
    Ok(LocalFile { path: cpan, info })
}

/// Length and sha256 of a file, read once.
fn hash_file(file: &Path) -> Result<TargetFile, AuthorError> {
    let io = |source| AuthorError::Io {
        what: format!("reading {}", file.display()),
        source,
    };
    let mut f = std::fs::File::open(file).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut length = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        length += n as u64;
    }
    let hashes = BTreeMap::from([("sha256".to_owned(), hex::encode(h.finalize()))]);
    Ok(TargetFile {
        length,
        hashes,
        custom: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_pause_writes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let id = PauseId::new("ETHER").unwrap();
        for name in ["CHECKSUMS", "Moo-1.0.meta", "Moo-1.0.readme"] {
            let f = dir.path().join(name);
            std::fs::write(&f, b"x").unwrap();
            let e = hash(&id, &f).unwrap_err();
            assert!(e.to_string().contains("index role signs it"), "{name}: {e}");
        }
        let f = dir.path().join("Moo-1.0.tar.gz");
        std::fs::write(&f, b"tarball").unwrap();
        let ok = hash(&id, &f).unwrap();
        assert_eq!(ok.path.as_str(), "authors/id/E/ET/ETHER/Moo-1.0.tar.gz");
        assert_eq!(ok.info.length, 7);
        assert_eq!(
            ok.info.hashes["sha256"],
            cpantuf_core::target::sha256_hex(b"tarball")
        );
    }
}
