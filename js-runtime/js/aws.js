// Segment's preloaded `AWS` (aws-sdk v2), the part functions use: S3 (putObject,
// getObject, headObject, deleteObject, upload) and STS (assumeRole, getCallerIdentity),
// `AWS.config.update`, `AWS.Credentials`, callbacks and `.promise()`. Requests are signed
// with Signature Version 4 as aws-sdk 2.488 signs them (the same headers and signature,
// checked against it in js-runtime/src/tests.rs) and sent with the runtime's `fetch`, so
// the host's allow-list, limits, traces and redaction apply. Evaluated into the snapshot
// of a script that names `AWS` (src/lib.rs `ON_DEMAND`).
(function () {
  'use strict';

  const VERSION = '2.488.0';

  // ---- helpers, as aws-sdk's AWS.util has them ------------------------------------------
  const util = {
    date: {
      // The signing clock; tests replace it, as one does with aws-sdk.
      getDate() { return new Date(); },
    },
    uriEscape(string) {
      return encodeURIComponent(string).replace(/[^A-Za-z0-9_.~\-%]+/g, (c) =>
        c.split('').map((ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).join(''));
    },
    uriEscapePath(path) { return path.split('/').map(util.uriEscape).join('/'); },
  };
  const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
  const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
  const md5 = (data) => crypto.createHash('md5').update(data).digest('base64');
  const iso8601Basic = (date) => date.toISOString().replace(/[:-]|\.\d{3}/g, '');

  // ---- credentials and configuration ------------------------------------------------------
  class Credentials {
    constructor(accessKeyId, secretAccessKey, sessionToken) {
      const o = accessKeyId && typeof accessKeyId === 'object' ? accessKeyId : { accessKeyId, secretAccessKey, sessionToken };
      this.accessKeyId = o.accessKeyId;
      this.secretAccessKey = o.secretAccessKey;
      this.sessionToken = o.sessionToken;
      this.expired = false;
    }
    get(callback) { if (callback) callback(null); }
    getPromise() { return Promise.resolve(); }
  }

  class Config {
    constructor(options) {
      this.region = undefined;
      this.credentials = null;
      this.sslEnabled = true;
      this.s3ForcePathStyle = false;
      this.maxRetries = undefined;
      if (options) this.update(options);
    }
    update(options) {
      for (const [key, value] of Object.entries(options || {})) {
        if (key === 'accessKeyId' || key === 'secretAccessKey' || key === 'sessionToken') {
          this.credentials = this.credentials || new Credentials({});
          this.credentials[key] = value;
        } else if (key === 'credentials' && value && !(value instanceof Credentials)) {
          this.credentials = new Credentials(value);
        } else {
          this[key] = value;
        }
      }
    }
  }
  const config = new Config();

  // The credentials a client signs with: its own, else the global ones.
  function credentialsOf(client) {
    const c = client.config.credentials || config.credentials;
    if (!c || !c.accessKeyId || !c.secretAccessKey) {
      // aws-sdk's code; the message says where a function's keys come from here (no
      // environment or config files): its settings, handed to the client or the config.
      const err = new Error(
        'Missing credentials in config: pass accessKeyId and secretAccessKey (from the settings) ' +
        'to the client, e.g. new AWS.S3({accessKeyId, secretAccessKey}), or to AWS.config.update({...})');
      err.code = 'CredentialsError';
      throw err;
    }
    return c;
  }

  // ---- Signature Version 4 (aws-sdk's AWS.Signers.V4) --------------------------------------
  // Headers aws-sdk leaves out of the signature.
  const UNSIGNABLE = ['authorization', 'content-type', 'content-length', 'user-agent', 'presigned-expires', 'expect', 'x-amzn-trace-id'];

  function sign(request, credentials, region, service, date) {
    const datetime = iso8601Basic(date);
    const day = datetime.slice(0, 8);
    request.headers['X-Amz-Date'] = datetime;
    if (credentials.sessionToken) request.headers['x-amz-security-token'] = credentials.sessionToken;
    const names = Object.keys(request.headers)
      .filter((name) => !UNSIGNABLE.includes(name.toLowerCase()))
      .sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1));
    const canonicalHeaders = names
      .map((name) => `${name.toLowerCase()}:${String(request.headers[name]).trim().replace(/\s+/g, ' ')}`)
      .join('\n');
    const signedHeaders = names.map((name) => name.toLowerCase()).join(';');
    const [pathname, query = ''] = request.path.split('?');
    const canonicalQuery = query
      ? query.split('&').map((pair) => pair.split('=')).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v = '']) => `${k}=${v}`).join('&')
      : '';
    const payloadHash = request.headers['X-Amz-Content-Sha256'] || sha256(request.body || '');
    const canonical = [
      request.method,
      service === 's3' ? pathname : util.uriEscapePath(pathname),
      canonicalQuery,
      `${canonicalHeaders}\n`,
      signedHeaders,
      payloadHash,
    ].join('\n');
    const scope = `${day}/${region}/${service}/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', datetime, scope, sha256(canonical)].join('\n');
    let key = hmac(`AWS4${credentials.secretAccessKey}`, day);
    key = hmac(hmac(hmac(key, region), service), 'aws4_request');
    const signature = crypto.createHmac('sha256', key).update(toSign).digest('hex');
    request.headers.Authorization =
      `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  }

  // ---- requests: callbacks and .promise() -------------------------------------------------
  // What a service method returns: runs once, on `send(callback)` or `promise()`.
  class AWSRequest {
    constructor(run) { this._run = run; this._result = null; }
    _start() {
      if (!this._result) this._result = Promise.resolve().then(this._run);
      return this._result;
    }
    promise() { return this._start(); }
    send(callback) {
      this._start().then((data) => callback && callback(null, data), (err) => callback && callback(err, null));
      return this;
    }
    on() { return this; }
    abort() { return this; }
  }

  function operation(run) {
    return function (params, callback) {
      if (typeof params === 'function') { callback = params; params = {}; }
      const request = new AWSRequest(() => run.call(this, params || {}));
      if (typeof callback === 'function') request.send(callback);
      return request;
    };
  }

  function xmlDecode(text) {
    return text.replace(/&(lt|gt|quot|apos|amp);/g, (_, e) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]);
  }
  function xmlText(xml, tag) {
    const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
    return m ? xmlDecode(m[1]) : undefined;
  }

  // An error as aws-sdk makes it from an AWS error answer.
  async function serviceError(response, fallbackCode) {
    const text = await response.text();
    const err = new Error(xmlText(text, 'Message') || response.statusText || `HTTP ${response.status}`);
    err.code = xmlText(text, 'Code') || fallbackCode || response.statusText;
    err.name = err.code;
    err.statusCode = response.status;
    err.retryable = response.status >= 500 || response.status === 429;
    err.requestId = response.headers.get('x-amz-request-id') || xmlText(text, 'RequestId') || null;
    err.time = new Date();
    return err;
  }

  class Service {
    constructor(options) {
      this.config = new Config(Object.assign({}, config, { credentials: null }));
      if (options) this.config.update(options);
    }
    async _send(service, signingRegion, request) {
      const url = `${request.protocol}//${request.host}${request.path}`;
      request.headers.Host = request.host;
      sign(request, credentialsOf(this), signingRegion, service, util.date.getDate());
      const headers = Object.assign({}, request.headers);
      delete headers.Host; // the fetch sets it from the URL, the same value
      headers['User-Agent'] = `aws-sdk-nodejs/${VERSION} segfn`;
      return fetch(url, { method: request.method, headers, body: request.body === undefined || request.method === 'GET' || request.method === 'HEAD' ? undefined : request.body });
    }
  }

  // ---- S3 ---------------------------------------------------------------------------------
  const S3_HEADERS = {
    ACL: 'x-amz-acl', CacheControl: 'Cache-Control', ContentDisposition: 'Content-Disposition',
    ContentEncoding: 'Content-Encoding', ContentLanguage: 'Content-Language', ContentType: 'Content-Type',
    Expires: 'Expires', ServerSideEncryption: 'x-amz-server-side-encryption', StorageClass: 'x-amz-storage-class',
    Tagging: 'x-amz-tagging', WebsiteRedirectLocation: 'x-amz-website-redirect-location',
    SSEKMSKeyId: 'x-amz-server-side-encryption-aws-kms-key-id', IfMatch: 'If-Match', IfNoneMatch: 'If-None-Match',
    Range: 'Range',
  };

  function dnsCompatibleBucketName(bucket) {
    return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !/(\d+\.){3}\d+/.test(bucket) && !/\.\./.test(bucket);
  }

  function bodyBytes(body) {
    if (body === undefined || body === null) return Buffer.alloc(0);
    if (typeof body === 'string' || ArrayBuffer.isView(body)) return Buffer.from(body);
    const err = new Error('Expected params.Body to be a string, Buffer, Stream, Blob, or typed array object');
    err.code = 'InvalidParameterType';
    throw err;
  }

  function required(params, names) {
    for (const name of names) {
      if (params[name] === undefined || params[name] === null || params[name] === '') {
        const err = new Error(`Missing required key '${name}' in params`);
        err.code = 'MissingRequiredParameter';
        throw err;
      }
    }
  }

  class S3 extends Service {
    _request(method, params, extraHeaders, body) {
      const region = this.config.region || 'us-east-1';
      let protocol = this.config.sslEnabled === false ? 'http:' : 'https:';
      let host = region === 'us-east-1' ? 's3.amazonaws.com' : `s3.${region}.amazonaws.com`;
      if (this.config.endpoint) {
        const endpoint = new URL(String(this.config.endpoint).includes('://') ? this.config.endpoint : `${protocol}//${this.config.endpoint}`);
        protocol = endpoint.protocol;
        host = endpoint.host;
      }
      const key = params.Key === undefined ? '' : util.uriEscapePath(String(params.Key));
      const pathStyle = this.config.s3ForcePathStyle || !dnsCompatibleBucketName(params.Bucket) ||
        (protocol === 'https:' && params.Bucket.includes('.'));
      const request = {
        method, protocol, headers: {}, body,
        host: pathStyle ? host : `${params.Bucket}.${host}`,
        path: pathStyle ? `/${params.Bucket}/${key}` : `/${key}`,
      };
      for (const [param, header] of Object.entries(S3_HEADERS)) {
        if (params[param] !== undefined) request.headers[header] = params[param] instanceof Date ? params[param].toUTCString() : String(params[param]);
      }
      for (const [name, value] of Object.entries(params.Metadata || {})) request.headers[`x-amz-meta-${name}`] = String(value);
      Object.assign(request.headers, extraHeaders);
      // As aws-sdk over HTTPS: the body is not part of the signature.
      request.headers['X-Amz-Content-Sha256'] = protocol === 'https:' ? 'UNSIGNED-PAYLOAD' : sha256(body || '');
      return this._send('s3', region, request);
    }

    _location(params) {
      const region = this.config.region || 'us-east-1';
      const host = region === 'us-east-1' ? 's3.amazonaws.com' : `s3.${region}.amazonaws.com`;
      return `https://${params.Bucket}.${host}/${util.uriEscapePath(String(params.Key))}`;
    }
  }

  function objectOutput(response) {
    const out = {};
    const h = (name) => response.headers.get(name);
    if (h('accept-ranges')) out.AcceptRanges = h('accept-ranges');
    if (h('last-modified')) out.LastModified = new Date(h('last-modified'));
    if (h('content-length') !== null) out.ContentLength = Number(h('content-length'));
    if (h('etag')) out.ETag = h('etag');
    if (h('x-amz-version-id')) out.VersionId = h('x-amz-version-id');
    if (h('cache-control')) out.CacheControl = h('cache-control');
    if (h('content-encoding')) out.ContentEncoding = h('content-encoding');
    if (h('content-type')) out.ContentType = h('content-type');
    if (h('x-amz-server-side-encryption')) out.ServerSideEncryption = h('x-amz-server-side-encryption');
    out.Metadata = {};
    for (const [name, value] of response.headers) {
      if (name.startsWith('x-amz-meta-')) out.Metadata[name.slice('x-amz-meta-'.length)] = value;
    }
    return out;
  }

  S3.prototype.putObject = operation(async function (params) {
    required(params, ['Bucket', 'Key']);
    const body = bodyBytes(params.Body);
    const headers = { 'Content-MD5': md5(body) };
    if (params.ContentType === undefined) headers['Content-Type'] = 'application/octet-stream';
    const response = await this._request('PUT', params, headers, body);
    if (!response.ok) throw await serviceError(response);
    const out = { ETag: response.headers.get('etag') };
    if (response.headers.get('x-amz-version-id')) out.VersionId = response.headers.get('x-amz-version-id');
    if (response.headers.get('x-amz-server-side-encryption')) out.ServerSideEncryption = response.headers.get('x-amz-server-side-encryption');
    return out;
  });

  S3.prototype.getObject = operation(async function (params) {
    required(params, ['Bucket', 'Key']);
    const response = await this._request('GET', params, {}, undefined);
    if (!response.ok) throw await serviceError(response);
    const out = objectOutput(response);
    out.Body = Buffer.from(await response.arrayBuffer());
    if (out.ContentLength === undefined) out.ContentLength = out.Body.length;
    return out;
  });

  S3.prototype.headObject = operation(async function (params) {
    required(params, ['Bucket', 'Key']);
    const response = await this._request('HEAD', params, {}, undefined);
    if (!response.ok) throw await serviceError(response, response.status === 404 ? 'NotFound' : undefined);
    return objectOutput(response);
  });

  S3.prototype.deleteObject = operation(async function (params) {
    required(params, ['Bucket', 'Key']);
    const response = await this._request('DELETE', params, {}, undefined);
    if (!response.ok) throw await serviceError(response);
    return {};
  });

  // `s3.upload(params, [options], [callback])`: aws-sdk's managed upload, here one PUT
  // (bodies are in memory; a function's whole invocation is bounded anyway).
  S3.prototype.upload = function (params, options, callback) {
    if (typeof options === 'function') { callback = options; options = undefined; }
    const request = new AWSRequest(async () => {
      const put = await this.putObject(params).promise();
      return { ETag: put.ETag, Location: this._location(params), key: params.Key, Key: params.Key, Bucket: params.Bucket };
    });
    if (typeof callback === 'function') request.send(callback);
    return request;
  };

  // ---- STS ---------------------------------------------------------------------------------
  class STS extends Service {
    async _query(action, params) {
      const form = Object.entries(Object.assign({ Action: action, Version: '2011-06-15' }, params))
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${util.uriEscape(k)}=${util.uriEscape(String(v))}`)
        .join('&');
      let protocol = 'https:';
      let host = 'sts.amazonaws.com';
      if (this.config.endpoint) {
        const endpoint = new URL(String(this.config.endpoint).includes('://') ? this.config.endpoint : `https://${this.config.endpoint}`);
        protocol = endpoint.protocol;
        host = endpoint.host;
      }
      const request = {
        method: 'POST', protocol, host, path: '/', body: form,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8', 'X-Amz-Content-Sha256': sha256(form) },
      };
      const response = await this._send('sts', 'us-east-1', request);
      if (!response.ok) throw await serviceError(response);
      return response.text();
    }
  }

  STS.prototype.assumeRole = operation(async function (params) {
    required(params, ['RoleArn', 'RoleSessionName']);
    const xml = await this._query('AssumeRole', params);
    const out = {
      ResponseMetadata: { RequestId: xmlText(xml, 'RequestId') },
      Credentials: {
        AccessKeyId: xmlText(xml, 'AccessKeyId'),
        SecretAccessKey: xmlText(xml, 'SecretAccessKey'),
        SessionToken: xmlText(xml, 'SessionToken'),
        Expiration: new Date(xmlText(xml, 'Expiration')),
      },
      AssumedRoleUser: { AssumedRoleId: xmlText(xml, 'AssumedRoleId'), Arn: xmlText(xml, 'Arn') },
    };
    const packed = xmlText(xml, 'PackedPolicySize');
    if (packed !== undefined) out.PackedPolicySize = Number(packed);
    return out;
  });

  STS.prototype.getCallerIdentity = operation(async function () {
    const xml = await this._query('GetCallerIdentity', {});
    return {
      ResponseMetadata: { RequestId: xmlText(xml, 'RequestId') },
      UserId: xmlText(xml, 'UserId'),
      Account: xmlText(xml, 'Account'),
      Arn: xmlText(xml, 'Arn'),
    };
  });

  globalThis.AWS = { VERSION, config, Config, Credentials, S3, STS, Service, util };
})();
