//! `mcpgate approvals …`: work the approval queue of a running gateway from a terminal.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// The gateway's base URL (where /admin is served: --listen, or --admin-listen).
    #[arg(
        long,
        env = "MCPGATE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: reqwest::Url,
    /// The gateway's --admin-token.
    #[arg(
        long,
        env = "MCPGATE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,
    #[command(subcommand)]
    pub command: ApprovalsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals, pending first.
    List {
        /// Print the JSON the admin API answers instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending call: it goes through (once).
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a pending call: the agent is told the reason.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

pub fn run(args: ApprovalsArgs) -> ExitCode {
    // The same value the gateway takes: NAME=TOKEN sends TOKEN.
    let token = args
        .admin_token
        .as_deref()
        .map(|spec| crate::config::Reviewer::from_spec(spec).token);
    let Some(token) = token else {
        eprintln!("set MCPGATE_ADMIN_TOKEN (or --admin-token) to the gateway's --admin-token");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(call(&args, &token)) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("mcpgate approvals: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn call(args: &ApprovalsArgs, token: &str) -> Result<String, String> {
    let client = reqwest::Client::new();
    let base = args.url.as_str().trim_end_matches('/');
    let request = match &args.command {
        ApprovalsCommand::List { .. } => client.get(format!("{base}/admin/approvals")),
        ApprovalsCommand::Approve { id, reason } => client
            .post(format!("{base}/admin/approvals/{id}/approve"))
            .json(&json!({ "reason": reason })),
        ApprovalsCommand::Reject { id, reason } => client
            .post(format!("{base}/admin/approvals/{id}/reject"))
            .json(&json!({ "reason": reason })),
    };
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("cannot reach {base}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let detail = body["error"].as_str().unwrap_or("no detail");
        return Err(match status.as_u16() {
            401 => format!("the admin token was refused (HTTP 401): {detail}"),
            404 if matches!(args.command, ApprovalsCommand::List { .. }) => {
                "no admin API at that URL: is the gateway started with --admin-token?".into()
            }
            _ => format!("HTTP {status}: {detail}"),
        });
    }
    Ok(match &args.command {
        ApprovalsCommand::List { json: true } => format!("{body:#}"),
        ApprovalsCommand::List { json: false } => table(&body),
        _ => format!(
            "{} {}: {}",
            body["id"].as_str().unwrap_or_default(),
            body["status"].as_str().unwrap_or_default(),
            body["tool"].as_str().unwrap_or_default()
        ),
    })
}

fn table(approvals: &Value) -> String {
    let rows = approvals.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return "no approvals".into();
    }
    let mut out = format!(
        "{:<22} {:<9} {:<30} {:<14} ARGUMENTS",
        "ID", "STATUS", "TOOL", "AGENT"
    );
    for a in rows {
        out.push_str(&format!(
            "\n{:<22} {:<9} {:<30} {:<14} {}",
            a["id"].as_str().unwrap_or_default(),
            a["status"].as_str().unwrap_or_default(),
            a["tool"].as_str().unwrap_or_default(),
            a["agent"].as_str().unwrap_or("anonymous"),
            a["arguments"]
        ));
    }
    out
}
