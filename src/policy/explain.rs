//! Decisions in words, for `mcpgate policy explain` and for logs.

use std::fmt;

use super::{Call, CompiledPolicy, Decision};

impl CompiledPolicy {
    /// One line: the decision, the deciding rule, and its reason or limits, e.g.
    /// `allow by tools.get_price (limits: tools.get_price 10/1s per agent; rate_limit 600/60s per agent)`.
    pub fn explain(&self, call: &Call<'_>) -> String {
        match self.decide(call) {
            Decision::UnknownTool => format!(
                "unknown tool: {:?} is hidden or not allowed by the policy; the agent is told \
                 \"Unknown tool: {}\"",
                call.tool.unwrap_or_default(),
                call.tool.unwrap_or_default()
            ),
            decision => decision.to_string(),
        }
    }
}

impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Lifecycle => f.write_str("allow: lifecycle method, always passes, no limits"),
            Decision::Allow { rule, limits } => write!(f, "allow by {rule} ({limits})"),
            Decision::Deny { rule, reason } => write!(f, "deny by {rule}: {reason}"),
            Decision::UnknownTool => f.write_str(
                "unknown tool: hidden or not allowed by the policy; the agent is told it does not exist",
            ),
            Decision::InvalidArguments { rule, reason } => {
                write!(f, "invalid arguments for {rule}: {reason}")
            }
            Decision::Approval {
                rule,
                reason,
                timeout,
                via,
                limits,
            } => write!(
                f,
                "approval by {rule}: {reason} (asked via {}, expires after {}s; {limits})",
                via.as_str(),
                timeout.as_secs()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy() -> CompiledPolicy {
        CompiledPolicy::from_json_slice(
            br#"{"version":"1","default":"deny","rate_limit":{"max":600,"window":60},
                 "tools":{"get_price":{"rate_limit":{"max":10,"window":1}},
                          "get_order_book":{"arguments":{"properties":{"depth":{"maximum":100}}}},
                          "heavy":{"action":"deny","reason":"too heavy"},
                          "stream":{"action":"approval","reason":"opens a stream","timeout":60}},
                 "methods":{"resources/read":{}}}"#,
        )
        .unwrap()
    }

    fn tool_call<'a>(tool: &'a str, arguments: Option<&'a serde_json::Value>) -> Call<'a> {
        Call {
            agent: None,
            method: "tools/call",
            tool: Some(tool),
            arguments,
        }
    }

    #[test]
    fn explains_each_kind_of_decision_in_one_line() {
        let policy = policy();
        let big = json!({"depth": 500});
        let cases = [
            (
                tool_call("get_price", None),
                "allow by tools.get_price (limits: tools.get_price 10/1s per agent; rate_limit 600/60s per agent)",
            ),
            (tool_call("heavy", None), "deny by tools.heavy: too heavy"),
            (
                tool_call("get_order_book", Some(&big)),
                "invalid arguments for tools.get_order_book: /depth: 500 is greater than the maximum of 100",
            ),
            (
                tool_call("stream", None),
                "approval by tools.stream: opens a stream (asked via queue, expires after 60s; \
                 limits: rate_limit 600/60s per agent)",
            ),
            (
                tool_call("nope", None),
                "unknown tool: \"nope\" is hidden or not allowed by the policy; the agent is told \"Unknown tool: nope\"",
            ),
        ];
        for (call, expected) in cases {
            assert_eq!(policy.explain(&call), expected);
        }
        let ping = Call {
            agent: None,
            method: "ping",
            tool: None,
            arguments: None,
        };
        assert_eq!(
            policy.explain(&ping),
            "allow: lifecycle method, always passes, no limits"
        );
        let read = Call {
            method: "resources/read",
            ..ping
        };
        assert_eq!(
            policy.explain(&read),
            "allow by methods.resources/read (limits: rate_limit 600/60s per agent)"
        );
    }
}
