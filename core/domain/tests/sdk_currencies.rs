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

/// keel-sdk for Python's table (`sdk/python/src/keel_sdk/money.py`, `EXPONENTS`): the
/// `"XXX": n` pairs of its literal, in order.
#[test]
fn the_python_sdk_knows_exactly_the_kernel_s_currencies_and_exponents() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../sdk/python/src/keel_sdk/money.py"
    );
    let source = std::fs::read_to_string(path).unwrap();
    let start = source
        .find("EXPONENTS: dict[str, int] = {")
        .expect("the table");
    let table = &source[start..start + source[start..].find('}').expect("its end")];
    // `{ "AED": 2, "AFN": 2, ... }` split at the quotes: the prefix, then code and
    // `: n, ` by turns.
    let parts: Vec<&str> = table.split('"').skip(1).collect();
    let python: Vec<(String, u32)> = parts
        .chunks(2)
        .map(|pair| {
            let exponent = pair
                .get(1)
                .and_then(|rest| {
                    rest.trim()
                        .trim_start_matches(':')
                        .trim()
                        .trim_end_matches(',')
                        .parse()
                        .ok()
                })
                .unwrap_or_else(|| panic!("no exponent after {:?}", pair[0]));
            (pair[0].to_owned(), exponent)
        })
        .collect();
    let kernel: Vec<(String, u32)> = Currency::all()
        .map(|c| (c.code().to_owned(), u32::from(c.exponent())))
        .collect();
    assert_eq!(python, kernel);
}
