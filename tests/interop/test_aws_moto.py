"""The preloaded `AWS` (aws-sdk v2's S3 and STS) against a real S3/STS implementation:
moto's server on 127.0.0.1, with IAM authentication on, so every request's Signature
Version 4 is recomputed by botocore on the server side and compared.

The function keeps AWS's real URLs (`https://BUCKET.s3.us-west-2.amazonaws.com/...`,
`https://sts.amazonaws.com/`); `segfn run --map-host` sends them to moto over plain HTTP
with their Host header, which is signed, so moto checks the signature the function
computed for AWS itself. The expected byte-for-byte requests of aws-sdk 2.488.0 are
checked in tests/e2e/javascript.rs; this checks that a server which verifies them
accepts them, and refuses a wrong secret.

`scripts/test` runs it with the other Python tests (moto[server] is in
tests/browser/requirements.txt, installed by scripts/bootstrap-browser).
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
SEGFN = Path(os.environ.get("SEGFN_BIN") or TARGET / "debug" / "segfn")
REGION = "us-west-2"
BUCKET = "segfn-exports"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def allow_all(actions):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
    )


@pytest.fixture(scope="module")
def moto():
    """moto's server on 127.0.0.1 with a user, its access key, a role it may assume
    and a bucket, made before authentication is switched on."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [Path(sys.executable).parent / "moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {server.stderr.read()}")
                time.sleep(0.2)

        # Until authentication is on, moto accepts any credentials: these only set up.
        setup = dict(
            endpoint_url=endpoint,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
            region_name=REGION,
        )
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="segfn")
        iam.put_user_policy(
            UserName="segfn", PolicyName="exports", PolicyDocument=allow_all(["s3:*", "sts:*"])
        )
        key = iam.create_access_key(UserName="segfn")["AccessKey"]
        trust = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:user/segfn"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        )
        role = iam.create_role(RoleName="exporter", AssumeRolePolicyDocument=trust)["Role"]
        iam.put_role_policy(
            RoleName="exporter", PolicyName="s3", PolicyDocument=allow_all(["s3:*"])
        )
        boto3.client("s3", **setup).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )

        # From here on every request must be signed with a key moto issued.
        urllib.request.urlopen(
            urllib.request.Request(
                f"{endpoint}/moto-api/reset-auth",
                data=b"0",
                method="POST",
                headers={"content-type": "text/plain"},
            )
        ).read()
        yield {
            "endpoint": endpoint,
            "port": port,
            "key_id": key["AccessKeyId"],
            "secret": key["SecretAccessKey"],
            "role": role["Arn"],
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


FUNCTION = """\
async function onTrack(event, settings) {
  AWS.config.update({ region: 'us-west-2', accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey })
  const s3 = new AWS.S3()
  const key = `events/${event.messageId} a+b.json`
  const put = await s3.putObject({ Bucket: 'segfn-exports', Key: key, Body: JSON.stringify(event.properties), ContentType: 'application/json' }).promise()
  const head = await s3.headObject({ Bucket: 'segfn-exports', Key: key }).promise()
  const got = await s3.getObject({ Bucket: 'segfn-exports', Key: key }).promise()

  const sts = new AWS.STS()
  const me = await sts.getCallerIdentity({}).promise()
  const role = await new Promise((resolve, reject) =>
    sts.assumeRole({ RoleArn: settings.roleArn, RoleSessionName: 'segfn' }, (err, data) => err ? reject(err) : resolve(data)))
  const c = role.Credentials
  const asRole = new AWS.S3({ region: 'us-west-2', credentials: new AWS.Credentials(c.AccessKeyId, c.SecretAccessKey, c.SessionToken) })
  await asRole.upload({ Bucket: 'segfn-exports', Key: `by-role/${event.messageId}.txt`, Body: Buffer.from('written as the role') }).promise()

  let wrongSecret
  try {
    await new AWS.S3({ region: 'us-west-2', accessKeyId: settings.accessKeyId, secretAccessKey: 'not-the-secret' })
      .getObject({ Bucket: 'segfn-exports', Key: key }).promise()
  } catch (e) {
    wrongSecret = { code: e.code, statusCode: e.statusCode }
  }
  await s3.deleteObject({ Bucket: 'segfn-exports', Key: key }).promise()
  return { etag: put.ETag, length: head.ContentLength, body: got.Body.toString(), me: me.Arn, role: role.AssumedRoleUser.Arn, wrongSecret }
}
"""


def test_s3_and_sts_requests_pass_a_server_that_verifies_their_signatures(moto, tmp_path):
    handler = tmp_path / "handler.js"
    handler.write_text(FUNCTION)
    event = tmp_path / "event.json"
    properties = {"total": 12.5, "sku": "é", "note": "quotes \" and / slashes"}
    event.write_text(
        json.dumps(
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": "m-1",
                "userId": "u1",
                "properties": properties,
            }
        )
    )
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps(
            {
                "accessKeyId": moto["key_id"],
                "secretAccessKey": moto["secret"],
                "roleArn": moto["role"],
            }
        )
    )
    run = subprocess.run(
        [
            SEGFN,
            "run",
            handler,
            "--event",
            event,
            "--settings",
            settings,
            "--map-host",
            f"*.amazonaws.com=http://127.0.0.1:{moto['port']}",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["outcome"]["kind"] == "success", report
    output = report["output"]
    assert output["me"] == "arn:aws:iam::123456789012:user/segfn"
    assert output["role"] == "arn:aws:sts::123456789012:assumed-role/exporter/segfn"
    assert json.loads(output["body"]) == properties
    assert output["length"] == len(json.dumps(properties, separators=(",", ":"), ensure_ascii=False).encode())
    assert output["etag"].startswith('"') and len(output["etag"]) == 34
    # moto recomputes the signature: with the wrong secret it does not match.
    assert output["wrongSecret"] == {"code": "SignatureDoesNotMatch", "statusCode": 403}

    # Where AWS's own client (signed by botocore) finds what the function did.
    s3 = boto3.client(
        "s3",
        endpoint_url=moto["endpoint"],
        aws_access_key_id=moto["key_id"],
        aws_secret_access_key=moto["secret"],
        region_name=REGION,
    )
    written = s3.get_object(Bucket=BUCKET, Key="by-role/m-1.txt")["Body"].read()
    assert written == b"written as the role"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert "events/m-1 a+b.json" not in keys, keys

    # The requests went to AWS's hosts, mapped to moto; the secret is in none of the report.
    urls = [r["url"] for r in report["requests"]]
    assert urls[0] == "https://segfn-exports.s3.us-west-2.amazonaws.com/events/m-1%20a%2Bb.json"
    assert "https://sts.amazonaws.com/" in urls
    assert moto["secret"] not in run.stdout + run.stderr
