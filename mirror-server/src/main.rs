//! `cpantuf-mirror`: placeholder until the mirror-server issue lands.
fn main() {
    eprintln!("cpantuf-mirror: not built yet");
    std::process::exit(2);
}
