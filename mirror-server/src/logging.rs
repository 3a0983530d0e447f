//! Diagnostics on stderr: one convention shared by the three cpantuf tools.
//!
//! - `-v` / `-q` (repeatable) move the level of cpantuf's own messages up or down from `info`;
//! - third-party crates (rustls, hyper, h2...) are held at `warn` unless `-v` is given, and
//!   rustls at `error` (it warns once per client that sends an IP address as SNI);
//! - `--log FILTER` or the `CPANTUF_LOG` environment variable, in tracing's `EnvFilter`
//!   syntax, replaces all of that when an administrator needs something precise;
//! - colour only when stderr is a terminal and `NO_COLOR` is unset.

/// The crates whose messages are cpantuf's own.
const OWN_CRATES: [&str; 3] = ["cpantuf_mirror", "cpantuf_client", "cpantuf_core"];

/// The filter for `-v` given `verbose` times and `-q` given `quiet` times, unless `explicit`
/// (from `--log` or `CPANTUF_LOG`) is set, which is used as it is.
pub fn filter_directives(verbose: u8, quiet: u8, explicit: Option<&str>) -> String {
    if let Some(filter) = explicit.map(str::trim).filter(|f| !f.is_empty()) {
        return filter.to_owned();
    }
    let levels = ["off", "error", "warn", "info", "debug", "trace"];
    let own = (3 + i16::from(verbose) - i16::from(quiet)).clamp(0, 5) as usize;
    let (others, rustls) = match verbose {
        0 => ("warn", "error"),
        1 => ("info", "info"),
        _ => ("debug", "debug"),
    };
    // Third parties are never louder than cpantuf itself: `-q` quiets them too.
    let others = levels[own.min(levels.iter().position(|l| *l == others).unwrap_or(2))];
    let rustls = levels[own.min(levels.iter().position(|l| *l == rustls).unwrap_or(1))];
    let mut directives = vec![others.to_owned(), format!("rustls={rustls}")];
    directives.extend(OWN_CRATES.iter().map(|c| format!("{c}={}", levels[own])));
    directives.join(",")
}

/// Installs the stderr subscriber. An unparsable explicit filter is a usage error.
pub fn init(verbose: u8, quiet: u8, explicit: Option<&str>) -> anyhow::Result<()> {
    let directives = filter_directives(verbose, quiet, explicit);
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .map_err(|e| anyhow::anyhow!("--log / CPANTUF_LOG `{directives}`: {e}"))?;
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_info_for_cpantuf_and_warn_for_third_parties() {
        let f = filter_directives(0, 0, None);
        assert_eq!(
            f,
            "warn,rustls=error,cpantuf_mirror=info,cpantuf_client=info,cpantuf_core=info"
        );
    }

    #[test]
    fn verbose_opens_third_parties_and_quiet_closes_everything() {
        for (verbose, quiet, wanted) in [
            (1, 0, "info,rustls=info,cpantuf_mirror=debug"),
            (2, 0, "debug,rustls=debug,cpantuf_mirror=trace"),
            (0, 1, "warn,rustls=error,cpantuf_mirror=warn"),
            (0, 2, "error,rustls=error,cpantuf_mirror=error"),
            (0, 9, "off,rustls=off,cpantuf_mirror=off"),
        ] {
            let f = filter_directives(verbose, quiet, None);
            assert!(f.starts_with(wanted), "-v x{verbose} -q x{quiet}: {f}");
        }
    }

    #[test]
    fn explicit_filter_replaces_the_flags() {
        assert_eq!(filter_directives(2, 0, Some("hyper=trace")), "hyper=trace");
        assert_eq!(
            filter_directives(0, 0, Some("  ")),
            filter_directives(0, 0, None)
        );
    }

    #[test]
    fn every_level_combination_is_a_valid_filter() {
        for v in 0..3 {
            for q in 0..6 {
                let f = filter_directives(v, q, None);
                assert!(tracing_subscriber::EnvFilter::try_new(&f).is_ok(), "{f}");
            }
        }
    }
}
