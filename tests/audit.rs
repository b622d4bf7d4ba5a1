//! The audit log's writer: a stalled disk holds the answers, never the event loop, and never
//! lets an answer leave before its record.

mod common;

use common::process::{write_policy, Process};
use common::*;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

const POLICY: &str = r#"{
  "version": "1",
  "default": "deny",
  "tools": {
    "get_price": {},
    "get_order_book": {"action": "deny", "reason": "order books are off today"}
  }
}"#;

/// The audit "file" is a FIFO that the test fills, so the gateway's next write blocks as on a
/// disk that stopped answering; with one worker, a write on the event loop would stop it whole.
#[tokio::test]
async fn a_stalled_audit_file_holds_the_answers_and_not_the_event_loop() {
    let (_simulator, upstream) = start_simulator(Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(&dir, POLICY);
    let fifo = dir.path().join("audit.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut audit = pipe::OpenOptions::new().open_receiver(&fifo).unwrap();

    let mut gateway = Process::serve(
        &upstream,
        &policy,
        &["--worker-threads", "1", "--audit", fifo.to_str().unwrap()],
    );
    gateway.serving().await;
    let mut client = gateway.client().initialized().await;

    // Fill the pipe to the last byte: the gateway's next record cannot be written.
    let filler = pipe::OpenOptions::new().open_sender(&fifo).unwrap();
    filler.writable().await.unwrap();
    let mut written = 0;
    loop {
        match filler.try_write(&[b'\n'; 4096]) {
            Ok(n) => written += n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(err) => panic!("filling the audit pipe: {err}"),
        }
    }
    assert!(written > 0);

    let refused = tokio::spawn(async move {
        client
            .call_tool("get_order_book", json!({"symbol": "BTCUSDT"}))
            .await
    });
    // Logged just after its record is queued: the record is in the writer's hands now.
    let logged = gateway.json_line("message", "call refused").await;
    assert_eq!(logged["tool"], "get_order_book", "{logged}");

    let health = reqwest::get(format!("{}/healthz", gateway.base))
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        200,
        "the event loop answers while the disk is stalled"
    );
    assert!(
        !refused.is_finished(),
        "the refusal left before its audit record was written"
    );

    // The disk comes back: the record is written, then the answer leaves.
    let mut records = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    while !String::from_utf8_lossy(&records).contains("\"tool\":\"get_order_book\"") {
        let n = audit.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the audit pipe closed before the record came");
        records.extend_from_slice(&chunk[..n]);
    }
    let answer = refused.await.unwrap();
    assert!(answer.is_tool_error());
    assert!(
        answer.text.contains("order books are off today"),
        "{}",
        answer.text
    );
}
