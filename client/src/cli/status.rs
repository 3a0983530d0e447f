//! `cpantuf status`: what this home trusts and knows, without the network.

use super::Ctx;
use anyhow::Result;
use cpantuf_client::local_mirror::sanitize;
use cpantuf_client::mirror_log::parse_time;
use cpantuf_client::status::{gather, MirrorStatus, RoleStatus, Status};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the report as one JSON object (fields: home, verified, problem,
    /// root {version, expires, roles [{role, threshold, keys [{keyid,
    /// scheme}]}]}, roles [{role, version, expires, expires_in_seconds}],
    /// stored_metadata_files, mirrors [{url, last_answered, last_failed,
    /// last_error}], cache {files, bytes}).
    #[arg(long)]
    json: bool,
}

/// Exit 0 when the stored metadata verifies now; 1 when it does not
/// (expired since the last refresh, or damaged): run `cpantuf refresh`.
pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mut s = ctx.session()?;
    let status = gather(&mut s)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_text(&status);
    }
    Ok(if status.verified { 0 } else { 1 })
}

fn print_text(st: &Status) {
    println!("home: {}", st.home);
    match &st.problem {
        None => println!("stored metadata: verified now (no mirror contacted)"),
        Some(p) => println!(
            "stored metadata: NOT valid now ({}); run `cpantuf refresh`",
            sanitize(p)
        ),
    }
    println!(
        "trusted root: version {}, expires {}",
        st.root.version, st.root.expires
    );
    for r in &st.root.roles {
        let keys: Vec<String> = r
            .keys
            .iter()
            .map(|k| format!("{} ({})", k.keyid, sanitize(&k.scheme)))
            .collect();
        println!(
            "  {:<10} {} of {}: {}",
            sanitize(&r.role),
            r.threshold,
            r.keys.len(),
            keys.join(", ")
        );
    }
    println!("roles:");
    for r in &st.roles {
        println!("  {}", role_line(r));
    }
    println!(
        "  ({} metadata files stored, delegated roles included)",
        st.stored_metadata_files
    );
    println!("mirrors (in the order tried):");
    for m in &st.mirrors {
        println!("  {}", mirror_line(m));
    }
    println!(
        "cache: {} files, {}",
        st.cache.files,
        bytesize::ByteSize::b(st.cache.bytes).display().iec()
    );
}

fn role_line(r: &RoleStatus) -> String {
    match (r.version, &r.expires, r.expires_in_seconds) {
        (Some(v), Some(e), Some(secs)) => {
            let when = if secs > 0 {
                format!("in {}", roughly(secs.unsigned_abs()))
            } else {
                format!("EXPIRED {} ago", roughly(secs.unsigned_abs()))
            };
            format!("{:<10} version {v}, expires {e} ({when})", r.role)
        }
        _ => format!("{:<10} never fetched", r.role),
    }
}

fn mirror_line(m: &MirrorStatus) -> String {
    let ago = |t: &str| {
        parse_time(t).map_or_else(
            || t.to_owned(),
            |t| {
                let secs = (chrono::Utc::now() - t).num_seconds().max(0);
                format!("{} ago", roughly(secs.unsigned_abs()))
            },
        )
    };
    let mut line = sanitize(&m.url);
    match &m.record.last_answered {
        Some(t) => line.push_str(&format!(": last answered {}", ago(t))),
        None => line.push_str(": never answered"),
    }
    if let (Some(t), Some(why)) = (&m.record.last_failed, &m.record.last_error) {
        line.push_str(&format!("; last failed {}: {}", ago(t), sanitize(why)));
    }
    line
}

/// A duration to the two units people read (days and hours, hours and
/// minutes, ...).
fn roughly(secs: u64) -> String {
    let unit = match secs {
        s if s >= 86_400 => 3_600,
        s if s >= 3_600 => 60,
        _ => 1,
    };
    humantime::format_duration(Duration::from_secs(secs / unit * unit)).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_are_shown_to_two_units() {
        assert_eq!(super::roughly(3 * 86_400 + 5 * 3_600 + 59), "3days 5h");
        assert_eq!(super::roughly(2 * 3_600 + 61), "2h 1m");
        assert_eq!(super::roughly(42), "42s");
    }
}
