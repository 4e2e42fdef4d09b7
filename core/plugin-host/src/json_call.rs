//! Calls by name with JSON values: what `keel plugin call` and `keel plugin test` run, so a
//! plugin's operations can be tried and tested in the real host without Rust types for them
//! (and whatever language the plugin is written in).
//!
//! A WIT value as JSON (input and output alike; input names may use `_` for `-`):
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool`, integers, floats | a boolean, a number (a 64-bit integer may also be a string of digits) |
//! | `char`, `string` | a string |
//! | `list<u8>` | a string (its UTF-8 bytes), or an array of numbers; output is a string when the bytes are UTF-8 |
//! | other `list`, `tuple` | an array |
//! | `record` | an object keyed by field name (`retry-after-seconds`); an `option` field may be left out |
//! | `variant` | `"case"` for a case without a payload, `{"case": payload}` otherwise |
//! | `enum` | `"case"` |
//! | `option<T>` | `null` or the value |
//! | `result<T, E>` | `{"ok": T}` or `{"err": E}` |
//! | `flags` | an array of the flags set |
//!
//! An operation with one parameter takes that parameter's value as its input; one with
//! several takes an object keyed by parameter name; one with none takes `null` or `{}`.
//! An operation's `result<T, plugin-error>` comes back as `T` on success and as the
//! [`PluginError`] it answered otherwise.

use serde_json::{Map, Value};
use wasmtime::component::Val;
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};

use crate::failure::{PluginError, PluginFailure, RetryHint};
use crate::host::{Captured, Plugin};
use crate::manifest::Kind;

/// One operation of a plugin's kind, as [`Plugin::operations`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The WIT name: `verify-callback`.
    pub name: String,
    /// Parameter names, in order.
    pub params: Vec<String>,
}

/// What a call by name gave: the answer as JSON or the failure, and what the plugin wrote to
/// stderr and logged meanwhile.
#[derive(Debug, Clone)]
pub struct JsonCall {
    pub result: Result<Value, PluginFailure>,
    pub captured: Captured,
}

impl Plugin {
    /// The operations the plugin exports for `kind`, in the component's order; empty when it
    /// does not implement the kind.
    pub fn operations(&self, kind: Kind) -> Vec<Operation> {
        match self.interface(kind) {
            None => Vec::new(),
            Some((_, funcs)) => funcs
                .into_iter()
                .map(|(name, f)| Operation {
                    name,
                    params: f.params().map(|(p, _)| p.to_owned()).collect(),
                })
                .collect(),
        }
    }

    /// Runs `operation` of `kind` with `input` (the JSON form described in this module), in a
    /// fresh store under the same limits and grant as every other call. `Err` is a problem
    /// with the question (no such kind or operation, an input that does not fit the
    /// operation's parameters), told in a sentence that names the place.
    pub async fn call_json(
        &self,
        kind: Kind,
        operation: &str,
        input: &Value,
    ) -> Result<JsonCall, String> {
        let Some((interface, funcs)) = self.interface(kind) else {
            return Err(format!(
                "plugin `{}` does not implement the {kind} kind (its kinds: {})",
                self.id(),
                self.manifest()
                    .kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let wanted = operation.replace('_', "-");
        let Some((name, func)) = funcs.iter().find(|(n, _)| *n == wanted).cloned() else {
            let names: Vec<&str> = funcs.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "the {kind} kind has no operation `{operation}` (it has: {})",
                names.join(", ")
            ));
        };
        let params = params_of(&func, input)?;
        let results: Vec<Type> = func.results().collect();
        let op: &'static str = static_name(&name);
        let pre = self.inner.pre.clone();
        let (result, captured) = self
            .run_captured(kind, op, move |store| {
                Box::pin(async move {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let iface = instance
                        .get_export_index(&mut *store, None, &interface)
                        .ok_or_else(|| wasmtime::Error::msg(format!("no export {interface}")))?;
                    let index = instance
                        .get_export_index(&mut *store, Some(&iface), &name)
                        .ok_or_else(|| wasmtime::Error::msg(format!("no export {name}")))?;
                    let func = instance
                        .get_func(&mut *store, index)
                        .ok_or_else(|| wasmtime::Error::msg(format!("{name} is not a function")))?;
                    let mut out = vec![Val::Bool(false); results.len()];
                    func.call_async(&mut *store, &params, &mut out).await?;
                    Ok(answer(&results, out))
                })
            })
            .await;
        Ok(JsonCall { result, captured })
    }

    /// The exported `keel:plugin/<kind>@<version>` instance's name and its functions.
    fn interface(&self, kind: Kind) -> Option<(String, Vec<(String, ComponentFunc)>)> {
        let engine = self.inner.pre.component().engine();
        let prefix = format!("keel:plugin/{kind}@");
        let ty = self.inner.pre.component().component_type();
        let (name, item) = ty.exports(engine).find(|(n, _)| n.starts_with(&prefix))?;
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            return None;
        };
        let funcs = instance
            .exports(engine)
            .filter_map(|(n, item)| match item.ty {
                ComponentItem::ComponentFunc(f) => Some((n.to_owned(), f)),
                _ => None,
            })
            .collect();
        Some((name.to_owned(), funcs))
    }
}

/// Operation names are few and fixed by the WIT; metrics labels want `&'static str`.
fn static_name(name: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The function's parameters from `input`.
fn params_of(func: &ComponentFunc, input: &Value) -> Result<Vec<Val>, String> {
    let params: Vec<(&str, Type)> = func.params().collect();
    match params.as_slice() {
        [] => match input {
            Value::Null => Ok(Vec::new()),
            Value::Object(m) if m.is_empty() => Ok(Vec::new()),
            other => Err(format!("this operation takes no input, not {other}")),
        },
        [(name, ty)] => Ok(vec![to_val(ty, input, name)?]),
        several => {
            let Value::Object(map) = input else {
                return Err(format!(
                    "this operation takes an object with {}",
                    several
                        .iter()
                        .map(|(n, _)| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            let names: Vec<&str> = several.iter().map(|(n, _)| *n).collect();
            check_keys(map, &names, "the input")?;
            several
                .iter()
                .map(|(name, ty)| match get(map, name) {
                    Some(v) => to_val(ty, v, name),
                    None => Err(format!("the input has no `{name}`")),
                })
                .collect()
        }
    }
}

/// The call's answer: `result<T, plugin-error>` split into its sides, anything else as it is.
fn answer(types: &[Type], values: Vec<Val>) -> Result<Value, PluginError> {
    match (types, values.as_slice()) {
        ([], []) => Ok(Value::Null),
        ([Type::Result(rt)], [Val::Result(r)]) => match r {
            Ok(v) => Ok(match (rt.ok(), v) {
                (Some(t), Some(v)) => from_val(&t, v),
                _ => Value::Null,
            }),
            Err(e) => Err(match e.as_deref() {
                Some(v) => plugin_error_of(v),
                None => {
                    PluginError::Internal("the plugin answered an error without a value".into())
                }
            }),
        },
        ([t], [v]) => Ok(from_val(t, v)),
        _ => Ok(Value::Array(
            types
                .iter()
                .zip(&values)
                .map(|(t, v)| from_val(t, v))
                .collect(),
        )),
    }
}

/// A `plugin-error` value as the host's type.
fn plugin_error_of(v: &Val) -> PluginError {
    let text = |p: &Option<Box<Val>>| match p.as_deref() {
        Some(Val::String(s)) => s.clone(),
        _ => String::new(),
    };
    match v {
        Val::Variant(case, payload) => match case.as_str() {
            "invalid-input" => PluginError::InvalidInput(text(payload)),
            "refused" => PluginError::Refused(text(payload)),
            "misconfigured" => PluginError::Misconfigured(text(payload)),
            "internal" => PluginError::Internal(text(payload)),
            "unsupported" => PluginError::Unsupported,
            "unavailable" => {
                let mut hint = RetryHint {
                    reason: String::new(),
                    retry_after_seconds: None,
                };
                if let Some(Val::Record(fields)) = payload.as_deref() {
                    for (name, value) in fields {
                        match (name.as_str(), value) {
                            ("reason", Val::String(s)) => hint.reason = s.clone(),
                            ("retry-after-seconds", Val::Option(Some(n))) => {
                                if let Val::U32(n) = **n {
                                    hint.retry_after_seconds = Some(n);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                PluginError::Unavailable(hint)
            }
            other => PluginError::Internal(format!("an error this host does not know: {other}")),
        },
        other => PluginError::Internal(format!("an error that is not a plugin-error: {other:?}")),
    }
}

/// `map[name]`, or `map[name with - as _]`.
fn get<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| map.get(&name.replace('-', "_")))
}

/// Refuses keys that name none of `names` (with `_` for `-` allowed).
fn check_keys(map: &Map<String, Value>, names: &[&str], what: &str) -> Result<(), String> {
    for key in map.keys() {
        let wanted = key.replace('_', "-");
        if !names.contains(&wanted.as_str()) {
            return Err(format!(
                "{what} has no field `{key}` (it has: {})",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

fn integer(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An `f32` parameter takes the nearest `f32`.
#[allow(
    clippy::cast_possible_truncation,
    reason = "the nearest f32 is what is wanted"
)]
fn nearest_f32(f: f64) -> f32 {
    f as f32
}

/// `v` as a value of type `ty`; `at` names the place for an error.
pub fn to_val(ty: &Type, v: &Value, at: &str) -> Result<Val, String> {
    let wrong = |expected: &str| Err(format!("`{at}` must be {expected}, not {v}"));
    macro_rules! int {
        ($variant:ident, $t:ty) => {
            match integer(v).and_then(|n| <$t>::try_from(n).ok()) {
                Some(n) => Ok(Val::$variant(n)),
                None => wrong(concat!("an integer that fits ", stringify!($t))),
            }
        };
    }
    match ty {
        Type::Bool => v
            .as_bool()
            .map(Val::Bool)
            .map_or_else(|| wrong("true or false"), Ok),
        Type::S8 => int!(S8, i8),
        Type::U8 => int!(U8, u8),
        Type::S16 => int!(S16, i16),
        Type::U16 => int!(U16, u16),
        Type::S32 => int!(S32, i32),
        Type::U32 => int!(U32, u32),
        Type::S64 => int!(S64, i64),
        Type::U64 => int!(U64, u64),
        Type::Float32 => v
            .as_f64()
            .map(|f| Val::Float32(nearest_f32(f)))
            .map_or_else(|| wrong("a number"), Ok),
        Type::Float64 => v
            .as_f64()
            .map(Val::Float64)
            .map_or_else(|| wrong("a number"), Ok),
        Type::Char => match v.as_str().map(|s| {
            let mut chars = s.chars();
            (chars.next(), chars.next())
        }) {
            Some((Some(c), None)) => Ok(Val::Char(c)),
            _ => wrong("a string of one character"),
        },
        Type::String => v
            .as_str()
            .map(|s| Val::String(s.to_owned()))
            .map_or_else(|| wrong("a string"), Ok),
        Type::List(list) => {
            let elem = list.ty();
            match (v, &elem) {
                (Value::String(s), Type::U8) => Ok(Val::List(s.bytes().map(Val::U8).collect())),
                (Value::Array(items), _) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| to_val(&elem, item, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()
                    .map(Val::List),
                _ if matches!(elem, Type::U8) => wrong("a string or an array of bytes"),
                _ => wrong("an array"),
            }
        }
        Type::Record(record) => {
            let Value::Object(map) = v else {
                return wrong("an object");
            };
            let names: Vec<&str> = record.fields().map(|f| f.name).collect();
            check_keys(map, &names, &format!("`{at}`"))?;
            record
                .fields()
                .map(|field| {
                    let place = format!("{at}.{}", field.name);
                    let value = match get(map, field.name) {
                        Some(value) => to_val(&field.ty, value, &place)?,
                        None if matches!(field.ty, Type::Option(_)) => Val::Option(None),
                        None => return Err(format!("`{at}` has no `{}`", field.name)),
                    };
                    Ok((field.name.to_owned(), value))
                })
                .collect::<Result<_, _>>()
                .map(Val::Record)
        }
        Type::Tuple(tuple) => {
            let Value::Array(items) = v else {
                return wrong("an array");
            };
            let types: Vec<Type> = tuple.types().collect();
            if items.len() != types.len() {
                return wrong(&format!("an array of {}", types.len()));
            }
            types
                .iter()
                .zip(items)
                .enumerate()
                .map(|(i, (t, item))| to_val(t, item, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()
                .map(Val::Tuple)
        }
        Type::Variant(variant) => {
            let cases: Vec<(String, Option<Type>)> =
                variant.cases().map(|c| (c.name.to_owned(), c.ty)).collect();
            let names = || {
                cases
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let (case, payload) = match v {
                Value::String(s) => (s.replace('_', "-"), None),
                Value::Object(m) if m.len() == 1 => {
                    let (k, p) = m.iter().next().expect("one entry");
                    (k.replace('_', "-"), Some(p))
                }
                _ => {
                    return wrong(&format!(
                        "\"case\" or {{\"case\": value}}, a case of {}",
                        names()
                    ));
                }
            };
            let Some((name, ty)) = cases.iter().find(|(n, _)| *n == case) else {
                return Err(format!("`{at}`: no case `{case}` (cases: {})", names()));
            };
            match (ty, payload) {
                (None, None | Some(Value::Null)) => Ok(Val::Variant(name.clone(), None)),
                (Some(t), Some(p)) => Ok(Val::Variant(
                    name.clone(),
                    Some(Box::new(to_val(t, p, &format!("{at}.{name}"))?)),
                )),
                (Some(_), None) => Err(format!(
                    "`{at}`: the case `{name}` takes a value: {{\"{name}\": …}}"
                )),
                (None, Some(_)) => Err(format!("`{at}`: the case `{name}` takes no value")),
            }
        }
        Type::Enum(e) => match v.as_str().map(|s| s.replace('_', "-")) {
            Some(s) if e.names().any(|n| n == s) => Ok(Val::Enum(s)),
            _ => wrong(&format!(
                "one of {}",
                e.names()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
        Type::Option(o) => match v {
            Value::Null => Ok(Val::Option(None)),
            some => Ok(Val::Option(Some(Box::new(to_val(&o.ty(), some, at)?)))),
        },
        Type::Result(r) => {
            let side = |t: Option<Type>,
                        value: &Value,
                        place: String|
             -> Result<Option<Box<Val>>, String> {
                match t {
                    None => Ok(None),
                    Some(t) => Ok(Some(Box::new(to_val(&t, value, &place)?))),
                }
            };
            match v {
                Value::Object(m) if m.len() == 1 && m.contains_key("ok") => {
                    Ok(Val::Result(Ok(side(r.ok(), &m["ok"], format!("{at}.ok"))?)))
                }
                Value::Object(m) if m.len() == 1 && m.contains_key("err") => Ok(Val::Result(Err(
                    side(r.err(), &m["err"], format!("{at}.err"))?,
                ))),
                _ => wrong("{\"ok\": …} or {\"err\": …}"),
            }
        }
        Type::Flags(flags) => {
            let Value::Array(items) = v else {
                return wrong("an array of flag names");
            };
            items
                .iter()
                .map(|item| match item.as_str() {
                    Some(s) if flags.names().any(|n| n == s) => Ok(s.to_owned()),
                    _ => Err(format!(
                        "`{at}`: {item} is not a flag (flags: {})",
                        flags.names().collect::<Vec<_>>().join(", ")
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Val::Flags)
        }
        other => Err(format!(
            "`{at}`: values of type {other:?} cannot be given as JSON"
        )),
    }
}

/// `val` (of type `ty`) as JSON.
pub fn from_val(ty: &Type, val: &Val) -> Value {
    match (ty, val) {
        (_, Val::Bool(b)) => Value::Bool(*b),
        (_, Val::S8(n)) => Value::from(*n),
        (_, Val::U8(n)) => Value::from(*n),
        (_, Val::S16(n)) => Value::from(*n),
        (_, Val::U16(n)) => Value::from(*n),
        (_, Val::S32(n)) => Value::from(*n),
        (_, Val::U32(n)) => Value::from(*n),
        (_, Val::S64(n)) => Value::from(*n),
        (_, Val::U64(n)) => Value::from(*n),
        (_, Val::Float32(f)) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number)
        }
        (_, Val::Float64(f)) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        (_, Val::Char(c)) => Value::String(c.to_string()),
        (_, Val::String(s)) => Value::String(s.clone()),
        (Type::List(list), Val::List(items)) => {
            let elem = list.ty();
            if matches!(elem, Type::U8) {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|v| if let Val::U8(b) = v { *b } else { 0 })
                    .collect();
                if let Ok(text) = String::from_utf8(bytes) {
                    return Value::String(text);
                }
            }
            Value::Array(items.iter().map(|v| from_val(&elem, v)).collect())
        }
        (Type::Record(record), Val::Record(fields)) => Value::Object(
            record
                .fields()
                .zip(fields)
                .map(|(f, (name, v))| (name.clone(), from_val(&f.ty, v)))
                .collect(),
        ),
        (Type::Tuple(tuple), Val::Tuple(items)) => Value::Array(
            tuple
                .types()
                .zip(items)
                .map(|(t, v)| from_val(&t, v))
                .collect(),
        ),
        (Type::Variant(variant), Val::Variant(case, payload)) => match payload {
            None => Value::String(case.clone()),
            Some(p) => {
                let ty = variant.cases().find(|c| c.name == case).and_then(|c| c.ty);
                let inner = ty.map_or(Value::Null, |t| from_val(&t, p));
                Value::Object(Map::from_iter([(case.clone(), inner)]))
            }
        },
        (_, Val::Enum(case)) => Value::String(case.clone()),
        (Type::Option(o), Val::Option(v)) => {
            v.as_deref().map_or(Value::Null, |v| from_val(&o.ty(), v))
        }
        (Type::Result(r), Val::Result(res)) => {
            let (key, ty, v) = match res {
                Ok(v) => ("ok", r.ok(), v),
                Err(v) => ("err", r.err(), v),
            };
            let inner = match (ty, v.as_deref()) {
                (Some(t), Some(v)) => from_val(&t, v),
                _ => Value::Null,
            };
            Value::Object(Map::from_iter([(key.to_owned(), inner)]))
        }
        (_, Val::Flags(names)) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        (_, other) => Value::String(format!("{other:?}")),
    }
}
