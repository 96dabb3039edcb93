#!/usr/bin/env python3
"""Independent verifier of biogate's webhook signatures.

Verifies recorded deliveries with the `standardwebhooks` package from PyPI (an
implementation of the Standard Webhooks spec that is not biogate's own).

Usage: verify_signature.py DELIVERIES.json SECRET
DELIVERIES.json holds [{"headers": {"webhook-id": ..., ...}, "body": "<exact body>"}, ...].
Exits non-zero at the first delivery that does not verify.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        deliveries = json.load(f)
    webhook = Webhook(sys.argv[2])
    for i, delivery in enumerate(deliveries):
        try:
            webhook.verify(delivery["body"], delivery["headers"])
        except Exception as error:  # the package raises its own WebhookVerificationError
            print(f"delivery {i} (webhook-id {delivery['headers'].get('webhook-id')}) failed: {error}", file=sys.stderr)
            return 1
    print(f"verified {len(deliveries)} deliveries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
