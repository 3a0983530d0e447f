//! The logging convention of the three tools, on stderr: the tool's own
//! crates at `warn` (`-q` errors only, `-v` info, `-vv` debug); other crates'
//! logs (rustls, ureq, hyper, ...) only at `-vv`, since their lines speak of
//! internals the user cannot act on; `CPANTUF_LOG` (tracing `EnvFilter`
//! syntax) replaces both. Colour only on a terminal, never into a log file.

/// The filter `-v`/`-q` choose for the crates named in `own`.
pub fn filter(own: &[&str], verbose: u8, quiet: bool) -> String {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let others = if verbose >= 2 { "debug" } else { "off" };
    let mut f = others.to_owned();
    for crate_name in own {
        f.push_str(&format!(",{crate_name}={level}"));
    }
    f
}

/// Installs the stderr logger for a tool whose own crates are `own`.
pub fn init(own: &[&str], verbose: u8, quiet: bool) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CPANTUF_LOG")
                .unwrap_or_else(|_| filter(own, verbose, quiet).into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    /// rustls' own ERROR lines reached users; they are off unless -vv.
    #[test]
    fn other_crates_logs_are_off_unless_very_verbose() {
        let f = super::filter(&["tool", "tool_core"], 0, false);
        assert_eq!(f, "off,tool=warn,tool_core=warn");
        assert!(super::filter(&["tool"], 0, true).contains("tool=error"));
        assert!(super::filter(&["tool"], 2, false).starts_with("debug,"));
        assert!(super::filter(&["tool"], 1, false).contains("tool=info"));
    }
}
