//! The chaos suite: 200 tests over function, module and session fixtures, about 20%
//! panicking and 10% timing out on readiness. It is not part of the normal run
//! (`test = false`); `tests/chaos.rs` runs it as a subprocess, under cargo test and under
//! cargo-nextest, interrupts and kills it, and checks that nothing of ours is left.

use std::time::Duration;

use fixtures::{Container, Env, Result, Scope, container, image, network, volume};
use test_support::SERVICES_IMAGE;

pub(crate) fn env() -> Env {
    test_support::base_env()
        .with("services", image(SERVICES_IMAGE))
        .with(
            "session_svc",
            container().image("{services.id}").command(["memcached"]).port("11211/tcp").scope(Scope::Session),
        )
        .with("module_net", network().scope(Scope::Module))
        .with(
            "module_svc",
            container().image("{services.id}").command(["sleep"]).network("{module_net.name}").scope(Scope::Module),
        )
        .with("fn_vol", volume().initial_content([("seed.txt", Some(b"seed".to_vec()))]))
        .with(
            "fn_svc",
            container().image("{services.id}").command(["http"]).port("8080/tcp").volume("{fn_vol.name}", "/data"),
        )
        .with(
            "never_ready",
            container()
                .image("{services.id}")
                .command(["http"])
                .env("LISTEN_DELAY_MS", "600000")
                .port("8080/tcp")
                .timeout(Duration::from_secs(1)),
        )
}

/// Test `n`: every fifth panics, every tenth (offset 3) waits for a container that never gets ready.
pub(crate) async fn body(n: usize, fn_svc: &Container, module_svc: &Container, session_svc: &Container) -> Result<()> {
    assert_eq!(fn_svc.status().await?, "running");
    assert_eq!(module_svc.status().await?, "running");
    assert_eq!(session_svc.status().await?, "running");
    // `tests/chaos.rs` checks that every test of a run had the same session container.
    if let Some(path) = std::env::var_os("CHAOS_SESSION_LOG") {
        use std::io::Write;
        // One append of one line: lines of concurrent processes do not mix.
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        log.write_all(format!("{} {} t{n:03}\n", session_svc.id(), session_svc.name()).as_bytes())?;
    }
    assert!(n % 5 != 0, "test {n} panics on purpose");
    Ok(())
}

macro_rules! chaos {
    ($($name:ident = $n:literal),*) => {$(
        #[fixtures::test(env = super::env())]
        async fn $name(fn_svc: &Container, module_svc: &Container, session_svc: &Container) -> Result<()> {
            super::body($n, fn_svc, module_svc, session_svc).await
        }
    )*};
}

macro_rules! chaos_timeout {
    ($($name:ident),*) => {$(
        #[fixtures::test(env = super::env())]
        async fn $name(never_ready: &Container) -> Result<()> {
            unreachable!("{} is never ready", never_ready.name())
        }
    )*};
}

mod module_0 {
    use fixtures::{Container, Result};

    chaos!(
        t000 = 0,
        t001 = 1,
        t002 = 2,
        t004 = 4,
        t005 = 5,
        t006 = 6,
        t007 = 7,
        t008 = 8,
        t009 = 9,
        t010 = 10,
        t011 = 11,
        t012 = 12,
        t014 = 14,
        t015 = 15,
        t016 = 16,
        t017 = 17,
        t018 = 18,
        t019 = 19,
        t020 = 20,
        t021 = 21,
        t022 = 22,
        t024 = 24,
        t025 = 25,
        t026 = 26,
        t027 = 27,
        t028 = 28,
        t029 = 29,
        t030 = 30,
        t031 = 31,
        t032 = 32,
        t034 = 34,
        t035 = 35,
        t036 = 36,
        t037 = 37,
        t038 = 38,
        t039 = 39,
        t040 = 40,
        t041 = 41,
        t042 = 42,
        t044 = 44,
        t045 = 45,
        t046 = 46,
        t047 = 47,
        t048 = 48,
        t049 = 49
    );
    chaos_timeout!(t003, t013, t023, t033, t043);
}

mod module_1 {
    use fixtures::{Container, Result};

    chaos!(
        t050 = 50,
        t051 = 51,
        t052 = 52,
        t054 = 54,
        t055 = 55,
        t056 = 56,
        t057 = 57,
        t058 = 58,
        t059 = 59,
        t060 = 60,
        t061 = 61,
        t062 = 62,
        t064 = 64,
        t065 = 65,
        t066 = 66,
        t067 = 67,
        t068 = 68,
        t069 = 69,
        t070 = 70,
        t071 = 71,
        t072 = 72,
        t074 = 74,
        t075 = 75,
        t076 = 76,
        t077 = 77,
        t078 = 78,
        t079 = 79,
        t080 = 80,
        t081 = 81,
        t082 = 82,
        t084 = 84,
        t085 = 85,
        t086 = 86,
        t087 = 87,
        t088 = 88,
        t089 = 89,
        t090 = 90,
        t091 = 91,
        t092 = 92,
        t094 = 94,
        t095 = 95,
        t096 = 96,
        t097 = 97,
        t098 = 98,
        t099 = 99
    );
    chaos_timeout!(t053, t063, t073, t083, t093);
}

mod module_2 {
    use fixtures::{Container, Result};

    chaos!(
        t100 = 100,
        t101 = 101,
        t102 = 102,
        t104 = 104,
        t105 = 105,
        t106 = 106,
        t107 = 107,
        t108 = 108,
        t109 = 109,
        t110 = 110,
        t111 = 111,
        t112 = 112,
        t114 = 114,
        t115 = 115,
        t116 = 116,
        t117 = 117,
        t118 = 118,
        t119 = 119,
        t120 = 120,
        t121 = 121,
        t122 = 122,
        t124 = 124,
        t125 = 125,
        t126 = 126,
        t127 = 127,
        t128 = 128,
        t129 = 129,
        t130 = 130,
        t131 = 131,
        t132 = 132,
        t134 = 134,
        t135 = 135,
        t136 = 136,
        t137 = 137,
        t138 = 138,
        t139 = 139,
        t140 = 140,
        t141 = 141,
        t142 = 142,
        t144 = 144,
        t145 = 145,
        t146 = 146,
        t147 = 147,
        t148 = 148,
        t149 = 149
    );
    chaos_timeout!(t103, t113, t123, t133, t143);
}

mod module_3 {
    use fixtures::{Container, Result};

    chaos!(
        t150 = 150,
        t151 = 151,
        t152 = 152,
        t154 = 154,
        t155 = 155,
        t156 = 156,
        t157 = 157,
        t158 = 158,
        t159 = 159,
        t160 = 160,
        t161 = 161,
        t162 = 162,
        t164 = 164,
        t165 = 165,
        t166 = 166,
        t167 = 167,
        t168 = 168,
        t169 = 169,
        t170 = 170,
        t171 = 171,
        t172 = 172,
        t174 = 174,
        t175 = 175,
        t176 = 176,
        t177 = 177,
        t178 = 178,
        t179 = 179,
        t180 = 180,
        t181 = 181,
        t182 = 182,
        t184 = 184,
        t185 = 185,
        t186 = 186,
        t187 = 187,
        t188 = 188,
        t189 = 189,
        t190 = 190,
        t191 = 191,
        t192 = 192,
        t194 = 194,
        t195 = 195,
        t196 = 196,
        t197 = 197,
        t198 = 198,
        t199 = 199
    );
    chaos_timeout!(t153, t163, t173, t183, t193);
}
