//! Presence: a user is online while any node holds a connection of theirs; the flip is reported once.

use super::{TestDb, TestResult, ids};

backend_tests!(TestDb:
    the_first_connection_anywhere_and_the_last_one_flip_a_user,
    a_restarting_node_lets_go_of_its_users,
    a_nodes_rows_are_counted_and_listed,
    contacts_are_the_users_sharing_a_conversation,
);

fn the_first_connection_anywhere_and_the_last_one_flip_a_user(t: TestDb) -> TestResult {
    t.users(&["a"])?;
    let up = t.db.write(|tx| tx.set_presence("a", "n1", true, 10))?;
    assert!(up.changed && up.presence.online);
    assert_eq!(up.presence.last_seen_at, Some(10));
    let again = t.db.write(|tx| tx.set_presence("a", "n2", true, 11))?;
    assert!(
        !again.changed && again.presence.online,
        "already online on n1"
    );
    let half = t.db.write(|tx| tx.set_presence("a", "n1", false, 12))?;
    assert!(!half.changed && half.presence.online, "still on n2");
    let down = t.db.write(|tx| tx.set_presence("a", "n2", false, 13))?;
    assert!(down.changed && !down.presence.online);
    let seen = t.db.read(|r| r.presence_of(&ids(&["a", "nobody"])))?;
    assert_eq!(seen.len(), 1, "unknown ids are left out");
    assert_eq!((seen[0].online, seen[0].last_seen_at), (false, Some(13)));
    let twice = t.db.write(|tx| tx.set_presence("a", "n2", false, 14))?;
    assert!(!twice.changed);
    Ok(())
}

fn a_restarting_node_lets_go_of_its_users(t: TestDb) -> TestResult {
    t.users(&["a", "b"])?;
    t.db.write(|tx| tx.set_presence("a", "n1", true, 1))?;
    t.db.write(|tx| tx.set_presence("b", "n1", true, 1))?;
    t.db.write(|tx| tx.set_presence("b", "n2", true, 1))?;
    let gone = t.db.write(|tx| tx.clear_node_presence("n1", 5))?;
    let offline: Vec<&str> = gone.iter().map(|c| c.presence.user_id.as_str()).collect();
    assert_eq!(offline, ["a"], "b is still on n2");
    let now = t.db.read(|r| r.presence_of(&ids(&["a", "b"])))?;
    assert_eq!(
        now.iter().map(|p| p.online).collect::<Vec<_>>(),
        [false, true]
    );
    Ok(())
}

fn a_nodes_rows_are_counted_and_listed(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    t.db.write(|tx| tx.set_presence("b", "n1", true, 1))?;
    t.db.write(|tx| tx.set_presence("a", "n1", true, 1))?;
    t.db.write(|tx| tx.set_presence("c", "n2", true, 1))?;
    assert_eq!(t.db.read(|r| r.node_presence_count("n1"))?, 2);
    assert_eq!(
        t.db.read(|r| r.node_presence_users("n1"))?,
        ids(&["a", "b"])
    );
    assert_eq!(t.db.read(|r| r.node_presence_count("n3"))?, 0);
    Ok(())
}

fn contacts_are_the_users_sharing_a_conversation(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c", "d"])?;
    t.conversation(&["a", "b"])?;
    t.conversation(&["a", "c", "b"])?;
    t.conversation(&["c", "d"])?;
    assert_eq!(t.db.read(|r| r.contacts_of("a"))?, ids(&["b", "c"]));
    assert_eq!(t.db.read(|r| r.contacts_of("d"))?, ids(&["c"]));

    // A conversation past the limit is a channel: its members are not each other's contacts.
    let crowd: Vec<String> = (0..crate::presence::MAX_PRESENCE_CONVERSATION)
        .map(|i| format!("m{i}"))
        .collect();
    let crowd: Vec<&str> = crowd.iter().map(String::as_str).collect();
    t.users(&crowd)?;
    let mut members = crowd.clone();
    members.push("d");
    t.conversation(&members)?;
    assert_eq!(t.db.read(|r| r.contacts_of("d"))?, ids(&["c"]));
    let mut at_limit = crowd[1..].to_vec();
    at_limit.push("d");
    t.conversation(&at_limit)?;
    assert_eq!(
        t.db.read(|r| r.contacts_of("d"))?.len(),
        100,
        "c and 99 members"
    );
    Ok(())
}
