//! What cpantuf lets through to a CPAN client: module names and CPAN
//! distribution paths, which the client resolves and fetches through the
//! verifying mirror, and (for cpanm) the options that do not change where
//! it looks. A URL, a git repository, a local tarball or directory, or an
//! option that adds a mirror, an index or a metacpan lookup would make the
//! client fetch or build something cpantuf never verified: refused.
//!
//! The option table follows cpanm 1.70's `parse_options` (Getopt::Long
//! with bundling): long options may be abbreviated to any unique prefix
//! and are case-insensitive, short ones bundle (`-nM URL`).

use std::path::Path;

/// A usage error: the command line asks for something cpantuf cannot verify.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// What the arguments turned out to hold.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Local directories whose dependencies are installed (`--installdeps`):
    /// the user's own code, not verified.
    pub local_dirs: Vec<String>,
}

/// cpanm's options, in Getopt::Long notation (`=s`/`=i`: takes a value,
/// `@`: repeatable, `!`: negatable).
const CPANM_OPTIONS: &[&str] = &[
    "f|force",
    "n|notest!",
    "test-only",
    "S|sudo!",
    "v|verbose",
    "verify!",
    "q|quiet!",
    "h|help",
    "V|version",
    "perl=s",
    "l|local-lib=s",
    "L|local-lib-contained=s",
    "self-contained!",
    "exclude-vendor!",
    "mirror=s@",
    "mirror-only!",
    "mirror-index=s",
    "M|from=s",
    "cpanmetadb=s",
    "cascade-search!",
    "prompt!",
    "installdeps",
    "skip-installed!",
    "skip-satisfied!",
    "reinstall",
    "interactive!",
    "i|install",
    "info",
    "look",
    "U|uninstall",
    "self-upgrade",
    "uninst-shadows!",
    "lwp!",
    "wget!",
    "curl!",
    "auto-cleanup=s",
    "man-pages!",
    "scandeps",
    "showdeps",
    "format=s",
    "save-dists=s",
    "skip-configure!",
    "dev!",
    "metacpan!",
    "report-perl-version!",
    "configure-timeout=i",
    "build-timeout=i",
    "test-timeout=i",
    "with-develop",
    "without-develop",
    "with-configure",
    "without-configure",
    "with-feature=s",
    "without-feature=s",
    "with-all-features",
    "pp|pureperl!",
    "cpanfile=s",
    "with-recommends",
    "without-recommends",
    "with-suggests",
    "without-suggests",
    "configure-args=s",
    "build-args=s",
    "test-args=s",
    "install-args=s",
];

/// Options that change where cpanm looks for an index or a file (cpantuf
/// passes `--from` itself); `--dev` and `--metacpan` ask metacpan.
const SOURCE_OPTIONS: &[&str] = &[
    "mirror",
    "mirror-only",
    "mirror-index",
    "from",
    "cpanmetadb",
    "cascade-search",
    "metacpan",
    "dev",
];

struct Opt {
    names: Vec<&'static str>,
    takes_value: bool,
    negatable: bool,
}

impl Opt {
    fn parse(spec: &'static str) -> Opt {
        let end = spec.find(['=', '!']).unwrap_or(spec.len());
        Opt {
            names: spec[..end].split('|').collect(),
            takes_value: spec[end..].starts_with('='),
            negatable: spec.ends_with('!'),
        }
    }

    /// The long name cpanm's documentation uses.
    fn long(&self) -> &'static str {
        self.names
            .iter()
            .copied()
            .find(|n| n.len() > 1)
            .unwrap_or(self.names[0])
    }

    /// Every spelling Getopt::Long accepts in full for this option.
    fn spellings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.names.iter().map(|n| n.to_string()).collect();
        if self.negatable {
            for n in &self.names {
                out.push(format!("no{n}"));
                out.push(format!("no-{n}"));
            }
        }
        out
    }
}

fn options() -> Vec<Opt> {
    CPANM_OPTIONS.iter().map(|s| Opt::parse(s)).collect()
}

/// Finds the option a `--name` means: an exact spelling, else the one
/// option with a spelling that `name` begins (Getopt::Long's `auto_abbrev`).
fn long_option<'a>(opts: &'a [Opt], name: &str) -> Result<&'a Opt, Usage> {
    let name = name.to_ascii_lowercase();
    if let Some(o) = opts.iter().find(|o| o.spellings().contains(&name)) {
        return Ok(o);
    }
    let matching: Vec<&Opt> = opts
        .iter()
        .filter(|o| o.spellings().iter().any(|s| s.starts_with(&name)))
        .collect();
    match matching[..] {
        [one] => Ok(one),
        [] => Err(Usage(format!(
            "cpanm option --{name} is unknown to cpantuf: refusing to pass it on"
        ))),
        _ => Err(Usage(format!(
            "cpanm option --{name} is ambiguous: give it in full"
        ))),
    }
}

fn refuse_source_option(o: &Opt) -> Result<(), Usage> {
    if SOURCE_OPTIONS.contains(&o.long()) {
        return Err(Usage(format!(
            "cpanm option --{} would make cpanm look beyond the verifying mirror: refused \
             (cpantuf gives cpanm its mirror itself)",
            o.long()
        )));
    }
    Ok(())
}

/// Splits cpanm's arguments into options (checked) and the rest (returned);
/// tells whether `--installdeps` was among them.
fn scan_cpanm_args(args: &[String]) -> Result<(Vec<String>, bool), Usage> {
    let opts = options();
    let mut positional = Vec::new();
    let mut installdeps = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            positional.extend(it.by_ref().cloned());
        } else if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            let o = long_option(&opts, name)?;
            refuse_source_option(o)?;
            installdeps |= o.long() == "installdeps";
            if o.takes_value && !inline {
                it.next();
            }
        } else if a.len() > 1 && a.starts_with('-') {
            if scan_bundle(&opts, &a[1..])? {
                it.next();
            }
        } else {
            positional.push(a.clone());
        }
    }
    Ok((positional, installdeps))
}

/// Checks a bundle of short options (`-nqL`); true when its last option
/// takes its value from the next argument.
fn scan_bundle(opts: &[Opt], bundle: &str) -> Result<bool, Usage> {
    for (i, c) in bundle.char_indices() {
        let o = opts
            .iter()
            .find(|o| o.names.iter().any(|n| n.len() == 1 && n.starts_with(c)))
            .ok_or_else(|| {
                Usage(format!(
                    "cpanm option -{c} is unknown to cpantuf: refusing to pass it on"
                ))
            })?;
        refuse_source_option(o)?;
        if o.takes_value {
            return Ok(i + c.len_utf8() == bundle.len());
        }
    }
    Ok(false)
}

/// Checks `cpantuf install`'s modules and the cpanm arguments after `--`.
pub fn check_install(
    modules: &[String],
    cpanm_args: &[String],
    installdeps: bool,
) -> Result<Scanned, Usage> {
    let (more, deps_option) = scan_cpanm_args(cpanm_args)?;
    let installdeps = installdeps || deps_option;
    let mut scanned = Scanned::default();
    for m in modules.iter().chain(&more) {
        if installdeps && Path::new(m).is_dir() {
            scanned.local_dirs.push(m.clone());
        } else {
            check_module(m)?;
        }
    }
    Ok(scanned)
}

/// Accepts a module name (`Moo`, `Moo~2.0`, `Moo@2.005005`) or a CPAN
/// distribution path (`HAARG/Moo-2.005005.tar.gz`,
/// `H/HA/HAARG/...`, `cpan:///distfile/...`) that is not also a local file
/// or directory (cpanm would install that instead).
pub fn check_module(arg: &str) -> Result<(), Usage> {
    let what =
        if arg.starts_with("git:") || arg.split('@').next().is_some_and(|a| a.ends_with(".git")) {
            Some("a git repository")
        } else if arg.contains("://") && !arg.starts_with("cpan:///distfile/") {
            Some("a URL")
        } else if Path::new(arg).is_dir() {
            Some("a local directory")
        } else if Path::new(arg).exists() {
            Some("a local file")
        } else if !is_module_name(arg) && !is_dist_path(arg) {
            Some("neither a module name nor a CPAN distribution path")
        } else {
            None
        };
    match what {
        None => Ok(()),
        Some(what) => Err(Usage(format!(
            "cpantuf cannot verify {}: it is {what}; give module names (Moo) or CPAN \
             distribution paths (HAARG/Moo-2.005005.tar.gz), which come through the \
             verifying mirror",
            crate_sanitize(arg)
        ))),
    }
}

fn crate_sanitize(s: &str) -> String {
    cpantuf_client::local_mirror::sanitize(s)
}

/// `Foo::Bar`, optionally with cpanm's `~VERSION-RANGE` or `@VERSION`.
fn is_module_name(arg: &str) -> bool {
    let name = match arg.split_once(['~', '@']) {
        Some((n, v)) => {
            let ok = v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " ._,!<>=".contains(c));
            if !ok || v.is_empty() {
                return false;
            }
            n
        }
        None => arg,
    };
    !name.is_empty()
        && name.split("::").all(|seg| {
            seg.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `AUTHOR/file` or `A/AU/AUTHOR/file` (cpanm's PAUSE-ID form), or
/// `cpan:///distfile/AUTHOR/file`: fetched from the verifying mirror.
fn is_dist_path(arg: &str) -> bool {
    let arg = arg.strip_prefix("cpan:///distfile/").unwrap_or(arg);
    let segs: Vec<&str> = arg.split('/').collect();
    let author_at = match segs[..] {
        [a, b, ..] if a.len() == 1 && b.len() == 2 && segs.len() > 3 => 2,
        _ => 0,
    };
    let author = segs[author_at];
    author.len() >= 2
        && author
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        && segs.len() > author_at + 1
        && segs[author_at + 1..]
            .iter()
            .all(|s| !s.is_empty() && *s != "." && *s != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_that_change_sources_are_refused_in_every_spelling() {
        for args in [
            &["--mirror", "http://x/"][..],
            &["--MIRROR=http://x/"],
            &["--mirr", "http://x/"],
            &["-M", "http://x/"],
            &["-Mhttp://x/"],
            &["-qnM", "http://x/"],
            &["--from=http://x/"],
            &["--fr", "http://x/"],
            &["--mirror-index", "f"],
            &["--cascade"],
            &["--no-mirror-only"],
            &["--nomirror-only"],
            &["--metacpan"],
            &["--cpanmetadb", "http://x/"],
            &["--dev"],
        ] {
            let e = check_install(&v(&["Moo"]), &v(args), false);
            assert!(e.is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn ordinary_options_pass_and_their_values_are_not_modules() {
        let ok = check_install(
            &v(&["Moo"]),
            &v(&[
                "-L",
                "local",
                "--notest",
                "-nq",
                "--save-dists",
                "/tmp/x",
                "--no-lwp",
            ]),
            false,
        );
        assert!(ok.is_ok(), "{ok:?}");
        assert!(check_install(&v(&["Moo"]), &v(&["-Llocal", "--reinst"]), false).is_ok());
        // After `--`, everything is a module.
        assert!(check_install(&v(&["Moo"]), &v(&["--", "http://x/y.tar.gz"]), false).is_err());
        assert!(check_install(&v(&["Moo"]), &v(&["--frobnicate"]), false).is_err());
    }

    #[test]
    fn modules_and_dist_paths_pass_urls_git_and_junk_do_not() {
        for ok in [
            "Moo",
            "Try::Tiny",
            "Moo~2.0",
            "DBI~>= 1.0, < 2.0",
            "Moo@2.005005",
            "HAARG/Moo-2.005005.tar.gz",
            "H/HA/HAARG/Moo-2.005005.tar.gz",
            "cpan:///distfile/HAARG/Moo-2.005005.tar.gz",
        ] {
            assert!(check_module(ok).is_ok(), "{ok} refused");
        }
        for bad in [
            "http://example.org/authors/id/X/XY/XYZ/Foo-1.tar.gz",
            "file:///tmp/Foo-1.tar.gz",
            "git://example.org/foo.git",
            "https://example.org/foo.git@main",
            "foo.git",
            "/",
            ".",
            "Foo-1.0",
            "HAARG/../../etc",
            "",
        ] {
            assert!(check_module(bad).is_err(), "{bad} accepted");
        }
    }
}
