//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stormwatch")
}

/// Runs the binary with an isolated data dir and config dir.
pub fn run(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("STORMWATCH_DATA_DIR", data_dir)
        .env("XDG_CONFIG_HOME", data_dir.join("config"))
        .env_remove("STORMWATCH_CONFIG")
        .output()
        .expect("run stormwatch")
}

/// The operation (`X-Amz-Target`) and JSON body of a request an AWS JSON-protocol client sent to
/// a test HTTP client.
pub fn aws_json_request(
    req: &http::Request<aws_smithy_types::body::SdkBody>,
) -> (String, serde_json::Value) {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = req
        .body()
        .bytes()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (target, body)
}

/// An error the way an AWS JSON-protocol service answers one, for test HTTP clients.
pub fn aws_json_error(
    status: u16,
    kind: &str,
    message: &str,
) -> http::Response<aws_smithy_types::body::SdkBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(aws_smithy_types::body::SdkBody::from(
            serde_json::json!({"__type": kind, "message": message}).to_string(),
        ))
        .unwrap()
}

/// stdout must be exactly one JSON document.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stormwatch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A private tmux server (its own socket) driving the real binary, killed on drop.
pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            // A detached server still wants to know what terminal it emulates for its clients.
            .env(
                "TERM",
                std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into()),
            )
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is required for this test: run ./scripts/test.sh, which installs it")
    }

    /// Starts `cmd` in a detached 160x50 session named `sw` with the given `KEY=VALUE` environment.
    pub fn start(&self, env: &[String], cmd: &[String]) {
        let mut args: Vec<&str> = vec!["new-session", "-d", "-s", "sw", "-x", "160", "-y", "50"];
        for e in env {
            args.extend(["-e", e.as_str()]);
        }
        args.extend(cmd.iter().map(String::as_str));
        let out = self.cmd(&args);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "sw"]).stdout).into_owned()
    }

    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// A moto_server (PyPI `moto[server]`, installed by scripts/test.sh) on a free loopback port;
/// killed when dropped.
pub struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn start_moto() -> (Moto, String) {
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
