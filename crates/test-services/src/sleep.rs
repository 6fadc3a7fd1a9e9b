//! `sleep`: print `STDOUT_LINES` / `STDERR_LINES` (`|`-separated), then sleep
//! until SIGTERM/SIGINT. Logs nothing else.

use crate::common::{print_env_lines, sleep_forever};

pub(crate) fn run() -> ! {
    print_env_lines();
    sleep_forever()
}
