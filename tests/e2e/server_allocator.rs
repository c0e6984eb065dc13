//! The `chathooks` binary allocates through jemalloc with the options of `chathooks::allocator`: its
//! statistics, printed at exit when `_RJEM_MALLOC_CONF` asks for them, show each option as set.

use std::process::Command;

#[cfg(unix)]
#[test]
fn the_binary_allocates_through_jemalloc_with_the_servers_options() {
    let output = Command::new(env!("CARGO_BIN_EXE_chathooks"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .expect("run chathooks --version");
    assert!(output.status.success(), "{output:?}");
    let stats = String::from_utf8_lossy(&output.stderr);
    assert!(
        stats.contains("Begin jemalloc statistics"),
        "no jemalloc statistics, so not jemalloc:\n{stats}"
    );
    let options = chathooks::allocator::OPTIONS
        .to_str()
        .expect("the options are ASCII");
    for option in options.split(',') {
        let (name, value) = option.split_once(':').expect("name:value");
        let plain = format!("opt.{name}: {value}\n");
        let quoted = format!("opt.{name}: \"{value}\"\n");
        assert!(
            stats.contains(&plain) || stats.contains(&quoted),
            "jemalloc's statistics do not show {option}:\n{stats}"
        );
    }
}
