//! `cpantuf-sign`: placeholder until the repo-signer issue lands.
fn main() {
    eprintln!("cpantuf-sign: not built yet");
    std::process::exit(2);
}
