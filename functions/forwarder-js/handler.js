// The forwarder example (functions/forwarder, Rust) as a Segment destination function in
// JavaScript: track and identify events forwarded to a partner's REST API with the
// customer's key, the partner's answer turned into Segment's outcomes. Written as one
// would for Segment's own runtime; tests/e2e/javascript.rs checks that it sends the
// same requests and reaches the same outcomes as the Rust crate on every sample event.

const DEFAULT_ENDPOINT = 'https://api.partner.example/v1';

// The Rust SDK reads a field of another type as absent; so does this port.
const str = (v) => (typeof v === 'string' ? v : undefined);
const obj = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {});

function partnerUser(event) {
  const id = str(event.userId);
  const anonymousId = str(event.anonymousId);
  if (id === undefined && anonymousId === undefined) {
    throw new ValidationError('userId or anonymousId is required');
  }
  const user = {};
  if (id !== undefined) user.id = id;
  if (anonymousId !== undefined) user.anonymous_id = anonymousId;
  return user;
}

// 2xx is success; 408, 423, 429 and 5xx but 501 are retried; any other answer rejects
// the event (the SDK's `error_for_status`).
async function checkStatus(res) {
  const s = res.status;
  if (s >= 200 && s <= 299) return;
  if (s === 408 || s === 423 || s === 429 || s === 500 || (s >= 502 && s <= 599)) {
    throw new RetryError(`partner answered ${s}`);
  }
  const text = await res.text();
  throw new ValidationError(`partner rejected the event (${s}): ${text.slice(0, 200)}`);
}

async function send(settings, path, body) {
  const endpoint = (str(settings.endpoint) || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const res = await fetch(`${endpoint}/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${settings.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await checkStatus(res);
}

async function onTrack(event, settings) {
  const user = partnerUser(event);
  const name = str(event.event);
  if (name === undefined) throw new InvalidEventPayload('track event has no name');
  const body = { user, name, attributes: obj(event.properties) };
  if (str(event.timestamp) !== undefined) body.occurred_at = event.timestamp;
  if (str(event.messageId) !== undefined) body.idempotency_key = event.messageId;
  await send(settings, 'track', body);
  console.log(`forwarded ${JSON.stringify(name)}`);
}

async function onIdentify(event, settings) {
  const traits = obj(event.traits);
  const body = { user: partnerUser(event) };
  if (str(traits.email) !== undefined) body.email = traits.email;
  body.traits = traits;
  await send(settings, 'users', body);
  console.log(`updated profile with ${Object.keys(traits).length} traits`);
}
