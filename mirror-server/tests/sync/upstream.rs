//! A signed upstream mirror built in the test with the core's types (the signer is not used
//! here), and a tiny HTTP server on 127.0.0.1 that serves it, logs each request and can be
//! made slow.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use cpantuf_core::crypto::Ed25519Signer;
use cpantuf_core::metadata::{
    signed_value, DelegatedRole, Delegations, MetaFile, RoleKeys, RoleMeta, Root, Snapshot,
    TargetFile, Targets, Timestamp, SPEC_VERSION, TOP_LEVEL_ROLES,
};
use cpantuf_core::target::sha256_hex;
use serde::Serialize;
use serde_json::json;

/// The delegated role of the test repository, and the paths it may sign.
pub const AUTHOR_ROLE: &str = "author-EXAMPLE";
pub const AUTHOR_DIR: &str = "authors/id/E/EX/EXAMPLE";
/// The role between `targets` and the author role, as in CPAN's layout.
pub const PREFIX_ROLE: &str = "prefix-E-EX";

fn signer(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(&[seed; 32])
}

fn nz(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap()
}

/// `{"signatures":[...],"signed":...}` over the canonical bytes of `signed`, written with
/// serde_json (canonical JSON writes control characters raw, a JSON file must escape them).
fn sign<T: RoleMeta + Serialize>(md: &T, seed: u8) -> Vec<u8> {
    let value = signed_value(md);
    let canon = cpantuf_core::canonical::encode(&value).unwrap();
    let s = signer(seed);
    let doc = json!({
        "signatures": [{"keyid": s.keyid().0, "sig": s.sign_hex(&canon)}],
        "signed": value,
    });
    serde_json::to_vec(&doc).unwrap()
}

fn seed_of(role: &str) -> u8 {
    match role {
        "root" => 1,
        "timestamp" => 2,
        "snapshot" => 3,
        "targets" => 4,
        PREFIX_ROLE => 6,
        AUTHOR_ROLE => 5,
        other => {
            10 + (other
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 200) as u8
        }
    }
}

/// A consistent-snapshot repository laid out as the signer lays out a mirror:
/// `tuf/N.role.json`, `tuf/timestamp.json`, `tuf/root.json`, and each target beside its
/// hash-named twin.
pub struct Upstream {
    pub dir: PathBuf,
    consistent: bool,
    root: Root,
    timestamp: Timestamp,
    snapshot: Snapshot,
    roles: BTreeMap<String, Targets>,
    dirty: BTreeSet<String>,
    published: bool,
}

impl Upstream {
    /// Root v1; `targets` lists the index and delegates `authors/id/E/EX/EXAMPLE/*` to
    /// `author-EXAMPLE`, which lists two distributions. Published.
    pub fn new(dir: &Path) -> Upstream {
        Upstream::build(dir, true)
    }

    /// [`Upstream::new`] without consistent snapshots: `tuf/snapshot.json` and
    /// `tuf/ROLE.json` hold the current versions (roots stay `tuf/N.root.json`).
    pub fn without_consistent_snapshots(dir: &Path) -> Upstream {
        Upstream::build(dir, false)
    }

    fn build(dir: &Path, consistent: bool) -> Upstream {
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for role in TOP_LEVEL_ROLES {
            let s = signer(seed_of(role));
            keys.insert(s.keyid().clone(), s.public_key().clone());
            roles.insert(
                role.to_string(),
                RoleKeys {
                    keyids: vec![s.keyid().clone()],
                    threshold: nz(1),
                },
            );
        }
        let expires = Utc::now() + chrono::Duration::days(30);
        let delegate = |child: &str, pattern: String| {
            let k = signer(seed_of(child));
            Some(Delegations {
                keys: BTreeMap::from([(k.keyid().clone(), k.public_key().clone())]),
                roles: Some(vec![DelegatedRole {
                    name: child.into(),
                    keyids: vec![k.keyid().clone()],
                    threshold: nz(1),
                    terminating: true,
                    paths: Some(vec![pattern]),
                    path_hash_prefixes: None,
                }]),
                succinct_roles: None,
            })
        };
        let role = |delegations| Targets {
            spec_version: SPEC_VERSION.into(),
            version: nz(1),
            expires,
            targets: BTreeMap::new(),
            delegations,
        };
        // targets -> prefix-E-EX (authors/id/E/EX/*/*) -> author-EXAMPLE (its directory).
        // `*` does not match `/`.
        let top = role(delegate(PREFIX_ROLE, "authors/id/E/EX/*/*".into()));
        let prefix = role(delegate(AUTHOR_ROLE, format!("{AUTHOR_DIR}/*")));
        let delegated = role(None);
        let meta1 = MetaFile {
            version: nz(1),
            length: None,
            hashes: None,
        };
        let mut up = Upstream {
            dir: dir.to_owned(),
            consistent,
            root: Root {
                spec_version: SPEC_VERSION.into(),
                version: nz(1),
                expires,
                consistent_snapshot: consistent,
                keys,
                roles,
            },
            timestamp: Timestamp {
                spec_version: SPEC_VERSION.into(),
                version: nz(1),
                expires,
                meta: BTreeMap::from([("snapshot.json".into(), meta1.clone())]),
            },
            snapshot: Snapshot {
                spec_version: SPEC_VERSION.into(),
                version: nz(1),
                expires,
                meta: BTreeMap::new(),
            },
            roles: BTreeMap::from([
                ("targets".to_string(), top),
                (PREFIX_ROLE.to_string(), prefix),
                (AUTHOR_ROLE.to_string(), delegated),
            ]),
            dirty: BTreeSet::new(),
            published: false,
        };
        std::fs::create_dir_all(dir.join("tuf")).unwrap();
        let root = sign(&up.root, 1);
        std::fs::write(dir.join("tuf/1.root.json"), &root).unwrap();
        std::fs::write(dir.join("tuf/root.json"), &root).unwrap();
        up.dirty.insert(PREFIX_ROLE.into());
        up.add_target(
            "targets",
            "modules/02packages.details.txt.gz",
            b"index v1\n",
        );
        up.add_target(
            AUTHOR_ROLE,
            &format!("{AUTHOR_DIR}/Foo-1.0.tar.gz"),
            &filler(40_000, 1),
        );
        up.add_target(
            AUTHOR_ROLE,
            &format!("{AUTHOR_DIR}/Bar-1.0.tar.gz"),
            &filler(30_000, 2),
        );
        up.publish();
        up
    }

    /// Adds the CPAN roles for a PAUSE id when missing: `targets` delegates
    /// `authors/id/A/AB/*/*` to `prefix-A-AB`, which delegates `authors/id/A/AB/ID/*` to
    /// `author-ID`. Returns the author role's name.
    pub fn add_author(&mut self, id: &str) -> String {
        let dir = format!("authors/id/{}/{}", &id[..1], &id[..2]);
        let prefix = format!("prefix-{}-{}", &id[..1], &id[..2]);
        let author = format!("author-{id}");
        self.delegate("targets", &prefix, &format!("{dir}/*/*"));
        self.delegate(&prefix_of(&author), &author, &format!("{dir}/{id}/*"));
        author
    }

    /// Adds a terminating delegation of `pattern` from `parent` to a new, empty role `child`
    /// (nothing when `child` exists).
    pub fn delegate(&mut self, parent: &str, child: &str, pattern: &str) {
        self.delegate_with(parent, child, pattern, true);
    }

    /// Adds a delegation of `pattern` from `parent` to a new, empty role `child`, terminating
    /// or not (nothing when `child` exists).
    pub fn delegate_with(&mut self, parent: &str, child: &str, pattern: &str, terminating: bool) {
        if self.roles.contains_key(child) {
            return;
        }
        let k = signer(seed_of(child));
        let expires = self.roles["targets"].expires;
        let d = self
            .roles
            .get_mut(parent)
            .unwrap()
            .delegations
            .get_or_insert_with(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(Vec::new()),
                succinct_roles: None,
            });
        d.keys.insert(k.keyid().clone(), k.public_key().clone());
        d.roles.as_mut().unwrap().push(DelegatedRole {
            name: child.into(),
            keyids: vec![k.keyid().clone()],
            threshold: nz(1),
            terminating,
            paths: Some(vec![pattern.into()]),
            path_hash_prefixes: None,
        });
        self.roles.insert(
            child.into(),
            Targets {
                spec_version: SPEC_VERSION.into(),
                version: nz(1),
                expires,
                targets: BTreeMap::new(),
                delegations: None,
            },
        );
        self.dirty.insert(parent.into());
        self.dirty.insert(child.into());
    }

    /// Like [`Upstream::delegate`], with the new delegation placed first in `parent`'s list, so
    /// it is searched before the roles `parent` delegated to before.
    pub fn delegate_first(&mut self, parent: &str, child: &str, pattern: &str) {
        self.delegate(parent, child, pattern);
        let d = self.roles.get_mut(parent).unwrap().delegations.as_mut();
        let entries = d.unwrap().roles.as_mut().unwrap();
        let entry = entries.pop().unwrap();
        entries.insert(0, entry);
    }

    /// Withdraws `parent`'s delegation to `child`. The snapshot still lists the role's last
    /// version (a snapshot may not drop a role, spec 5.5.5).
    pub fn undelegate(&mut self, parent: &str, child: &str) {
        let d = self.roles.get_mut(parent).unwrap().delegations.as_mut();
        d.unwrap()
            .roles
            .as_mut()
            .unwrap()
            .retain(|e| e.name != child);
        self.roles.remove(child);
        self.dirty.remove(child);
        self.dirty.insert(parent.into());
    }

    /// Sets the expiry `role` is signed with at its next publication.
    pub fn set_expiry(&mut self, role: &str, expires: chrono::DateTime<Utc>) {
        self.roles.get_mut(role).unwrap().expires = expires;
        self.dirty.insert(role.into());
    }

    /// The file name `role` at `version` is served under.
    pub fn file_name(&self, role: &str, version: NonZeroU64) -> String {
        if self.consistent {
            format!("tuf/{version}.{role}.json")
        } else {
            format!("tuf/{role}.json")
        }
    }

    /// Removes a target from `role` (the files stay on the upstream, as on CPAN's backpan).
    pub fn remove_target(&mut self, role: &str, path: &str) {
        self.roles.get_mut(role).unwrap().targets.remove(path);
        self.dirty.insert(role.into());
    }

    /// Publishes the next root version (same keys), as `N.root.json` and `root.json`.
    pub fn bump_root(&mut self) {
        self.root.version = nz(self.root.version.get() + 1);
        let bytes = sign(&self.root, 1);
        let v = self.root.version;
        std::fs::write(self.dir.join(format!("tuf/{v}.root.json")), &bytes).unwrap();
        std::fs::write(self.dir.join("tuf/root.json"), &bytes).unwrap();
    }

    /// The trusted root file a mirror admin would be given.
    pub fn root_file(&self) -> PathBuf {
        self.dir.join("tuf/1.root.json")
    }

    /// Adds (or replaces) a target in `role` and writes it with its hash-named twin.
    pub fn add_target(&mut self, role: &str, path: &str, content: &[u8]) {
        let hash = sha256_hex(content);
        let info = TargetFile {
            length: content.len() as u64,
            hashes: BTreeMap::from([("sha256".to_string(), hash.clone())]),
            custom: None,
        };
        self.roles
            .get_mut(role)
            .unwrap()
            .targets
            .insert(path.into(), info);
        self.dirty.insert(role.into());
        let file = self.dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&file);
        std::fs::write(&file, content).unwrap();
        let (dir, base) = path.rsplit_once('/').unwrap();
        let twin = self.dir.join(format!("{dir}/{hash}.{base}"));
        let _ = std::fs::remove_file(&twin);
        std::fs::hard_link(&file, twin).unwrap();
    }

    /// The path clients fetch for `path` (its hash-named twin).
    pub fn twin_of(&self, path: &str) -> String {
        let info = self
            .roles
            .values()
            .find_map(|r| r.targets.get(path))
            .unwrap();
        let (dir, base) = path.rsplit_once('/').unwrap();
        format!("{dir}/{}.{base}", info.hashes["sha256"])
    }

    /// Signs and writes every changed targets role (new version), then snapshot and timestamp.
    pub fn publish(&mut self) {
        for role in std::mem::take(&mut self.dirty) {
            let md = self.roles.get_mut(&role).unwrap();
            if self.published {
                md.version = nz(md.version.get() + 1);
            }
            let version = md.version;
            let bytes = sign(&*md, seed_of(&role));
            std::fs::write(self.dir.join(self.file_name(&role, version)), &bytes).unwrap();
            self.snapshot.meta.insert(
                format!("{role}.json"),
                MetaFile {
                    version,
                    length: Some(bytes.len() as u64),
                    hashes: Some(BTreeMap::from([("sha256".to_string(), sha256_hex(&bytes))])),
                },
            );
        }
        if self.published {
            self.snapshot.version = nz(self.snapshot.version.get() + 1);
            self.timestamp.version = nz(self.timestamp.version.get() + 1);
        }
        let snap = sign(&self.snapshot, 3);
        let sv = self.snapshot.version;
        std::fs::write(self.dir.join(self.file_name("snapshot", sv)), &snap).unwrap();
        self.timestamp.meta.insert(
            "snapshot.json".into(),
            MetaFile {
                version: sv,
                length: Some(snap.len() as u64),
                hashes: Some(BTreeMap::from([("sha256".to_string(), sha256_hex(&snap))])),
            },
        );
        std::fs::write(
            self.dir.join("tuf/timestamp.json"),
            sign(&self.timestamp, 2),
        )
        .unwrap();
        self.published = true;
    }

    /// Signs the next timestamp version, expiring at `expires`, naming the same snapshot (as
    /// an upstream does to keep its timestamp fresh when nothing changed).
    pub fn resign_timestamp(&mut self, expires: chrono::DateTime<Utc>) {
        self.timestamp.version = nz(self.timestamp.version.get() + 1);
        self.timestamp.expires = expires;
        std::fs::write(
            self.dir.join("tuf/timestamp.json"),
            sign(&self.timestamp, 2),
        )
        .unwrap();
    }

    /// Every target path and its content as the upstream currently signs it.
    pub fn targets(&self) -> BTreeMap<String, Vec<u8>> {
        self.roles
            .values()
            .flat_map(|r| r.targets.keys())
            .map(|p| (p.clone(), std::fs::read(self.dir.join(p)).unwrap()))
            .collect()
    }
}

fn prefix_of(author_role: &str) -> String {
    let id = author_role.strip_prefix("author-").unwrap();
    format!("prefix-{}-{}", &id[..1], &id[..2])
}

#[path = "../common/filler.rs"]
mod common_filler;
pub use common_filler::filler;

/// A static HTTP/1.1 server over a directory, one thread per connection, `Connection: close`.
pub struct HttpServer {
    pub addr: SocketAddr,
    /// Paths requested, in order.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Delay before answering each request for a file outside `tuf/`, in milliseconds.
    pub target_delay_ms: Arc<AtomicU64>,
}

impl HttpServer {
    pub fn start(dir: &Path) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let delay = Arc::new(AtomicU64::new(0));
        let (dir, log2, delay2) = (dir.to_owned(), log.clone(), delay.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (dir, log, delay) = (dir.clone(), log2.clone(), delay2.clone());
                std::thread::spawn(move || {
                    let _ = answer(stream, &dir, &log, &delay);
                });
            }
        });
        HttpServer {
            addr,
            log,
            target_delay_ms: delay,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Forgets the requests logged so far and returns them.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn answer(
    stream: TcpStream,
    dir: &Path,
    log: &Mutex<Vec<String>>,
    delay: &AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let path = line
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_owned();
    if !path.starts_with("tuf/") {
        let ms = delay.load(Ordering::SeqCst);
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
    log.lock().unwrap().push(path.clone());
    let mut out = stream;
    let file = (!path.contains("..")).then(|| dir.join(&path));
    match file.and_then(|f| std::fs::read(f).ok()) {
        Some(body) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body)?;
        }
        None => {
            out.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
        }
    }
    out.flush()
}
