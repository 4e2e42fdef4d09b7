//! keel-sdk carries a copy of the kernel's ISO 4217 exponents (plugins must not pull in the
//! domain crate): the two are the same, code by code.

use keel_domain::currency::Currency;

#[test]
fn the_sdk_knows_exactly_the_kernel_s_currencies_and_exponents() {
    let kernel: Vec<(String, u32)> = Currency::all()
        .map(|c| (c.code().to_owned(), u32::from(c.exponent())))
        .collect();
    let sdk: Vec<(String, u32)> = keel_sdk::currency::EXPONENTS
        .iter()
        .map(|(code, exponent)| ((*code).to_owned(), *exponent))
        .collect();
    assert_eq!(sdk, kernel);
}
