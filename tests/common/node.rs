//! Node programs from `tests/clients` (the official TypeScript SDK's servers and clients, the
//! conformance suite), run as child processes that die with the test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// How long a Node server may take to say it listens on a loaded machine.
const STARTUP: Duration = Duration::from_secs(60);

pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// `tests/clients/node_modules/PACKAGE/PATH`, or a panic that says how to install it.
pub fn node_module(path: &str) -> PathBuf {
    let file = clients_dir().join("node_modules").join(path);
    assert!(
        file.exists(),
        "{} is missing: run scripts/test, which installs the SDK clients",
        file.display()
    );
    file
}

/// Starts `node tests/clients/SCRIPT` and waits until it prints `listening on URL` on stdout;
/// returns the child (killed when dropped) and the URL. The servers bind port 0 themselves and
/// announce the port they got, so no port is guessed.
pub async fn start_fixture_server(script: &str) -> (Child, String) {
    node_module("@modelcontextprotocol/sdk/package.json");
    let mut child = Command::new("node")
        .arg(clients_dir().join(script))
        .current_dir(clients_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let announced = tokio::time::timeout(STARTUP, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("listening on ") {
                return Some(url.trim().to_owned());
            }
        }
        None
    })
    .await;
    let url = match announced {
        Ok(Some(url)) => url,
        Ok(None) => panic!("{script} exited before it listened (its stderr is above)"),
        Err(_) => panic!("{script} did not say it listens within {STARTUP:?}"),
    };
    // Keep reading: a full stdout pipe would stall the server.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}
