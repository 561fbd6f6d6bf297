// The ecommerce example (functions/ecommerce, Rust) as a Segment destination function in
// JavaScript: Ecommerce v2 "Order Completed" events become a partner's conversion call,
// and what cannot be sent is rejected. tests/e2e/javascript.rs checks that it sends the
// same requests and reaches the same outcomes as the Rust crate on every sample event.

const DEFAULT_ENDPOINT = 'https://conversions.partner.example/v2';

// Segment's integrations compare spec names without regard to ASCII case, spaces and
// underscores; v1 called this event "Completed Order".
const norm = (name) => name.toLowerCase().replace(/[ _]/g, '');
const ORDER_COMPLETED = ['Order Completed', 'Completed Order'].map(norm);

// The properties this function sends, and what the spec says each is. A value of
// another type (an order_id sent as a number, a "22.50" revenue) is refused.
const ORDER_PROPERTIES = { order_id: 'text', revenue: 'a number', total: 'a number', currency: 'text', coupon: 'text', products: 'a list of products' };
const PRODUCT_PROPERTIES = { sku: 'text', product_id: 'text', name: 'text', price: 'a number', quantity: 'a number' };
const fits = {
  text: (v) => typeof v === 'string',
  'a number': (v) => typeof v === 'number',
  'a list of products': (v) => Array.isArray(v),
};

function misfit(object, spec) {
  for (const [property, expected] of Object.entries(spec)) {
    const value = object[property];
    if (value !== undefined && value !== null && !fits[expected](value)) {
      return `${property} has an invalid type: ${JSON.stringify(value)} where the spec has ${expected}`;
    }
  }
  return undefined;
}

const has = (v) => v !== undefined && v !== null;

// Amount in minor units, rounded half away from zero (the partner takes two decimals
// for every currency).
function minor(amount) {
  const cents = Math.sign(amount) * Math.round(Math.abs(amount) * 100);
  if (!Number.isFinite(cents) || Math.abs(cents) >= 2 ** 63) {
    throw new ValidationError(`amount ${amount} is out of range`);
  }
  return cents;
}

function item(index, product) {
  const wrong = misfit(product, PRODUCT_PROPERTIES);
  if (wrong) throw new InvalidEventPayload(`properties.products[${index}].${wrong}`);
  const sku = has(product.sku) ? product.sku : product.product_id;
  if (!has(sku)) throw new ValidationError(`products[${index}] has neither sku nor product_id`);
  // One item when the quantity is missing: this partner's default, not the spec's.
  const quantity = has(product.quantity) ? product.quantity : 1;
  if (quantity < 1 || !Number.isInteger(quantity) || quantity > 4294967295) {
    throw new ValidationError(`products[${index}].quantity ${quantity} is not a whole number of items`);
  }
  const out = { sku };
  if (has(product.name)) out.name = product.name;
  out.unit_price_minor = minor(has(product.price) ? product.price : 0);
  out.quantity = quantity;
  return out;
}

function translate(event, props, settings) {
  const wrong = misfit(props, ORDER_PROPERTIES);
  if (wrong) throw new InvalidEventPayload(`properties.${wrong}`);
  if (!has(props.order_id) || props.order_id === '') {
    throw new InvalidEventPayload('properties.order_id is required');
  }
  const customer = typeof event.userId === 'string' ? event.userId : event.anonymousId;
  if (typeof customer !== 'string') throw new InvalidEventPayload('userId or anonymousId is required');
  // Revenue, or the total when there is none: this partner's choice, not the spec's.
  const value = has(props.revenue) ? props.revenue : props.total;
  if (!has(value)) throw new ValidationError('properties.revenue or properties.total is required');
  if (!Number.isFinite(value) || value < 0) throw new ValidationError(`order value ${value} is not a positive amount`);
  const currency = has(props.currency) ? props.currency : settings.defaultCurrency || 'USD';
  if (!/^[A-Za-z]{3}$/.test(currency)) {
    throw new ValidationError(`currency ${JSON.stringify(currency)} is not an ISO 4217 code`);
  }
  // Products that are not objects (a `null` in the list) are skipped, as the SDK reads them.
  const products = (props.products || []).filter((p) => p !== null && typeof p === 'object' && !Array.isArray(p));
  const items = products.map((p, i) => item(i, p));
  const conversion = { conversion_id: props.order_id, customer_id: customer, value_minor: minor(value), currency: currency.toUpperCase() };
  if (typeof event.timestamp === 'string') conversion.occurred_at = event.timestamp;
  if (has(props.coupon)) conversion.coupon = props.coupon;
  conversion.items = items;
  return conversion;
}

async function onTrack(event, settings) {
  const name = typeof event.event === 'string' ? event.event : undefined;
  if (name === undefined) throw new InvalidEventPayload('track event has no name');
  if (!ORDER_COMPLETED.includes(norm(name))) {
    throw new EventNotSupported(`only "Order Completed" is sent, not ${JSON.stringify(name)}`);
  }
  const props = event.properties !== null && typeof event.properties === 'object' ? event.properties : {};
  const conversion = translate(event, props, settings);
  const endpoint = (settings.endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const res = await fetch(`${endpoint}/conversions`, {
    method: 'POST',
    headers: { 'x-api-key': settings.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(conversion),
  });
  if (res.ok) {
    console.log(`conversion ${conversion.conversion_id} sent: ${conversion.value_minor} ${conversion.currency}`);
  } else if (res.status === 409) {
    // The partner already has this order: a duplicate delivery, not a failure.
    console.log(`conversion ${conversion.conversion_id} already recorded`);
  } else if (res.status === 429 || (res.status >= 500 && res.status <= 599)) {
    throw new RetryError(`partner answered ${res.status}`);
  } else {
    throw new ValidationError(`partner rejected the conversion (${res.status}): ${await res.text()}`);
  }
}
