//! `cpantuf-mirror check-config`: build the `serve` configuration (command line and
//! `--config` file), open the root and load the certificate exactly as `serve` would, and
//! print the result without listening on anything.

use crate::serve;

/// Exit status of a configuration that would not serve.
pub const EXIT_BAD_CONFIG: u8 = 2;

/// Prints what `serve` would use and returns 0, or prints one error line and returns 2.
pub fn run(args: serve::Args) -> u8 {
    match serve::check(args) {
        Ok(description) => {
            print!("{description}");
            println!("cpantuf-mirror: configuration ok");
            0
        }
        Err(e) => {
            eprintln!("cpantuf-mirror: configuration error: {e:#}");
            EXIT_BAD_CONFIG
        }
    }
}
