//! Engine behaviour through its public API: modes, history, scans, segments, settings.

use std::sync::Arc;
use zdb_engine::*;

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir.join("data"), dir.join("index"));
    c.datasize = 512 * 1024;
    c
}

fn open(dir: &std::path::Path) -> Engine {
    Engine::open(config(dir), Arc::new(NoEvents)).unwrap()
}

fn written(o: SetOutcome) -> Vec<u8> {
    match o {
        SetOutcome::Written(k) => k,
        SetOutcome::Unchanged => panic!("expected a write"),
    }
}

#[test]
fn user_mode_set_get_unchanged_delete_history() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
    assert_eq!(written(ns.set(b"k", b"v1", None).unwrap()), b"k");
    assert_eq!(ns.set(b"k", b"v1", None).unwrap(), SetOutcome::Unchanged);
    written(ns.set(b"k", b"v2", None).unwrap());
    assert_eq!(ns.get(b"k").unwrap().unwrap(), b"v2");
    assert_eq!(ns.len(), 1);
    ns.delete(b"k").unwrap();
    assert_eq!(ns.get(b"k").unwrap(), None);
    assert!(matches!(ns.delete(b"k"), Err(Error::KeyNotFound)));
    assert_eq!(ns.len(), 0);
    // History: tombstone, then v2, then v1, then the end of the chain.
    let h = ns.history(b"k", None).unwrap().unwrap();
    assert!(h.deleted);
    let h = ns.history(b"k", h.prev).unwrap().unwrap();
    assert_eq!(h.payload, b"v2");
    let h = ns.history(b"k", h.prev).unwrap().unwrap();
    assert_eq!(h.payload, b"v1");
    assert_eq!(h.prev, None);
    assert!(matches!(ns.set(b"", b"x", None), Err(Error::KeyNeeded)));
    assert!(matches!(
        ns.set(&[1u8; 256], b"x", None),
        Err(Error::KeyTooLarge)
    ));
}

#[test]
fn seq_mode_ids_updates_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let ns = e.create("seq").unwrap();
    ns.change_setting(SettingChange::Mode(Mode::Seq)).unwrap();
    for i in 0..100u32 {
        assert_eq!(
            written(ns.set(b"", &i.to_le_bytes(), None).unwrap()),
            seq_key(i)
        );
    }
    assert_eq!(
        written(ns.set(&seq_key(5), b"five", None).unwrap()),
        seq_key(5)
    );
    // An update spends the next id (as in 0-db), so the next new value gets 101.
    assert_eq!(written(ns.set(b"", b"next", None).unwrap()), seq_key(101));
    assert_eq!(
        ns.get(&seq_key(100)).unwrap(),
        None,
        "a spent id holds nothing"
    );
    assert_eq!(ns.get(&seq_key(5)).unwrap().unwrap(), b"five");
    assert_eq!(ns.get(&5u32.to_le_bytes()).unwrap().unwrap(), b"five");
    assert!(matches!(
        ns.set(&seq_key(1000), b"x", None),
        Err(Error::SeqUpdateOnly)
    ));
    assert!(matches!(
        ns.set(b"abc", b"x", None),
        Err(Error::SeqUpdateOnly)
    ));
    ns.delete(&seq_key(7)).unwrap();
    assert_eq!(ns.get(&seq_key(7)).unwrap(), None);
    assert_eq!(ns.len(), 100);
    assert!(matches!(
        ns.change_setting(SettingChange::Mode(Mode::User)),
        Err(Error::NamespaceNotEmpty)
    ));
    drop(ns);
    drop(e);
    let e = open(dir.path());
    let ns = e.namespace("seq").unwrap();
    assert_eq!(ns.mode(), Mode::Seq);
    assert_eq!(ns.len(), 100);
    assert_eq!(ns.get(&seq_key(5)).unwrap().unwrap(), b"five");
    assert_eq!(ns.get(&seq_key(99)).unwrap().unwrap(), 99u32.to_le_bytes());
    assert_eq!(written(ns.set(b"", b"more", None).unwrap()), seq_key(102));
}

/// 0-db's own suite (`default_set_hello_again_seq`, `default_get_hello_new_seq`): SET, an
/// update of that id and a DEL leave the next new id at 2; an unchanged value spends nothing.
#[test]
fn seq_ids_are_spent_by_updates_as_in_0db() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let ns = e.create("seq").unwrap();
    ns.change_setting(SettingChange::Mode(Mode::Seq)).unwrap();
    assert_eq!(written(ns.set(b"", b"world", None).unwrap()), seq_key(0));
    assert_eq!(
        written(ns.set(&seq_key(0), b"worldnewdata", None).unwrap()),
        seq_key(0)
    );
    assert!(matches!(
        ns.set(&seq_key(0), b"worldnewdata", None).unwrap(),
        SetOutcome::Unchanged
    ));
    assert_eq!(ns.get(&seq_key(0)).unwrap().unwrap(), b"worldnewdata");
    ns.delete(&seq_key(0)).unwrap();
    assert_eq!(
        written(ns.set(b"", b"helloworld", None).unwrap()),
        seq_key(2)
    );
    assert_eq!(ns.get(&seq_key(2)).unwrap().unwrap(), b"helloworld");
    assert_eq!(ns.get(&seq_key(1)).unwrap(), None);
    assert!(matches!(
        ns.set(&seq_key(1), b"x", None),
        Err(Error::SeqUpdateOnly)
    ));
    assert_eq!(ns.len(), 1);
    assert_eq!(ns.info().next_id, 3);
    // The delete and both values stay in the history, newest first.
    let mut history = Vec::new();
    let mut at = None;
    while let Some(h) = ns.history(&seq_key(0), at).unwrap() {
        history.push((h.deleted, h.payload));
        match h.prev {
            Some(p) => at = Some(p),
            None => break,
        }
    }
    assert_eq!(
        history,
        [
            (true, b"".to_vec()),
            (false, b"worldnewdata".to_vec()),
            (false, b"world".to_vec())
        ]
    );
    drop(ns);
    drop(e);
    let e = open(dir.path());
    let ns = e.namespace("seq").unwrap();
    assert_eq!(ns.info().next_id, 3);
    assert_eq!(written(ns.set(b"", b"after", None).unwrap()), seq_key(3));
}

#[test]
fn segments_jump_and_everything_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let value = vec![7u8; 10_000];
    {
        let e = open(dir.path());
        let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
        for i in 0..300u32 {
            ns.set(format!("key-{i}").as_bytes(), &value, None).unwrap();
        }
        assert!(
            ns.info().segments.len() >= 5,
            "datasize 512 KiB must have forced jumps"
        );
        ns.delete(b"key-3").unwrap();
    }
    let e = open(dir.path());
    let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
    assert_eq!(ns.len(), 299);
    for i in 0..300u32 {
        let got = ns.get(format!("key-{i}").as_bytes()).unwrap();
        assert_eq!(got.is_some(), i != 3, "key-{i}");
    }
}

#[test]
fn scan_both_directions_with_cursors_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
    let value = vec![1u8; 4000];
    for i in 0..400u32 {
        ns.set(format!("{i:04}").as_bytes(), &value, None).unwrap();
    }
    ns.delete(b"0010").unwrap();
    ns.set(b"0020", b"moved to the end", None).unwrap();
    let mut expect: Vec<Vec<u8>> = (0..400u32)
        .filter(|&i| i != 10 && i != 20)
        .map(|i| format!("{i:04}").into_bytes())
        .collect();
    expect.push(b"0020".to_vec());

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        match ns.scan(cursor, Direction::Forward, 7) {
            Ok(page) => {
                assert!(page.items.len() <= 7);
                seen.extend(page.items.iter().map(|i| i.key.clone()));
                cursor = Some(page.next);
            }
            Err(Error::NoMoreData) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(seen, expect);

    let mut back = Vec::new();
    let mut cursor = None;
    while let Ok(page) = ns.scan(cursor, Direction::Backward, 13) {
        back.extend(page.items.iter().map(|i| i.key.clone()));
        cursor = Some(Cursor::decode(&page.next.encode()).unwrap());
    }
    expect.reverse();
    assert_eq!(back, expect);

    // KEYCUR positions a scan just after that key.
    let c = ns.key_cursor(b"0100").unwrap().unwrap();
    assert_eq!(
        ns.scan(Some(c), Direction::Forward, 1).unwrap().items[0].key,
        b"0101"
    );
    assert!(matches!(
        ns.scan(Some(Cursor { seg: 999, off: 40 }), Direction::Forward, 1),
        Err(Error::InvalidKey)
    ));
}

#[test]
fn settings_limits_and_worm_persist() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path());
        let ns = e.create("limited").unwrap();
        ns.change_setting(SettingChange::MaxSize(16)).unwrap();
        ns.set(b"a", &[0; 10], None).unwrap();
        ns.set(b"b", &[0; 5], None).unwrap();
        ns.set(b"c", &[0; 1], None).unwrap();
        assert!(matches!(
            ns.set(b"d", &[0; 1], None),
            Err(Error::NamespaceFull)
        ));
        ns.set(b"a", &[1; 10], None).unwrap(); // same-size replacement fits
        ns.change_setting(SettingChange::Worm(true)).unwrap();
        assert!(matches!(
            ns.set(b"a", &[2; 3], None),
            Err(Error::WormOverwrite)
        ));
        assert!(matches!(ns.delete(b"a"), Err(Error::WormDelete)));
        ns.change_setting(SettingChange::Lock(true)).unwrap();
        ns.change_setting(SettingChange::Password(Some("pw".into())))
            .unwrap();
    }
    let e = open(dir.path());
    let ns = e.namespace("limited").unwrap();
    let s = ns.settings();
    assert_eq!(
        (s.maxsize, s.worm, s.locked, s.password.as_deref()),
        (16, true, true, Some("pw"))
    );
    assert!(matches!(ns.set(b"z", b"1", None), Err(Error::Locked)));
    ns.change_setting(SettingChange::Freeze(true)).unwrap();
    assert!(matches!(ns.get(b"a"), Err(Error::Frozen)));
}

#[test]
fn namespaces_create_delete_names() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    for bad in ["", ".", "..", "a/b"] {
        assert!(e.create(bad).is_err(), "{bad:?} accepted");
    }
    assert!(matches!(
        e.create(&"x".repeat(129)),
        Err(Error::NamespaceTooLong)
    ));
    let ns = e.create("gone").unwrap();
    assert!(matches!(e.create("gone"), Err(Error::NamespaceExists)));
    ns.set(b"k", b"v", None).unwrap();
    e.delete("gone").unwrap();
    assert!(matches!(ns.get(b"k"), Err(Error::NamespaceGone)));
    assert!(e.namespace("gone").is_none());
    assert!(!dir.path().join("data/gone").exists());
    assert!(e.delete(DEFAULT_NAMESPACE).is_err());
    assert_eq!(e.list(), vec!["default".to_string()]);
}

#[test]
fn set_many_batches_in_order_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path());
        let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
        ns.set(b"old", b"same", None).unwrap();
        let big = vec![1u8; 300 * 1024];
        let items: Vec<(&[u8], &[u8])> = vec![
            (b"a", b"1"),
            (b"old", b"same"),   // identical: nil, nothing written
            (b"a", b"2"),        // same key twice in one batch
            (b"a", b"2"),        // identical to the pending value
            (&[7u8; 256], b"x"), // key too large: this item fails, the rest goes on
            (b"big1", &big),     // large values force a segment jump mid-batch
            (b"big2", &big),
            (b"big3", &big),
        ];
        let out = ns.set_many(&items, None);
        assert_eq!(out.len(), items.len());
        assert_eq!(
            out[0].as_ref().unwrap(),
            &SetOutcome::Written(b"a".to_vec())
        );
        assert_eq!(out[1].as_ref().unwrap(), &SetOutcome::Unchanged);
        assert_eq!(
            out[2].as_ref().unwrap(),
            &SetOutcome::Written(b"a".to_vec())
        );
        assert_eq!(out[3].as_ref().unwrap(), &SetOutcome::Unchanged);
        assert!(matches!(out[4], Err(Error::KeyTooLarge)));
        assert!(out[5..].iter().all(|r| r.is_ok()));
        assert!(ns.info().segments.len() > 1);
        assert_eq!(ns.get(b"a").unwrap().unwrap(), b"2");
        let h = ns.history(b"a", None).unwrap().unwrap();
        assert_eq!(ns.history(b"a", h.prev).unwrap().unwrap().payload, b"1");

        let seq = e.create("seq").unwrap();
        seq.change_setting(SettingChange::Mode(Mode::Seq)).unwrap();
        let out = seq.set_many(
            &[
                (b"", b"zero"),
                (b"", b"one"),
                (&seq_key(0), b"zero again"),
                (&seq_key(1), b"one"),
            ],
            None,
        );
        assert_eq!(
            out[0].as_ref().unwrap(),
            &SetOutcome::Written(seq_key(0).to_vec())
        );
        assert_eq!(
            out[1].as_ref().unwrap(),
            &SetOutcome::Written(seq_key(1).to_vec())
        );
        assert_eq!(
            out[2].as_ref().unwrap(),
            &SetOutcome::Written(seq_key(0).to_vec())
        );
        assert_eq!(out[3].as_ref().unwrap(), &SetOutcome::Unchanged);
        // Update ids living in a closed index segment, in a batch.
        seq.jump().unwrap();
        let out = seq.set_many(
            &[
                (&seq_key(1), b"one v2"),
                (b"", b"two"),
                (&seq_key(1), b"one v3"),
            ],
            None,
        );
        assert!(out.iter().all(|r| matches!(r, Ok(SetOutcome::Written(_)))));
        // Ids 2 and 3 went to the placeholders of the two updates before "two".
        assert_eq!(
            out[1].as_ref().unwrap(),
            &SetOutcome::Written(seq_key(4).to_vec())
        );
    }
    let e = open(dir.path());
    let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
    assert_eq!(ns.get(b"a").unwrap().unwrap(), b"2");
    assert_eq!(ns.get(b"big3").unwrap().unwrap().len(), 300 * 1024);
    assert_eq!(ns.len(), 5);
    let seq = e.namespace("seq").unwrap();
    assert_eq!(seq.get(&seq_key(0)).unwrap().unwrap(), b"zero again");
    assert_eq!(seq.get(&seq_key(1)).unwrap().unwrap(), b"one v3");
    assert_eq!(seq.get(&seq_key(4)).unwrap().unwrap(), b"two");
    assert_eq!(seq.get(&seq_key(2)).unwrap(), None);
    assert_eq!(seq.len(), 3);
    assert_eq!(seq.info().next_id, 6);
}

/// Values lie in the segment files as written: folders 0700 and files 0600 whatever the
/// umask, and folders an older build left open to others are closed when opened.
#[test]
fn stored_data_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path());
        let ns = e.create("private").unwrap();
        ns.change_setting(SettingChange::Password(Some("pw".into())))
            .unwrap();
        ns.set(b"k", b"plaintext", None).unwrap();
    }
    let mut seen = 0;
    let mut stack = vec![dir.path().join("data"), dir.path().join("index")];
    while let Some(d) = stack.pop() {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 5, "segments and descriptors checked: {seen}");
    for open_to_all in ["data", "data/private", "index/private"] {
        let p = dir.path().join(open_to_all);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let e = open(dir.path());
    assert_eq!(
        e.namespace("private").unwrap().get(b"k").unwrap().unwrap(),
        b"plaintext"
    );
    for p in ["data", "data/private", "index/private"] {
        assert_eq!(mode(&dir.path().join(p)), 0o700, "{p} closed again");
    }
}

#[test]
fn get_append_appends_what_get_returns() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
    // Small, one piece exactly, several pieces and a partial last one.
    let values: Vec<Vec<u8>> = [1usize, 16 * 1024, 100_000]
        .iter()
        .map(|&n| (0..n).map(|i| (i * 31 % 251) as u8).collect())
        .collect();
    for (i, v) in values.iter().enumerate() {
        written(ns.set(format!("k{i}").as_bytes(), v, None).unwrap());
    }
    let mut out = b"before".to_vec();
    for (i, v) in values.iter().enumerate() {
        assert!(ns.get_append(format!("k{i}").as_bytes(), &mut out).unwrap());
        assert_eq!(
            ns.get(format!("k{i}").as_bytes()).unwrap().as_ref(),
            Some(v)
        );
    }
    let want: Vec<u8> = b"before"
        .iter()
        .chain(values.iter().flatten())
        .copied()
        .collect();
    assert_eq!(out, want);
    assert!(!ns.get_append(b"absent", &mut out).unwrap());
    assert_eq!(out, want, "nothing appended for an absent key");
    // Served from a closed segment after a restart too (mapped at its exact length).
    drop(ns);
    drop(e);
    let e = open(dir.path());
    let ns = e.namespace(DEFAULT_NAMESPACE).unwrap();
    let mut out = Vec::new();
    assert!(ns.get_append(b"k2", &mut out).unwrap());
    assert_eq!(out, values[2]);
}
