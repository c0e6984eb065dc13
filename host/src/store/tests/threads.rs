//! Threads: a reply updates its parent's count and newest reply; the conversation lists top-level
//! messages, a thread its replies, and `threads` the parents most recently replied to first.

use super::{TestDb, TestResult};
use crate::store::{MessagePage, NewMessage};

backend_tests!(TestDb:
    replies_are_counted_on_the_parent_and_listed_apart,
);

fn replies_are_counted_on_the_parent_and_listed_apart(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    let conv = t.conversation(&["a", "b"])?;
    let first = t.send(&conv.id, "a", "first")?;
    let second = t.send(&conv.id, "b", "second")?;
    let reply = |parent: &str, body: &str, at| {
        let new = NewMessage {
            conversation_id: conv.id.clone(),
            sender_id: "b".into(),
            body: body.into(),
            parent_id: Some(parent.to_owned()),
            ..NewMessage::default()
        };
        t.db.write(|tx| tx.send_message(&new, at)).map(|o| o.value)
    };
    let r1 = reply(&first.id, "r1", 10)?;
    reply(&first.id, "r2", 11)?;
    reply(&second.id, "r3", 12)?;
    assert_eq!(r1.parent_id.as_deref(), Some(first.id.as_str()));

    let parent = t.db.read(|r| r.get_message(&first.id))?;
    assert_eq!((parent.reply_count, parent.last_reply_at), (2, Some(11)));

    let top =
        t.db.read(|r| r.list_messages(&conv.id, &MessagePage::default()))?;
    let bodies: Vec<&str> = top.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["second", "first"], "replies stay in their threads");

    let page = MessagePage {
        thread: Some(first.id.clone()),
        oldest_first: true,
        ..MessagePage::default()
    };
    let thread = t.db.read(|r| r.list_messages(&conv.id, &page))?;
    let bodies: Vec<&str> = thread.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["r1", "r2"]);

    let threads = t.db.read(|r| r.threads(&conv.id, 10))?;
    let parents: Vec<&str> = threads.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        parents,
        ["second", "first"],
        "most recently replied to first"
    );
    Ok(())
}
