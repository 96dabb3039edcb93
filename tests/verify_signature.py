#!/usr/bin/env python3
"""Independent verifier of biogate's webhook signatures.

Verifies recorded deliveries with the `standardwebhooks` package from PyPI (an
implementation of the Standard Webhooks spec that is not biogate's own), so a passing
run means any Standard Webhooks receiver would accept them.

Usage: verify_signature.py DELIVERIES.json|- SECRET
  DELIVERIES.json (or `-` for standard input) holds a JSON list of recorded deliveries:
  [{"headers": {"webhook-id": ..., "webhook-timestamp": ..., "webhook-signature": ...},
    "body": "<exact body text>"}, ...]  (header names in any case; other headers ignored)
  SECRET is the route's signing secret, `whsec_<base64>`.

Prints `verified N deliveries` and exits 0 when every delivery verifies; exits 1 at the
first one that does not, 2 on bad usage or input. The package refuses timestamps more
than 5 minutes from now, so verify live recordings, not old ones.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook


def fail(code: int, message: str) -> int:
    print(f"verify_signature: {message}", file=sys.stderr)
    return code


def load(path: str):
    if path == "-":
        return json.load(sys.stdin)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv: list) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, secret = argv[1], argv[2]
    try:
        deliveries = load(path)
    except (OSError, ValueError) as error:
        return fail(2, f"cannot read deliveries from {path}: {error}")
    if not isinstance(deliveries, list):
        return fail(2, "the deliveries must be a JSON list")
    try:
        webhook = Webhook(secret)
    except Exception as error:  # bad base64 or empty secret
        return fail(2, f"invalid secret: {error}")

    for i, delivery in enumerate(deliveries):
        headers = delivery.get("headers") if isinstance(delivery, dict) else None
        body = delivery.get("body") if isinstance(delivery, dict) else None
        if not isinstance(headers, dict) or not isinstance(body, str):
            return fail(2, f"delivery {i}: expected {{\"headers\": {{...}}, \"body\": \"...\"}}")
        msg_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id")
        try:
            webhook.verify(body, headers, json_parse=False)
        except Exception as error:  # WebhookVerificationError, or a malformed signature entry
            return fail(1, f"delivery {i} (webhook-id {msg_id!r}) failed verification: {error}")
    print(f"verified {len(deliveries)} deliveries")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
