#![no_main]
//! The template miner takes any text without panicking, and every id it hands out resolves.

use libfuzzer_sys::fuzz_target;
use stormwatch::template::Miner;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut miner = Miner::new();
    for line in text.lines() {
        let id = miner.mine(line);
        let _ = miner.template(id);
    }
});
