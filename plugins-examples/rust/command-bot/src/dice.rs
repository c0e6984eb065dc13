//! `/roll NdM`: dice seeded by the message id (the same message always rolls the same).

/// Most dice one roll throws unless the manifest's `max_dice` says otherwise.
const DEFAULT_MAX_DICE: u32 = 100;

/// Most sides a die may have.
const MAX_SIDES: u32 = 1000;

/// The text answering `/roll <spec>` for message `seed`.
pub fn roll(spec: &str, seed: &str) -> String {
    let max_dice = chathooks_sdk::config::get_or("max_dice", DEFAULT_MAX_DICE);
    let spec = if spec.is_empty() { "1d6" } else { spec };
    let Some((count, sides)) = parse(spec) else {
        return format!(
            "🎲 I roll dice like 2d6 (1-{max_dice} dice, 2-{MAX_SIDES} sides), not {spec:?}"
        );
    };
    if !(1..=max_dice).contains(&count) || !(2..=MAX_SIDES).contains(&sides) {
        return format!("🎲 I roll 1-{max_dice} dice of 2-{MAX_SIDES} sides, not {spec}");
    }
    let mut rng = SplitMix64(fnv1a(seed.as_bytes()));
    let dice: Vec<u64> = (0..count)
        .map(|_| rng.next() % u64::from(sides) + 1)
        .collect();
    let total: u64 = dice.iter().sum();
    let shown: Vec<String> = dice.iter().map(u64::to_string).collect();
    format!("🎲 {spec}: {} = {total}", shown.join(" + "))
}

/// `NdM` (or `dM`, one die) as (N, M).
fn parse(spec: &str) -> Option<(u32, u32)> {
    let (count, sides) = spec
        .to_ascii_lowercase()
        .split_once('d')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))?;
    let count = if count.is_empty() {
        1
    } else {
        count.parse().ok()?
    };
    Some((count, sides.parse().ok()?))
}

/// FNV-1a: a stable 64-bit hash of the seed text.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64: a tiny, good-enough generator for dice.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
