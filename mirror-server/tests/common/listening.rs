//! Starting a `cpantuf-mirror serve` process and reading which address it listens on.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// Spawns `cmd` with stderr piped; returns the process, the address of its `kind` listener
/// (`http`, `https`, `admin`) and the stderr lines logged before that one. Later lines are
/// drained so the process never blocks on a full pipe.
pub fn spawn_listening(cmd: &mut Command, kind: &str) -> (Child, SocketAddr, Vec<String>) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let marker = format!("listening: {kind} ");
    let mut before = Vec::new();
    let addr = loop {
        let line = lines.next().expect("serve exited").unwrap();
        if let Some((_, a)) = line.split_once(&marker) {
            break a.trim().parse().unwrap();
        }
        before.push(line);
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr, before)
}
