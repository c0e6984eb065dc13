//! The plugins' key-value store: namespaces, expiry, increment and compare-and-swap, values kept across a
//! restart, and quotas of keys and bytes kept in step with every write.

use std::time::Duration;

use super::{TestKv, TestResult};
use crate::store::kv::{Commit, KvError, KvQuota, KvUsage};

backend_tests!(TestKv:
    plugins_do_not_see_each_other,
    ttl_expires,
    increment_and_cas,
    values_survive_reopen,
    quota_counts_keys_and_bytes_in_step_with_writes,
    increments_keep_the_quota_in_step_as_their_digits_change,
    increments_read_numbers_as_written_and_refuse_overflow,
    expired_rows_are_given_back_when_the_quota_is_reached,
);

/// Longer than the 1 ms TTLs below: long enough for them to pass.
const PAST_A_1MS_TTL: Duration = Duration::from_millis(5);

fn plugins_do_not_see_each_other(t: TestKv) -> TestResult {
    let kv = &t.kv;
    kv.set("a", "k", b"1", None)?;
    assert_eq!(kv.get("b", "k")?, None);
    assert_eq!(kv.list_keys("b", "")?, Vec::<String>::new());
    assert_eq!(kv.get("a", "k")?.as_deref(), Some(&b"1"[..]));
    Ok(())
}

fn ttl_expires(t: TestKv) -> TestResult {
    let kv = &t.kv;
    kv.set("a", "k", b"v", Some(1))?;
    std::thread::sleep(PAST_A_1MS_TTL);
    assert_eq!(kv.get("a", "k")?, None);
    assert_eq!(kv.list_keys("a", "")?, Vec::<String>::new());
    assert_eq!(kv.purge_expired()?, 1);
    assert!(!kv.delete("a", "k")?);
    Ok(())
}

fn increment_and_cas(t: TestKv) -> TestResult {
    let kv = &t.kv;
    assert_eq!(kv.increment("a", "n", 2)?, 2);
    assert_eq!(kv.increment("a", "n", -5)?, -3);
    assert!(!kv.compare_and_swap("a", "n", Some(b"0"), Some(b"1"))?);
    assert!(kv.compare_and_swap("a", "n", Some(b"-3"), None)?);
    assert!(kv.compare_and_swap("a", "n", None, Some(b"x"))?);
    assert!(matches!(
        kv.increment("a", "n", 1),
        Err(KvError::NotANumber)
    ));
    assert_eq!(kv.list_keys("a", "n")?, vec!["n".to_string()]);
    Ok(())
}

/// Whatever path an increment takes (in place, or through the quota), a value written by hand with spaces,
/// a sign or leading zeros counts as its number and is stored back in canonical form; a sum beyond `i64`
/// is refused and changes nothing; an expired value counts as absent.
fn increments_read_numbers_as_written_and_refuse_overflow(t: TestKv) -> TestResult {
    let kv = &t.kv;
    for (written, delta, sum) in [
        (" 41", 1, "42"),
        ("041", 1, "42"),
        ("+5", 1, "6"),
        ("12", 1, "13"),
        ("-1", 1, "0"),
        ("9", -10, "-1"),
        ("-10", 1, "-9"),
    ] {
        kv.set("a", "n", written.as_bytes(), None)?;
        assert_eq!(
            kv.increment("a", "n", delta)?.to_string(),
            sum,
            "{written:?}"
        );
        assert_eq!(
            kv.get("a", "n")?.as_deref(),
            Some(sum.as_bytes()),
            "{written:?}"
        );
    }
    for (written, delta) in [(i64::MAX, 1), (i64::MIN, -1)] {
        let text = written.to_string();
        kv.set("a", "n", text.as_bytes(), None)?;
        assert!(matches!(
            kv.increment("a", "n", delta),
            Err(KvError::Overflow)
        ));
        assert_eq!(kv.get("a", "n")?.as_deref(), Some(text.as_bytes()));
    }
    for not_a_number in ["", "1.5", "4x", "12 34"] {
        kv.set("a", "n", not_a_number.as_bytes(), None)?;
        assert!(
            matches!(kv.increment("a", "n", 1), Err(KvError::NotANumber)),
            "{not_a_number:?}"
        );
    }
    kv.set("a", "n", b"5", Some(1))?;
    std::thread::sleep(PAST_A_1MS_TTL);
    assert_eq!(kv.increment("a", "n", 1)?, 1);
    Ok(())
}

fn values_survive_reopen(t: TestKv) -> TestResult {
    t.kv.set("a", "k", b"v", None)?;
    let t = t.reopen()?;
    assert_eq!(t.kv.get("a", "k")?.as_deref(), Some(&b"v"[..]));
    Ok(())
}

fn quota_counts_keys_and_bytes_in_step_with_writes(t: TestKv) -> TestResult {
    let kv = &t.kv;
    let quota = KvQuota {
        max_keys: 2,
        max_bytes: 20,
    };
    kv.set_within("a", quota, Commit::Now, "k1", b"12345", None)?;
    kv.set_within("a", quota, Commit::Now, "k2", b"1", None)?;
    assert_eq!(kv.usage("a")?, KvUsage { keys: 2, bytes: 10 });
    assert!(matches!(
        kv.set_within("a", quota, Commit::Now, "k3", b"1", None),
        Err(KvError::QuotaExceeded {
            what: "keys",
            limit: 2
        })
    ));
    // Overwriting an existing key needs no new key; growing it past the bytes does.
    kv.set_within("a", quota, Commit::Now, "k1", b"1234567890123", None)?;
    assert!(matches!(
        kv.set_within("a", quota, Commit::Now, "k1", b"12345678901234567", None),
        Err(KvError::QuotaExceeded {
            what: "bytes",
            limit: 20
        })
    ));
    assert!(matches!(
        kv.increment_within("a", quota, Commit::Now, "n", 1),
        Err(KvError::QuotaExceeded { .. })
    ));
    assert!(kv.delete("a", "k2")?);
    assert_eq!(kv.increment_within("a", quota, Commit::Now, "n", 7)?, 7);
    assert!(kv.compare_and_swap_within("a", quota, Commit::Now, "n", Some(b"7"), None)?);
    assert_eq!(kv.usage("a")?, KvUsage { keys: 1, bytes: 15 });
    assert_eq!(kv.usage("b")?, KvUsage::default());
    Ok(())
}

fn increments_keep_the_quota_in_step_as_their_digits_change(t: TestKv) -> TestResult {
    let kv = &t.kv;
    // Full with `n` at one digit: key `n` and its digit (2 bytes) beside `p` and 7 bytes (8).
    let quota = KvQuota {
        max_keys: 2,
        max_bytes: 10,
    };
    kv.set_within("a", quota, Commit::Now, "p", b"1234567", None)?;
    assert_eq!(kv.increment_within("a", quota, Commit::Now, "n", 8)?, 8);
    assert_eq!(kv.usage("a")?, KvUsage { keys: 2, bytes: 10 });
    // A step that keeps the width needs no room, even in a full quota ...
    assert_eq!(kv.increment_within("a", quota, Commit::Now, "n", 1)?, 9);
    assert_eq!(kv.usage("a")?, KvUsage { keys: 2, bytes: 10 });
    // ... one to two digits does.
    assert!(matches!(
        kv.increment_within("a", quota, Commit::Now, "n", 1),
        Err(KvError::QuotaExceeded {
            what: "bytes",
            limit: 10
        })
    ));
    assert_eq!(kv.get("a", "n")?, Some(b"9".to_vec()));
    kv.set_within("a", quota, Commit::Now, "p", b"123456", None)?;
    assert_eq!(kv.increment_within("a", quota, Commit::Now, "n", 1)?, 10);
    assert_eq!(kv.usage("a")?, KvUsage { keys: 2, bytes: 10 });
    // Back down to one digit gives the byte back; a negative number is one byte wider.
    assert_eq!(kv.increment_within("a", quota, Commit::Now, "n", -5)?, 5);
    assert_eq!(kv.usage("a")?, KvUsage { keys: 2, bytes: 9 });
    assert_eq!(kv.increment_within("a", quota, Commit::Now, "n", -7)?, -2);
    assert_eq!(kv.usage("a")?, KvUsage { keys: 2, bytes: 10 });
    Ok(())
}

fn expired_rows_are_given_back_when_the_quota_is_reached(t: TestKv) -> TestResult {
    let kv = &t.kv;
    let quota = KvQuota {
        max_keys: 1,
        max_bytes: 1000,
    };
    kv.set_within("a", quota, Commit::Now, "old", b"v", Some(1))?;
    std::thread::sleep(PAST_A_1MS_TTL);
    kv.set_within("a", quota, Commit::Now, "new", b"v", None)?;
    assert_eq!(kv.usage("a")?, KvUsage { keys: 1, bytes: 4 });
    kv.set("b", "t", b"v", Some(1))?;
    std::thread::sleep(PAST_A_1MS_TTL);
    assert_eq!(kv.purge_expired()?, 1);
    assert_eq!(kv.usage("b")?, KvUsage::default());
    Ok(())
}
