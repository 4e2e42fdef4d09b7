//! Sending: the recipient's number, the Cloud API's text, template, document and image
//! bodies (PROVIDERS.md 3.1), and its error replies mapped to what the kernel does next
//! (3.2).

use keel_sdk::PluginError;
use keel_sdk::http::{Origin, Request, Response};
use keel_sdk::notifier::{
    ButtonKind, DeliveryStatus, Media, Message, Receipt, Template, TemplateButton, TemplateHeader,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::settings::SendSettings;

/// The longest text body WhatsApp delivers, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The longest caption of a document or an image, in characters.
pub const MAX_CAPTION_CHARS: usize = 1024;

/// The highest button index a template can have (WhatsApp allows ten buttons, 0 to 9).
pub const MAX_BUTTON_INDEX: u8 = 9;

/// Sends `msg` and returns the `wamid` WhatsApp gave it.
pub fn send(msg: Message) -> Result<Receipt, PluginError> {
    let settings = SendSettings::load()?;
    let to = whatsapp_number(&msg.to)?;
    let body = message_body(&msg, &to)?;
    let response = Request::post(&settings.messages_url)
        .bearer(settings.access_token.expose())
        .json(&body)?
        .send()?;
    let token = settings.access_token.expose();
    if !response.is_success() {
        return Err(map_error(&response, token));
    }
    #[derive(Deserialize)]
    struct Sent {
        messages: Vec<SentMessage>,
    }
    #[derive(Deserialize)]
    struct SentMessage {
        id: String,
    }
    let sent: Sent = serde_json::from_slice(&response.body).map_err(|e| {
        PluginError::internal(format!(
            "WhatsApp's reply has no messages[0].id ({e}): {}",
            snippet(&response, token)
        ))
    })?;
    match sent.messages.into_iter().next() {
        Some(m) if !m.id.is_empty() => Ok(Receipt {
            provider_id: m.id,
            status: DeliveryStatus::Accepted,
        }),
        _ => Err(PluginError::internal(format!(
            "WhatsApp's reply has no messages[0].id: {}",
            snippet(&response, token)
        ))),
    }
}

/// The digits WhatsApp wants for an E.164 number (`+263771234567` → `263771234567`);
/// anything else is invalid input naming what is wrong with it.
pub fn whatsapp_number(to: &str) -> Result<String, PluginError> {
    let bad = |why: &str| {
        PluginError::invalid_input(format!(
            "the recipient {to:?} is not an E.164 phone number (`+263771234567`): {why}"
        ))
    };
    let Some(digits) = to.strip_prefix('+') else {
        return Err(bad("it must start with `+` and the country code"));
    };
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(
            "only digits may follow the `+` (no spaces, dashes or brackets)",
        ));
    }
    if digits.starts_with('0') {
        return Err(bad("a country code never starts with 0"));
    }
    if !(7..=15).contains(&digits.len()) {
        return Err(bad(&format!(
            "it has {} digits; E.164 numbers have 7 to 15",
            digits.len()
        )));
    }
    Ok(digits.to_owned())
}

/// The JSON body of a send to `to` (digits): a template message when `msg` has a template
/// (an attachment then belongs in the template's header, where the kernel puts it), a
/// document or image message when it has an attachment, a text message otherwise; the
/// subject (when there is one) is the text's or caption's bold first line. Every body
/// carries the kernel's reference as `biz_opaque_callback_data`, which WhatsApp echoes in
/// status webhooks.
pub fn message_body(msg: &Message, to: &str) -> Result<Value, PluginError> {
    let mut body = match (&msg.template, &msg.attachment) {
        (Some(template), _) => template_body(template, to)?,
        (None, Some(media)) => media_body(media, &with_subject(msg), to)?,
        (None, None) => text_body(&with_subject(msg), to)?,
    };
    body["biz_opaque_callback_data"] = json!(msg.reference);
    Ok(body)
}

/// The text of a message: `*subject*` (WhatsApp's bold) on its own line above the body when
/// there is a subject and a body.
fn with_subject(msg: &Message) -> String {
    match msg.subject.as_deref().map(str::trim) {
        Some(subject) if !subject.is_empty() && !msg.body.trim().is_empty() => {
            format!("*{subject}*\n\n{}", msg.body)
        }
        _ => msg.body.clone(),
    }
}

fn text_body(text: &str, to: &str) -> Result<Value, PluginError> {
    if text.trim().is_empty() {
        return Err(PluginError::invalid_input(
            "the message has no text and no template: WhatsApp sends neither empty messages",
        ));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(PluginError::invalid_input(format!(
            "the message has {chars} characters; a WhatsApp text has at most {MAX_TEXT_CHARS}"
        )));
    }
    Ok(json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": { "preview_url": true, "body": text },
    }))
}

fn template_body(template: &Template, to: &str) -> Result<Value, PluginError> {
    if template.name.trim().is_empty() || template.language.trim().is_empty() {
        return Err(PluginError::invalid_input(
            "the template needs a name and a language code",
        ));
    }
    let mut components = Vec::new();
    if let Some(header) = &template.header
        && let Some(component) = header_component(header)?
    {
        components.push(component);
    }
    if !template.parameters.is_empty() {
        let parameters: Vec<Value> = template
            .parameters
            .iter()
            .map(|p| json!({ "type": "text", "text": p }))
            .collect();
        components.push(json!({ "type": "body", "parameters": parameters }));
    }
    components.extend(button_components(&template.buttons)?);
    let mut body = json!({
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": { "name": template.name, "language": { "code": template.language } },
    });
    if !components.is_empty() {
        body["template"]["components"] = Value::Array(components);
    }
    Ok(body)
}

/// The template's `header` component: its one text parameter, or its document or image.
/// A text header without parameters has no component.
fn header_component(header: &TemplateHeader) -> Result<Option<Value>, PluginError> {
    let parameter = match header {
        TemplateHeader::Text(parameters) => match parameters.as_slice() {
            [] => return Ok(None),
            [text] => json!({ "type": "text", "text": text }),
            more => {
                return Err(PluginError::invalid_input(format!(
                    "the template's text header has {} parameters; a WhatsApp header has at \
                     most one",
                    more.len()
                )));
            }
        },
        TemplateHeader::Document(media) => {
            let mut document =
                json!({ "link": checked_link(media, "the template's document header")? });
            if let Some(filename) = filename(media) {
                document["filename"] = json!(filename);
            }
            json!({ "type": "document", "document": document })
        }
        TemplateHeader::Image(media) => json!({
            "type": "image",
            "image": { "link": checked_link(media, "the template's image header")? },
        }),
    };
    Ok(Some(json!({ "type": "header", "parameters": [parameter] })))
}

/// One `button` component per button, in the order given: a URL button's parameter is
/// the text of its URL's dynamic suffix, a quick reply's the payload its reply carries.
fn button_components(buttons: &[TemplateButton]) -> Result<Vec<Value>, PluginError> {
    let mut seen = [false; MAX_BUTTON_INDEX as usize + 1];
    buttons
        .iter()
        .map(|button| {
            let index = button.index;
            if index > MAX_BUTTON_INDEX {
                return Err(PluginError::invalid_input(format!(
                    "the template's button index {index} is out of range: WhatsApp numbers \
                     buttons 0 to {MAX_BUTTON_INDEX}"
                )));
            }
            if std::mem::replace(&mut seen[usize::from(index)], true) {
                return Err(PluginError::invalid_input(format!(
                    "the template's button index {index} is given twice"
                )));
            }
            if button.parameter.is_empty() {
                return Err(PluginError::invalid_input(format!(
                    "the template's button {index} has an empty parameter"
                )));
            }
            let (sub_type, parameter) = match button.kind {
                ButtonKind::Url => ("url", json!({ "type": "text", "text": button.parameter })),
                ButtonKind::QuickReply => (
                    "quick_reply",
                    json!({ "type": "payload", "payload": button.parameter }),
                ),
            };
            Ok(json!({
                "type": "button",
                "sub_type": sub_type,
                "index": index.to_string(),
                "parameters": [parameter],
            }))
        })
        .collect()
}

/// A message with a file: an `image` message for a JPEG or PNG (the only images WhatsApp
/// sends as such), a `document` message (with its filename) for anything else. The caption
/// is `text` (the body, with its subject), else the attachment's own caption.
fn media_body(media: &Media, text: &str, to: &str) -> Result<Value, PluginError> {
    let link = checked_link(media, "the attachment")?;
    let caption = [Some(text), media.caption.as_deref()]
        .into_iter()
        .flatten()
        .find(|c| !c.trim().is_empty());
    if let Some(caption) = caption {
        let chars = caption.chars().count();
        if chars > MAX_CAPTION_CHARS {
            return Err(PluginError::invalid_input(format!(
                "the attachment's caption (the message's text) has {chars} characters; a \
                 WhatsApp caption has at most {MAX_CAPTION_CHARS}"
            )));
        }
    }
    let (kind, mut object) = if is_whatsapp_image(&media.media_type) {
        ("image", json!({ "link": link }))
    } else {
        let mut document = json!({ "link": link });
        if let Some(filename) = filename(media) {
            document["filename"] = json!(filename);
        }
        ("document", document)
    };
    if let Some(caption) = caption {
        object["caption"] = json!(caption);
    }
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
    });
    body[kind] = object;
    Ok(body)
}

/// `image/jpeg` and `image/png` (any case, parameters ignored): what WhatsApp sends as an
/// image. Other images (WebP, GIF, …) go as documents, which take any type.
fn is_whatsapp_image(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("image/jpeg") || essence.eq_ignore_ascii_case("image/png")
}

/// The file name to show, when there is one that is not blank.
fn filename(media: &Media) -> Option<&str> {
    media
        .filename
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
}

/// `media.link`, when WhatsApp can fetch it: an absolute `https` URL, or `http` to a
/// loopback host (`localhost`, `127.0.0.0/8`, `[::1]`: tests run there). `what` names the
/// file in the error.
fn checked_link<'a>(media: &'a Media, what: &str) -> Result<&'a str, PluginError> {
    let link = media.link.trim();
    if link.is_empty() {
        return Err(PluginError::invalid_input(format!(
            "{what} has an empty link"
        )));
    }
    let origin = Origin::of(link).map_err(|e| {
        PluginError::invalid_input(format!(
            "{what}'s link is not a URL WhatsApp can fetch: {e}"
        ))
    })?;
    if origin.scheme() != "https" && !is_loopback(origin.host()) {
        return Err(PluginError::invalid_input(format!(
            "{what}'s link `{link}` is not https: WhatsApp fetches files over https (plain \
             http only to a loopback host, for tests)"
        )));
    }
    Ok(link)
}

/// `localhost`, an address of `127.0.0.0/8`, or `[::1]` (hosts as [`Origin`] writes them).
fn is_loopback(host: &str) -> bool {
    match host {
        "localhost" | "[::1]" => true,
        _ => host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
    }
}

/// Graph API's error object.
#[derive(Debug, Default, Deserialize)]
struct GraphError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

#[derive(Deserialize)]
struct ErrorReply {
    error: GraphError,
}

/// The error a non-2xx reply means. Meta says to branch on `error.code` (and its details),
/// not on the HTTP status, so the code decides when it is one of those mapped here; the
/// status decides otherwise (429 and 5xx unavailable, 401 and 403 misconfigured, other
/// 4xx internal: the plugin sent something WhatsApp rejects). `token` is blanked out of
/// every text taken from the reply.
pub fn map_error(response: &Response, token: &str) -> PluginError {
    let retry_after = response
        .header("retry-after")
        .and_then(|v| v.trim().parse().ok());
    let error = serde_json::from_slice::<ErrorReply>(&response.body)
        .map(|r| r.error)
        .unwrap_or_default();
    let said = match (
        &error.message,
        error.error_data.as_ref().and_then(|d| d.details.as_ref()),
    ) {
        (Some(m), Some(d)) if !d.is_empty() && d != m => format!("{m} ({d})"),
        (Some(m), _) => m.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => snippet(response, token),
    };
    let said = redact(&said, token);
    let status = response.status;
    let Some(code) = error.code else {
        return by_status(
            status,
            retry_after,
            format!("WhatsApp answered HTTP {status}: {said}"),
        );
    };
    let said = format!("WhatsApp error {code}: {said}");
    match code {
        190 => PluginError::misconfigured(format!(
            "WhatsApp refused the access token (invalid or expired; set a new `access_token`): {said}"
        )),
        // Throughput and pair rate limits, and Graph's own rate limits and temporary errors.
        130429 | 131056 | 4 | 80007 | 2 | 131016 => {
            PluginError::unavailable(format!("WhatsApp asks to try later: {said}"), retry_after)
        }
        131047 => PluginError::refused(format!(
            "more than 24 hours since the person last wrote: WhatsApp only delivers a \
             template message outside the customer service window ({said})"
        )),
        131026 => PluginError::refused(format!(
            "the message is not deliverable to this number (not on WhatsApp, or it cannot \
             receive it): {said}"
        )),
        131030 => PluginError::refused(format!(
            "the number is not allowed: a test business number only reaches the recipients \
             added to its allowed list: {said}"
        )),
        131049 => PluginError::refused(format!(
            "WhatsApp held the message back to keep engagement healthy: {said}"
        )),
        100 | 132000 | 132001 => PluginError::invalid_input(said),
        _ => by_status(status, retry_after, said),
    }
}

fn by_status(status: u16, retry_after: Option<u32>, said: String) -> PluginError {
    match status {
        429 | 500..=599 => PluginError::unavailable(said, retry_after),
        401 | 403 => PluginError::misconfigured(format!(
            "WhatsApp refused the credentials (HTTP {status}): {said}"
        )),
        _ => PluginError::internal(said),
    }
}

/// The first 200 characters of the reply, the token blanked out first.
fn snippet(response: &Response, token: &str) -> String {
    redact(&response.text(), token).chars().take(200).collect()
}

/// `text` with every occurrence of `token` replaced by `***` (Graph echoes a malformed
/// token in its message).
fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_owned()
    } else {
        text.replace(token, "***")
    }
}
