use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

fn ask<'a>(arguments: &'a Value, agent: Option<&'a str>) -> Ask<'a> {
    Ask {
        agent,
        session: "s1",
        tool: "subscribe_to_trade_stream",
        arguments,
        other_params: None,
        rule: "tools.subscribe_to_trade_stream",
        reason: "opens a stream",
        timeout: Duration::from_secs(300),
    }
}

fn waiting(ticket: Ticket) -> (Approval, bool, watch::Receiver<Status>) {
    match ticket {
        Ticket::Waiting {
            approval,
            created,
            decided,
        } => (approval, created, decided),
        Ticket::Granted(_) => panic!("expected to wait"),
        Ticket::Refused(why) => panic!("expected to wait, not {why}"),
    }
}

#[test]
fn an_identical_pending_call_joins_the_same_approval() {
    let approvals = Approvals::default();
    let args = json!({"symbol": "BTCUSDT"});
    let now = Instant::now();
    let (first, created, _) = waiting(approvals.request(&ask(&args, Some("bot")), now, |_| {}));
    assert!(created);
    let (second, created, _) = waiting(approvals.request(&ask(&args, Some("bot")), now, |_| {}));
    assert!(!created);
    assert_eq!(first.id, second.id);
    assert_eq!(approvals.list().len(), 1);
}

#[test]
fn a_new_approval_is_shown_to_on_queued_before_anyone_can_list_or_decide_it() {
    let approvals = Approvals::default();
    let args = json!({"symbol": "BTCUSDT"});
    let now = Instant::now();
    let mut queued = Vec::new();
    approvals.request(&ask(&args, None), now, |approval| {
        queued.push(approval.id.clone());
        // The queue's lock is held: a reviewer's list (and so any decision) waits for this.
        assert!(approvals.entries.try_lock().is_err());
    });
    approvals.request(&ask(&args, None), now, |approval| {
        queued.push(approval.id.clone())
    });
    assert_eq!(
        queued.len(),
        1,
        "an identical pending call queues nothing new"
    );
    assert_eq!(approvals.list()[0].id, queued[0]);
}

#[test]
fn an_approval_is_used_once_by_the_identical_call_and_not_by_another() {
    let approvals = Approvals::default();
    let args = json!({"symbol": "BTCUSDT"});
    let now = Instant::now();
    let (approval, _, mut decided) =
        waiting(approvals.request(&ask(&args, Some("bot")), now, |_| {}));
    approvals
        .decide(&approval.id, true, "admin", None, now)
        .unwrap();
    assert_eq!(*decided.borrow_and_update(), Status::Approved);

    let other = json!({"symbol": "ETHUSDT"});
    let (_, created, _) = waiting(approvals.request(&ask(&other, Some("bot")), now, |_| {}));
    assert!(created, "other arguments are not covered");

    assert!(matches!(
        approvals.request(&ask(&args, Some("bot")), now, |_| {}),
        Ticket::Granted(_)
    ));
    let (_, created, _) = waiting(approvals.request(&ask(&args, Some("bot")), now, |_| {}));
    assert!(
        created,
        "single use: the next identical call needs a new approval"
    );
}

#[test]
fn a_held_call_uses_its_granted_approval_once() {
    let approvals = Approvals::default();
    let args = json!({});
    let now = Instant::now();
    let (approval, _, _) = waiting(approvals.request(&ask(&args, None), now, |_| {}));
    assert_eq!(
        approvals.use_granted(&approval.id, now).err(),
        Some(UseError::NotGranted(approval.id.clone())),
        "not granted yet"
    );
    approvals
        .decide(&approval.id, true, "admin", None, now)
        .unwrap();
    assert_eq!(
        approvals.use_granted(&approval.id, now).unwrap().status,
        Status::Used
    );
    assert_eq!(
        approvals.use_granted(&approval.id, now).err(),
        Some(UseError::NotGranted(approval.id.clone())),
        "used once"
    );
}

#[test]
fn rejections_and_decisions_on_decided_approvals() {
    let approvals = Approvals::default();
    let args = json!({});
    let now = Instant::now();
    let (approval, _, decided) = waiting(approvals.request(&ask(&args, None), now, |_| {}));
    let rejected = approvals
        .decide(&approval.id, false, "admin", Some("not today".into()), now)
        .unwrap();
    assert_eq!(rejected.decision_reason.as_deref(), Some("not today"));
    assert_eq!(*decided.borrow(), Status::Rejected);
    assert_eq!(
        approvals
            .decide(&approval.id, true, "admin", None, now)
            .err(),
        Some(DecideError::NotPending {
            id: approval.id.clone(),
            status: Status::Rejected
        })
    );
    assert!(matches!(
        approvals.decide("apr_nope", true, "admin", None, now),
        Err(DecideError::NotFound(_))
    ));
}

#[test]
fn approvals_expire_pending_or_granted() {
    let approvals = Approvals::default();
    let args = json!({});
    let now = Instant::now();
    let (pending, _, decided) = waiting(approvals.request(&ask(&args, None), now, |_| {}));
    let later = now + Duration::from_secs(301);
    assert_eq!(approvals.expire_due(later).len(), 1);
    assert_eq!(*decided.borrow(), Status::Expired);
    assert_eq!(
        approvals
            .decide(&pending.id, true, "admin", None, later)
            .err(),
        Some(DecideError::NotPending {
            id: pending.id.clone(),
            status: Status::Expired
        })
    );

    let (granted, _, _) = waiting(approvals.request(&ask(&args, None), later, |_| {}));
    approvals
        .decide(&granted.id, true, "admin", None, later)
        .unwrap();
    let much_later = later + Duration::from_secs(301);
    let (_, created, _) = waiting(approvals.request(&ask(&args, None), much_later, |_| {}));
    assert!(created, "an expired grant does not authorise the call");
}

#[test]
fn only_the_asked_session_can_answer_an_elicitation() {
    let approvals = Approvals::default();
    let args = json!({});
    let now = Instant::now();
    let (approval, _, _) = waiting(approvals.request(&ask(&args, None), now, |_| {}));
    assert_eq!(
        approvals
            .decide_by_elicitation(&approval.id, "s1", true, None, now)
            .err(),
        Some(DecideError::NotAsked(approval.id.clone())),
        "nobody was asked yet"
    );
    approvals.mark_elicited(&approval.id);
    assert_eq!(
        approvals
            .decide_by_elicitation(&approval.id, "s2", true, None, now)
            .err(),
        Some(DecideError::NotAsked(approval.id.clone())),
        "another session"
    );
    let decided = approvals
        .decide_by_elicitation(&approval.id, "s1", true, None, now)
        .unwrap();
    assert_eq!(decided.decided_by.as_deref(), Some("elicitation"));
}

#[test]
fn the_list_puts_pending_first() {
    let approvals = Approvals::default();
    let now = Instant::now();
    let a = json!({"n": 1});
    let b = json!({"n": 2});
    let (first, _, _) = waiting(approvals.request(&ask(&a, None), now, |_| {}));
    waiting(approvals.request(&ask(&b, None), now, |_| {}));
    approvals
        .decide(&first.id, false, "admin", None, now)
        .unwrap();
    let list = approvals.list();
    assert_eq!(list[0].status, Status::Pending);
    assert_eq!(list[1].status, Status::Rejected);
}

#[test]
fn one_caller_may_have_only_so_many_calls_pending() {
    let approvals = Approvals::new(QueueLimits {
        max_pending_per_caller: 2,
        ..QueueLimits::default()
    });
    let now = Instant::now();
    let calls: Vec<Value> = (0..3).map(|n| json!({ "n": n })).collect();
    waiting(approvals.request(&ask(&calls[0], None), now, |_| {}));
    let (second, _, _) = waiting(approvals.request(&ask(&calls[1], None), now, |_| {}));
    assert!(matches!(
        approvals.request(&ask(&calls[2], None), now, |_| panic!("not queued")),
        Ticket::Refused(NotQueued::TooManyPending { max: 2 })
    ));
    let (_, created, _) = waiting(approvals.request(&ask(&calls[1], None), now, |_| {}));
    assert!(
        !created,
        "an identical call still joins its pending approval"
    );
    let other_session = Ask {
        session: "s2",
        ..ask(&calls[2], None)
    };
    waiting(approvals.request(&other_session, now, |_| {}));
    waiting(approvals.request(&ask(&calls[2], Some("bot")), now, |_| {}));
    approvals
        .decide(&second.id, false, "admin", None, now)
        .unwrap();
    waiting(approvals.request(&ask(&calls[2], None), now, |_| {}));
}

#[test]
fn a_held_call_larger_than_the_cap_is_not_queued() {
    let approvals = Approvals::new(QueueLimits {
        max_held_call_bytes: 100,
        ..QueueLimits::default()
    });
    let now = Instant::now();
    let big = json!({ "blob": "x".repeat(100) });
    assert!(matches!(
        approvals.request(&ask(&big, None), now, |_| panic!("not queued")),
        Ticket::Refused(NotQueued::TooLarge {
            bytes: 111,
            max: 100
        })
    ));
    let small = json!({ "blob": "x" });
    let meta = format!(r#"{{"_meta":{{"pad":"{}"}}}}"#, "x".repeat(80));
    let with_meta = Ask {
        other_params: Some(&meta),
        ..ask(&small, None)
    };
    assert!(matches!(
        approvals.request(&with_meta, now, |_| panic!("not queued")),
        Ticket::Refused(NotQueued::TooLarge { .. })
    ));
    assert!(approvals.list().is_empty());
}

#[test]
fn finished_approvals_let_go_of_the_call_and_only_so_many_are_kept() {
    let approvals = Approvals::new(QueueLimits {
        keep_finished: 2,
        max_pending_per_caller: 10,
        ..QueueLimits::default()
    });
    let now = Instant::now();
    let args = json!({ "blob": "x".repeat(1000) });
    let (expiring, _, _) = waiting(approvals.request(&ask(&args, None), now, |_| {}));
    assert_eq!(expiring.arguments_json.as_deref().map(str::len), Some(1011));
    let later = now + Duration::from_secs(301);
    let expired = approvals.expire_due(later);
    assert_eq!(
        expired[0].arguments, args,
        "the audit record still gets the call"
    );
    let kept = approvals.get(&expiring.id).unwrap();
    assert_eq!(kept.status, Status::Expired);
    assert_eq!((kept.arguments, kept.arguments_json), (Value::Null, None));

    for n in 0..3 {
        let args = json!({ "n": n });
        let (approval, _, _) = waiting(approvals.request(&ask(&args, None), later, |_| {}));
        approvals
            .decide(&approval.id, false, "admin", None, later)
            .unwrap();
        assert_eq!(approvals.get(&approval.id).unwrap().arguments_json, None);
    }
    approvals.expire_due(later);
    assert_eq!(
        approvals.list().len(),
        2,
        "only the newest finished ones are kept"
    );
    approvals.expire_due(later + Duration::from_secs(3600 + 301));
    assert!(approvals.list().is_empty());
}
