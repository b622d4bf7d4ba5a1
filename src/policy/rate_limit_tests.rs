//! The limiter, driven by handed-in instants: never a sleep.

use std::time::{Duration, Instant};

use super::*;
use crate::policy::{Call, CompiledPolicy, Decision};

const POLICY: &str = r#"{
  "version": "1", "default": "deny",
  "tools": {
    "per_agent": { "rate_limit": { "max": 2, "window": 60 } },
    "per_session": { "rate_limit": { "max": 2, "window": 60, "per": "session" } },
    "global": { "rate_limit": { "max": 2, "window": 60, "per": "global" } },
    "odd": { "rate_limit": { "max": 3, "window": 10 } },
    "free": {}
  },
  "agents": { "small": { "rate_limit": { "max": 3, "window": 60 } } }
}"#;

fn policy() -> CompiledPolicy {
    CompiledPolicy::from_json_slice(POLICY.as_bytes()).unwrap()
}

fn limits<'p>(policy: &'p CompiledPolicy, agent: Option<&str>, tool: &str) -> Limits<'p> {
    let call = Call {
        agent,
        method: "tools/call",
        tool: Some(tool),
        arguments: None,
    };
    match policy.decide(&call) {
        Decision::Allow { limits, .. } => limits,
        other => panic!("{tool}: {other:?}"),
    }
}

fn anonymous(session: &str) -> Subject {
    Subject {
        agent: None,
        session: session.into(),
        address: None,
    }
}

fn agent(agent: &str, session: &str) -> Subject {
    Subject {
        agent: Some(agent.into()),
        session: session.into(),
        address: None,
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn max_calls_pass_in_a_burst_and_the_next_is_refused_with_retry_after() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, None, "per_agent");
    let who = anonymous("s1");
    limiter.acquire(&limits, &who, base).unwrap();
    limiter.acquire(&limits, &who, base).unwrap();
    let refused = limiter.acquire(&limits, &who, base).unwrap_err();
    assert_eq!(
        refused,
        LimitExceeded {
            rule: "tools.per_agent".to_owned(),
            max: 2,
            window: secs(60),
            retry_after: secs(30),
        }
    );
    assert_eq!(refused.retry_after_secs(), 30);
    assert_eq!(
        refused.to_string(),
        "rate limit tools.per_agent (2 per 60s) exceeded; retry after 30s"
    );
    // Ten seconds later the wait is ten seconds shorter.
    let later = limiter.acquire(&limits, &who, base + secs(10)).unwrap_err();
    assert_eq!(later.retry_after, secs(20));
}

#[test]
fn one_call_is_earned_back_every_window_over_max() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, None, "per_agent");
    let who = anonymous("s1");
    for _ in 0..2 {
        limiter.acquire(&limits, &who, base).unwrap();
    }
    assert!(limiter.acquire(&limits, &who, base + secs(29)).is_err());
    limiter.acquire(&limits, &who, base + secs(30)).unwrap();
    assert!(limiter.acquire(&limits, &who, base + secs(30)).is_err());
    // After a full window of silence the whole burst is back.
    let rested = base + secs(30) + secs(60);
    limiter.acquire(&limits, &who, rested).unwrap();
    limiter.acquire(&limits, &who, rested).unwrap();
    assert!(limiter.acquire(&limits, &who, rested).is_err());
}

#[test]
fn retry_after_is_the_moment_the_next_call_passes_even_when_the_window_does_not_divide() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, None, "odd");
    let who = anonymous("s1");
    for _ in 0..3 {
        limiter.acquire(&limits, &who, base).unwrap();
    }
    let refused = limiter.acquire(&limits, &who, base).unwrap_err();
    // 10 s / 3, to the nanosecond the limiter counts in.
    assert!(refused.retry_after.abs_diff(secs(10) / 3) <= Duration::from_nanos(3));
    assert_eq!(refused.retry_after_secs(), 4, "rounded up, never too early");
    let almost = base + refused.retry_after - Duration::from_nanos(1);
    assert!(limiter.acquire(&limits, &who, almost).is_err());
    limiter
        .acquire(&limits, &who, base + refused.retry_after)
        .unwrap();
}

#[test]
fn refund_gives_the_unit_back() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, None, "per_agent");
    let who = anonymous("s1");
    limiter.acquire(&limits, &who, base).unwrap();
    let permit = limiter.acquire(&limits, &who, base).unwrap();
    assert!(limiter.acquire(&limits, &who, base).is_err());
    limiter.refund(permit);
    let again = limiter.acquire(&limits, &who, base).unwrap();
    assert!(limiter.acquire(&limits, &who, base).is_err());
    // A refund after the unit has recovered anyway takes nothing from the future.
    limiter.refund(again);
    let rested = base + secs(120);
    limiter.refund(limiter.acquire(&limits, &who, rested).unwrap());
    limiter.acquire(&limits, &who, rested).unwrap();
    limiter.acquire(&limits, &who, rested).unwrap();
    assert!(limiter.acquire(&limits, &who, rested).is_err());
}

#[test]
fn a_known_agent_cannot_reset_its_limit_with_a_new_session() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, Some("bot"), "per_agent");
    limiter.acquire(&limits, &agent("bot", "s1"), base).unwrap();
    limiter.acquire(&limits, &agent("bot", "s2"), base).unwrap();
    assert!(limiter.acquire(&limits, &agent("bot", "s3"), base).is_err());
    // Another agent, and anonymous callers, have their own counters.
    limiter
        .acquire(&limits, &agent("other", "s1"), base)
        .unwrap();
    limiter.acquire(&limits, &anonymous("s1"), base).unwrap();
    limiter.acquire(&limits, &anonymous("s1"), base).unwrap();
    assert!(limiter.acquire(&limits, &anonymous("s1"), base).is_err());
}

#[test]
fn anonymous_callers_share_one_counter_so_a_new_session_does_not_reset_it() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, None, "per_agent");
    limiter.acquire(&limits, &anonymous("s1"), base).unwrap();
    limiter.acquire(&limits, &anonymous("s2"), base).unwrap();
    assert!(limiter.acquire(&limits, &anonymous("s3"), base).is_err());
    // Scope "session" still counts each session.
    let per_session = self::limits(&policy, None, "per_session");
    limiter
        .acquire(&per_session, &anonymous("s4"), base)
        .unwrap();
    limiter
        .acquire(&per_session, &anonymous("s5"), base)
        .unwrap();
}

#[test]
fn anonymous_callers_counted_by_address_share_it_per_address() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, None, "per_agent");
    let from = |session: &str, address: [u8; 4]| Subject {
        address: Some(address.into()),
        ..anonymous(session)
    };
    limiter
        .acquire(&limits, &from("s1", [10, 0, 0, 1]), base)
        .unwrap();
    limiter
        .acquire(&limits, &from("s2", [10, 0, 0, 1]), base)
        .unwrap();
    assert!(limiter
        .acquire(&limits, &from("s3", [10, 0, 0, 1]), base)
        .is_err());
    limiter
        .acquire(&limits, &from("s3", [10, 0, 0, 2]), base)
        .unwrap();
}

#[test]
fn session_scope_counts_each_session_even_for_a_known_agent() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, Some("bot"), "per_session");
    for _ in 0..2 {
        limiter.acquire(&limits, &agent("bot", "s1"), base).unwrap();
    }
    assert!(limiter.acquire(&limits, &agent("bot", "s1"), base).is_err());
    limiter.acquire(&limits, &agent("bot", "s2"), base).unwrap();
}

#[test]
fn global_scope_is_one_counter_for_everyone() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, None, "global");
    limiter.acquire(&limits, &agent("a", "s1"), base).unwrap();
    limiter.acquire(&limits, &anonymous("s2"), base).unwrap();
    assert!(limiter.acquire(&limits, &agent("b", "s3"), base).is_err());
}

#[test]
fn all_or_nothing_when_the_overall_limit_refuses() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let who = agent("small", "s1");
    // The agent section's overall limit: 3 per 60 s across all tools.
    for _ in 0..3 {
        limiter
            .acquire(&limits(&policy, Some("small"), "free"), &who, base)
            .unwrap();
    }
    let refused = limiter
        .acquire(&limits(&policy, Some("small"), "per_agent"), &who, base)
        .unwrap_err();
    assert_eq!(refused.rule, "agents.small.rate_limit");
    // The refused call took nothing from the tool's own limit: seen without the agent section
    // (the same counter, alone), it still has its whole burst of 2.
    let tool_alone = limits(&policy, None, "per_agent");
    limiter.acquire(&tool_alone, &who, base).unwrap();
    limiter.acquire(&tool_alone, &who, base).unwrap();
}

#[test]
fn all_or_nothing_when_the_rules_own_limit_refuses() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let who = agent("small", "s1");
    let tool = limits(&policy, Some("small"), "per_agent");
    limiter.acquire(&tool, &who, base).unwrap();
    limiter.acquire(&tool, &who, base).unwrap();
    assert_eq!(
        limiter.acquire(&tool, &who, base).unwrap_err().rule,
        "tools.per_agent"
    );
    // Two calls used the overall 3; the refused one did not take the third.
    limiter
        .acquire(&limits(&policy, Some("small"), "free"), &who, base)
        .unwrap();
}

#[test]
fn when_both_limits_refuse_the_longer_wait_is_reported() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let who = agent("small", "s1");
    let tool = limits(&policy, Some("small"), "odd"); // 3 per 10 s, overall 3 per 60 s
    for _ in 0..3 {
        limiter.acquire(&tool, &who, base).unwrap();
    }
    let refused = limiter.acquire(&tool, &who, base).unwrap_err();
    assert_eq!(
        (refused.rule.as_str(), refused.retry_after),
        ("agents.small.rate_limit", secs(20))
    );
}

#[test]
fn calls_without_limits_always_pass() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, None, "free");
    assert!(limits.is_empty());
    for _ in 0..1000 {
        limiter.acquire(&limits, &anonymous("s1"), base).unwrap();
    }
    assert_eq!(limiter.counter_count(), 0);
}

#[test]
fn counters_survive_a_reload_of_an_unchanged_rule_and_restart_for_a_changed_one() {
    let limiter = RateLimiter::new();
    let base = Instant::now();
    let who = anonymous("s1");
    let before = policy();
    for _ in 0..2 {
        limiter
            .acquire(&limits(&before, None, "per_agent"), &who, base)
            .unwrap();
    }
    let reloaded = policy();
    assert!(limiter
        .acquire(&limits(&reloaded, None, "per_agent"), &who, base)
        .is_err());
    let raised = CompiledPolicy::from_json_slice(
        POLICY
            .replace(
                r#""max": 2, "window": 60 } },"#,
                r#""max": 5, "window": 60 } },"#,
            )
            .as_bytes(),
    )
    .unwrap();
    limiter
        .acquire(&limits(&raised, None, "per_agent"), &who, base)
        .unwrap();
}

#[test]
fn sweep_drops_only_fully_recovered_counters() {
    let (policy, limiter, base) = (policy(), RateLimiter::new(), Instant::now());
    let limits = limits(&policy, None, "per_agent");
    limiter.acquire(&limits, &agent("a", "s1"), base).unwrap();
    limiter
        .acquire(&limits, &agent("b", "s2"), base + secs(20))
        .unwrap();
    assert_eq!(limiter.counter_count(), 2);
    limiter.sweep(base + secs(29));
    assert_eq!(limiter.counter_count(), 2);
    limiter.sweep(base + secs(30));
    assert_eq!(limiter.counter_count(), 1, "s1 recovered at 30 s");
    limiter.sweep(base + secs(50));
    assert_eq!(limiter.counter_count(), 0);
    // A swept counter starts full again.
    limiter
        .acquire(&limits, &anonymous("s1"), base + secs(50))
        .unwrap();
    limiter
        .acquire(&limits, &anonymous("s1"), base + secs(50))
        .unwrap();
}
