// A Keel notifier plugin in JavaScript: posts each message as JSON to a webhook.
//
// Built with componentize-js against world `notifier-plugin` of the `keel:plugin` WIT
// package (see README.md). The exported interface `notifier` is the object exported as
// `notifier`, its functions in camelCase (`verifyInbound`); each host interface is a module
// `keel:plugin/<name>@0.2.0`. WIT values in JavaScript: records are objects with camelCase
// fields, enums kebab-case strings, variants `{ tag, val }`, `option` is `undefined` (or
// `null`) or the value, `list<u8>` a Uint8Array, `s64`/`u64` BigInt. A function returning a
// `result` answers its `ok` value and throws its `err` as `{ tag, val }`; host imports are
// synchronous and throw their `err` too. Any other exception is a crash (see `guarded`).

import { send as httpSend } from 'keel:plugin/http@0.2.0';
import { get as configGet } from 'keel:plugin/config@0.2.0';
import { log } from 'keel:plugin/log@0.2.0';

const NAME = 'JavaScript Notifier';
const VERSION = '0.1.0';
const DESCRIPTION = 'Posts each message as JSON to a webhook; written in JavaScript.';

// `plugin-error` cases, thrown to answer the `err` of a `result`.
const misconfigured = (message) => ({ tag: 'misconfigured', val: message });
const internal = (message) => ({ tag: 'internal', val: message });
const unavailable = (reason, retryAfterSeconds) => ({
  tag: 'unavailable',
  val: { reason, retryAfterSeconds },
});

// The `err` of a host import: componentize-js throws it as an Error whose `payload` is the
// `{ tag, val }` value (anything else thrown is taken as the value itself).
function importError(e) {
  if (e && typeof e === 'object' && 'payload' in e) return e.payload;
  return e;
}

// Maps an `http.send` error the way keel-sdk does: a denied destination is a settings
// problem, time-outs and connection failures are worth a retry, the rest are plugin bugs.
function pluginError(err) {
  switch (err && err.tag) {
    case 'denied':
      return misconfigured(`outbound request denied: ${err.val}`);
    case 'timeout':
      return unavailable('the provider did not answer in time');
    case 'connection':
      return unavailable(`could not reach the provider: ${err.val}`);
    case 'invalid-request':
      return internal(`invalid outbound request: ${err.val}`);
    case 'too-large':
      return internal(`body too large: ${err.val}`);
    case 'too-many-requests':
      return internal(`too many requests in one call: ${err.val}`);
    default:
      return internal(`unexpected http error: ${JSON.stringify(err)}`);
  }
}

// A header's value (names compare without case), or undefined.
function header(headers, name) {
  const found = headers.find(([k]) => k.toLowerCase() === name);
  return found && found[1];
}

// The error for a non-2xx response, as keel-sdk's `error_for_status`: 429 and 5xx are
// `unavailable` (with Retry-After when given), 401 and 403 `misconfigured`, other 4xx
// `internal` (the plugin sent something the provider rejects).
function statusError(response, text) {
  const { status } = response;
  const snippet = text.slice(0, 200);
  if (status === 429 || (status >= 500 && status <= 599)) {
    const retryAfter = header(response.headers, 'retry-after');
    const seconds = retryAfter !== undefined && /^\s*\d+\s*$/.test(retryAfter)
      ? Number(retryAfter.trim())
      : undefined;
    return unavailable(`the provider answered ${status}: ${snippet}`, seconds);
  }
  if (status === 401 || status === 403) {
    return misconfigured(`the provider refused the credentials (${status}): ${snippet}`);
  }
  return internal(`the provider answered ${status}: ${snippet}`);
}

// The message id in a webhook's answer: `{"id": "..."}` as JSON, else the plain-text body.
function providerId(text) {
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    return text;
  }
  if (answer !== null && typeof answer === 'object' && !Array.isArray(answer)) {
    return answer.id === undefined || answer.id === null ? '' : String(answer.id);
  }
  if (typeof answer === 'string') return answer;
  return Number.isInteger(answer) ? text : '';
}

// No host import here: the kernel calls describe before it checks the settings.
function describe() {
  return { name: NAME, version: VERSION, description: DESCRIPTION, features: {} };
}

function send(msg) {
  // The JSON carries text only: for a file (`attachment`, the invoice PDF) the kernel then
  // sends the text alone.
  if (msg.attachment != null) throw { tag: 'unsupported' };
  const endpoint = configGet('endpoint');
  if (!endpoint) throw misconfigured('the setting `endpoint` is not set');
  const body = new TextEncoder().encode(
    JSON.stringify({ to: msg.to, body: msg.body, reference: msg.reference }),
  );
  let response;
  try {
    response = httpSend({
      method: 'post',
      url: endpoint,
      headers: [['content-type', 'application/json']],
      body,
      timeoutMs: undefined,
    });
  } catch (e) {
    throw pluginError(importError(e));
  }
  const text = new TextDecoder().decode(response.body).trim();
  if (response.status < 200 || response.status > 299) throw statusError(response, text);
  const id = providerId(text);
  if (!id) throw internal(`the webhook answered without a message id: ${text.slice(0, 200)}`);
  log('info', `sent ${msg.reference} to ${msg.to}: provider id ${id}`);
  return { providerId: id, status: 'sent' };
}

// describe does not claim the `inbound` feature.
function verifyInbound(_req) {
  throw { tag: 'unsupported' };
}

// Any other exception than a thrown `{ tag, val }` (a TypeError, `throw new Error(...)`) is a
// bug: the call crashes, and the host keeps the last lines of stderr as the crash report.
// componentize-js 0.23.0 reports only its bindings' own stack there, so print the plugin's
// first.
function guarded(fn) {
  return function (...args) {
    try {
      return fn(...args);
    } catch (e) {
      if (e !== null && typeof e === 'object' && typeof e.stack === 'string') {
        console.error(`${e}\n${e.stack}`);
      }
      throw e;
    }
  };
}

export const notifier = {
  describe: guarded(describe),
  send: guarded(send),
  verifyInbound: guarded(verifyInbound),
};
