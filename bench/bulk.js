// The bulk example (functions/bulk/src/lib.rs) in JavaScript, as a partner would port
// it: each event of a batch mapped to the partner's record, the records sent in requests
// of at most `maxEventsPerRequest`, and each event given the outcome of its own mapping
// or of the request that carried it. The Node baseline runs it for batches when started
// with FUNCTION=bulk.
'use strict';

const { SegmentError, OUTCOMES } = require('./forwarder.js');

const str = (v) => (typeof v === 'string' ? v : undefined);
const obj = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined);
const TYPES = ['track', 'identify', 'page', 'screen', 'group', 'alias', 'delete'];

function readSettings(settings) {
  const apiKey = str(obj(settings)?.apiKey);
  if (apiKey === undefined) {
    throw new SegmentError('invalid_settings', 'settings: missing field `apiKey`');
  }
  const max = Number.isInteger(settings.maxEventsPerRequest) ? settings.maxEventsPerRequest : 500;
  return {
    apiKey,
    endpoint: str(settings.endpoint) ?? 'https://api.partner.example/v1',
    maxEventsPerRequest: Math.max(1, max),
  };
}

// One event's record, with keys in the order serde writes `Record`; absent ones skipped.
function record(event) {
  if (obj(event) === undefined) throw new SegmentError('bad_request', 'a Segment message is a JSON object');
  const name = str(event.type) ?? str(event.action);
  const type = name !== undefined ? TYPES.find((t) => t === name.toLowerCase()) : undefined;
  if (type !== 'track' && type !== 'identify') {
    throw new SegmentError('unsupported_event_type', `${name ?? 'a message without a type'} is not supported`);
  }
  const eventName = str(event.event);
  if (type === 'track' && eventName === undefined) {
    throw new SegmentError('message_rejected', 'track event has no name');
  }
  const userId = str(event.userId);
  const anonymousId = str(event.anonymousId);
  if (userId === undefined && anonymousId === undefined) {
    throw new SegmentError('message_rejected', 'userId or anonymousId is required');
  }
  const r = { type };
  if (userId !== undefined) r.user_id = userId;
  if (anonymousId !== undefined) r.anonymous_id = anonymousId;
  if (type === 'track') r.name = eventName;
  r.data = obj(type === 'track' ? event.properties : event.traits) ?? {};
  const time = str(event.timestamp);
  if (time !== undefined) r.time = time;
  const insertId = str(event.messageId);
  if (insertId !== undefined) r.insert_id = insertId;
  return r;
}

// The requests for a batch, and the results so far: `results[i]` is set for events that
// failed to map; `carried[j]` lists the indices of the events request j carries.
function translateBatch(events, rawSettings) {
  const settings = readSettings(rawSettings);
  const results = new Array(events.length);
  const records = [];
  const indices = [];
  events.forEach((event, i) => {
    try {
      records.push(record(event));
      indices.push(i);
    } catch (e) {
      const kind = e instanceof SegmentError ? e.kind : 'bad_request';
      results[i] = { kind, status: OUTCOMES[kind], message: e.message };
    }
  });
  const requests = [];
  const carried = [];
  for (let at = 0; at < records.length; at += settings.maxEventsPerRequest) {
    requests.push({
      method: 'POST',
      url: `${settings.endpoint.replace(/\/+$/, '')}/batch`,
      headers: { authorization: `Bearer ${settings.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: records.slice(at, at + settings.maxEventsPerRequest) }),
    });
    carried.push(indices.slice(at, at + settings.maxEventsPerRequest));
  }
  return { requests, carried, results };
}

module.exports = { translateBatch };
