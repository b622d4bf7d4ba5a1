//! The upstream as the command line names it (`--upstream URL` or `--upstream-command`), and
//! asking it something outside any agent's session: `policy check --upstream` and `policy pin`.

use clap::Args;

use crate::config::Limits;
use crate::upstream::{
    HttpUpstream, StdioUpstream, Upstream, UpstreamCommand, UpstreamConfig, UpstreamError,
};

/// `--upstream-command` split into words, with its `--upstream-env` variables.
pub fn command(line: &str, env: &[String]) -> Result<UpstreamCommand, String> {
    let mut words = shlex::split(line)
        .filter(|words| !words.is_empty())
        .ok_or_else(|| format!("--upstream-command {line:?}: not a command (unbalanced quotes?)"))?
        .into_iter();
    let program = words.next().unwrap_or_default();
    let env = env
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((name, value)) => Ok((name.to_owned(), value.to_owned())),
            None => std::env::var(spec)
                .map(|value| (spec.clone(), value))
                .map_err(|_| {
                    format!("--upstream-env {spec}: the gateway's environment has no {spec}")
                }),
        })
        .collect::<Result<_, _>>()?;
    Ok(UpstreamCommand {
        program,
        args: words.collect(),
        env,
    })
}

/// The upstream a `policy` command asks: an MCP endpoint, or a stdio program it starts for the
/// question and stops after it.
#[derive(Debug, Args)]
pub struct UpstreamTarget {
    /// The upstream MCP endpoint.
    #[arg(
        long,
        required_unless_present = "upstream_command",
        conflicts_with = "upstream_command"
    )]
    pub upstream: Option<reqwest::Url>,
    /// Instead of --upstream: the MCP server as a program speaking stdio, started for this
    /// command and stopped after it (split into words as a shell would; no shell runs it). Its
    /// environment is PATH and the --upstream-env variables only, as under `serve`.
    #[arg(long)]
    pub upstream_command: Option<String>,
    /// An environment variable for the --upstream-command program: 'NAME=VALUE', or 'NAME' to
    /// pass on this command's own value. Repeatable.
    #[arg(long = "upstream-env", requires = "upstream_command")]
    pub upstream_env: Vec<String>,
}

impl UpstreamTarget {
    /// How errors name the upstream: the URL without credentials or query, or the program.
    pub fn shown(&self) -> String {
        match (&self.upstream, &self.upstream_command) {
            (Some(url), _) => crate::upstream::redacted(url),
            (None, Some(line)) => format!("stdio:{line}"),
            (None, None) => "no upstream".into(),
        }
    }

    /// Every tool definition the upstream lists, for `policy pin`.
    pub fn tool_definitions(&self) -> Result<Vec<serde_json::Value>, String> {
        self.ask(async |upstream| upstream.list_tools().await)
    }

    /// The tool names the upstream lists, for `policy check`.
    pub fn tool_names(&self) -> Result<Vec<String>, String> {
        self.ask(async |upstream| upstream.list_tool_names().await)
    }

    /// Asks the upstream on a runtime of its own. A stdio program is started by the question's
    /// initialize and stopped when its session ends (`Upstream::list_tools` ends it); one left
    /// running by a failure is killed when the runtime drops it.
    fn ask<T>(
        &self,
        ask: impl AsyncFnOnce(&Upstream) -> Result<T, UpstreamError>,
    ) -> Result<T, String> {
        let defaults = Limits::default();
        let upstream = match (&self.upstream, &self.upstream_command) {
            (_, Some(line)) => Upstream::Stdio(StdioUpstream::new(
                command(line, &self.upstream_env)?,
                defaults.max_event_bytes,
                defaults.upstream_timeout,
            )),
            (Some(url), None) => Upstream::Http(
                HttpUpstream::new(UpstreamConfig {
                    url: url.clone(),
                    connect_timeout: defaults.upstream_connect_timeout,
                    timeout: defaults.upstream_timeout,
                    max_body_bytes: defaults.max_body_bytes,
                    max_event_bytes: defaults.max_event_bytes,
                    headers: Vec::new(),
                    ca: None,
                })
                .map_err(|e| e.to_string())?,
            ),
            (None, None) => {
                return Err("give the upstream with --upstream or --upstream-command".into())
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the tokio runtime starts");
        runtime.block_on(async { ask(&upstream).await.map_err(|e| e.to_string()) })
    }
}
