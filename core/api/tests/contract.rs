//! The OpenAPI document is the API's contract (issue 14, finding 11): a request the document
//! calls valid is never refused for its form. A generated client that validates against
//! the document before sending must not meet a `422 invalid_*` it could have caught.
//!
//! The test reads the served document, and for every operation draws requests from its
//! schemas: every path, query and body value within what the document states (types,
//! enums, formats, patterns, lengths, bounds), pushed to the edges (the longest string, the
//! largest number, the oldest date the format allows). It sends them as the admin over a
//! database seeded with the demo, so paths name real records. A refusal for the request's
//! form (400 or 422 with a code not in [`STATE_RULES`]) or any 5xx is a breach of contract,
//! reported with the operation, the request and the answer. One draw in three instead
//! breaks exactly one constraint the document states exactly (a length, a bound, an enum,
//! a least number of items): the API must refuse it with a 4xx, never take it in.
//!
//! Refusals that depend on the books rather than on the request's form (an invoice already
//! paid, a currency the product has no price in, a date range the wrong way round) cannot
//! be stated by a schema; [`STATE_RULES`] lists them, each with why.

mod common;

use common::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use regex_automata::meta::Regex;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// Refusals a schema cannot state, as `(code, field, why)`: they depend on the books (a
/// record that does not exist, a balance), on the key that asks, or on more than one field
/// at once. An empty field matches any. Anything else refused with 400 or 422 is a gap in
/// the document.
#[rustfmt::skip]
const STATE_RULES: &[(&str, &str, &str)] = &[
    ("unknown_product", "", "names a product that does not exist"),
    ("unknown_product_group", "", "names a product group that does not exist"),
    ("unknown_client_group", "", "names a client group that does not exist"),
    ("unknown_policy", "", "names a dunning policy that does not exist"),
    ("unknown_line", "", "names a line the invoice does not have"),
    ("product_retired", "", "the product was retired"),
    ("no_price", "", "the product has no price in that cycle and currency"),
    ("stock_below_sold", "", "more units are sold than the new stock"),
    ("insufficient_wallet_balance", "", "the wallet's balance"),
    ("too_many_decimals", "", "the decimals allowed depend on the currency"),
    ("missing_client", "", "required of staff and reseller keys, not of client keys"),
    ("cycle_not_allowed", "", "the cycles allowed depend on the product's pay type"),
    ("wrong_value_count", "", "the values an option has depend on its kind"),
    ("invalid_quantity_range", "", "max_qty must not be below min_qty"),
    ("amounts_required", "", "a fixed promotion needs amounts, a percent one does not"),
    ("invalid_percent", "percent", "a percent promotion needs a percent"),
    ("ends_before_start", "", "a promotion's end against its start"),
    ("invalid_region", "", "a rule for every country (*) names no region"),
    ("invalid_field", "company_name", "a company needs a company name"),
    ("invalid_field", "disabled_reason", "a reason goes with \"enabled\": false"),
    ("invalid_field", "scope", "which owner a key names depends on its scope"),
    ("invalid_field", "client_id", "which owner a key names depends on its scope"),
    ("invalid_field", "reseller_id", "which owner a key names depends on its scope"),
    ("invalid_field", "staff_id", "which owner a key names depends on its scope"),
    ("unbalanced_entry", "", "the postings' debits against their credits"),
    ("unknown_addon", "", "names a product that does not exist"),
    ("not_an_addon", "", "the product named is not an add-on"),
    ("amounts_not_allowed", "", "a percent promotion has no amounts"),
    ("percent_not_allowed", "", "a fixed promotion has no percent"),
    ("duplicate_line", "", "two credit lines name the same invoice line"),
    ("same_currency", "", "a rate converts between two different currencies"),
    ("unknown_promo_code", "", "names a promotion code that does not exist"),
    ("amount_overflow", "lines", "a line's quantity times its price"),
    ("negative_invoice", "", "the lines' total against zero"),
    ("discount_too_large", "", "a line's discount against its amount"),
    ("addon_alone", "", "the product named is an add-on, ordered with its parent"),
    ("addon_not_offered", "", "the parent product does not offer that add-on"),
    ("credit_exceeds_invoice", "", "what is left to credit on the invoice"),
    ("overpayment", "", "what is left to pay on the invoice"),
    ("unknown_gateway", "", "names a gateway plugin that is not enabled"),
    ("unknown_channel", "", "names a channel that is not configured"),
];

/// Requests drawn per operation.
const DRAWS: usize = 60;

/// A small deterministic generator (splitmix64): the same seed draws the same requests, so
/// a failure is reproduced by running the test again.
struct Draw {
    state: u64,
    runner: TestRunner,
    patterns: HashMap<String, Option<Regex>>,
}

impl Draw {
    fn new(seed: u64) -> Draw {
        Draw {
            state: seed,
            runner: TestRunner::deterministic(),
            patterns: HashMap::new(),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A string matching `pattern` (anchors stripped: proptest generates whole strings).
    fn drawn_from(&mut self, pattern: &str) -> String {
        let inner = pattern
            .strip_prefix('^')
            .unwrap_or(pattern)
            .strip_suffix('$')
            .unwrap_or(pattern.strip_prefix('^').unwrap_or(pattern));
        let strategy = proptest::string::string_regex(inner)
            .unwrap_or_else(|e| panic!("pattern {pattern:?} does not parse: {e}"));
        strategy
            .new_tree(&mut self.runner)
            .expect("a value")
            .current()
    }

    fn matches(&mut self, pattern: &str, value: &str) -> bool {
        let re = self
            .patterns
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(pattern).ok());
        re.as_ref()
            .unwrap_or_else(|| panic!("pattern {pattern:?} is not a valid regular expression"))
            .is_match(value)
    }
}

/// The document and the generator over it.
struct Gen<'d> {
    doc: &'d Value,
    draw: Draw,
    /// When set, the n-th exactly-stated constraint met while drawing is broken instead of
    /// kept (see [`Gen::breaks`]); `broken` then says which and how.
    poison: Option<usize>,
    broken: Option<String>,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

impl<'d> Gen<'d> {
    fn resolve(&self, schema: &'d Value) -> &'d Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.strip_prefix('#').expect("a local reference");
                self.resolve(
                    self.doc
                        .pointer(pointer)
                        .unwrap_or_else(|| panic!("{r} is not in the document")),
                )
            }
            None => schema,
        }
    }

    /// Whether to break the constraint met now: true once, at the poisoned count.
    fn breaks(&mut self, what: impl FnOnce() -> String) -> bool {
        match self.poison {
            Some(0) => {
                self.poison = None;
                self.broken = Some(what());
                true
            }
            Some(n) => {
                self.poison = Some(n - 1);
                false
            }
            None => false,
        }
    }

    /// A value valid against `schema`, leaning to the edges of what it allows.
    fn value(&mut self, schema: &'d Value) -> Value {
        let schema = self.resolve(schema);
        if let Some(one) = schema.get("oneOf").or(schema.get("anyOf")) {
            let options: Vec<&Value> = one.as_array().expect("an array").iter().collect();
            // Prefer the non-null choice: null is valid, but values reach more rules.
            let non_null: Vec<&Value> = options
                .iter()
                .copied()
                .filter(|o| self.resolve(o).get("type") != Some(&json!("null")))
                .collect();
            let pool = if non_null.is_empty() || self.draw.chance(8) {
                options
            } else {
                non_null
            };
            let choice = *self.draw.pick(&pool);
            return self.value(choice);
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            let mut merged = Map::new();
            for part in all {
                if let Value::Object(o) = self.resolve(part) {
                    for (k, v) in o {
                        merged.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            for (k, v) in schema.as_object().expect("an object") {
                if k != "allOf" {
                    merged.insert(k.clone(), v.clone());
                }
            }
            // The merged schema lives for the whole run: leak it (a test, a few KB).
            let merged: &'d Value = Box::leak(Box::new(Value::Object(merged)));
            return self.value(merged);
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            if self.breaks(|| format!("a value outside the enum {values:?}")) {
                return json!("not-one-of-them");
            }
            return self.draw.pick(values).clone();
        }
        let ty = match schema.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => {
                let non_null: Vec<&Value> = ts.iter().filter(|t| *t != "null").collect();
                if non_null.is_empty() || self.draw.chance(8) {
                    "null".to_owned()
                } else {
                    self.draw
                        .pick(&non_null)
                        .as_str()
                        .expect("a type")
                        .to_owned()
                }
            }
            // No type: anything goes; an object is the likeliest intent.
            None if schema.get("properties").is_some() => "object".to_owned(),
            None => return json!({}),
            Some(other) => panic!("a type that is not a string: {other}"),
        };
        match ty.as_str() {
            "null" => Value::Null,
            "boolean" => Value::Bool(self.draw.chance(2)),
            "integer" => self.integer(schema),
            "number" => self.integer(schema),
            "string" => Value::String(self.string(schema)),
            "array" => {
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
                if min > 0 && self.breaks(|| format!("{} items, below minItems {min}", min - 1)) {
                    let items = schema.get("items").expect("an array has items");
                    return Value::Array((0..min - 1).map(|_| self.value(items)).collect());
                }
                let max = schema
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .map_or(min + 3, |m| m as usize)
                    .min(min + 3);
                let n = min + self.draw.below(max - min + 1);
                let items = schema.get("items").expect("an array has items");
                let mut drawn: Vec<Value> = (0..n).map(|_| self.value(items)).collect();
                if schema.get("uniqueItems") == Some(&json!(true)) {
                    let mut seen = Vec::new();
                    drawn.retain(|v| {
                        let new = !seen.contains(v);
                        seen.push(v.clone());
                        new
                    });
                }
                Value::Array(drawn)
            }
            "object" => self.object(schema),
            other => panic!("unknown type {other}"),
        }
    }

    fn object(&mut self, schema: &'d Value) -> Value {
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = Map::new();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                if prop.get("readOnly") == Some(&json!(true)) {
                    continue;
                }
                if required.contains(&name.as_str()) || self.draw.chance(2) {
                    out.insert(name.clone(), self.value(prop));
                }
            }
        }
        Value::Object(out)
    }

    fn integer(&mut self, schema: &Value) -> Value {
        let mut min = schema
            .get("minimum")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MIN);
        let mut max = schema
            .get("maximum")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MAX);
        if let Some(e) = schema.get("exclusiveMinimum").and_then(Value::as_i64) {
            min = min.max(e + 1);
        }
        if let Some(e) = schema.get("exclusiveMaximum").and_then(Value::as_i64) {
            max = max.min(e - 1);
        }
        if schema.get("format") == Some(&json!("int32")) {
            min = min.max(i64::from(i32::MIN));
            max = max.min(i64::from(i32::MAX));
        }
        // Only bounds the document states as such are broken (a format's range is a type's
        // width, which the API may exceed: u32 is `int32` with minimum 0).
        if schema.get("maximum").is_some()
            && max < i64::MAX
            && self.breaks(|| format!("{}, above maximum {max}", max + 1))
        {
            return Value::from(max + 1);
        }
        if schema.get("minimum").is_some()
            && min > i64::MIN
            && self.breaks(|| format!("{}, below minimum {min}", min - 1))
        {
            return Value::from(min - 1);
        }
        let edges = [min, max, 0, 1, -1, 2, 100, 10_000];
        let candidate = match self.draw.below(3) {
            0 => *self.draw.pick(&edges),
            1 => min.saturating_add(self.draw.below(50) as i64),
            _ => max.saturating_sub(self.draw.below(50) as i64),
        };
        Value::from(candidate.clamp(min, max))
    }

    fn string(&mut self, schema: &Value) -> String {
        let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .map(|m| m as usize);
        let pattern = schema.get("pattern").and_then(Value::as_str);
        let format = schema.get("format").and_then(Value::as_str);
        if let Some(m) = max
            && self.breaks(|| format!("{} characters, above maxLength {m}", m + 1))
        {
            return "a".repeat(m + 1);
        }
        if min > 0 && self.breaks(|| format!("{} characters, below minLength {min}", min - 1)) {
            return "a".repeat(min - 1);
        }
        for _ in 0..200 {
            let candidate = match (pattern, format) {
                // A date's pattern only narrows its years: draw from the format.
                (_, Some(f @ ("date" | "date-time"))) => self.formatted(f),
                (Some(p), _) => self.patterned(p, max),
                (None, Some(f)) => self.formatted(f),
                (None, None) => self.anything(max),
            };
            let n = chars(&candidate);
            if n >= min
                && max.is_none_or(|m| n <= m)
                && pattern.is_none_or(|p| self.draw.matches(p, &candidate))
            {
                return candidate;
            }
        }
        panic!("could not draw a string for {schema}")
    }

    /// A string from the pattern, sometimes stretched to the maximum length by joining
    /// several draws (for patterns of one repeated class, such as the text rules).
    fn patterned(&mut self, pattern: &str, max: Option<usize>) -> String {
        let first = self.draw.drawn_from(pattern);
        let Some(max) = max else { return first };
        if !self.draw.chance(3) {
            return first;
        }
        let mut long = first;
        while chars(&long) < max {
            long.push_str(&self.draw.drawn_from(pattern));
        }
        long.chars().take(max).collect()
    }

    /// A string the format allows, from its edges.
    fn formatted(&mut self, format: &str) -> String {
        match format {
            "date" => {
                let year = *self.draw.pick(&[1, 1000, 1899, 1900, 1970, 2026, 9999]);
                let (month, day) = *self.draw.pick(&[(1, 1), (2, 28), (12, 31), (6, 15)]);
                format!("{year:04}-{month:02}-{day:02}")
            }
            "e164" => self
                .draw
                .pick(&["+263771234567", "+1 202 555 0143"])
                .to_string(),
            "date-time" => {
                let year = *self.draw.pick(&[1, 1899, 1970, 2026, 9999]);
                format!("{year:04}-01-01T00:00:00Z")
            }
            "email" => self
                .draw
                .pick(&[
                    "ada@example.com",
                    "a.b+tag@mail.example.co.zw",
                    "x@example.org",
                ])
                .to_string(),
            "uri" => self
                .draw
                .pick(&["https://example.com/hooks/keel", "http://example.org/"])
                .to_string(),
            "int64" | "int32" => self.draw.below(1000).to_string(),
            other => panic!("a string format the test does not draw: {other}"),
        }
    }

    /// A string the schema puts no rule on: any characters at all.
    fn anything(&mut self, max: Option<usize>) -> String {
        let len = match max {
            Some(m) if self.draw.chance(3) => m,
            Some(m) => self.draw.below(m.min(40) + 1),
            None => [0, 1, 5, 40, 300, 5000][self.draw.below(6)],
        };
        (0..len)
            .map(|_| match self.draw.below(6) {
                0 => char::from_u32(self.draw.below(0x20) as u32).unwrap_or('a'),
                1 => *self
                    .draw
                    .pick(&['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{2028}']),
                2 => char::from_u32(0x80 + self.draw.below(0x2FF80) as u32).unwrap_or('é'),
                _ => (b'a' + self.draw.below(26) as u8) as char,
            })
            .collect()
    }
}

/// An operation of the document.
struct Operation {
    method: Method,
    path: String,
    op: Value,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (name, method) in [
            ("get", Method::GET),
            ("post", Method::POST),
            ("put", Method::PUT),
            ("patch", Method::PATCH),
            ("delete", Method::DELETE),
        ] {
            if let Some(op) = item.get(name) {
                out.push(Operation {
                    method,
                    path: path.clone(),
                    op: op.clone(),
                });
            }
        }
    }
    out
}

/// Ids of records the demo seeded, by the collection path that lists them.
async fn known_ids(api: &Api, doc: &Value) -> BTreeMap<String, Vec<i64>> {
    let mut ids = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if path.contains('{') || item.get("get").is_none() {
            continue;
        }
        let reply = api.get(path, &api.admin).await;
        let items = reply.body["items"]
            .as_array()
            .or(reply.body.as_array())
            .cloned()
            .unwrap_or_default();
        let found: Vec<i64> = items.iter().filter_map(|i| i["id"].as_i64()).collect();
        if !found.is_empty() {
            ids.insert(path.clone(), found);
        }
    }
    ids
}

/// A path parameter: the id of a record of the collection the path sits under, when the
/// demo has one; otherwise a value of the parameter's schema.
fn path_value<'d>(
    g: &mut Gen<'d>,
    ids: &BTreeMap<String, Vec<i64>>,
    path: &str,
    name: &str,
    schema: &'d Value,
) -> String {
    let before = path
        .split(&format!("{{{name}}}"))
        .next()
        .expect("the parameter is in the path")
        .trim_end_matches('/');
    if let Some(found) = ids.get(before) {
        return g.draw.pick(found).to_string();
    }
    match g.value(schema) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What came back.
struct Answer {
    status: u16,
    body: Value,
    text: String,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

async fn send(
    api: &Api,
    method: &Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
    n: usize,
) -> Answer {
    let mut request = api
        .authed(method.clone(), path, key)
        .header("idempotency-key", format!("contract-{n}"));
    if let Some(body) = body {
        request = request.json(body);
    }
    match request.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let text = res.text().await.unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            Answer { status, body, text }
        }
        Err(e) => Answer {
            status: 0,
            body: Value::Null,
            text: format!("no answer: {e}"),
        },
    }
}

/// One breach: the operation, what was sent, and what came back.
struct Breach {
    operation: String,
    code: String,
    request: String,
    answer: String,
}

keel_testkit::store_test!(
    async fn every_request_the_document_allows_is_taken_in_or_refused_for_the_books(t) {
        let seeder = keel_app::App::new(t.db.clone());
        keel_app::demo::seed(&seeder).await.expect("the demo seeds");
        let api = Api::start(t).await;
        let reply = api.get("/api/v1/openapi.json", &api.admin).await;
        assert_eq!(reply.status, 200);
        let doc: &'static Value = Box::leak(Box::new(reply.body));
        let ids = known_ids(&api, doc).await;
        let mut g = Gen {
            doc,
            // A fixed seed, so a failure is reproduced by running again;
            // KEEL_CONTRACT_SEED draws another set.
            draw: Draw::new(
                std::env::var("KEEL_CONTRACT_SEED")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0x4B45_454C),
            ),
            poison: None,
            broken: None,
        };
        let mut breaches: Vec<Breach> = Vec::new();
        let mut sent = 0usize;
        let mut seen: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        // Deletions run last: a deleted record answers 404 to every later draw on it.
        let mut ops = operations(doc);
        ops.sort_by_key(|o| o.method == Method::DELETE);
        let mut admin = api.admin.clone();
        for operation in ops {
            // Each draw is either a request the document allows, or (one in three) one that
            // breaks exactly one constraint the document states exactly (a length, a bound,
            // an enum, a least number of items), which the API must refuse with a 4xx.
            for draw in 0..DRAWS {
                g.broken = None;
                g.poison = (draw % 3 == 2).then(|| g.draw.below(8));
                let mut path = operation.path.clone();
                let mut query = Vec::new();
                for p in operation.op["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    let p: &'static Value = Box::leak(Box::new(p));
                    let name = p["name"].as_str().expect("a name");
                    let schema = &p["schema"];
                    match p["in"].as_str() {
                        Some("path") => {
                            let v = path_value(&mut g, &ids, &operation.path, name, schema);
                            path = path.replace(&format!("{{{name}}}"), &encode(&v));
                        }
                        Some("query") if p["required"] == json!(true) || g.draw.chance(2) => {
                            let v = match g.value(schema) {
                                Value::String(s) => s,
                                Value::Null => continue,
                                other => other.to_string(),
                            };
                            query.push(format!("{}={}", encode(name), encode(&v)));
                        }
                        _ => {}
                    }
                }
                if !query.is_empty() {
                    path = format!("{path}?{}", query.join("&"));
                }
                let body = operation
                    .op
                    .pointer("/requestBody/content/application~1json/schema")
                    .map(|s| {
                        let s: &'static Value = Box::leak(Box::new(s.clone()));
                        g.value(s)
                    });
                g.poison = None;
                let broken = g.broken.take();
                if draw % 3 == 2 && broken.is_none() {
                    continue; // fewer constraints than the poisoned count: nothing broken
                }
                let mut reply = send(&api, &operation.method, &path, &admin, body.as_ref(), sent).await;
                if reply.code() == "api_key_revoked" {
                    // A draw revoked the admin's own key (DELETE /api-keys/{id} with its id):
                    // a new one, and the request again.
                    admin = admin_key(&api.app).await;
                    reply = send(&api, &operation.method, &path, &admin, body.as_ref(), sent).await;
                }
                sent += 1;
                *seen
                    .entry(format!("{} {}", operation.method, operation.path))
                    .or_default()
                    .entry(format!("{} {}", reply.status, reply.code()))
                    .or_default() += 1;
                let field = reply.body["error"]["details"]["field"].as_str().unwrap_or("");
                let breach = match &broken {
                    // A request the document refuses must not be taken in (or crash).
                    Some(_) => !(400..500).contains(&reply.status),
                    None => {
                        let refused_for_form = (reply.status == 400 || reply.status == 422)
                            && !STATE_RULES.iter().any(|(code, f, _)| {
                                *code == reply.code() && (f.is_empty() || *f == field)
                            });
                        refused_for_form || reply.status >= 500 || reply.status == 0
                    }
                };
                if breach {
                    let body = body.map(|b| b.to_string()).unwrap_or_default();
                    let request = format!("{} {path} ({} bytes) {body}", operation.method, body.len());
                    let kind = match &broken {
                        Some(how) => format!("taken in, though it breaks the document: {how}: "),
                        None => String::new(),
                    };
                    breaches.push(Breach {
                        operation: format!("{} {}", operation.method, operation.path),
                        code: format!("{kind}{} {}", reply.status, reply.code()),
                        request: request.chars().take(600).collect(),
                        answer: reply.text.chars().take(400).collect(),
                    });
                }
            }
        }
        api.stop().await;
        // What each operation answered: run with --nocapture to see how far the draws reach.
        for (op, answers) in &seen {
            eprintln!("{op}: {answers:?}");
        }
        let mut by_gap: BTreeMap<(String, String), (usize, String, String)> = BTreeMap::new();
        for b in breaches {
            let e = by_gap
                .entry((b.operation, b.code))
                .or_insert((0, b.request, b.answer));
            e.0 += 1;
        }
        let report: Vec<String> = by_gap
            .iter()
            .map(|((op, code), (n, req, ans))| {
                format!("{op} -> {code} ({n}x)\n    sent: {req}\n    got:  {ans}")
            })
            .collect();
        assert!(
            report.is_empty(),
            "{} of {sent} requests broke the contract (refused for their form though the \
             document allows them, or taken in though it refuses them), in {} gaps:\n{}",
            by_gap.values().map(|v| v.0).sum::<usize>(),
            report.len(),
            report.join("\n")
        );
    }
);
