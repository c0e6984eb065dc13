//! `/poll` and `/vote`: one poll per conversation, kept in KV as JSON under `poll:<conversation>`.

use chathooks_sdk::kv;
use chathooks_sdk::serde::{Deserialize, Serialize};
use chathooks_sdk::serde_json::{Value, json};

/// Most options a poll may have.
const MAX_OPTIONS: usize = 10;

/// A poll and its votes.
#[derive(Serialize, Deserialize)]
#[serde(crate = "chathooks_sdk::serde")]
struct Poll {
    /// The question.
    question: String,
    /// The options, in order.
    options: Vec<String>,
    /// Each voter's option (0-based), as `[user, option]` pairs in voting order.
    votes: Vec<(String, usize)>,
}

impl Poll {
    fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.options.len()];
        for (_, option) in &self.votes {
            if let Some(c) = counts.get_mut(*option) {
                *c += 1;
            }
        }
        counts
    }

    fn tally(&self) -> Value {
        let counts = self.counts();
        json!({
            "question": self.question,
            "options": self.options.iter().zip(&counts)
                .map(|(o, c)| json!({ "option": o, "votes": c }))
                .collect::<Vec<_>>(),
            "voters": self.votes.len(),
        })
    }
}

fn key(conversation_id: &str) -> String {
    format!("poll:{conversation_id}")
}

/// Starts a poll from `Question? | option | option`; the text announcing it.
pub fn start(conversation_id: &str, args: &str) -> Result<String, String> {
    let mut parts = args.split('|').map(str::trim).filter(|p| !p.is_empty());
    let question = parts.next().unwrap_or_default().to_owned();
    let options: Vec<String> = parts.map(str::to_owned).collect();
    if options.len() < 2 || options.len() > MAX_OPTIONS {
        return Ok(format!(
            "📊 A poll needs a question and 2-{MAX_OPTIONS} options: /poll Lunch? | pizza | sushi"
        ));
    }
    let listed: Vec<String> = options
        .iter()
        .enumerate()
        .map(|(i, o)| format!("{}. {o}", i + 1))
        .collect();
    let poll = Poll {
        question,
        options,
        votes: Vec::new(),
    };
    kv::set_json(&key(conversation_id), &poll, None)?;
    Ok(format!(
        "📊 {} {} (vote with /vote N)",
        poll.question,
        listed.join(" ")
    ))
}

/// Records `user`'s vote `args` (1-based). `Ok(Ok(tally))` when counted, `Ok(Err(text))` to tell the
/// conversation why not.
pub fn vote(
    conversation_id: &str,
    user: &str,
    args: &str,
) -> Result<Result<Value, String>, String> {
    let Some(mut poll) = kv::get_json::<Poll>(&key(conversation_id))? else {
        return Ok(Err(
            "📊 There is no poll here; start one with /poll Question? | a | b".into(),
        ));
    };
    let choice = args
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=poll.options.len()).contains(n));
    let Some(choice) = choice else {
        return Ok(Err(format!(
            "📊 Vote with a number from 1 to {}",
            poll.options.len()
        )));
    };
    poll.votes.retain(|(voter, _)| voter != user);
    poll.votes.push((user.to_owned(), choice - 1));
    kv::set_json(&key(conversation_id), &poll, None)?;
    Ok(Ok(poll.tally()))
}

/// The current tally as text.
pub fn tally_text(conversation_id: &str) -> Result<String, String> {
    let Some(poll) = kv::get_json::<Poll>(&key(conversation_id))? else {
        return Ok("📊 There is no poll here; start one with /poll Question? | a | b".into());
    };
    let counts = poll.counts();
    let lines: Vec<String> = poll
        .options
        .iter()
        .zip(counts)
        .map(|(o, c)| format!("{o}: {c}"))
        .collect();
    Ok(format!("📊 {} {}", poll.question, lines.join(", ")))
}
