#![no_main]
//! The lambda parser returns a value or an error for any bytes, never panics.
libfuzzer_sys::fuzz_target!(|data: &[u8]| stormwatch_fuzz::parse_lines(
    stormwatch::parse::Format::Lambda,
    data
));
