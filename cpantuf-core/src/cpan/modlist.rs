//! `modules/03modlist.data`: the retired module list.
//!
//! PAUSE stopped maintaining the registered module list and now publishes a
//! fixed stub that CPAN.pm still downloads and evaluates (in a `Safe`
//! compartment). PAUSE's indexer rewrites the file only when the stub's body
//! changes, so in practice its `Date:` stays at the day the stub was
//! introduced. The text below is what PAUSE's `rewrite03` produces: its
//! template with leading white space and blank lines removed from the body.

use chrono::{DateTime, Utc};

/// The body after the header: a Perl package whose `data` is empty.
pub const MODLIST_BODY: &str = "package CPAN::Modulelist;\nsub data {\nreturn {};\n}\n1;\n";

/// The `Written-By:` PAUSE uses in all its index files.
pub const PAUSE_WRITTEN_BY: &str = "PAUSE version 1.005";

/// The full `03modlist.data` text, uncompressed, as PAUSE writes it.
///
/// `date` goes into the `Date:` header as an HTTP date.
pub fn modlist_data(written_by: &str, date: DateTime<Utc>) -> String {
    format!(
        "File:        03modlist.data\n\
         Description: This was once the \"registered module list\" but has been retired.\n        \
         No replacement is planned.\n\
         Modcount:    0\n\
         Written-By:  {written_by}\n\
         Date:        {}\n\
         \n\
         {MODLIST_BODY}",
        date.format("%a, %d %b %Y %H:%M:%S GMT")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stub_text() {
        let d = Utc.with_ymd_and_hms(2014, 4, 3, 4, 17, 11).unwrap();
        assert_eq!(
            modlist_data(PAUSE_WRITTEN_BY, d),
            "File:        03modlist.data\n\
Description: This was once the \"registered module list\" but has been retired.\n\
\x20       No replacement is planned.\n\
Modcount:    0\n\
Written-By:  PAUSE version 1.005\n\
Date:        Thu, 03 Apr 2014 04:17:11 GMT\n\
\n\
package CPAN::Modulelist;\n\
sub data {\n\
return {};\n\
}\n\
1;\n"
        );
    }
}
