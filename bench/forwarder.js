// The forwarder example (functions/forwarder/src/lib.rs) in JavaScript, as a partner
// would port it: the same field mapping, the same request and the same outcomes. The
// Node baseline server and the translation benchmark (plain and in a `vm` context) use
// this one copy, so all three run the same mapping.
//
// Written as a plain script that sets `module.exports` only when there is a `module`,
// so `vm` can run its source in a fresh context too.
'use strict';

// The SDK's events are tolerant: a field that is missing, null or of another type reads
// as absent (functions/forwarder sees `None`), so each read checks the type.
const str = (v) => (typeof v === 'string' ? v : undefined);
const obj = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined);

const TYPES = ['track', 'identify', 'page', 'screen', 'group', 'alias', 'delete'];

// Segment's error types, with the HTTP status segfn answers for each (host/engine/src/outcome.rs).
const OUTCOMES = {
  success: 200,
  retry: 500,
  unsupported_event_type: 501,
  message_rejected: 400,
  bad_request: 400,
  invalid_settings: 400,
};

class SegmentError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

function partnerUser(event) {
  const id = str(event.userId);
  const anonymousId = str(event.anonymousId);
  if (id === undefined && anonymousId === undefined) {
    throw new SegmentError('message_rejected', 'userId or anonymousId is required');
  }
  // Key order as serde writes PartnerUser; absent fields are skipped.
  const user = {};
  if (id !== undefined) user.id = id;
  if (anonymousId !== undefined) user.anonymous_id = anonymousId;
  return user;
}

function readSettings(settings) {
  const apiKey = str(obj(settings)?.apiKey);
  if (apiKey === undefined) {
    throw new SegmentError('invalid_settings', 'settings: missing field `apiKey`');
  }
  return { apiKey, endpoint: str(settings.endpoint) ?? 'https://api.partner.example/v1' };
}

function request(settings, path, body) {
  return {
    method: 'POST',
    url: `${settings.endpoint.replace(/\/+$/, '')}/${path}`,
    headers: { authorization: `Bearer ${settings.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}

function onTrack(event, settings) {
  const name = str(event.event);
  if (name === undefined) throw new SegmentError('message_rejected', 'track event has no name');
  const body = {
    user: partnerUser(event),
    name,
    attributes: obj(event.properties) ?? {},
  };
  const occurredAt = str(event.timestamp);
  if (occurredAt !== undefined) body.occurred_at = occurredAt;
  const key = str(event.messageId);
  if (key !== undefined) body.idempotency_key = key;
  return request(settings, 'track', body);
}

function onIdentify(event, settings) {
  const traits = obj(event.traits) ?? {};
  const body = { user: partnerUser(event) };
  const email = str(traits.email);
  if (email !== undefined) body.email = email;
  body.traits = traits;
  return request(settings, 'users', body);
}

// The partner request for one message, or a SegmentError (dispatch by type, as the SDK's).
function translate(event, rawSettings) {
  const settings = readSettings(rawSettings);
  if (obj(event) === undefined) {
    throw new SegmentError('bad_request', 'a Segment message is a JSON object');
  }
  const name = str(event.type) ?? str(event.action);
  const type = name !== undefined ? TYPES.find((t) => t === name.toLowerCase()) : undefined;
  if (type === 'track') return onTrack(event, settings);
  if (type === 'identify') return onIdentify(event, settings);
  if (type !== undefined) throw new SegmentError('unsupported_event_type', `${type} is not supported`);
  if (name !== undefined) {
    throw new SegmentError('unsupported_event_type', `event type "${name}" is not supported`);
  }
  throw new SegmentError('bad_request', 'the message has no "type" field');
}

// 2xx is success; 429 and 5xx are worth retrying; any other answer rejects the event.
function check(status, text) {
  if (status >= 200 && status <= 299) return;
  if (status === 429 || (status >= 500 && status <= 599)) {
    throw new SegmentError('retry', `partner answered ${status}; Segment will retry`);
  }
  throw new SegmentError('message_rejected', `partner rejected the event (${status}): ${text}`);
}

if (typeof module !== 'undefined') {
  module.exports = { translate, check, SegmentError, OUTCOMES };
}
