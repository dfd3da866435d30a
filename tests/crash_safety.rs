//! Durability: a process writing labels is killed with SIGKILL at random moments; every label it
//! had acknowledged (printed after SQLite's commit returned) is in the store afterwards, and the
//! database passes `PRAGMA integrity_check`. Prints rounds and losses.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: u32 = 200;

#[test]
fn acknowledged_labels_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: Vec<i64> = Vec::new();
    // Deterministic "random" kill points (xorshift), between 0 and ~12 ms after the first ack.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..ROUNDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut child = Command::new(env!("CARGO_BIN_EXE_stormwatch"))
            .args(["label-writer", "--count", "100000"])
            .env("STORMWATCH_DATA_DIR", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(id) = line.trim().parse::<i64>()
                    && tx.send(id).is_err()
                {
                    break;
                }
            }
        });
        // Wait for the first acknowledgement, then kill at a random moment after it.
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the writer acknowledged a label");
        acknowledged.push(first);
        let until = Instant::now() + Duration::from_micros(x % 12_000);
        while Instant::now() < until {
            while let Ok(id) = rx.try_recv() {
                acknowledged.push(id);
            }
            std::thread::yield_now();
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        let _ = reader.join();
        // Everything printed before the kill was acknowledged.
        while let Ok(id) = rx.try_recv() {
            acknowledged.push(id);
        }
    }
    let db = stormwatch::store::reader(dir.path()).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let mut stmt = db.prepare("SELECT id FROM labels").unwrap();
    let stored: std::collections::HashSet<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lost = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .count();
    eprintln!(
        "rounds {ROUNDS}, acknowledged {}, stored {}, lost {lost}, integrity {integrity}",
        acknowledged.len(),
        stored.len()
    );
    assert_eq!(integrity, "ok");
    assert_eq!(lost, 0);
    assert!(acknowledged.len() >= ROUNDS as usize);
}
