//! Property tests: no input panics the validator; any truncation or bit flip of a valid
//! token is refused.

mod common;

use common::*;
use proptest::prelude::*;
use winmdm_testkit::entra::{ALICE, AccessToken, CONTOSO};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,600}") {
        let v = validator();
        let _ = v.validate(&s, now());
        let _ = winmdm_entra::decode_unverified(&s);
    }

    #[test]
    fn jws_shaped_garbage_never_panics(h in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,200}", s in "[A-Za-z0-9_-]{0,400}") {
        let v = validator();
        let _ = v.validate(&format!("{h}.{c}.{s}"), now());
    }

    #[test]
    fn truncation_is_refused(cut in 0usize..10_000) {
        let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
        let cut = cut % token.len();
        prop_assert!(validator().validate(&token[..cut], now()).is_err());
    }

    #[test]
    fn any_bit_flip_is_refused(index in 0usize..10_000, bit in 0u8..8) {
        let token = AccessToken::v2(&CONTOSO, &ALICE).sign();
        let mut bytes = token.into_bytes();
        let i = index % bytes.len();
        bytes[i] ^= 1 << bit;
        // A flip may leave invalid UTF-8; the validator takes &str, so such input never arrives.
        if let Ok(flipped) = String::from_utf8(bytes) {
            prop_assert!(validator().validate(&flipped, now()).is_err());
        }
    }
}
