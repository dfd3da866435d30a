#![no_main]
//! Whole files (delivery files, payloads, JSON lines, raw lines) are split without panicking,
//! and every record they give parses or is rejected, never panics.

use libfuzzer_sys::fuzz_target;
use stormwatch::files::records_of;
use stormwatch::parse::Parser;
use stormwatch::record::Interner;

fuzz_target!(|data: &[u8]| {
    let mut names = Interner::default();
    let mut parser = Parser::new();
    for r in records_of(data, "fuzz.log", &mut names) {
        let _ = parser.parse(&r.record);
    }
});
