//! The current (0.3.0) records as the frozen 0.2.0 ones, for components built against 0.2.0 or 0.1.0 (whose
//! records are the 0.2.0 ones): hook arguments on the way in, a decision on the way out, and what the
//! `chat` import returns.
//!
//! 0.3.0 took the participant lists out of the calls: a hook no longer gets `participants`, and a
//! `conversation` no longer lists `participant-ids` and `admin-ids`. An old component still expects them,
//! so its calls are given the conversation's participants as they are at call time (read through the
//! plugin's services, [`crate::plugins::powers::HostServices::participants`]); only old components pay
//! for that read. Everything else maps field for field; fields 0.2.0 does not have (roles beyond admin,
//! the owner, thread fields) are dropped, and a moderator is an ordinary member to an old component.
//!
//! The translations live together in this one file because they are one decision (how an old contract is
//! served by the new one) and disappear together when 0.2.0 does.

use crate::plugins::bindings::types as new;
use crate::plugins::bindings::v0_2::chathooks::plugin::types as old;

/// A user.
pub(crate) fn user(u: &new::User) -> old::User {
    old::User {
        id: u.id.clone(),
        name: u.name.clone(),
        metadata: u.metadata.clone(),
    }
}

/// A list of users.
pub(crate) fn users(us: &[new::User]) -> Vec<old::User> {
    us.iter().map(user).collect()
}

fn origin(o: &new::Origin) -> old::Origin {
    match o {
        new::Origin::User => old::Origin::User,
        new::Origin::Plugin(p) => old::Origin::Plugin(old::PluginOrigin {
            name: p.name.clone(),
            depth: p.depth,
        }),
    }
}

/// A message (without its thread fields).
pub(crate) fn message(m: &new::Message) -> old::Message {
    old::Message {
        id: m.id.clone(),
        conversation_id: m.conversation_id.clone(),
        sender: user(&m.sender),
        body: m.body.clone(),
        metadata: m.metadata.clone(),
        seq: m.seq,
        created_at: m.created_at,
        edited_at: m.edited_at,
        deleted: m.deleted,
        origin: origin(&m.origin),
    }
}

/// A draft (without its parent).
pub(crate) fn draft(d: &new::Draft) -> old::Draft {
    old::Draft {
        conversation_id: d.conversation_id.clone(),
        sender: user(&d.sender),
        body: d.body.clone(),
        metadata: d.metadata.clone(),
        origin: origin(&d.origin),
    }
}

/// A participant: admin or not.
pub(crate) fn participant(p: &new::Participant) -> old::Participant {
    old::Participant {
        user: user(&p.user),
        is_admin: p.role == new::Role::Admin,
        unread_count: p.unread_count,
        last_read_message_id: p.last_read_message_id.clone(),
    }
}

/// A list of participants.
pub(crate) fn participants(ps: &[new::Participant]) -> Vec<old::Participant> {
    ps.iter().map(participant).collect()
}

/// A conversation, with the participant and admin ids taken from `participants`.
pub(crate) fn conversation(c: &new::Conversation, ps: &[new::Participant]) -> old::Conversation {
    old::Conversation {
        id: c.id.clone(),
        title: c.title.clone(),
        admin_ids: ps
            .iter()
            .filter(|p| p.role == new::Role::Admin)
            .map(|p| p.user.id.clone())
            .collect(),
        participant_ids: ps.iter().map(|p| p.user.id.clone()).collect(),
        participant_count: c.participant_count,
        distinct_by_participants: c.distinct_by_participants,
        metadata: c.metadata.clone(),
        last_message_id: c.last_message_id.clone(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// A receipt.
pub(crate) fn receipt(r: &new::Receipt) -> old::Receipt {
    old::Receipt {
        message_id: r.message_id.clone(),
        user: user(&r.user),
        delivered_at: r.delivered_at,
        read_at: r.read_at,
    }
}

/// A reaction.
pub(crate) fn reaction(r: &new::Reaction) -> old::Reaction {
    old::Reaction {
        message_id: r.message_id.clone(),
        user: user(&r.user),
        emoji: r.emoji.clone(),
        created_at: r.created_at,
    }
}

/// Typing changes.
pub(crate) fn typing_events(es: &[new::TypingEvent]) -> Vec<old::TypingEvent> {
    es.iter()
        .map(|e| old::TypingEvent {
            user: user(&e.user),
            state: match e.state {
                new::TypingState::Begin => old::TypingState::Begin,
                new::TypingState::Pause => old::TypingState::Pause,
                new::TypingState::Finished => old::TypingState::Finished,
            },
            at: e.at,
        })
        .collect()
}

/// An event context.
pub(crate) fn context(c: &new::EventContext) -> old::EventContext {
    old::EventContext {
        event_id: c.event_id,
        attempt: c.attempt,
        at: c.at,
    }
}

/// An old component's decision, in the current type (0.2.0 has no `hold`).
pub(crate) fn decision(d: old::Decision) -> new::Decision {
    match d {
        old::Decision::Allow => new::Decision::Allow,
        old::Decision::Reject(reason) => new::Decision::Reject(reason),
        old::Decision::Modify(m) => new::Decision::Modify(new::Modification {
            body: m.body,
            metadata: m.metadata,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, role: new::Role) -> new::Participant {
        new::Participant {
            user: new::User {
                id: id.into(),
                name: id.into(),
                metadata: "{}".into(),
            },
            role,
            unread_count: 2,
            last_read_message_id: None,
        }
    }

    #[test]
    fn an_old_conversation_lists_participants_and_admins_from_the_members() {
        let c = new::Conversation {
            id: "c1".into(),
            title: None,
            owner_id: Some("ann".into()),
            participant_count: 3,
            distinct_by_participants: false,
            metadata: "{}".into(),
            last_message_id: None,
            created_at: 1,
            updated_at: 2,
        };
        let ps = [
            person("ann", new::Role::Admin),
            person("bob", new::Role::Moderator),
            person("cy", new::Role::Member),
        ];
        let old = conversation(&c, &ps);
        assert_eq!(old.participant_ids, ["ann", "bob", "cy"]);
        assert_eq!(old.admin_ids, ["ann"]);
        let olds = participants(&ps);
        assert!(olds[0].is_admin && !olds[1].is_admin && !olds[2].is_admin);
    }
}
