//! `demo --to-cloudwatch` into moto_server, then `tail --headless --json` over every group: each
//! event arrives exactly once (the test prints the counts), and the demo's incidents are found.
//! moto_server (PyPI `moto[server]`) is installed by scripts/test.sh.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto() -> (Moto, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server is required: run ./scripts/test.sh, which installs moto[server]");
    let moto = Moto(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "moto_server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (moto, format!("http://127.0.0.1:{port}"))
}

fn aws(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
}

fn run(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = aws(Command::new(common::bin()).args(args))
        .env("STORMWATCH_DATA_DIR", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("HOME", dir)
        .output()
        .unwrap();
    common::json(&out)
}

#[test]
fn every_event_put_into_moto_is_tailed_exactly_once() {
    let (_moto, url) = start_moto();
    let dir = tempfile::tempdir().unwrap();
    let put = run(
        dir.path(),
        &[
            "demo",
            "--to-cloudwatch",
            "--endpoint-url",
            &url,
            "--seed",
            "5",
            "--baseline-hours",
            "1",
            "--json",
        ],
    );
    let events = put["events"].as_u64().unwrap();
    let groups: Vec<String> = put["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    assert!(groups.len() >= 6 && events > 50_000, "{put}");

    let mut args: Vec<String> = [
        "tail",
        "--endpoint-url",
        &url,
        "--since",
        "2d",
        "--headless",
        "--json",
        "--exit-when-idle",
        "4s",
        "--tps",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for g in &groups {
        args.push("--group".into());
        args.push(g.clone());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = run(dir.path(), &argv);
    let per_group = report["groups"].as_array().unwrap();
    let dups: u64 = per_group
        .iter()
        .map(|g| g["duplicates_dropped"].as_u64().unwrap())
        .sum();
    let errors: u64 = per_group
        .iter()
        .map(|g| g["errors"].as_u64().unwrap())
        .sum();
    eprintln!(
        "put {events} events in {} groups; tailed {}; duplicates dropped {dups}; errors {errors}",
        groups.len(),
        report["events"]
    );
    assert_eq!(report["events"].as_u64().unwrap(), events, "{report}");
    assert_eq!(report["lines"].as_u64().unwrap(), events);
    assert!(
        !report["incidents"].as_array().unwrap().is_empty(),
        "the demo's incidents are found"
    );
}
