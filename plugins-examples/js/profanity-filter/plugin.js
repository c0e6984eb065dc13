// profanity-filter: a before-hook plugin in JavaScript (the twin of plugins-examples/rust/profanity-filter).
//
// It looks at every message about to be sent or edited and
// - masks each blocked word with `*`s of the same length (whole words only, case-insensitive:
//   "What the HECK" -> "What the ****", but "heckle" stays);
// - rejects a message made only of blocked words ("damn!") with the reason
//   "message contains only blocked words";
// - allows everything else unchanged (the metadata is never touched).
//
// Build: `scripts/build-plugins.sh js` at the repository root gives `plugins/js_profanity_filter.wasm`.
// ../README.md has the commands. Test it with the Rust twin's case file:
// `chathooks test plugins/js_profanity_filter.wasm plugins-examples/rust/profanity-filter/cases.json`.

// Blocked words, lower case. A word is a run of letters and digits, so "heck's" contains "heck".
const BLOCKED_WORDS = new Set(["darn", "heck", "damn", "crap", "frak", "bloody"]);

// The reason given to the sender of a message with nothing but blocked words.
const ONLY_BLOCKED = "message contains only blocked words";

// A letter or digit, exactly as Rust's `char::is_alphanumeric` (the Alphabetic property or a number).
const WORD_CHAR = /[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]/u;

// The decision for a message whose text is `body`: `{tag: "allow"}`, `{tag: "reject", val: reason}` or
// `{tag: "modify", val: {body, metadata}}` (a field left undefined keeps its value).
function decide(body) {
  let text = ""; // the text with every blocked word masked
  let words = 0; // how many words the text has
  let blocked = 0; // how many of them were blocked (and masked)
  let word = ""; // the word being read
  const endWord = () => {
    if (word === "") return;
    words += 1;
    if (BLOCKED_WORDS.has(word.toLowerCase())) {
      blocked += 1;
      text += "*".repeat([...word].length); // one star per character, not per UTF-16 unit
    } else {
      text += word;
    }
    word = "";
  };
  for (const c of body) {
    if (WORD_CHAR.test(c)) {
      word += c;
    } else {
      endWord();
      text += c;
    }
  }
  endWord();
  if (blocked === 0) return { tag: "allow" };
  if (blocked === words) return { tag: "reject", val: ONLY_BLOCKED };
  return { tag: "modify", val: { body: text } };
}

// One exported object per hook interface, named after it in camelCase.
export const beforeMessageSent = {
  beforeMessageSent(draft, _conversation) {
    return decide(draft.body);
  },
};

export const beforeMessageUpdated = {
  beforeMessageUpdated(_current, draft, _conversation) {
    return decide(draft.body);
  },
};
