//! The `mcpgate` binary run as operators run it: spawned, its JSON logs read line by line.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::{free_local_addr, Client};

/// A spawned `mcpgate` whose stderr lines are read as they come.
pub struct Process {
    pub child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    pub base: String,
}

impl Process {
    /// `mcpgate serve` on a free port with JSON logs, `args` added.
    pub fn serve(upstream: &str, policy: &std::path::Path, args: &[&str]) -> Self {
        let addr = free_local_addr();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"));
        command
            .args([
                "serve",
                "--log-format",
                "json",
                "--listen",
                &addr.to_string(),
            ])
            .args(["--upstream", upstream, "--policy"])
            .arg(policy)
            .args(args);
        Self::spawn(command, format!("http://{addr}"))
    }

    pub fn spawn(mut command: tokio::process::Command, base: String) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::unbounded_channel();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines, base }
    }

    /// The next stderr line that `wanted` accepts; panics with what came when none does.
    pub async fn line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = self.lines.recv().await {
                if wanted(&line) {
                    return Some(line);
                }
                seen.push(line);
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("no such log line; the process said:\n{}", seen.join("\n")),
        }
    }

    /// The next JSON log line whose `key` is `value`.
    pub async fn json_line(&mut self, key: &str, value: &str) -> Value {
        let line = self
            .line(|line| serde_json::from_str::<Value>(line).is_ok_and(|l| l[key] == value))
            .await;
        serde_json::from_str(&line).unwrap()
    }

    pub async fn serving(&mut self) {
        self.json_line("message", "mcpgate serving MCP on /mcp")
            .await;
    }

    pub fn client(&self) -> Client {
        Client::new(&format!("{}/mcp", self.base))
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    pub async fn exits_ok(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the gateway stops")
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

pub fn write_policy(dir: &tempfile::TempDir, policy: &str) -> std::path::PathBuf {
    let path = dir.path().join("policy.json");
    std::fs::write(&path, policy).unwrap();
    path
}
