//! Roles and ownership: the creator owns, roles change (with `is_admin` following), ownership moves
//! and promotes, an owner who leaves leaves no owner.

use super::{TestDb, TestResult, ids};
use crate::model::Role;
use crate::store::{NewConversation, StoreError};

backend_tests!(TestDb: roles_change_and_is_admin_follows, ownership_moves_and_promotes);

fn roles_change_and_is_admin_follows(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    let conv = t.conversation(&["a", "b", "c"])?;
    assert_eq!(
        conv.owner_id.as_deref(),
        Some("a"),
        "the first admin owns it"
    );
    let a = t.db.read(|r| r.participant(&conv.id, "a"))?;
    assert_eq!(a.map(|p| (p.role, p.is_admin)), Some((Role::Admin, true)));

    let change =
        t.db.write(|tx| tx.set_role(&conv.id, "b", Role::Moderator, 10))?;
    assert_eq!(
        (
            change.old_role,
            change.participant.role,
            change.participant.is_admin
        ),
        (Role::Member, Role::Moderator, false)
    );
    let change =
        t.db.write(|tx| tx.set_role(&conv.id, "c", Role::Admin, 11))?;
    assert_eq!(
        (change.old_role, change.participant.is_admin),
        (Role::Member, true)
    );
    let conversation = t.db.read(|r| r.get_conversation(&conv.id))?;
    assert_eq!(
        (
            conversation.admin_ids,
            conversation.moderator_ids,
            conversation.updated_at
        ),
        (ids(&["a", "c"]), ids(&["b"]), 11)
    );
    let roles: Vec<(String, Role)> =
        t.db.read(|r| r.participants(&conv.id))?
            .into_iter()
            .map(|p| (p.user.id, p.role))
            .collect();
    let expected = [
        ("a", Role::Admin),
        ("b", Role::Moderator),
        ("c", Role::Admin),
    ]
    .map(|(id, role)| (id.to_owned(), role));
    assert_eq!(roles, expected);

    // The same role again changes nothing, not even the time.
    let same =
        t.db.write(|tx| tx.set_role(&conv.id, "b", Role::Moderator, 20))?;
    assert_eq!(same.old_role, Role::Moderator);
    assert_eq!(t.db.read(|r| r.get_conversation(&conv.id))?.updated_at, 11);

    let outsider =
        t.db.write(|tx| tx.set_role(&conv.id, "zed", Role::Admin, 12));
    assert!(matches!(
        outsider,
        Err(StoreError::NotFound {
            what: "participant",
            ..
        })
    ));
    let missing =
        t.db.write(|tx| tx.set_role("c_missing", "a", Role::Admin, 12));
    assert!(matches!(
        missing,
        Err(StoreError::NotFound {
            what: "conversation",
            ..
        })
    ));
    Ok(())
}

fn ownership_moves_and_promotes(t: TestDb) -> TestResult {
    t.users(&["a", "b", "c"])?;
    // The owner asked for is kept when an admin, else the first admin owns it.
    let owned_by_b = NewConversation {
        participant_ids: ids(&["a", "b", "c"]),
        admin_ids: ids(&["a", "b"]),
        owner_id: Some("b".into()),
        ..Default::default()
    };
    let conv =
        t.db.write(|tx| tx.create_conversation(&owned_by_b, 1))?
            .value;
    assert_eq!(conv.owner_id.as_deref(), Some("b"));
    let not_admin = NewConversation {
        owner_id: Some("c".into()),
        ..owned_by_b.clone()
    };
    let other =
        t.db.write(|tx| tx.create_conversation(&not_admin, 1))?
            .value;
    assert_eq!(other.owner_id.as_deref(), Some("a"));

    let change = t.db.write(|tx| tx.transfer_owner(&conv.id, "c", 5))?;
    assert_eq!(change.old_owner.as_deref(), Some("b"));
    assert_eq!(change.conversation.owner_id.as_deref(), Some("c"));
    assert_eq!(change.conversation.admin_ids, ids(&["a", "b", "c"]));
    let promoted = change.promoted.map(|p| (p.participant.user.id, p.old_role));
    assert_eq!(promoted, Some(("c".to_owned(), Role::Member)));
    // To an admin: no promotion.
    let change = t.db.write(|tx| tx.transfer_owner(&conv.id, "a", 6))?;
    assert_eq!(
        (change.old_owner.as_deref(), change.promoted),
        (Some("c"), None)
    );
    let outsider = t.db.write(|tx| tx.transfer_owner(&conv.id, "zed", 7));
    assert!(matches!(
        outsider,
        Err(StoreError::NotFound {
            what: "participant",
            ..
        })
    ));

    // The owner leaves: no owner; another member leaving changes nothing.
    assert!(t.db.write(|tx| tx.remove_participant(&conv.id, "b", 8))?);
    assert_eq!(
        t.db.read(|r| r.get_conversation(&conv.id))?
            .owner_id
            .as_deref(),
        Some("a")
    );
    assert!(t.db.write(|tx| tx.remove_participant(&conv.id, "a", 9))?);
    assert_eq!(t.db.read(|r| r.get_conversation(&conv.id))?.owner_id, None);
    Ok(())
}
