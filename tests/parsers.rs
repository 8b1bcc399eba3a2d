//! Parsers never panic: arbitrary bytes as an image, a manifest, a configuration or a suite
//! give an error (or a value), never a crash. Fixed case count and seed in CI (Makefile).
mod common;
use proptest::prelude::*;
use std::path::Path;
use xaudit::config::Config;

fn toml_like() -> impl Strategy<Value = String> {
    let tokens = prop_oneof![
        Just("name = \"s\"\n".to_string()),
        Just("[[audit]]\n".to_string()),
        Just("id = \"attack-top-k\"\n".to_string()),
        Just("id = \"fuzz\"\n".to_string()),
        Just("threshold = 0.5\n".to_string()),
        Just("threshold = -1e309\n".to_string()),
        Just("direction = \"different\"\n".to_string()),
        Just("params = { iterations = 0, epsilon = nan }\n".to_string()),
        Just("params = { budget = { max-ops = 0 } }\n".to_string()),
        Just("methods = [\"saliency\", \"nope\"]\n".to_string()),
        Just("include = [\"sanity\"]\n".to_string()),
        Just("[preprocess]\nchannels = 3\nsize = [0, 4]\n".to_string()),
        Just("[[ignore]]\naudit = \"XA001\"\nreason = \"\"\n".to_string()),
        Just("seed = 18446744073709551615\n".to_string()),
        Just("alpha = 1.5\n".to_string()),
        "[ -~]{0,20}\n",
    ];
    prop::collection::vec(tokens, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn image_decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048), png_header in any::<bool>()) {
        let mut b = bytes;
        if png_header {
            // Valid signature, garbage afterwards: reaches deeper into the decoder.
            let mut h = b"\x89PNG\r\n\x1a\n".to_vec();
            h.extend(b);
            b = h;
        }
        let _ = xaudit::data::image::decode_bytes(&b, Path::new("fuzz.png"), &common::digits_pre());
    }

    #[test]
    fn configuration_parsing_never_panics(text in toml_like(), raw in "\\PC{0,200}") {
        let _ = Config::parse(&text, "fuzz.toml");
        let _ = Config::parse(&raw, "fuzz.toml");
    }

    #[test]
    fn suite_and_manifest_parsing_never_panic(text in toml_like(), csv in "[ -~\n,]{0,300}") {
        let dir = tempfile::tempdir().unwrap();
        let suite = dir.path().join("s.toml");
        std::fs::write(&suite, &text).unwrap();
        let _ = xaudit::suite::Suite::load(suite.to_str().unwrap());
        let manifest = dir.path().join("m.csv");
        std::fs::write(&manifest, &csv).unwrap();
        let _ = xaudit::data::Dataset::from_manifest(&manifest);
    }
}
