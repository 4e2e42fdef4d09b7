//! Reading a `POST /{version}/{phone_number_id}/messages` body (PROVIDERS.md §3.1) into what
//! the fake records, or the code-100 error Meta answers for a bad shape.

use serde_json::{Map, Value};

use super::{Component, Content, Parameter};

/// The longest `text.body` Meta accepts.
pub const TEXT_BODY_MAX_CHARS: usize = 4096;
/// The longest media `caption`.
pub const CAPTION_MAX_CHARS: usize = 1024;
/// The longest `biz_opaque_callback_data`.
pub const CALLBACK_DATA_MAX_CHARS: usize = 512;

/// What a valid body asks for.
pub(super) enum Parsed {
    Send(Outgoing),
    /// `{"messaging_product":"whatsapp","status":"read","message_id":…}`.
    MarkRead {
        message_id: String,
    },
}

pub(super) struct Outgoing {
    pub to: String,
    pub content: Content,
    pub biz_opaque_callback_data: Option<String>,
    pub reply_to: Option<String>,
}

/// A code-100 error: `error.message` and `error.error_data.details`.
#[derive(Debug)]
pub(super) struct Invalid {
    pub message: String,
    pub details: String,
}

/// Graph's wording for a parameter left out.
pub(super) fn required(param: &str) -> Invalid {
    Invalid {
        message: format!("(#100) The parameter {param} is required."),
        details: format!("The parameter {param} is required."),
    }
}

/// An invalid value: Graph's generic message, the fake's own details.
pub(super) fn invalid(details: impl Into<String>) -> Invalid {
    Invalid {
        message: "(#100) Invalid parameter".to_owned(),
        details: details.into(),
    }
}

fn too_long(param: &str, max: usize) -> Invalid {
    Invalid {
        message: format!("(#100) Param {param} must be at most {max} characters long."),
        details: format!("Param {param} must be at most {max} characters long."),
    }
}

/// A string that is present and not empty, or `required(param)`.
fn required_text(object: &Map<String, Value>, key: &str, param: &str) -> Result<String, Invalid> {
    match object.get(key) {
        None | Some(Value::Null) => Err(required(param)),
        Some(Value::String(s)) if s.is_empty() => Err(required(param)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid(format!("Param {param} must be a string"))),
    }
}

fn optional_text(
    object: &Map<String, Value>,
    key: &str,
    param: &str,
) -> Result<Option<String>, Invalid> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("Param {param} must be a string"))),
    }
}

fn required_object<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    param: &str,
) -> Result<&'a Map<String, Value>, Invalid> {
    match object.get(key) {
        None | Some(Value::Null) => Err(required(param)),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(invalid(format!("Param {param} must be an object"))),
    }
}

/// Reads a send or mark-as-read body.
pub(super) fn parse(body: &Value) -> Result<Parsed, Invalid> {
    let Value::Object(body) = body else {
        return Err(invalid("The request body must be a JSON object"));
    };
    let product = required_text(body, "messaging_product", "messaging_product")?;
    if product != super::wire::MESSAGING_PRODUCT {
        return Err(invalid(format!(
            "Param messaging_product must be \"whatsapp\", got {product:?}"
        )));
    }
    if let Some(status) = body.get("status") {
        if status != "read" {
            return Err(invalid("Param status must be \"read\""));
        }
        let message_id = required_text(body, "message_id", "message_id")?;
        return Ok(Parsed::MarkRead { message_id });
    }
    if let Some(kind) = optional_text(body, "recipient_type", "recipient_type")?
        && kind != "individual"
    {
        return Err(invalid(format!(
            "Param recipient_type must be \"individual\", got {kind:?}"
        )));
    }
    let to = required_text(body, "to", "to")?;
    if to.len() > 15 || !to.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "Param to must be the recipient's number in international format, digits only, at most 15 (got {to:?})"
        )));
    }
    // `type` defaults to `text` (Meta's reference).
    let kind = optional_text(body, "type", "type")?.unwrap_or_else(|| "text".to_owned());
    let content = match kind.as_str() {
        "text" => text(body)?,
        "template" => template(body)?,
        "document" => {
            let Media { link, id, caption } = media(body, "document")?;
            let document = required_object(body, "document", "document")?;
            let filename = optional_text(document, "filename", "document['filename']")?;
            Content::Document {
                link,
                id,
                filename,
                caption,
            }
        }
        "image" => {
            let Media { link, id, caption } = media(body, "image")?;
            Content::Image { link, id, caption }
        }
        other => {
            return Err(invalid(format!(
                "Param type must be one of text, template, document, image (the types the fake emulates), got {other:?}"
            )));
        }
    };
    let biz_opaque_callback_data =
        optional_text(body, "biz_opaque_callback_data", "biz_opaque_callback_data")?;
    if let Some(data) = &biz_opaque_callback_data
        && data.chars().count() > CALLBACK_DATA_MAX_CHARS
    {
        return Err(too_long(
            "biz_opaque_callback_data",
            CALLBACK_DATA_MAX_CHARS,
        ));
    }
    let reply_to = match body.get("context") {
        None | Some(Value::Null) => None,
        Some(Value::Object(context)) => Some(required_text(
            context,
            "message_id",
            "context['message_id']",
        )?),
        Some(_) => return Err(invalid("Param context must be an object")),
    };
    Ok(Parsed::Send(Outgoing {
        to,
        content,
        biz_opaque_callback_data,
        reply_to,
    }))
}

fn text(body: &Map<String, Value>) -> Result<Content, Invalid> {
    let text = required_object(body, "text", "text")?;
    let message = required_text(text, "body", "text['body']")?;
    if message.chars().count() > TEXT_BODY_MAX_CHARS {
        return Err(too_long("text['body']", TEXT_BODY_MAX_CHARS));
    }
    let preview_url = match text.get("preview_url") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("Param text['preview_url'] must be a boolean")),
    };
    Ok(Content::Text {
        body: message,
        preview_url,
    })
}

/// A media object's `link` or `id` and `caption`.
struct Media {
    link: Option<String>,
    id: Option<String>,
    caption: Option<String>,
}

/// `link` (an http or https URL) or `id`, exactly one, and an optional `caption`.
fn media(body: &Map<String, Value>, kind: &str) -> Result<Media, Invalid> {
    let object = required_object(body, kind, kind)?;
    let link = optional_text(object, "link", &format!("{kind}['link']"))?;
    let id = optional_text(object, "id", &format!("{kind}['id']"))?;
    match (&link, &id) {
        (None, None) => {
            return Err(invalid(format!("Param {kind} must have a link or an id")));
        }
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "Param {kind} must have a link or an id, not both"
            )));
        }
        (Some(link), None) if !is_web_url(link) => {
            return Err(invalid(format!(
                "Param {kind}['link'] must be an http or https URL, got {link:?}"
            )));
        }
        (Some(link), None) if !is_fetchable(link) => {
            return Err(invalid(not_fetchable(&format!("{kind}['link']"), link)));
        }
        (None, Some(id)) if id.is_empty() => return Err(required(&format!("{kind}['id']"))),
        _ => {}
    }
    let caption = optional_text(object, "caption", &format!("{kind}['caption']"))?;
    if caption
        .as_ref()
        .is_some_and(|c| c.chars().count() > CAPTION_MAX_CHARS)
    {
        return Err(too_long(&format!("{kind}['caption']"), CAPTION_MAX_CHARS));
    }
    Ok(Media { link, id, caption })
}

fn is_web_url(link: &str) -> bool {
    reqwest::Url::parse(link).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty())
    })
}

/// An http(s) URL the fake lets Meta fetch: `https`, or plain `http` to a loopback host
/// (`localhost`, `127.0.0.0/8`, `[::1]`), where tests serve their files. Stricter than Meta,
/// which also fetches plain http from anywhere.
fn is_fetchable(link: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(link) else {
        return false;
    };
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return false;
    };
    match url.scheme() {
        "https" => true,
        "http" => {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

fn not_fetchable(param: &str, link: &str) -> String {
    format!(
        "Param {param} must be an https URL (plain http only to a loopback host, the fake's rule for tests), got {link:?}"
    )
}

const COMPONENT_TYPES: [&str; 4] = ["header", "body", "footer", "button"];
const BUTTON_SUB_TYPES: [&str; 6] = ["quick_reply", "url", "copy_code", "flow", "catalog", "mpm"];
const PARAMETER_TYPES: [&str; 9] = [
    "text",
    "currency",
    "date_time",
    "image",
    "document",
    "video",
    "location",
    "payload",
    "coupon_code",
];

fn template(body: &Map<String, Value>) -> Result<Content, Invalid> {
    let template = required_object(body, "template", "template")?;
    let name = required_text(template, "name", "template['name']")?;
    let language = required_object(template, "language", "template['language']")?;
    let code = required_text(language, "code", "template['language']['code']")?;
    let components = match template.get("components") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| component(item, &format!("template['components'][{i}]")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("Param template['components'] must be an array")),
    };
    check_buttons(&components)?;
    Ok(Content::Template {
        name,
        language: code,
        components,
    })
}

fn component(item: &Value, param: &str) -> Result<Component, Invalid> {
    let Value::Object(item) = item else {
        return Err(invalid(format!("Param {param} must be an object")));
    };
    let kind = required_text(item, "type", &format!("{param}['type']"))?;
    if !COMPONENT_TYPES.contains(&kind.as_str()) {
        return Err(invalid(format!(
            "Param {param}['type'] must be one of {COMPONENT_TYPES:?}, got {kind:?}"
        )));
    }
    let (mut sub_type, mut index) = (None, None);
    if kind == "button" {
        let sub = required_text(item, "sub_type", &format!("{param}['sub_type']"))?;
        if !BUTTON_SUB_TYPES.contains(&sub.as_str()) {
            return Err(invalid(format!(
                "Param {param}['sub_type'] must be one of {BUTTON_SUB_TYPES:?}, got {sub:?}"
            )));
        }
        sub_type = Some(sub);
        // Examples show the index as a string ("0"); a number is taken too.
        index = Some(match item.get("index") {
            None | Some(Value::Null) => return Err(required(&format!("{param}['index']"))),
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.clone()
            }
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            Some(_) => {
                return Err(invalid(format!(
                    "Param {param}['index'] must be a button's position, 0 to 9"
                )));
            }
        });
    }
    let parameters = match item.get("parameters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, p)| parameter(p, &format!("{param}['parameters'][{i}]")))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(invalid(format!(
                "Param {param}['parameters'] must be an array"
            )));
        }
    };
    check_parameters(&kind, sub_type.as_deref(), &parameters, param)?;
    Ok(Component {
        kind,
        sub_type,
        index,
        parameters,
    })
}

/// The parameter types each component takes (Meta's template reference): a header one
/// parameter of text, a date, a currency, a location or a medium; a body texts, currencies
/// and dates; a URL button one `text` (its URL's dynamic suffix); a quick reply one
/// `payload`; a copy-code button one `coupon_code`.
fn check_parameters(
    kind: &str,
    sub_type: Option<&str>,
    parameters: &[Parameter],
    param: &str,
) -> Result<(), Invalid> {
    let (allowed, at_most): (&[&str], Option<usize>) = match (kind, sub_type) {
        ("header", _) => (
            &[
                "text",
                "currency",
                "date_time",
                "image",
                "document",
                "video",
                "location",
            ],
            Some(1),
        ),
        ("body", _) => (&["text", "currency", "date_time"], None),
        ("button", Some("url")) => (&["text"], Some(1)),
        ("button", Some("quick_reply")) => (&["payload"], Some(1)),
        ("button", Some("copy_code")) => (&["coupon_code"], Some(1)),
        _ => return Ok(()),
    };
    let what = match sub_type {
        Some(sub_type) => format!("a {sub_type} button"),
        None => format!("a {kind}"),
    };
    if let Some(max) = at_most
        && parameters.len() > max
    {
        return Err(invalid(format!(
            "Param {param}['parameters'] of {what} takes at most {max} parameter, got {}",
            parameters.len()
        )));
    }
    if kind == "button" && parameters.is_empty() {
        return Err(required(&format!("{param}['parameters']")));
    }
    for (i, parameter) in parameters.iter().enumerate() {
        if !allowed.contains(&parameter.kind.as_str()) {
            return Err(invalid(format!(
                "Param {param}['parameters'][{i}]['type'] of {what} must be one of {allowed:?}, got {:?}",
                parameter.kind
            )));
        }
    }
    Ok(())
}

/// Button indexes are positions 0 to 9, each used once in a template.
fn check_buttons(components: &[Component]) -> Result<(), Invalid> {
    let mut seen = Vec::new();
    for (i, component) in components.iter().enumerate() {
        let Some(index) = component.index.as_deref() else {
            continue;
        };
        let param = format!("template['components'][{i}]['index']");
        let position = index
            .parse::<u8>()
            .ok()
            .filter(|n| *n <= 9)
            .ok_or_else(|| {
                invalid(format!(
                    "Param {param} must be a button's position, 0 to 9, got {index:?}"
                ))
            })?;
        if seen.contains(&position) {
            return Err(invalid(format!(
                "Param {param}: button index {position} is given twice"
            )));
        }
        seen.push(position);
    }
    Ok(())
}

fn parameter(item: &Value, param: &str) -> Result<Parameter, Invalid> {
    let Value::Object(item) = item else {
        return Err(invalid(format!("Param {param} must be an object")));
    };
    let kind = required_text(item, "type", &format!("{param}['type']"))?;
    if !PARAMETER_TYPES.contains(&kind.as_str()) {
        return Err(invalid(format!(
            "Param {param}['type'] must be one of {PARAMETER_TYPES:?}, got {kind:?}"
        )));
    }
    // The value sits under the key named after the type.
    let key = format!("{param}['{kind}']");
    let value = match (kind.as_str(), item.get(&kind)) {
        (_, None | Some(Value::Null)) => return Err(required(&key)),
        ("text" | "payload" | "coupon_code", Some(Value::String(s))) if s.is_empty() => {
            return Err(required(&key));
        }
        ("text" | "payload" | "coupon_code", Some(v @ Value::String(_))) => v.clone(),
        ("text" | "payload" | "coupon_code", Some(_)) => {
            return Err(invalid(format!("Param {key} must be a string")));
        }
        ("image" | "document" | "video", Some(Value::Object(media))) => {
            match (media.get("link"), media.get("id")) {
                (Some(Value::String(link)), None) if is_web_url(link) => {
                    if !is_fetchable(link) {
                        return Err(invalid(not_fetchable(&format!("{key}['link']"), link)));
                    }
                }
                (None, Some(Value::String(id))) if !id.is_empty() => {}
                _ => {
                    return Err(invalid(format!(
                        "Param {key} must have an http(s) link or an id"
                    )));
                }
            }
            optional_text(media, "caption", &format!("{key}['caption']"))?;
            if kind == "document" {
                optional_text(media, "filename", &format!("{key}['filename']"))?;
            }
            Value::Object(media.clone())
        }
        (_, Some(v @ Value::Object(_))) => v.clone(),
        (_, Some(_)) => return Err(invalid(format!("Param {key} must be an object"))),
    };
    Ok(Parameter { kind, value })
}
