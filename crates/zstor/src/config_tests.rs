//! Good and bad configurations.

use super::*;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const MKEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";

fn sample(k: usize, n: usize, groups: &[usize], extra: &str) -> String {
    let mut s = format!(
        "minimal_shards = {k}\nexpected_shards = {n}\nredundant_groups = 0\nredundant_nodes = 0\n\
         root = \"/virtualroot\"\nsocket = \"/tmp/zstor.sock\"\nprometheus_port = 9100\n{extra}\n\
         [encryption]\nalgorithm = \"AES\"\nkey = \"{KEY}\"\n\
         [compression]\nalgorithm = \"snappy\"\n\
         [meta]\ntype = \"zdb\"\n[meta.config]\nprefix = \"someprefix\"\n\
         [meta.config.encryption]\nalgorithm = \"AES\"\nkey = \"{MKEY}\"\n"
    );
    for i in 0..4 {
        s += &format!(
            "[[meta.config.backends]]\naddress = \"[::1]:{}\"\nnamespace = \"meta\"\npassword = \"pw\"\n",
            9900 + i
        );
    }
    let mut port = 10000;
    for &size in groups {
        s += "[[groups]]\n";
        for _ in 0..size {
            s += &format!(
                "[[groups.backends]]\naddress = \"127.0.0.1:{port}\"\nnamespace = \"data\"\n"
            );
            port += 1;
        }
    }
    s
}

fn field_of(err: ConfigError) -> String {
    match err {
        ConfigError::Invalid { field, .. } => field,
        other => panic!("expected a field error, got {other}"),
    }
}

#[test]
fn accepts_the_reference_config() {
    let c = Config::from_toml(&sample(4, 6, &[6], "")).unwrap();
    assert_eq!(c.rules().k, 4);
    assert_eq!(c.compression().unwrap(), Compression::Snappy);
    assert_eq!(c.backends().count(), 6);
    assert_eq!(c.meta.config.backends.len(), 4);
    // round trip through TOML
    let again = Config::from_toml(&c.to_toml().unwrap()).unwrap();
    assert_eq!(again, c);
}

#[test]
fn accepts_all_optional_keys() {
    let extra = "pid_file = \"/tmp/zstor.pid\"\nzdb_data_dir_path = \"/data\"\n\
                 max_zdb_data_dir_size = 25600\nzdbfs_mountpoint = \"/mnt\"";
    Config::from_toml(&sample(2, 3, &[3], extra)).unwrap();
}

#[test]
fn rejects_unknown_keys_and_types() {
    let err = Config::from_toml(&sample(4, 6, &[6], "minimal_shard = 3")).unwrap_err();
    assert!(
        matches!(err, ConfigError::Parse(ref m) if m.contains("minimal_shard")),
        "{err}"
    );
    let bad = sample(4, 6, &[6], "").replace("expected_shards = 6", "expected_shards = \"six\"");
    assert!(matches!(
        Config::from_toml(&bad),
        Err(ConfigError::Parse(_))
    ));
}

#[test]
fn rejects_bad_shard_counts() {
    assert_eq!(
        field_of(Config::from_toml(&sample(0, 2, &[2], "")).unwrap_err()),
        "minimal_shards"
    );
    assert_eq!(
        field_of(Config::from_toml(&sample(4, 4, &[6], "")).unwrap_err()),
        "expected_shards"
    );
    assert_eq!(
        field_of(Config::from_toml(&sample(4, 3, &[6], "")).unwrap_err()),
        "expected_shards"
    );
    assert_eq!(
        field_of(Config::from_toml(&sample(4, 300, &[6], "")).unwrap_err()),
        "expected_shards"
    );
}

#[test]
fn rejects_bad_keys_and_algorithms() {
    let s = sample(4, 6, &[6], "");
    let short = s.replacen(KEY, "abcd", 1);
    assert_eq!(
        field_of(Config::from_toml(&short).unwrap_err()),
        "encryption.key"
    );
    let nonhex = s.replacen(KEY, &"zz".repeat(32), 1);
    assert_eq!(
        field_of(Config::from_toml(&nonhex).unwrap_err()),
        "encryption.key"
    );
    let meta_key = s.replacen(MKEY, "01", 1);
    assert_eq!(
        field_of(Config::from_toml(&meta_key).unwrap_err()),
        "meta.config.encryption.key"
    );
    let algo = s.replacen("algorithm = \"AES\"", "algorithm = \"DES\"", 1);
    assert_eq!(
        field_of(Config::from_toml(&algo).unwrap_err()),
        "encryption.algorithm"
    );
    let comp = s.replace("\"snappy\"", "\"brotli\"");
    assert_eq!(
        field_of(Config::from_toml(&comp).unwrap_err()),
        "compression.algorithm"
    );
    for ok in ["lz4", "zstd"] {
        Config::from_toml(&s.replace("\"snappy\"", &format!("\"{ok}\""))).unwrap();
    }
    let meta = s.replace("type = \"zdb\"", "type = \"etcd\"");
    assert_eq!(field_of(Config::from_toml(&meta).unwrap_err()), "meta.type");
}

#[test]
fn needs_exactly_four_meta_backends() {
    let s = sample(4, 6, &[6], "");
    let three = s.replacen(
        "[[meta.config.backends]]\naddress = \"[::1]:9903\"\nnamespace = \"meta\"\npassword = \"pw\"\n",
        "",
        1,
    );
    let err = Config::from_toml(&three).unwrap_err();
    assert!(err.to_string().contains("exactly 4"), "{err}");
    assert_eq!(field_of(err), "meta.config.backends");
}

#[test]
fn rejects_bad_addresses_and_duplicates() {
    let s = sample(2, 3, &[3], "");
    let bad = s.replace("127.0.0.1:10001", "not-an-address");
    assert_eq!(
        field_of(Config::from_toml(&bad).unwrap_err()),
        "groups[0].backends[1].address"
    );
    let dup = s.replace("127.0.0.1:10001", "127.0.0.1:10000");
    assert_eq!(
        field_of(Config::from_toml(&dup).unwrap_err()),
        "groups[0].backends[1]"
    );
}

#[test]
fn needs_enough_backends_for_the_rules() {
    let err = Config::from_toml(&sample(4, 6, &[5], "")).unwrap_err();
    assert!(err.to_string().contains("6"), "{err}");
    assert_eq!(field_of(err), "groups");
    // losing one of two groups of 3 leaves 3 < 4 shards
    let s = sample(4, 6, &[3, 3], "").replace("redundant_groups = 0", "redundant_groups = 1");
    assert_eq!(field_of(Config::from_toml(&s).unwrap_err()), "groups");
    // with three groups of 4 and k=2, n=6: 2 per group, losing one group leaves 4 >= 2
    let s = sample(2, 6, &[4, 4, 4], "").replace("redundant_groups = 0", "redundant_groups = 1");
    Config::from_toml(&s).unwrap();
    // redundant_groups as large as the number of groups is rejected, no underflow
    let s = sample(1, 2, &[2], "").replace("redundant_groups = 0", "redundant_groups = 5");
    assert_eq!(field_of(Config::from_toml(&s).unwrap_err()), "groups");
}

#[test]
fn rejects_empty_group_and_relative_root() {
    let s = sample(1, 2, &[2, 0], "");
    assert_eq!(
        field_of(Config::from_toml(&s).unwrap_err()),
        "groups[1].backends"
    );
    let s = sample(1, 2, &[2], "").replace("\"/virtualroot\"", "\"rel\"");
    assert_eq!(field_of(Config::from_toml(&s).unwrap_err()), "root");
}

#[test]
fn accepts_the_documented_example() {
    // docs: /work/shared/docs/zstor.md, with real keys in place of the elided ones.
    let text = format!(
        r#"minimal_shards = 4
expected_shards = 6
redundant_groups = 0
redundant_nodes = 0
root = "/virtualroot"
socket = "/tmp/zstor.sock"
pid_file = "/tmp/zstor.pid"
prometheus_port = 9100
zdb_data_dir_path = "/path"
max_zdb_data_dir_size = 25600
zdbfs_mountpoint = "/mnt"

[encryption]
algorithm = "AES"
key = "{KEY}"

[compression]
algorithm = "snappy"

[meta]
type = "zdb"
[meta.config]
prefix = "someprefix"
[meta.config.encryption]
algorithm = "AES"
key = "{MKEY}"
{meta}
[[groups]]
{data}"#,
        meta = (0..4)
            .map(|i| format!("[[meta.config.backends]]\naddress = \"[::1]:{}\"\nnamespace = \"meta\"\npassword = \"secret\"\n", 9900 + i))
            .collect::<String>(),
        data = (0..6)
            .map(|i| format!("[[groups.backends]]\naddress = \"127.0.0.1:{}\"\nnamespace = \"data\"\npassword = \"secret\"\n", 9901 + i))
            .collect::<String>(),
    );
    let c = Config::from_toml(&text).unwrap();
    assert_eq!(c.max_zdb_data_dir_size, Some(25600));
    assert_eq!(c.meta_key().unwrap(), DataKey::from_hex(MKEY).unwrap());
    // passwords never show in debug output
    assert!(!format!("{c:?}").contains("secret"));
    assert!(!format!("{c:?}").contains(KEY));
}

#[test]
fn load_reports_unreadable_files() {
    let err = Config::load(Path::new("/nonexistent/zstor_config.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/zstor_config.toml"));
}

#[test]
fn degraded_writes_need_more_than_k_shards() {
    let c = Config::from_toml(&sample(4, 6, &[6], "")).unwrap();
    assert_eq!(c.write_shards(), 5, "k + 1 by default");
    let strict = Config::from_toml(&sample(4, 6, &[6], "minimal_write_shards = 6")).unwrap();
    assert_eq!(strict.write_shards(), 6, "= n: no degraded writes");
    for bad in [4, 7, 0] {
        let text = sample(4, 6, &[6], &format!("minimal_write_shards = {bad}"));
        let err = Config::from_toml(&text).unwrap_err();
        assert_eq!(field_of(err), "minimal_write_shards", "{bad}");
    }
}
