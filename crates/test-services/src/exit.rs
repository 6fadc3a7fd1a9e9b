//! `exit`: print lines, optionally sleep, then exit with a given code.
//!
//! Env: `STDOUT_LINES` and `STDERR_LINES` (`|`-separated lines), `DELAY_MS`
//! (default 0), `EXIT_CODE` (default 0).
//! Args (override the env codes/delay, lines are appended after env lines):
//! `--code N`, `--delay-ms N`, `--stdout LINE`..., `--stderr LINE`....
//! All stdout lines are printed (and flushed) before the stderr lines.

use std::str::FromStr;

use crate::common::{die, env_lines, env_or, log, sleep_ms};

pub(crate) fn run(args: &[String]) -> ! {
    let mut stdout = env_lines("STDOUT_LINES");
    let mut stderr = env_lines("STDERR_LINES");
    let mut delay_ms: u64 = env_or("DELAY_MS", 0);
    let mut code: i32 = env_or("EXIT_CODE", 0);

    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            die(2, format_args!("exit: {flag} needs a value"));
        };
        match flag.as_str() {
            "--code" => code = number(flag, value),
            "--delay-ms" => delay_ms = number(flag, value),
            "--stdout" => stdout.push(value.clone()),
            "--stderr" => stderr.push(value.clone()),
            _ => die(2, format_args!("exit: unknown argument {flag:?}")),
        }
    }

    for line in &stdout {
        log!("{line}");
    }
    for line in &stderr {
        eprintln!("{line}");
    }
    sleep_ms(delay_ms);
    std::process::exit(code)
}

fn number<T: FromStr>(flag: &str, value: &str) -> T {
    value.parse().unwrap_or_else(|_| die(2, format_args!("exit: bad {flag} {value:?}")))
}
