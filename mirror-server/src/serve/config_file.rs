//! `serve --config FILE`: the same options as the command line, in TOML.
//!
//! Keys are the long option names without the leading dashes (`max-connections`,
//! `access-log-format`); list options (`listen`, `http-listen`) take arrays; durations are
//! strings (`"30s"`); sizes are numbers of bytes or strings with a unit (`"256MiB"`). An unknown key is an error, so a typo is never silently ignored. A value
//! given on the command line wins over the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Deserializer};

use super::config::{parse_bytes, parse_duration, AccessLogFormat, Args};

/// The file's contents; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    root: Option<PathBuf>,
    listen: Option<Vec<String>>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    http_listen: Option<Vec<String>>,
    admin_listen: Option<String>,
    access_log: Option<String>,
    access_log_format: Option<AccessLogFormat>,
    sync_status: Option<PathBuf>,
    workers: Option<usize>,
    max_connections: Option<usize>,
    #[serde(default, deserialize_with = "size")]
    max_header_bytes: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    handshake_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    header_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    idle_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    shutdown_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    reload_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    short_max_age: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    default_max_age: Option<Duration>,
    #[serde(default, deserialize_with = "size")]
    file_cache_bytes: Option<usize>,
    #[serde(default, deserialize_with = "size")]
    file_cache_max_file: Option<u64>,
    #[serde(default, deserialize_with = "size")]
    gzip_cache_bytes: Option<usize>,
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// A size: a number of bytes, or a string with a unit (`"256MiB"`).
fn size<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    let n = match Size::deserialize(d)? {
        Size::Bytes(n) => n,
        Size::Text(s) => parse_bytes(&s).map_err(serde::de::Error::custom)?,
    };
    T::try_from(n)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{n} is too large")))
}

/// Reads `path` and fills in every option of `args` not given on the command line. Relative
/// paths in the file are relative to the file's directory.
pub fn apply(path: &Path, args: Args) -> anyhow::Result<Args> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let file: FileConfig = toml::from_str(&text).map_err(|e| {
        let what = e.message().trim().to_owned();
        let line = e
            .span()
            .map(|s| text[..s.start].matches('\n').count() + 1)
            .map_or(String::new(), |l| format!(" line {l}"));
        anyhow::anyhow!("config file {}{line}: {what}", path.display())
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(merge(args, file, base))
}

/// `args` with each field not in `args.from_command_line` taken from `file` when it has it.
fn merge(mut args: Args, file: FileConfig, base: &Path) -> Args {
    let cli = args.from_command_line.clone();
    let relative = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
    macro_rules! take {
        ($($field:ident $(=> $wrap:expr)?),* $(,)?) => {$(
            if let Some(v) = file.$field {
                if !cli.contains(stringify!($field)) {
                    args.$field = take!(@wrap v $(, $wrap)?);
                }
            }
        )*};
        (@wrap $v:ident) => { $v };
        (@wrap $v:ident, $wrap:expr) => { $wrap($v) };
    }
    take!(
        root => |p| Some(relative(p)),
        cert => |p| Some(relative(p)),
        key => |p| Some(relative(p)),
        sync_status => |p| Some(relative(p)),
        admin_listen => Some,
        workers => Some,
        listen,
        http_listen,
        access_log,
        access_log_format,
        max_connections,
        max_header_bytes,
        handshake_timeout,
        header_timeout,
        idle_timeout,
        shutdown_timeout,
        reload_interval,
        short_max_age,
        default_max_age,
        file_cache_bytes,
        file_cache_max_file,
        gzip_cache_bytes,
    );
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct T {
        #[command(flatten)]
        args: Args,
    }

    fn args(argv: &[&str]) -> Args {
        let mut a = T::parse_from(std::iter::once("t").chain(argv.iter().copied())).args;
        a.from_command_line = argv
            .iter()
            .filter_map(|s| s.strip_prefix("--"))
            .map(|s| s.replace('-', "_"))
            .collect();
        a
    }

    fn parse(text: &str) -> FileConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn file_fills_what_the_command_line_left_out() {
        let file = parse(
            "root = \"tree\"\nlisten = [\":443\", \"[::]:443\"]\n\
             idle-timeout = \"2m\"\nmax-connections = 7\naccess-log-format = \"json\"\n",
        );
        let a = merge(args(&["--config", "x"]), file, Path::new("/etc/cpantuf"));
        assert_eq!(a.root.unwrap(), Path::new("/etc/cpantuf/tree"));
        assert_eq!(a.listen, [":443", "[::]:443"]);
        assert_eq!(a.idle_timeout, Duration::from_secs(120));
        assert_eq!(a.max_connections, 7);
        assert_eq!(a.access_log_format, AccessLogFormat::Json);
    }

    #[test]
    fn command_line_wins_over_the_file() {
        let file = parse("root = \"/from/file\"\nmax-connections = 7\nlisten = [\":443\"]\n");
        let a = merge(
            args(&[
                "--root",
                "/cli",
                "--max-connections",
                "9",
                "--listen",
                ":8443",
            ]),
            file,
            Path::new("/"),
        );
        assert_eq!(a.root.unwrap(), Path::new("/cli"));
        assert_eq!(a.max_connections, 9);
        assert_eq!(a.listen, [":8443"]);
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_refused() {
        assert!(toml::from_str::<FileConfig>("max-conections = 3\n").is_err());
        assert!(toml::from_str::<FileConfig>("idle-timeout = \"3 fortnights\"\n").is_err());
        assert!(toml::from_str::<FileConfig>("file-cache-bytes = \"lots\"\n").is_err());
    }

    #[test]
    fn sizes_are_bytes_or_strings_with_a_unit() {
        let f: FileConfig =
            toml::from_str("file-cache-bytes = \"256MiB\"\ngzip-cache-bytes = 1024\n").unwrap();
        assert_eq!(f.file_cache_bytes, Some(256 << 20));
        assert_eq!(f.gzip_cache_bytes, Some(1024));
    }
}
