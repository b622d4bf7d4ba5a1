use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

fn ask<'a>(arguments: &'a Value, agent: Option<&'a str>) -> Ask<'a> {
    Ask {
        agent,
        session: "s1",
        tool: "subscribe_to_trade_stream",
        arguments,
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
