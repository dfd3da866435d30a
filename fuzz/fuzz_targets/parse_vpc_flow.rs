#![no_main]
//! The vpc_flow parser returns a value or an error for any bytes, never panics.
libfuzzer_sys::fuzz_target!(|data: &[u8]| stormwatch_fuzz::parse_lines(
    stormwatch::parse::Format::VpcFlow,
    data
));
