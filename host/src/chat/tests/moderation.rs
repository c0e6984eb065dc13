//! Roles, bans and blocks at the chat layer: what one operation writes to the log (a ban's
//! `member.removed` before its `member.banned`, one transaction), what a refused operation leaves (nothing),
//! and the refusals that only a plugin's bot meets (joining while banned).

use super::{create, event_kinds, send};
use crate::chat::bans::BanUser;
use crate::chat::roles::SetRole;
use crate::chat::testkit::Kit;
use crate::chat::*;
use crate::model::Role;

#[tokio::test]
async fn a_ban_writes_removal_then_ban_and_a_refusal_writes_nothing() {
    let kit = Kit::new(&[]);
    let [a, b, c] = <[_; 3]>::try_from(kit.users(&["a", "b", "c"]).await).unwrap();
    let chat = &kit.chat;
    let conv = chat
        .create_conversation(&a, create(&["b", "c"]))
        .await
        .unwrap();
    let before = event_kinds(&kit).len();
    let ban = |user: &str| BanUser {
        user_id: user.into(),
        reason: Some("spam".into()),
    };

    let (made, new) = chat.ban_user(&a, &conv.id, ban("c")).await.unwrap();
    assert!(new);
    assert_eq!((made.user.id.as_str(), made.banned_by.as_str()), ("c", "a"));
    let kinds: Vec<String> = event_kinds(&kit)[before..]
        .iter()
        .map(|(_, k)| k.clone())
        .collect();
    assert_eq!(kinds, ["member.removed", "member.banned"]);
    assert!(
        !chat
            .get_conversation(&a, &conv.id)
            .await
            .unwrap()
            .participant_ids
            .contains(&c.id)
    );

    // Refused: a member banning, banning oneself, adding the banned user back. The log does not move.
    let logged = event_kinds(&kit).len();
    assert!(matches!(
        chat.ban_user(&b, &conv.id, ban("a")).await,
        Err(ChatError::Forbidden(_))
    ));
    assert!(matches!(
        chat.ban_user(&a, &conv.id, ban("a")).await,
        Err(ChatError::Forbidden(_))
    ));
    let refused = chat.add_participants(&a, &conv.id, vec!["c".into()]).await;
    assert!(matches!(
        &refused,
        Err(ChatError::Banned { conversation_id, user_ids }) if *conversation_id == conv.id && user_ids == &["c"]
    ));
    assert_eq!(event_kinds(&kit).len(), logged);

    // A plugin's bot is kept out too.
    let bot = chat.bot_user_blocking("bot.helper", "helper").unwrap();
    chat.ban_user(&a, &conv.id, ban("bot.helper"))
        .await
        .unwrap();
    assert!(matches!(
        chat.join_bot_blocking(&bot, &conv.id),
        Err(ChatError::Banned { .. })
    ));
    chat.unban_user(&a, &conv.id, "bot.helper").await.unwrap();
    chat.join_bot_blocking(&bot, &conv.id).unwrap();
}

#[tokio::test]
async fn moderators_moderate_and_blocks_stop_one_to_one_sends() {
    let kit = Kit::new(&[]);
    let [a, b, c] = <[_; 3]>::try_from(kit.users(&["a", "b", "c"]).await).unwrap();
    let chat = &kit.chat;
    let group = chat
        .create_conversation(&a, create(&["b", "c"]))
        .await
        .unwrap();
    let moderator = SetRole {
        role: Role::Moderator,
    };
    let b_now = chat.set_role(&a, &group.id, "b", moderator).await.unwrap();
    assert_eq!((b_now.role, b_now.is_admin), (Role::Moderator, false));
    // A moderator reviews the moderation queue like an admin: they see every sender's held messages.
    let conversation = chat.get_conversation(&c, &group.id).await.unwrap();
    assert!(conversation.may_moderate("b") && !conversation.may_moderate("c"));
    assert!(chat.list_bans(&b, &group.id).await.unwrap().is_empty());
    assert!(matches!(
        chat.list_bans(&c, &group.id).await,
        Err(ChatError::Forbidden(_))
    ));

    let direct = chat
        .create_conversation(
            &a,
            CreateConversation {
                distinct_by_participants: true,
                ..create(&["b"])
            },
        )
        .await
        .unwrap();
    chat.block_user(&b, "a").await.unwrap();
    assert!(matches!(
        chat.send_message(&a, &direct.id, send("hi")).await,
        Err(ChatError::Blocked { blocker, .. }) if blocker == "b"
    ));
    chat.send_message(&a, &group.id, send("hi all"))
        .await
        .unwrap();
    chat.send_message(&b, &direct.id, send("still me"))
        .await
        .unwrap();
    chat.unblock_user(&b, "a").await.unwrap();
    chat.send_message(&a, &direct.id, send("hi")).await.unwrap();
}
