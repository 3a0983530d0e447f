//! `cpantuf mirror --to DIR`: a verified file:// mirror.

use super::Ctx;
use anyhow::{Context, Result};
use cpantuf_client::session::{MAILRC_PATH, MODLIST_PATH, PACKAGES_PATH};
use cpantuf_client::store::write_atomic;
use cpantuf_core::cpan::CpanPath;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Destination directory (created); usable as `cpanm --from file://DIR`.
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
}

fn dest_of(root: &Path, p: &CpanPath) -> PathBuf {
    let mut d = root.to_owned();
    for s in p.segments() {
        d.push(s);
    }
    d
}

fn copy_verified(src: &Path, dest: &Path) -> Result<()> {
    let bytes = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_atomic(dest, &bytes).with_context(|| format!("writing {}", dest.display()))
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mut s = ctx.session()?;
    s.refresh()?;
    let index = s.packages()?;
    let dists: BTreeSet<CpanPath> = index
        .dists()
        .into_iter()
        .map(|d| d.cpan_path().clone())
        .collect();
    let bar = if ctx.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(dists.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}").expect("valid template"),
    );
    let mut authors = BTreeSet::new();
    for d in &dists {
        bar.set_message(d.as_str().to_owned());
        let (file, _) = s.verified(d)?;
        copy_verified(&file, &dest_of(&args.to, d))?;
        if let Ok(cpantuf_core::cpan::Owner::Author(a)) = cpantuf_core::cpan::owner(d) {
            authors.insert(a);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    for a in &authors {
        let dir = a.author_dir();
        let body = s.checksums(a, &dir)?;
        let p = dest_of(&args.to, &dir.join("CHECKSUMS")?);
        write_atomic(&p, &body).with_context(|| format!("writing {}", p.display()))?;
    }
    // The index goes last: a client reading the mirror mid-way sees the old
    // index (or none), never an index naming files not yet written.
    for p in [MAILRC_PATH, MODLIST_PATH, PACKAGES_PATH] {
        let path = CpanPath::new(p).expect("constant path");
        let (file, _) = s.verified(&path)?;
        copy_verified(&file, &dest_of(&args.to, &path))?;
    }
    if !ctx.quiet {
        println!(
            "cpantuf: verified mirror of {} distribution(s) from {} author(s) at {}",
            dists.len(),
            authors.len(),
            args.to.display()
        );
    }
    Ok(0)
}
