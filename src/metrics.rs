//! Prometheus metrics: `GET /metrics` on `--metrics-listen` (and on `--admin-listen`).
//!
//! What was chosen, and why:
//! - `prometheus-client`, with a registry of the gateway's own (no global recorder): tests run
//!   many gateways in one process, and each scrape shows only its gateway.
//! - Off unless asked for: without `--metrics-listen` or `--admin-listen` the gateway holds no
//!   `Metrics` and a call pays nothing for them.
//! - Bounded labels. A tool label is a name from the policy or from the upstream's `tools/list`,
//!   anything else an agent invents is [`OTHER_TOOL`]; an agent label is a configured agent or
//!   `anonymous`; methods outside MCP's own list are `other`. Names are resolved to the one
//!   `Arc<str>` already held for them, so counting a call allocates nothing once its series
//!   exists.
//! - Gauges (sessions, pending approvals, requests in flight) are read from the gateway's state
//!   when scraped, so they cost the call path nothing.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use foldhash::fast::RandomState;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::audit::AuditDecision;
use crate::protocol::method;

/// The tool label of a name neither the policy nor the upstream knows.
pub const OTHER_TOOL: &str = "_other";
/// The agent label of calls without a key.
pub const ANONYMOUS: &str = "anonymous";
/// At most this many tool names learnt from the upstream's lists become labels.
const MAX_LISTED_TOOLS: usize = 1024;

/// The content type of a scrape (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value held once and shared by every series that carries it.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Name(Arc<str>);

impl EncodeLabelValue for Name {
    /// prometheus-client writes label values as they are: quotes, backslashes and line ends in
    /// a tool name must be escaped here (OpenMetrics ABNF, `escaped-string`).
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    tool: Name,
    decision: &'static str,
    agent: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// How an upstream exchange ended, as `mcpgate_upstream_duration_seconds` labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamOutcome {
    /// A 2xx answer (JSON, a stream, or accepted).
    Answered,
    /// An HTTP error status.
    Refused,
    /// No usable answer: unreachable, broken, unreadable.
    Failed,
    TimedOut,
}

impl UpstreamOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
        }
    }
}

/// What the gateway's state says at scrape time.
pub struct Gauges {
    pub sessions: usize,
    pub approvals_pending: usize,
    pub in_flight: usize,
    /// Connections each worker loop serves, by worker index.
    pub worker_connections: Vec<usize>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~65 s: a cached answer to a slow tool.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    upstream_duration: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    request_duration: Histogram,
    reloads: Family<ResultLabels, Counter>,
    upstream_errors: Family<KindLabels, Counter>,
    sessions: Gauge,
    approvals_pending: Gauge,
    in_flight: Gauge,
    worker_connections: Family<WorkerLabels, Gauge>,
    /// Tool names that may be labels: the policy's rules and what the upstream listed.
    tools: ArcSwap<Names>,
    /// Configured agents, and `anonymous`.
    agents: Names,
    anonymous: Name,
    other_tool: Name,
    no_tool: Name,
}

type Names = HashSet<Arc<str>, RandomState>;

impl Metrics {
    pub fn new<'a>(agents: impl IntoIterator<Item = &'a Arc<str>>) -> Self {
        let mut registry = Registry::with_prefix("mcpgate");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Messages and approvals by what became of them (the audit record's decision)",
            decisions.clone(),
        );
        let upstream_duration =
            Family::<UpstreamLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register_with_unit(
            "upstream_duration",
            "Time the upstream took to answer (its headers; all of a JSON answer)",
            Unit::Seconds,
            upstream_duration.clone(),
        );
        let request_duration = latency_histogram();
        registry.register_with_unit(
            "request_duration",
            "Time from a POST /mcp arriving to its response's head leaving, upstream included",
            Unit::Seconds,
            request_duration.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads, applied or rejected",
            reloads.clone(),
        );
        let upstream_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Calls the upstream failed, by kind of failure",
            upstream_errors.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions", "Sessions open", sessions.clone());
        let approvals_pending = Gauge::default();
        registry.register(
            "approvals_pending",
            "Approvals waiting for a person",
            approvals_pending.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Requests in the gateway now (within sessions)",
            in_flight.clone(),
        );
        let worker_connections = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "worker_connections",
            "Connections each worker loop serves now (agents' connections are spread evenly)",
            worker_connections.clone(),
        );
        // Both results are shown from the start, so `increase()` sees the first one.
        for result in ["applied", "rejected"] {
            let _ = reloads.get_or_create(&ResultLabels { result });
        }
        let anonymous = Name(Arc::from(ANONYMOUS));
        let mut known: Names = agents.into_iter().cloned().collect();
        known.insert(anonymous.0.clone());
        Self {
            registry,
            decisions,
            upstream_duration,
            request_duration,
            reloads,
            upstream_errors,
            sessions,
            approvals_pending,
            in_flight,
            worker_connections,
            tools: ArcSwap::from_pointee(Names::default()),
            agents: known,
            anonymous,
            other_tool: Name(Arc::from(OTHER_TOOL)),
            no_tool: Name(Arc::from("")),
        }
    }

    /// The policy's tool names become the known tools (with what the upstream listed so far).
    pub fn policy_tools<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut tools = (**self.tools.load()).clone();
        tools.extend(names.into_iter().map(Arc::from));
        self.tools.store(Arc::new(tools));
    }

    /// Tool names the upstream listed become known, up to [`MAX_LISTED_TOOLS`]. Copies the set
    /// only when a name is new.
    pub fn listed_tools<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let current = self.tools.load();
        let new: Vec<&str> = names
            .into_iter()
            .filter(|name| !current.contains(*name))
            .collect();
        if new.is_empty() || current.len() >= MAX_LISTED_TOOLS {
            return;
        }
        let mut tools = (**current).clone();
        for name in new.into_iter().take(MAX_LISTED_TOOLS - current.len()) {
            tools.insert(Arc::from(name));
        }
        self.tools.store(Arc::new(tools));
    }

    /// Counts one decision.
    pub fn decision(&self, tool: Option<&str>, decision: AuditDecision, agent: Option<&str>) {
        let tool = match tool {
            None => self.no_tool.clone(),
            Some(name) => match self.tools.load().get(name) {
                Some(known) => Name(known.clone()),
                None => self.other_tool.clone(),
            },
        };
        let agent = match agent.and_then(|name| self.agents.get(name)) {
            Some(known) => Name(known.clone()),
            None => self.anonymous.clone(),
        };
        let labels = DecisionLabels {
            tool,
            decision: decision.as_str(),
            agent,
        };
        self.decisions.get_or_create(&labels).inc();
    }

    /// One exchange with the upstream: how long it took and how it ended; a failure's kind.
    pub fn upstream(
        &self,
        message_method: Option<&str>,
        outcome: UpstreamOutcome,
        took: Duration,
        error_kind: Option<&'static str>,
    ) {
        let labels = UpstreamLabels {
            method: method_label(message_method),
            outcome: outcome.as_str(),
        };
        self.upstream_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some(kind) = error_kind {
            self.upstream_errors
                .get_or_create(&KindLabels { kind })
                .inc();
        }
    }

    pub fn request(&self, took: Duration) {
        self.request_duration.observe(took.as_secs_f64());
    }

    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "rejected" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// The scrape: every metric in the OpenMetrics text format.
    pub fn encode(&self, gauges: Gauges) -> String {
        let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.sessions.set(to_i64(gauges.sessions));
        self.approvals_pending.set(to_i64(gauges.approvals_pending));
        self.in_flight.set(to_i64(gauges.in_flight));
        for (worker, open) in (0u64..).zip(gauges.worker_connections) {
            self.worker_connections
                .get_or_create(&WorkerLabels { worker })
                .set(to_i64(open));
        }
        let mut text = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// A method's label: MCP's own methods by name, anything else `other` (agents choose methods).
fn method_label(name: Option<&str>) -> &'static str {
    let Some(name) = name else {
        return "response";
    };
    method::POLICED
        .iter()
        .chain(&[method::INITIALIZED, method::PROGRESS])
        .find(|known| **known == name)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_tools_and_unknown_agents_share_one_label_each() {
        let bot: Arc<str> = Arc::from("bot");
        let metrics = Metrics::new([&bot]);
        metrics.policy_tools(["get_price"]);
        for invented in ["a", "b", "c"] {
            metrics.decision(Some(invented), AuditDecision::UnknownTool, Some("mallory"));
        }
        metrics.decision(Some("get_price"), AuditDecision::Allow, Some("bot"));
        metrics.listed_tools(["listed_tool"]);
        metrics.decision(Some("listed_tool"), AuditDecision::Deny, None);
        let text = metrics.encode(Gauges {
            sessions: 2,
            approvals_pending: 1,
            in_flight: 0,
            worker_connections: vec![3, 2],
        });
        assert!(text.contains(
            r#"mcpgate_decisions_total{tool="_other",decision="unknown_tool",agent="anonymous"} 3"#
        ), "{text}");
        assert!(
            text.contains(r#"mcpgate_worker_connections{worker="1"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{tool="get_price",decision="allow",agent="bot"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"{tool="listed_tool",decision="deny",agent="anonymous"} 1"#),
            "{text}"
        );
        assert!(text.contains("mcpgate_sessions 2"), "{text}");
        assert!(!text.contains("mallory"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new([]);
        metrics.policy_tools(["a\"b\\c\nd"]);
        metrics.decision(Some("a\"b\\c\nd"), AuditDecision::Allow, None);
        let text = metrics.encode(Gauges {
            sessions: 0,
            approvals_pending: 0,
            in_flight: 0,
            worker_connections: vec![3, 2],
        });
        assert!(text.contains(r#"tool="a\"b\\c\nd""#), "{text}");
    }

    #[test]
    fn methods_outside_mcp_are_one_label() {
        assert_eq!(method_label(Some("tools/call")), "tools/call");
        assert_eq!(method_label(Some("made/up")), "other");
        assert_eq!(method_label(None), "response");
    }
}
