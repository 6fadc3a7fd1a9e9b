//! The reference's parallelism example: 100 tests, each with its own container,
//! run as parallel as the harness allows (`--test-threads`, or a process per test
//! under cargo-nextest). Names are unique per run, so nothing collides.

use fixtures::{Container, Env, Result, container, image};
use test_support::SERVICES_IMAGE;

fn env() -> Env {
    test_support::base_env()
        .with("my_service_image", image(SERVICES_IMAGE))
        .with("my_service", container().image("{my_service_image.id}").command(["sleep"]))
}

macro_rules! xdist {
    ($($name:ident)*) => {$(
        #[fixtures::test(env = env())]
        async fn $name(my_service: &Container) -> Result<()> {
            assert_eq!(my_service.status().await?, "running");
            Ok(())
        }
    )*};
}

xdist!(xdist_000 xdist_001 xdist_002 xdist_003 xdist_004 xdist_005 xdist_006 xdist_007 xdist_008 xdist_009 xdist_010 xdist_011 xdist_012 xdist_013 xdist_014 xdist_015 xdist_016 xdist_017 xdist_018 xdist_019 xdist_020 xdist_021 xdist_022 xdist_023 xdist_024 xdist_025 xdist_026 xdist_027 xdist_028 xdist_029 xdist_030 xdist_031 xdist_032 xdist_033 xdist_034 xdist_035 xdist_036 xdist_037 xdist_038 xdist_039 xdist_040 xdist_041 xdist_042 xdist_043 xdist_044 xdist_045 xdist_046 xdist_047 xdist_048 xdist_049 xdist_050 xdist_051 xdist_052 xdist_053 xdist_054 xdist_055 xdist_056 xdist_057 xdist_058 xdist_059 xdist_060 xdist_061 xdist_062 xdist_063 xdist_064 xdist_065 xdist_066 xdist_067 xdist_068 xdist_069 xdist_070 xdist_071 xdist_072 xdist_073 xdist_074 xdist_075 xdist_076 xdist_077 xdist_078 xdist_079 xdist_080 xdist_081 xdist_082 xdist_083 xdist_084 xdist_085 xdist_086 xdist_087 xdist_088 xdist_089 xdist_090 xdist_091 xdist_092 xdist_093 xdist_094 xdist_095 xdist_096 xdist_097 xdist_098 xdist_099);
