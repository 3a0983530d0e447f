//! `TOOL generate man DIR` and `TOOL generate completions SHELL`.

use clap::{Command, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Subcommand, Debug, Clone)]
pub enum Generate {
    /// Write man pages (section 1) for the tool and each of its commands
    /// into DIR: `TOOL.1`, `TOOL-COMMAND.1`, ...
    Man {
        /// The directory to write the pages into (created if missing).
        dir: PathBuf,
    },
    /// Print the completion script for a shell on stdout (e.g.
    /// `cpantuf generate completions bash > /etc/bash_completion.d/cpantuf`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Runs `what` for the tool whose clap definition is `cmd`.
pub fn run(what: &Generate, cmd: Command) -> std::io::Result<()> {
    match what {
        Generate::Man { dir } => {
            for page in man_pages(dir, cmd)? {
                println!("{}", page.display());
            }
            Ok(())
        }
        Generate::Completions { shell } => {
            let mut cmd = cmd;
            let name = cmd.get_name().to_owned();
            // Into memory first: clap_complete panics on a write error, and a reader
            // that stops early (`| head`) is not an error.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, name, &mut script);
            let mut out = std::io::stdout().lock();
            match out.write_all(&script).and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            }
        }
    }
}

/// Writes the man pages of `cmd` and its visible subcommands into `dir`;
/// returns the files written.
pub fn man_pages(dir: &Path, cmd: Command) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = cmd;
    cmd.build();
    let mut written = vec![write_page(dir, cmd.get_name(), &cmd)?];
    let name = cmd.get_name().to_owned();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        let page = format!("{name}-{}", sub.get_name());
        written.push(write_page(dir, &page, sub)?);
    }
    Ok(written)
}

fn write_page(dir: &Path, name: &str, cmd: &Command) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{name}.1"));
    let mut bytes = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .render(&mut bytes)?;
    std::fs::write(&path, bytes)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> Command {
        Command::new("tool")
            .about("A tool.")
            .subcommand(Command::new("init").about("Trust a repository."))
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn a_man_page_is_written_for_the_tool_and_each_visible_command() {
        let dir = tempfile::tempdir().unwrap();
        let pages = man_pages(dir.path(), tool()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["tool.1", "tool-init.1"]);
        let init = std::fs::read_to_string(&pages[1]).unwrap();
        assert!(init.contains(".TH TOOL-INIT 1"), "{init}");
        assert!(init.contains("Trust a repository."), "{init}");
    }
}
