//! Real CPAN clients install through the server over TLS, with the test CA as their only
//! trust: cpanm with each of its four download backends (LWP, wget, curl, HTTP::Tiny), and
//! CPAN.pm. Needs perl, cpanm, make, tar, wget, curl and LWP::Protocol::https (Debian:
//! cpanminus make wget curl liblwp-protocol-https-perl). Without them the tests say so and
//! pass, except under CI (`CI` set), where a missing tool is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::*;

const TOOLS: [&str; 6] = ["perl", "cpanm", "make", "tar", "wget", "curl"];

fn tools_present() -> bool {
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    let lwp = Command::new("perl")
        .args(["-MLWP::Protocol::https", "-e1"])
        .status()
        .is_ok_and(|s| s.success());
    if missing.is_empty() && lwp {
        return true;
    }
    let msg = format!("CPAN client tests need {missing:?} and LWP::Protocol::https (ok: {lwp})");
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("SKIPPED: {msg}");
    false
}

/// One pure-Perl distribution: (path under authors/id, package, version, prerequisite).
const DISTS: [(&str, &str, &str, Option<&str>); 2] = [
    (
        "D/DE/DEMO/Acme-CpantufDemo-0.01.tar.gz",
        "Acme::CpantufDemo",
        "0.01",
        Some("Acme::CpantufDep"),
    ),
    (
        "O/OT/OTHER/Acme-CpantufDep-0.02.tar.gz",
        "Acme::CpantufDep",
        "0.02",
        None,
    ),
];

/// A mirror tree with two distributions by two authors (one needs the other), a PAUSE-format
/// 02packages index, 01mailrc, 03modlist and per-directory CHECKSUMS.
fn build_cpan_tree(root: &Path, work: &Path) {
    for (path, package, version, prereq) in DISTS {
        let file = Path::new(path).file_name().unwrap().to_str().unwrap();
        let base = file.strip_suffix(".tar.gz").unwrap();
        let src = work.join(base);
        let module_rel = format!("lib/{}.pm", package.replace("::", "/"));
        std::fs::create_dir_all(src.join(Path::new(&module_rel).parent().unwrap())).unwrap();
        let prereq = prereq.map_or(String::new(), |p| format!("'{p}' => 0"));
        std::fs::write(
            src.join("Makefile.PL"),
            format!(
                "use ExtUtils::MakeMaker;\nWriteMakefile(NAME => '{package}', VERSION_FROM => '{module_rel}', PREREQ_PM => {{ {prereq} }});\n"
            ),
        )
        .unwrap();
        std::fs::write(
            src.join(&module_rel),
            format!("package {package};\nour $VERSION = '{version}';\n1;\n"),
        )
        .unwrap();
        std::fs::write(
            src.join("MANIFEST"),
            format!("Makefile.PL\nMANIFEST\n{module_rel}\n"),
        )
        .unwrap();
        let dest = root.join("authors/id").join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let ok = Command::new("tar")
            .arg("czf")
            .arg(&dest)
            .arg("-C")
            .arg(work)
            .arg(base)
            .status()
            .unwrap();
        assert!(ok.success());
        let bytes = std::fs::read(&dest).unwrap();
        let sha = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        // Unsigned CHECKSUMS, in the Data::Dumper shape CPAN.pm evaluates.
        std::fs::write(
            dest.with_file_name("CHECKSUMS"),
            format!(
                "$cksum = {{\n  '{file}' => {{\n    'cpan_path' => '{}',\n    'sha256' => '{sha}',\n    'size' => {}\n  }}\n}};\n",
                Path::new(path).parent().unwrap().display(),
                bytes.len()
            ),
        )
        .unwrap();
    }
    let mut lines: Vec<String> = DISTS
        .iter()
        .map(|(path, package, version, _)| format!("{package:<30} {version:>8}  {path}"))
        .collect();
    lines.sort_by_key(|l| l.to_lowercase());
    let index = format!(
        "File:         02packages.details.txt\n\
         URL:          http://www.perl.com/CPAN/modules/02packages.details.txt\n\
         Description:  Package names found in directory $CPAN/authors/id/\n\
         Columns:      package name, version, path\n\
         Intended-For: Automated fetch routines, namespace documentation.\n\
         Written-By:   PAUSE version 1.005\n\
         Line-Count:   {}\n\
         Last-Updated: Thu, 02 Apr 2026 01:17:03 GMT\n\n{}\n",
        lines.len(),
        lines.join("\n")
    );
    std::fs::create_dir_all(root.join("modules")).unwrap();
    std::fs::write(
        root.join("modules/02packages.details.txt.gz"),
        gzip(index.as_bytes()),
    )
    .unwrap();
    std::fs::write(
        root.join("modules/03modlist.data.gz"),
        gzip(b"File:        03modlist.data\nLast-Updated: Thu, 02 Apr 2026 01:17:03 GMT\n\npackage CPAN::Modulelist;\nsub data { {} }\n1;\n"),
    )
    .unwrap();
    std::fs::write(
        root.join("authors/01mailrc.txt.gz"),
        gzip(b"alias DEMO \"Demo Author <demo@example.org>\"\nalias OTHER \"Other Author <other@example.org>\"\n"),
    )
    .unwrap();
}

fn start_cpan_mirror() -> Mirror {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    let work = dir.path().join("src");
    std::fs::create_dir_all(&root).unwrap();
    build_cpan_tree(&root, &work);
    Mirror::start_on(dir, root, &[])
}

/// An environment in which the test CA is the only trust anchor of every backend.
fn client_env(m: &Mirror, cmd: &mut Command, home: &Path) {
    let wgetrc = m.dir.path().join("wgetrc");
    std::fs::write(
        &wgetrc,
        format!("ca_certificate = {}\n", m.pki.ca_pem.display()),
    )
    .unwrap();
    for var in [
        "PERL_CPANM_OPT",
        "PERL5LIB",
        "PERL_MM_OPT",
        "PERL_MB_OPT",
        "https_proxy",
        "HTTPS_PROXY",
        "http_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("SSL_CERT_FILE", &m.pki.ca_pem)
        .env("SSL_CERT_DIR", m.dir.path().join("no-such-dir"))
        .env("PERL_LWP_SSL_CA_FILE", &m.pki.ca_pem)
        .env("HTTPS_CA_FILE", &m.pki.ca_pem)
        .env("CURL_CA_BUNDLE", &m.pki.ca_pem)
        .env("WGETRC", &wgetrc)
        .env("NO_PROXY", "localhost,127.0.0.1");
}

fn cpanm(m: &Mirror, backend_flags: &[&str], home: &Path, local: &Path) -> Output {
    let mut cmd = Command::new("cpanm");
    client_env(m, &mut cmd, home);
    cmd.env("PERL_CPANM_HOME", home.join("cpanm"))
        .arg("--verbose")
        .arg("--notest")
        .arg("--from")
        .arg(format!("https://localhost:{}/", m.https.port()))
        .arg("-L")
        .arg(local)
        .args(backend_flags)
        .arg("Acme::CpantufDemo");
    cmd.output().unwrap()
}

fn installed(local: &Path, module: &str) -> PathBuf {
    local
        .join("lib/perl5")
        .join(format!("{}.pm", module.replace("::", "/")))
}

#[test]
fn cpanm_installs_through_every_download_backend() {
    if !tools_present() {
        return;
    }
    let m = start_cpan_mirror();
    let backends: [(&str, &[&str], &str); 4] = [
        ("lwp", &[], "You have LWP"),
        ("wget", &["--no-lwp"], "You have /usr/bin/wget"),
        ("curl", &["--no-lwp", "--no-wget"], "You have /usr/bin/curl"),
        (
            "http-tiny",
            &["--no-lwp", "--no-wget", "--no-curl"],
            "Falling back to HTTP::Tiny",
        ),
    ];
    for (name, flags, banner) in backends {
        let home = m.dir.path().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        let local = m.dir.path().join(format!("local-{name}"));
        let out = cpanm(&m, flags, &home, &local);
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "cpanm via {name} failed:\n{log}");
        assert!(
            log.contains(banner.trim_start_matches("You have /usr/bin/")),
            "{name}: wrong backend\n{log}"
        );
        for (_, module, _, _) in DISTS {
            assert!(
                installed(&local, module).exists(),
                "{name}: {module} not installed\n{log}"
            );
        }
    }
    let log = m.access_log(8);
    for (path, ..) in DISTS {
        let want = format!("\"GET /authors/id/{path} HTTP/");
        let hits = log
            .lines()
            .filter(|l| l.contains(&want) && l.contains("\" 200 "))
            .count();
        assert_eq!(hits, 4, "each backend fetched {path}:\n{log}");
    }
}

#[test]
fn cpanm_revalidates_the_index_with_a_conditional_get() {
    if !tools_present() {
        return;
    }
    let m = start_cpan_mirror();
    // LWP and HTTP::Tiny mirror the index with If-Modified-Since: the second run gets 304.
    for (name, flags) in [
        ("lwp", &[][..]),
        ("http-tiny", &["--no-lwp", "--no-wget", "--no-curl"][..]),
    ] {
        let home = m.dir.path().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        for run in 0..2 {
            let local = m.dir.path().join(format!("local-{name}-{run}"));
            let out = cpanm(&m, flags, &home, &local);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    let log = m.access_log(4);
    let index = "\"GET /modules/02packages.details.txt.gz HTTP/1.1\"";
    assert_eq!(log.matches(&format!("{index} 200 ")).count(), 2, "{log}");
    assert_eq!(log.matches(&format!("{index} 304 0 ")).count(), 2, "{log}");
}

#[test]
fn cpan_pm_fetches_and_checks_checksums_through_the_mirror() {
    if !tools_present() {
        return;
    }
    let m = start_cpan_mirror();
    let home = m.dir.path().join("home-cpan");
    let cpan_home = home.join(".cpan");
    std::fs::create_dir_all(cpan_home.join("CPAN")).unwrap();
    let url = format!("https://localhost:{}/", m.https.port());
    let cfg = |key: &str, value: &str| format!("  '{key}' => q[{value}],\n");
    let mut config = String::from("$CPAN::Config = {\n");
    for (k, v) in [
        ("cpan_home", cpan_home.to_str().unwrap()),
        ("build_dir", cpan_home.join("build").to_str().unwrap()),
        (
            "keep_source_where",
            cpan_home.join("sources").to_str().unwrap(),
        ),
        ("prefs_dir", cpan_home.join("prefs").to_str().unwrap()),
        ("histfile", cpan_home.join("histfile").to_str().unwrap()),
        ("make", "make"),
        ("tar", "tar"),
        ("gzip", "gzip"),
        ("shell", "/bin/sh"),
        ("pager", "cat"),
        ("prerequisites_policy", "follow"),
        ("check_sigs", "0"),
        ("pushy_https", "0"),
        ("connect_to_internet_ok", "1"),
        ("auto_commit", "0"),
        ("build_requires_install_policy", "yes"),
        ("index_expire", "1"),
        ("inactivity_timeout", "0"),
        ("ftp_passive", "1"),
        ("use_sqlite", "0"),
        ("trust_test_report_history", "0"),
        ("load_module_verbosity", "none"),
        ("tar_verbosity", "none"),
        ("makepl_arg", ""),
        ("build_cache", "10"),
        ("cache_metadata", "0"),
        ("scan_cache", "never"),
        ("term_is_latin", "1"),
        ("ftp_proxy", ""),
        ("http_proxy", ""),
        ("no_proxy", ""),
        ("colorize_output", "0"),
        ("commandnumber_in_prompt", "0"),
        ("halt_on_failure", "1"),
        ("perl5lib_verbosity", "none"),
        ("recommends_policy", "0"),
        ("suggests_policy", "0"),
        ("test_report", "0"),
        ("yaml_load_code", "0"),
        ("yaml_module", "YAML"),
        ("version_timeout", "15"),
        ("allow_installing_outdated_dists", "yes"),
        ("allow_installing_module_downgrades", "yes"),
        ("make_arg", ""),
        ("make_install_arg", ""),
        ("mbuildpl_arg", ""),
        ("mbuild_arg", ""),
        ("mbuild_install_arg", ""),
    ] {
        config.push_str(&cfg(k, v));
    }
    config.push_str(&format!("  'urllist' => [q[{url}]],\n}};\n1;\n__END__\n"));
    std::fs::write(cpan_home.join("CPAN/MyConfig.pm"), config).unwrap();

    let mut cmd = Command::new("perl");
    client_env(&m, &mut cmd, &home);
    cmd.env("PERL_MM_USE_DEFAULT", "1")
        .env("PERL5LIB", &cpan_home)
        .args(["-MCPAN::MyConfig", "-MCPAN", "-e"])
        .arg("CPAN::Shell->get(q[Acme::CpantufDemo])");
    let out = cmd.output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "CPAN.pm failed:\n{log}");
    let access = m.access_log(4);
    for path in [
        "/authors/01mailrc.txt.gz",
        "/modules/02packages.details.txt.gz",
        "/modules/03modlist.data.gz",
        "/authors/id/D/DE/DEMO/Acme-CpantufDemo-0.01.tar.gz",
        "/authors/id/D/DE/DEMO/CHECKSUMS",
    ] {
        assert!(
            access.contains(&format!("\"GET {path} HTTP/1.1\" 200 ")),
            "{path} not fetched:\n{access}\n{log}"
        );
    }
    assert!(
        log.contains("Checksum for") && log.contains("Acme-CpantufDemo-0.01.tar.gz ok"),
        "CHECKSUMS not verified:\n{log}"
    );
    assert!(!log.contains("Aborted"), "{log}");
}
